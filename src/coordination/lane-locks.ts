import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/** KEYS: lane lease keys. ARGV: token, lease ms. All or none: one lease held elsewhere fails the set. */
const ACQUIRE_ALL = `
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 1`;

/** KEYS: lane lease keys. ARGV: token, lease ms. Extends the leases this token still holds. */
const RENEW = `
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]) end
end
return 1`;

/** KEYS: lane lease keys. ARGV: token. Frees the leases this token still holds, no one else's. */
const RELEASE = `
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1`;

export interface LaneLease {
  /** Frees the leases (only while this holder still owns them). */
  release(): Promise<void>;
}

export interface LaneLocksOptions {
  /** Lease length; renewed every third of it while held. A holder killed with -9 frees its lanes after one lease. @defaultValue 5000 */
  readonly leaseMs?: number;
}

/**
 * Leases on apply lanes, shared in Redis by every rowsync process. Whoever syncs keys holds the
 * leases of their lanes: an apply job its lane's, a chunk job that syncs its few differing keys
 * itself the leases of every lane those keys route to. Two syncs of one key therefore never overlap,
 * whichever path each took (ARCHITECTURE.md: per-key mutual exclusion), while a chunk with a handful of
 * differences costs one sync instead of one BullMQ job per lane.
 * With Redis Cluster, put a hash tag in `redis.prefix` (as BullMQ requires anyway): the leases of one
 * call must share a slot.
 */
export class LaneLocks {
  private readonly leaseMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    options: LaneLocksOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 5000;
  }

  /** Takes the leases of every lane in `lanes` at once, or none of them (then undefined). */
  async tryHold(lanes: readonly number[]): Promise<LaneLease | undefined> {
    const keys = this.keys(lanes);
    const token = randomUUID();
    const taken = await this.redis.eval(ACQUIRE_ALL, keys.length, ...keys, token, String(this.leaseMs));
    if (taken !== 1) return undefined;
    const renewal = setInterval(() => {
      void this.redis.eval(RENEW, keys.length, ...keys, token, String(this.leaseMs)).catch(() => undefined);
    }, Math.max(50, Math.floor(this.leaseMs / 3)));
    renewal.unref();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renewal);
        await this.redis.eval(RELEASE, keys.length, ...keys, token).catch(() => undefined);
      },
    };
  }

  /**
   * Waits (polling with backoff up to 50 ms) until it holds every lease in `lanes`. With `maxWaitMs`,
   * gives up after that long and returns undefined.
   */
  async hold(lanes: readonly number[], maxWaitMs = Number.POSITIVE_INFINITY): Promise<LaneLease | undefined> {
    const deadline = Date.now() + maxWaitMs;
    let delay = 2;
    for (;;) {
      const lease = await this.tryHold(lanes);
      if (lease) return lease;
      if (Date.now() + delay > deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, delay + Math.random() * delay));
      delay = Math.min(50, delay * 2);
    }
  }

  /** The lanes held right now, by anyone (for tests and status). */
  async held(lanes: readonly number[]): Promise<number[]> {
    const keys = this.keys(lanes);
    const values = keys.length === 0 ? [] : await this.redis.mget(...keys);
    return [...new Set(lanes)].sort((a, b) => a - b).filter((_, index) => values[index] !== null);
  }

  private keys(lanes: readonly number[]): string[] {
    return [...new Set(lanes)].sort((a, b) => a - b).map((lane) => `${this.prefix}:lane-lease:${lane}`);
  }
}
