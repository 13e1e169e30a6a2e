import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangeStream, ChangeStreamHandler, ChangeTransaction, TableChange } from '../../src/dialect/change-source.js';
import { createDatabase } from '../../src/dialect/create-database.js';
import type { Database } from '../../src/dialect/dialect.js';
import { PostgresLogicalSource, replicationObjectName } from '../../src/dialect/postgres/postgres-logical-source.js';
import { shapeOf } from '../../src/dialect/table-pair.js';
import type { KeyTuple } from '../../src/dialect/types.js';
import { CdcSetupError, DatabaseError, PositionLostError, RowsyncError, SchemaError } from '../../src/errors/index.js';
import { dropScratch, openScratch, scratchUrl } from '../support/scratch.js';

/**
 * PostgresLogicalSource against the test PostgreSQL 15 (wal_level=logical). Every test has its own
 * pipeline (slot + publication) and tears it down: slots are few (max_replication_slots=20) and
 * shared with the other test files running in parallel.
 */

const NAMESPACE = 'logical_source';
/** A schema whose tables are not streamed: its writes move the server's WAL, not our stream. */
const OTHER_NAMESPACE = 'logical_source_other';
const PIPELINE_PREFIX = 'lsrc_';

let database: Database;
let other: Database;
const sources: PostgresLogicalSource[] = [];
const openStreams: ChangeStream[] = [];

beforeAll(async () => {
  database = await openScratch('postgres', NAMESPACE, 'pgsource');
  other = await openScratch('postgres', OTHER_NAMESPACE);
  await other.execute('CREATE TABLE noise (id bigserial PRIMARY KEY, note text)');
  // Slots left by an interrupted earlier run of this file would hold WAL and slots forever.
  await database.execute(
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
      WHERE slot_name LIKE 'rowsync\\_${PIPELINE_PREFIX.replace('_', '\\_')}%' AND NOT active`,
  );
  const publications = await database.execute(
    `SELECT pubname FROM pg_publication WHERE pubname LIKE 'rowsync\\_${PIPELINE_PREFIX.replace('_', '\\_')}%'`,
  );
  for (const row of publications) await database.execute(`DROP PUBLICATION IF EXISTS "${String(row.pubname)}"`);
});

afterAll(async () => {
  for (const stream of openStreams) await stream.stop().catch(() => undefined);
  for (const source of sources) await teardownWhenReleased(source);
  await other?.close();
  await dropScratch('postgres', OTHER_NAMESPACE);
  await database?.close();
  await dropScratch('postgres', NAMESPACE);
});

function newSource(pipeline: string, tables: readonly string[], heartbeatMs = 60_000): PostgresLogicalSource {
  const source = new PostgresLogicalSource({
    pipeline: `${PIPELINE_PREFIX}${pipeline}`,
    connectionName: 'pgsource',
    url: scratchUrl('postgres', NAMESPACE),
    database,
    tables,
    serverId: 0,
    heartbeatMs,
    pollIntervalMs: 1000,
  });
  sources.push(source);
  return source;
}

async function startStream(source: PostgresLogicalSource, from: string, handler: ChangeStreamHandler): Promise<ChangeStream> {
  const stream = await source.start(from, handler);
  openStreams.push(stream);
  return stream;
}

/** A walsender that was just stopped may hold the slot for a moment: teardown waits for it. */
async function teardownWhenReleased(source: PostgresLogicalSource): Promise<void> {
  await waitFor(async () => {
    try {
      await source.teardown();
      return true;
    } catch (error) {
      if (error instanceof DatabaseError && error.engineCode === '55006') return false;
      throw error;
    }
  }, 'slot released for teardown');
}

class Collector implements ChangeStreamHandler {
  readonly transactions: ChangeTransaction[] = [];
  readonly idle: string[] = [];
  async onTransaction(transaction: ChangeTransaction): Promise<void> {
    this.transactions.push(transaction);
  }
  async onIdle(position: string): Promise<void> {
    this.idle.push(position);
  }
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function slotRow(source: PostgresLogicalSource): Promise<Record<string, unknown> | undefined> {
  const [row] = await database.execute(
    `SELECT s.confirmed_flush_lsn::text AS confirmed, s.active_pid, r.sent_lsn::text AS sent,
            (extract(epoch FROM r.reply_time) * 1000)::float8 AS reply_ms
       FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.slot_name = $1`,
    [source.objectName],
  );
  return row;
}

/** Bytes of WAL from `from` to `to`. */
function lsnDistance(from: string, to: string): number {
  const value = (lsn: string) => {
    const [high, low] = lsn.split('/');
    return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
  };
  return Number(value(to) - value(from));
}

async function confirmedFlush(source: PostgresLogicalSource): Promise<string> {
  return String((await slotRow(source))?.confirmed);
}

function keyChanges(transaction: ChangeTransaction): { table: string; keys: readonly KeyTuple[] }[] {
  return transaction.changes.flatMap((change) => (change.kind === 'keys' ? [{ table: change.table, keys: change.keys }] : []));
}

function allKeys(transactions: readonly ChangeTransaction[], table: string): KeyTuple[] {
  return transactions.flatMap((transaction) =>
    transaction.changes.flatMap((change) => (change.kind === 'keys' && change.table === table ? [...change.keys] : [])),
  );
}

/** Keys in a stable order (Buffers by content), for set comparisons. */
function sortedKeys(keys: readonly KeyTuple[]): KeyTuple[] {
  const identity = (key: KeyTuple) =>
    JSON.stringify(key.map((value) => (Buffer.isBuffer(value) ? `bytes:${value.toString('hex')}` : `${typeof value}:${String(value)}`)));
  return [...keys].sort((a, b) => (identity(a) < identity(b) ? -1 : identity(a) > identity(b) ? 1 : 0));
}

describe('PostgresLogicalSource: names, setup, preflight, teardown', () => {
  it('names slot and publication rowsync_<pipeline>_<hash of database, schema, pipeline>, [a-z0-9_], at most 63 bytes', () => {
    expect(replicationObjectName('orders_eu', 'shop', 'public')).toMatch(/^rowsync_orders_eu_[0-9a-f]{8}$/);
    expect(replicationObjectName('Orders-EU', 'shop', 'public')).toMatch(/^rowsync_orders_eu_[0-9a-f]{8}$/);
    expect(replicationObjectName('orders-eu', 'shop', 'public')).not.toBe(replicationObjectName('orders_eu', 'shop', 'public'));
    // Slot names are server-wide: the same pipeline name on another database or schema is another slot.
    expect(replicationObjectName('p', 'shop', 'public')).not.toBe(replicationObjectName('p', 'shop', 'eu'));
    expect(replicationObjectName('p', 'shop', 'public')).not.toBe(replicationObjectName('p', 'crm', 'public'));
    const long = replicationObjectName('x'.repeat(100), 'shop', 'public');
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^rowsync_x+_[0-9a-f]{8}$/);
    expect(replicationObjectName('x'.repeat(100), 'shop', 'public')).not.toBe(replicationObjectName(`${'x'.repeat(99)}y`, 'shop', 'public'));
  });

  it('preflight fails clearly before setup, passes after it; setup and teardown are idempotent', async () => {
    await database.execute('CREATE TABLE setup_a (id int PRIMARY KEY, v text)');
    await database.execute('CREATE TABLE setup_b (id int PRIMARY KEY, v text)');
    const source = newSource('setup', ['setup_a']);

    const before = await source.preflight().catch((error: unknown) => error);
    expect(before).toBeInstanceOf(CdcSetupError);
    expect((before as Error).message).toContain(`replication slot ${source.objectName} does not exist`);
    expect((before as Error).message).toContain('run `rowsync cdc setup --pipeline lsrc_setup`');

    await source.setup();
    await source.setup();
    await source.preflight();
    const [slot] = await database.execute(
      `SELECT plugin, database FROM pg_replication_slots WHERE slot_name = $1`,
      [source.objectName],
    );
    expect(slot).toEqual({ plugin: 'pgoutput', database: 'rowsync' });
    const published = async () =>
      (
        await database.execute(`SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [
          source.objectName,
        ])
      ).map((row) => row.t);
    expect(await published()).toEqual([`${NAMESPACE}.setup_a`]);

    // The same pipeline with another table list: the publication follows it (ALTER PUBLICATION SET TABLE).
    const widened = newSource('setup', ['setup_a', 'setup_b']);
    await expect(widened.preflight()).rejects.toThrow(/does not include table\(s\) setup_b/);
    await widened.setup();
    await widened.preflight();
    expect(await published()).toEqual([`${NAMESPACE}.setup_a`, `${NAMESPACE}.setup_b`]);

    await source.teardown();
    await source.teardown();
    expect(await database.execute('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [source.objectName])).toEqual([]);
    expect(await database.execute('SELECT 1 FROM pg_publication WHERE pubname = $1', [source.objectName])).toEqual([]);
    await expect(source.preflight()).rejects.toBeInstanceOf(CdcSetupError);
  });

  it('refuses tables that cannot stream: missing, REPLICA IDENTITY NOTHING (before publishing anything)', async () => {
    await database.execute('CREATE TABLE no_identity (id int PRIMARY KEY, v text)');
    await database.execute('ALTER TABLE no_identity REPLICA IDENTITY NOTHING');
    const source = newSource('identity', ['no_identity']);
    const refused = await source.setup().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CdcSetupError);
    expect((refused as CdcSetupError).message).toContain(`table ${NAMESPACE}.no_identity has REPLICA IDENTITY NOTHING`);
    expect((refused as CdcSetupError).subject).toBe('pgsource.no_identity');
    expect(await database.execute('SELECT 1 FROM pg_publication WHERE pubname = $1', [source.objectName])).toEqual([]);

    // Set up with a good identity, then changed: preflight names the table.
    await database.execute('ALTER TABLE no_identity REPLICA IDENTITY DEFAULT');
    await source.setup();
    await database.execute('ALTER TABLE no_identity REPLICA IDENTITY NOTHING');
    await expect(source.preflight()).rejects.toThrow(/no_identity has REPLICA IDENTITY NOTHING/);
    await database.execute('ALTER TABLE no_identity REPLICA IDENTITY DEFAULT');
    await source.preflight();
    await source.teardown();

    const missing = newSource('missing', ['does_not_exist']);
    await expect(missing.setup()).rejects.toBeInstanceOf(SchemaError);
  });

  it('preflight names the missing REPLICATION attribute and how to grant it', async () => {
    await database.execute('CREATE TABLE plain_role_t (id int PRIMARY KEY)');
    const role = 'rowsync_lsrc_plain';
    await database.execute(`DROP ROLE IF EXISTS ${role}`);
    await database.execute(`CREATE ROLE ${role} LOGIN PASSWORD 'lsrc-plain'`);
    const url = new URL(scratchUrl('postgres', NAMESPACE));
    url.username = role;
    url.password = 'lsrc-plain';
    const plain = createDatabase({ connectionName: 'plain', url: url.toString(), poolSize: 1 });
    try {
      const source = new PostgresLogicalSource({
        pipeline: `${PIPELINE_PREFIX}plain`,
        connectionName: 'plain',
        url: url.toString(),
        database: plain,
        tables: ['plain_role_t'],
        serverId: 0,
        heartbeatMs: 60_000,
        pollIntervalMs: 1000,
      });
      const refused = await source.preflight().catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(CdcSetupError);
      expect((refused as CdcSetupError).subject).toBe('REPLICATION');
      expect((refused as Error).message).toContain(`ALTER ROLE "${role}" WITH REPLICATION`);
      expect((refused as Error).message).not.toContain('lsrc-plain');
    } finally {
      await plain.close();
      await database.execute(`DROP ROLE IF EXISTS ${role}`);
    }
  });
});

describe('PostgresLogicalSource: streaming', () => {
  it('delivers whole transactions in commit order with their keys (old and new key of a key change)', async () => {
    await database.execute('CREATE TABLE orders (id int PRIMARY KEY, note text)');
    await database.execute('CREATE TABLE lines (order_id int, line int, PRIMARY KEY (order_id, line))');
    const source = newSource('order', ['orders', 'lines']);
    await source.setup();
    const collector = new Collector();
    const stream = await startStream(source, await source.currentPosition(), collector);

    await database.execute(`BEGIN; INSERT INTO orders VALUES (1, 'a'), (2, 'b'), (3, 'c'); INSERT INTO lines VALUES (1, 1), (1, 2); COMMIT`);
    await database.execute(`UPDATE orders SET id = 20 WHERE id = 2`);
    await database.execute(`UPDATE orders SET note = 'changed' WHERE id = 1`);
    await database.execute(`BEGIN; DELETE FROM orders WHERE id = 3; UPDATE orders SET note = 'again' WHERE id = 1; UPDATE orders SET note = 'thrice' WHERE id = 1; COMMIT`);
    await database.execute(`BEGIN; INSERT INTO orders VALUES (4, 'd'); DELETE FROM lines WHERE order_id = 1 AND line = 2; COMMIT`);
    await waitFor(() => collector.transactions.length >= 5, 'five transactions');

    expect(collector.transactions.map(keyChanges)).toEqual([
      [
        { table: 'orders', keys: [[1], [2], [3]] },
        { table: 'lines', keys: [[1, 1], [1, 2]] },
      ],
      [{ table: 'orders', keys: [[2], [20]] }],
      [{ table: 'orders', keys: [[1]] }],
      [{ table: 'orders', keys: [[3], [1]] }],
      [
        { table: 'orders', keys: [[4]] },
        { table: 'lines', keys: [[1, 2]] },
      ],
    ]);
    const positions = collector.transactions.map((transaction) => transaction.position);
    for (let index = 1; index < positions.length; index += 1) {
      expect(source.comparePositions(positions[index - 1]!, positions[index]!)).toBe(-1);
    }
    for (const transaction of collector.transactions) {
      expect(transaction.position).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(Math.abs(transaction.committedAt! - Date.now())).toBeLessThan(60_000);
    }
    await stream.stop();
    await stream.done;
  });

  it('gives keys exactly as the dialect reads them: bigint > 2^53, numeric, timestamps with microseconds, bytea, uuid, composite', async () => {
    const tables: Record<string, { ddl: string; rows: string }> = {
      k_bigint: { ddl: 'id bigint PRIMARY KEY', rows: `(9007199254740993), (-9223372036854775808), (7)` },
      k_numeric: { ddl: 'id numeric(30,10) PRIMARY KEY', rows: `(12345678901234567890.0123456789), (0.0000000001), (-1.5)` },
      k_timestamp: { ddl: 'id timestamp(6) PRIMARY KEY', rows: `('2024-02-29 23:59:59.123456'), ('1999-01-01 00:00:00'), ('2001-02-03 04:05:06.7')` },
      k_timestamptz: { ddl: 'id timestamptz(6) PRIMARY KEY', rows: `('2024-02-29 23:59:59.123456+05:30'), ('2000-01-01 00:00:00.000001+00')` },
      k_bytea: { ddl: 'id bytea PRIMARY KEY', rows: `('\\x00'), ('\\xff'), ('\\x'), ('\\xdeadbeef')` },
      k_uuid: { ddl: 'id uuid PRIMARY KEY', rows: `('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'), ('00000000-0000-0000-0000-000000000000')` },
      // A domain over char(n) (padding stripped like `::text`), inet (netmask shown like `::text`), int4.
      k_misc: { ddl: 'code short_code, address inet, n int, PRIMARY KEY (code, address, n)', rows: `('a', '10.0.0.1', 1), ('b', '::1', -2), ('c', '10.0.0.0/8', 3)` },
      k_composite: {
        ddl: 'a int, b char(4), c text, d date, PRIMARY KEY (a, b, c, d)',
        rows: `(1, 'ab', 'Z ', '2024-01-01'), (1, 'ab', 'z', '2024-01-01'), (2, 'x', '', '1970-01-01')`,
      },
    };
    await database.execute('CREATE DOMAIN short_code AS char(3)');
    for (const [table, { ddl }] of Object.entries(tables)) await database.execute(`CREATE TABLE ${table} (${ddl})`);
    const source = newSource('exact', Object.keys(tables));
    await source.setup();
    const collector = new Collector();
    const stream = await startStream(source, await source.currentPosition(), collector);
    for (const [table, { rows }] of Object.entries(tables)) await database.execute(`INSERT INTO ${table} VALUES ${rows}`);
    // Deletes carry the key from the old (key) tuple: the same values again.
    await database.execute(`BEGIN; ${Object.keys(tables).map((table) => `DELETE FROM ${table};`).join(' ')} COMMIT`);
    const tableCount = Object.keys(tables).length;
    await waitFor(() => collector.transactions.length >= tableCount + 1, 'inserts and the delete transaction');

    const inserts = collector.transactions.slice(0, tableCount);
    const deletes = collector.transactions[tableCount]!;
    // Relation messages matched the catalog (typmods included): no spurious schema reconcile.
    expect(collector.transactions.flatMap((transaction) => transaction.changes).filter((change) => change.kind === 'reconcile')).toEqual([]);
    for (const table of Object.keys(tables)) {
      // What the dialect reads for the same rows (inserted again after the delete).
      await database.execute(`INSERT INTO ${table} VALUES ${tables[table]!.rows}`);
      const shape = shapeOf(database, await database.describeTable(table));
      const rows = await database.fetchRange(shape, {}, 100);
      const dialectKeys = rows.map((row) => shape.keyIndexes.map((index) => row[index]!));
      const streamed = allKeys(inserts, table);
      expect(sortedKeys(streamed), table).toEqual(sortedKeys(dialectKeys));
      expect(sortedKeys(allKeys([deletes], table)), `${table} (delete)`).toEqual(sortedKeys(dialectKeys));
      expect((await database.fetchByKeys(shape, streamed)).length, table).toBe(streamed.length);
    }
    expect(allKeys(inserts, 'k_bigint')).toContainEqual(['9007199254740993']);
    expect(allKeys(inserts, 'k_numeric')).toContainEqual(['12345678901234567890.0123456789']);
    expect(allKeys(inserts, 'k_timestamp')).toContainEqual(['2024-02-29 23:59:59.123456']);
    expect(allKeys(inserts, 'k_timestamptz')).toContainEqual(['2024-02-29 18:29:59.123456']);
    expect(allKeys(inserts, 'k_bytea')).toContainEqual([Buffer.from([0])]);
    expect(allKeys(inserts, 'k_bytea')).toContainEqual([Buffer.alloc(0)]);
    expect(allKeys(inserts, 'k_uuid')).toContainEqual(['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']);
    expect(allKeys(inserts, 'k_composite')).toContainEqual([1, 'ab', 'Z ', '2024-01-01']);
    expect(allKeys(inserts, 'k_misc')).toContainEqual(['a', '10.0.0.1/32', 1]);
    await stream.stop();
  });

  it('renders key text in the dialect session settings, whatever the role defaults to', async () => {
    // The server runs in UTC with ISO dates: a role whose own defaults differ shows that the
    // walsender takes the session options of its startup packet (client settings beat role ones).
    const role = 'rowsync_lsrc_session';
    await database.execute(`DROP ROLE IF EXISTS ${role}`);
    await database.execute(`CREATE ROLE ${role} LOGIN REPLICATION PASSWORD 'lsrc-session'`);
    try {
      await database.execute(`ALTER ROLE ${role} SET timezone = 'Asia/Kolkata'`);
      await database.execute(`ALTER ROLE ${role} SET datestyle = 'SQL, DMY'`);
      await database.execute(`ALTER ROLE ${role} SET bytea_output = 'escape'`);
      await database.execute('CREATE TABLE k_session (at timestamptz(6), day date, bytes bytea, PRIMARY KEY (at, day, bytes))');
      const url = new URL(scratchUrl('postgres', NAMESPACE));
      url.username = role;
      url.password = 'lsrc-session';
      const source = new PostgresLogicalSource({
        pipeline: `${PIPELINE_PREFIX}session`,
        connectionName: 'pgsource',
        url: url.toString(),
        database, // catalog work as the owner; only the walsender connects as the role
        tables: ['k_session'],
        serverId: 0,
        heartbeatMs: 60_000,
        pollIntervalMs: 1000,
      });
      sources.push(source);
      await source.setup();
      const collector = new Collector();
      const stream = await startStream(source, await source.currentPosition(), collector);
      await database.execute(`INSERT INTO k_session VALUES ('2024-02-29 23:59:59.123456+00', '2024-03-01', '\\x00ff41')`);
      await waitFor(() => collector.transactions.length >= 1, 'the insert');
      expect(allKeys(collector.transactions, 'k_session')).toEqual([['2024-02-29 23:59:59.123456', '2024-03-01', Buffer.from([0, 255, 65])]]);
      await stream.stop();
      await stream.done;
      await teardownWhenReleased(source);
    } finally {
      await database.execute(`DROP ROLE IF EXISTS ${role}`);
    }
  });

  it('resumes after a transaction: exactly the later transactions arrive', async () => {
    await database.execute('CREATE TABLE resume_t (id int PRIMARY KEY)');
    const source = newSource('resume', ['resume_t']);
    await source.setup();
    const start = await source.currentPosition();
    for (let id = 1; id <= 4; id += 1) await database.execute(`INSERT INTO resume_t VALUES (${id})`);

    const first = new Collector();
    const firstStream = await startStream(source, start, first);
    await waitFor(() => first.transactions.length >= 4, 'four transactions');
    await firstStream.stop();
    await firstStream.done;
    expect(first.transactions.map((transaction) => allKeys([transaction], 'resume_t'))).toEqual([[[1]], [[2]], [[3]], [[4]]]);

    const second = new Collector();
    const secondStream = await startStream(source, first.transactions[1]!.position, second);
    await database.execute('INSERT INTO resume_t VALUES (5)');
    await waitFor(() => second.transactions.length >= 3, 'the transactions after the second');
    expect(second.transactions.map((transaction) => allKeys([transaction], 'resume_t'))).toEqual([[[3]], [[4]], [[5]]]);
    expect(second.transactions.map((transaction) => transaction.position).slice(0, 2)).toEqual(
      first.transactions.slice(2).map((transaction) => transaction.position),
    );
    await secondStream.stop();
  });

  it('reports TRUNCATE and a schema change as reconcile, in their place', async () => {
    await database.execute('CREATE TABLE evolving (id int PRIMARY KEY, v text)');
    await database.execute('CREATE TABLE bystander (id int PRIMARY KEY)');
    const source = newSource('reconcile', ['evolving', 'bystander']);
    await source.setup();
    const collector = new Collector();
    const stream = await startStream(source, await source.currentPosition(), collector);

    await database.execute(`INSERT INTO evolving VALUES (1, 'a')`);
    await database.execute('TRUNCATE evolving');
    await database.execute(`BEGIN; INSERT INTO evolving VALUES (2, 'b'); TRUNCATE evolving; INSERT INTO evolving VALUES (3, 'c'); COMMIT`);
    await database.execute('ALTER TABLE evolving ADD COLUMN extra int');
    await database.execute(`INSERT INTO evolving VALUES (4, 'd', 1)`);
    await database.execute(`INSERT INTO evolving VALUES (5, 'e', 2)`);
    await waitFor(() => collector.transactions.length >= 5, 'five transactions');

    const changes = collector.transactions.map((transaction) => transaction.changes);
    expect(changes[0]).toEqual([{ kind: 'keys', table: 'evolving', keys: [[1]] }]);
    expect(changes[1]).toEqual([{ kind: 'reconcile', table: 'evolving', reason: 'truncate' }]);
    expect(changes[2]).toEqual<TableChange[]>([
      { kind: 'keys', table: 'evolving', keys: [[2]] },
      { kind: 'reconcile', table: 'evolving', reason: 'truncate' },
      { kind: 'keys', table: 'evolving', keys: [[3]] },
    ]);
    // The ALTER itself publishes nothing; the Relation message before the next change shows it.
    expect(changes[3]).toEqual<TableChange[]>([
      { kind: 'reconcile', table: 'evolving', reason: 'schema' },
      { kind: 'keys', table: 'evolving', keys: [[4]] },
    ]);
    expect(changes[4]).toEqual([{ kind: 'keys', table: 'evolving', keys: [[5]] }]);
    await stream.stop();
  });
});

describe('PostgresLogicalSource: acknowledgement, heartbeats, backpressure', () => {
  it('moves the slot only to acknowledged positions, whatever was received or how long it waits', async () => {
    await database.execute('CREATE TABLE acked (id int PRIMARY KEY)');
    const heartbeatMs = 200; // status updates every 200 ms as well
    const source = newSource('ack', ['acked'], heartbeatMs);
    await source.setup();
    const start = await source.currentPosition();
    expect(await confirmedFlush(source)).toBe(start);

    const collector = new Collector();
    let stream = await startStream(source, start, collector);
    await database.execute('INSERT INTO acked VALUES (1)');
    await waitFor(() => collector.transactions.length === 1, 'the transaction');
    const received = collector.transactions[0]!.position;

    // Server keepalives (the walsender pings while WAL it does not send goes by), our status updates
    // and heartbeats, for several intervals; none of them may confirm what was only received.
    const receivedAt = Date.now();
    for (let i = 0; i < 10; i += 1) {
      await other.execute(`INSERT INTO noise (note) VALUES ('keepalive ${i}')`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitFor(async () => {
      const row = await slotRow(source);
      // The walsender decoded past the transaction and has heard from us since.
      return (
        row?.sent !== null && source.comparePositions(String(row?.sent), received) > 0 &&
        typeof row?.reply_ms === 'number' && row.reply_ms > receivedAt + 3 * heartbeatMs
      );
    }, 'server past the transaction, replies sent');
    expect(collector.idle.length).toBeGreaterThan(0); // heartbeats came back, unacknowledged too
    expect(await confirmedFlush(source)).toBe(start);

    // Not acknowledged: a restart from the old position delivers it again.
    await stream.stop();
    await stream.done;
    const again = new Collector();
    stream = await startStream(source, start, again);
    await waitFor(() => again.transactions.length >= 1, 'the transaction again');
    expect(again.transactions[0]!.position).toBe(received);
    expect(again.transactions[0]!.changes).toEqual(collector.transactions[0]!.changes);

    await stream.acknowledge(received);
    await waitFor(async () => (await confirmedFlush(source)) === received, 'confirmed_flush_lsn = the acknowledged position');
    // An older position never moves it back; a position never delivered is refused.
    await stream.acknowledge(start);
    await expect(stream.acknowledge('FFFFFFFF/0')).rejects.toThrow(/delivered up to/);
    await new Promise((resolve) => setTimeout(resolve, 3 * heartbeatMs));
    expect(await confirmedFlush(source)).toBe(received);
    await stream.stop();

    // Resuming from the acknowledged position: nothing of that transaction again.
    const after = new Collector();
    stream = await startStream(source, received, after);
    await database.execute('INSERT INTO acked VALUES (2)');
    await waitFor(() => after.transactions.length >= 1, 'the next transaction');
    expect(after.transactions.map((transaction) => allKeys([transaction], 'acked'))).toEqual([[[2]]]);
    await stream.stop();
  });

  it('heartbeats move an idle stream while other schemas write; acknowledging one moves the slot', async () => {
    await database.execute('CREATE TABLE idle_t (id int PRIMARY KEY)');
    const source = newSource('heartbeat', ['idle_t'], 150);
    await source.setup();
    const start = await source.currentPosition();
    const collector = new Collector();
    const stream = await startStream(source, start, collector);
    let writing = true;
    const writer = (async () => {
      while (writing) {
        await other.execute(`INSERT INTO noise (note) VALUES ('elsewhere')`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      await waitFor(() => collector.idle.length >= 3, 'three heartbeats');
    } finally {
      writing = false;
      await writer;
    }
    expect(collector.transactions).toEqual([]);
    const idle = [...collector.idle];
    expect(source.comparePositions(start, idle[0]!)).toBe(-1);
    for (let index = 1; index < idle.length; index += 1) expect(source.comparePositions(idle[index - 1]!, idle[index]!)).toBe(-1);

    const last = idle[idle.length - 1]!;
    await stream.acknowledge(last);
    await waitFor(async () => (await confirmedFlush(source)) === last, 'slot at the acknowledged heartbeat');
    expect(source.comparePositions(await confirmedFlush(source), start)).toBe(1);
    await stream.stop();
  });

  it('applies backpressure: a busy handler stops the server from sending; everything arrives after it', async () => {
    await database.execute('CREATE TABLE backlog (id int PRIMARY KEY, payload text)');
    const source = newSource('backpressure', ['backlog']);
    await source.setup();
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const keys = new Set<number>();
    let calls = 0;
    // No onIdle: heartbeats of other pipelines' streams in this database (logical messages reach
    // every slot) arrive here as empty transactions; only those with keys are counted.
    let withKeys = 0;
    const stream = await startStream(source, await source.currentPosition(), {
      async onTransaction(transaction) {
        calls += 1;
        const transactionKeys = allKeys([transaction], 'backlog');
        if (transactionKeys.length > 0) withKeys += 1;
        for (const key of transactionKeys) keys.add(Number(key[0]));
        await released;
      },
    });
    const TRANSACTIONS = 50;
    const ROWS = 2000;
    for (let index = 0; index < TRANSACTIONS; index += 1) {
      await database.execute(
        `INSERT INTO backlog SELECT g, repeat('x', 100) FROM generate_series(${index * ROWS + 1}, ${(index + 1) * ROWS}) g`,
      );
    }
    const [{ end }] = (await database.execute('SELECT pg_current_wal_lsn()::text AS end')) as [{ end: string }];
    await waitFor(() => calls === 1, 'the first transaction in the handler');
    // The handler holds one transaction: the walsender blocks on a full socket far behind the end
    // of the backlog (about 15 MB of WAL), and nothing else is delivered meanwhile.
    let sent = '';
    await waitFor(async () => {
      const before = String((await slotRow(source))?.sent);
      await new Promise((resolve) => setTimeout(resolve, 500));
      sent = String((await slotRow(source))?.sent);
      return before === sent;
    }, 'the walsender blocked');
    expect(lsnDistance(sent, end)).toBeGreaterThan(5_000_000);
    expect(calls).toBe(1);

    release();
    await waitFor(() => keys.size === TRANSACTIONS * ROWS, 'every key', 60_000);
    expect(withKeys).toBe(TRANSACTIONS);
    await stream.stop();
  });
});

describe('PostgresLogicalSource: failures', () => {
  it('rejects done when the walsender is terminated, and resolves it after stop', async () => {
    await database.execute('CREATE TABLE killed (id int PRIMARY KEY)');
    const source = newSource('terminate', ['killed']);
    await source.setup();
    const stream = await startStream(source, await source.currentPosition(), new Collector());
    const [row] = await database.execute('SELECT pg_terminate_backend(active_pid) AS killed FROM pg_replication_slots WHERE slot_name = $1', [
      source.objectName,
    ]);
    expect(row?.killed).toBe(true);
    const error = await stream.done.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(RowsyncError);
    expect((error as Error).message).toMatch(/^connection pgsource \(postgres\): /);
    expect((error as Error).message).not.toContain('rowsync:rowsync');

    const stopped = await startStream(source, await source.currentPosition(), new Collector());
    await stopped.stop();
    await expect(stopped.done).resolves.toBeUndefined();
  });

  it('says that another reader holds the slot', async () => {
    await database.execute('CREATE TABLE shared_slot (id int PRIMARY KEY)');
    const source = newSource('inuse', ['shared_slot']);
    await source.setup();
    const position = await source.currentPosition();
    const first = await startStream(source, position, new Collector());
    const refused = await source.start(position, new Collector()).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DatabaseError);
    expect((refused as DatabaseError).message).toMatch(/is in use by process \d+: another reader holds the slot/);
    expect((refused as DatabaseError).retryable).toBe(true);
    await expect(source.teardown()).rejects.toThrow(/another reader holds the slot/);
    await first.stop();
  });

  it('a dropped slot is a lost position: start rejects, recover makes a new one, an old checkpoint stays refused', async () => {
    // Invalidating a slot for real needs max_slot_wal_keep_size on the shared test server: the slot
    // is dropped instead, which the server reports in the same place (START_REPLICATION).
    await database.execute('CREATE TABLE lost_t (id int PRIMARY KEY)');
    const source = newSource('lost', ['lost_t']);
    await source.setup();
    const checkpoint = await source.currentPosition();
    await database.execute('INSERT INTO lost_t VALUES (1)');
    await database.execute('SELECT pg_drop_replication_slot($1)', [source.objectName]);

    const lost = await source.start(checkpoint, new Collector()).catch((error: unknown) => error);
    expect(lost).toBeInstanceOf(PositionLostError);
    expect((lost as PositionLostError).position).toBe(checkpoint);
    expect((lost as Error).message).toContain('does not exist any more');
    // The publication is still there: the pipeline was set up, so preflight too calls it a lost position.
    await expect(source.preflight()).rejects.toBeInstanceOf(PositionLostError);

    const fresh = await source.recover();
    expect(source.comparePositions(fresh, checkpoint)).toBe(1);
    await source.preflight();
    // The old checkpoint is before the new slot: resuming from it would silently skip changes.
    await expect(source.start(checkpoint, new Collector())).rejects.toBeInstanceOf(PositionLostError);

    const collector = new Collector();
    const stream = await startStream(source, fresh, collector);
    await database.execute('INSERT INTO lost_t VALUES (2)');
    await waitFor(() => collector.transactions.length >= 1, 'a transaction after recovery');
    expect(allKeys(collector.transactions, 'lost_t')).toEqual([[2]]);
    await stream.stop();
  });

  it('rejects done with the handler error, as it is (rejected or thrown)', async () => {
    await database.execute('CREATE TABLE failing (id int PRIMARY KEY)');
    const source = newSource('handler', ['failing']);
    await source.setup();
    const failure = new Error('target unavailable');
    const stream = await startStream(source, await source.currentPosition(), {
      async onTransaction() {
        throw failure;
      },
    });
    await database.execute('INSERT INTO failing VALUES (1)');
    await expect(stream.done).rejects.toBe(failure);

    const thrown = await startStream(source, await source.currentPosition(), {
      onTransaction() {
        throw failure;
      },
    });
    await database.execute('INSERT INTO failing VALUES (2)');
    await expect(thrown.done).rejects.toBe(failure);
  });
});
