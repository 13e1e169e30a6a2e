/**
 * The 'polling' change source for MySQL/MariaDB: triggers record changed keys in a change table,
 * and a reader polls it. For sources where the binlog cannot be read (no REPLICATION privileges, a
 * managed server that hides it).
 *
 * What setup creates (idempotent; `teardown` removes it):
 * - `rowsync_chg_<pipeline>`: one row per changed row: an AUTO_INCREMENT id, the table, the key as
 *   exact text (polling-source-base.ts), the old key of an UPDATE that changed the key, and the UTC
 *   time the trigger ran. The table comment holds a random "generation", new each time setup creates
 *   the table; positions carry it, so a position taken before a teardown + setup (whose changes in
 *   between no trigger recorded) is refused with `PositionLostError` and answered with a reconcile.
 * - per streamed table, AFTER INSERT / UPDATE / DELETE row triggers `rowsync_<hash>_<table>_<i|u|d>`
 *   writing that row. They record nothing while the writing session has `@rowsync_applying = 1`:
 *   rowsync's own writes, once it applies changes to this database (bidirectional sync).
 * - Not covered, because MySQL/MariaDB fire no trigger for them: TRUNCATE TABLE, DROP/ALTER TABLE,
 *   and changes made with triggers bypassed (a replica applying row events from its source).
 *   Scheduled reconciles repair what those change. A FLOAT/DOUBLE key column is refused: no SQL
 *   function prints a double exactly on MariaDB (CAST(0.1 + 0.2 AS CHAR) is '0.3').
 * - The triggers run as their definer (the user that ran setup): dropping that user makes every
 *   write to the streamed tables fail. Never drop the change table by hand either (writes would
 *   fail too); `rowsync cdc teardown` drops the triggers first.
 *
 * Reading order: gaps and the transactions that may still fill them
 * ------------------------------------------------------------------
 * AUTO_INCREMENT ids are handed out when a row is inserted, but become visible when its transaction
 * commits: a long transaction may take id 7, a short one id 8 and commit first. A reader that moved
 * past the highest id it saw would never read 7. A trigger cannot see its transaction's id, so the
 * reader tracks gaps instead:
 * - The position is `{ generation, next, gaps }` (JSON text). Every id below `next` was delivered,
 *   or is in a gap: an id that was missing when the reader passed it. A missing id belongs to a
 *   transaction that has not committed yet, or that rolled back (InnoDB never reuses the id).
 * - For each group of gaps the reader records the transactions that were open after it found them
 *   (`waitFor`, from information_schema.INNODB_TRX, which needs the PROCESS privilege). The owner of
 *   a missing id is among them: it had not committed when the rows were read, so it was still open,
 *   or it ended between that read and the snapshot (then its row is visible to the next read).
 * - Each poll reads the gap ids again and the rows from `next` on. A gap row is delivered when it is
 *   found, after rows with higher ids that committed before it: in commit order. Each later snapshot
 *   narrows `waitFor` to the transactions still open. A gap is retired once a read taken after
 *   `waitFor` became empty still does not find it: its owner has ended without committing it, so
 *   the id can never appear. Unlike SymmetricDS's time-out (a gap abandoned after 20 minutes), this
 *   never drops a change of a transaction that is merely slow, and never waits for one that is gone.
 * - Transactions are identified by connection id and start second (`trx_mysql_thread_id`,
 *   `trx_started`), not by `trx_id`: InnoDB gives a transaction its trx_id only when it starts
 *   writing (measured on MariaDB 10.11: a transaction that had only read showed trx_id 0, the same
 *   transaction 2215 after an insert), and the AUTO_INCREMENT value is allocated before the row is
 *   written. A new transaction on the same connection in the same second is taken for the old one:
 *   that only delays a retirement.
 * - INNODB_TRX is served from a cache that InnoDB refreshes only when nobody has read it for 100 ms
 *   (trx0i_s.cc, CACHE_MIN_IDLE_TIME): a read can return the transactions of any earlier moment,
 *   and a snapshot that missed the gap's owner would retire a gap too early. So the reader reads it
 *   inside a transaction of its own, with a fresh random marker in the statement, and trusts the
 *   result only when its own transaction is listed running that very statement; it reads it at most
 *   every 200 ms, so its own reads never keep the cache from refreshing. Monitoring that reads
 *   INNODB_TRX more often than every 100 ms, or a long-running transaction anywhere on the server
 *   (even a read-only one), delays retiring gaps (and so the position's `next` and the clean-up of
 *   acknowledged rows), never the delivery of changes.
 * - A delivered transaction is one poll's rows, not the source transaction (which a trigger cannot
 *   see): a large source transaction may arrive in several parts. Every position is still exact:
 *   resuming from it replays nothing before it and loses nothing after it.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, type Connection } from 'mysql2/promise';
import { CdcSetupError, DatabaseError, PositionLostError, SchemaError } from '../../errors/index.js';
import type { ChangeSource, ChangeSourceOptions, ChangeStream, ChangeStreamHandler } from '../change-source.js';
import {
  Delivery, POLL_BATCH_ROWS, PollingStream, StreamedTables, changeTableName, changesOf, keyTextSql, newGeneration, notSetUp,
  shortHash, triggerName, triggerPrefix, validatePollingOptions, type ChangeRow, type PollingCycle, type TriggerEvent,
} from '../polling-source-base.js';
import type { Database } from '../dialect.js';
import type { PortableValue, ShapeColumn, TableShape } from '../types.js';
import { mysqlConnectionSettings } from './mysql-connection-options.js';
import { translateMysqlError, type ErrorContext } from './mysql-errors.js';
import { baseType, nativeFamily, quoteIdentifier, textLiteral } from './mysql-sql.js';
import { sixFractionDigits, toPortable } from './mysql-values.js';

const ROW_EVENTS: readonly TriggerEvent[] = ['insert', 'update', 'delete'];
/** Never read INNODB_TRX more often: see the top comment (the cache refreshes after 100 ms idle). */
const OPEN_TRANSACTIONS_MIN_INTERVAL_MS = 200;
/** Rows deleted per statement by acknowledge: short transactions, short row locks. */
const ACKNOWLEDGE_BATCH = 5_000;
const GENERATION_COMMENT = /^rowsync change table; generation ([0-9a-f]+)$/;

// ------------------------------------------------------------------------------------------------
// positions

/** Consecutive ids, both ends included. */
interface IdRange {
  readonly first: number;
  readonly last: number;
}

/**
 * Gaps found together. `waitFor`: the transactions (`<connection id>@<start second>`) that may still
 * commit them; null until the first trustworthy snapshot after they were found; empty once all of
 * them have ended (the next read that does not find the gaps retires them).
 */
interface GapGroup {
  readonly ids: readonly IdRange[];
  readonly waitFor: readonly string[] | null;
}

interface MysqlPosition {
  readonly generation: string;
  /** The lowest id not yet read past. */
  readonly next: number;
  readonly gaps: readonly GapGroup[];
}

function formatPosition(position: MysqlPosition): string {
  return JSON.stringify({
    generation: position.generation,
    next: position.next,
    gaps: position.gaps.map((group) => ({ ids: group.ids.map((range) => [range.first, range.last]), waitFor: group.waitFor })),
  });
}

/** Parses a position of this source; undefined for anything else (another mode's position, garbage). */
function parsePosition(text: string): MysqlPosition | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { generation, next, gaps } = value as Record<string, unknown>;
  if (typeof generation !== 'string' || !isId(next) || !Array.isArray(gaps)) return undefined;
  const groups: GapGroup[] = [];
  for (const group of gaps as unknown[]) {
    if (typeof group !== 'object' || group === null) return undefined;
    const { ids, waitFor } = group as Record<string, unknown>;
    if (!Array.isArray(ids)) return undefined;
    if (waitFor !== null && !(Array.isArray(waitFor) && waitFor.every((item) => typeof item === 'string'))) return undefined;
    const ranges: IdRange[] = [];
    for (const range of ids as unknown[]) {
      if (!Array.isArray(range) || range.length !== 2) return undefined;
      const [first, last] = range as unknown[];
      if (!isId(first) || !isId(last) || first > last || last >= next) return undefined;
      ranges.push({ first, last });
    }
    groups.push({ ids: ranges, waitFor: waitFor as string[] | null });
  }
  return { generation, next, gaps: groups };
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

function gapCount(position: MysqlPosition): number {
  return position.gaps.reduce((sum, group) => sum + group.ids.reduce((count, range) => count + range.last - range.first + 1, 0), 0);
}

/** `ranges` without the ids in `found` (ascending). */
function withoutIds(ranges: readonly IdRange[], found: readonly number[]): IdRange[] {
  const result: IdRange[] = [];
  for (const range of ranges) {
    let first = range.first;
    for (const id of found) {
      if (id < first || id > range.last) continue;
      if (id > first) result.push({ first, last: id - 1 });
      first = id + 1;
    }
    if (first <= range.last) result.push({ first, last: range.last });
  }
  return result;
}

/** The ids from `from` up to the highest of `ids` (ascending, all >= from) that `ids` lacks. */
function missingIds(from: number, ids: readonly number[]): IdRange[] {
  const missing: IdRange[] = [];
  let expected = from;
  for (const id of ids) {
    if (id > expected) missing.push({ first: expected, last: id - 1 });
    expected = id + 1;
  }
  return missing;
}

/** Groups waiting for the same transactions merged (positions stay short). */
function mergeGroups(groups: readonly GapGroup[]): GapGroup[] {
  const merged = new Map<string, { ids: IdRange[]; waitFor: readonly string[] | null }>();
  for (const group of groups) {
    if (group.ids.length === 0) continue;
    const waitFor = group.waitFor === null ? null : [...group.waitFor].sort();
    const signature = JSON.stringify(waitFor);
    const entry = merged.get(signature);
    if (entry) entry.ids.push(...group.ids);
    else merged.set(signature, { ids: [...group.ids], waitFor });
  }
  return [...merged.values()].map((group) => ({ ids: group.ids.sort((a, b) => a.first - b.first), waitFor: group.waitFor }));
}

function rangesPredicate(ranges: readonly IdRange[]): string {
  return ranges.map((range) => (range.first === range.last ? `id = ${range.first}` : `id BETWEEN ${range.first} AND ${range.last}`)).join(' OR ');
}

// ------------------------------------------------------------------------------------------------
// key rendering (inside the triggers) and decoding (in the reader)

/**
 * The exact text of a key column of the row `NEW` or `OLD`, as a SQL expression independent of the
 * writing session's time_zone, character set and sql_mode (see polling-source-base.ts).
 */
function keyElementSql(column: ShapeColumn, row: 'NEW' | 'OLD', subject: string): string {
  const c = `${row}.${quoteIdentifier(column.name)}`;
  const family = nativeFamily(column.nativeType);
  switch (column.kind) {
    case 'integer':
    case 'boolean':
      // BIT(1) reads as bytes; `+ 0` makes it its number.
      return family === 'bit' ? `CAST(${c} + 0 AS CHAR)` : `CAST(${c} AS CHAR)`;
    case 'decimal':
      return `CAST(${c} AS CHAR)`;
    case 'binary':
      // CAST keeps a BIT(n)'s leading zero bytes (HEX(bit) prints it as a number).
      return family === 'bit' ? `HEX(CAST(${c} AS BINARY))` : `HEX(${c})`;
    case 'text':
    case 'json':
    case 'uuid':
      // The value's UTF-8 bytes, as the dialect reads it (CHAR loses its trailing spaces here too).
      return family === 'string' ? `HEX(CONVERT(${c} USING utf8mb4))` : `HEX(CONVERT(CAST(${c} AS CHAR) USING utf8mb4))`;
    case 'date':
      return `DATE_FORMAT(${c}, '%Y-%m-%d')`;
    case 'datetime':
      // A TIMESTAMP is an instant: UNIX_TIMESTAMP of the column is its stored epoch value with the
      // fraction, whatever the session's time_zone (DATE_FORMAT would print it in that zone, and a
      // conversion back from a DST zone is ambiguous for an hour a year). Tested on MariaDB 10.11
      // from a +05:30 session; MySQL 8 untested here. DATETIME has no zone.
      return baseType(column.nativeType) === 'timestamp' ? `CAST(UNIX_TIMESTAMP(${c}) AS CHAR)` : `DATE_FORMAT(${c}, '%Y-%m-%d %H:%i:%s.%f')`;
    case 'time':
      return `CAST(${c} AS CHAR)`;
    case 'float':
      throw new SchemaError(
        'UNSUPPORTED_TYPE',
        `${subject}: a ${column.nativeType} key column cannot be recorded exactly by a trigger on MySQL/MariaDB ` +
          `(no SQL function prints a double exactly); use binlog CDC for this table`,
        { subject },
      );
    default: {
      const unreachable: never = column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/** A recorded element -> the value the MySQL dialect's reads return (`toPortable` of mysql2's value). */
export function decodeMysqlKeyElement(column: ShapeColumn, element: string): PortableValue {
  const family = nativeFamily(column.nativeType);
  switch (column.kind) {
    case 'integer':
    case 'boolean': {
      // mysql2 returns BIGINT as a decimal string (bigNumberStrings), smaller integers as numbers.
      const digits = BigInt(element).toString();
      return toPortable(column, family === 'integer' && baseType(column.nativeType) === 'bigint' ? digits : Number(digits));
    }
    case 'decimal':
      return toPortable(column, element);
    case 'binary':
      return toPortable(column, Buffer.from(element, 'hex'));
    case 'text':
    case 'json':
    case 'uuid':
      return toPortable(column, Buffer.from(element, 'hex').toString('utf8'));
    case 'date':
    case 'time':
      return toPortable(column, element);
    case 'datetime':
      return baseType(column.nativeType) === 'timestamp' ? epochToUtcText(element) : sixFractionDigits(element);
    case 'float':
      return toPortable(column, Number(element));
    default: {
      const unreachable: never = column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/** '1718433000.123456' (UNIX_TIMESTAMP of a TIMESTAMP(n)) -> '2024-06-15 06:30:00.123456' (UTC). */
function epochToUtcText(epoch: string): string {
  const match = /^(\d+)(?:\.(\d{1,6}))?$/.exec(epoch);
  if (!match) throw new Error(`not an epoch: ${epoch}`);
  const iso = new Date(Number(match[1]) * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${(match[2] ?? '').padEnd(6, '0')}`;
}

/** `rowsync:<hash>`: identifies what a trigger does (see `triggerBody`). */
function fingerprintTag(statement: string): string {
  return `rowsync:${shortHash(statement)}`;
}

/** True when a stored trigger body carries the fingerprint of the one wanted. */
function sameFingerprint(stored: string, wanted: string): boolean {
  const fingerprint = (body: string) => /'(rowsync:[0-9a-f]{8})'/.exec(body)?.[1];
  return fingerprint(stored) !== undefined && fingerprint(stored) === fingerprint(wanted);
}

// ------------------------------------------------------------------------------------------------
// a connection of the source's own

/** One mysql2 connection (not the pool): a transaction across statements, a known connection id. */
class MysqlSession {
  private constructor(
    private readonly connection: Connection,
    private readonly errorContext: ErrorContext,
    readonly id: number,
  ) {}

  static async open(options: ChangeSourceOptions): Promise<MysqlSession> {
    const settings = mysqlConnectionSettings(options.connectionName, options.url, 1);
    const errorContext: ErrorContext = { connectionName: options.connectionName };
    // Pool-only options would make mysql2 warn on a plain connection.
    const { connectionLimit: _limit, waitForConnections: _wait, ...connectionOptions } = settings.pool;
    let connection: Connection;
    try {
      connection = await createConnection(connectionOptions);
    } catch (error) {
      throw translateMysqlError(error, errorContext, 'connecting');
    }
    // A connection killed while idle emits 'error'; unheard, it would end the process.
    connection.on('error', () => undefined);
    const session = new MysqlSession(connection, errorContext, connection.threadId ?? 0);
    try {
      // UTC: trx_started and UNIX_TIMESTAMP convert through the session zone. REPEATABLE READ: START
      // TRANSACTION WITH CONSISTENT SNAPSHOT starts an InnoDB transaction only there (the
      // INNODB_TRX witness needs one); autocommit reads still see every commit before them.
      await session.query(`SET time_zone = '+00:00'`);
      await session.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    } catch (error) {
      await session.close();
      throw error;
    }
    return session;
  }

  /** Calls `listener` when the connection fails while no query runs (killed, server gone). */
  onError(listener: (error: Error) => void): void {
    this.connection.on('error', (error: unknown) => listener(translateMysqlError(error, this.errorContext, 'change stream connection')));
  }

  async query(sql: string, action = 'polling the change table'): Promise<unknown[][]> {
    try {
      const [rows] = await this.connection.query({ sql, rowsAsArray: true });
      return Array.isArray(rows) ? (rows as unknown[][]) : [];
    } catch (error) {
      throw translateMysqlError(error, this.errorContext, action);
    }
  }

  async close(): Promise<void> {
    try {
      await this.connection.end();
    } catch {
      this.connection.destroy();
    }
  }
}

// ------------------------------------------------------------------------------------------------
// the source

interface ExistingTrigger {
  readonly name: string;
  readonly table: string;
  readonly event: string;
  readonly timing: string;
  readonly body: string;
}

export class MysqlPollingSource implements ChangeSource {
  readonly mode = 'polling' as const;
  private readonly changeTable: string;

  constructor(private readonly options: ChangeSourceOptions) {
    validatePollingOptions(options);
    this.changeTable = changeTableName(options.pipeline);
  }

  /**
   * Checks that setup was done and is current (change table, every trigger with the body setup
   * would create now), that every streamed table exists with a primary key (`SchemaError`), and the
   * privileges streaming needs: SELECT and DELETE on the change table, PROCESS for INNODB_TRX.
   */
  async preflight(): Promise<void> {
    const tables = await this.describeTables();
    await this.checkSetup(tables);
    await this.requirePrivilege('PROCESS', 'SELECT COUNT(*) FROM information_schema.INNODB_TRX',
      'the PROCESS privilege is needed to read information_schema.INNODB_TRX (which transactions may still commit a gap)');
    const table = quoteIdentifier(this.changeTable);
    await this.requirePrivilege('SELECT', `SELECT id FROM ${table} LIMIT 0`, `SELECT on ${this.changeTable} is needed to read changes`);
    // Checked at prepare time, so nothing is deleted (and nothing locked: the condition is constant).
    await this.requirePrivilege('DELETE', `DELETE FROM ${table} WHERE FALSE`, `DELETE on ${this.changeTable} is needed to drop acknowledged changes`);
  }

  /**
   * Creates the change table if missing and every trigger that is missing or differs from what it
   * should be now (a changed key); drops this pipeline's triggers on tables it no longer streams.
   * Needs CREATE and the TRIGGER privilege (and, with binary logging on, SUPER or
   * log_bin_trust_function_creators = 1).
   */
  async setup(): Promise<void> {
    const tables = await this.describeTables();
    const wanted = new Map<string, { table: string; event: TriggerEvent; sql: string; body: string }>();
    for (const table of this.options.tables) {
      const shape = tables.shape(table)!;
      for (const event of ROW_EVENTS) {
        const body = this.triggerBody(shape, event);
        const name = triggerName(this.options.pipeline, table, event);
        const sql = `CREATE TRIGGER ${quoteIdentifier(name)} AFTER ${event.toUpperCase()} ON ${quoteIdentifier(table)} FOR EACH ROW ${body}`;
        wanted.set(name, { table, event, sql, body });
      }
    }
    await this.withSession(async (session) => {
      await this.withoutPadCharMode(session);
      await session.query(
        `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(this.changeTable)} (` +
          '`id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, ' +
          '`table_name` VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, ' +
          // NULL: the whole table (never written here: MySQL has no TRUNCATE trigger).
          '`row_key` TEXT CHARACTER SET ascii COLLATE ascii_bin NULL, ' +
          '`old_key` TEXT CHARACTER SET ascii COLLATE ascii_bin NULL, ' +
          // DATETIME + UTC_TIMESTAMP: no session time zone involved, no 2038 limit.
          '`changed_at` DATETIME(3) NOT NULL, ' +
          'PRIMARY KEY (`id`)' +
          // A plain literal (the grammar takes no hex literal here); hex digits and words only.
          `) ENGINE=InnoDB COMMENT='rowsync change table; generation ${newGeneration()}'`,
        'creating the change table',
      );
      const existing = await this.existingTriggers(session);
      for (const trigger of existing.values()) {
        const want = wanted.get(trigger.name);
        if (want && want.table === trigger.table) continue;
        await session.query(`DROP TRIGGER IF EXISTS ${quoteIdentifier(trigger.name)}`, 'dropping a stale trigger');
      }
      for (const [name, want] of wanted) {
        const found = existing.get(name);
        if (found && found.table === want.table && found.event === want.event.toUpperCase() && found.timing === 'AFTER' && sameFingerprint(found.body, want.body)) continue;
        if (found && found.table === want.table) {
          // Replaced under a write lock on the table, so no write falls between the old and the new
          // trigger (MySQL 8 has no CREATE OR REPLACE TRIGGER; both allow trigger DDL under LOCK TABLES).
          await session.query(`LOCK TABLES ${quoteIdentifier(want.table)} WRITE`, 'locking a table to replace its trigger');
          try {
            await session.query(`DROP TRIGGER IF EXISTS ${quoteIdentifier(name)}`, 'replacing a trigger');
            await session.query(want.sql, 'replacing a trigger');
          } finally {
            await session.query('UNLOCK TABLES', 'unlocking');
          }
        } else {
          await session.query(want.sql, 'creating a trigger');
        }
      }
    });
  }

  /** Drops this pipeline's triggers (on any table), then the change table. */
  async teardown(): Promise<void> {
    await this.withSession(async (session) => {
      for (const trigger of (await this.existingTriggers(session)).values()) {
        await session.query(`DROP TRIGGER IF EXISTS ${quoteIdentifier(trigger.name)}`, 'dropping a trigger');
      }
      await session.query(`DROP TABLE IF EXISTS ${quoteIdentifier(this.changeTable)}`, 'dropping the change table');
    });
  }

  /**
   * `next` = 1: the first poll delivers every change still in the change table (made since setup,
   * or since the last acknowledge), and ids below the first one it finds become one gap that waits
   * for the transactions open then (one of them may hold a lower id and commit later).
   */
  async currentPosition(): Promise<string> {
    return formatPosition({ generation: await this.generation(), next: 1, gaps: [] });
  }

  /** Polling positions are lost only with the change table; `start` tells which (see there). */
  recover(): Promise<string> {
    return this.currentPosition();
  }

  /**
   * By `next`, then by fewer gaps (gaps only retire as time passes at the same `next`). Every
   * delivered transaction's position is strictly later than the one before: it read new rows (`next`
   * grew) or found gap rows (fewer gaps).
   */
  comparePositions(a: string, b: string): number {
    const left = parsePosition(a);
    const right = parsePosition(b);
    if (!left || !right) throw new RangeError(`not a MySQL polling position: ${JSON.stringify(left ? b : a)}`);
    if (left.next !== right.next) return left.next - right.next;
    return gapCount(right) - gapCount(left);
  }

  /**
   * Streams from `from`. `PositionLostError` when `from` is not a position of this change table
   * (another mode's position, or one from before the change table was created again: the changes
   * in between were never recorded); `CdcSetupError` when setup is missing or out of date.
   */
  async start(from: string, handler: ChangeStreamHandler): Promise<ChangeStream> {
    const position = parsePosition(from);
    const tables = await this.describeTables();
    const generation = await this.checkSetup(tables);
    if (!position || position.generation !== generation) {
      throw new PositionLostError(
        `pipeline ${this.options.pipeline}: position ${JSON.stringify(from.slice(0, 200))} is not a position of the current ` +
          `change table ${this.changeTable} (it was created again, or the position belongs to another CDC mode)`,
        { position: from, subject: this.changeTable },
      );
    }
    const session = await MysqlSession.open(this.options);
    const reader = new MysqlChangeReader(
      session, this.options.database, quoteIdentifier(this.changeTable), tables, new Delivery(handler, this.options.heartbeatMs, from), position,
    );
    const stream = new PollingStream(reader, this.options.pollIntervalMs, session.id);
    session.onError((error) => stream.fail(error));
    return stream;
  }

  // ----------------------------------------------------------------------------------------------

  private describeTables(): Promise<StreamedTables> {
    return StreamedTables.describe(this.options.database, this.options.tables, decodeMysqlKeyElement);
  }

  /** Trigger body: one change row, unless the session is rowsync applying changes. */
  private triggerBody(shape: TableShape, event: TriggerEvent): string {
    const subject = (column: ShapeColumn) => `${this.options.connectionName}.${shape.table}.${column.name}`;
    const keyColumns = shape.keyIndexes.map((index) => shape.columns[index]!);
    const key = (row: 'NEW' | 'OLD') => keyTextSql(keyColumns.map((column) => keyElementSql(column, row, subject(column))), (parts) => `CONCAT(${parts.join(', ')})`);
    const table = textLiteral(shape.table);
    const columns = '(`table_name`, `row_key`, `old_key`, `changed_at`)';
    let values: string;
    switch (event) {
      case 'insert':
        values = `(${table}, ${key('NEW')}, NULL, UTC_TIMESTAMP(3))`;
        break;
      case 'update':
        // The old key only when the UPDATE changed it, compared as bytes (a case-insensitive
        // collation would call 'abc' and 'ABC' the same key).
        values = `(${table}, ${key('NEW')}, IF(CAST(${key('OLD')} AS BINARY) = CAST(${key('NEW')} AS BINARY), NULL, ${key('OLD')}), UTC_TIMESTAMP(3))`;
        break;
      case 'delete':
        values = `(${table}, ${key('OLD')}, NULL, UTC_TIMESTAMP(3))`;
        break;
      case 'truncate':
        throw new Error('MySQL has no TRUNCATE trigger');
      default: {
        const unreachable: never = event;
        throw new Error(`unknown event ${String(unreachable)}`);
      }
    }
    // INSERT ... VALUES, not INSERT ... SELECT: a "simple insert" takes the AUTO_INCREMENT mutex
    // only for the row, where INSERT ... SELECT holds a table-level AUTO-INC lock for the statement
    // (innodb_autoinc_lock_mode 1) and would serialise every writer of every streamed table.
    const insert = `INSERT INTO ${quoteIdentifier(this.changeTable)} ${columns} VALUES ${values};`;
    // The fingerprint of the statement is part of the condition (a constant, true): setup and
    // preflight compare it rather than the body's text, which the server may render differently
    // from what it was given (MariaDB drops character set introducers from ACTION_STATEMENT).
    return `IF NOT (@rowsync_applying <=> 1) AND '${fingerprintTag(insert)}' <> '' THEN ${insert} END IF`;
  }

  /** This pipeline's triggers in the database, by name. Only triggers the user may see (TRIGGER privilege). */
  private async existingTriggers(session: MysqlSession): Promise<Map<string, ExistingTrigger>> {
    const prefix = triggerPrefix(this.options.pipeline);
    const rows = await session.query(
      `SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT FROM information_schema.TRIGGERS ` +
        `WHERE TRIGGER_SCHEMA = DATABASE() AND LEFT(TRIGGER_NAME, ${prefix.length}) = ${textLiteral(prefix)}`,
      'listing triggers',
    );
    const triggers = new Map<string, ExistingTrigger>();
    for (const [name, table, event, timing, body] of rows) {
      const trigger = { name: String(name), table: String(table), event: String(event), timing: String(timing), body: String(body) };
      if (trigger.name.startsWith(prefix)) triggers.set(trigger.name, trigger);
    }
    return triggers;
  }

  /** The change table's generation; `CdcSetupError` when the table does not exist. */
  private async generation(session?: MysqlSession): Promise<string> {
    const sql = `SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${textLiteral(this.changeTable)}`;
    const rows = session
      ? await session.query(sql, 'reading the change table')
      : (await this.options.database.execute(sql)).map((row) => Object.values(row));
    const row = rows.find((candidate) => String(candidate[0]) === this.changeTable);
    if (!row) throw notSetUp(this.options.pipeline, `change table ${this.changeTable} does not exist`, this.changeTable);
    const match = GENERATION_COMMENT.exec(String(row[1]));
    if (!match) throw notSetUp(this.options.pipeline, `table ${this.changeTable} is not a rowsync change table (its comment was changed)`, this.changeTable);
    return match[1]!;
  }

  /** The change table and every trigger exist as setup would create them now; returns the generation. */
  private async checkSetup(tables: StreamedTables): Promise<string> {
    return this.withSession(async (session) => {
      const generation = await this.generation(session);
      const existing = await this.existingTriggers(session);
      for (const table of this.options.tables) {
        const shape = tables.shape(table)!;
        for (const event of ROW_EVENTS) {
          const name = triggerName(this.options.pipeline, table, event);
          const found = existing.get(name);
          if (!found || found.table !== table) {
            throw notSetUp(this.options.pipeline,
              `trigger ${name} on table ${table} does not exist (or the user lacks the TRIGGER privilege to see it)`, name);
          }
          if (!sameFingerprint(found.body, this.triggerBody(shape, event))) {
            throw notSetUp(this.options.pipeline, `trigger ${name} on table ${table} is out of date (the table's key changed since setup)`, name);
          }
        }
      }
      return generation;
    });
  }

  private async requirePrivilege(privilege: string, probe: string, why: string): Promise<void> {
    try {
      await this.options.database.execute(probe);
    } catch (error) {
      if (error instanceof DatabaseError && error.code === 'DB_ACCESS_DENIED') {
        throw new CdcSetupError(
          `connection ${this.options.connectionName}: ${why}; GRANT it to the connection's user (pipeline ${this.options.pipeline})`,
          { subject: privilege, cause: error },
        );
      }
      throw error;
    }
  }

  /**
   * The trigger stores the sql_mode of the session that creates it: PAD_CHAR_TO_FULL_LENGTH would
   * record CHAR keys with the trailing spaces the dialect's reads strip.
   */
  private async withoutPadCharMode(session: MysqlSession): Promise<void> {
    const [row] = await session.query('SELECT @@SESSION.sql_mode', 'reading sql_mode');
    const modes = String(row?.[0] ?? '').split(',').filter((mode) => mode !== '' && mode !== 'PAD_CHAR_TO_FULL_LENGTH');
    await session.query(`SET SESSION sql_mode = ${textLiteral(modes.join(','))}`, 'setting sql_mode');
  }

  /** Runs `work` on a connection of its own; privilege errors of setup DDL become `CdcSetupError`. */
  private async withSession<T>(work: (session: MysqlSession) => Promise<T>): Promise<T> {
    const session = await MysqlSession.open(this.options);
    try {
      return await work(session);
    } catch (error) {
      throw this.setupError(error);
    } finally {
      await session.close();
    }
  }

  private setupError(error: unknown): unknown {
    if (!(error instanceof DatabaseError)) return error;
    const where = `connection ${this.options.connectionName}, pipeline ${this.options.pipeline}`;
    if (error.engineCode === '1419' || error.engineCode === 'ER_BINLOG_CREATE_ROUTINE_NEED_SUPER') {
      return new CdcSetupError(
        `${where}: with binary logging on, creating triggers needs the SUPER privilege or log_bin_trust_function_creators = 1`,
        { subject: 'log_bin_trust_function_creators', cause: error },
      );
    }
    if (error.code === 'DB_ACCESS_DENIED') {
      return new CdcSetupError(
        `${where}: setup needs CREATE and DROP on the database and the TRIGGER privilege on every streamed table (${error.message})`,
        { subject: 'TRIGGER', cause: error },
      );
    }
    return error;
  }
}

/**
 * Deletes the change rows below `position` that are not awaited gaps, keeping the newest row: a
 * server that recomputes AUTO_INCREMENT as MAX(id) + 1 at restart (MySQL 5.7, MariaDB before
 * 10.2.4) must never hand out an id below a reader's `next` again. Ids are selected first with a
 * plain (non-locking) read and deleted by primary key: a range DELETE would lock (and wait for) the
 * uncommitted row of a gap's still-open owner. A gap's row that has committed meanwhile is kept: a
 * restart from `position` must still find it.
 */
async function deleteAcknowledged(database: Database, table: string, position: MysqlPosition): Promise<void> {
  if (position.next <= 1) return;
  const gaps = position.gaps.flatMap((group) => group.ids).sort((a, b) => a.first - b.first);
  const deletable: string[] = [];
  let from = 1;
  for (const gap of gaps) {
    if (gap.first > from) deletable.push(`id BETWEEN ${from} AND ${gap.first - 1}`);
    from = Math.max(from, gap.last + 1);
  }
  if (position.next > from) deletable.push(`id BETWEEN ${from} AND ${position.next - 1}`);
  if (deletable.length === 0) return;
  const [newest] = await database.execute(`SELECT MAX(id) AS newest FROM ${table}`);
  const newestId = Number(newest?.newest ?? 0);
  for (;;) {
    const rows = await database.execute(
      `SELECT id FROM ${table} WHERE (${deletable.join(' OR ')}) AND id < ${newestId} ORDER BY id LIMIT ${ACKNOWLEDGE_BATCH}`,
    );
    if (rows.length === 0) return;
    await database.execute(`DELETE FROM ${table} WHERE id IN (${rows.map((row) => String(row.id)).join(', ')})`);
    if (rows.length < ACKNOWLEDGE_BATCH) return;
  }
}

// ------------------------------------------------------------------------------------------------
// the reader

class MysqlChangeReader implements PollingCycle {
  private lastOpenTransactionsRead = 0;

  constructor(
    private readonly session: MysqlSession,
    /** The pool, for acknowledge: the session above may be inside its INNODB_TRX transaction. */
    private readonly database: Database,
    private readonly changeTable: string,
    private readonly tables: StreamedTables,
    private readonly delivery: Delivery,
    private position: MysqlPosition,
  ) {}

  async poll(stopping: () => boolean): Promise<boolean> {
    const before = this.position;
    const gapRanges = before.gaps.flatMap((group) => group.ids);
    const gapRows = gapRanges.length > 0 ? await this.readRows(rangesPredicate(gapRanges)) : [];
    // A full batch of gap rows has not looked at every gap: none retires, and new rows wait.
    const gapsExamined = gapRows.length < POLL_BATCH_ROWS;
    const newRows = gapsExamined ? await this.readRows(`id >= ${before.next}`) : [];

    const found = gapRows.map((row) => row.id);
    let groups: GapGroup[] = before.gaps
      .map((group) => ({ ids: withoutIds(group.ids, found), waitFor: group.waitFor }))
      // Retire: every transaction that could commit these had ended before this read, which still
      // did not find them.
      .filter((group) => !(gapsExamined && group.waitFor !== null && group.waitFor.length === 0));
    let next = before.next;
    if (newRows.length > 0) {
      groups.push({ ids: missingIds(next, newRows.map((row) => row.id)), waitFor: null });
      next = newRows[newRows.length - 1]!.id + 1;
    }
    groups = groups.filter((group) => group.ids.length > 0);
    if (groups.some((group) => group.waitFor === null || group.waitFor.length > 0)) {
      const open = await this.openTransactions();
      if (open) {
        groups = groups.map((group) => ({ ids: group.ids, waitFor: (group.waitFor ?? [...open]).filter((trx) => open.has(trx)) }));
      }
    }
    this.position = { generation: before.generation, next, gaps: mergeGroups(groups) };
    if (stopping()) return false;

    const position = formatPosition(this.position);
    const rows = [...gapRows, ...newRows];
    if (rows.length > 0) {
      const { changes, committedAt } = changesOf(rows, this.tables);
      await this.delivery.transaction({ position, changes, ...(committedAt === undefined ? {} : { committedAt }) });
      return true;
    }
    await this.delivery.idle(position);
    return !gapsExamined || newRows.length === POLL_BATCH_ROWS;
  }

  /** Rows of another generation went with its table: nothing to delete. */
  async acknowledge(text: string): Promise<void> {
    const position = parsePosition(text);
    if (!position) throw new RangeError(`not a MySQL polling position: ${JSON.stringify(text)}`);
    if (position.generation === this.position.generation) await deleteAcknowledged(this.database, this.changeTable, position);
  }

  close(): Promise<void> {
    return this.session.close();
  }

  private async readRows(where: string): Promise<(ChangeRow & { id: number })[]> {
    const rows = await this.session.query(
      `SELECT id, table_name, row_key, old_key, DATE_FORMAT(changed_at, '%Y-%m-%dT%H:%i:%s.%fZ') FROM ${this.changeTable} ` +
        `WHERE ${where} ORDER BY id LIMIT ${POLL_BATCH_ROWS}`,
    );
    return rows.map(([id, table, key, oldKey, changedAt]) => ({
      id: Number(id),
      table: String(table),
      key: key === null ? null : String(key),
      oldKey: oldKey === null ? null : String(oldKey),
      changedAtMs: Date.parse(String(changedAt)),
    }));
  }

  /**
   * The transactions open now (`<connection id>@<start second>`, this reader's own left out), or
   * undefined when INNODB_TRX could not be read fresh and whole: read too recently by this reader,
   * its cache was stale (this reader's own transaction is not listed running the statement that
   * asked; see the top comment), or truncated at its memory limit.
   */
  private async openTransactions(): Promise<Set<string> | undefined> {
    if (Date.now() - this.lastOpenTransactionsRead < OPEN_TRANSACTIONS_MIN_INTERVAL_MS) return undefined;
    this.lastOpenTransactionsRead = Date.now();
    const marker = randomBytes(8).toString('hex');
    await this.session.query('START TRANSACTION WITH CONSISTENT SNAPSHOT', 'reading open transactions');
    let rows: unknown[][];
    try {
      rows = await this.session.query(
        `SELECT trx_mysql_thread_id, UNIX_TIMESTAMP(trx_started), ` +
          `trx_mysql_thread_id = CONNECTION_ID() AND INSTR(trx_query, '${marker}') > 0 FROM information_schema.INNODB_TRX`,
        'reading open transactions',
      );
      // InnoDB leaves transactions out when the cache outgrows its memory limit, with a warning.
      const [warnings] = await this.session.query('SELECT @@warning_count', 'reading open transactions');
      if (Number(warnings?.[0] ?? 0) > 0) rows = [];
    } finally {
      await this.session.query('COMMIT', 'reading open transactions');
    }
    if (!rows.some((row) => Number(row[2]) === 1)) return undefined;
    return new Set(rows.filter((row) => Number(row[0]) !== this.session.id).map((row) => `${String(row[0])}@${String(row[1])}`));
  }
}

/** A position as one number that grows with the stream (metrics): the lowest change id not yet read past. */
export function mysqlPollingPositionNumber(text: string): number | undefined {
  return parsePosition(text)?.next;
}
