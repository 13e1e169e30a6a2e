import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, checksumOfRows, keyIdentity } from '../../src/dialect/canonical.js';
import { PostgresDatabase } from '../../src/dialect/postgres/postgres-database.js';
import { shapeOf } from '../../src/dialect/table-pair.js';
import type { KeyRange, Row, ShapeColumn, TableShape, ValueKind } from '../../src/dialect/types.js';
import { DatabaseError, SchemaError } from '../../src/errors/index.js';
import { testServers } from '../support/servers.js';

/**
 * The PostgreSQL dialect against a real server: the project's instance by default
 * (scripts/services.sh), or ROWSYNC_TEST_POSTGRES_URL. Everything lives in a schema of its own,
 * dropped and recreated here.
 */
const SERVER_URL = testServers().postgresUrl;
const SCHEMA = 'rowsync_pg_dialect';

function urlWith(change: (url: URL) => void): string {
  const url = new URL(SERVER_URL);
  change(url);
  return url.toString();
}

const WEIRD_TABLE = 'we"ird `tab; le select';
const WEIRD_COLUMN = 'co"l; `x` ünï';

let admin: PostgresDatabase;
let db: PostgresDatabase;

beforeAll(async () => {
  admin = new PostgresDatabase({ connectionName: 'pg-admin', url: SERVER_URL, poolSize: 1 });
  await admin.execute(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await admin.execute(`CREATE SCHEMA ${SCHEMA}`);
  db = new PostgresDatabase({
    connectionName: 'pgtest',
    url: urlWith((url) => url.searchParams.set('schema', SCHEMA)),
    poolSize: 3,
  });
  const s = SCHEMA;
  await admin.execute(`
    CREATE TYPE ${s}.mood AS ENUM ('sad', 'happy');
    CREATE TABLE ${s}.kinds (
      id bigint PRIMARY KEY,
      i2 smallint, i4 integer, i8 bigint,
      n numeric, n2 numeric(40,10),
      f4 real, f8 double precision,
      b boolean,
      t text, vc varchar(20), ch char(5),
      bt bytea,
      d date, ts timestamp(6), tstz timestamptz, tm time,
      j json, jb jsonb,
      u uuid,
      e ${s}.mood, iv interval, ip inet, arr integer[], ttz timetz,
      g integer GENERATED ALWAYS AS (i2 * 2) STORED
    );
    CREATE TABLE ${s}.composite (a text, b integer, c text NOT NULL, PRIMARY KEY (a, b));
    CREATE TABLE ${s}.nokey (x integer);
    CREATE VIEW ${s}.a_view AS SELECT 1 AS x;
    CREATE TABLE ${s}.shapes (id integer PRIMARY KEY, p point);
    CREATE TABLE ${s}.tk (k text PRIMARY KEY, v integer);
    CREATE TABLE ${s}.tkc (k text COLLATE "C" PRIMARY KEY, v integer);
    CREATE TABLE ${s}.idt (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
    CREATE TABLE ${s}.keyonly (a integer, b text, PRIMARY KEY (a, b));
    CREATE TABLE ${s}.uk (u uuid PRIMARY KEY, v integer);
    CREATE TABLE ${s}.${db.quoteIdentifier(WEIRD_TABLE)} (
      ${db.quoteIdentifier(WEIRD_COLUMN)} integer PRIMARY KEY, "select" text, "Mixed Case" text
    );
  `);
});

afterAll(async () => {
  await db?.close();
  await admin?.execute(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await admin?.close();
});

async function shapeFor(table: string): Promise<TableShape> {
  return shapeOf(db, await db.describeTable(table));
}

function column(shape: TableShape, name: string): number {
  const index = shape.columns.findIndex((c) => c.name === name);
  if (index < 0) throw new Error(`no column ${name}`);
  return index;
}

/** A shape whose columns are agreed as other kinds, as a pair with a MySQL table would agree them. */
function withKinds(shape: TableShape, kinds: Record<string, ValueKind>): TableShape {
  return {
    ...shape,
    columns: shape.columns.map((c): ShapeColumn => {
      const kind = kinds[c.name] ?? c.kind;
      return { ...c, kind, hashSite: kind === 'float' || kind === 'json' ? 'node' : 'sql' };
    }),
  };
}

function subset(shape: TableShape, keep: (c: ShapeColumn) => boolean): TableShape {
  const keyNames = shape.keyIndexes.map((i) => shape.columns[i]!.name);
  const columns = shape.columns.filter((c) => keyNames.includes(c.name) || keep(c));
  return { ...shape, columns, keyIndexes: keyNames.map((name) => columns.findIndex((c) => c.name === name)) };
}

async function expectChecksumMatchesNode(shape: TableShape, range: KeyRange = {}): Promise<void> {
  const rows = await db.fetchRange(shape, range, 100_000);
  const inDatabase = await db.checksumRange(shape, range);
  expect(inDatabase).toEqual(checksumOfRows(shape, rows));
  expect(inDatabase.count).toBe(rows.length);
}

describe('introspection', () => {
  it('lists base tables of the URL schema only, sorted', async () => {
    const tables = await db.listTables();
    expect(tables).toEqual([...tables].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(tables).toContain('kinds');
    expect(tables).toContain(WEIRD_TABLE);
    expect(tables).not.toContain('a_view');
  });

  it('describes columns in ordinal order with kinds, nullability, generated and the key', async () => {
    const schema = await db.describeTable('kinds');
    const kinds = Object.fromEntries(schema.columns.map((c) => [c.name, c.kind]));
    expect(kinds).toEqual({
      id: 'integer', i2: 'integer', i4: 'integer', i8: 'integer', n: 'decimal', n2: 'decimal',
      f4: 'float', f8: 'float', b: 'boolean', t: 'text', vc: 'text', ch: 'text', bt: 'binary',
      d: 'date', ts: 'datetime', tstz: 'datetime', tm: 'time', j: 'json', jb: 'json', u: 'uuid',
      e: 'text', iv: 'text', ip: 'text', arr: 'text', ttz: 'text', g: 'integer',
    });
    const byName = new Map(schema.columns.map((c) => [c.name, c]));
    expect(byName.get('n2')!.nativeType).toBe('numeric(40,10)');
    expect(byName.get('vc')!.nativeType).toBe('character varying(20)');
    expect(byName.get('tstz')!.nativeType).toBe('timestamp with time zone');
    expect(byName.get('id')!.nullable).toBe(false);
    expect(byName.get('t')!.nullable).toBe(true);
    expect(byName.get('g')!.generated).toBe(true);
    expect(byName.get('i2')!.generated).toBe(false);
    expect(schema.primaryKey).toEqual(['id']);
  });

  it('reports a composite key in key order', async () => {
    const schema = await db.describeTable('composite');
    expect(schema.primaryKey).toEqual(['a', 'b']);
    expect(schema.columns.map((c) => c.name)).toEqual(['a', 'b', 'c']);
  });

  it('treats identity columns as written (not generated)', async () => {
    const schema = await db.describeTable('idt');
    expect(schema.columns[0]).toMatchObject({ name: 'id', generated: false, kind: 'integer' });
  });

  it('handles names with quotes, backticks, spaces, semicolons, reserved words and unicode', async () => {
    const schema = await db.describeTable(WEIRD_TABLE);
    expect(schema.columns.map((c) => c.name)).toEqual([WEIRD_COLUMN, 'select', 'Mixed Case']);
    expect(schema.primaryKey).toEqual([WEIRD_COLUMN]);
    const shape = shapeOf(db, schema);
    await db.applyChanges(shape, { upserts: [[1, 'x', 'y'], [2, null, 'z']], deletes: [] });
    expect(await db.fetchRange(shape, {}, 10)).toEqual([[1, 'x', 'y'], [2, null, 'z']]);
    await expectChecksumMatchesNode(shape);
    expect(await db.applyChanges(shape, { upserts: [], deletes: [[1]] })).toEqual({ upserted: 0, deleted: 1 });
    expect(await db.countRange(shape, {})).toBe(1);
  });

  it('fails with typed errors naming connection, table and column', async () => {
    await expect(db.describeTable('missing')).rejects.toMatchObject({
      name: 'SchemaError', code: 'TABLE_NOT_FOUND', subject: 'pgtest.missing',
    });
    await expect(db.describeTable('a_view')).rejects.toMatchObject({ code: 'TABLE_NOT_FOUND' });
    const noKey = await db.describeTable('nokey').catch((error: unknown) => error);
    expect(noKey).toBeInstanceOf(SchemaError);
    expect(noKey).toMatchObject({ code: 'NO_PRIMARY_KEY', subject: 'pgtest.nokey' });
    expect((noKey as Error).message).toMatch(/pgtest.*nokey/);
    const unsupported = await db.describeTable('shapes').catch((error: unknown) => error);
    expect(unsupported).toMatchObject({ code: 'UNSUPPORTED_TYPE', subject: 'pgtest.shapes.p' });
    expect((unsupported as Error).message).toMatch(/pgtest.*\bp\b.*shapes|pgtest.*shapes.*\bp\b/);
  });
});

describe('values', () => {
  let shape: TableShape;
  const emoji = 'emoji 😀 é 中';
  const uuidUpper = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11';
  // id, i2, i4, i8, n, n2, f4, f8, b, t, vc, ch, bt, d, ts, tstz, tm, j, jb, u, e, iv, ip, arr, ttz, g
  const rows: Row[] = [
    [
      '1', -32768, -2147483648, '-9223372036854775808', '1.10', '123456789012345678901234567890.1234567890',
      0.1, 0.1, true, emoji, 'trailing  ', 'ab', Buffer.from([0x00]),
      '2024-02-29', '2024-01-01 10:00:00.123456', '2024-06-01 23:59:59.999999', '23:59:59.999999',
      '{"b": 1, "a": [1.0, 2e3]}', '{"z": 1, "a": {"y": null}}', uuidUpper,
      'happy', '1 day 02:03:04.5', '192.168.0.1/24', '{1,2,3}', '10:00:00+02', null,
    ],
    [
      '9223372036854775807', 32767, 2147483647, '9223372036854775807',
      '1234567890123456789012345678901234567890.5', '-0.0000000001',
      -0, 1e300, false, '', ' ', '', Buffer.from([0xff]),
      '0044-03-15 BC', '0001-01-01 00:00:00.000000', '1970-01-01 00:00:00.000001', '00:00:00.000000',
      '"a\\u0000b"', '[1e400, 0.10, -0]', '00000000-0000-0000-0000-000000000000',
      'sad', '-00:00:00.000001', '::1', '{}', '00:00:00+00', null,
    ],
    ['3', ...Array<null>(25).fill(null)],
    [
      // What MySQL hands over: integers as strings, booleans as numbers, full-precision datetimes.
      '4', '5', 7, '42', '5.00', '0.5', 1.5, -2.5e-7, 1, 'x', 'Y', 'zz', Buffer.from('hi'),
      'infinity', 'infinity', '-infinity', '24:00:00.000000', '1', '{"k": "v"}', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
      'happy', '00:00:00', '10.0.0.0/8', '{NULL,-1}', '23:59:59.999999-14:59', null,
    ],
    [
      '5', 0, 0, '0', '0', '0', 3.4028234663852886e38, Number.MIN_VALUE, 0, 'tab\there\nnewline', 'a\\b', 'c',
      Buffer.alloc(0), '9999-12-31', '1999-12-31 23:59:59.5 BC'.replace('.5', '.500000'), '2038-01-19 03:14:08.000000',
      '12:00:00.100000', '[]', '{}', 'abcdef01-2345-6789-abcd-ef0123456789', 'sad', '10 years', '0.0.0.0/0', '{7}',
      '12:00:00-01', null,
    ],
  ];

  beforeAll(async () => {
    shape = await shapeFor('kinds');
    const result = await db.applyChanges(shape, { upserts: rows, deletes: [] });
    expect(result).toEqual({ upserted: rows.length, deleted: 0 });
  });

  it('round-trips edge values losslessly into portable values', async () => {
    const fetched = await db.fetchByKeys(shape, [['1'], ['9223372036854775807'], [3], ['4'], [5], [6]]);
    const byId = new Map(fetched.map((row) => [String(row[0]), row]));
    expect(byId.size).toBe(5);
    const get = (id: string, name: string) => byId.get(id)![column(shape, name)];

    expect(get('1', 'id')).toBe('1');
    expect(get('1', 'i2')).toBe(-32768);
    expect(get('1', 'i8')).toBe('-9223372036854775808');
    expect(get('9223372036854775807', 'i8')).toBe('9223372036854775807');
    expect(get('1', 'n')).toBe('1.10');
    expect(get('1', 'n2')).toBe('123456789012345678901234567890.1234567890');
    expect(get('9223372036854775807', 'n')).toBe('1234567890123456789012345678901234567890.5');
    expect(get('1', 'f4')).toBe(0.1);
    expect(get('9223372036854775807', 'f8')).toBe(1e300);
    expect(get('1', 'b')).toBe(true);
    expect(get('4', 'b')).toBe(true);
    expect(get('9223372036854775807', 'b')).toBe(false);
    expect(get('1', 't')).toBe(emoji);
    expect(get('1', 'vc')).toBe('trailing  ');
    expect(get('9223372036854775807', 't')).toBe('');
    expect(get('3', 't')).toBeNull();
    expect(get('1', 'ch')).toBe('ab');
    expect(get('1', 'bt')).toEqual(Buffer.from([0x00]));
    expect(get('9223372036854775807', 'bt')).toEqual(Buffer.from([0xff]));
    expect(get('5', 'bt')).toEqual(Buffer.alloc(0));
    expect(get('1', 'd')).toBe('2024-02-29');
    expect(get('9223372036854775807', 'd')).toBe('0044-03-15 BC');
    expect(get('1', 'ts')).toBe('2024-01-01 10:00:00.123456');
    expect(get('9223372036854775807', 'ts')).toBe('0001-01-01 00:00:00.000000');
    expect(get('1', 'tstz')).toBe('2024-06-01 23:59:59.999999');
    expect(get('9223372036854775807', 'tstz')).toBe('1970-01-01 00:00:00.000001');
    expect(get('4', 'tstz')).toBe('-infinity');
    expect(get('1', 'tm')).toBe('23:59:59.999999');
    expect(get('9223372036854775807', 'tm')).toBe('00:00:00.000000');
    expect(get('4', 'tm')).toBe('24:00:00.000000');
    expect(get('1', 'j')).toBe('{"b": 1, "a": [1.0, 2e3]}');
    expect(canonicalJson(String(get('1', 'jb')))).toBe('{"a":{"y":null},"z":1}');
    expect(get('1', 'u')).toBe(uuidUpper.toLowerCase());
    expect(get('1', 'e')).toBe('happy');
    expect(get('1', 'arr')).toBe('{1,2,3}');
    expect(get('1', 'g')).toBe(-65536);
    expect(get('4', 'g')).toBe(10);
    expect(get('4', 'n')).toBe('5.00');
  });

  it('writes a timestamptz given as UTC text as that instant', async () => {
    const rows = await db.execute(
      `SELECT extract(epoch FROM tstz)::text AS epoch FROM ${SCHEMA}.kinds WHERE id = 9223372036854775807`,
    );
    expect(rows[0]!.epoch).toBe('0.000001');
  });

  it('computes in SQL exactly the checksum canonical.ts computes in Node', async () => {
    // Mixed: float and json hashed in Node (cursor path), the rest in SQL.
    await expectChecksumMatchesNode(shape);
    // Every column in SQL (single aggregate query).
    const sqlOnly = subset(shape, (c) => c.hashSite === 'sql');
    expect(sqlOnly.columns.every((c) => c.hashSite === 'sql')).toBe(true);
    await expectChecksumMatchesNode(sqlOnly);
    // Every column in Node (the SQL part is md5('')).
    const nodeOnly: TableShape = { ...shape, columns: shape.columns.map((c) => ({ ...c, hashSite: 'node' as const })) };
    await expectChecksumMatchesNode(nodeOnly);
    // Sub-ranges.
    await expectChecksumMatchesNode(shape, { lower: ['4'] });
    await expectChecksumMatchesNode(sqlOnly, { lower: [3], upper: ['5'] });
  });

  it('matches canonical.ts under kinds agreed with another engine', async () => {
    const agreed = withKinds(shape, {
      i2: 'boolean', i4: 'decimal', i8: 'text', n: 'text', f8: 'text', b: 'text', d: 'datetime', ts: 'text',
      tstz: 'text', u: 'text', t: 'json', bt: 'text', tm: 'text', id: 'decimal',
    });
    const sqlOnly = subset(agreed, (c) => c.hashSite === 'sql' && c.name !== 't');
    await expectChecksumMatchesNode(sqlOnly);
    const rows = await db.fetchRange(agreed, { lower: ['1'], upper: ['2'] }, 10);
    expect(rows[0]![column(agreed, 'd')]).toBe('2024-02-29 00:00:00.000000');
    expect(rows[0]![column(agreed, 'i4')]).toBe('-2147483648');
    // A date column agreed as datetime compares with the full timestamp bound, not a truncated date.
    const dateKeyed = await db.fetchRange(agreed, {}, 10);
    expect(dateKeyed.length).toBe(5);
  });

  it('changes the checksum when any one value changes, and gives zeros for an empty range', async () => {
    const before = await db.checksumRange(shape, {});
    await db.execute(`UPDATE ${SCHEMA}.kinds SET vc = 'trailing ' WHERE id = 1`);
    const after = await db.checksumRange(shape, {});
    expect(after.count).toBe(before.count);
    expect(after.sum).not.toBe(before.sum);
    await db.execute(`UPDATE ${SCHEMA}.kinds SET vc = 'trailing  ' WHERE id = 1`);
    expect(await db.checksumRange(shape, {})).toEqual(before);
    await db.execute(`UPDATE ${SCHEMA}.kinds SET f8 = 0.30000000000000004 WHERE id = 1`);
    expect(await db.checksumRange(shape, {})).not.toEqual(before);
    await db.execute(`UPDATE ${SCHEMA}.kinds SET f8 = 0.1 WHERE id = 1`);
    expect(await db.checksumRange(shape, { lower: [10], upper: [100] })).toEqual({ count: 0, sum: '0' });
    expect(await db.checksumRange(subset(shape, (c) => c.hashSite === 'sql'), { lower: [10], upper: [100] })).toEqual({
      count: 0, sum: '0',
    });
  });

  it('updates existing rows, deletes by key and reports requested counts', async () => {
    const row = (await db.fetchByKeys(shape, [['5']]))[0]!;
    const changed = [...row];
    changed[column(shape, 't')] = 'changed';
    const result = await db.applyChanges(shape, { upserts: [changed], deletes: [['3'], ['777']] });
    expect(result).toEqual({ upserted: 1, deleted: 2 });
    expect((await db.fetchByKeys(shape, [['5']]))[0]![column(shape, 't')]).toBe('changed');
    expect(await db.fetchByKeys(shape, [['3']])).toEqual([]);
  });

  it('rolls the whole change set back on error and translates the driver error', async () => {
    const before = await db.countRange(shape, {});
    const bad = [...rows[0]!];
    bad[0] = '100';
    bad[column(shape, 'b')] = 2; // not a boolean
    const error = await db
      .applyChanges(shape, { upserts: [bad], deletes: [['1']] })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'DB_QUERY_FAILED', retryable: false, connection: 'pgtest' });
    expect(await db.countRange(shape, {})).toBe(before);
    expect(await db.fetchByKeys(shape, [['1']])).toHaveLength(1);
    // A change set of one statement runs without BEGIN/COMMIT: still all or nothing.
    const good = [...rows[0]!];
    good[0] = '101';
    await expect(db.applyChanges(shape, { upserts: [good, bad], deletes: [] })).rejects.toBeInstanceOf(DatabaseError);
    expect(await db.fetchByKeys(shape, [['101'], ['100']])).toEqual([]);
  });
});

describe('keys', () => {
  const textKeys = ['b', 'a', 'B', 'é', 'a ', '😀', '', 'ab', 'a\t', 'Z', '~', 'ä'];
  const byteOrder = [...textKeys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

  for (const table of ['tk', 'tkc']) {
    it(`orders text keys in UTF-8 byte order and keeps ranges half-open (${table})`, async () => {
      const shape = await shapeFor(table);
      await db.applyChanges(shape, { upserts: textKeys.map((k, i) => [k, i]), deletes: [] });
      const all = await db.fetchRange(shape, {}, 100);
      expect(all.map((row) => row[0])).toEqual(byteOrder);
      const between = await db.fetchRange(shape, { lower: ['a'], upper: ['b'] }, 100);
      expect(between.map((row) => row[0])).toEqual(['a', 'a\t', 'a ', 'ab']);
      expect(await db.countRange(shape, { lower: ['B'], upper: ['a'] })).toBe(2); // 'B', 'Z'
      expect(await db.keyAtOffset(shape, {}, 0)).toEqual(['']);
      expect(await db.keyAtOffset(shape, { lower: ['a'] }, 3)).toEqual(['ab']);
      expect(await db.keyAtOffset(shape, { lower: ['é'] }, 2)).toBeUndefined();
      const checks = await db.checksumRange(shape, { lower: ['a '], upper: ['é'] });
      expect(checks).toEqual(checksumOfRows(shape, await db.fetchRange(shape, { lower: ['a '], upper: ['é'] }, 100)));
      expect(checks.count).toBe(5); // 'a ', 'ab', 'b', '~', 'ä'
    });
  }

  it('fetches and deletes by exact key only', async () => {
    const shape = await shapeFor('tk');
    const found = await db.fetchByKeys(shape, [['a'], ['A'], ['a  '], ['é'], ['E']]);
    expect(found.map((row) => row[0]).sort()).toEqual(['a', 'é']);
    await db.applyChanges(shape, { upserts: [], deletes: [['A'], ['a  ']] });
    expect(await db.countRange(shape, {})).toBe(textKeys.length);
    await db.applyChanges(shape, { upserts: [], deletes: [['a ']] });
    expect(await db.countRange(shape, {})).toBe(textKeys.length - 1);
    expect(await db.fetchByKeys(shape, [['a'], ['a ']])).toEqual([['a', 1]]);
  });

  it('uses lexicographic order over composite keys', async () => {
    const shape = await shapeFor('composite');
    const keys: [string, number][] = [['a', 2], ['a', 10], ['b', 1], ['B', 5], ['a', -1], ['é', 0], ['b', 0]];
    await db.applyChanges(shape, { upserts: keys.map(([a, b]) => [a, b, `${a}${b}`]), deletes: [] });
    const all = await db.fetchRange(shape, {}, 100);
    expect(all.map((row) => [row[0], row[1]])).toEqual([
      ['B', 5], ['a', -1], ['a', 2], ['a', 10], ['b', 0], ['b', 1], ['é', 0],
    ]);
    const range = await db.fetchRange(shape, { lower: ['a', 2], upper: ['b', 1] }, 100);
    expect(range.map((row) => [row[0], row[1]])).toEqual([['a', 2], ['a', 10], ['b', 0]]);
    expect(await db.keyAtOffset(shape, { lower: ['a', 0] }, 2)).toEqual(['b', 0]);
    expect(await db.countRange(shape, { upper: ['a', 2] })).toBe(2);
    const fetched = await db.fetchByKeys(shape, [['a', 2], ['A', 2], ['b', 1], ['b', 2]]);
    expect(fetched.map((row) => row[2]).sort()).toEqual(['a2', 'b1']);
    await expectChecksumMatchesNode(shape, { lower: ['a', 2] });
    // More keys than one statement takes.
    const many = Array.from({ length: 6000 }, (_, i) => [`k${i}`, i, 'v'] as Row);
    expect(await db.applyChanges(shape, { upserts: many, deletes: [] })).toEqual({ upserted: 6000, deleted: 0 });
    const back = await db.fetchByKeys(shape, many.map((row) => [row[0]!, row[1]!]));
    expect(back).toHaveLength(6000);
    expect(new Set(back.map((row) => keyIdentity(shape, [row[0]!, row[1]!]))).size).toBe(6000);
    expect(await db.applyChanges(shape, { upserts: [], deletes: many.map((row) => [row[0]!, row[1]!]) })).toEqual({
      upserted: 0, deleted: 6000,
    });
    expect(await db.countRange(shape, {})).toBe(keys.length);
  });

  it('orders uuid keys as lowercase text and accepts them in any case', async () => {
    const shape = await shapeFor('uk');
    const uuids = ['ffffffff-0000-0000-0000-000000000000', '0AAAAAAA-0000-0000-0000-000000000000', 'a0000000-0000-0000-0000-000000000000'];
    await db.applyChanges(shape, { upserts: uuids.map((u, i) => [u, i]), deletes: [] });
    const all = await db.fetchRange(shape, {}, 10);
    const lower = uuids.map((u) => u.toLowerCase()).sort();
    expect(all.map((row) => row[0])).toEqual(lower);
    expect(await db.keyAtOffset(shape, { lower: ['0b000000-0000-0000-0000-000000000000'] }, 0))
      .toEqual(['a0000000-0000-0000-0000-000000000000']);
    await expectChecksumMatchesNode(shape);
  });

  it('upserts into GENERATED ALWAYS identity columns and key-only tables', async () => {
    const identity = await shapeFor('idt');
    await db.applyChanges(identity, { upserts: [[10, 'ten'], [20, 'twenty']], deletes: [] });
    await db.applyChanges(identity, { upserts: [[10, 'TEN'], [10, 'TEN!']], deletes: [] });
    expect(await db.fetchRange(identity, {}, 10)).toEqual([[10, 'TEN!'], [20, 'twenty']]);
    const keyOnly = await shapeFor('keyonly');
    await db.applyChanges(keyOnly, { upserts: [[1, 'x'], [1, 'y']], deletes: [] });
    await db.applyChanges(keyOnly, { upserts: [[1, 'x']], deletes: [] });
    expect(await db.fetchRange(keyOnly, {}, 10)).toEqual([[1, 'x'], [1, 'y']]);
  });

  it('maps a boolean received as 0/1 and rejects nothing valid from MySQL', async () => {
    const shape = await shapeFor('kinds');
    const base = (await db.fetchByKeys(shape, [['1']]))[0]!;
    const row = [...base];
    row[0] = '200';
    row[column(shape, 'b')] = 0;
    await db.applyChanges(shape, { upserts: [row], deletes: [] });
    expect((await db.fetchByKeys(shape, [[200]]))[0]![column(shape, 'b')]).toBe(false);
    await db.applyChanges(shape, { upserts: [], deletes: [[200]] });
  });
});

describe('driver errors', () => {
  const secret = 'S3cretPassw0rd!';

  it('maps an unknown role to DB_ACCESS_DENIED without the password', async () => {
    const bad = new PostgresDatabase({
      connectionName: 'shop',
      url: urlWith((url) => {
        url.username = 'rowsync_no_such_role';
        url.password = encodeURIComponent(secret);
      }),
    });
    const error = await bad.listTables().catch((caught: unknown) => caught);
    await bad.close();
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'DB_ACCESS_DENIED', retryable: false, connection: 'shop' });
    expect(['28000', '28P01']).toContain((error as DatabaseError).engineCode);
    expect((error as Error).message).toMatch(/^connection shop \(postgres\): /);
    expect((error as Error).message).not.toContain(secret);
    expect((error as Error).message).not.toContain('postgres://');
  });

  it('maps a closed port to DB_CONNECTION_REFUSED (retryable)', async () => {
    const bad = new PostgresDatabase({
      connectionName: 'down',
      url: urlWith((url) => {
        url.hostname = '127.0.0.1';
        url.port = '1';
        url.password = encodeURIComponent(secret);
      }),
    });
    const error = await bad.countRange({ table: 'x', columns: [], keyIndexes: [] }, {}).catch((caught: unknown) => caught);
    await bad.close();
    expect(error).toMatchObject({ code: 'DB_CONNECTION_REFUSED', retryable: true, connection: 'down' });
    expect((error as Error).message).not.toContain(secret);
  });

  it('maps an unknown database to DB_UNKNOWN_DATABASE', async () => {
    const bad = new PostgresDatabase({
      connectionName: 'nodb',
      url: urlWith((url) => {
        url.pathname = '/rowsync_no_such_database';
      }),
    });
    const error = await bad.execute('SELECT 1').catch((caught: unknown) => caught);
    await bad.close();
    expect(error).toMatchObject({ code: 'DB_UNKNOWN_DATABASE', engineCode: '3D000', retryable: false });
  });

  it('maps query and constraint failures', async () => {
    await expect(db.execute('SELECT * FROM no_such_table_here')).rejects.toMatchObject({
      code: 'DB_QUERY_FAILED', engineCode: '42P01', connection: 'pgtest',
    });
    const shape = await shapeFor('composite');
    await expect(db.applyChanges(shape, { upserts: [['n', 1, null]], deletes: [] })).rejects.toMatchObject({
      code: 'DB_CONSTRAINT_VIOLATION', engineCode: '23502',
    });
  });
});
