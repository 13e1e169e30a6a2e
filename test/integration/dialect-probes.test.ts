/**
 * The dialect methods behind load throttling and table entries, for both engines on real servers:
 * the load probe, the replica-lag probe on a server that is no replica, filter validation (a bad
 * filter is an INVALID_FILTER naming table, connection and filter; a smuggled second statement never
 * runs), a shape's filter applied to every read and to no write, and a table in another schema or
 * database. Filtered checksums agree across engines (every engine pair).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/dialect/dialect.js';
import { buildTablePair, shapeOf } from '../../src/dialect/table-pair.js';
import type { Engine, TableShape } from '../../src/dialect/types.js';
import { SchemaError } from '../../src/errors/index.js';
import { dropScratch, ENGINE_PAIRS, ENGINES, openScratch } from '../support/scratch.js';

const DDL: Record<Engine, string> = {
  mysql: 'CREATE TABLE t (id INT NOT NULL PRIMARY KEY, region VARCHAR(10) NOT NULL, qty INT NOT NULL)',
  postgres: 'CREATE TABLE t (id integer PRIMARY KEY, region varchar(10) NOT NULL, qty integer NOT NULL)',
};
const ROWS = Array.from({ length: 100 }, (_, index) => `(${index + 1}, '${index % 4 === 0 ? 'eu' : 'us'}', ${index})`).join(', ');
const EU_IDS = Array.from({ length: 25 }, (_, index) => index * 4 + 1);

describe.each(ENGINES)('dialect probes and filters on %s', (engine) => {
  let database: Database;
  let other: Database;
  let shape: TableShape;
  let eu: TableShape;
  const namespace = `dprobe_${engine.slice(0, 2)}`;
  const otherNamespace = `dprobe_${engine.slice(0, 2)}_other`;

  beforeAll(async () => {
    database = await openScratch(engine, namespace);
    other = await openScratch(engine, otherNamespace);
    await database.execute(DDL[engine]);
    await database.execute(`INSERT INTO t VALUES ${ROWS}`);
    await other.execute(DDL[engine]);
    await other.execute("INSERT INTO t VALUES (1, 'elsewhere', 1)");
    shape = shapeOf(database, await database.describeTable('t'));
    eu = { ...shape, filter: "region = 'eu'" };
  });

  afterAll(async () => {
    await database?.close();
    await other?.close();
    await dropScratch(engine, namespace);
    await dropScratch(engine, otherNamespace);
  });

  it('readLoad: the engine\'s measure, counting the probe\'s own session', async () => {
    const load = await database.readLoad();
    expect(load.measure).toBe(engine === 'mysql' ? 'Threads_running' : 'active backends');
    expect(load.value).toBeGreaterThanOrEqual(1);
  });

  it('readReplicaLag: a primary reads as no replica', async () => {
    expect(await database.readReplicaLag()).toEqual({ replica: false });
  });

  it('checkFilter accepts a valid condition and reads nothing', async () => {
    await expect(database.checkFilter(eu)).resolves.toBeUndefined();
    await expect(database.checkFilter(shape)).resolves.toBeUndefined();
  });

  it('checkFilter: a condition the server refuses is INVALID_FILTER naming table, connection and filter', async () => {
    const error = await database.checkFilter({ ...shape, filter: 'nope = 1' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SchemaError);
    expect(error).toMatchObject({ code: 'INVALID_FILTER', subject: `${namespace}.t` });
    expect((error as Error).message).toMatch(new RegExp(`^table t on connection ${namespace}: the filter \\(nope = 1\\) is not a valid condition here: .*nope`));
  });

  it('checkFilter: a filter carrying a second statement fails and the statement never runs', async () => {
    const error = await database.checkFilter({ ...shape, filter: '1 = 1; DROP TABLE t; SELECT 1 WHERE (1 = 1' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'INVALID_FILTER' });
    expect((await database.describeTable('t')).name).toBe('t');
  });

  it('a filtered shape: counts, key offsets, ranges, keys, hashes and checksums see only matching rows', async () => {
    expect(await database.countRange(eu, {})).toBe(25);
    expect(await database.countRange(eu, { lower: [10], upper: [30] })).toBe(EU_IDS.filter((id) => id >= 10 && id < 30).length);
    // Keyset pagination walks the matching rows: the 3rd matching row past the first.
    expect(await database.keyAtOffset(eu, {}, 3)).toEqual([EU_IDS[3]]);
    expect((await database.fetchRange(eu, {}, 1000)).map((row) => row[0])).toEqual(EU_IDS);
    expect((await database.fetchByKeys(eu, [[1], [2], [5]])).map((row) => row[0]).sort()).toEqual([1, 5]);
    expect((await database.rowHashes(eu, [{ upper: [10] }, { lower: [90] }], 100)).map((entry) => entry.key[0])).toEqual([1, 5, 9, 93, 97]);
    const filtered = await database.checksumRange(eu, {});
    expect(filtered.count).toBe(25);
    expect(filtered).not.toEqual(await database.checksumRange(shape, {}));
    const buckets = await database.checksumBuckets(eu, { lower: [1], upper: [101] }, 10);
    expect(buckets.reduce((total, bucket) => total + bucket.count, 0)).toBe(25);
  });

  it('writes ignore the filter: a key outside it is still upserted and deleted', async () => {
    await database.applyChanges(eu, { upserts: [[2, 'us', 1000]], deletes: [[3]] });
    expect((await database.fetchByKeys(shape, [[2], [3]])).map((row) => [row[0], row[2]])).toEqual([[2, 1000]]);
    await database.applyChanges(shape, { upserts: [[2, 'us', 1], [3, 'us', 2]], deletes: [] });
  });

  it('describeTable(table, schema) and a shape carrying it read and write that schema/database', async () => {
    const schema = await database.describeTable('t', otherNamespace);
    expect(schema).toMatchObject({ name: 't', schema: otherNamespace, primaryKey: ['id'] });
    const elsewhere = shapeOf(database, schema);
    expect(elsewhere.schema).toBe(otherNamespace);
    expect(await database.fetchRange(elsewhere, {}, 10)).toEqual([[1, 'elsewhere', 1]]);
    await database.applyChanges(elsewhere, { upserts: [[2, 'written', 2]], deletes: [[1]] });
    expect(await other.fetchRange(shapeOf(other, await other.describeTable('t')), {}, 10)).toEqual([[2, 'written', 2]]);
    // The connection's own table is untouched.
    expect(await database.countRange(shape, {})).toBe(100);
    await expect(database.describeTable('t', 'no_such_schema_here')).rejects.toMatchObject({ code: 'TABLE_NOT_FOUND' });
  });
});

describe.each(ENGINE_PAIRS)('filtered checksums agree %s -> %s', (sourceEngine, targetEngine) => {
  let source: Database;
  let target: Database;
  const tag = `dprobe_${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;

  beforeAll(async () => {
    source = await openScratch(sourceEngine, `${tag}_a`);
    target = await openScratch(targetEngine, `${tag}_b`);
    await source.execute(DDL[sourceEngine]);
    await target.execute(DDL[targetEngine]);
    await source.execute(`INSERT INTO t VALUES ${ROWS}`);
    // The target differs only outside the filter.
    await target.execute(`INSERT INTO t VALUES ${ROWS}`);
    await target.execute("UPDATE t SET qty = -1 WHERE region = 'us'");
  });

  afterAll(async () => {
    await source?.close();
    await target?.close();
    await dropScratch(sourceEngine, `${tag}_a`);
    await dropScratch(targetEngine, `${tag}_b`);
  });

  it('equal rows inside the filter checksum equal; the unfiltered checksums differ', async () => {
    const pair = buildTablePair(source, await source.describeTable('t'), target, await target.describeTable('t'), {
      sourceFilter: "region = 'eu'", targetFilter: "region = 'eu'",
    });
    expect(await source.checksumRange(pair.source, {})).toEqual(await target.checksumRange(pair.target, {}));
    const { filter: _a, ...allSource } = pair.source;
    const { filter: _b, ...allTarget } = pair.target;
    expect(await source.checksumRange(allSource, {})).not.toEqual(await target.checksumRange(allTarget, {}));
  });
});
