/**
 * The Redis semaphore behind `connections.<name>.maxConcurrentQueries`, on a real Redis: it admits
 * at most `limit` holders, a holder that outlives its lease keeps its slot while it renews it, and a
 * holder that stops renewing (a process killed with -9) loses its slot after one lease, and leases
 * are timed by Redis's clock, not by the clocks of the machines the workers run on.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisSemaphore } from '../../src/coordination/redis-semaphore.js';
import { testServers } from '../support/servers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fails with a message instead of hanging the file until the test timeout. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Takes a slot the way `run` does (the Lua acquire) but never renews or releases it. */
async function acquireAndAbandon(semaphore: RedisSemaphore, token: string): Promise<boolean> {
  return (semaphore as unknown as { tryAcquire(token: string): Promise<boolean> }).tryAcquire(token);
}

describe('RedisSemaphore', () => {
  let redis: Redis;
  const prefix = `t-sem-${randomBytes(4).toString('hex')}`;

  beforeAll(() => {
    redis = new Redis(testServers().redisUrl, { maxRetriesPerRequest: null });
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('admits at most `limit` of many concurrent tasks, and runs all of them', async () => {
    const semaphore = new RedisSemaphore(redis, `${prefix}:limit`, { limit: 2 });
    let inside = 0;
    let most = 0;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        semaphore.run(async () => {
          inside += 1;
          most = Math.max(most, inside);
          await sleep(25);
          inside -= 1;
          return index;
        }),
      ),
    );
    expect(results).toEqual([...Array(10).keys()]);
    expect(most).toBe(2);
    expect(await semaphore.held()).toBe(0);
  });

  it('gives the slot back when the task throws', async () => {
    const semaphore = new RedisSemaphore(redis, `${prefix}:throws`, { limit: 1 });
    await expect(semaphore.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await semaphore.held()).toBe(0);
    await expect(within(semaphore.run(async () => 'next'), 5000, 'next holder')).resolves.toBe('next');
  });

  it('a holder that runs longer than its lease keeps its slot by renewing it', async () => {
    const key = `${prefix}:renew`;
    const semaphore = new RedisSemaphore(redis, key, { limit: 1, leaseMs: 300 });
    let inside = 0;
    let most = 0;
    const task = (ms: number) => async () => {
      inside += 1;
      most = Math.max(most, inside);
      await sleep(ms);
      inside -= 1;
    };
    const long = semaphore.run(task(1000));
    await sleep(50);
    // Starts while the long holder is inside; it may only enter once that one has left.
    const late = semaphore.run(task(10));
    await within(Promise.all([long, late]), 10_000, 'both holders');
    expect(most).toBe(1);
  });

  it("leases run on Redis's clock: a worker whose clock is an hour ahead does not expire the others'", async () => {
    const semaphore = new RedisSemaphore(redis, `${prefix}:skew`, { limit: 1, leaseMs: 5000 });
    expect(await acquireAndAbandon(semaphore, 'holder-with-a-true-clock')).toBe(true);
    const skewed = vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 3_600_000);
    try {
      expect(await acquireAndAbandon(semaphore, 'holder-an-hour-ahead')).toBe(false);
      expect(await semaphore.held()).toBe(1);
    } finally {
      skewed.mockRestore();
    }
  });

  it('a holder that stops renewing loses its slot after one lease', async () => {
    const semaphore = new RedisSemaphore(redis, `${prefix}:crashed`, { limit: 1, leaseMs: 300 });
    expect(await acquireAndAbandon(semaphore, 'crashed-holder')).toBe(true);
    expect(await semaphore.held()).toBe(1);
    // Full while the lease runs: another holder is refused.
    expect(await acquireAndAbandon(semaphore, 'other-holder')).toBe(false);

    let ran = false;
    await within(
      semaphore.run(async () => {
        ran = true;
      }),
      5000,
      'a holder after the abandoned lease',
    );
    expect(ran).toBe(true);
    expect(await semaphore.held()).toBe(0);
  });
});
