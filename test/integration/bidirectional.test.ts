/**
 * Bidirectional pipelines on real servers, MariaDB<->MariaDB, MariaDB<->PostgreSQL and
 * PostgreSQL<->PostgreSQL (`conflict: timestamp`): the first run records the baseline and sends
 * one-sided rows across while rows without history go by the policy; later runs send inserts, updates
 * and deletes of either side across without resurrecting deleted rows; rows changed on both sides
 * are conflicts decided by the newer timestamp (a tie to side A, update against delete keeps the
 * row) and logged in side B's rowsync_conflicts; with CDC on both sides, changes flow both ways in
 * real time, concurrent edits of one row end equal as the policy decides, and rowsync's own writes
 * (echoes) stop once the users stop, and Redis losing its keys mid-stream loses nothing. `priority` and
 * `merge` on MariaDB <-> PostgreSQL end to end.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CdcBatchResult } from '../../jobs/cdc-batch.job.js';
import type { TableReport } from '../../src/reconcile/report.js';
import { EMPTY_BIDIRECTIONAL_RESULT } from '../../src/sync/bidirectional-result.js';
import type { TablePair } from '../../src/dialect/table-pair.js';
import type { Engine } from '../../src/dialect/types.js';
import { cdcStreams, changeSourceOf, startCdcReaders, type RunningReaders } from '../../workers/cdc-readers.js';
import { until, waitForEqual } from '../support/cdc-fixture.js';
import { createHarness, type Harness } from '../support/harness.js';
import { deleteRedisPrefix } from '../support/scratch.js';

const PAIRS: [Engine, Engine][] = [
  ['mysql', 'mysql'],
  ['mysql', 'postgres'],
  ['postgres', 'postgres'],
];

const DDL: Record<Engine, string> = {
  mysql: 'CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB',
  postgres: 'CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT NOT NULL, updated_at TIMESTAMP(6) NOT NULL)',
};

const at = (second: number) => `2026-12-01 10:00:${String(second).padStart(2, '0')}.000000`;
const row = (id: number, qty = id, second = 0) => `(${id}, 'item ${id}', ${qty}, '${at(second)}')`;

describe.each(PAIRS)('bidirectional %s <-> %s', (engineA, engineB) => {
  let harness: Harness;
  let pair: TablePair;
  const tag = `bidi_${engineA.slice(0, 2)}${engineB.slice(0, 2)}`;

  async function run(): Promise<TableReport> {
    const outcome = await harness.run();
    if (outcome.kind !== 'completed') throw new Error(`run ended ${JSON.stringify(outcome)}`);
    expect(outcome.report.tables[0]!.errors).toEqual([]);
    return outcome.report.tables[0]!;
  }
  const qtyOn = async (side: 'a' | 'b', id: number) => {
    const [found] = await (side === 'a' ? harness.source : harness.target).fetchByKeys(side === 'a' ? pair.source : pair.target, [[id]]);
    return found ? Number(found[2]) : undefined;
  };

  beforeAll(async () => {
    harness = await createHarness({
      tag,
      sourceEngine: engineA,
      targetEngine: engineB,
      tables: ['items'],
      reconcile: { chunkSize: 50 },
      pipeline: {
        mode: 'bidirectional',
        conflict: 'timestamp',
        // The periodic runs below recorded the baseline: no initial reconcile, every write counted comes from the streams.
        cdc: { batchWindowMs: 20, heartbeatMs: 500, attempts: 3, backoffMs: 100, initialReconcile: false, serverId: 200_000 + randomBytes(3).readUIntBE(0, 3) },
      },
    });
    await harness.source.execute(DDL[engineA]);
    await harness.target.execute(DDL[engineB]);
    const common = Array.from({ length: 100 }, (_, index) => row(index + 1)).filter((_, index) => index + 1 !== 50);
    await harness.source.execute(`INSERT INTO items VALUES ${[...common, row(50, 1, 1), row(101), row(102)].join(', ')}`);
    await harness.target.execute(`INSERT INTO items VALUES ${[...common, row(50, 2, 2), row(201)].join(', ')}`);
    await harness.startWorkers();
    pair = (await harness.runtime.tableContext('p', 'items', 'dst')).pair;
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('the first run sends one-sided rows across, decides rows without history by the policy, records the baseline', async () => {
    const table = await run();
    expect(table.bidirectional).toMatchObject({ changedOnA: 2, changedOnB: 1, deletedOnA: 0, deletedOnB: 0, conflicts: { b_won: 1 } });
    await waitForEqual(harness.source, harness.target, pair, 5000);
    expect(await qtyOn('a', 50)).toBe(2);
    const state = harness.runtime.syncState('dst');
    expect(await state.hasBaseline('p', 'items')).toBe(true);
    // 99 common rows, 50, 101 and 102 from A, 201 from B.
    expect(await state.count('p', 'items')).toBe(103);
  });

  it('inserts, updates and deletes made on either side go across; a deleted row does not come back', async () => {
    await harness.source.execute(`UPDATE items SET qty = 1010, updated_at = '${at(10)}' WHERE id = 10`);
    await harness.source.execute('DELETE FROM items WHERE id = 11');
    await harness.source.execute(`INSERT INTO items VALUES ${row(300)}`);
    await harness.target.execute(`UPDATE items SET qty = 2020, updated_at = '${at(10)}' WHERE id = 20`);
    await harness.target.execute('DELETE FROM items WHERE id = 21');
    await harness.target.execute(`INSERT INTO items VALUES ${row(400)}`);
    const table = await run();
    expect(table.bidirectional).toMatchObject({ changedOnA: 2, changedOnB: 2, deletedOnA: 1, deletedOnB: 1, conflicts: {} });
    await waitForEqual(harness.source, harness.target, pair, 5000);
    expect([await qtyOn('a', 11), await qtyOn('b', 11), await qtyOn('a', 21), await qtyOn('b', 21)]).toEqual([undefined, undefined, undefined, undefined]);
    expect([await qtyOn('b', 10), await qtyOn('a', 20), await qtyOn('a', 400), await qtyOn('b', 300)]).toEqual([1010, 2020, 400, 300]);
    // Nothing left to do: a second run changes nothing.
    expect((await run()).bidirectional ?? EMPTY_BIDIRECTIONAL_RESULT).toMatchObject({ changedOnA: 0, changedOnB: 0, deletedOnA: 0, deletedOnB: 0 });
  });

  it('rows changed on both sides are conflicts: the newer wins, a tie goes to side A, an update beats a delete; all are logged', async () => {
    await harness.source.execute(`UPDATE items SET qty = 3001, updated_at = '${at(30)}' WHERE id = 30`);
    await harness.target.execute(`UPDATE items SET qty = 3002, updated_at = '${at(20)}' WHERE id = 30`);
    await harness.source.execute(`UPDATE items SET qty = 3101, updated_at = '${at(20)}' WHERE id = 31`);
    await harness.target.execute(`UPDATE items SET qty = 3102, updated_at = '${at(30)}' WHERE id = 31`);
    await harness.source.execute(`UPDATE items SET qty = 3201, updated_at = '${at(25)}' WHERE id = 32`);
    await harness.target.execute(`UPDATE items SET qty = 3202, updated_at = '${at(25)}' WHERE id = 32`);
    await harness.source.execute(`UPDATE items SET qty = 3301 WHERE id = 33`);
    await harness.target.execute('DELETE FROM items WHERE id = 33');
    const table = await run();
    expect(table.bidirectional!.conflicts).toEqual({ a_won: 3, b_won: 1 });
    await waitForEqual(harness.source, harness.target, pair, 5000);
    expect([await qtyOn('b', 30), await qtyOn('a', 31), await qtyOn('b', 32), await qtyOn('b', 33)]).toEqual([3001, 3102, 3201, 3301]);
    const logged = await harness.target.execute("SELECT kind, policy, outcome FROM rowsync_conflicts WHERE pipeline = 'p' ORDER BY detected_at, kind");
    expect(logged.map((entry) => `${String(entry.kind)}/${String(entry.policy)}/${String(entry.outcome)}`).sort()).toEqual([
      'insert-insert/timestamp/b_won',
      'update-delete/timestamp/a_won',
      'update-update/timestamp/a_won',
      'update-update/timestamp/a_won',
      'update-update/timestamp/b_won',
    ]);
  });

  it('with CDC on both sides, changes flow both ways in real time and the echoes of rowsync\'s own writes stop', async () => {
    for (const stream of cdcStreams(harness.runtime.pipeline('p'))) await (await changeSourceOf(harness.runtime, stream)).setup();
    const readers: RunningReaders = await startCdcReaders(harness.runtime);
    try {
      await until(async () => (await harness.source.readCheckpoint('p', 'dst')) !== undefined && (await harness.target.readCheckpoint('p', 'src')) !== undefined, 'both streams');
      await harness.source.execute(`UPDATE items SET qty = 5001, updated_at = '${at(50)}' WHERE id = 5`);
      await harness.target.execute(`UPDATE items SET qty = 6002, updated_at = '${at(50)}' WHERE id = 6`);
      await harness.source.execute(`INSERT INTO items VALUES ${row(500)}`);
      await harness.target.execute('DELETE FROM items WHERE id = 7');
      // The same row edited on both sides at once: the newer (B's) must win on both.
      await Promise.all([
        harness.source.execute(`UPDATE items SET qty = 8001, updated_at = '${at(41)}' WHERE id = 8`),
        harness.target.execute(`UPDATE items SET qty = 8002, updated_at = '${at(42)}' WHERE id = 8`),
      ]);
      await waitForEqual(harness.source, harness.target, pair, 30_000);
      expect([await qtyOn('b', 5), await qtyOn('a', 6), await qtyOn('b', 500), await qtyOn('a', 7), await qtyOn('a', 8), await qtyOn('b', 8)]).toEqual([
        5001, 6002, 500, undefined, 8002, 8002,
      ]);
      // Echoes: every change comes back through the other side's stream; once the users stop, the
      // writes rowsync makes stop too (the count no longer moves).
      const writes = async () => {
        const jobs = await harness.runtime.queues.cdc.getJobs(['completed'], 0, -1);
        return jobs.reduce((total, job) => {
          const result = job.returnvalue as CdcBatchResult | null;
          return total + (result?.bidirectional?.writtenToA ?? 0) + (result?.bidirectional?.writtenToB ?? 0);
        }, 0);
      };
      // Settled: no batch queued or running, and the count stays put for 1.5 s.
      const idle = async () => {
        const counts = await harness.runtime.queues.cdc.getJobCounts('active', 'waiting', 'delayed', 'prioritized');
        return Object.values(counts).every((count) => count === 0);
      };
      const settled = await until(async () => {
        if (!(await idle())) return undefined;
        const first = await writes();
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return (await idle()) && first === (await writes()) ? first : undefined;
      }, 'writes to stop');
      const completed = (await harness.runtime.queues.cdc.getJobs(['completed'], 0, -1)).length;
      expect(settled, `${completed} completed batch jobs`).toBeGreaterThanOrEqual(5);
      expect(settled).toBeLessThanOrEqual(10);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(await writes()).toBe(settled);

      // Redis loses everything mid-stream (queued batches, locks): both sides still converge.
      await harness.source.execute(`UPDATE items SET qty = 9001, updated_at = '${at(55)}' WHERE id = 9`);
      await harness.target.execute(`UPDATE items SET qty = 9102, updated_at = '${at(55)}' WHERE id = 12`);
      await deleteRedisPrefix(harness.config.redis.prefix);
      await harness.source.execute(`INSERT INTO items VALUES ${row(600)}`);
      await harness.target.execute('DELETE FROM items WHERE id = 13');
      await waitForEqual(harness.source, harness.target, pair, 60_000);
      expect([await qtyOn('b', 9), await qtyOn('a', 12), await qtyOn('b', 600), await qtyOn('a', 13)]).toEqual([9001, 9102, 600, undefined]);
    } finally {
      await readers.stop();
      for (const stream of cdcStreams(harness.runtime.pipeline('p'))) await (await changeSourceOf(harness.runtime, stream)).teardown().catch(() => undefined);
    }
  });
});

/** The other policies on real servers (their decisions are unit-tested; this shows the wiring end to end). */
describe.each([
  ['priority', { conflict: 'priority', priority: 'dst' }],
  ['merge', { conflict: 'merge' }],
] as const)('bidirectional mysql <-> postgres, conflict %s', (policy, settings) => {
  let harness: Harness;
  let pair: TablePair;

  beforeAll(async () => {
    harness = await createHarness({
      tag: `bidi_${policy.slice(0, 4)}`,
      sourceEngine: 'mysql',
      targetEngine: 'postgres',
      tables: ['items'],
      pipeline: { mode: 'bidirectional', ...settings },
    });
    await harness.source.execute(DDL.mysql);
    await harness.target.execute(DDL.postgres);
    const rows = Array.from({ length: 10 }, (_, index) => row(index + 1)).join(', ');
    await harness.source.execute(`INSERT INTO items VALUES ${rows}`);
    await harness.target.execute(`INSERT INTO items VALUES ${rows}`);
    await harness.startWorkers();
    pair = (await harness.runtime.tableContext('p', 'items', 'dst')).pair;
    const baseline = await harness.run();
    expect(baseline.kind).toBe('completed');
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('decides rows changed on both sides by the policy, on both sides', async () => {
    // Row 1: both sides changed it (A newer). Row 2: A changed, B deleted it.
    await harness.source.execute(`UPDATE items SET name = 'A', qty = 101, updated_at = '${at(9)}' WHERE id = 1`);
    await harness.target.execute(`UPDATE items SET name = 'B', updated_at = '${at(8)}' WHERE id = 1`);
    await harness.source.execute(`UPDATE items SET qty = 202 WHERE id = 2`);
    await harness.target.execute('DELETE FROM items WHERE id = 2');
    const outcome = await harness.run();
    if (outcome.kind !== 'completed') throw new Error(JSON.stringify(outcome));
    await waitForEqual(harness.source, harness.target, pair, 5000);
    const [one] = await harness.target.fetchByKeys(pair.target, [[1]]);
    const two = await harness.target.fetchByKeys(pair.target, [[2]]);
    if (policy === 'priority') {
      // B has priority: its row 1 wins although A's is newer, and its delete of row 2 wins too.
      expect([one?.[1], one?.[2], two.length]).toEqual(['B', 1, 0]);
      expect(outcome.report.tables[0]!.bidirectional!.conflicts).toEqual({ b_won: 2 });
    } else {
      // A's non-null values over B's (here: all of A's), and update against delete keeps the row.
      expect([one?.[1], one?.[2], Number(two[0]?.[2])]).toEqual(['A', 101, 202]);
      expect(outcome.report.tables[0]!.bidirectional!.conflicts).toEqual({ merged: 1, a_won: 1 });
    }
  });
});
