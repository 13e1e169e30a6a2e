import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis-client.js';
import { pollWithBackoff } from './poll.js';

/** KEYS: lease keys. ARGV: token, lease ms. All or none: one lease held elsewhere fails the set. */
const ACQUIRE_ALL = `
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 1`;

/**
 * KEYS: lease keys. ARGV: token, lease ms. Takes every lease that is free now and returns the
 * positions (1-based) of the keys taken; the others are held elsewhere and stay untouched.
 */
const ACQUIRE_FREE = `
local taken = {}
for index, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'PX', ARGV[2], 'NX') then table.insert(taken, index) end
end
return taken`;

/** KEYS: lease keys. ARGV: token, lease ms. Extends the leases this token still holds. */
const RENEW = `
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]) end
end
return 1`;

/** KEYS: lease keys. ARGV: token. Frees the leases this token still holds, no one else's. */
const RELEASE = `
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1`;

export interface KeyLease {
  /** Frees the leases (only while this holder still owns them). */
  release(): Promise<void>;
}

export interface KeyLeasesOptions {
  /** Lease length; renewed every third of it while held. A holder killed with -9 frees its keys after one lease. @defaultValue 5000 */
  readonly leaseMs?: number;
}

/**
 * Per-key leases, shared in Redis by every rowsync process: whoever syncs keys holds their leases
 * first, an apply job for its batch, a chunk job that syncs its few differing keys itself for those.
 * Two syncs of one key therefore never overlap, whichever path each took (ARCHITECTURE.md: per-key
 * mutual exclusion), while a chunk with a handful of differences costs one sync instead of one BullMQ
 * job per lane. A lease is named by a 32-bit hash of (table, key) (`keyHash` in sync/lanes.ts): two
 * keys sharing a hash exclude each other too, which is only ever more exclusion, never less. Leases
 * are this fine (not one per lane) so that chunks over disjoint key ranges never wait for each other.
 * With Redis Cluster, put a hash tag in `redis.prefix` (as BullMQ requires anyway): the leases of one
 * call must share a slot.
 */
export class KeyLeases {
  private readonly leaseMs: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: KeyLeasesOptions = {},
  ) {
    this.leaseMs = options.leaseMs ?? 5000;
  }

  /** Takes the leases of every key hash in `ids` at once, or none of them (then undefined). */
  async tryHold(ids: readonly number[]): Promise<KeyLease | undefined> {
    const keys = this.keys(ids);
    const token = randomUUID();
    const taken = await this.redis.eval(ACQUIRE_ALL, keys.length, ...keys, token, String(this.leaseMs));
    if (taken !== 1) return undefined;
    return this.renewing(keys, token);
  }

  /**
   * Takes the leases of those of `ids` that are free now, waiting (backoff up to 50 ms) until at least
   * one is; `held` are the ids taken. For a batch of many keys that may share a few with another
   * holder: it syncs what is free instead of waiting for the whole set, and, releasing before it
   * asks for the rest, never holds some leases while waiting for others (no deadlock).
   */
  async holdSome(ids: readonly number[]): Promise<{ lease: KeyLease; held: ReadonlySet<number> }> {
    const wanted = distinct(ids);
    const taken = await pollWithBackoff(
      async () => {
        const keys = this.keys(wanted);
        const token = randomUUID();
        const positions = (await this.redis.eval(ACQUIRE_FREE, keys.length, ...keys, token, String(this.leaseMs))) as number[];
        if (positions.length === 0) return undefined;
        const heldKeys = positions.map((position) => keys[position - 1]!);
        return { lease: this.renewing(heldKeys, token), held: new Set(positions.map((position) => wanted[position - 1]!)) };
      },
      { firstDelayMs: 2, maxDelayMs: 50 },
    );
    return taken!;
  }

  /** A lease over `keys` held by `token`, renewed every third of its length until released. */
  private renewing(keys: readonly string[], token: string): KeyLease {
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
   * Waits (polling with backoff up to 50 ms) until it holds every lease in `ids`. With `maxWaitMs`,
   * gives up after that long and returns undefined.
   */
  hold(ids: readonly number[], maxWaitMs = Number.POSITIVE_INFINITY): Promise<KeyLease | undefined> {
    return pollWithBackoff(() => this.tryHold(ids), { firstDelayMs: 2, maxDelayMs: 50, maxWaitMs });
  }

  /** Which of `ids` are leased right now, by anyone (for tests). */
  async held(ids: readonly number[]): Promise<number[]> {
    const keys = this.keys(ids);
    const values = keys.length === 0 ? [] : await this.redis.mget(...keys);
    return distinct(ids).filter((_, index) => values[index] !== null);
  }

  private keys(ids: readonly number[]): string[] {
    return distinct(ids).map((id) => `${this.prefix}:key-lease:${id}`);
  }
}

function distinct(ids: readonly number[]): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}
