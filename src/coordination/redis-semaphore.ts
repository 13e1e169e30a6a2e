import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis-client.js';
import { pollWithBackoff } from './poll.js';

/**
 * Every time below is Redis's own clock (TIME, in ms), never a client's: workers on machines whose
 * clocks disagree by more than a lease would otherwise expire each other's leases early (or keep
 * dead ones), and the cap would no longer hold. Scripts may call TIME since Redis 5 (effects
 * replication).
 */
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * KEYS[1] sorted set of holders scored by lease expiry (ms). ARGV: limit, token, lease ms.
 * Drops expired leases (a holder killed with -9 frees its slot after one lease), then takes a slot
 * if fewer than `limit` are held. Returns 1 when acquired, 0 when full.
 */
const ACQUIRE = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], 3600000)
  return 1
end
return 0`;

/**
 * KEYS[1] holders. ARGV: token, lease ms. Extends a lease that is still held, and the key's TTL:
 * without that, a holder renewing for over an hour with no acquire in between would lose the whole
 * set (and every other holder's slot) to the TTL.
 */
const RENEW = `${NOW_MS}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 3600000)
  return 1
end
return 0`;

/** KEYS[1] holders. Counts the leases that have not expired. */
const HELD = `${NOW_MS}
return redis.call('ZCOUNT', KEYS[1], now, '+inf')`;

export interface SemaphoreOptions {
  /** Slots across every process sharing this Redis and key. */
  readonly limit: number;
  /** Lease length; renewed every third of it while held. @defaultValue 15000 */
  readonly leaseMs?: number;
}

/**
 * A counting semaphore held in Redis, shared by every rowsync process: the per-database cap on
 * concurrent queries (`connections.<name>.maxConcurrentQueries`). Leases expire, so a crashed holder
 * cannot keep a slot for longer than one lease.
 */
export class RedisSemaphore {
  private readonly leaseMs: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly options: SemaphoreOptions,
  ) {
    this.leaseMs = options.leaseMs ?? 15_000;
  }

  /** Runs `task` while holding a slot; waits (polling with backoff up to 100 ms) for a free one. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    const token = randomUUID();
    await pollWithBackoff(async () => ((await this.tryAcquire(token)) ? true : undefined), { firstDelayMs: 5, maxDelayMs: 100 });
    const renewal = setInterval(() => {
      void this.redis.eval(RENEW, 1, this.key, token, String(this.leaseMs)).catch(() => undefined);
    }, Math.max(100, Math.floor(this.leaseMs / 3)));
    renewal.unref();
    try {
      return await task();
    } finally {
      clearInterval(renewal);
      await this.redis.zrem(this.key, token).catch(() => undefined);
    }
  }

  /** Slots currently held (expired leases excluded). */
  async held(): Promise<number> {
    return Number(await this.redis.eval(HELD, 1, this.key));
  }

  private async tryAcquire(token: string): Promise<boolean> {
    const result = await this.redis.eval(ACQUIRE, 1, this.key, String(this.options.limit), token, String(this.leaseMs));
    return result === 1;
  }
}
