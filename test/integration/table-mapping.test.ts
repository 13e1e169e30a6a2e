/**
 * Table entries shaped to real schemas, on real servers for every engine pair: a table with another
 * name on the target (`targetName`) or in another schema/database (`targetSchema`), a row filter
 * (`where`: only matching rows compared and written, rows outside it never deleted), columns left
 * out (`excludeColumns`: a target-only audit column, a `last_seen` differing by design), the errors
 * that name a bad filter or a bad column before anything is written, and CDC applying changes to the
 * mapped, filtered table.
 */
import { randomBytes } from 'node:crypto';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CdcBatchPayload } from '../../jobs/cdc-batch.job.js';
import { shapeOf } from '../../src/dialect/table-pair.js';
import type { RunReport, TableReport } from '../../src/reconcile/report.js';
import type { Database } from '../../src/dialect/dialect.js';
import type { Engine, Row, TableShape } from '../../src/dialect/types.js';
import type { ChangeSource } from '../../src/dialect/change-source.js';
import { cdcStreams, changeSourceOf, startCdcReaders, type RunningReaders } from '../../workers/cdc-readers.js';
import { openSession, until, type Session } from '../support/cdc-fixture.js';
import { createHarness, type Harness } from '../support/harness.js';
import { dropScratch, ENGINE_PAIRS, executeFor, openScratch } from '../support/scratch.js';

function completed(outcome: Awaited<ReturnType<Harness['run']>>): RunReport {
  if (outcome.kind !== 'completed') throw new Error(`run ${outcome.runId} ended ${JSON.stringify(outcome)}`);
  return outcome.report;
}
const table = (report: RunReport, name: string): TableReport => {
  const found = report.tables.find((entry) => entry.table === name);
  if (!found) throw new Error(`no table ${name} in ${JSON.stringify(report)}`);
  return found;
};

/** Source `orders` and target `orders_2024`: the target has an audit column of its own. */
const ORDERS: Record<Engine, { source: string; target: string }> = {
  mysql: {
    source: 'CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, region VARCHAR(10) NOT NULL, amount INT NOT NULL, last_seen VARCHAR(40) NULL, note VARCHAR(40) NULL)',
    target:
      'CREATE TABLE orders_2024 (id INT NOT NULL PRIMARY KEY, region VARCHAR(10) NOT NULL, amount INT NOT NULL, last_seen VARCHAR(40) NULL, ' +
      'note VARCHAR(40) NULL, audit VARCHAR(40) NULL)',
  },
  postgres: {
    source: 'CREATE TABLE orders (id integer PRIMARY KEY, region varchar(10) NOT NULL, amount integer NOT NULL, last_seen varchar(40) NULL, note varchar(40) NULL)',
    target:
      'CREATE TABLE orders_2024 (id integer PRIMARY KEY, region varchar(10) NOT NULL, amount integer NOT NULL, last_seen varchar(40) NULL, ' +
      'note varchar(40) NULL, audit varchar(40) NULL)',
  },
};

const SIMPLE = (name: string, extra = '') => `CREATE TABLE ${name} (id INTEGER NOT NULL PRIMARY KEY, label VARCHAR(20) NOT NULL${extra})`;

/** One target row: id, region, amount, last_seen, note, audit. */
type TargetRow = [number, string, number, string | null, string | null, string | null];

const sourceRow = (id: number): [number, string, number, string, string] => [id, id % 2 === 0 ? 'eu' : 'us', id * 10, `src-${id}`, `n${id}`];

const values = (rows: readonly (readonly (string | number | null)[])[]) =>
  rows.map((row) => `(${row.map((value) => (value === null ? 'NULL' : typeof value === 'number' ? String(value) : `'${value}'`)).join(', ')})`).join(', ');

async function targetRows(target: Database, ids: readonly number[]): Promise<Map<number, TargetRow>> {
  const rows = await target.execute(`SELECT id, region, amount, last_seen, note, audit FROM orders_2024 WHERE id IN (${ids.join(', ')})`);
  return new Map(
    rows.map((row) => [Number(row.id), [Number(row.id), String(row.region), Number(row.amount), row.last_seen as string | null, row.note as string | null, row.audit as string | null]]),
  );
}

describe.each(ENGINE_PAIRS)('table entries %s -> %s', (sourceEngine, targetEngine) => {
  let harness: Harness;
  const tag = `tmap_${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;
  const elsewhere = `${tag}_alt`;
  let alt: Database;

  beforeAll(async () => {
    harness = await createHarness({
      tag,
      sourceEngine,
      targetEngine,
      // Fixed chunks of 7 rows: the filter is applied across several chunk bounds.
      reconcile: { chunkSize: 7 },
      pipeline: {
        tables: [
          { name: 'orders', targetName: 'orders_2024', where: "region = 'eu'", excludeColumns: ['last_seen', 'audit'] },
          { name: 'widgets', where: 'no_such_column = 1' },
          // Valid on the source; the target lacks `flag` (left out of the comparison), so there it is not.
          { name: 'gadgets', where: 'flag = 1', excludeColumns: ['flag'] },
          { name: 'keyed', excludeColumns: ['id'] },
          { name: 'unknown_column', excludeColumns: ['nope'] },
          { name: 'moved', targetSchema: elsewhere },
        ],
      },
    });
    await harness.source.execute(ORDERS[sourceEngine].source);
    await harness.target.execute(ORDERS[targetEngine].target);
    const ids = Array.from({ length: 40 }, (_, index) => index + 1);
    await harness.source.execute(`INSERT INTO orders VALUES ${values(ids.map(sourceRow))}`);
    // The target: a copy with its own last_seen and audit values, then drift inside and outside the filter.
    const copy = ids.filter((id) => id !== 4).map((id): TargetRow => {
      const [, region, amount, , note] = sourceRow(id);
      return [id, region, amount, `dst-${id}`, note, `audit-${id}`];
    });
    await harness.target.execute(`INSERT INTO orders_2024 VALUES ${values(copy)}`);
    await harness.target.execute('UPDATE orders_2024 SET amount = 999 WHERE id IN (2, 3)'); // 2: eu, changed; 3: us, outside
    await harness.target.execute("UPDATE orders_2024 SET region = 'us' WHERE id = 6"); // eu on the source only
    await harness.target.execute("UPDATE orders_2024 SET region = 'eu' WHERE id = 7"); // eu on the target only
    await harness.target.execute(`INSERT INTO orders_2024 VALUES ${values([[1000, 'eu', 1, null, null, 'x'], [1001, 'us', 1, null, null, 'y']])}`);

    for (const name of ['widgets', 'keyed', 'unknown_column']) {
      await harness.source.execute(SIMPLE(name));
      await harness.target.execute(SIMPLE(name));
      await harness.source.execute(`INSERT INTO ${name} VALUES (1, 'source')`);
      await harness.target.execute(`INSERT INTO ${name} VALUES (1, 'target')`);
    }
    await harness.source.execute(SIMPLE('gadgets', ', flag INTEGER NOT NULL'));
    await harness.target.execute(SIMPLE('gadgets'));
    await harness.source.execute("INSERT INTO gadgets VALUES (1, 'source', 1)");
    await harness.target.execute("INSERT INTO gadgets VALUES (1, 'target')");
    // `moved` lives in another schema (PostgreSQL) / database (MariaDB) of the target server.
    alt = await openScratch(targetEngine, elsewhere, 'alt');
    await harness.source.execute(SIMPLE('moved'));
    await alt.execute(SIMPLE('moved'));
    await harness.source.execute("INSERT INTO moved VALUES (1, 'one'), (2, 'two')");
    await alt.execute("INSERT INTO moved VALUES (2, 'stale'), (3, 'extra')");
    await harness.startWorkers();
  });

  afterAll(async () => {
    await harness?.close();
    await alt?.close();
    await dropScratch(targetEngine, elsewhere);
  });

  it('a dry run reports the filtered drift of the renamed table, excluded columns ignored, and writes nothing', async () => {
    const before = await targetRows(harness.target, [2, 3, 4, 6, 7, 1000, 1001]);
    const report = completed(await harness.run({ dryRun: true, tables: ['orders'] }));
    expect(table(report, 'orders')).toMatchObject({
      sourceRows: 20, targetRows: 20, missing: 2, extra: 2, changed: 1, inserted: 2, updated: 1, deleted: 1, errors: [],
    });
    expect(await targetRows(harness.target, [2, 3, 4, 6, 7, 1000, 1001])).toEqual(before);
  });

  it('writes only rows matching the filter to the target name, never deletes rows outside it, leaves excluded columns alone', async () => {
    const report = completed(await harness.run({ tables: ['orders'] }));
    expect(table(report, 'orders')).toMatchObject({
      table: 'orders', target: 'dst', sourceRows: 20, targetRows: 20, missing: 2, extra: 2, changed: 1, inserted: 2, updated: 1, deleted: 1, errors: [],
    });
    const rows = await targetRows(harness.target, [2, 3, 4, 6, 7, 1000, 1001]);
    // Changed inside the filter: repaired; its own last_seen and audit kept.
    expect(rows.get(2)).toEqual([2, 'eu', 20, 'dst-2', 'n2', 'audit-2']);
    // Missing: inserted without the excluded columns.
    expect(rows.get(4)).toEqual([4, 'eu', 40, null, 'n4', null]);
    // The source row matches, the target's did not: replaced by the source's.
    expect(rows.get(6)).toEqual([6, 'eu', 60, 'dst-6', 'n6', 'audit-6']);
    // Outside the filter on the source (us): neither written nor deleted, on either side of the filter.
    expect(rows.get(3)).toEqual([3, 'us', 999, 'dst-3', 'n3', 'audit-3']);
    expect(rows.get(7)).toEqual([7, 'eu', 70, 'dst-7', 'n7', 'audit-7']);
    expect(rows.get(1001)).toEqual([1001, 'us', 1, null, null, 'y']);
    // Inside the filter on the target, no such key on the source: deleted.
    expect(rows.has(1000)).toBe(false);
    // Nothing was created under the source's name on the target.
    await expect(harness.target.describeTable('orders')).rejects.toThrow(/not found/);
  });

  it('a second run finds only the row the filter keeps apart (eu on the target, us on the source) and leaves it', async () => {
    const report = completed(await harness.run({ tables: ['orders'] }));
    expect(table(report, 'orders')).toMatchObject({ missing: 0, extra: 1, changed: 0, inserted: 0, updated: 0, deleted: 0, errors: [] });
    expect((await targetRows(harness.target, [7])).get(7)).toEqual([7, 'eu', 70, 'dst-7', 'n7', 'audit-7']);
  });

  it('a filter the source refuses fails the table before any write, naming the table and the filter', async () => {
    const report = completed(await harness.run({ tables: ['widgets'] }));
    expect(table(report, 'widgets').errors).toEqual([expect.stringMatching(/table widgets on connection src: the filter \(no_such_column = 1\) is not a valid condition/)]);
    expect(await harness.target.execute('SELECT label FROM widgets')).toEqual([{ label: 'target' }]);
  });

  it('a filter only the target refuses fails the table too, naming the target connection', async () => {
    const report = completed(await harness.run({ tables: ['gadgets'] }));
    expect(table(report, 'gadgets').errors).toEqual([expect.stringMatching(/table gadgets on connection dst: the filter \(flag = 1\) is not a valid condition/)]);
    expect(await harness.target.execute('SELECT label FROM gadgets')).toEqual([{ label: 'target' }]);
  });

  it('excludeColumns naming a key column or no column at all fails the table, naming the column', async () => {
    const report = completed(await harness.run({ tables: ['keyed', 'unknown_column'] }));
    expect(table(report, 'keyed').errors).toEqual([expect.stringMatching(/excludeColumns of table keyed: id is a primary key column/)]);
    expect(table(report, 'unknown_column').errors).toEqual([expect.stringMatching(/excludeColumns of table unknown_column: no column nope on src\.unknown_column/)]);
    expect(await harness.target.execute('SELECT label FROM keyed')).toEqual([{ label: 'target' }]);
  });

  it('targetSchema: the table is compared and written in another schema/database of the target server', async () => {
    const report = completed(await harness.run({ tables: ['moved'] }));
    expect(table(report, 'moved')).toMatchObject({ missing: 1, extra: 1, changed: 1, inserted: 1, updated: 1, deleted: 1, errors: [] });
    const rows = await alt.execute('SELECT id, label FROM moved ORDER BY id');
    expect(rows.map((row) => [Number(row.id), row.label])).toEqual([[1, 'one'], [2, 'two']]);
  });
});

/** CDC items: the target's copy is named items_copy and keeps a `seen` column of its own. */
const ITEMS: Record<Engine, { source: string; target: string }> = {
  mysql: {
    source: 'CREATE TABLE items (id INT NOT NULL PRIMARY KEY, region VARCHAR(10) NOT NULL, qty INT NOT NULL, seen VARCHAR(20) NULL) ENGINE=InnoDB',
    target: 'CREATE TABLE items_copy (id INT NOT NULL PRIMARY KEY, region VARCHAR(10) NOT NULL, qty INT NOT NULL, seen VARCHAR(20) NULL) ENGINE=InnoDB',
  },
  postgres: {
    source: 'CREATE TABLE items (id integer PRIMARY KEY, region varchar(10) NOT NULL, qty integer NOT NULL, seen varchar(20) NULL)',
    target: 'CREATE TABLE items_copy (id integer PRIMARY KEY, region varchar(10) NOT NULL, qty integer NOT NULL, seen varchar(20) NULL)',
  },
};

describe.each(ENGINE_PAIRS)('cdc into a mapped, filtered table %s -> %s', (sourceEngine, targetEngine) => {
  let harness: Harness;
  let source: ChangeSource;
  let readers: RunningReaders;
  let session: Session;
  const tag = `tmcdc_${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;
  let copyShape: TableShape;
  const copy = async (id: number): Promise<Row | undefined> => (await harness.target.fetchByKeys(copyShape, [[id]]))[0];
  /** CDC batch jobs done that carried a change of `id`: proof that a change was synced, not just not yet seen. */
  const syncedChangesOf = async (id: number) =>
    ((await harness.runtime.queues.cdc.getJobs(['completed'])) as Job<CdcBatchPayload>[]).filter((job) =>
      job.data.tables.some(([name, keys]) => name === 'items' && keys.some((key) => Number(key[0]) === id)),
    ).length;

  beforeAll(async () => {
    harness = await createHarness({
      tag,
      sourceEngine,
      targetEngine,
      pipeline: {
        tables: [{ name: 'items', targetName: 'items_copy', where: "region = 'eu'", excludeColumns: ['seen'] }],
        cdc: { batchWindowMs: 20, heartbeatMs: 500, attempts: 2, backoffMs: 100, serverId: 100_000 + randomBytes(3).readUIntBE(0, 3) },
      },
    });
    await executeFor(harness.source, { mysql: [ITEMS.mysql.source], postgres: [ITEMS.postgres.source] });
    await executeFor(harness.target, { mysql: [ITEMS.mysql.target], postgres: [ITEMS.postgres.target] });
    copyShape = shapeOf(harness.target, await harness.target.describeTable('items_copy'));
    // Before CDC starts: the initial reconcile copies the eu rows only.
    await harness.source.execute("INSERT INTO items VALUES (1, 'eu', 1, 'a'), (2, 'us', 2, 'b')");
    source = await changeSourceOf(harness.runtime, harness.runtime.pipeline('p'));
    await source.setup();
    await harness.startWorkers();
    readers = await startCdcReaders(harness.runtime);
    session = await openSession(sourceEngine, `${tag}_src`);
  });

  afterAll(async () => {
    await readers?.stop();
    await session?.close();
    await source?.teardown().catch(() => undefined);
    await harness?.close();
  });

  it('applies changes of matching rows to the target name, leaves excluded columns and rows outside the filter', async () => {
    await until(async () => (await copy(1)) !== undefined, 'the initial reconcile of row 1');
    expect(await copy(2)).toBeUndefined();
    await session.run("INSERT INTO items VALUES (3, 'eu', 3, 'c'), (4, 'us', 4, 'd')");
    await session.run("UPDATE items SET qty = 10, seen = 'changed' WHERE id = 1");
    await session.run("UPDATE items SET region = 'eu' WHERE id = 2"); // enters the filter: written
    await until(async () => {
      const [one, two, three] = [await copy(1), await copy(2), await copy(3)];
      return one?.[2] === 10 && two !== undefined && three !== undefined;
    }, 'rows 1, 2 and 3 at items_copy');
    expect(await copy(1)).toEqual([1, 'eu', 10, null]);
    expect(await copy(2)).toEqual([2, 'eu', 2, null]);
    expect(await copy(4)).toBeUndefined();

    const changesOfOne = await syncedChangesOf(1);
    await session.run('DELETE FROM items WHERE id = 3'); // gone at the source: deleted
    await session.run("UPDATE items SET region = 'us', qty = 11 WHERE id = 1"); // leaves the filter: left as it was
    await until(async () => (await copy(3)) === undefined, 'row 3 deleted');
    await until(async () => (await syncedChangesOf(1)) > changesOfOne, 'the change of row 1 synced');
    expect(await copy(1)).toEqual([1, 'eu', 10, null]);
    await expect(harness.target.describeTable('items')).rejects.toThrow(/not found/);
  });
});

/** Bidirectional: side B names the table items_b and keeps a `note` of its own on both sides. */
const BIDI: Record<Engine, (name: string) => string> = {
  mysql: (name) => `CREATE TABLE ${name} (id INT NOT NULL PRIMARY KEY, qty INT NOT NULL, updated_at DATETIME(6) NOT NULL, note VARCHAR(20) NULL) ENGINE=InnoDB`,
  postgres: (name) => `CREATE TABLE ${name} (id INT NOT NULL PRIMARY KEY, qty INT NOT NULL, updated_at TIMESTAMP(6) NOT NULL, note VARCHAR(20) NULL)`,
};

describe.each([['mysql', 'postgres'], ['postgres', 'postgres']] as [Engine, Engine][])('bidirectional with a renamed table %s <-> %s', (engineA, engineB) => {
  let harness: Harness;
  const tag = `tmbidi_${engineA.slice(0, 2)}${engineB.slice(0, 2)}`;
  const at = (second: number) => `2026-12-01 10:00:${String(second).padStart(2, '0')}.000000`;
  const qtyOn = async (side: 'a' | 'b', id: number) => {
    const rows = side === 'a'
      ? await harness.source.execute(`SELECT qty, note FROM items WHERE id = ${id}`)
      : await harness.target.execute(`SELECT qty, note FROM items_b WHERE id = ${id}`);
    return rows[0] ? [Number(rows[0].qty), rows[0].note] : undefined;
  };

  beforeAll(async () => {
    harness = await createHarness({
      tag,
      sourceEngine: engineA,
      targetEngine: engineB,
      pipeline: {
        mode: 'bidirectional',
        conflict: 'timestamp',
        tables: [{ name: 'items', targetName: 'items_b', excludeColumns: ['note'] }],
        cdc: { batchWindowMs: 20, heartbeatMs: 500, attempts: 3, backoffMs: 100, initialReconcile: false, serverId: 300_000 + randomBytes(3).readUIntBE(0, 3) },
      },
    });
    await harness.source.execute(BIDI[engineA]('items'));
    await harness.target.execute(BIDI[engineB]('items_b'));
    await harness.source.execute(`INSERT INTO items VALUES (1, 1, '${at(0)}', 'a-note'), (2, 2, '${at(0)}', 'a-note')`);
    await harness.target.execute(`INSERT INTO items_b VALUES (1, 1, '${at(0)}', 'b-note'), (3, 3, '${at(0)}', 'b-note')`);
    await harness.startWorkers();
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('reconciles both ways into items_b, then streams changes of either side to the other, notes untouched', async () => {
    const outcome = await harness.run();
    if (outcome.kind !== 'completed') throw new Error(JSON.stringify(outcome));
    expect(outcome.report.tables[0]).toMatchObject({ table: 'items', errors: [] });
    expect(outcome.report.tables[0]!.bidirectional).toMatchObject({ changedOnA: 1, changedOnB: 1 });
    expect([await qtyOn('b', 2), await qtyOn('a', 3), await qtyOn('a', 1), await qtyOn('b', 1)]).toEqual([[2, null], [3, null], [1, 'a-note'], [1, 'b-note']]);

    for (const stream of cdcStreams(harness.runtime.pipeline('p'))) await (await changeSourceOf(harness.runtime, stream)).setup();
    const bothReaders = await startCdcReaders(harness.runtime);
    try {
      await until(async () => (await harness.source.readCheckpoint('p', 'dst')) !== undefined && (await harness.target.readCheckpoint('p', 'src')) !== undefined, 'both streams');
      await harness.source.execute(`UPDATE items SET qty = 10, updated_at = '${at(10)}', note = 'a2' WHERE id = 1`);
      await harness.target.execute(`UPDATE items_b SET qty = 30, updated_at = '${at(10)}', note = 'b2' WHERE id = 3`);
      await harness.target.execute('DELETE FROM items_b WHERE id = 2');
      await until(async () => {
        const [b1, a3, a2] = [await qtyOn('b', 1), await qtyOn('a', 3), await qtyOn('a', 2)];
        return b1?.[0] === 10 && a3?.[0] === 30 && a2 === undefined;
      }, 'changes of both sides across');
      expect([await qtyOn('b', 1), await qtyOn('a', 3)]).toEqual([[10, 'b-note'], [30, null]]);
    } finally {
      await bothReaders.stop();
      for (const stream of cdcStreams(harness.runtime.pipeline('p'))) await (await changeSourceOf(harness.runtime, stream)).teardown().catch(() => undefined);
    }
  });
});
