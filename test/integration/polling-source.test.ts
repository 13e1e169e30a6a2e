/**
 * The trigger-based ('polling') change sources against real servers, the same suite for MySQL/MariaDB
 * and PostgreSQL: setup/teardown/preflight, exact keys from a writer in a non-UTC time zone, both
 * keys of a key-changing UPDATE, resuming from a position, the reading order under transactions that
 * commit out of order (nothing lost), rolled-back transactions not waited for, acknowledge, own-write
 * skipping, TRUNCATE, stop and a killed connection.
 *
 * Writers that hold a transaction open use their own single-connection Database (pool size 1: every
 * statement of the test runs on the same session).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeSource, ChangeSourceOptions, ChangeStream, ChangeTransaction, TableChange } from '../../src/dialect/change-source.js';
import { createDatabase } from '../../src/dialect/create-database.js';
import type { Database } from '../../src/dialect/dialect.js';
import { MysqlPollingSource } from '../../src/dialect/mysql/mysql-polling-source.js';
import { PollingStream, changeTableName, triggerName, triggerPrefix } from '../../src/dialect/polling-source-base.js';
import { PostgresPollingSource } from '../../src/dialect/postgres/postgres-polling-source.js';
import { shapeOf } from '../../src/dialect/table-pair.js';
import type { Engine, KeyTuple, PortableValue, TableShape } from '../../src/dialect/types.js';
import { CdcSetupError, DatabaseError, PositionLostError, SchemaError } from '../../src/errors/index.js';
import { ENGINES, dropScratch, executeFor, openScratch, scratchUrl } from '../support/scratch.js';

const SOURCES: Record<Engine, new (options: ChangeSourceOptions) => ChangeSource> = {
  mysql: MysqlPollingSource,
  postgres: PostgresPollingSource,
};

const PIPELINE = 'orders-sync';
const ITEMS = 'items';
const EXACT = 'exact_keys';
const ODD = "odd name's";
const TABLES = [ITEMS, EXACT, ODD];

const DDL: Record<Engine, readonly string[]> = {
  mysql: [
    'CREATE TABLE items (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(50) NULL)',
    // An explicit DEFAULT: without one, an old-style first TIMESTAMP column would get ON UPDATE
    // CURRENT_TIMESTAMP, and updating `val` would change the key.
    `CREATE TABLE exact_keys (k_big BIGINT NOT NULL, k_dec DECIMAL(30,10) NOT NULL, k_dt DATETIME(6) NOT NULL,
       k_ts TIMESTAMP(6) NOT NULL DEFAULT '2000-01-01 00:00:00', k_bin VARBINARY(16) NOT NULL, k_txt VARCHAR(40) NOT NULL,
       val INT NULL, PRIMARY KEY (k_big, k_dec, k_dt, k_ts, k_bin, k_txt))`,
    "CREATE TABLE `odd name's` (k VARCHAR(60) NOT NULL PRIMARY KEY, v INT NULL)",
    'CREATE TABLE nokey (a INT NULL)',
    'CREATE TABLE rekey (id INT NOT NULL, other INT NOT NULL DEFAULT 0, PRIMARY KEY (id))',
    'CREATE TABLE floaty (f DOUBLE NOT NULL PRIMARY KEY)',
  ],
  postgres: [
    'CREATE TABLE items (id bigint PRIMARY KEY, note varchar(50))',
    `CREATE TABLE exact_keys (k_big bigint, k_dec numeric(30,10), k_dt timestamp(6), k_ts timestamptz(6), k_bin bytea,
       k_txt varchar(40), val int, PRIMARY KEY (k_big, k_dec, k_dt, k_ts, k_bin, k_txt))`,
    `CREATE TABLE "odd name's" (k varchar(60) PRIMARY KEY, v int)`,
    'CREATE TABLE nokey (a int)',
    'CREATE TABLE rekey (id int NOT NULL, other int NOT NULL DEFAULT 0, PRIMARY KEY (id))',
    'CREATE TABLE floaty (f double precision PRIMARY KEY)',
  ],
};

/** A writer session in a time zone that is not UTC (TIMESTAMP / timestamptz literals are read in it). */
const NON_UTC_SESSION: Record<Engine, string> = {
  mysql: "SET time_zone = '+05:30'",
  postgres: "SET TimeZone = 'America/New_York'",
};

/** The same instant '2024-07-01 12:00:00.123456' in that zone, as the dialect reads it (UTC). */
const TS_AS_UTC: Record<Engine, string> = { mysql: '2024-07-01 06:30:00.123456', postgres: '2024-07-01 16:00:00.123456' };

/** '2001-02-03 04:05:06.000007' in that zone (New York in winter: UTC-5). */
const OTHER_TS_AS_UTC: Record<Engine, string> = { mysql: '2001-02-02 22:35:06.000007', postgres: '2001-02-03 09:05:06.000007' };

const OWN_WRITES: Record<Engine, { on: string; off: string }> = {
  mysql: { on: 'SET @rowsync_applying = 1', off: 'SET @rowsync_applying = NULL' },
  postgres: { on: "SET rowsync.applying = 'on'", off: 'RESET rowsync.applying' },
};

const TEXT_KEY = 'Zürich "q" \\ \' ✓😀';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Collects what a stream delivers. */
class Collector {
  readonly transactions: ChangeTransaction[] = [];
  readonly positions: string[] = [];
  stream!: ChangeStream;

  static async start(source: ChangeSource, from: string): Promise<Collector> {
    const collector = new Collector();
    collector.stream = await source.start(from, {
      onTransaction: async (transaction) => {
        collector.transactions.push(transaction);
        collector.positions.push(transaction.position);
      },
      onIdle: async (position) => {
        collector.positions.push(position);
      },
    });
    return collector;
  }

  get position(): string | undefined {
    return this.positions[this.positions.length - 1];
  }

  changes(table: string): TableChange[] {
    return this.transactions.flatMap((transaction) => transaction.changes.filter((change) => change.table === table));
  }

  keys(table: string): KeyTuple[] {
    return this.changes(table).flatMap((change) => (change.kind === 'keys' ? change.keys : []));
  }

  has(table: string, key: readonly PortableValue[]): boolean {
    return this.keys(table).some((candidate) => sameKey(candidate, key));
  }

  /** Index of the first transaction that names `key` of `table`, or -1. */
  indexOf(table: string, key: readonly PortableValue[]): number {
    return this.transactions.findIndex((transaction) =>
      transaction.changes.some((change) => change.table === table && change.kind === 'keys' && change.keys.some((k) => sameKey(k, key))),
    );
  }

  async stop(): Promise<void> {
    await this.stream.stop();
  }
}

function sameKey(a: readonly PortableValue[], b: readonly PortableValue[]): boolean {
  return a.length === b.length && a.every((value, index) => {
    const other = b[index];
    if (Buffer.isBuffer(value) && Buffer.isBuffer(other)) return value.equals(other);
    return String(value) === String(other);
  });
}

describe('polling source object names', () => {
  it('stay within both engines\' limits and tell sanitised names apart', () => {
    expect(changeTableName('orders')).toBe('rowsync_chg_orders');
    expect(changeTableName('orders-sync')).toMatch(/^rowsync_chg_orders_sync_[0-9a-f]{8}$/);
    expect(changeTableName('orders_sync')).toBe('rowsync_chg_orders_sync');
    expect(changeTableName('x'.repeat(200)).length).toBeLessThanOrEqual(60);
    const long = triggerName('p'.repeat(100), 't'.repeat(200), 'truncate');
    expect(long.length).toBeLessThanOrEqual(63);
    expect(triggerName('p', 'Orders', 'insert')).not.toBe(triggerName('p', 'orders', 'insert'));
    expect(triggerName('p', 'orders', 'insert').startsWith(triggerPrefix('p'))).toBe(true);
    expect(triggerPrefix('p')).not.toBe(triggerPrefix('q'));
  });
});

describe.each(ENGINES)('polling change source on %s', (engine) => {
  const namespace = `rowsync_poll_${engine}`;
  const url = scratchUrl(engine, namespace);
  let database: Database;
  let source: ChangeSource;
  const writers: Database[] = [];
  const shapes = new Map<string, TableShape>();

  function makeSource(tables: readonly string[] = TABLES, overrides: Partial<ChangeSourceOptions> = {}, pipeline = PIPELINE): ChangeSource {
    return new SOURCES[engine]({
      pipeline, connectionName: 'src', url, database, tables, serverId: 0, heartbeatMs: 0, pollIntervalMs: 50, ...overrides,
    });
  }

  /** A single-connection session for holding transactions open. */
  async function writer(nonUtc = false): Promise<Database> {
    const session = createDatabase({ connectionName: `writer${writers.length}`, url, poolSize: 1 });
    writers.push(session);
    if (nonUtc) await session.execute(NON_UTC_SESSION[engine]);
    return session;
  }

  const begin = engine === 'mysql' ? 'START TRANSACTION' : 'BEGIN';
  const q = (name: string) => database.quoteIdentifier(name);
  const param = (index: number) => (engine === 'mysql' ? '?' : `$${index}`);

  async function insertItem(session: Database, id: number | string, note = 'n'): Promise<void> {
    await session.execute(`INSERT INTO items (id, note) VALUES (${id}, ${param(1)})`, [note]);
  }

  async function changeTableKeys(): Promise<string[]> {
    const rows = await database.execute(`SELECT row_key FROM ${q(changeTableName(PIPELINE))} WHERE table_name = 'items'`);
    return rows.map((row) => String(row.row_key));
  }

  /** Waits until the reader has started `count` more polls (PostgreSQL: pg_stat_activity.query_start moves). */
  async function readerPolls(stream: ChangeStream, count: number): Promise<void> {
    const pid = (stream as PollingStream).serverSessionId;
    for (let poll = 0; poll < count; poll += 1) {
      const [now] = await database.execute('SELECT clock_timestamp()::text AS t');
      await waitUntil(async () => {
        const [row] = await database.execute(
          'SELECT query_start > $2::timestamptz AS later FROM pg_stat_activity WHERE pid = $1', [pid, now!.t],
        );
        return row?.later === true;
      }, 'a poll of the reader');
    }
  }

  /** Positions that have caught up: no MySQL gap is still awaited. */
  function settled(position: string | undefined): boolean {
    if (position === undefined) return false;
    return engine === 'postgres' || (JSON.parse(position) as { gaps: unknown[] }).gaps.length === 0;
  }

  let markers = 900_000;

  /** A stream from the current position that has read everything there is. */
  async function caughtUp(): Promise<Collector> {
    const collector = await Collector.start(source, await source.currentPosition());
    // A fresh marker row proves the reader is past everything before it.
    const marker = String((markers += 1));
    await insertItem(database, marker, 'marker');
    await waitUntil(() => collector.has(ITEMS, [marker]) && settled(collector.position), 'the stream to catch up');
    return collector;
  }

  beforeAll(async () => {
    database = await openScratch(engine, namespace, 'src');
    await executeFor(database, DDL);
    for (const table of TABLES) shapes.set(table, shapeOf(database, await database.describeTable(table)));
    source = makeSource();
  });

  afterAll(async () => {
    for (const session of writers) await session.close().catch(() => undefined);
    await database?.close();
    await dropScratch(engine, namespace);
  });

  it('preflight fails before setup, setup is idempotent, teardown removes everything', async () => {
    await expect(source.preflight()).rejects.toThrow(CdcSetupError);
    await expect(source.preflight()).rejects.toThrow(`rowsync cdc setup --pipeline ${PIPELINE}`);
    await expect(source.currentPosition()).rejects.toThrow(CdcSetupError);

    await source.setup();
    await source.setup();
    await source.preflight();
    expect(await ourTriggers()).toHaveLength(TABLES.length * (engine === 'mysql' ? 3 : 4));
    expect(await changeTableExists()).toBe(true);

    // A position from an earlier incarnation of the change table is lost: the changes made while
    // no trigger recorded them must be reconciled, not skipped.
    const before = await source.currentPosition();
    await source.teardown();
    expect(await ourTriggers()).toHaveLength(0);
    expect(await changeTableExists()).toBe(false);
    await source.teardown();
    await expect(source.preflight()).rejects.toThrow(CdcSetupError);

    await source.setup();
    await expect(source.start(before, { onTransaction: async () => undefined })).rejects.toThrow(PositionLostError);
    await expect(source.start('mysql-bin.000001:4', { onTransaction: async () => undefined })).rejects.toThrow(PositionLostError);
    await source.preflight();
  });

  it('setup drops the triggers of tables a pipeline no longer streams', async () => {
    const other = makeSource([ITEMS, EXACT], {}, 'other-pipeline');
    await other.setup();
    const narrower = makeSource([ITEMS], {}, 'other-pipeline');
    await narrower.setup();
    const names = await ourTriggers();
    expect(names.filter((name) => name.startsWith(triggerPrefix('other-pipeline'))).sort()).toEqual(
      (engine === 'mysql' ? (['insert', 'update', 'delete'] as const) : (['insert', 'update', 'delete', 'truncate'] as const))
        .map((event) => triggerName('other-pipeline', ITEMS, event)).sort(),
    );
    await narrower.teardown();
    expect((await ourTriggers()).filter((name) => name.startsWith(triggerPrefix('other-pipeline')))).toHaveLength(0);
  });

  it('preflight names a table without primary key, a missing table, and triggers made for an older key', async () => {
    await expect(makeSource(['nokey']).preflight()).rejects.toThrow(SchemaError);
    await expect(makeSource(['no_such_table']).preflight()).rejects.toThrow(SchemaError);

    const rekey = makeSource(['rekey'], {}, 'rekey-pipeline');
    await rekey.setup();
    await rekey.preflight();
    await database.execute('INSERT INTO rekey (id) VALUES (1)');
    await database.execute(
      engine === 'mysql'
        ? 'ALTER TABLE rekey DROP PRIMARY KEY, ADD PRIMARY KEY (id, other)'
        : 'ALTER TABLE rekey DROP CONSTRAINT rekey_pkey, ADD PRIMARY KEY (id, other)',
    );
    await expect(rekey.preflight()).rejects.toThrow(/out of date/);
    await rekey.setup();
    await rekey.preflight();

    // A change recorded with the old key cannot name a row any more: the table is reconciled instead.
    const collector = await Collector.start(rekey, await rekey.currentPosition());
    try {
      await database.execute('INSERT INTO rekey (id, other) VALUES (2, 0)');
      await waitUntil(() => collector.keys('rekey').length > 0, 'the change recorded with the new key');
      expect(collector.changes('rekey')).toEqual([
        { kind: 'reconcile', table: 'rekey', reason: 'schema' },
        { kind: 'keys', table: 'rekey', keys: [[2, 0]] },
      ]);
    } finally {
      await collector.stop();
      await rekey.teardown();
    }
  });

  it('refuses a FLOAT/DOUBLE key where a trigger cannot print it exactly (MySQL) and records it exactly (PostgreSQL)', async () => {
    const floaty = makeSource(['floaty'], {}, 'floaty-pipeline');
    if (engine === 'mysql') {
      await expect(floaty.setup()).rejects.toThrow(SchemaError);
      return;
    }
    await floaty.setup();
    const collector = await Collector.start(floaty, await floaty.currentPosition());
    try {
      const session = await writer();
      await session.execute('SET extra_float_digits = 0'); // the writer's setting must not round the recorded key
      await session.execute('INSERT INTO floaty VALUES (0.1::float8 + 0.2::float8), (1e-300)');
      await waitUntil(() => collector.keys('floaty').length === 2, 'two float keys');
      expect(collector.keys('floaty')).toEqual([[0.30000000000000004], [1e-300]]);
    } finally {
      await collector.stop();
      await floaty.teardown();
    }
  });

  it('delivers inserts, updates and deletes with exact keys that fetchByKeys finds', async () => {
    const collector = await Collector.start(source, await source.currentPosition());
    try {
      const session = await writer(true);
      const insert = (big: string, dec: string, dt: string, ts: string, bin: Buffer, text: string) =>
        session.execute(
          `INSERT INTO exact_keys (k_big, k_dec, k_dt, k_ts, k_bin, k_txt, val) VALUES (${big}, ${dec}, '${dt}', '${ts}', ${param(1)}, ${param(2)}, 1)`,
          [bin, text],
        );
      await insert('9007199254740993', '12345678901234567890.1234567891', '2024-03-10 02:30:00.000001', '2024-07-01 12:00:00.123456',
        Buffer.from('00ff10', 'hex'), TEXT_KEY);
      await insert('-9007199254740993', '-0.0000000001', '1999-12-31 23:59:59.999999', '2001-02-03 04:05:06.000007', Buffer.from([1]), 'abc ');
      await insertItem(session, '9007199254740993');
      await session.execute(`INSERT INTO ${q(ODD)} (k, v) VALUES (${param(1)}, 1)`, [TEXT_KEY]);

      await waitUntil(() => collector.keys(EXACT).length >= 2 && collector.keys(ITEMS).length >= 1 && collector.keys(ODD).length >= 1, 'the inserts');
      const first = [
        '9007199254740993', '12345678901234567890.1234567891', '2024-03-10 02:30:00.000001', TS_AS_UTC[engine], Buffer.from('00ff10', 'hex'), TEXT_KEY,
      ];
      expect(collector.keys(EXACT)[0]).toEqual(first);
      expect(collector.keys(EXACT)[1]).toEqual(['-9007199254740993', '-0.0000000001', '1999-12-31 23:59:59.999999', OTHER_TS_AS_UTC[engine], Buffer.from([1]), 'abc ']);
      expect(collector.has(ITEMS, ['9007199254740993'])).toBe(true);
      expect(collector.keys(ODD)).toEqual([[TEXT_KEY]]);

      // Every delivered key is the key of a row as the dialect reads it, and finds that row.
      for (const table of [EXACT, ITEMS, ODD]) {
        const shape = shapes.get(table)!;
        const keys = collector.keys(table);
        const rows = await database.fetchByKeys(shape, keys);
        expect(rows.map((row) => shape.keyIndexes.map((index) => row[index]))).toEqual(expect.arrayContaining(keys));
        expect(rows).toHaveLength(keys.length);
      }

      await session.execute('UPDATE exact_keys SET val = 2 WHERE k_big = 9007199254740993');
      await session.execute('DELETE FROM exact_keys WHERE k_big = -9007199254740993');
      await waitUntil(() => collector.keys(EXACT).length >= 4, 'the update and the delete');
      expect(collector.keys(EXACT).slice(2)).toEqual([first, collector.keys(EXACT)[1]]);
      expect(await database.fetchByKeys(shapes.get(EXACT)!, [collector.keys(EXACT)[1]!])).toEqual([]);
      expect(collector.transactions.every((transaction) => typeof transaction.committedAt === 'number')).toBe(true);
    } finally {
      await collector.stop();
    }
  });

  it('names both keys of an UPDATE that changes the key (also when only its case changes)', async () => {
    const collector = await caughtUp();
    try {
      await insertItem(database, 2000);
      await database.execute(`INSERT INTO ${q(ODD)} (k, v) VALUES ('abc', 1)`);
      await waitUntil(() => collector.has(ITEMS, ['2000']) && collector.has(ODD, ['abc']), 'the inserts');
      const delivered = collector.transactions.length;
      await database.execute('UPDATE items SET id = 2001 WHERE id = 2000');
      await database.execute(`UPDATE ${q(ODD)} SET k = 'ABC' WHERE k = 'abc'`);
      await waitUntil(() => collector.has(ITEMS, ['2001']) && collector.has(ODD, ['ABC']), 'the key changes');
      const later = collector.transactions.slice(delivered).flatMap((transaction) => transaction.changes);
      const keysOf = (table: string) => later.filter((change) => change.table === table).flatMap((change) => (change.kind === 'keys' ? change.keys : []));
      expect(keysOf(ITEMS).map(String)).toEqual(['2000', '2001']);
      expect(keysOf(ODD).map(String)).toEqual(['abc', 'ABC']);
    } finally {
      await collector.stop();
    }
  });

  it('resumes from a delivered position with exactly what came after it', async () => {
    const first = await caughtUp();
    let resumeFrom: string;
    try {
      await insertItem(database, 2100);
      await waitUntil(() => first.has(ITEMS, ['2100']) && settled(first.position), 'the first change');
      resumeFrom = first.transactions[first.indexOf(ITEMS, ['2100'])]!.position;
    } finally {
      await first.stop();
    }
    await insertItem(database, 2101);
    await insertItem(database, 2102);
    const second = await Collector.start(source, resumeFrom);
    try {
      await waitUntil(() => second.has(ITEMS, ['2102']), 'the later changes');
      expect(second.keys(ITEMS).map(String)).toEqual(['2101', '2102']);
      expect(source.comparePositions(resumeFrom, second.position!)).toBeLessThan(0);
      expect(source.comparePositions(second.position!, resumeFrom)).toBeGreaterThan(0);
      expect(source.comparePositions(resumeFrom, resumeFrom)).toBe(0);
    } finally {
      await second.stop();
    }
  });

  it('loses nothing when a transaction that started writing earlier commits after later ones were read', async () => {
    const collector = await caughtUp();
    const long = await writer();
    try {
      await long.execute(begin);
      await insertItem(long, 3001, 'long'); // the lower id / the older transaction id
      await insertItem(database, 3002, 'short');
      if (engine === 'mysql') {
        // The short transaction is read at once; the long one's id is a gap the position waits for.
        await waitUntil(() => collector.has(ITEMS, ['3002']), 'the short transaction');
        expect(collector.has(ITEMS, ['3001'])).toBe(false);
        const position = JSON.parse(collector.position!) as { next: number; gaps: { ids: number[][] }[] };
        expect(position.gaps.length).toBeGreaterThan(0);
      } else {
        // Nothing is read past a transaction that is still open.
        await readerPolls(collector.stream, 3);
        expect(collector.has(ITEMS, ['3002'])).toBe(false);
      }
      await long.execute('COMMIT');
      await waitUntil(() => collector.has(ITEMS, ['3001']) && collector.has(ITEMS, ['3002']), 'the long transaction');
      // MySQL delivers in commit order; PostgreSQL in transaction id order.
      const [long_, short] = [collector.indexOf(ITEMS, ['3001']), collector.indexOf(ITEMS, ['3002'])];
      expect(engine === 'mysql' ? long_ > short : long_ < short).toBe(true);
      await waitUntil(() => settled(collector.position), 'the gap to be filled');
    } finally {
      await long.execute('ROLLBACK').catch(() => undefined);
      await collector.stop();
    }
  });

  it('a position taken while a transaction was open keeps its change through acknowledge and a restart', async () => {
    const first = await caughtUp();
    const long = await writer();
    let second: Collector | undefined;
    try {
      await long.execute(begin);
      await insertItem(long, 3101, 'long');
      await insertItem(database, 3102, 'short');
      if (engine === 'mysql') await waitUntil(() => first.has(ITEMS, ['3102']), 'the short transaction');
      else await readerPolls(first.stream, 2);
      const awaiting = first.position!;
      await first.stop();
      await long.execute('COMMIT');
      // The caller may acknowledge what it delivered, even after the stream stopped.
      await first.stream.acknowledge(awaiting);
      second = await Collector.start(source, awaiting);
      await waitUntil(() => second!.has(ITEMS, ['3101']) && (engine === 'mysql' || second!.has(ITEMS, ['3102'])), 'the late commit');
      // MySQL had delivered the short transaction before the position; PostgreSQL had not.
      expect(second.has(ITEMS, ['3102'])).toBe(engine === 'postgres');
    } finally {
      await long.execute('ROLLBACK').catch(() => undefined);
      await first.stop();
      await second?.stop();
    }
  });

  it('delivers a transaction larger than a poll\'s batch in parts with exact, increasing positions', async () => {
    const collector = await caughtUp();
    const long = await writer();
    let resumed: Collector | undefined;
    const bulk = Array.from({ length: 25_000 }, (_, index) => 10_000 + index);
    try {
      await long.execute(begin);
      for (let start = 0; start < bulk.length; start += 1000) {
        const values = bulk.slice(start, start + 1000).map((id) => `(${id}, 'bulk')`).join(', ');
        await long.execute(`INSERT INTO items (id, note) VALUES ${values}`);
      }
      await insertItem(database, 35_000, 'short');
      if (engine === 'mysql') await waitUntil(() => collector.has(ITEMS, ['35000']), 'the short transaction');
      await long.execute('COMMIT');
      const isBulk = (key: KeyTuple) => Number(key[0]) >= 10_000 && Number(key[0]) <= 35_000;
      await waitUntil(() => collector.keys(ITEMS).filter(isBulk).length >= bulk.length + 1, 'every key', 60_000);
      const delivered = collector.keys(ITEMS).filter(isBulk).map((key) => Number(key[0]));
      expect(delivered).toHaveLength(bulk.length + 1);
      expect(new Set(delivered).size).toBe(bulk.length + 1);
      const parts = collector.transactions.filter((transaction) =>
        transaction.changes.some((change) => change.kind === 'keys' && change.keys.some((key) => isBulk(key) && Number(key[0]) < 35_000)),
      );
      expect(parts.length).toBeGreaterThanOrEqual(3);
      // Every delivery moves the position on (the CDC reader skips a batch that is not past the last).
      for (let index = 1; index < collector.transactions.length; index += 1) {
        expect(source.comparePositions(collector.transactions[index - 1]!.position, collector.transactions[index]!.position)).toBeLessThan(0);
      }
      for (let index = 1; index < collector.positions.length; index += 1) {
        expect(source.comparePositions(collector.positions[index - 1]!, collector.positions[index]!)).toBeLessThanOrEqual(0);
      }
      await waitUntil(() => settled(collector.position), 'the gaps to be filled');

      // Resuming from the first part's position delivers exactly the rest.
      const firstPart = collector.transactions.indexOf(parts[0]!);
      const rest = collector.transactions.slice(firstPart + 1)
        .flatMap((transaction) => transaction.changes)
        .flatMap((change) => (change.table === ITEMS && change.kind === 'keys' ? change.keys : []))
        .filter(isBulk).map((key) => Number(key[0])).sort((a, b) => a - b);
      resumed = await Collector.start(source, parts[0]!.position);
      await waitUntil(() => resumed!.keys(ITEMS).filter(isBulk).length >= rest.length, 'the rest of the transaction', 60_000);
      expect(resumed.keys(ITEMS).filter(isBulk).map((key) => Number(key[0])).sort((a, b) => a - b)).toEqual(rest);
    } finally {
      await long.execute('ROLLBACK').catch(() => undefined);
      await collector.stop();
      await resumed?.stop();
    }
  });

  it('moves past a rolled-back transaction once it is gone', async () => {
    const collector = await caughtUp();
    const long = await writer();
    try {
      await long.execute(begin);
      await insertItem(long, 4001, 'rolled back');
      await insertItem(database, 4002);
      if (engine === 'mysql') {
        await waitUntil(() => collector.has(ITEMS, ['4002']), 'the committed change');
        expect(settled(collector.position)).toBe(false);
      } else {
        await readerPolls(collector.stream, 2);
      }
      // PostgreSQL: the next transaction id to be assigned, above both transactions.
      const [{ xmax }] = (await database.execute(
        engine === 'mysql' ? 'SELECT 0 AS xmax' : 'SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xmax',
      )) as [{ xmax: unknown }];
      await long.execute('ROLLBACK');
      await waitUntil(() => collector.has(ITEMS, ['4002']), 'the committed change');
      // MySQL: the gap retires (not after a time-out: once the transaction is gone), `next` stays past it.
      // PostgreSQL: the horizon passes both transactions.
      await waitUntil(() => {
        const position = collector.position!;
        if (engine === 'mysql') return settled(position);
        return BigInt(position.split(':')[1]!) >= BigInt(String(xmax));
      }, 'the position to move past the rolled-back transaction');
      expect(collector.has(ITEMS, ['4001'])).toBe(false);
    } finally {
      await long.execute('ROLLBACK').catch(() => undefined);
      await collector.stop();
    }
  });

  it('acknowledge deletes only the change rows below the position', async () => {
    const collector = await caughtUp();
    try {
      await insertItem(database, 5001);
      await waitUntil(() => collector.has(ITEMS, ['5001']) && settled(collector.position), 'the first change');
      const afterFirst = collector.transactions[collector.indexOf(ITEMS, ['5001'])]!.position;
      await insertItem(database, 5002);
      await waitUntil(() => collector.has(ITEMS, ['5002']) && settled(collector.position), 'the second change');
      const afterSecond = collector.transactions[collector.indexOf(ITEMS, ['5002'])]!.position;
      expect(await changeTableKeys()).toEqual(expect.arrayContaining(['["5001"]', '["5002"]']));

      await collector.stream.acknowledge(afterFirst);
      expect(await changeTableKeys()).toEqual(['["5002"]']);
      await collector.stream.acknowledge(afterSecond);
      // MySQL keeps the newest row (see acknowledge: AUTO_INCREMENT recomputed from MAX(id) at restart).
      expect(await changeTableKeys()).toEqual(engine === 'mysql' ? ['["5002"]'] : []);
    } finally {
      await collector.stop();
    }
  });

  it('records nothing for a session that says it is rowsync applying changes', async () => {
    const collector = await caughtUp();
    const session = await writer();
    try {
      await session.execute(OWN_WRITES[engine].on);
      await insertItem(session, 6001);
      await session.execute(OWN_WRITES[engine].off);
      await insertItem(session, 6002);
      await waitUntil(() => collector.has(ITEMS, ['6002']), 'the change after the own write');
      expect(collector.has(ITEMS, ['6001'])).toBe(false);
      expect(await changeTableKeys()).not.toContain('["6001"]');
    } finally {
      await collector.stop();
    }
  });

  it('reports a TRUNCATE as a reconcile of the table (PostgreSQL; MySQL fires no trigger for it)', async () => {
    const collector = await caughtUp();
    try {
      await database.execute('TRUNCATE TABLE exact_keys');
      await insertItem(database, 7001);
      await waitUntil(() => collector.has(ITEMS, ['7001']), 'the change after the truncate');
      const reconciles = collector.changes(EXACT).filter((change) => change.kind === 'reconcile');
      expect(reconciles).toEqual(engine === 'postgres' ? [{ kind: 'reconcile', table: EXACT, reason: 'truncate' }] : []);
    } finally {
      await collector.stop();
    }
  });

  it('stop() ends the stream at once and closes its connection', async () => {
    const slow = makeSource(TABLES, { pollIntervalMs: 60_000 });
    const stream = await slow.start(await slow.currentPosition(), { onTransaction: async () => undefined });
    const id = (stream as PollingStream).serverSessionId;
    await waitUntil(async () => (await sessionAlive(id)) === true, 'the stream connection');
    const started = Date.now();
    await stream.stop();
    await expect(stream.done).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(5_000);
    await waitUntil(async () => (await sessionAlive(id)) === false, 'the stream connection to close');
  });

  it('a connection killed from the server side rejects done', async () => {
    const stream = await source.start(await source.currentPosition(), { onTransaction: async () => undefined });
    const id = (stream as PollingStream).serverSessionId;
    await waitUntil(async () => (await sessionAlive(id)) === true, 'the stream connection');
    await database.execute(engine === 'mysql' ? `KILL ${id}` : `SELECT pg_terminate_backend(${id})`);
    await expect(stream.done).rejects.toBeInstanceOf(DatabaseError);
    await stream.stop();
  });

  // ----------------------------------------------------------------------------------------------

  async function ourTriggers(): Promise<string[]> {
    const rows =
      engine === 'mysql'
        ? await database.execute(
            "SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE 'rowsync%'",
          )
        : await database.execute(
            `SELECT t.tgname AS name FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND NOT t.tgisinternal`,
            [namespace],
          );
    return rows.map((row) => String(row.name));
  }

  async function changeTableExists(): Promise<boolean> {
    const name = changeTableName(PIPELINE);
    const [row] =
      engine === 'mysql'
        ? await database.execute('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [name])
        : await database.execute('SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2', [namespace, name]);
    return Number(row?.n) === 1;
  }

  async function sessionAlive(id: number): Promise<boolean> {
    const [row] =
      engine === 'mysql'
        ? await database.execute('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ?', [id])
        : await database.execute('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [id]);
    return Number(row?.n) > 0;
  }
});
