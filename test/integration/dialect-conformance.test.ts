/**
 * The dialect contract, checked for every engine pair: equal data checksums equal across engines,
 * every single-value change (including the classic traps) changes the checksum, keyset bounds
 * select the same rows on both sides, and upsert + fetch round-trip every value exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalToken, ChecksumAccumulator, checksumOfRows, rowHash, sameChecksum, sameValue, keyIdentity } from '../../src/dialect/canonical.js';
import type { Database } from '../../src/dialect/dialect.js';
import { buildTablePair, type TablePair } from '../../src/dialect/table-pair.js';
import type { BucketChecksum, Engine, KeyRange, PortableValue, Row, TableShape } from '../../src/dialect/types.js';
import { ENGINE_PAIRS, dropScratch, executeFor, openScratch } from '../support/scratch.js';

const COLUMNS = [
  'id', 'c_int', 'c_big', 'c_ubig', 'c_dec', 'c_dec_big', 'c_float', 'c_real', 'c_bool', 'c_text', 'c_longtext',
  'c_blob', 'c_date', 'c_dt', 'c_ts', 'c_time', 'c_json', 'c_uuid',
] as const;
type Column = (typeof COLUMNS)[number];

const TYPES: Record<Engine, Record<Column, string>> = {
  mysql: {
    id: 'BIGINT NOT NULL', c_int: 'INT NULL', c_big: 'BIGINT NULL', c_ubig: 'BIGINT UNSIGNED NULL',
    c_dec: 'DECIMAL(30,10) NULL', c_dec_big: 'DECIMAL(65,30) NULL', c_float: 'DOUBLE NULL', c_real: 'FLOAT NULL',
    c_bool: 'TINYINT(1) NULL', c_text: 'VARCHAR(200) NULL', c_longtext: 'TEXT NULL', c_blob: 'BLOB NULL',
    c_date: 'DATE NULL', c_dt: 'DATETIME(6) NULL', c_ts: 'TIMESTAMP(6) NULL', c_time: 'TIME(6) NULL',
    c_json: 'JSON NULL', c_uuid: 'CHAR(36) NULL',
  },
  postgres: {
    id: 'bigint NOT NULL', c_int: 'integer', c_big: 'bigint', c_ubig: 'numeric(20,0)', c_dec: 'numeric',
    c_dec_big: 'numeric(65,30)', c_float: 'double precision', c_real: 'real', c_bool: 'boolean',
    c_text: 'varchar(200)', c_longtext: 'text', c_blob: 'bytea', c_date: 'date', c_dt: 'timestamp(6)',
    c_ts: 'timestamptz(6)', c_time: 'time(6)', c_json: 'jsonb', c_uuid: 'uuid',
  },
};

function createTable(engine: Engine, table: string): string {
  const quote = (name: string) => (engine === 'mysql' ? `\`${name}\`` : `"${name}"`);
  const columns = COLUMNS.map((column) => `${quote(column)} ${TYPES[engine][column]}`).join(', ');
  return `CREATE TABLE ${quote(table)} (${columns}, PRIMARY KEY (${quote('id')}))`;
}

type Fixture = Record<Column, PortableValue>;

/** Edge values every engine can hold (MySQL TIMESTAMP: 1970..2038; unsigned max needs numeric(20) on PG). */
const ROWS: readonly Fixture[] = [
  {
    id: 1, c_int: 2147483647, c_big: '9223372036854775807', c_ubig: '18446744073709551615', c_dec: '1.1000000000',
    c_dec_big: '12345678901234567890123456789012345.123456789012345678901234567890', c_float: 0.1 + 0.2,
    c_real: 0.1, c_bool: true, c_text: 'Hello 😀 wörld  ', c_longtext: 'line1\nline2\ttab \\ back', c_blob: Buffer.from([1]),
    c_date: '2024-02-29', c_dt: '2024-02-29 23:59:59.999999', c_ts: '2038-01-19 03:14:07.999999', c_time: '23:59:59.000001',
    c_json: '{"b": [1, 2.5, "x"], "a": {"nested": true, "n": null}}', c_uuid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  },
  {
    id: 2, c_int: -2147483648, c_big: '-9223372036854775808', c_ubig: '0', c_dec: '-0.0000000001',
    c_dec_big: '-0.000000000000000000000000000001', c_float: -1.5e-300, c_real: -3.25, c_bool: false, c_text: '',
    c_longtext: '', c_blob: Buffer.from([0]), c_date: '1000-01-01', c_dt: '1000-01-01 00:00:00.000000',
    c_ts: '1970-01-01 00:00:01.000000', c_time: '00:00:00.000000', c_json: '[]', c_uuid: '00000000-0000-0000-0000-000000000000',
  },
  {
    id: 3, c_int: 0, c_big: '9007199254740993', c_ubig: '9007199254740993', c_dec: '100', c_dec_big: '0',
    c_float: 1e300, c_real: 3.4028235e38, c_bool: true, c_text: 'ABC', c_longtext: 'x'.repeat(5000),
    c_blob: Buffer.alloc(0), c_date: '9999-12-31', c_dt: '9999-12-31 23:59:59.500000', c_ts: '2000-06-15 12:30:45.123456',
    c_time: '12:00:00.500000', c_json: '{"s": "caf\\u00e9 \\"q\\"", "big": 12345678901234567890}', c_uuid: 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  },
  Object.fromEntries(COLUMNS.map((column) => [column, column === 'id' ? 4 : null])) as Fixture,
  {
    id: 5, c_int: 7, c_big: '-1', c_ubig: '1', c_dec: '0.5', c_dec_big: '1.5', c_float: 0, c_real: 0, c_bool: false,
    c_text: 'NULL', c_longtext: 'N', c_blob: Buffer.from('null'), c_date: '2024-01-01', c_dt: '2024-01-01 00:00:00.000000',
    c_ts: '2024-01-01 00:00:00.000000', c_time: '01:02:03.000000', c_json: '"N"', c_uuid: '123e4567-e89b-12d3-a456-426614174000',
  },
];

/** One value changed at a time; each must change the checksum. Labels name the trap. */
const CHANGES: readonly [string, number, Column, PortableValue][] = [
  ['int +1', 1, 'c_int', 2147483646],
  ['bigint max -1', 1, 'c_big', '9223372036854775806'],
  ['bigint beyond 2^53 by one', 3, 'c_big', '9007199254740992'],
  ['unsigned max -1', 1, 'c_ubig', '18446744073709551614'],
  ['decimal last digit', 1, 'c_dec', '1.1000000001'],
  ['decimal 30th fraction digit', 2, 'c_dec_big', '-0.000000000000000000000000000002'],
  ['decimal sign', 5, 'c_dec', '-0.5'],
  ['double at 15th digit', 1, 'c_float', 0.300000000000001],
  ['float value', 1, 'c_real', 0.2],
  ['boolean flip', 1, 'c_bool', false],
  ['NULL to empty string', 2, 'c_text', null],
  ['empty string to NULL', 4, 'c_text', ''],
  ['case', 3, 'c_text', 'abc'],
  ['trailing space removed', 1, 'c_text', 'Hello 😀 wörld '],
  ['emoji swapped', 1, 'c_text', 'Hello 😁 wörld  '],
  ['text "NULL" to NULL', 5, 'c_text', null],
  ['long text one char', 3, 'c_longtext', `${'x'.repeat(4999)}y`],
  ['1-byte blob 0x01 -> 0x00', 1, 'c_blob', Buffer.from([0])],
  ['empty blob to NULL', 3, 'c_blob', null],
  ['date day', 1, 'c_date', '2024-02-28'],
  ['microsecond', 1, 'c_dt', '2024-02-29 23:59:59.999998'],
  ['timestamp microsecond', 3, 'c_ts', '2000-06-15 12:30:45.123457'],
  ['time microsecond', 1, 'c_time', '23:59:59.000002'],
  ['json value', 1, 'c_json', '{"b": [1, 2.5, "y"], "a": {"nested": true, "n": null}}'],
  ['json number', 3, 'c_json', '{"s": "caf\\u00e9 \\"q\\"", "big": 12345678901234567891}'],
  ['uuid last digit', 1, 'c_uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'],
];

const ALL: KeyRange = {};

function toRow(pair: TablePair, fixture: Fixture): Row {
  return pair.source.columns.map((column) => fixture[column.name as Column]);
}

/** Bucket checksums computed here from fetched rows: BigInt division truncates toward zero. */
function referenceBuckets(shape: TableShape, rows: readonly Row[], width: number): BucketChecksum[] {
  const buckets = new Map<bigint, ChecksumAccumulator>();
  for (const row of rows) {
    const bucket = BigInt(String(row[shape.keyIndexes[0]!])) / BigInt(width);
    if (!buckets.has(bucket)) buckets.set(bucket, new ChecksumAccumulator());
    buckets.get(bucket)!.add(rowHash(shape, row));
  }
  return [...buckets.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([bucket, accumulator]) => ({ bucket: bucket.toString(), ...accumulator.result() }));
}

/**
 * Engines that sum their own row hash for a same-engine pair (`sameEngineChecksum`, every column
 * hashed in SQL) instead of the canonical MD5, with that hash of canonical texts computed by the
 * engine itself: the reference those sums must match. MySQL/MariaDB keep MD5 (no cheaper hash as strong).
 */
const NATIVE_ROW_HASH: Record<Engine, ((database: Database, texts: readonly string[]) => Promise<bigint[]>) | undefined> = {
  mysql: undefined,
  postgres: async (database, texts) =>
    (
      await database.execute(
        `SELECT hashtextextended(t COLLATE "C", 0)::text AS h FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n`,
        [texts],
      )
    ).map((row) => BigInt(String(row.h))),
};

function usesNativeSums(database: Database, shape: TableShape): boolean {
  return Boolean(shape.sameEngineChecksum) && NATIVE_ROW_HASH[database.engine] !== undefined && shape.columns.every((column) => column.hashSite === 'sql');
}

/** The canonical text of a row whose columns are all hashed in SQL (what the MD5 or the native hash is taken of). */
function canonicalRowText(shape: TableShape, row: Row): string {
  return shape.columns.map((column, index) => canonicalToken(column.kind, row[index] ?? null)).join('');
}

/**
 * The bucket checksums `database` must return for `rows` of `shape`: `referenceBuckets`, or with the
 * engine's native row hashes (computed by the engine from the canonical texts built here) when the
 * shape uses them.
 */
async function expectedBuckets(database: Database, shape: TableShape, rows: readonly Row[], width: number): Promise<BucketChecksum[]> {
  if (!usesNativeSums(database, shape)) return referenceBuckets(shape, rows, width);
  const hashes = await NATIVE_ROW_HASH[database.engine]!(database, rows.map((row) => canonicalRowText(shape, row)));
  const buckets = new Map<bigint, { count: number; sum: bigint }>();
  rows.forEach((row, index) => {
    const bucket = BigInt(String(row[shape.keyIndexes[0]!])) / BigInt(width);
    const entry = buckets.get(bucket) ?? { count: 0, sum: 0n };
    buckets.set(bucket, { count: entry.count + 1, sum: entry.sum + hashes[index]! });
  });
  return [...buckets.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([bucket, { count, sum }]) => ({ bucket: bucket.toString(), count, sum: sum.toString() }));
}

/** Buckets whose count or sum differ, or that only one side has. */
function differingBuckets(a: readonly BucketChecksum[], b: readonly BucketChecksum[]): string[] {
  const key = (bucket: BucketChecksum) => `${bucket.bucket}:${bucket.count}:${bucket.sum}`;
  const inA = new Set(a.map(key));
  const inB = new Set(b.map(key));
  const names = [...a.filter((bucket) => !inB.has(key(bucket))), ...b.filter((bucket) => !inA.has(key(bucket)))].map((bucket) => bucket.bucket);
  return [...new Set(names)];
}

/** The bucket sums as one range checksum. */
function totalOf(buckets: readonly BucketChecksum[]): { count: number; sum: string } {
  return {
    count: buckets.reduce((count, bucket) => count + bucket.count, 0),
    sum: buckets.reduce((sum, bucket) => sum + BigInt(bucket.sum), 0n).toString(),
  };
}

describe.each(ENGINE_PAIRS)('dialect conformance %s -> %s', (sourceEngine, targetEngine) => {
  const tag = `${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;
  let source: Database;
  let target: Database;
  let pair: TablePair;

  beforeAll(async () => {
    source = await openScratch(sourceEngine, `conf_${tag}_src`, 'src');
    target = await openScratch(targetEngine, `conf_${tag}_dst`, 'dst');
    for (const database of [source, target]) await database.execute(createTable(database.engine, 'conformance'));
    pair = buildTablePair(source, await source.describeTable('conformance'), target, await target.describeTable('conformance'));
    await source.applyChanges(pair.source, { upserts: ROWS.map((fixture) => toRow(pair, fixture)), deletes: [] });
    await target.applyChanges(pair.target, { upserts: ROWS.map((fixture) => toRow(pair, fixture)), deletes: [] });
  });

  afterAll(async () => {
    await source?.close();
    await target?.close();
    await dropScratch(sourceEngine, `conf_${tag}_src`);
    await dropScratch(targetEngine, `conf_${tag}_dst`);
  });

  it('agrees on the kind of every column', () => {
    const kinds = Object.fromEntries(pair.source.columns.map((column) => [column.name, column.kind]));
    expect(kinds).toEqual({
      id: 'integer', c_int: 'integer', c_big: 'integer',
      c_ubig: sourceEngine === targetEngine ? (sourceEngine === 'mysql' ? 'integer' : 'decimal') : 'decimal',
      c_dec: 'decimal', c_dec_big: 'decimal', c_float: 'float', c_real: 'float', c_bool: 'boolean', c_text: 'text',
      c_longtext: 'text', c_blob: 'binary', c_date: 'date', c_dt: 'datetime', c_ts: 'datetime', c_time: 'time',
      c_json: 'json', c_uuid: sourceEngine === targetEngine && sourceEngine === 'mysql' ? 'text' : 'uuid',
    });
    // The same declared types on both sides: a same-engine pair may hash natively, a cross-engine one never.
    expect(Boolean(pair.source.sameEngineChecksum)).toBe(sourceEngine === targetEngine);
    expect(Boolean(pair.target.sameEngineChecksum)).toBe(sourceEngine === targetEngine);
  });

  it('round-trips every value exactly through upsert + fetch', async () => {
    const sourceRows = await source.fetchRange(pair.source, ALL, 100);
    const targetRows = await target.fetchRange(pair.target, ALL, 100);
    expect(sourceRows).toHaveLength(ROWS.length);
    expect(targetRows).toHaveLength(ROWS.length);
    ROWS.forEach((fixture, rowIndex) => {
      pair.source.columns.forEach((column, columnIndex) => {
        const expected = fixture[column.name as Column];
        for (const [side, rows] of [['source', sourceRows], ['target', targetRows]] as const) {
          const actual = rows[rowIndex]![columnIndex]!;
          const label = `${side} row ${fixture.id as number} ${column.name}: ${String(actual)} vs ${String(expected)}`;
          expect(sameValue(column.kind, actual, expected), label).toBe(true);
        }
      });
    });
    // Exactness beyond canonical equality for the values drivers like to round.
    const big = pair.source.columns.findIndex((column) => column.name === 'c_big');
    expect(String(targetRows[2]![big])).toBe('9007199254740993');
    expect(String(sourceRows[0]![big])).toBe('9223372036854775807');
  });

  it('copies rows read on one engine into the other unchanged', async () => {
    const copyTable = 'conformance_copy';
    await target.execute(createTable(target.engine, copyTable));
    try {
      const copyPair = buildTablePair(source, await source.describeTable('conformance'), target, await target.describeTable(copyTable));
      const rows = await source.fetchRange(copyPair.source, ALL, 100);
      await target.applyChanges(copyPair.target, { upserts: rows, deletes: [] });
      expect(sameChecksum(await source.checksumRange(copyPair.source, ALL), await target.checksumRange(copyPair.target, ALL))).toBe(true);
      const copied = await target.fetchRange(copyPair.target, ALL, 100);
      rows.forEach((row, rowIndex) =>
        copyPair.source.columns.forEach((column, columnIndex) =>
          expect(sameValue(column.kind, copied[rowIndex]![columnIndex]!, row[columnIndex]!), `${column.name} of row ${rowIndex}`).toBe(true),
        ),
      );
    } finally {
      await target.execute(`DROP TABLE ${target.quoteIdentifier(copyTable)}`);
    }
  });

  it('computes equal checksums for equal data, per range too', async () => {
    const whole = await source.checksumRange(pair.source, ALL);
    expect(whole.count).toBe(ROWS.length);
    expect(await target.checksumRange(pair.target, ALL)).toEqual(whole);
    const ranges: KeyRange[] = [{ upper: [3] }, { lower: [3] }, { lower: [2], upper: [5] }, { lower: [6] }];
    for (const range of ranges) {
      expect(await target.checksumRange(pair.target, range), JSON.stringify(range)).toEqual(await source.checksumRange(pair.source, range));
    }
    expect(await source.checksumRange(pair.source, { lower: [6] })).toEqual({ count: 0, sum: '0' });
  });

  it('returns the same per-row hashes on both engines, equal to the reference', async () => {
    const sourceHashes = await source.rowHashes(pair.source, ALL, 100);
    const targetHashes = await target.rowHashes(pair.target, ALL, 100);
    const reference = (await source.fetchRange(pair.source, ALL, 100)).map((row) => rowHash(pair.source, row));
    expect(sourceHashes.map((entry) => entry.hash)).toEqual(reference);
    expect(targetHashes.map((entry) => entry.hash)).toEqual(reference);
    expect(sourceHashes.map((entry) => keyIdentity(pair.source, entry.key))).toEqual(
      targetHashes.map((entry) => keyIdentity(pair.target, entry.key)),
    );
    expect(await source.rowHashes(pair.source, { lower: [2], upper: [4] }, 1)).toHaveLength(1);
    // Several disjoint ranges in one query: their rows in key order, the limit over all of them.
    const ranges: KeyRange[] = [{ upper: [2] }, { lower: [3], upper: [5] }, { lower: [6] }];
    for (const [database, shape] of [[source, pair.source], [target, pair.target]] as const) {
      const hashes = await database.rowHashes(shape, ranges, 100);
      expect(hashes.map((entry) => String(entry.key[0]))).toEqual(['1', '3', '4']);
      expect(hashes.map((entry) => entry.hash)).toEqual([reference[0], reference[2], reference[3]]);
      expect(await database.rowHashes(shape, ranges, 2)).toEqual(hashes.slice(0, 2));
      expect(await database.rowHashes(shape, [], 100)).toEqual([]);
    }
  });

  it('checksums per key bucket with node-hashed columns: equal across engines, adding up to the range', async () => {
    const rows = await source.fetchRange(pair.source, ALL, 100);
    for (const width of [1, 2, 7]) {
      const buckets = await source.checksumBuckets(pair.source, ALL, width);
      expect(buckets, `width ${width}`).toEqual(referenceBuckets(pair.source, rows, width));
      expect(await target.checksumBuckets(pair.target, ALL, width), `width ${width}`).toEqual(buckets);
      expect(totalOf(buckets)).toEqual(await source.checksumRange(pair.source, ALL));
    }
    expect(await target.checksumBuckets(pair.target, { lower: [2], upper: [4] }, 1)).toEqual(
      referenceBuckets(pair.source, rows.filter((row) => [2, 3].includes(Number(row[0]))), 1),
    );
  });

  it.each(CHANGES)('detects a single change: %s', async (_label, id, column, value) => {
    const columnIndex = pair.target.columns.findIndex((candidate) => candidate.name === column);
    const original = ROWS.find((fixture) => fixture.id === id)!;
    const changed = { ...original, [column]: value };
    expect(sameValue(pair.target.columns[columnIndex]!.kind, original[column], value)).toBe(false);
    const before = await source.checksumRange(pair.source, ALL);
    const bucketsBefore = await source.checksumBuckets(pair.source, ALL, 2);
    await target.applyChanges(pair.target, { upserts: [toRow(pair, changed)], deletes: [] });
    try {
      const after = await target.checksumRange(pair.target, ALL);
      expect(after.count).toBe(before.count);
      expect(sameChecksum(after, before)).toBe(false);
      expect(differingBuckets(bucketsBefore, await target.checksumBuckets(pair.target, ALL, 2))).toEqual([String(Math.trunc(id / 2))]);
    } finally {
      await target.applyChanges(pair.target, { upserts: [toRow(pair, original)], deletes: [] });
    }
    expect(await target.checksumRange(pair.target, ALL)).toEqual(before);
  });

  it('treats JSON key order and whitespace as equal', async () => {
    const original = ROWS[0]!;
    const reordered = { ...original, c_json: '{"a":{"n":null,"nested":true},"b":[1,2.50,"x"]}' };
    await target.applyChanges(pair.target, { upserts: [toRow(pair, reordered)], deletes: [] });
    try {
      expect(await target.checksumRange(pair.target, ALL)).toEqual(await source.checksumRange(pair.source, ALL));
    } finally {
      await target.applyChanges(pair.target, { upserts: [toRow(pair, original)], deletes: [] });
    }
  });

  it('applies deletes and upserts in one transaction', async () => {
    const extra = { ...ROWS[4]!, id: 99 };
    await target.applyChanges(pair.target, { upserts: [toRow(pair, extra)], deletes: [[4]] });
    const keys = (await target.fetchRange(pair.target, ALL, 100)).map((row) => row[0]);
    expect(keys.map(String)).toEqual(['1', '2', '3', '5', '99']);
    await target.applyChanges(pair.target, { upserts: [toRow(pair, ROWS[3]!)], deletes: [[99]] });
    expect(await target.checksumRange(pair.target, ALL)).toEqual(await source.checksumRange(pair.source, ALL));
  });
});

/** Keys whose order differs between byte order and a linguistic collation. */
const TEXT_KEYS = ['B', 'a', 'a ', 'ab', 'b', 'Z', 'z', 'é', 'e', 'É', 'ä', '😀', '0', '10', '9', 'ß', 'ss'];
/** A subset that a case- and accent-insensitive PAD SPACE collation (MariaDB's default) can hold as keys. */
const CI_TEXT_KEYS = ['B', 'a', 'ab', 'Z', 'é', '😀', '0', '10', '9', 'ß'];

describe.each(ENGINE_PAIRS)('keyset ranges %s -> %s', (sourceEngine, targetEngine) => {
  const tag = `${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;
  let source: Database;
  let target: Database;

  beforeAll(async () => {
    source = await openScratch(sourceEngine, `keys_${tag}_src`, 'src');
    target = await openScratch(targetEngine, `keys_${tag}_dst`, 'dst');
    for (const database of [source, target]) {
      await executeFor(database, {
        mysql: [
          'CREATE TABLE int_keys (id INT NOT NULL PRIMARY KEY, v INT)',
          'CREATE TABLE composite_keys (tenant INT NOT NULL, code VARCHAR(20) NOT NULL, v INT, PRIMARY KEY (tenant, code))',
          // utf8mb4_bin keeps 'a' and 'a ' apart as keys only in a NO PAD collation.
          'CREATE TABLE text_keys (k VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL PRIMARY KEY, v INT)',
        ],
        postgres: [
          'CREATE TABLE int_keys (id integer PRIMARY KEY, v integer)',
          'CREATE TABLE composite_keys (tenant integer NOT NULL, code varchar(20) NOT NULL, v integer, PRIMARY KEY (tenant, code))',
          'CREATE TABLE text_keys (k varchar(20) PRIMARY KEY, v integer)',
        ],
      });
    }
  });

  afterAll(async () => {
    await source?.close();
    await target?.close();
    await dropScratch(sourceEngine, `keys_${tag}_src`);
    await dropScratch(targetEngine, `keys_${tag}_dst`);
  });

  async function pairFor(table: string): Promise<TablePair> {
    return buildTablePair(source, await source.describeTable(table), target, await target.describeTable(table));
  }

  /** Bounds from the source every `step` rows; every range must select the same keys on both sides. */
  async function expectSameRanges(table: string, sourceRows: Row[], targetRows: Row[], step: number): Promise<void> {
    const pair = await pairFor(table);
    await source.applyChanges(pair.source, { upserts: sourceRows, deletes: [] });
    await target.applyChanges(pair.target, { upserts: targetRows, deletes: [] });
    const bounds: Row[] = [];
    let lower: Row | undefined;
    for (;;) {
      const next = await source.keyAtOffset(pair.source, lower ? { lower } : {}, lower ? step : 0);
      if (!next) break;
      bounds.push(next);
      lower = next;
    }
    expect(bounds.length).toBeGreaterThan(2);
    const ranges: KeyRange[] = [{ upper: bounds[0] }];
    bounds.forEach((bound, index) => ranges.push(bounds[index + 1] ? { lower: bound, upper: bounds[index + 1] } : { lower: bound }));
    const seen = { source: new Set<string>(), target: new Set<string>() };
    for (const range of ranges) {
      const fromSource = await source.fetchRange(pair.source, range, 1000);
      const fromTarget = await target.fetchRange(pair.target, range, 1000);
      const keys = (rows: Row[]) => rows.map((row) => keyIdentity(pair.source, pair.source.keyIndexes.map((index) => row[index]!)));
      // Rows present on both sides appear in the same range, in the same order.
      const common = (rows: Row[], other: Set<string>) => keys(rows).filter((key) => other.has(key));
      const sourceKeys = new Set(keys(fromSource));
      const targetKeys = new Set(keys(fromTarget));
      expect(common(fromSource, targetKeys), JSON.stringify(range)).toEqual(common(fromTarget, sourceKeys));
      keys(fromSource).forEach((key) => seen.source.add(key));
      keys(fromTarget).forEach((key) => seen.target.add(key));
      expect(await source.countRange(pair.source, range)).toBe(fromSource.length);
      expect(await target.countRange(pair.target, range)).toBe(fromTarget.length);
    }
    // The ranges tile the key space: every row of either side is in exactly one of them.
    expect(seen.source.size).toBe(sourceRows.length);
    expect(seen.target.size).toBe(targetRows.length);
  }

  it('integer keys', async () => {
    const rows = Array.from({ length: 50 }, (_, index): Row => [index * 3 - 30, index]);
    // The target lacks some rows and has keys below the first and above the last source key.
    const targetRows = [...rows.filter((_, index) => index % 7 !== 0), [-1000, 1], [1000, 1]] as Row[];
    await expectSameRanges('int_keys', rows, targetRows, 7);
  });

  it('composite keys', async () => {
    const rows: Row[] = [];
    for (const tenant of [1, 2, 10]) for (const code of CI_TEXT_KEYS) rows.push([tenant, code, 1]);
    await expectSameRanges('composite_keys', rows, [...rows.slice(3), [0, 'x', 1], [11, 'A', 1]], 5);
  });

  it('mixed-case and accented text keys in byte order', async () => {
    const rows = TEXT_KEYS.map((key, index): Row => [key, index]);
    await expectSameRanges('text_keys', rows, [...rows.slice(1), ['~', 1], ['', 2]], 3);
    const pair = await pairFor('text_keys');
    const ordered = (await source.fetchRange(pair.source, {}, 100)).map((row) => row[0] as string);
    expect(ordered).toEqual([...TEXT_KEYS].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  });

  it('fetches by exact key only', async () => {
    const pair = await pairFor('text_keys');
    const found = await target.fetchByKeys(pair.target, [['a'], ['A'], ['é'], ['nope']]);
    expect(found.map((row) => row[0]).sort()).toEqual(['a', 'é']);
    // Under MariaDB's default collation 'A' = 'a' and 'a ' = 'a'; the fetch must still be exact.
    const composite = await pairFor('composite_keys');
    const exact = await source.fetchByKeys(composite.source, [[1, 'A'], [1, 'a '], [1, 'ab'], [2, 'e']]);
    expect(exact.map((row) => `${String(row[0])}:${String(row[1])}`)).toEqual(['1:ab']);
  });
});

/** Keys -25..25: buckets around zero are where truncation and floor division disagree. */
const SIGNED_ROWS: readonly Row[] = Array.from({ length: 51 }, (_, index): Row => {
  const key = index - 25;
  return [key, key % 5 === 0 ? null : `v${key}`, (key * 1.25).toFixed(2)];
});
/** Keys beyond 2^53, up to the BIGINT limits, as decimal text. */
const BIG_KEYS = ['-9223372036854775808', '-9007199254740993', '-9007199254740992', '-1', '0', '6', '7', '9007199254740993', '9223372036854775807'];

describe.each(ENGINE_PAIRS)('bucket checksums %s -> %s', (sourceEngine, targetEngine) => {
  const tag = `${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;
  let source: Database;
  let target: Database;

  beforeAll(async () => {
    source = await openScratch(sourceEngine, `bkt_${tag}_src`, 'src');
    target = await openScratch(targetEngine, `bkt_${tag}_dst`, 'dst');
    for (const database of [source, target]) {
      await executeFor(database, {
        mysql: [
          'CREATE TABLE signed_keys (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NULL, d DECIMAL(10,2) NULL)',
          'CREATE TABLE big_keys (id BIGINT NOT NULL PRIMARY KEY, v INT NULL)',
          'CREATE TABLE domain_keys (id BIGINT NOT NULL PRIMARY KEY, v INT NULL)',
          'CREATE TABLE text_keys (k VARCHAR(20) NOT NULL PRIMARY KEY, v INT NULL)',
        ],
        postgres: [
          'CREATE TABLE signed_keys (id integer PRIMARY KEY, v varchar(20), d numeric(10,2))',
          'CREATE TABLE big_keys (id bigint PRIMARY KEY, v integer)',
          // A domain's native type is not an integer type: bucketed as numeric (div), exactly the same.
          'CREATE DOMAIN big_id AS bigint',
          'CREATE TABLE domain_keys (id big_id PRIMARY KEY, v integer)',
          'CREATE TABLE text_keys (k varchar(20) PRIMARY KEY, v integer)',
        ],
      });
    }
    const signed = await pairFor('signed_keys');
    await source.applyChanges(signed.source, { upserts: [...SIGNED_ROWS], deletes: [] });
    await target.applyChanges(signed.target, { upserts: [...SIGNED_ROWS], deletes: [] });
    for (const table of ['big_keys', 'domain_keys']) {
      const pair = await pairFor(table);
      const rows = BIG_KEYS.map((key, index): Row => [key, index]);
      await source.applyChanges(pair.source, { upserts: rows, deletes: [] });
      await target.applyChanges(pair.target, { upserts: rows, deletes: [] });
    }
  });

  afterAll(async () => {
    await source?.close();
    await target?.close();
    await dropScratch(sourceEngine, `bkt_${tag}_src`);
    await dropScratch(targetEngine, `bkt_${tag}_dst`);
  });

  async function pairFor(table: string): Promise<TablePair> {
    return buildTablePair(source, await source.describeTable(table), target, await target.describeTable(table));
  }

  const RANGES: readonly KeyRange[] = [ALL, { lower: [-13], upper: [17] }, { lower: [-25], upper: [-3] }, { lower: [30] }];

  it('are equal across engines and to the reference, negative keys included', async () => {
    const pair = await pairFor('signed_keys');
    for (const range of RANGES) {
      const rows = await source.fetchRange(pair.source, range, 100);
      for (const width of [1, 7, 10]) {
        const label = `${JSON.stringify(range)} width ${width}`;
        const buckets = await source.checksumBuckets(pair.source, range, width);
        expect(buckets, label).toEqual(await expectedBuckets(source, pair.source, rows, width));
        expect(await target.checksumBuckets(pair.target, range, width), label).toEqual(buckets);
      }
    }
    // Truncation toward zero: bucket 0 holds -6..6 for width 7 (floor division would give -7..-1 to bucket -1).
    const width7 = await source.checksumBuckets(pair.source, ALL, 7);
    expect(width7.map((bucket) => [bucket.bucket, bucket.count])).toEqual([['-3', 5], ['-2', 7], ['-1', 7], ['0', 13], ['1', 7], ['2', 7], ['3', 5]]);
  });

  it('add up to the checksum of the range', async () => {
    const pair = await pairFor('signed_keys');
    for (const range of RANGES) {
      for (const database of [source, target]) {
        const shape = database === source ? pair.source : pair.target;
        expect(totalOf(await database.checksumBuckets(shape, range, 7)), JSON.stringify(range)).toEqual(await database.checksumRange(shape, range));
      }
    }
  });

  it('change in exactly one bucket for each single change', async () => {
    const pair = await pairFor('signed_keys');
    const before = await source.checksumBuckets(pair.source, ALL, 7);
    const original = (key: number) => SIGNED_ROWS.find((row) => row[0] === key)!;
    const changes: readonly [string, { upserts: Row[]; deletes: Row[] }, { upserts: Row[]; deletes: Row[] }, string][] = [
      ['update -7', { upserts: [[-7, 'changed', '0.00']], deletes: [] }, { upserts: [original(-7)], deletes: [] }, '-1'],
      ['update -6', { upserts: [[-6, null, '-7.50']], deletes: [] }, { upserts: [original(-6)], deletes: [] }, '0'],
      ['update 0', { upserts: [[0, '', '0.00']], deletes: [] }, { upserts: [original(0)], deletes: [] }, '0'],
      ['delete 13', { upserts: [], deletes: [[13]] }, { upserts: [original(13)], deletes: [] }, '1'],
      ['insert 26', { upserts: [[26, 'extra', '1.00']], deletes: [] }, { upserts: [], deletes: [[26]] }, '3'],
      ['insert -28', { upserts: [[-28, 'extra', '1.00']], deletes: [] }, { upserts: [], deletes: [[-28]] }, '-4'],
    ];
    for (const [label, change, undo, bucket] of changes) {
      await target.applyChanges(pair.target, change);
      try {
        expect(differingBuckets(before, await target.checksumBuckets(pair.target, ALL, 7)), label).toEqual([bucket]);
      } finally {
        await target.applyChanges(pair.target, undo);
      }
    }
    expect(await target.checksumBuckets(pair.target, ALL, 7)).toEqual(before);
  });

  it.each(['big_keys', 'domain_keys'])('stay exact beyond 2^53 (%s)', async (table) => {
    const pair = await pairFor(table);
    const rows = await source.fetchRange(pair.source, ALL, 100);
    expect(rows).toHaveLength(BIG_KEYS.length);
    for (const width of [1, 7, 1000, 2 ** 53 - 1]) {
      const buckets = await source.checksumBuckets(pair.source, ALL, width);
      expect(buckets, `width ${width}`).toEqual(await expectedBuckets(source, pair.source, rows, width));
      expect(await target.checksumBuckets(pair.target, ALL, width), `width ${width}`).toEqual(buckets);
    }
    const buckets = await target.checksumBuckets(pair.target, { lower: ['9007199254740992'] }, 7);
    expect(buckets.map((bucket) => bucket.bucket)).toEqual(['1286742750677284', '1317624576693539401']);
  });

  it('refuse a key that is not one integer column', async () => {
    const pair = await pairFor('text_keys');
    await expect(source.checksumBuckets(pair.source, ALL, 10)).rejects.toThrow(/not a single integer column/);
    await expect(target.checksumBuckets(pair.target, ALL, 10)).rejects.toThrow(/not a single integer column/);
  });
});

/** Every column hashed in SQL, so a same-engine pair of these tables may sum native row hashes. */
const NATIVE_DDL: Record<Engine, (table: string, textType?: string) => string> = {
  mysql: (table, textType = 'VARCHAR(50)') =>
    `CREATE TABLE \`${table}\` (id BIGINT NOT NULL PRIMARY KEY, c_int INT NULL, c_text ${textType} NULL, c_dec DECIMAL(12,2) NULL, ` +
    'c_dt DATETIME(6) NULL, c_bool TINYINT(1) NULL, c_note TEXT NULL)',
  postgres: (table, textType = 'varchar(50)') =>
    `CREATE TABLE "${table}" (id bigint PRIMARY KEY, c_int integer, c_text ${textType}, c_dec numeric(12,2), ` +
    'c_dt timestamp(6), c_bool boolean, c_note text)',
};
/** A wider text column on the target: no longer the same types, so the pair keeps the canonical MD5. */
const WIDER_TEXT: Record<Engine, string> = { mysql: 'VARCHAR(60)', postgres: 'varchar(60)' };

const NATIVE_ROWS: readonly Row[] = Array.from({ length: 40 }, (_, index): Row => {
  const id = index + 1;
  return [
    id, id % 9 === 0 ? null : id * 7 - 100, id % 7 === 0 ? '' : `text ${id}${id % 5 === 0 ? ' é😀' : ''}`, `${id}.${String(id % 100).padStart(2, '0')}`,
    `2024-03-${String((id % 28) + 1).padStart(2, '0')} 10:00:00.${String(id * 1111).padStart(6, '0')}`, id % 2 === 0, id % 3 === 0 ? null : `note|${id}`,
  ];
});

describe.each(ENGINE_PAIRS.filter(([a, b]) => a === b))('same-engine checksums %s -> %s', (sourceEngine, targetEngine) => {
  const tag = `${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;
  let source: Database;
  let target: Database;
  let pair: TablePair;

  beforeAll(async () => {
    source = await openScratch(sourceEngine, `native_${tag}_src`, 'src');
    target = await openScratch(targetEngine, `native_${tag}_dst`, 'dst');
    await source.execute(NATIVE_DDL[sourceEngine]('t'));
    await target.execute(NATIVE_DDL[targetEngine]('t'));
    await target.execute(NATIVE_DDL[targetEngine]('t_wider', WIDER_TEXT[targetEngine]));
    pair = buildTablePair(source, await source.describeTable('t'), target, await target.describeTable('t'));
    await source.applyChanges(pair.source, { upserts: [...NATIVE_ROWS], deletes: [] });
    await target.applyChanges(pair.target, { upserts: [...NATIVE_ROWS], deletes: [] });
  });

  afterAll(async () => {
    await source?.close();
    await target?.close();
    await dropScratch(sourceEngine, `native_${tag}_src`);
    await dropScratch(targetEngine, `native_${tag}_dst`);
  });

  it('are chosen only when every column has the same type on both sides', async () => {
    expect(pair.source.sameEngineChecksum).toBe(true);
    expect(pair.target.sameEngineChecksum).toBe(true);
    const wider = buildTablePair(source, await source.describeTable('t'), target, await target.describeTable('t_wider'));
    expect(wider.source.sameEngineChecksum).toBeUndefined();
    expect(wider.target.sameEngineChecksum).toBeUndefined();
    await target.applyChanges(wider.target, { upserts: [...NATIVE_ROWS], deletes: [] });
    // Canonical MD5 sums then, on both sides: equal to each other and to the reference computed here.
    const reference = checksumOfRows(wider.source, NATIVE_ROWS);
    expect(await source.checksumRange(wider.source, ALL)).toEqual(reference);
    expect(await target.checksumRange(wider.target, ALL)).toEqual(reference);
  });

  it('are equal for equal data, per range and per bucket, equal to the engine reference, buckets adding up', async () => {
    const rows = await source.fetchRange(pair.source, ALL, 100);
    expect(rows).toHaveLength(NATIVE_ROWS.length);
    const native = usesNativeSums(source, pair.source);
    for (const width of [1, 7, 64]) {
      const buckets = await source.checksumBuckets(pair.source, ALL, width);
      expect(buckets, `width ${width}`).toEqual(await expectedBuckets(source, pair.source, rows, width));
      expect(await target.checksumBuckets(pair.target, ALL, width), `width ${width}`).toEqual(buckets);
      expect(totalOf(buckets)).toEqual(await source.checksumRange(pair.source, ALL));
    }
    for (const range of [ALL, { lower: [5], upper: [23] }, { lower: [41] }] as const) {
      expect(await target.checksumRange(pair.target, range), JSON.stringify(range)).toEqual(await source.checksumRange(pair.source, range));
    }
    // An engine that hashes natively really does: its sums are not the canonical MD5 ones.
    expect(sameChecksum(await source.checksumRange(pair.source, ALL), checksumOfRows(pair.source, rows))).toBe(!native);
  });

  it('leave rowHashes the canonical MD5 (Node and the bidirectional baseline compare with it)', async () => {
    const rows = await source.fetchRange(pair.source, ALL, 100);
    const reference = rows.map((row) => rowHash(pair.source, row));
    expect((await source.rowHashes(pair.source, ALL, 100)).map((entry) => entry.hash)).toEqual(reference);
    expect((await target.rowHashes(pair.target, ALL, 100)).map((entry) => entry.hash)).toEqual(reference);
  });

  /** Applies `change` to the target, checks the range and the given buckets differ from the source, undoes it. */
  async function expectDetected(label: string, change: { upserts: Row[]; deletes: Row[] }, width: number, buckets: readonly string[]): Promise<void> {
    const before = await source.checksumRange(pair.source, ALL);
    const bucketsBefore = await source.checksumBuckets(pair.source, ALL, width);
    const originals = NATIVE_ROWS.filter((row) => [...change.upserts, ...change.deletes].some((changed) => changed[0] === row[0]));
    await target.applyChanges(pair.target, change);
    try {
      expect(sameChecksum(await target.checksumRange(pair.target, ALL), before), label).toBe(false);
      expect(differingBuckets(bucketsBefore, await target.checksumBuckets(pair.target, ALL, width)), label).toEqual([...buckets]);
    } finally {
      const inserted = change.upserts.filter((row) => !NATIVE_ROWS.some((original) => original[0] === row[0])).map((row) => [row[0]!]);
      await target.applyChanges(pair.target, { upserts: originals, deletes: inserted });
    }
    expect(await target.checksumRange(pair.target, ALL), `${label} undone`).toEqual(before);
  }

  const row = (id: number) => NATIVE_ROWS[id - 1]!;
  const withValue = (id: number, column: number, value: PortableValue): Row => row(id).map((old, index) => (index === column ? value : old));

  it.each([
    ['int +1', 2, 1, -85],
    ['int to NULL', 2, 1, null],
    ['case', 3, 2, 'TEXT 3'],
    ['trailing space', 3, 2, 'text 3 '],
    ['empty string to NULL', 7, 2, null],
    ['NULL to empty string', 3, 6, ''],
    ['separator appended to text', 4, 6, 'note|4|'],
    ['decimal +0.01', 10, 3, '10.11'],
    ['microsecond', 11, 4, '2024-03-12 10:00:00.012222'],
    ['boolean flip', 12, 5, false],
    ['emoji', 5, 2, 'text 5 é😁'],
  ] as const)('detect a single change: %s', async (label, id, column, value) => {
    await expectDetected(label, { upserts: [withValue(id, column, value)], deletes: [] }, 8, [String(Math.trunc(id / 8))]);
  });

  it('detect a deleted and an inserted row', async () => {
    await expectDetected('delete', { upserts: [], deletes: [[17]] }, 8, ['2']);
    await expectDetected('insert', { upserts: [[41, 1, 'x', '1.00', '2024-01-01 00:00:00.000000', true, null]], deletes: [] }, 8, ['5']);
  });

  it('do not cancel two equal changes, nor values swapped between rows, in one bucket', async () => {
    // The same change on two rows of one bucket (pt-table-sync's CRC32 + BIT_XOR cancels these).
    await expectDetected('price +0.01 on 17 and 18', { upserts: [withValue(17, 3, '17.18'), withValue(18, 3, '18.19')], deletes: [] }, 8, ['2']);
    await expectDetected('flag flipped on 17 and 19', { upserts: [withValue(17, 5, true), withValue(19, 5, true)], deletes: [] }, 8, ['2']);
    // Two rows exchanging a value: a sum of per-column hashes would cancel this exactly.
    await expectDetected('c_int swapped between 17 and 20', { upserts: [withValue(17, 1, row(20)[1]!), withValue(20, 1, row(17)[1]!)], deletes: [] }, 8, ['2']);
    await expectDetected('c_text swapped between 17 and 20', { upserts: [withValue(17, 2, row(20)[2]!), withValue(20, 2, row(17)[2]!)], deletes: [] }, 8, ['2']);
  });
});
