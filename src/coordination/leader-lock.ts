import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis-client.js';

/** KEYS: lock. ARGV: token, ms. Extends the lock while this token holds it; 0 when it is lost. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/** KEYS: lock. ARGV: token. Deletes the lock only while this token holds it. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export interface LeaderLockOptions {
  /** Lock lifetime; the holder renews it every third of it. A holder killed with -9 frees it after one lifetime. @defaultValue 5000 */
  readonly ttlMs?: number;
}

/**
 * One holder cluster-wide (one CDC reader per pipeline and source). Held by a random token with an
 * expiry renewed while held, so a holder that dies frees it within `ttlMs` and a standby takes over.
 * A holder whose renewal finds the lock gone or taken (its process stalled past the expiry, or Redis
 * lost its data) has lost leadership and must stop: `onLost` tells it. Two holders can overlap for
 * at most the moment between expiry and that renewal; CDC tolerates it because every write converges
 * a key to the source's current state and checkpoints only ever claim what was applied.
 */
export class LeaderLock {
  private readonly ttlMs: number;
  private readonly token = randomUUID();
  private renewal: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
    options: LeaderLockOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 5000;
  }

  /** Takes the lock when it is free and starts renewing it; `onLost` is called once if it is lost. */
  async tryAcquire(onLost: () => void): Promise<boolean> {
    const taken = (await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK';
    if (!taken) return false;
    this.stopRenewal();
    this.renewal = setInterval(() => {
      this.redis
        .eval(RENEW, 1, this.key, this.token, String(this.ttlMs))
        .then((held) => {
          if (held !== 1 && this.renewal) {
            this.stopRenewal();
            onLost();
          }
        })
        // A failed renewal (Redis unreachable) is not a loss yet: the next one decides.
        .catch(() => undefined);
    }, Math.max(50, Math.floor(this.ttlMs / 3)));
    this.renewal.unref();
    return true;
  }

  /** Stops renewing and frees the lock if this holder still has it. */
  async release(): Promise<void> {
    this.stopRenewal();
    await this.redis.eval(RELEASE, 1, this.key, this.token).catch(() => undefined);
  }

  private stopRenewal(): void {
    if (this.renewal) clearInterval(this.renewal);
    this.renewal = undefined;
  }
}
