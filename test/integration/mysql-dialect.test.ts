/**
 * The MySQL/MariaDB dialect against a real server (ROWSYNC_TEST_MYSQL_URL, default: the project's
 * MariaDB from scripts/services.sh). Works in its own database, rowsync_mysql_dialect, recreated here.
 *
 * The central check: checksumRange (canonical text rendered in SQL) equals checksumOfRows over the
 * rows fetchRange returns (canonical text rendered by canonical.ts in Node), for every kind and nasty
 * values, for every agreed-kind renderer and for all-SQL, mixed and all-Node hash sites.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksumOfRows, keyIdentity, rowHash } from '../../src/dialect/canonical.js';
import { MysqlDatabase } from '../../src/dialect/mysql/mysql-database.js';
import { rangePredicate } from '../../src/dialect/mysql/mysql-sql.js';
import { shapeOf } from '../../src/dialect/table-pair.js';
import type { KeyRange, PortableValue, Row, TableShape, ValueKind } from '../../src/dialect/types.js';
import { DatabaseError, SchemaError } from '../../src/errors/index.js';

const SERVER_URL = process.env.ROWSYNC_TEST_MYSQL_URL ?? 'mysql://rowsync:rowsync@127.0.0.1:13306/rowsync';
const DATABASE = 'rowsync_mysql_dialect';

function urlFor(database: string, change: (url: URL) => void = () => {}): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${database}`;
  change(url);
  return url.toString();
}

let db: MysqlDatabase;

beforeAll(async () => {
  const admin = new MysqlDatabase({ connectionName: 'mysql-admin', url: SERVER_URL, poolSize: 1 });
  try {
    await admin.execute(`DROP DATABASE IF EXISTS ${DATABASE}`);
    await admin.execute(`CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.close();
  }
  db = new MysqlDatabase({ connectionName: 'shop', url: urlFor(DATABASE), poolSize: 4 });
});

afterAll(async () => {
  await db?.close();
});

async function shape(table: string): Promise<TableShape> {
  return shapeOf(db, await db.describeTable(table));
}

/** The same shape with some columns' agreed kinds or hash sites replaced (as a table pair would). */
function reshaped(base: TableShape, changes: Record<string, { kind?: ValueKind; hashSite?: 'sql' | 'node' }>): TableShape {
  return {
    ...base,
    columns: base.columns.map((column) => {
      const change = changes[column.name] ?? {};
      const kind = change.kind ?? column.kind;
      const hashSite = change.hashSite ?? (kind === 'float' || kind === 'json' ? 'node' : column.hashSite);
      return { ...column, kind, hashSite };
    }),
  };
}

function allNode(base: TableShape): TableShape {
  return { ...base, columns: base.columns.map((column) => ({ ...column, hashSite: 'node' as const })) };
}

async function expectChecksumMatchesNode(s: TableShape, range: KeyRange = {}): Promise<void> {
  const rows = await db.fetchRange(s, range, 1_000_000);
  const inSql = await db.checksumRange(s, range);
  expect(inSql).toEqual(checksumOfRows(s, rows));
  expect(inSql.count).toBe(rows.length);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// ------------------------------------------------------------------------------------------------

const KINDS_TABLE = `CREATE TABLE kinds (
  id_b VARCHAR(20) NOT NULL,
  id_a INT NOT NULL,
  c_bool TINYINT(1) NULL,
  c_tiny TINYINT NULL,
  c_small SMALLINT UNSIGNED NULL,
  c_medium MEDIUMINT NULL,
  c_int INT UNSIGNED NULL,
  c_big BIGINT NULL,
  c_ubig BIGINT UNSIGNED NULL,
  c_year YEAR NULL,
  c_dec DECIMAL(65,30) NULL,
  c_dec2 DECIMAL(10,2) NULL,
  c_dec0 DECIMAL(20,0) NULL,
  c_float FLOAT NULL,
  c_double DOUBLE NULL,
  c_bit1 BIT(1) NULL,
  c_bit9 BIT(9) NULL,
  c_char CHAR(5) NULL,
  c_varchar VARCHAR(100) NULL,
  c_latin VARCHAR(20) CHARACTER SET latin1 NULL,
  c_mb3 VARCHAR(20) CHARACTER SET utf8mb3 NULL,
  c_bincoll VARCHAR(20) COLLATE utf8mb4_bin NULL,
  c_text TEXT NULL,
  c_enum ENUM('x','yé','') NULL,
  c_set SET('a','b','c') NULL,
  c_binary BINARY(4) NULL,
  c_varbinary VARBINARY(10) NULL,
  c_blob BLOB NULL,
  c_date DATE NULL,
  c_dt6 DATETIME(6) NULL,
  c_dt0 DATETIME NULL,
  c_dt3 DATETIME(3) NULL,
  c_ts TIMESTAMP(6) NULL DEFAULT NULL,
  c_time6 TIME(6) NULL,
  c_time0 TIME NULL,
  c_json JSON NULL,
  c_uuid UUID NULL,
  c_uuid_char CHAR(36) NULL,
  c_inet6 INET6 NULL,
  c_gen BIGINT AS (c_big + 1) VIRTUAL,
  c_gen_stored VARCHAR(120) AS (CONCAT('<', c_varchar, '>')) PERSISTENT,
  PRIMARY KEY (id_b, id_a)
)`;

const KINDS: Record<string, ValueKind> = {
  id_b: 'text', id_a: 'integer', c_bool: 'boolean', c_tiny: 'integer', c_small: 'integer', c_medium: 'integer',
  c_int: 'integer', c_big: 'integer', c_ubig: 'integer', c_year: 'integer', c_dec: 'decimal', c_dec2: 'decimal',
  c_dec0: 'decimal', c_float: 'float', c_double: 'float', c_bit1: 'boolean', c_bit9: 'binary', c_char: 'text',
  c_varchar: 'text', c_latin: 'text', c_mb3: 'text', c_bincoll: 'text', c_text: 'text', c_enum: 'text', c_set: 'text', c_binary: 'binary',
  c_varbinary: 'binary', c_blob: 'binary', c_date: 'date', c_dt6: 'datetime', c_dt0: 'datetime', c_dt3: 'datetime',
  c_ts: 'datetime', c_time6: 'time', c_time0: 'time', c_json: 'json', c_uuid: 'uuid', c_uuid_char: 'text',
  c_inet6: 'text', c_gen: 'integer', c_gen_stored: 'text',
};

type KindsRow = Record<string, PortableValue>;

/** Values as written; `expected` overrides what a read must return where the column normalizes. */
const EDGE_ROWS: readonly { written: KindsRow; expected?: KindsRow }[] = [
  {
    written: {
      id_b: 'a', id_a: 1, c_bool: 1, c_tiny: -128, c_small: 65535, c_medium: -8388608, c_int: 4294967295,
      c_big: '-9223372036854775808', c_ubig: '18446744073709551615', c_year: 2155,
      c_dec: '12345678901234567890123456789012345.123456789012345678901234567890', c_dec2: '-0.01', c_dec0: '-12345678901234567890',
      c_float: 0.1, c_double: 0.1 + 0.2, c_bit1: 1, c_bit9: Buffer.from([0x01, 0x2c]), c_char: 'ab', c_varchar: 'Hello 😀 wörld  ',
      c_latin: 'café', c_mb3: 'naïve ☃ Ω', c_bincoll: 'Straße 😀', c_text: 'line1\nline2\ttab \\ back \'quote" `tick` ; DROP TABLE x; -- \u0000nul', c_enum: 'yé', c_set: 'a,c',
      c_binary: Buffer.from([0, 1, 2, 3]), c_varbinary: Buffer.from([0xff]), c_blob: Buffer.from([0]), c_date: '2024-02-29',
      c_dt6: '2024-02-29 23:59:59.999999', c_dt0: '2024-01-01 10:00:00.000000', c_dt3: '2024-01-01 10:00:00.123000',
      c_ts: '2038-01-19 03:14:07.999999', c_time6: '-838:59:59.000000', c_time0: '838:59:59.000000',
      c_json: '{"b": [1, 2.50, "x", 1e2], "a": {"nested": true, "n": null}, "big": 123456789012345678901234567890}',
      c_uuid: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', c_uuid_char: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', c_inet6: '2001:db8::1',
      c_gen: null, c_gen_stored: null,
    },
    expected: {
      c_float: 0.1, c_uuid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', c_gen: '-9223372036854775807', c_gen_stored: '<Hello 😀 wörld  >',
      c_bit1: 1,
    },
  },
  {
    written: {
      id_b: 'a ', id_a: 2, c_bool: 0, c_tiny: 0, c_small: 0, c_medium: 0, c_int: 0, c_big: '9223372036854775806',
      c_ubig: '0', c_year: 1901, c_dec: '-0.000000000000000000000000000001', c_dec2: '100.00', c_dec0: '0',
      c_float: -3.25, c_double: -1.5e-300, c_bit1: 0, c_bit9: Buffer.from([0x00, 0x00]), c_char: '', c_varchar: '',
      c_latin: '', c_mb3: '', c_bincoll: ' ', c_text: '', c_enum: '', c_set: '', c_binary: Buffer.alloc(4), c_varbinary: Buffer.alloc(0),
      c_blob: Buffer.alloc(0), c_date: '1000-01-01', c_dt6: '1000-01-01 00:00:00.000000', c_dt0: '9999-12-31 23:59:59.000000',
      c_dt3: '2000-01-01 00:00:00.000000', c_ts: '1970-01-01 00:00:01.000000', c_time6: '-00:00:00.500000',
      c_time0: '00:00:00.000000', c_json: '[]', c_uuid: '00000000-0000-0000-0000-000000000000',
      c_uuid_char: '', c_inet6: '::', c_gen: null, c_gen_stored: null,
    },
    expected: { c_gen: '9223372036854775807', c_gen_stored: '<>' },
  },
  {
    // NULL everywhere except the key (NULL and '' must differ).
    written: { ...(Object.fromEntries(Object.keys(KINDS).map((name) => [name, null])) as KindsRow), id_b: 'nul', id_a: 3 },
  },
  {
    written: {
      id_b: 'é', id_a: -2147483648, c_bool: 2, c_tiny: 127, c_small: 1, c_medium: 8388607, c_int: 1, c_big: '9007199254740993',
      c_ubig: '9007199254740993', c_year: 2024, c_dec: '1.100000000000000000000000000000', c_dec2: '5', c_dec0: '99999999999999999999',
      c_float: 3.4028234663852886e38, c_double: 1e300, c_bit1: 1, c_bit9: Buffer.from([0x01, 0xff]), c_char: 'abcde',
      c_varchar: 'ABC', c_latin: 'ÿ', c_text: 'x'.repeat(5000), c_enum: 'x', c_set: 'b', c_binary: Buffer.from('ab\u0000\u0000'),
      c_varbinary: Buffer.from([0, 0, 0]), c_blob: Buffer.from(Array.from({ length: 256 }, (_, i) => i)), c_date: '9999-12-31',
      c_dt6: '2024-06-30 12:00:00.000001', c_dt0: '1000-01-01 00:00:00.000000', c_dt3: '2024-06-30 12:00:00.999000',
      c_ts: '2024-06-30 12:00:00.000001', c_time6: '23:59:59.000001', c_time0: '-01:00:00.000000',
      c_json: '"string with \\"escapes\\" and \\u00e9"', c_uuid: 'ffffffff-ffff-ffff-ffff-ffffffffffff',
      c_uuid_char: 'not a uuid, just text', c_inet6: '::ffff:192.168.0.1', c_gen: null, c_gen_stored: null,
    },
    expected: { c_dec2: '5.00', c_gen: '9007199254740994', c_gen_stored: '<ABC>' },
  },
];

function rowOf(s: TableShape, values: KindsRow): Row {
  return s.columns.map((column) => values[column.name] ?? null);
}

describe('MysqlDatabase', () => {
  let kinds: TableShape;

  beforeAll(async () => {
    await db.execute(KINDS_TABLE);
    kinds = await shape('kinds');
    await db.applyChanges(kinds, { upserts: EDGE_ROWS.map(({ written }) => rowOf(kinds, written)), deletes: [] });
  });

  describe('introspection', () => {
    it('maps every column type to its kind, in ordinal order, with the composite key in key order', async () => {
      const schema = await db.describeTable('kinds');
      expect(schema.name).toBe('kinds');
      expect(schema.primaryKey).toEqual(['id_b', 'id_a']);
      expect(Object.fromEntries(schema.columns.map((column) => [column.name, column.kind]))).toEqual(KINDS);
      expect(schema.columns.map((column) => column.name)).toEqual(Object.keys(KINDS));
      const byName = new Map(schema.columns.map((column) => [column.name, column]));
      expect(byName.get('id_a')).toMatchObject({ nullable: false, generated: false, nativeType: 'int(11)' });
      expect(byName.get('c_ubig')).toMatchObject({ nullable: true, nativeType: 'bigint(20) unsigned' });
      expect(byName.get('c_dec')?.nativeType).toBe('decimal(65,30)');
      expect(byName.get('c_gen')?.generated).toBe(true);
      expect(byName.get('c_gen_stored')?.generated).toBe(true);
      expect(byName.get('c_ts')?.generated).toBe(false);
    });

    it('reports missing tables, views, keyless tables and spatial types with codes and subjects', async () => {
      await db.execute('CREATE TABLE keyless (a INT)');
      await db.execute('CREATE TABLE geo (id INT PRIMARY KEY, g POINT)');
      await db.execute('CREATE VIEW kinds_view AS SELECT id_a FROM kinds');

      const missing = await db.describeTable('nope').catch((error: unknown) => error);
      expect(missing).toBeInstanceOf(SchemaError);
      expect(missing).toMatchObject({ code: 'TABLE_NOT_FOUND', subject: 'shop.nope' });
      expect((missing as Error).message).toMatch(/nope.*shop/);

      await expect(db.describeTable('kinds_view')).rejects.toMatchObject({ code: 'TABLE_NOT_FOUND' });
      await expect(db.describeTable('KINDS')).rejects.toMatchObject({ code: 'TABLE_NOT_FOUND' });

      const keyless = await db.describeTable('keyless').catch((error: unknown) => error);
      expect(keyless).toMatchObject({ code: 'NO_PRIMARY_KEY', subject: 'shop.keyless' });
      expect((keyless as Error).message).toMatch(/keyless.*shop/);

      const spatial = await db.describeTable('geo').catch((error: unknown) => error);
      expect(spatial).toMatchObject({ code: 'UNSUPPORTED_TYPE', subject: 'shop.geo.g' });
      expect((spatial as Error).message).toMatch(/column g of table geo on connection shop/);

      const tables = await db.listTables();
      expect(tables).toContain('kinds');
      expect(tables).toContain('keyless');
      expect(tables).not.toContain('kinds_view');
      expect([...tables].sort(byteOrder)).toEqual(tables);
    });

    it('survives any identifier: backticks, quotes, spaces, semicolons, reserved words, unicode', async () => {
      const table = 'we`ird "t;able\' select ü';
      const column = 'c`ol "x; from\' é';
      const q = (name: string) => db.quoteIdentifier(name);
      await db.execute(`CREATE TABLE ${q(table)} (${q('select')} INT NOT NULL, ${q(column)} VARCHAR(20), PRIMARY KEY (${q('select')}))`);
      expect(await db.listTables()).toContain(table);
      const s = await shape(table);
      expect(s.columns.map((c) => c.name)).toEqual(['select', column]);
      expect(await db.applyChanges(s, { upserts: [[1, 'one'], [2, null]], deletes: [] })).toEqual({ upserted: 2, deleted: 0 });
      const fetched = await db.fetchByKeys(s, [[1], [2], [3]]);
      expect(fetched).toHaveLength(2);
      expect(fetched).toEqual(expect.arrayContaining([[1, 'one'], [2, null]]));
      expect(await db.countRange(s, { lower: [2] })).toBe(1);
      expect(await db.keyAtOffset(s, {}, 1)).toEqual([2]);
      await expectChecksumMatchesNode(s);
      expect(await db.applyChanges(s, { upserts: [], deletes: [[1]] })).toEqual({ upserted: 0, deleted: 1 });
      expect(await db.countRange(s, {})).toBe(1);
    });
  });

  describe('round trip', () => {
    it('reads back exactly what was written, portable forms normalized', async () => {
      const keys = EDGE_ROWS.map(({ written }) => [written.id_b ?? null, written.id_a ?? null]);
      const rows = await db.fetchByKeys(kinds, keys);
      expect(rows).toHaveLength(EDGE_ROWS.length);
      for (const { written, expected } of EDGE_ROWS) {
        const row = rows.find((candidate) => candidate[0] === written.id_b)!;
        expect(row).toBeDefined();
        const want = { ...written, ...expected };
        kinds.columns.forEach((column, index) => {
          if (column.name === 'c_float') return; // single precision: checked below
          expect({ column: column.name, value: row[index] }).toEqual({ column: column.name, value: want[column.name] ?? null });
        });
      }
      const first = rows.find((row) => row[0] === 'a')!;
      const index = (name: string) => kinds.columns.findIndex((column) => column.name === name);
      expect(first[index('c_json')]).toBe(EDGE_ROWS[0]!.written.c_json); // MariaDB keeps JSON text as written
      expect(first[index('c_double')]).toBe(0.1 + 0.2); // DOUBLE: shortest round-trip digits
      // FLOAT: the shortest decimal of the single-precision value, as PostgreSQL prints a real.
      expect(first[index('c_float')]).toBe(0.1);
      const last = rows.find((row) => row[0] === 'é')!;
      expect(last[index('c_float')]).toBe(3.4028235e38);
      expect(first[index('c_ubig')]).toBe('18446744073709551615');
      expect(first[index('c_big')]).toBe('-9223372036854775808');
      expect(first[index('c_blob')]).toEqual(Buffer.from([0]));
    });

    it('distinguishes NULL from empty values', async () => {
      const [nulls] = await db.fetchByKeys(kinds, [['nul', 3]]);
      expect(nulls?.slice(2)).toEqual(kinds.columns.slice(2).map(() => null));
      const [empty] = await db.fetchByKeys(kinds, [['a ', 2]]);
      expect(empty?.[kinds.columns.findIndex((c) => c.name === 'c_varchar')]).toBe('');
      const varchar = kinds.columns.findIndex((c) => c.name === 'c_varchar');
      const withNull = empty!.map((value, i) => (i === varchar ? null : value));
      expect(checksumOfRows(kinds, [empty!])).not.toEqual(checksumOfRows(kinds, [withNull]));
    });

    it('upserts replace rows, deletes are counted as requested, errors roll the whole batch back', async () => {
      const s = await (async () => {
        await db.execute('CREATE TABLE rt (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(5) NOT NULL)');
        return shape('rt');
      })();
      expect(await db.applyChanges(s, { upserts: [['18446744073709551615', 'x'], [0, 'zero']], deletes: [] })).toEqual({ upserted: 2, deleted: 0 });
      expect(await db.applyChanges(s, { upserts: [['18446744073709551615', 'y']], deletes: [[0]] })).toEqual({ upserted: 1, deleted: 1 });
      expect(await db.fetchRange(s, {}, 10)).toEqual([['18446744073709551615', 'y']]);
      // 18446744073709551614 must not match ...615 (a quoted string would compare as DOUBLE).
      expect(await db.fetchByKeys(s, [['18446744073709551614']])).toEqual([]);

      const failed = await db
        .applyChanges(s, { upserts: [[5, 'ok'], [6, 'too long for v']], deletes: [['18446744073709551615']] })
        .catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(DatabaseError);
      expect(failed).toMatchObject({ connection: 'shop', retryable: false });
      expect((failed as Error).message).toMatch(/^connection shop \(mysql\)/);
      expect(await db.fetchRange(s, {}, 10)).toEqual([['18446744073709551615', 'y']]);
      // A change set of one statement runs without BEGIN/COMMIT: still all or nothing.
      await expect(db.applyChanges(s, { upserts: [[7, 'ok'], [8, 'too long for v']], deletes: [] })).rejects.toBeInstanceOf(DatabaseError);
      expect(await db.fetchByKeys(s, [[7], [8]])).toEqual([]);

      // Large batches are split into several statements inside the one transaction.
      const many = Array.from({ length: 2_500 }, (_, i) => [i + 1, `v${i % 1000}`] as Row);
      expect(await db.applyChanges(s, { upserts: many, deletes: [] })).toEqual({ upserted: 2_500, deleted: 0 });
      expect(await db.countRange(s, {})).toBe(2_501);
      const deleted = await db.applyChanges(s, { upserts: [], deletes: many.map((row) => [row[0]!]) });
      expect(deleted).toEqual({ upserted: 0, deleted: 2_500 });
      expect(await db.countRange(s, {})).toBe(1);
    });

    it('writes rows read back unchanged (FLOAT max included) and records conflicts', async () => {
      await db.execute('CREATE TABLE kinds_copy LIKE kinds');
      const copy: TableShape = { ...kinds, table: 'kinds_copy' };
      const rows = await db.fetchRange(kinds, {}, 100);
      await db.applyChanges(copy, { upserts: rows, deletes: [] });
      expect(await db.fetchRange(copy, {}, 100)).toEqual(rows);
      expect(await db.checksumRange(copy, {})).toEqual(await db.checksumRange(kinds, {}));

      const record = { pipeline: 'p', table: 't', key: { id: 1 }, sourceRow: { id: 1, b: Buffer.from([1]) }, targetRow: { id: 1, v: 'é' } };
      await db.recordConflicts([record]);
      await db.recordConflicts([{ ...record, targetRow: { id: 1, v: 'x' } }]);
      const stored = await db.execute('SELECT pipeline, table_name, row_key, source_row, target_row, status FROM rowsync_conflicts');
      expect(stored).toEqual([
        { pipeline: 'p', table_name: 't', row_key: '{"id":1}', source_row: '{"id":1,"b":{"$hex":"01"}}', target_row: '{"id":1,"v":"x"}', status: 'pending' },
      ]);
    });

    it('accepts the portable values PostgreSQL produces (booleans, numbers, strings for integers)', async () => {
      await db.execute('CREATE TABLE from_pg (id INT PRIMARY KEY, b TINYINT(1), bit1 BIT(1), big BIGINT, d DECIMAL(10,3), ts TIMESTAMP(6) NULL, j JSON, u CHAR(36), dt DATE)');
      const s = await shape('from_pg');
      await db.applyChanges(s, {
        upserts: [[1, true, false, 42, 1.5, '2024-01-01 00:00:00.000000', '{"a":1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-01-02']],
        deletes: [],
      });
      expect(await db.fetchRange(s, {}, 10)).toEqual([
        [1, 1, 0, '42', '1.500', '2024-01-01 00:00:00.000000', '{"a":1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-01-02'],
      ]);
      // The session is UTC whatever the server's zone: the instant is stored as written.
      expect(await db.execute('SELECT UNIX_TIMESTAMP(ts) AS t FROM from_pg')).toEqual([{ t: '1704067200.000000' }]);
    });
  });

  describe('checksumRange equals the Node reference', () => {
    it('for every kind and edge value (all SQL except float/json)', async () => {
      expect(kinds.columns.filter((c) => c.hashSite === 'node').map((c) => c.name)).toEqual(['c_float', 'c_double', 'c_json']);
      await expectChecksumMatchesNode(kinds);
      await expectChecksumMatchesNode(kinds, { lower: ['a', 1], upper: ['é', 0] });
      await expectChecksumMatchesNode(kinds, { lower: ['a '] });
    });

    it('when every column is rendered in SQL', async () => {
      const s = reshaped(kinds, {});
      const sqlOnly: TableShape = { ...s, columns: s.columns.filter((c) => c.hashSite === 'sql') };
      await expectChecksumMatchesNode(sqlOnly);
    });

    it('when every column is hashed in Node (the SQL part is md5(\'\'))', async () => {
      await expectChecksumMatchesNode(allNode(kinds));
    });

    it('for kinds agreed with another engine (int as decimal/text/boolean, char(36) as uuid, date as datetime, ...)', async () => {
      await expectChecksumMatchesNode(
        reshaped(kinds, {
          c_int: { kind: 'decimal' },
          c_ubig: { kind: 'text' },
          c_dec2: { kind: 'text' },
          c_tiny: { kind: 'boolean' },
          c_big: { kind: 'float' },
          c_dec0: { kind: 'float' },
          c_uuid_char: { kind: 'text' },
          c_date: { kind: 'datetime' },
          c_dt0: { kind: 'text' },
          c_time6: { kind: 'text' },
          c_blob: { kind: 'text' },
          c_year: { kind: 'text' },
          c_bit1: { kind: 'integer' },
          c_inet6: { kind: 'text' },
          c_uuid: { kind: 'text' },
        }),
      );
      await db.execute('CREATE TABLE uuids (id CHAR(36) PRIMARY KEY, v INT)');
      const uuids = reshaped(await shape('uuids'), { id: { kind: 'uuid' } });
      await db.applyChanges(uuids, { upserts: [['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 1], ['00000000-0000-0000-0000-00000000000b', 2]], deletes: [] });
      await expectChecksumMatchesNode(uuids);
      expect(await db.fetchByKeys(uuids, [['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']])).toHaveLength(1);
      // uuid keys order as lowercase text, like PostgreSQL's uuid
      expect(await db.keyAtOffset(uuids, {}, 0)).toEqual(['00000000-0000-0000-0000-00000000000b']);
    });

    it('changes with any single value and is zero for an empty range', async () => {
      const s = await (async () => {
        await db.execute('CREATE TABLE sensitive_t (id INT PRIMARY KEY, t VARCHAR(10), d DECIMAL(10,2), ts DATETIME(6))');
        return shape('sensitive_t');
      })();
      expect(await db.checksumRange(s, {})).toEqual({ count: 0, sum: '0' });
      const base: Row = [1, 'abc', '1.50', '2024-01-01 00:00:00.000001'];
      await db.applyChanges(s, { upserts: [base], deletes: [] });
      const before = await db.checksumRange(s, {});
      for (const variant of [
        [1, 'ABC', '1.50', '2024-01-01 00:00:00.000001'],
        [1, 'abc ', '1.50', '2024-01-01 00:00:00.000001'],
        [1, '', '1.50', '2024-01-01 00:00:00.000001'],
        [1, null, '1.50', '2024-01-01 00:00:00.000001'],
        [1, 'abc', '1.51', '2024-01-01 00:00:00.000001'],
        [1, 'abc', '1.50', '2024-01-01 00:00:00.000002'],
      ] as Row[]) {
        await db.applyChanges(s, { upserts: [variant], deletes: [] });
        const after = await db.checksumRange(s, {});
        expect(after).not.toEqual(before);
        expect(after).toEqual(checksumOfRows(s, [variant]));
      }
      // 1.50 and 1.5 are the same decimal
      expect(checksumOfRows(s, [[1, 'abc', '1.5', '2024-01-01 00:00:00.000001']])).toEqual(before);
      expect(await db.checksumRange(s, { lower: [2] })).toEqual({ count: 0, sum: '0' });
    });
    it('falls back to Node when a row canonical text exceeds max_allowed_packet', async () => {
      await db.execute('CREATE TABLE huge (id INT PRIMARY KEY, b LONGBLOB, f DOUBLE)');
      const s = await shape('huge');
      // 9 MB of bytes render to 18 MB of hex: CONCAT returns NULL above max_allowed_packet (16 MB).
      await db.execute("INSERT INTO huge VALUES (1, REPEAT('x', 9000000), 1.5), (2, 'small', NULL)");
      const sqlOnly: TableShape = { ...s, columns: s.columns.filter((column) => column.hashSite === 'sql') };
      for (const candidate of [s, sqlOnly]) {
        const rows = await db.fetchRange(candidate, {}, 10);
        expect(await db.checksumRange(candidate, {})).toEqual(checksumOfRows(candidate, rows));
        const hashes = rows.map((row) => ({ key: [row[0]], hash: rowHash(candidate, row) }));
        expect(await db.rowHashes(candidate, [{ upper: [2] }, { lower: [2] }], 10)).toEqual(hashes);
        expect(await db.rowHashes(candidate, [{ upper: [2] }, { lower: [2] }], 1)).toEqual(hashes.slice(0, 1));
        // The bucketed checksum takes the same fallback: one bucket per row at width 1.
        expect(await db.checksumBuckets(candidate, {}, 1)).toEqual(
          rows.map((row) => ({ bucket: String(row[0]), ...checksumOfRows(candidate, [row]) })),
        );
      }
    });
  });

  describe('key order', () => {
    const TEXT_KEYS = ['B', 'a', 'a ', 'a\t', 'aa', 'b', 'é', 'z', 'Z', '😀', 'ABC', '', '\u00a0'];
    const SORTED = [...TEXT_KEYS].sort(byteOrder);
    let bin: TableShape;
    let ci: TableShape;

    beforeAll(async () => {
      // NO PAD binary collation so that 'a' and 'a ' can both be keys.
      await db.execute('CREATE TABLE keys_bin (k VARCHAR(20) COLLATE utf8mb4_nopad_bin PRIMARY KEY, n INT)');
      bin = await shape('keys_bin');
      await db.applyChanges(bin, { upserts: TEXT_KEYS.map((k, i) => [k, i]), deletes: [] });
      await db.execute('CREATE TABLE keys_ci (k VARCHAR(20) PRIMARY KEY, n INT)'); // utf8mb4_unicode_ci, PAD SPACE
      ci = await shape('keys_ci');
      await db.applyChanges(ci, { upserts: [['ABC', 1], ['a ', 2], ['b', 3]], deletes: [] });
    });

    it('orders text keys by UTF-8 bytes (B < a < b < é), not by collation', async () => {
      expect((await db.fetchRange(bin, {}, 100)).map((row) => row[0])).toEqual(SORTED);
      for (let offset = 0; offset < SORTED.length; offset += 1) {
        expect(await db.keyAtOffset(bin, {}, offset)).toEqual([SORTED[offset]]);
      }
      expect(await db.keyAtOffset(bin, {}, SORTED.length)).toBeUndefined();
    });

    it('applies lower-inclusive, upper-exclusive byte-order bounds', async () => {
      const inRange = (lower?: string, upper?: string) =>
        SORTED.filter((k) => (lower === undefined || byteOrder(k, lower) >= 0) && (upper === undefined || byteOrder(k, upper) < 0));
      for (const [lower, upper] of [['a', 'b'], ['a', 'a '], ['a ', 'aa'], ['B', 'a'], [undefined, 'a'], ['é', undefined], ['a', 'a']] as const) {
        const range: KeyRange = { ...(lower !== undefined ? { lower: [lower] } : {}), ...(upper !== undefined ? { upper: [upper] } : {}) };
        const expected = inRange(lower, upper);
        expect((await db.fetchRange(bin, range, 100)).map((row) => row[0])).toEqual(expected);
        expect(await db.countRange(bin, range)).toBe(expected.length);
        expect(await db.keyAtOffset(bin, range, 0)).toEqual(expected.length > 0 ? [expected[0]] : undefined);
        await expectChecksumMatchesNode(bin, range);
      }
    });

    it('orders composite keys lexicographically', async () => {
      await db.execute('CREATE TABLE composite (a INT, b VARCHAR(10), c DATETIME(6), PRIMARY KEY (a, b, c))');
      const s = await shape('composite');
      const rows: Row[] = [];
      for (const a of [-1, 0, 1]) for (const b of ['B', 'a', 'é']) for (const c of ['2024-01-01 00:00:00.000000', '2024-01-01 00:00:00.000001']) rows.push([a, b, c]);
      await db.applyChanges(s, { upserts: [...rows].reverse(), deletes: [] });
      const all = (await db.fetchRange(s, {}, 100)).map((row) => row.join('|'));
      expect(all).toEqual(rows.map((row) => row.join('|')));
      const lower = rows[3]!;
      const upper = rows[14]!;
      const slice = await db.fetchRange(s, { lower, upper }, 100);
      expect(slice).toEqual(rows.slice(3, 14));
      expect(await db.keyAtOffset(s, { lower, upper }, 10)).toEqual(rows[13]);
      expect(await db.keyAtOffset(s, { lower, upper }, 11)).toBeUndefined();
      // A prefix bound compares the prefix.
      expect(await db.countRange(s, { lower: [0], upper: [1] })).toBe(6);
      expect(await db.countRange(s, { lower: [0, 'a'] })).toBe(10);
      await expectChecksumMatchesNode(s, { lower, upper });
    });

    it('matches keys exactly under a case-insensitive PAD SPACE collation', async () => {
      expect(await db.fetchByKeys(ci, [['abc']])).toEqual([]);
      expect(await db.fetchByKeys(ci, [['ABC']])).toEqual([['ABC', 1]]);
      expect(await db.fetchByKeys(ci, [['a']])).toEqual([]);
      expect(await db.fetchByKeys(ci, [['a '], ['B']])).toEqual([['a ', 2]]);
      // A delete of 'abc' or 'a' must not remove 'ABC' or 'a '.
      await db.applyChanges(ci, { upserts: [], deletes: [['abc'], ['a']] });
      expect((await db.fetchRange(ci, {}, 10)).map((row) => row[0])).toEqual(['ABC', 'a ', 'b']);
      // An upsert of 'abc' converges the row the collation cannot tell apart.
      await db.applyChanges(ci, { upserts: [['abc', 9]], deletes: [] });
      expect(await db.fetchByKeys(ci, [['abc'], ['ABC']])).toEqual([['abc', 9]]);
    });

    it('batches fetchByKeys over thousands of keys', async () => {
      const s = await shape('rt');
      await db.applyChanges(s, { upserts: Array.from({ length: 4_500 }, (_, i) => [i + 1, 'k'] as Row), deletes: [] });
      const keys = Array.from({ length: 5_000 }, (_, i) => [i + 1] as const);
      const rows = await db.fetchByKeys(s, keys);
      expect(rows).toHaveLength(4_500);
      expect(new Set(rows.map((row) => keyIdentity(s, [row[0]!]))).size).toBe(4_500);
    });

    it('uses the primary key index for integer ranges (no function around the column)', async () => {
      const s = await shape('rt');
      const plan = await db.execute(`EXPLAIN SELECT id FROM rt WHERE ${rangePredicate(s, { lower: [5], upper: [10] })}`);
      expect(plan[0]).toMatchObject({ key: 'PRIMARY', type: 'range' });
      await db.execute('CREATE TABLE composite_int (a INT, b INT, v VARCHAR(10), PRIMARY KEY (a, b))');
      await db.execute('INSERT INTO composite_int SELECT seq DIV 100, seq MOD 100, \'x\' FROM seq_0_to_9999');
      const c = await shape('composite_int');
      const compositePlan = await db.execute(
        `EXPLAIN SELECT a, b FROM composite_int WHERE ${rangePredicate(c, { lower: [50, 7], upper: [52, 3] })}`,
      );
      expect(compositePlan[0]).toMatchObject({ key: 'PRIMARY', type: 'range' });
      await expectChecksumMatchesNode(c, { lower: [50, 7], upper: [52, 3] });
      expect(await db.countRange(c, { lower: [50, 7], upper: [52, 3] })).toBe(196);
    });
  });

  describe('errors', () => {
    async function failure(url: string): Promise<DatabaseError> {
      const other = new MysqlDatabase({ connectionName: 'shop', url, poolSize: 1 });
      try {
        const error = await other.listTables().then(() => undefined, (caught: unknown) => caught);
        expect(error).toBeInstanceOf(DatabaseError);
        return error as DatabaseError;
      } finally {
        await other.close().catch(() => {});
      }
    }

    it('wrong password -> DB_ACCESS_DENIED, without the password', async () => {
      const secret = 'Sup3rSecretPassw0rd';
      const error = await failure(urlFor(DATABASE, (url) => { url.password = secret; }));
      expect(error.code).toBe('DB_ACCESS_DENIED');
      expect(error.retryable).toBe(false);
      expect(error.connection).toBe('shop');
      expect(error.message).toMatch(/^connection shop \(mysql\): access denied/);
      expect(error.message).not.toContain(secret);
      expect(error.message).not.toContain('mysql://');
      expect(error.engineCode).toBe('ER_ACCESS_DENIED_ERROR');
    });

    it('closed port -> DB_CONNECTION_REFUSED (retryable)', async () => {
      const port = await new Promise<number>((resolve) => {
        const server = createServer();
        server.listen(0, '127.0.0.1', () => {
          const address = server.address();
          server.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
        });
      });
      const error = await failure(urlFor(DATABASE, (url) => { url.hostname = '127.0.0.1'; url.port = String(port); }));
      expect(error.code).toBe('DB_CONNECTION_REFUSED');
      expect(error.retryable).toBe(true);
    });

    it('unknown database -> DB_UNKNOWN_DATABASE', async () => {
      const error = await failure(urlFor('rowsync_no_such_database'));
      expect(error.code).toBe('DB_UNKNOWN_DATABASE');
      expect(error.message).toContain('shop');
    });

    it('a failing query -> DB_QUERY_FAILED naming the connection', async () => {
      await expect(db.execute('SELECT * FROM no_such_table')).rejects.toMatchObject({
        code: 'DB_QUERY_FAILED',
        connection: 'shop',
        retryable: false,
      });
    });
  });
});
