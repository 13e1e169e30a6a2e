/**
 * The load and lag gates' decisions (src/reconcile/throttle.ts) over probes whose readings the test
 * sets: thresholds, which sides count, the per-database reading cache, replicas that are none or
 * whose replication stopped, and the backoff. The probes' SQL runs against real servers in
 * dialect-probes.test.ts; a real replica is not available here (see the README).
 */
import { describe, expect, it } from 'vitest';
import type { Database } from '../../src/dialect/dialect.js';
import type { LoadReading, ReplicaLagReading } from '../../src/dialect/types.js';
import { ConfigError } from '../../src/errors/index.js';
import { MAX_WAIT_MS, PROBE_TTL_MS, checkReplicas, throttleReason, throttleWaitMs, type ThrottleSides } from '../../src/reconcile/throttle.js';

/** A Database whose load and lag readings the test sets; counts how often they are read. */
function probed(name: string, load: LoadReading, lag: ReplicaLagReading = { replica: false }) {
  const state = { load, lag, loadReads: 0, lagReads: 0 };
  const database = {
    connectionName: name,
    async readLoad() {
      state.loadReads += 1;
      return state.load;
    },
    async readReplicaLag() {
      state.lagReads += 1;
      return state.lag;
    },
  } as unknown as Database;
  return { database, state };
}

const threads = (value: number): LoadReading => ({ measure: 'Threads_running', value });

function sides(source: Database, target: Database, replicas: Record<string, Database> = {}): ThrottleSides {
  return {
    source,
    target,
    replica: (name) => {
      const found = replicas[name];
      if (!found) throw new Error(`no replica ${name}`);
      return found;
    },
    field: 'pipelines.p.reconcile',
  };
}

describe('throttleReason: maxLoad', () => {
  it('lets a chunk run at or under the limit and names the side, measure and values above it', async () => {
    const source = probed('src', threads(25));
    const target = probed('dst', threads(3));
    expect(await throttleReason({ maxLoad: 25 }, sides(source.database, target.database), true, 0)).toBeUndefined();
    source.state.load = threads(31);
    expect(await throttleReason({ maxLoad: 25 }, sides(source.database, target.database), true, PROBE_TTL_MS)).toBe(
      'source src: Threads_running 31 > maxLoad 25',
    );
    target.state.load = { measure: 'active backends', value: 40 };
    expect(await throttleReason({ maxLoad: 25 }, sides(source.database, target.database), true, 2 * PROBE_TTL_MS)).toBe(
      'source src: Threads_running 31 > maxLoad 25; target dst: active backends 40 > maxLoad 25',
    );
  });

  it('maxLoad false reads no load at all', async () => {
    const source = probed('src', threads(1000));
    const target = probed('dst', threads(1000));
    expect(await throttleReason({ maxLoad: false }, sides(source.database, target.database), true, 0)).toBeUndefined();
    expect([source.state.loadReads, target.state.loadReads]).toEqual([0, 0]);
  });

  it('reuses a reading of the same database for PROBE_TTL_MS, then reads again', async () => {
    const source = probed('src', threads(1));
    const target = probed('dst', threads(1));
    const gate = (now: number) => throttleReason({ maxLoad: 25 }, sides(source.database, target.database), true, now);
    await gate(10_000);
    await gate(10_000 + PROBE_TTL_MS - 1);
    expect([source.state.loadReads, target.state.loadReads]).toEqual([1, 1]);
    source.state.load = threads(99);
    // Still the cached reading: the change is seen only once the reading is PROBE_TTL_MS old.
    expect(await gate(10_000 + PROBE_TTL_MS - 1)).toBeUndefined();
    expect(await gate(10_000 + PROBE_TTL_MS)).toBe('source src: Threads_running 99 > maxLoad 25');
    expect(source.state.loadReads).toBe(2);
  });

  it('a source and target on one connection are read once', async () => {
    const both = probed('same', threads(30));
    expect(await throttleReason({ maxLoad: 25 }, sides(both.database, both.database), true, 0)).toBe('source same: Threads_running 30 > maxLoad 25');
    expect(both.state.loadReads).toBe(1);
  });
});

describe('throttleReason: maxReplicaLag', () => {
  const settings = { maxLoad: false as const, maxReplicaLag: { seconds: 10, replicas: ['replica1', 'replica2'] } };

  it('holds writing chunks while a watched replica lags more than the limit, naming it', async () => {
    const source = probed('src', threads(1));
    const target = probed('dst', threads(1));
    const replica1 = probed('replica1', threads(1), { replica: true, seconds: 10, measure: 'Seconds_Behind_Master' });
    const replica2 = probed('replica2', threads(1), { replica: true, seconds: 0, measure: 'replay lag' });
    const all = sides(source.database, target.database, { replica1: replica1.database, replica2: replica2.database });
    expect(await throttleReason(settings, all, true, 0)).toBeUndefined();
    replica1.state.lag = { replica: true, seconds: 31, measure: 'Seconds_Behind_Master' };
    expect(await throttleReason(settings, all, true, PROBE_TTL_MS)).toBe('replica replica1: Seconds_Behind_Master 31 s > maxReplicaLag 10 s');
  });

  it('a replica whose replication is stopped (lag unknown) holds them too', async () => {
    const replica1 = probed('replica1', threads(1), { replica: true, seconds: null, measure: 'Seconds_Behind_Source' });
    const replica2 = probed('replica2', threads(1), { replica: true, seconds: 1, measure: 'replay lag' });
    const source = probed('src', threads(1));
    const reason = await throttleReason(settings, sides(source.database, source.database, { replica1: replica1.database, replica2: replica2.database }), true, 0);
    expect(reason).toBe('replica replica1: replication not running (Seconds_Behind_Source unknown)');
  });

  it('a dry run (no writes) does not read the replicas', async () => {
    const replica1 = probed('replica1', threads(1), { replica: true, seconds: 500, measure: 'Seconds_Behind_Master' });
    const source = probed('src', threads(1));
    expect(await throttleReason(settings, sides(source.database, source.database, { replica1: replica1.database }), false, 0)).toBeUndefined();
    expect(replica1.state.lagReads).toBe(0);
  });

  it('a watched connection that is not a replica is a ConfigError naming it, at run start and at the gate', async () => {
    const notReplica = probed('replica1', threads(1), { replica: false });
    const fine = probed('replica2', threads(1), { replica: true, seconds: 0, measure: 'replay lag' });
    const all = sides(fine.database, fine.database, { replica1: notReplica.database, replica2: fine.database });
    await expect(checkReplicas(settings, all)).rejects.toThrow(ConfigError);
    await expect(checkReplicas(settings, all)).rejects.toThrow(
      "pipelines.p.reconcile.maxReplicaLag.replicas: connection 'replica1' is not a replica (its server reports no replication)",
    );
    await expect(throttleReason(settings, all, true, 0)).rejects.toThrow(/connection 'replica1' is not a replica/);
  });
});

describe('throttleWaitMs', () => {
  it('waits 0.5 s, then doubles up to MAX_WAIT_MS', () => {
    expect([1, 2, 3, 4, 5, 6, 20].map(throttleWaitMs)).toEqual([500, 1000, 2000, 4000, MAX_WAIT_MS, MAX_WAIT_MS, MAX_WAIT_MS]);
  });
});
