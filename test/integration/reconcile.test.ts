/**
 * A full reconcile run through BullMQ (run -> table -> chunk -> apply lanes) on real servers, for
 * every engine pair: exact detection of the injected drift, repair to row-by-row equality, a second
 * run finding nothing, a dry run writing nothing, a keyless table reported by name, and the key
 * leases: a chunk syncs its few differing keys itself, and when their leases stay taken hands them
 * to the lanes, whose jobs write nothing until the lease holder lets go.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApplyPayload } from '../../jobs/apply.job.js';
import { leaseIdsOf } from '../../src/sync/lanes.js';
import type { RunReport, TableReport } from '../../src/reconcile/report.js';
import { createHarness, type Harness } from '../support/harness.js';
import { DRIFT, ORDER_COUNT, expectEqualTables, injectDrift, orderRow, seedOrders, type Tables } from '../support/orders-fixture.js';
import { ENGINE_PAIRS } from '../support/scratch.js';

function completed(outcome: Awaited<ReturnType<Harness['run']>>): RunReport {
  if (outcome.kind !== 'completed') throw new Error(`run ${outcome.runId} ended ${JSON.stringify(outcome)}`);
  return outcome.report;
}

const table = (report: RunReport, name: string): TableReport => report.tables.find((entry) => entry.table === name)!;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(ENGINE_PAIRS)('reconcile %s -> %s', (sourceEngine, targetEngine) => {
  let harness: Harness;
  let tables: Tables;

  beforeAll(async () => {
    harness = await createHarness({
      tag: `rec_${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`,
      sourceEngine,
      targetEngine,
      tables: ['orders', 'order_lines', 'audit_log', 'no_such_table', 'widgets'],
      reconcile: { chunkSize: 400 },
    });
    tables = await seedOrders(harness.source, harness.target);
    // A schema mismatch: the target lacks a source column.
    await harness.source.execute('CREATE TABLE widgets (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(20), color VARCHAR(20))');
    await harness.source.execute("INSERT INTO widgets VALUES (1, 'gear', 'red')");
    await harness.target.execute('CREATE TABLE widgets (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(20))');
    await harness.startWorkers();
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('dry run reports exactly the drift and writes nothing', async () => {
    const before = await harness.target.checksumRange(tables.orders.target, {});
    const report = completed(await harness.run({ dryRun: true }));
    expect(report.dryRun).toBe(true);
    expect(table(report, 'orders')).toMatchObject({
      missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length,
      inserted: DRIFT.missing.length, updated: DRIFT.changed.length, deleted: DRIFT.extra.length,
    });
    expect(await harness.target.checksumRange(tables.orders.target, {})).toEqual(before);
  });

  it('detects exactly the injected drift and repairs it', async () => {
    const report = completed(await harness.run());
    // audit_log, no_such_table and widgets cannot be reconciled (see below); the rest was.
    expect(report.status).toBe('completed_with_errors');
    expect(report.pipeline).toBe('p');
    expect(table(report, 'orders')).toEqual({
      table: 'orders', target: 'dst',
      sourceRows: ORDER_COUNT, targetRows: ORDER_COUNT,
      chunks: Math.ceil(ORDER_COUNT / 400),
      chunksDiffering: expect.any(Number),
      missing: 3, extra: 3, changed: 5, inserted: 3, updated: 5, deleted: 3, conflicts: 0, errors: [],
    });
    expect(table(report, 'orders').chunksDiffering).toBeGreaterThanOrEqual(4);
    expect(table(report, 'order_lines')).toMatchObject({ missing: 1, extra: 1, changed: 1, inserted: 1, updated: 1, deleted: 1 });
    expect(await expectEqualTables(harness.source, harness.target, tables.orders)).toEqual([]);
    expect(await expectEqualTables(harness.source, harness.target, tables.lines)).toEqual([]);
  });

  it('a chunk with a few differing keys syncs them itself under their leases: no apply job', async () => {
    // One differing chunk, so no other chunk of the run holds a lease it needs (under load, chunks
    // that wait out INLINE_LEASE_WAIT_MS for each other hand their keys to the lanes, as they should).
    await harness.target.applyChanges(tables.orders.target, { upserts: [orderRow(7, 2), orderRow(8, 2)], deletes: [[9]] });
    const outcome = await harness.run();
    const report = completed(outcome);
    expect(table(report, 'orders')).toMatchObject({ chunksDiffering: 1, changed: 2, missing: 1, updated: 2, inserted: 1 });
    expect(await applyJobsOf(outcome.runId)).toEqual([]);
    expect(await expectEqualTables(harness.source, harness.target, tables.orders)).toEqual([]);
  });

  /** The apply jobs of a run, in every state. */
  async function applyJobsOf(runId: string): Promise<ApplyPayload[]> {
    const jobs = await Promise.all(
      harness.runtime.queues.apply.map((queue) => queue.getJobs(['completed', 'failed', 'active', 'waiting', 'delayed', 'prioritized'])),
    );
    return jobs.flat().map((job) => job.data as ApplyPayload).filter((data) => data.runId === runId);
  }

  it('while the leases of the differing keys are held elsewhere, the keys go to the lanes and nothing is written until they are freed', async () => {
    await injectDrift(harness.target, tables);
    const drifted = await harness.target.checksumRange(tables.orders.target, {});
    const driftKeys = [...DRIFT.changed, ...DRIFT.missing, ...DRIFT.extra].map((id) => [id]);
    const lease = (await harness.runtime.keyLeases.tryHold(leaseIdsOf(tables.orders.source, driftKeys)))!;
    expect(lease).toBeDefined();
    const runId = `p.leased-${sourceEngine}-${targetEngine}`;
    const outcome = harness.run({ runId });
    try {
      let waiting: ApplyPayload[] = [];
      for (let attempt = 0; attempt < 200 && waiting.length === 0; attempt += 1) {
        await sleep(50);
        waiting = await applyJobsOf(runId);
      }
      expect(waiting.length).toBeGreaterThan(0);
      // Leases are per key: order_lines' differing keys were synced by their chunks meanwhile.
      expect(waiting.every((payload) => payload.table === 'orders')).toBe(true);
      await sleep(300);
      expect(await harness.target.checksumRange(tables.orders.target, {})).toEqual(drifted);
    } finally {
      await lease.release();
    }
    const report = completed(await outcome);
    expect(table(report, 'orders')).toMatchObject({ missing: 3, extra: 3, changed: 5, inserted: 3, updated: 5, deleted: 3 });
    expect(await expectEqualTables(harness.source, harness.target, tables.orders)).toEqual([]);
    expect(await expectEqualTables(harness.source, harness.target, tables.lines)).toEqual([]);
  });

  it('reports a keyless or missing table by name and still does the others', async () => {
    const report = completed(await harness.run());
    expect(table(report, 'audit_log').errors.join()).toMatch(/audit_log.*primary key|primary key.*audit_log/i);
    expect(table(report, 'no_such_table').errors.join()).toMatch(/^missing on both sides: source: .*no_such_table.*src.*; target: .*no_such_table.*dst/);
    expect(table(report, 'widgets').errors.join()).toMatch(/widgets on dst has no column color/);
    // A table with an error still says how many rows the source has.
    expect(table(report, 'widgets')).toMatchObject({ sourceRows: 1, chunks: 0 });
    expect(table(report, 'no_such_table')).toMatchObject({ sourceRows: 0 });
    expect(report.status).toBe('completed_with_errors');
    expect(await harness.target.execute('SELECT * FROM widgets')).toEqual([]);
    // The previous run repaired everything: a second run finds nothing and writes nothing.
    for (const name of ['orders', 'order_lines']) {
      expect(table(report, name)).toMatchObject({ chunksDiffering: 0, missing: 0, extra: 0, changed: 0, inserted: 0, updated: 0, deleted: 0 });
    }
  });

  it('enqueuing the same run id twice runs it once', async () => {
    await injectDrift(harness.target, tables);
    const runId = `p.same-id-${sourceEngine}-${targetEngine}`;
    const [first, second] = await Promise.all([harness.run({ runId }), harness.run({ runId })]);
    expect(completed(first)).toEqual(completed(second));
    expect(table(completed(first), 'orders')).toMatchObject({ inserted: 3, updated: 5, deleted: 3 });
    expect(await expectEqualTables(harness.source, harness.target, tables.orders)).toEqual([]);
  });
});
