/**
 * `reconcile.compare` other than checksum, for every engine pair: `field_by_field` finds and repairs
 * exactly the drift the checksum mode does; `timestamp` finds rows whose timestamp differs and, as
 * documented, misses a change that left the timestamp equal; a table without the timestamp column is
 * reported by name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../src/dialect/types.js';
import type { RunReport, TableReport } from '../../src/reconcile/report.js';
import { sameRow } from '../../src/sync/sync-keys.js';
import { createHarness, type Harness } from '../support/harness.js';
import { DRIFT, ORDER_COUNT, expectEqualTables, orderRow, seedOrders, type Tables } from '../support/orders-fixture.js';
import { ENGINE_PAIRS } from '../support/scratch.js';

function completed(outcome: Awaited<ReturnType<Harness['run']>>): RunReport {
  if (outcome.kind !== 'completed') throw new Error(`run ${outcome.runId} ended ${JSON.stringify(outcome)}`);
  return outcome.report;
}

const table = (report: RunReport, name: string): TableReport => {
  const found = report.tables.find((entry) => entry.table === name);
  if (!found) throw new Error(`no report for ${name}: ${JSON.stringify(report)}`);
  return found;
};

describe.each(ENGINE_PAIRS)('compare modes %s -> %s', (sourceEngine, targetEngine) => {
  const pairTag = `${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;

  describe('field_by_field', () => {
    const tag = `cmpm_${pairTag}_fbf`;
    let harness: Harness;
    let tables: Tables;

    beforeAll(async () => {
      harness = await createHarness({
        tag,
        sourceEngine,
        targetEngine,
        tables: ['orders', 'order_lines'],
        reconcile: { compare: 'field_by_field', chunkSize: 400 },
      });
      tables = await seedOrders(harness.source, harness.target);
      await harness.startWorkers();
    });

    afterAll(async () => {
      await harness?.close();
    });

    it('detects and repairs the same drift as checksum', async () => {
      // The counts reconcile.test.ts expects of the checksum mode on the same fixture.
      const report = completed(await harness.run());
      expect(table(report, 'orders')).toMatchObject({
        sourceRows: ORDER_COUNT, targetRows: ORDER_COUNT,
        missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length,
        inserted: DRIFT.missing.length, updated: DRIFT.changed.length, deleted: DRIFT.extra.length, conflicts: 0, errors: [],
      });
      expect(table(report, 'order_lines')).toMatchObject({ missing: 1, extra: 1, changed: 1, inserted: 1, updated: 1, deleted: 1 });
      expect(await expectEqualTables(harness.source, harness.target, tables.orders)).toEqual([]);
      expect(await expectEqualTables(harness.source, harness.target, tables.lines)).toEqual([]);

      const again = completed(await harness.run());
      for (const name of ['orders', 'order_lines']) {
        expect(table(again, name)).toMatchObject({ chunksDiffering: 0, missing: 0, extra: 0, changed: 0, inserted: 0, updated: 0, deleted: 0 });
      }
    });
  });

  describe('timestamp', () => {
    const tag = `cmpm_${pairTag}_ts`;
    let harness: Harness;
    let tables: Tables;
    // Rows whose target copy got another updated_at: 42 with other values too, 77 with only the time.
    const RETIMED = [42, 77] as const;
    const retimed = (id: number): Row => {
      const row = [...orderRow(id, id === 42 ? 1 : 0)];
      row[5] = '2025-01-02 03:04:05.000006';
      return row;
    };

    beforeAll(async () => {
      harness = await createHarness({
        tag,
        sourceEngine,
        targetEngine,
        tables: ['orders', 'order_lines'],
        reconcile: { compare: 'timestamp', chunkSize: 400 },
      });
      tables = await seedOrders(harness.source, harness.target);
      await harness.target.applyChanges(tables.orders.target, { upserts: RETIMED.map(retimed), deletes: [] });
      await harness.startWorkers();
    });

    afterAll(async () => {
      await harness?.close();
    });

    it('repairs rows whose timestamp differs and misses changes that kept the timestamp', async () => {
      const report = completed(await harness.run());
      expect(table(report, 'orders')).toMatchObject({
        sourceRows: ORDER_COUNT, targetRows: ORDER_COUNT,
        missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: RETIMED.length,
        inserted: DRIFT.missing.length, updated: RETIMED.length, deleted: DRIFT.extra.length, errors: [],
      });

      const shape = tables.orders.source;
      const keys = [...RETIMED, ...DRIFT.changed].map((id) => [id]);
      const byId = (rows: Row[]) => new Map(rows.map((row) => [Number(row[0]), row]));
      const target = byId(await harness.target.fetchByKeys(tables.orders.target, keys));
      // Synced in full, not only the timestamp column that was compared.
      for (const id of RETIMED) expect(sameRow(shape, target.get(id)!, orderRow(id)), `order ${id}`).toBe(true);
      // DRIFT.changed edited customer and amount but kept updated_at: unseen, left as they were.
      for (const id of DRIFT.changed) {
        expect(sameRow(shape, target.get(id)!, orderRow(id, 1)), `order ${id}`).toBe(true);
        expect(sameRow(shape, target.get(id)!, orderRow(id)), `order ${id}`).toBe(false);
      }

      // A second run still sees nothing, although the tables differ.
      const again = table(completed(await harness.run()), 'orders');
      expect(again).toMatchObject({ chunksDiffering: 0, missing: 0, extra: 0, changed: 0, updated: 0 });
      expect(await expectEqualTables(harness.source, harness.target, tables.orders)).not.toEqual([]);
    });

    it('reports a table without the timestamp column in its errors, naming the column', async () => {
      const report = completed(await harness.run({ dryRun: true }));
      const lines = table(report, 'order_lines');
      expect(lines.errors).toHaveLength(1);
      expect(lines.errors[0]).toMatch(/updated_at/);
      expect(lines.errors[0]).toMatch(/order_lines/);
      expect(lines).toMatchObject({ chunks: 0, inserted: 0, updated: 0, deleted: 0 });
    });
  });
});
