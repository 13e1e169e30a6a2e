/**
 * The binlog change source (src/dialect/mysql/mysql-binlog-source.ts) against the project's MariaDB
 * (log_bin, binlog_format=ROW, binlog_row_image=FULL). Works in its own database,
 * rowsync_binlog_source; every stream gets its own replica server id, so parallel files do not
 * collide. Waits are polls with deadlines, never fixed sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdentity } from '../../src/dialect/canonical.js';
import type { ChangeStream, ChangeStreamHandler, ChangeTransaction, TableChange } from '../../src/dialect/change-source.js';
import { createDatabase } from '../../src/dialect/create-database.js';
import type { Database } from '../../src/dialect/dialect.js';
import { compareBinlogPositions, MysqlBinlogSource, parseBinlogPosition } from '../../src/dialect/mysql/mysql-binlog-source.js';
import { shapeOf } from '../../src/dialect/table-pair.js';
import type { KeyTuple, TableShape } from '../../src/dialect/types.js';
import { CdcSetupError, PositionLostError, SchemaError } from '../../src/errors/index.js';
import { dropScratch, openScratch, scratchUrl } from '../support/scratch.js';

const NAMESPACE = 'rowsync_binlog_source';
const HEARTBEAT_MS = 200;

let database: Database;
/** One connection: BEGIN ... COMMIT through it are one transaction. */
let writer: Database;

beforeAll(async () => {
  database = await openScratch('mysql', NAMESPACE);
  writer = createDatabase({ connectionName: `${NAMESPACE}_writer`, url: scratchUrl('mysql', NAMESPACE), poolSize: 1 });
});

afterAll(async () => {
  await writer?.close();
  await database?.close();
  await dropScratch('mysql', NAMESPACE);
});

function uniqueServerId(): number {
  return 100_000 + Math.floor(Math.random() * 1_000_000_000);
}

function binlogSource(tables: readonly string[], overrides: { serverId?: number; heartbeatMs?: number; database?: Database } = {}): MysqlBinlogSource {
  return new MysqlBinlogSource({
    pipeline: 'binlog_test',
    connectionName: NAMESPACE,
    url: scratchUrl('mysql', NAMESPACE),
    database: overrides.database ?? database,
    tables,
    serverId: overrides.serverId ?? uniqueServerId(),
    heartbeatMs: overrides.heartbeatMs ?? HEARTBEAT_MS,
    pollIntervalMs: 500,
  });
}

/** Records what a stream delivers, in order; `onTransaction` runs `react` first when given. */
class Recorder implements ChangeStreamHandler {
  readonly transactions: ChangeTransaction[] = [];
  readonly idles: string[] = [];
  /** Every delivered position in delivery order (transactions and idle reports). */
  readonly positions: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly react?: (transaction: ChangeTransaction, index: number) => Promise<void>) {}

  async onTransaction(transaction: ChangeTransaction): Promise<void> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.react?.(transaction, this.transactions.length);
      this.transactions.push(transaction);
      this.positions.push(transaction.position);
    } finally {
      this.inFlight -= 1;
    }
  }

  async onIdle(position: string): Promise<void> {
    this.idles.push(position);
    this.positions.push(position);
  }

  keysOf(table: string): KeyTuple[] {
    return this.transactions.flatMap((transaction) =>
      transaction.changes.flatMap((change) => (change.kind === 'keys' && change.table === table ? [...change.keys] : [])),
    );
  }
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function run(statements: readonly string[]): Promise<void> {
  for (const sql of statements) await writer.execute(sql);
}

async function shape(table: string): Promise<TableShape> {
  return shapeOf(database, await database.describeTable(table));
}

/** End positions of the Xid events of the binlog from `from` on (what SHOW BINLOG EVENTS lists). */
async function xidPositions(from: string): Promise<Set<string>> {
  const start = parseBinlogPosition(from)!;
  const positions = new Set<string>();
  const logs = await database.execute('SHOW BINARY LOGS');
  for (const log of logs) {
    const file = String(log.Log_name);
    if (compareBinlogPositions(`${file}:999999999999`, from) < 0) continue;
    const offset = file === start.file ? start.offset : 4;
    for (const event of await database.execute(`SHOW BINLOG EVENTS IN '${file}' FROM ${offset}`)) {
      if (event.Event_type === 'Xid') positions.add(`${file}:${String(event.End_log_pos)}`);
    }
  }
  return positions;
}

/**
 * Positions inside a transaction (after its BEGIN, before its commit), of any database: an idle report
 * must never name one, whatever other test files write to the shared server at the same time.
 */
async function positionsInsideTransactions(from: string): Promise<Set<string>> {
  const start = parseBinlogPosition(from)!;
  const inside = new Set<string>();
  for (const log of await database.execute('SHOW BINARY LOGS')) {
    const file = String(log.Log_name);
    if (compareBinlogPositions(`${file}:999999999999`, from) < 0) continue;
    const offset = file === start.file ? start.offset : 4;
    let open = false;
    for (const event of await database.execute(`SHOW BINLOG EVENTS IN '${file}' FROM ${offset}`)) {
      const type = String(event.Event_type);
      const info = String(event.Info ?? '');
      const ends = type === 'Xid' || (type === 'Query' && /^(COMMIT|ROLLBACK|XA COMMIT|XA ROLLBACK)/i.test(info));
      if (type === 'Gtid' ? /^BEGIN/i.test(info) : type === 'Query' && /^(BEGIN|XA START)/i.test(info)) open = true;
      else if (ends) open = false;
      else if (open) inside.add(`${file}:${String(event.End_log_pos)}`);
    }
  }
  return inside;
}

function keysChange(table: string, keys: KeyTuple[]): TableChange {
  return { kind: 'keys', table, keys };
}

describe('binlog source: transactions and keys', () => {
  beforeAll(async () => {
    await run([
      'CREATE TABLE orders (id BIGINT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB',
      'CREATE TABLE items (order_id INT, line INT, qty INT, PRIMARY KEY (order_id, line)) ENGINE=InnoDB',
      'CREATE TABLE audit (id INT PRIMARY KEY) ENGINE=InnoDB',
    ]);
  });

  it('delivers whole transactions in commit order, at Xid positions, with insert/update/delete keys', async () => {
    const source = binlogSource(['orders', 'items']);
    const from = await source.currentPosition();
    const recorder = new Recorder();
    const stream = await source.start(from, recorder);
    try {
      await run([
        'BEGIN',
        "INSERT INTO orders VALUES (1, 'a'), (2, 'b')",
        'INSERT INTO items VALUES (1, 1, 5), (1, 2, 6)',
        'INSERT INTO audit VALUES (1)',
        'COMMIT',
      ]);
      await run(['INSERT INTO audit VALUES (2)']); // no streamed table: an idle report, no transaction
      await run(['BEGIN', "UPDATE orders SET note = 'c' WHERE id = 1", 'DELETE FROM items WHERE order_id = 1 AND line = 2', 'COMMIT']);
      await run(['UPDATE orders SET id = 3 WHERE id = 2']); // the key changes: both keys
      await run(['BEGIN', "INSERT INTO orders VALUES (4, 'd')", 'ROLLBACK']); // never committed: never seen

      await waitFor('three transactions and an idle report', () => recorder.transactions.length >= 3 && recorder.idles.length >= 1);
      expect(recorder.transactions.map((transaction) => transaction.changes)).toEqual([
        [keysChange('orders', [['1'], ['2']]), keysChange('items', [[1, 1], [1, 2]])],
        [keysChange('orders', [['1']]), keysChange('items', [[1, 2]])],
        [keysChange('orders', [['3'], ['2']])],
      ]);

      const xids = await xidPositions(from);
      for (const transaction of recorder.transactions) {
        expect(xids.has(transaction.position)).toBe(true);
        expect(transaction.committedAt).toBeGreaterThan(Date.now() - 60_000);
      }
      const inside = await positionsInsideTransactions(from);
      expect(recorder.idles.filter((position) => inside.has(position))).toEqual([]);
      // Transactions and idle reports together move forward only.
      for (let index = 1; index < recorder.positions.length; index += 1) {
        expect(compareBinlogPositions(recorder.positions[index - 1]!, recorder.positions[index]!)).toBeLessThan(0);
      }
      expect(recorder.maxInFlight).toBe(1);
    } finally {
      await stream.stop();
    }
    await expect(stream.done).resolves.toBeUndefined();
  });

  it('resumes after a transaction with exactly the transactions after it', async () => {
    const source = binlogSource(['orders']);
    const from = await source.currentPosition();
    let first: ChangeStream | undefined;
    const stopAt = 2;
    const recorder = new Recorder(async (_transaction, index) => {
      // Stopping from inside the handler (as a reader does on shutdown) must not wait for the handler.
      if (index === stopAt) await first!.stop();
    });
    first = await source.start(from, recorder);
    for (let id = 10; id < 15; id += 1) await run([`INSERT INTO orders VALUES (${id}, 'r')`]);
    await waitFor('the stop', () => recorder.transactions.length > stopAt);
    await expect(first.done).resolves.toBeUndefined();
    expect(recorder.keysOf('orders')).toEqual([['10'], ['11'], ['12']]);
    const checkpoint = recorder.transactions[stopAt]!.position;

    const resumed = new Recorder();
    const second = await source.start(checkpoint, resumed);
    try {
      await waitFor('the rest', () => resumed.keysOf('orders').length >= 2);
      await run(["INSERT INTO orders VALUES (15, 'r')"]);
      await waitFor('the next', () => resumed.keysOf('orders').length >= 3);
      expect(resumed.keysOf('orders')).toEqual([['13'], ['14'], ['15']]);
      expect(compareBinlogPositions(resumed.transactions[0]!.position, checkpoint)).toBeGreaterThan(0);
    } finally {
      await second.stop();
    }
  });
});

describe('binlog source: exact keys', () => {
  const tables: Record<string, { readonly ddl: string; readonly values: readonly string[] }> = {
    k_bigint: { ddl: 'id BIGINT PRIMARY KEY', values: ['9007199254740993', '-9007199254740993', '7'] },
    k_ubigint: { ddl: 'id BIGINT UNSIGNED PRIMARY KEY', values: ['18446744073709551615', '9007199254740993'] },
    k_decimal: {
      ddl: 'id DECIMAL(30,10) PRIMARY KEY',
      values: ["'12345678901234567890.0123456789'", "'-0.0000000001'", "'1.5'"],
    },
    k_datetime: { ddl: 'id DATETIME(6) PRIMARY KEY', values: ["'2024-02-29 23:59:58.123456'", "'2024-02-29 23:59:58.123457'"] },
    k_timestamp: { ddl: 'id TIMESTAMP(6) PRIMARY KEY', values: ["'2038-01-19 03:14:07.999999'", "'2001-02-03 04:05:06.000001'"] },
    k_time: { ddl: 'id TIME(3) PRIMARY KEY', values: ["'-838:59:59.999'", "'-00:00:00.5'", "'12:00:00'"] },
    k_varbinary: { ddl: 'id VARBINARY(8) PRIMARY KEY', values: ["X''", "X'00'", "X'0001ff'"] },
    k_binary1: { ddl: 'id BINARY(1) PRIMARY KEY', values: ["X'00'", "X'01'", "X'ff'"] },
    k_binary4: { ddl: 'id BINARY(4) PRIMARY KEY', values: ["X'61'", "X'61000001'"] },
    k_latin1: { ddl: 'id VARCHAR(8) CHARACTER SET latin1 PRIMARY KEY', values: ["_utf8mb4'é€'", "_utf8mb4'A '"] },
    k_composite: {
      ddl:
        'a VARCHAR(10) COLLATE utf8mb4_unicode_ci, b DATE, c TIME(6), d ENUM(\'x\', \'it\'\'s\'), e YEAR, f TINYINT UNSIGNED, ' +
        'PRIMARY KEY (a, b, c, d, e, f)',
      values: ["'Straße', '2024-01-02', '-01:00:00.5', 'it''s', 2024, 255", "'straße', '0001-01-01', '00:00:00', 'x', 1901, 0"],
    },
  };

  beforeAll(async () => {
    for (const [table, { ddl }] of Object.entries(tables)) await run([`CREATE TABLE ${table} (${ddl}) ENGINE=InnoDB`]);
  });

  it('names exactly the rows changed, in the form the dialect reads them', async () => {
    const source = binlogSource(Object.keys(tables));
    const recorder = new Recorder();
    const stream = await source.start(await source.currentPosition(), recorder);
    try {
      for (const [table, { values }] of Object.entries(tables)) {
        await run([`INSERT INTO ${table} VALUES ${values.map((value) => `(${value})`).join(', ')}`]);
      }
      await waitFor('every table', () => Object.keys(tables).every((table) => recorder.keysOf(table).length > 0));
      for (const [table, { values }] of Object.entries(tables)) {
        const tableShape = await shape(table);
        const streamed = recorder.keysOf(table);
        expect(streamed).toHaveLength(values.length);
        const fetched = await database.fetchByKeys(tableShape, streamed);
        const identities = (keys: readonly KeyTuple[]) => keys.map((key) => keyIdentity(tableShape, key)).sort();
        const fetchedKeys = fetched.map((row) => tableShape.keyIndexes.map((index) => row[index] ?? null));
        expect(identities(fetchedKeys), table).toEqual(identities(streamed));
        // Not only equal identities: the very values the dialect's reads return.
        const read = await database.fetchRange(tableShape, {}, 100);
        const readKeys = read.map((row) => tableShape.keyIndexes.map((index) => row[index] ?? null));
        const byIdentity = (keys: readonly KeyTuple[]) => new Map(keys.map((key) => [keyIdentity(tableShape, key), key]));
        expect(byIdentity(streamed), table).toEqual(byIdentity(readKeys));
      }
      expect(recorder.keysOf('k_bigint')).toEqual([['9007199254740993'], ['-9007199254740993'], ['7']]);
      expect(recorder.keysOf('k_ubigint')).toContainEqual(['18446744073709551615']);
      expect(recorder.keysOf('k_decimal')).toContainEqual(['12345678901234567890.0123456789']);
      expect(recorder.keysOf('k_datetime')).toContainEqual(['2024-02-29 23:59:58.123457']);
      expect(recorder.keysOf('k_timestamp')).toContainEqual(['2038-01-19 03:14:07.999999']);
      expect(recorder.keysOf('k_binary1')).toEqual([[Buffer.from([0])], [Buffer.from([1])], [Buffer.from([0xff])]]);
      expect(recorder.keysOf('k_binary4')).toContainEqual([Buffer.from('61000000', 'hex')]);
    } finally {
      await stream.stop();
    }
  });

  it('reads keys of tables with generated, invisible and system-versioned columns', async () => {
    await run([
      'CREATE TABLE k_generated (id INT PRIMARY KEY, a INT, v INT AS (a * 2) VIRTUAL, s INT AS (a * 3) PERSISTENT, ' +
        'h INT INVISIBLE DEFAULT 5) ENGINE=InnoDB',
      // row_start/row_end: in the binlog, not in information_schema.
      'CREATE TABLE k_versioned (id INT PRIMARY KEY, a INT) WITH SYSTEM VERSIONING ENGINE=InnoDB',
    ]);
    const source = binlogSource(['k_generated', 'k_versioned']);
    const recorder = new Recorder();
    const stream = await source.start(await source.currentPosition(), recorder);
    try {
      await run([
        'INSERT INTO k_generated (id, a) VALUES (1, 1)',
        'INSERT INTO k_versioned VALUES (1, 1)',
        'UPDATE k_versioned SET a = 2',
        'DELETE FROM k_versioned',
      ]);
      await waitFor('four transactions', () => recorder.transactions.length >= 4);
      expect(recorder.transactions.map((transaction) => transaction.changes)).toEqual([
        [keysChange('k_generated', [[1]])],
        [keysChange('k_versioned', [[1]])],
        [keysChange('k_versioned', [[1]])], // the history row it writes has the same key
        [keysChange('k_versioned', [[1]])],
      ]);
    } finally {
      await stream.stop();
    }
  });

  it('refuses a key column it cannot decode, naming connection.table.column', async () => {
    await run(['CREATE TABLE k_set (id SET(\'a\', \'b\') PRIMARY KEY) ENGINE=InnoDB']);
    const source = binlogSource(['k_set']);
    const error = await source.start(await source.currentPosition(), new Recorder()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SchemaError);
    expect((error as SchemaError).code).toBe('UNSUPPORTED_TYPE');
    expect((error as SchemaError).subject).toBe(`${NAMESPACE}.k_set.id`);
  });
});

describe('binlog source: DDL', () => {
  beforeAll(async () => {
    await run([
      'CREATE TABLE ddl_a (id INT PRIMARY KEY, v INT) ENGINE=InnoDB',
      'CREATE TABLE ddl_b (x INT, y INT, PRIMARY KEY (x, y)) ENGINE=InnoDB',
      'CREATE TABLE ddl_doomed (id INT PRIMARY KEY) ENGINE=InnoDB',
      'CREATE TABLE ddl_moved (id INT PRIMARY KEY) ENGINE=InnoDB',
      'CREATE TABLE ddl_other (id INT PRIMARY KEY) ENGINE=InnoDB',
    ]);
  });

  it('turns TRUNCATE, ALTER, RENAME and DROP of streamed tables into reconciles, and reads keys after an ALTER', async () => {
    const source = binlogSource(['ddl_a', 'ddl_b', 'ddl_doomed', 'ddl_moved']);
    const recorder = new Recorder();
    const stream = await source.start(await source.currentPosition(), recorder);
    try {
      await run(['INSERT INTO ddl_a VALUES (1, 1)', 'TRUNCATE TABLE ddl_a']);
      // The reader decodes the INSERT by the table as it is when the event arrives: had the ALTER
      // below run first (a reader lagging on a loaded machine), the INSERT would rightly come out as
      // a reconcile of ddl_a rather than its key. Wait for it before altering the table.
      await waitFor('the insert and the truncate', () => recorder.transactions.length >= 2);
      await run([
        '/* why */ ALTER TABLE `ddl_a` ADD COLUMN extra VARCHAR(5) FIRST',
        "INSERT INTO ddl_a VALUES ('e', 2, 2)",
        `ALTER TABLE ${NAMESPACE}.ddl_b DROP PRIMARY KEY, ADD PRIMARY KEY (y, x)`,
        'INSERT INTO ddl_b VALUES (1, 2)',
        'ALTER TABLE ddl_other ADD COLUMN w INT', // not streamed: nothing
        'RENAME TABLE ddl_moved TO ddl_moved_away',
        'DROP TABLE ddl_doomed',
      ]);
      await waitFor('every change', () => recorder.transactions.length >= 8);
      expect(recorder.transactions.map((transaction) => transaction.changes)).toEqual([
        [keysChange('ddl_a', [[1]])],
        [{ kind: 'reconcile', table: 'ddl_a', reason: 'truncate' }],
        [{ kind: 'reconcile', table: 'ddl_a', reason: 'schema' }],
        [keysChange('ddl_a', [[2]])],
        [{ kind: 'reconcile', table: 'ddl_b', reason: 'schema' }],
        [keysChange('ddl_b', [[2, 1]])], // key order (y, x) after the ALTER
        [{ kind: 'reconcile', table: 'ddl_moved', reason: 'schema' }],
        [{ kind: 'reconcile', table: 'ddl_doomed', reason: 'schema' }],
      ]);
    } finally {
      await stream.stop();
    }
  });

  it('asks for a reconcile for row events written before an ALTER it replays, keys after it', async () => {
    await run(['CREATE TABLE ddl_replay (id INT PRIMARY KEY) ENGINE=InnoDB']);
    const source = binlogSource(['ddl_replay']);
    const before = await source.currentPosition();
    await run([
      'INSERT INTO ddl_replay VALUES (1)',
      'ALTER TABLE ddl_replay ADD COLUMN v INT',
      'INSERT INTO ddl_replay VALUES (2, 2)',
    ]);
    const recorder = new Recorder();
    const stream = await source.start(before, recorder);
    try {
      await waitFor('the replay', () => recorder.transactions.length >= 3);
      expect(recorder.transactions.map((transaction) => transaction.changes)).toEqual([
        [{ kind: 'reconcile', table: 'ddl_replay', reason: 'schema' }], // 1 column then, 2 now: no guess
        [{ kind: 'reconcile', table: 'ddl_replay', reason: 'schema' }],
        [keysChange('ddl_replay', [[2]])],
      ]);
    } finally {
      await stream.stop();
    }
  });
});

describe('binlog source: setup, positions and failures', () => {
  beforeAll(async () => {
    await run(['CREATE TABLE misc (id INT PRIMARY KEY) ENGINE=InnoDB']);
  });

  it('passes preflight on the test server; setup and teardown need nothing', async () => {
    const source = binlogSource(['misc']);
    await expect(source.preflight()).resolves.toBeUndefined();
    await expect(source.setup()).resolves.toBeUndefined();
    await expect(source.teardown()).resolves.toBeUndefined();
    const position = await source.recover();
    expect(parseBinlogPosition(position)).toBeDefined();
  });

  it('fails preflight naming the problem: missing table, the server\'s own server id', async () => {
    await expect(binlogSource(['no_such_table']).preflight()).rejects.toMatchObject({ code: 'TABLE_NOT_FOUND' });
    const [row] = await database.execute('SELECT @@server_id AS id');
    const error = await binlogSource(['misc'], { serverId: Number(row!.id) }).preflight().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CdcSetupError);
    expect((error as CdcSetupError).subject).toMatch(/cdc\.serverId$/);
  });

  it('reports a purged or impossible position as PositionLostError', async () => {
    const source = binlogSource(['misc']);
    const purged = await source.start('mysql-bin.999999:4', new Recorder()).catch((caught: unknown) => caught);
    expect(purged).toBeInstanceOf(PositionLostError);
    expect((purged as PositionLostError).message).toMatch(/purged.*full reconcile/);
    expect((purged as PositionLostError).position).toBe('mysql-bin.999999:4');

    const end = parseBinlogPosition(await source.currentPosition())!;
    const beyond = await source.start(`${end.file}:${end.offset + 1_000_000}`, new Recorder()).catch((caught: unknown) => caught);
    expect(beyond).toBeInstanceOf(PositionLostError);

    // Inside an event: the server refuses it (error 1236) once the dump has begun.
    const inside = await source
      .start(`${end.file}:5`, new Recorder())
      .then((stream) => stream.done)
      .catch((caught: unknown) => caught);
    expect(inside).toBeInstanceOf(PositionLostError);
  });

  it('fails the older of two streams with the same server id, naming cdc.serverId', async () => {
    const serverId = uniqueServerId();
    const first = await binlogSource(['misc'], { serverId }).start(await binlogSource(['misc']).currentPosition(), new Recorder());
    const second = await binlogSource(['misc'], { serverId }).start(await binlogSource(['misc']).currentPosition(), new Recorder());
    try {
      const error = await first.done.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CdcSetupError);
      expect((error as CdcSetupError).subject).toMatch(/cdc\.serverId$/);
      expect((error as CdcSetupError).message).not.toContain('mysql://');
    } finally {
      await second.stop();
      await first.stop();
    }
  });

  it('keeps idle pipelines moving with heartbeats and rotations', async () => {
    const source = binlogSource(['misc']);
    const from = await source.currentPosition();
    const recorder = new Recorder();
    const stream = await source.start(from, recorder);
    try {
      await run(['CREATE TABLE idle_other (id INT PRIMARY KEY)', 'INSERT INTO idle_other VALUES (1)', 'INSERT INTO idle_other VALUES (2)']);
      const end = await source.currentPosition();
      // At or past the end of these writes: other test files write to the shared server too, and idle
      // reports are at most one per heartbeat, so the exact position may be skipped.
      await waitFor('an idle report at or past the end', () => recorder.idles.some((position) => compareBinlogPositions(position, end) >= 0));
      await run(['FLUSH BINARY LOGS']);
      const rotated = await source.currentPosition();
      await waitFor('an idle report in the new file', () =>
        recorder.idles.some((position) => parseBinlogPosition(position)!.file === parseBinlogPosition(rotated)!.file),
      );
      expect(recorder.transactions).toEqual([]);
    } finally {
      await stream.stop();
    }
  });

  it('delivers one transaction at a time and pauses reading while the handler is behind', async () => {
    await run(['CREATE TABLE busy (id INT PRIMARY KEY) ENGINE=InnoDB']);
    const source = binlogSource(['busy']);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const recorder = new Recorder(() => gate);
    const stream = await source.start(await source.currentPosition(), recorder);
    try {
      const count = 450;
      for (let id = 0; id < count; id += 1) await run([`INSERT INTO busy VALUES (${id})`]);
      // The stream holds at most ~200 queued transactions, then pauses its socket.
      const internals = stream as unknown as { paused: boolean; queue: unknown[] };
      await waitFor('the pause', () => internals.paused);
      expect(internals.queue.length).toBeLessThanOrEqual(210);
      release();
      await waitFor('every transaction', () => recorder.transactions.length >= count, 30_000);
      expect(recorder.keysOf('busy')).toEqual(Array.from({ length: count }, (_, id) => [id]));
      expect(recorder.maxInFlight).toBe(1);
    } finally {
      release();
      await stream.stop();
    }
  });

  it('ends the stream with the handler\'s error', async () => {
    const source = binlogSource(['misc']);
    const refusal = new Error('target unavailable');
    const stream = await source.start(await source.currentPosition(), {
      onTransaction: () => Promise.reject(refusal),
    });
    await run(['INSERT INTO misc VALUES (1)']);
    await expect(stream.done).rejects.toBe(refusal);
    await stream.stop();
  });

  it('fails a stream that stops receiving while the server writes on', async () => {
    const source = binlogSource(['misc'], { heartbeatMs: 100 });
    const stream = await source.start(await source.currentPosition(), new Recorder());
    // A socket that goes quiet without an error, as a dead network path does.
    (stream as unknown as { zongji: { connection: { pause(): void } } }).zongji.connection.pause();
    await run(['INSERT INTO misc VALUES (2)']);
    const error = await stream.done.catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'DB_TIMEOUT', retryable: true });
    expect((error as Error).message).toMatch(/stalled/);
    await stream.stop();
  });

  it('stop() closes the stream\'s sockets and timers', async () => {
    const ownDatabase = createDatabase({ connectionName: `${NAMESPACE}_own`, url: scratchUrl('mysql', NAMESPACE), poolSize: 1 });
    try {
      await ownDatabase.execute('SELECT 1');
      const source = binlogSource(['misc'], { database: ownDatabase });
      const from = await source.currentPosition();
      const handles = () => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap' || kind === 'Timeout').length;
      const before = handles();
      const stream = await source.start(from, new Recorder());
      expect(handles()).toBeGreaterThan(before);
      await stream.stop();
      await expect(stream.done).resolves.toBeUndefined();
      await waitFor('sockets and timers closed', () => handles() <= before);
    } finally {
      await ownDatabase.close();
    }
  });
});

describe('binlog source: decode rate', () => {
  it('reads a backlog of 100k changed rows', async () => {
    await run(['CREATE TABLE bulk (id BIGINT PRIMARY KEY, pad VARCHAR(100)) ENGINE=InnoDB']);
    const source = binlogSource(['bulk']);
    const from = await source.currentPosition();
    const rows = 100_000;
    for (let start = 0; start < rows; start += 10_000) {
      await run([`INSERT INTO bulk SELECT seq, REPEAT('x', 100) FROM seq_${start + 1}_to_${start + 10_000}`]);
    }
    let keys = 0;
    const began = Date.now();
    const stream = await source.start(from, {
      onTransaction: async (transaction) => {
        for (const change of transaction.changes) if (change.kind === 'keys') keys += change.keys.length;
      },
    });
    try {
      await waitFor('the backlog', () => keys >= rows, 60_000);
      const seconds = (Date.now() - began) / 1000;
      console.log(`binlog decode: ${rows} rows in ${seconds.toFixed(2)} s = ${Math.round(rows / seconds)} rows/s`);
    } finally {
      await stream.stop();
    }
  }, 90_000);
});
