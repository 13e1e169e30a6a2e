/**
 * Per-key leases on a real Redis: a set of key hashes is taken all at once or not at all, a holder
 * frees only its own leases, a renewing holder keeps them past one lease, one that stops renewing
 * (a process killed with -9) loses them after one lease, and `hold` waits for a release or gives up.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyLeases } from '../../src/coordination/key-leases.js';
import { testServers } from '../support/servers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('KeyLeases', () => {
  let redis: Redis;
  const prefix = `t-leases-${randomBytes(4).toString('hex')}`;

  beforeAll(() => {
    redis = new Redis(testServers().redisUrl, { maxRetriesPerRequest: null });
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('takes a set of keys all at once or none of them', async () => {
    const leases = new KeyLeases(redis, `${prefix}-a`);
    const first = (await leases.tryHold([2, 0, 2]))!;
    expect(first).toBeDefined();
    expect(await leases.held([0, 1, 2, 3])).toEqual([0, 2]);
    // Key 2 is taken: nothing of [1, 2, 3] is taken, keys 1 and 3 stay free.
    expect(await leases.tryHold([1, 2, 3])).toBeUndefined();
    expect(await leases.held([0, 1, 2, 3])).toEqual([0, 2]);
    const other = (await leases.tryHold([1, 3]))!;
    expect(other).toBeDefined();
    await first.release();
    expect(await leases.held([0, 1, 2, 3])).toEqual([1, 3]);
    await other.release();
    expect(await leases.held([0, 1, 2, 3])).toEqual([]);
  });

  it('a holder whose lease expired and was taken over does not free the new holder', async () => {
    const leases = new KeyLeases(redis, `${prefix}-b`, { leaseMs: 200 });
    const stale = (await leases.tryHold([5]))!;
    // The stale holder's lease ran out (its process paused past a lease): deleted here instead of waited for.
    await redis.del(`${prefix}-b:key-lease:5`);
    const fresh = (await leases.tryHold([5]))!;
    expect(fresh).toBeDefined();
    await stale.release();
    expect(await leases.held([5])).toEqual([5]);
    await fresh.release();
    expect(await leases.held([5])).toEqual([]);
  });

  it('keeps its leases past one lease while it renews them, and loses them one lease after it stops', async () => {
    const leases = new KeyLeases(redis, `${prefix}-c`, { leaseMs: 300 });
    const lease = (await leases.tryHold([1]))!;
    await sleep(900);
    expect(await leases.tryHold([1])).toBeUndefined();
    // An abandoned lease, as tryHold stores one, never renewed (its holder was killed with -9).
    await redis.set(`${prefix}-c:key-lease:2`, 'killed-holder', 'PX', 300);
    expect(await leases.tryHold([2])).toBeUndefined();
    await sleep(450);
    const after = await leases.tryHold([2]);
    expect(after).toBeDefined();
    await after!.release();
    await lease.release();
  });

  it('hold waits for the holder to let go, or gives up after maxWaitMs', async () => {
    const leases = new KeyLeases(redis, `${prefix}-d`);
    const holder = (await leases.tryHold([0, 1]))!;
    const started = Date.now();
    expect(await leases.hold([1], 150)).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    const waiting = leases.hold([1]);
    setTimeout(() => void holder.release(), 200);
    const lease = await waiting;
    expect(lease).toBeDefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    await lease!.release();
  });

  it('holdSome takes the free leases of a set and leaves the ones held elsewhere; waits while none is free', async () => {
    const leases = new KeyLeases(redis, `${prefix}-some`);
    const other = (await leases.tryHold([2, 4]))!;
    const { lease, held } = await leases.holdSome([1, 2, 3, 4, 1]);
    expect([...held].sort()).toEqual([1, 3]);
    expect(await leases.held([1, 2, 3, 4])).toEqual([1, 2, 3, 4]);
    await lease.release();
    expect(await leases.held([1, 2, 3, 4])).toEqual([2, 4]);
    // None of [2, 4] is free: it waits until the holder lets go, then takes them.
    const waiting = leases.holdSome([2, 4]);
    let settled = false;
    void waiting.then(() => (settled = true));
    await sleep(100);
    expect(settled).toBe(false);
    await other.release();
    const later = await waiting;
    expect([...later.held].sort()).toEqual([2, 4]);
    await later.lease.release();
  });
});
