/**
 * CDC from the MySQL/MariaDB binary log (mode 'binlog'), read with @rodrigogs/zongji 0.4 as a replica
 * would (COM_BINLOG_DUMP from a file and offset; no GTID). Tested against MariaDB 10.11; MySQL 8
 * differences are noted where they matter.
 *
 * What the log shows, in its place in the stream (ROW format, FULL row image):
 * - Row events (insert/update/delete) of the streamed tables: their keys, decoded exactly from the
 *   raw bytes (mysql-binlog-keys.ts explains the zongji patch this needs). A transaction is delivered
 *   at its end only: the Xid event (InnoDB commit), a `COMMIT` query (non-transactional tables) or a
 *   `ROLLBACK` query (non-transactional changes of a rolled-back transaction); its position is that
 *   event's end. The log position moves on every event, and resuming between a TABLE_MAP and its rows
 *   drops those rows: no position inside a transaction ever leaves this file.
 * - DDL on a streamed table (ALTER, TRUNCATE, DROP, RENAME, CREATE of a streamed name, DROP DATABASE,
 *   DROP INDEX `PRIMARY`): `{ kind: 'reconcile' }` ('truncate' for TRUNCATE, else 'schema'), as its
 *   own transaction (DDL commits implicitly) at the statement's end position. DML a session wrote in
 *   STATEMENT format (its own `SET SESSION binlog_format`) carries no keys: reconcile as well.
 * - A row event that no longer fits the table (written before an ALTER: other column count or key
 *   column type, or the table is gone): reconcile of that table instead of keys.
 *
 * Positions are `<binlog file>:<offset>`. Transactions that touch no streamed table and binlog
 * rotations become `onIdle` reports (at most one per heartbeatMs), so an idle pipeline's checkpoint
 * still moves and a purge of old binlogs does not strand it.
 *
 * zongji does not await its listeners and has no backpressure of its own: decoded transactions queue
 * here and are delivered one at a time; past PAUSE_AT_* the binlog socket is paused (TCP then holds
 * the server back). A pause longer than the server's net_write_timeout (60 s by default) makes the
 * server drop the dump connection; the stream then fails and the caller resumes from its checkpoint.
 */
import { createRequire } from 'node:module';
import { canonicalToken } from '../canonical.js';
import type {
  ChangeSource, ChangeSourceOptions, ChangeStream, ChangeStreamHandler, ChangeTransaction, TableChange,
} from '../change-source.js';
import type { KeyTuple, TableSchema } from '../types.js';
import { CdcSetupError, ConfigError, DatabaseError, PositionLostError, RowsyncError, SchemaError } from '../../errors/index.js';
import {
  BinlogColumnType, decimalBinarySize, keyColumnDecoder, legacyTemporalHint,
  type BinlogColumnMetadata, type KeyColumnDecoder, type RawBinlogValue,
} from './mysql-binlog-keys.js';
import { classifyQueryEvent, type TableReference } from './mysql-binlog-statements.js';
import { mysqlConnectionSettings, type MysqlConnectionSettings } from './mysql-connection-options.js';
import { translateMysqlError, type ErrorContext } from './mysql-errors.js';
import { redactSecrets } from '../../logging/redact.js';

/** Queued transactions / keys beyond which the binlog connection is paused (memory stays bounded). */
const PAUSE_AT_QUEUED_TRANSACTIONS = 200;
const PAUSE_AT_QUEUED_KEYS = 20_000;
/** The stream fails when the server's binlog moved and nothing arrived for this many heartbeats. */
const STALL_HEARTBEATS = 3;
/** How long `start` waits for the server's first event (it sends one at once: a rotate to `from`). */
const START_TIMEOUT_MS = 30_000;
/** How long `stop` waits for the KILL of the server's dump thread. */
const KILL_TIMEOUT_MS = 2_000;

// ------------------------------------------------------------------------------------------------
// positions

export interface BinlogPosition {
  readonly file: string;
  readonly offset: number;
}

/** `mysql-bin.000042:1234` -> { file, offset }, or undefined for anything else. */
export function parseBinlogPosition(text: string): BinlogPosition | undefined {
  const match = /^(.+):(\d{1,15})$/.exec(text);
  if (!match) return undefined;
  return { file: match[1]!, offset: Number(match[2]) };
}

export function formatBinlogPosition(position: BinlogPosition): string {
  return `${position.file}:${position.offset}`;
}

/**
 * Binlog files are `<basename>.<sequence number>`; the sequence number orders them (it grows past
 * 999999 with more digits, so it is compared as a number), then the offset.
 */
export function compareBinlogPositions(a: string, b: string): number {
  const left = parseBinlogPosition(a);
  const right = parseBinlogPosition(b);
  if (!left || !right) throw new RangeError(`not a binlog position (file:offset): ${JSON.stringify(left ? b : a)}`);
  if (left.file !== right.file) {
    const leftSequence = /\.(\d+)$/.exec(left.file)?.[1];
    const rightSequence = /\.(\d+)$/.exec(right.file)?.[1];
    if (leftSequence !== undefined && rightSequence !== undefined && BigInt(leftSequence) !== BigInt(rightSequence)) {
      return BigInt(leftSequence) < BigInt(rightSequence) ? -1 : 1;
    }
    return left.file < right.file ? -1 : 1;
  }
  return Math.sign(left.offset - right.offset);
}

// ------------------------------------------------------------------------------------------------
// preflight checks on what the server reports (pure: unit-tested on fake SHOW VARIABLES rows)

/**
 * Throws `CdcSetupError` (subject: the variable) unless the server logs what binlog CDC needs.
 * `variables`: SHOW GLOBAL VARIABLES, names in lower case. Variables a server does not have (MariaDB
 * has no binlog_transaction_compression, MySQL no log_bin_compress) are not checked.
 */
export function checkBinlogSettings(connectionName: string, variables: ReadonlyMap<string, string>): void {
  const fail = (variable: string, problem: string, fix: string): never => {
    throw new CdcSetupError(`connection ${connectionName}: ${variable} ${problem}: ${fix}`, { subject: variable });
  };
  const value = (name: string) => variables.get(name)?.trim().toUpperCase();
  const on = (text: string | undefined) => text === 'ON' || text === '1';

  if (!on(value('log_bin'))) {
    fail(
      'log_bin',
      'is OFF: the server writes no binary log',
      'add log_bin = mysql-bin (and a server_id) under [mysqld] in my.cnf and restart the server',
    );
  }
  const format = value('binlog_format');
  if (format !== 'ROW') {
    fail(
      'binlog_format',
      `is ${format ?? 'unknown'}, and binlog CDC needs ROW (row images carry the keys; MariaDB's default is MIXED)`,
      "run SET GLOBAL binlog_format = 'ROW' (sessions opened afterwards use it) and add binlog_format = ROW under [mysqld] in my.cnf",
    );
  }
  const image = value('binlog_row_image');
  if (image !== undefined && image !== 'FULL') {
    fail(
      'binlog_row_image',
      `is ${image}, and binlog CDC needs FULL (the before and after image of every key)`,
      "run SET GLOBAL binlog_row_image = 'FULL' and add binlog_row_image = FULL under [mysqld] in my.cnf",
    );
  }
  // Compressed events are skipped by the decoder without a word: their changes would be lost.
  const compress = value('log_bin_compress');
  if (compress !== undefined && on(compress)) {
    fail(
      'log_bin_compress',
      'is ON: the binlog reader cannot read compressed row events (it would skip their changes)',
      'run SET GLOBAL log_bin_compress = OFF and add log_bin_compress = OFF under [mysqld] in my.cnf',
    );
  }
  const transactionCompression = value('binlog_transaction_compression');
  if (transactionCompression !== undefined && on(transactionCompression)) {
    fail(
      'binlog_transaction_compression',
      'is ON: the binlog reader cannot read compressed transaction payloads (it would skip their changes)',
      'run SET GLOBAL binlog_transaction_compression = OFF and add binlog_transaction_compression = OFF under [mysqld] in my.cnf',
    );
  }
  // MySQL 8 PARTIAL_JSON writes JSON updates as PARTIAL_UPDATE_ROWS events, which the reader skips.
  const valueOptions = value('binlog_row_value_options');
  if (valueOptions !== undefined && valueOptions !== '') {
    fail(
      'binlog_row_value_options',
      `is ${valueOptions}: the binlog reader cannot read partial JSON update events (it would skip their changes)`,
      "run SET GLOBAL binlog_row_value_options = '' and remove it from my.cnf",
    );
  }
}

/**
 * Throws `CdcSetupError` (subject 'REPLICATION SLAVE') unless SHOW GRANTS shows a global grant that
 * allows a binlog dump: REPLICATION SLAVE or ALL PRIVILEGES on *.*. (SUPER does not: the server
 * checks REPLICATION SLAVE for COM_BINLOG_DUMP.) Privileges that come only through a role not active
 * in this session are not seen here; the stream's start then says so.
 */
export function checkReplicationGrant(connectionName: string, user: string, grants: readonly string[]): void {
  for (const grant of grants) {
    const match = /^\s*GRANT\s+(.+?)\s+ON\s+\*\s*\.\s*\*\s+TO\s/is.exec(grant);
    if (!match) continue;
    const privileges = match[1]!.split(',').map((privilege) => privilege.trim().toUpperCase().replace(/\s+/g, ' '));
    if (privileges.some((privilege) => privilege === 'ALL' || privilege === 'ALL PRIVILEGES' || privilege === 'REPLICATION SLAVE')) return;
  }
  throw replicationSlaveMissing(connectionName, user);
}

function replicationSlaveMissing(connectionName: string, user: string, cause?: unknown): CdcSetupError {
  return new CdcSetupError(
    `connection ${connectionName}: user ${user} lacks the REPLICATION SLAVE privilege, which reading the binlog needs: ` +
      `GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${user} (MariaDB 10.5+: REPLICATION SLAVE, BINLOG MONITOR)`,
    { subject: 'REPLICATION SLAVE', ...(cause === undefined ? {} : { cause }) },
  );
}

// ------------------------------------------------------------------------------------------------
// zongji, as this file uses it (CommonJS, untyped)

const requireCommonJs = createRequire(import.meta.url);

interface MysqljsConnection {
  readonly threadId: number | null;
  readonly state: string;
  on(event: string, listener: (...args: unknown[]) => void): void;
  removeAllListeners(event?: string): void;
  pause(): void;
  resume(): void;
  destroy(): void;
  end(callback?: (error?: unknown) => void): void;
  connect(callback: (error?: unknown) => void): void;
}

/** A column of zongji's table map (after `updateColumnInfo`). */
interface ZongJiColumn {
  readonly name: string;
  readonly type: number;
  readonly metadata: BinlogColumnMetadata | undefined;
}

/** What zongji's readRow expects from information_schema.COLUMNS (we fill it from describeTable). */
interface ZongJiColumnSchema {
  readonly COLUMN_NAME: string;
  readonly COLLATION_NAME: string | null;
  readonly CHARACTER_SET_NAME: string | null;
  readonly COLUMN_COMMENT: string;
  readonly COLUMN_TYPE: string;
}

/** zongji's per-table-id entry, plus what this stream knows about the table. */
interface ZongJiTableMapEntry {
  readonly columnSchemas: readonly ZongJiColumnSchema[];
  readonly parentSchema: string;
  readonly tableName: string;
  columns?: readonly ZongJiColumn[];
  /** Names of the columns whose raw bytes the patched decoder keeps (see installKeyCapture). */
  [KEY_COLUMNS]?: ReadonlySet<string>;
  [STREAMED_TABLE]?: StreamedTableMap;
}

interface ZongJiEvent {
  getTypeName(): string;
  readonly timestamp: number;
  readonly nextPosition: number;
}

interface ZongJiTableMapEvent extends ZongJiEvent {
  readonly tableId: number;
  readonly schemaName: string;
  readonly tableName: string;
  readonly columnCount: number;
  readonly columnTypes: readonly number[];
  readonly columnsMetadata: readonly ((BinlogColumnMetadata & { type?: number }) | undefined)[];
}

interface ZongJiRowsEvent extends ZongJiEvent {
  readonly tableId: number;
  readonly rows: readonly Record<string, unknown>[];
}

interface ZongJiQueryEvent extends ZongJiEvent {
  readonly query: string;
  readonly schema: string;
}

interface ZongJiRotateEvent extends ZongJiEvent {
  readonly binlogName: string;
  readonly position: number;
}

interface ZongJiOptions {
  readonly serverId: number;
  readonly binlogName: string;
  readonly binlogNextPos: number;
  readonly includeEvents: readonly string[];
  readonly includeSchema: Readonly<Record<string, readonly string[]>>;
}

interface ZongJi {
  readonly connection: MysqljsConnection;
  readonly ctrlConnection: MysqljsConnection;
  readonly tableMap: Record<number, ZongJiTableMapEntry>;
  _fetchTableInfo(event: ZongJiTableMapEvent, next: () => void): void;
  start(options: ZongJiOptions): void;
  on(event: 'binlog', listener: (event: ZongJiEvent) => void): void;
  on(event: 'error', listener: (error: unknown) => void): void;
  removeAllListeners(event?: string): void;
}

type ZongJiConstructor = new (dsn: Record<string, unknown>, options: ZongJiOptions) => ZongJi;

type ReadMysqlValue = (
  this: unknown,
  parser: { _offset: number; _buffer: Buffer },
  column: ZongJiColumn,
  columnSchema: ZongJiColumnSchema,
  tableMap: ZongJiTableMapEntry,
  zongji: unknown,
) => unknown;

const KEY_COLUMNS = Symbol.for('rowsync.binlog.keyColumns');
const STREAMED_TABLE = Symbol.for('rowsync.binlog.streamedTable');
const RAW_KEY_VALUE = Symbol.for('rowsync.binlog.rawKeyValue');
const PATCHED = Symbol.for('rowsync.binlog.readMysqlValuePatched');

/** A key column's value in a zongji row after the patch: zongji's own value and the raw bytes. */
interface CapturedKeyValue {
  readonly [RAW_KEY_VALUE]: RawBinlogValue;
  readonly value: unknown;
}

/**
 * Wraps zongji's per-value decoder once per process (idempotent; the markers are global symbols, so
 * a second copy of this module sees the first one's patch). rows_event.js calls it as
 * `Common.readMysqlValue(...)` through the module object, so replacing the property reaches every
 * row. Only values of columns listed in their table map entry's KEY_COLUMNS set - entries this file
 * creates for its own streams - are wrapped; every other zongji user and column gets the original.
 */
function installKeyCapture(): void {
  const common = requireCommonJs('@rodrigogs/zongji/lib/common.js') as { readMysqlValue: ReadMysqlValue & { [PATCHED]?: true } };
  if (common.readMysqlValue[PATCHED]) return;
  const original = common.readMysqlValue;
  const capturing: ReadMysqlValue & { [PATCHED]?: true } = function (this: unknown, parser, column, columnSchema, tableMap, zongji) {
    const keyColumns = tableMap?.[KEY_COLUMNS];
    if (!keyColumns?.has(column.name)) return original.call(this, parser, column, columnSchema, tableMap, zongji);
    const start = parser._offset;
    // zongji's DECIMAL decoder flips the sign bit in the packet buffer itself: copy the bytes first.
    const decimalBytes =
      column.type === BinlogColumnType.NEWDECIMAL
        ? Buffer.from(parser._buffer.subarray(start, start + decimalBinarySize(column.metadata?.precision ?? 0, column.metadata?.decimals ?? 0)))
        : undefined;
    const value = original.call(this, parser, column, columnSchema, tableMap, zongji);
    const end = parser._offset;
    if (decimalBytes && decimalBytes.length !== end - start) {
      throw new Error(`binlog DECIMAL column ${column.name}: ${end - start} bytes read where ${decimalBytes.length} were expected`);
    }
    const raw: RawBinlogValue = {
      type: column.type,
      metadata: column.metadata,
      // A copy: the parser's buffer is reused for the next packets.
      bytes: decimalBytes ?? Buffer.from(parser._buffer.subarray(start, end)),
    };
    const captured: CapturedKeyValue = { [RAW_KEY_VALUE]: raw, value };
    return captured;
  };
  capturing[PATCHED] = true;
  common.readMysqlValue = capturing;
}

/**
 * Every event class zongji has: the stall check compares the server's binlog end with the end of the
 * last event seen, and MariaDB writes events of its own (binlog checkpoints, GTID lists, which a plain
 * client receives as dummy QUERY or unknown events) after the last transaction.
 */
const INCLUDED_EVENTS = ['tablemap', 'writerows', 'updaterows', 'deleterows', 'xid', 'rotate', 'query', 'format', 'intvar', 'unknown'];

// ------------------------------------------------------------------------------------------------
// the source

/** A streamed table as described when a stream starts, or again for a new table map. */
interface StreamedTable {
  readonly name: string;
  readonly schema: TableSchema;
  readonly keyDecoders: readonly KeyColumnDecoder[];
}

/** What a stream knows about one table id of the binlog. */
interface StreamedTableMap {
  readonly table: string;
  /** Key decoders by key order, or undefined when the events of this table id do not fit the table now. */
  readonly keyDecoders: readonly KeyColumnDecoder[] | undefined;
}

/** The binlog change source (mode 'binlog'). */
export class MysqlBinlogSource implements ChangeSource {
  readonly mode = 'binlog' as const;
  private readonly settings: MysqlConnectionSettings;
  private readonly errorContext: ErrorContext;
  private readonly where: string;

  constructor(private readonly options: ChangeSourceOptions) {
    this.where = `pipelines.${options.pipeline}`;
    if (options.tables.length === 0) {
      throw new ConfigError(`${this.where}: binlog CDC needs at least one table`, { subject: `${this.where}.tables` });
    }
    if (!Number.isInteger(options.serverId) || options.serverId < 1 || options.serverId > 4_294_967_295) {
      throw new ConfigError(`${this.serverIdSubject()} must be an integer from 1 to 4294967295 (got ${options.serverId})`, {
        subject: this.serverIdSubject(),
      });
    }
    if (!Number.isInteger(options.heartbeatMs) || options.heartbeatMs < 1) {
      throw new ConfigError(`${this.where}.cdc.heartbeatMs must be a positive integer (got ${options.heartbeatMs})`, {
        subject: `${this.where}.cdc.heartbeatMs`,
      });
    }
    this.settings = mysqlConnectionSettings(options.connectionName, options.url, 1);
    this.errorContext = { connectionName: options.connectionName };
    installKeyCapture();
  }

  /** The database (schema) whose tables are streamed: the URL's. */
  get databaseName(): string {
    return this.settings.database;
  }

  async preflight(): Promise<void> {
    const variables = await this.globalVariables();
    checkBinlogSettings(this.options.connectionName, variables);
    const serverOwnId = Number(variables.get('server_id'));
    if (serverOwnId === this.options.serverId) {
      throw new CdcSetupError(
        `connection ${this.options.connectionName}: ${this.serverIdSubject()} is ${this.options.serverId}, the server's own server_id: ` +
          'choose another id, unique among the replicas of this server',
        { subject: this.serverIdSubject() },
      );
    }
    await this.binaryLogs(); // REPLICATION CLIENT / BINLOG MONITOR
    const grants = (await this.options.database.execute('SHOW GRANTS')).map((row) => String(Object.values(row)[0] ?? ''));
    checkReplicationGrant(this.options.connectionName, this.settings.user, grants);
    await this.checkBinlogClientLogin();
    await this.describeStreamedTables();
  }

  /** Binlog CDC creates nothing on the server: setup is the preflight. */
  async setup(): Promise<void> {
    await this.preflight();
  }

  async teardown(): Promise<void> {
    // Nothing was created.
  }

  /**
   * The end of the server's current binlog. MySQL 8.2+ renames SHOW MASTER STATUS to SHOW BINARY LOG
   * STATUS (8.4 drops the old name); MariaDB keeps SHOW MASTER STATUS (10.5.2+ also knows SHOW
   * BINLOG STATUS).
   */
  async currentPosition(): Promise<string> {
    let rows: Record<string, unknown>[];
    try {
      rows = await this.options.database.execute('SHOW MASTER STATUS');
    } catch (error) {
      if (!(error instanceof DatabaseError) || error.engineCode !== 'ER_PARSE_ERROR') throw this.privilegeError(error);
      rows = await this.options.database.execute('SHOW BINARY LOG STATUS').catch((second: unknown) => {
        throw this.privilegeError(second);
      });
    }
    const row = rows[0];
    if (!row || row.File === undefined || row.File === null) {
      throw new CdcSetupError(
        `connection ${this.options.connectionName}: the server writes no binary log (SHOW MASTER STATUS is empty): ` +
          'add log_bin = mysql-bin (and a server_id) under [mysqld] in my.cnf and restart the server',
        { subject: 'log_bin' },
      );
    }
    return formatBinlogPosition({ file: String(row.File), offset: Number(row.Position) });
  }

  /** Nothing to repair on the server after a lost position: stream on from its current end. */
  recover(): Promise<string> {
    return this.currentPosition();
  }

  comparePositions(a: string, b: string): number {
    return compareBinlogPositions(a, b);
  }

  async start(from: string, handler: ChangeStreamHandler): Promise<ChangeStream> {
    const position = parseBinlogPosition(from);
    if (!position || position.offset < 4) {
      throw new PositionLostError(
        `connection ${this.options.connectionName}: ${JSON.stringify(from)} is not a binlog position (file:offset); a full reconcile follows`,
        { position: from, subject: this.options.connectionName },
      );
    }
    // Every key column must be decodable before anything is read (SchemaError naming it otherwise).
    await this.describeStreamedTables();
    await this.checkPositionExists(position, from);
    const stream = new BinlogStream(this, this.options, handler, position);
    await stream.open();
    return stream;
  }

  // ----------------------------------------------------------------------------------------------
  // used by BinlogStream

  /** Host, port, user, password (and TLS) for mysqljs; never logged. */
  binlogClientSettings(): Record<string, unknown> {
    const { host, port, user, password, pool } = this.settings;
    return {
      host,
      port,
      user,
      password,
      ...(pool.connectTimeout !== undefined ? { connectTimeout: pool.connectTimeout } : {}),
      ...(pool.ssl ? { ssl: pool.ssl } : {}),
      // zongji's own DATE/DATETIME decoding (of columns that are not keys) then makes no Date objects.
      dateStrings: true,
    };
  }

  /** Describes a streamed table and builds its key decoders (SchemaError when a key type is not decodable). */
  async describeStreamedTable(table: string): Promise<StreamedTable> {
    const schema = await this.options.database.describeTable(table);
    const keyDecoders = schema.primaryKey.map((name) => {
      const column = schema.columns.find((candidate) => candidate.name === name);
      if (!column) throw new Error(`table ${table}: primary key column ${name} not among its columns`);
      return keyColumnDecoder(this.options.connectionName, table, column);
    });
    return { name: table, schema, keyDecoders };
  }

  /** A driver error of the binlog connection -> the error the stream fails with. */
  streamError(error: unknown, from: string): Error {
    if (error instanceof RowsyncError) return error;
    const driver = (typeof error === 'object' && error !== null ? error : {}) as { errno?: unknown; code?: unknown; sqlMessage?: unknown; message?: unknown };
    const message = String(driver.sqlMessage ?? driver.message ?? error);
    const connection = this.options.connectionName;
    // MariaDB: errno 4052, sent to the older of two readers; MySQL: 1236 with the same words.
    if (driver.errno === 4052 || /same server_uuid|same server.?id/i.test(message)) {
      return new CdcSetupError(
        `connection ${connection}: another binlog reader with server id ${this.options.serverId} connected to the server, ` +
          `which drops one of them: give each pipeline reading this server its own ${this.serverIdSubject()}`,
        { subject: this.serverIdSubject(), cause: error },
      );
    }
    if (driver.errno === 1236 || driver.code === 'ER_MASTER_FATAL_ERROR_READING_BINLOG') {
      const purged = /could not find first log file name/i.test(message);
      return new PositionLostError(
        purged
          ? `connection ${connection}: binlog position ${from} is gone (the binlog file was purged); a full reconcile follows`
          : `connection ${connection}: the server cannot stream from binlog position ${from} (${redactSecrets(message)}); a full reconcile follows`,
        { position: from, subject: connection, cause: error },
      );
    }
    if (driver.code === 'ER_NOT_SUPPORTED_AUTH_MODE') return this.authPluginError(error);
    if (driver.errno === 1227 && /REPLICATION SLAVE/i.test(message)) {
      return replicationSlaveMissing(connection, this.settings.user, error);
    }
    return translateMysqlError(error, this.errorContext, 'reading the binlog');
  }

  /** The stream's supervision error: the server's binlog moved and the connection brought nothing. */
  stallError(server: string, seen: string, quietMs: number): Error {
    return new DatabaseError(
      'DB_TIMEOUT',
      `connection ${this.options.connectionName} (mysql): the binlog stream stalled: the server's binlog is at ${server} ` +
        `but nothing arrived for ${Math.round(quietMs / 1000)} s (last event seen ending at ${seen})`,
      { connection: this.options.connectionName, retryable: true },
    );
  }

  killDumpThread(threadId: number): Promise<void> {
    return this.options.database.execute(`KILL CONNECTION ${Math.trunc(threadId)}`).then(
      () => undefined,
      () => undefined, // gone already, or the caller closed its database: the thread ends at its next write
    );
  }

  // ----------------------------------------------------------------------------------------------

  private serverIdSubject(): string {
    return `${this.where}.cdc.serverId`;
  }

  private async describeStreamedTables(): Promise<void> {
    for (const table of this.options.tables) await this.describeStreamedTable(table);
  }

  private async globalVariables(): Promise<Map<string, string>> {
    const names = [
      'log_bin', 'binlog_format', 'binlog_row_image', 'log_bin_compress', 'binlog_transaction_compression',
      'binlog_row_value_options', 'server_id',
    ];
    const rows = await this.options.database.execute(
      `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${names.map((name) => `'${name}'`).join(', ')})`,
    );
    const variables = new Map<string, string>();
    for (const row of rows) {
      const [name, value] = Object.values(row);
      variables.set(String(name).toLowerCase(), value === null || value === undefined ? '' : String(value));
    }
    return variables;
  }

  /** SHOW BINARY LOGS (needs REPLICATION CLIENT, on MariaDB 10.5+ BINLOG MONITOR). */
  private async binaryLogs(): Promise<{ file: string; size: number }[]> {
    let rows: Record<string, unknown>[];
    try {
      rows = await this.options.database.execute('SHOW BINARY LOGS');
    } catch (error) {
      throw this.privilegeError(error);
    }
    return rows.map((row) => ({ file: String(row.Log_name), size: Number(row.File_size) }));
  }

  private privilegeError(error: unknown): unknown {
    if (error instanceof DatabaseError && error.code === 'DB_ACCESS_DENIED') {
      return new CdcSetupError(
        `connection ${this.options.connectionName}: user ${this.settings.user} may not list the binary logs, which binlog CDC needs: ` +
          `GRANT REPLICATION CLIENT ON *.* TO ${this.settings.user} (MariaDB 10.5+: GRANT BINLOG MONITOR ON *.* TO ...)`,
        { subject: 'REPLICATION CLIENT', cause: error },
      );
    }
    return error;
  }

  /**
   * The file of `from` must still be listed (and hold the offset): a purged file means the changes in
   * between are gone, and only a full reconcile can make up for them. A server asked to stream from a
   * purged file would also refuse (error 1236), but this says it before connecting.
   */
  private async checkPositionExists(position: { file: string; offset: number }, from: string): Promise<void> {
    const logs = await this.binaryLogs();
    const log = logs.find((candidate) => candidate.file === position.file);
    if (!log) {
      throw new PositionLostError(
        `connection ${this.options.connectionName}: binlog position ${from} is gone: the server no longer lists ${position.file} ` +
          `(purged; oldest is ${logs[0]?.file ?? 'none'}); a full reconcile follows`,
        { position: from, subject: this.options.connectionName },
      );
    }
    if (position.offset > log.size) {
      throw new PositionLostError(
        `connection ${this.options.connectionName}: binlog position ${from} lies beyond the end of ${position.file} (${log.size} bytes; ` +
          'the binlog was reset?); a full reconcile follows',
        { position: from, subject: this.options.connectionName },
      );
    }
  }

  /**
   * Logs in with the binlog client library itself (mysqljs/mysql), which cannot authenticate with
   * caching_sha2_password (MySQL 8's default plugin) or sha256_password, while the mysql2 pool can.
   */
  private async checkBinlogClientLogin(): Promise<void> {
    // The copy of mysqljs zongji itself loads, whatever else the project has installed.
    const requireFromZongJi = createRequire(requireCommonJs.resolve('@rodrigogs/zongji'));
    const mysqljs = requireFromZongJi('mysql') as { createConnection(config: Record<string, unknown>): MysqljsConnection };
    const connection = mysqljs.createConnection(this.binlogClientSettings());
    connection.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => connection.connect((error) => (error ? reject(error) : resolve())));
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'ER_NOT_SUPPORTED_AUTH_MODE') throw this.authPluginError(error);
      throw translateMysqlError(error, this.errorContext, 'logging in with the binlog client');
    } finally {
      connection.destroy();
    }
  }

  private authPluginError(cause: unknown): CdcSetupError {
    return new CdcSetupError(
      `connection ${this.options.connectionName}: user ${this.settings.user} authenticates with a plugin the binlog client ` +
        '(mysqljs/mysql) does not support - caching_sha2_password, MySQL 8\'s default, or sha256_password: ' +
        `ALTER USER ${this.settings.user} IDENTIFIED WITH mysql_native_password BY '...' (or use a separate user for CDC)`,
      { subject: 'authentication plugin', cause },
    );
  }
}


// ------------------------------------------------------------------------------------------------
// one stream

type QueueItem =
  | { readonly kind: 'transaction'; readonly transaction: ChangeTransaction; readonly keyCount: number }
  | { readonly kind: 'idle'; position: string };

/** The changes of the transaction being read (keys deduplicated per table, in first-touched order). */
class PendingTransaction {
  private readonly keys = new Map<string, Map<string, KeyTuple>>();
  private readonly reconciles = new Map<string, 'truncate' | 'schema'>();
  private readonly order: string[] = [];
  keyCount = 0;

  addKey(table: string, identity: string, key: KeyTuple): void {
    this.touch(table);
    if (this.reconciles.has(table)) return;
    let keys = this.keys.get(table);
    if (!keys) {
      keys = new Map();
      this.keys.set(table, keys);
    }
    if (!keys.has(identity)) {
      keys.set(identity, key);
      this.keyCount += 1;
    }
  }

  /** A reconcile covers every key of the table: those are dropped. TRUNCATE wins over schema. */
  reconcile(table: string, reason: 'truncate' | 'schema'): void {
    this.touch(table);
    if (this.reconciles.get(table) !== 'truncate') this.reconciles.set(table, reason);
    const dropped = this.keys.get(table);
    if (dropped) {
      this.keyCount -= dropped.size;
      this.keys.delete(table);
    }
  }

  changes(): TableChange[] {
    return this.order.map((table): TableChange => {
      const reason = this.reconciles.get(table);
      if (reason) return { kind: 'reconcile', table, reason };
      return { kind: 'keys', table, keys: [...(this.keys.get(table)?.values() ?? [])] };
    });
  }

  private touch(table: string): void {
    if (!this.keys.has(table) && !this.reconciles.has(table)) this.order.push(table);
  }
}

class BinlogStream implements ChangeStream {
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (error: unknown) => void;
  private readonly zongji: ZongJi;

  private ended = false;
  private started = false;
  private startWaiter: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  private closing: Promise<void> | undefined;

  /** Binlog file the events being read belong to (rotate events move it). */
  private file: string;
  /** End of the last event seen (supervision) and of the last transaction boundary (idle reports). */
  private lastSeen: string;
  private lastEventAt = Date.now();
  private lastBoundary: string;
  /** Highest position queued for delivery (transaction or idle report). */
  private lastQueued: string;
  private lastIdleAt = 0;

  private pending: PendingTransaction | undefined;
  private readonly queue: QueueItem[] = [];
  private queuedKeys = 0;
  private delivering = false;
  private paused = false;

  private timer: NodeJS.Timeout | undefined;
  private supervising = false;
  private readonly from: string;

  constructor(
    private readonly source: MysqlBinlogSource,
    private readonly options: ChangeSourceOptions,
    private readonly handler: ChangeStreamHandler,
    from: BinlogPosition,
  ) {
    this.from = formatBinlogPosition(from);
    this.file = from.file;
    this.lastSeen = this.from;
    this.lastBoundary = this.from;
    this.lastQueued = this.from;
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Callers await `done` later (or never, when `open` fails): no unhandled rejection meanwhile.
    this.done.catch(() => undefined);

    const zongjiOptions: ZongJiOptions = {
      serverId: options.serverId,
      binlogName: from.file,
      binlogNextPos: from.offset,
      includeEvents: INCLUDED_EVENTS,
      includeSchema: { [source.databaseName]: [...options.tables] },
    };
    const ZongJiClass = requireCommonJs('@rodrigogs/zongji') as ZongJiConstructor;
    // zongji 0.4 reads serverId and the position when its setup queries finish, after `start()` has
    // replaced the constructor's options; both get the same object, so neither order can lose them.
    this.zongji = new ZongJiClass(source.binlogClientSettings(), zongjiOptions);
    // Table metadata comes from describeTable instead of zongji's own information_schema query (see
    // describeTableMap): no query per table id, no stall when that query fails, no crash when the
    // table has changed since the event was written.
    this.zongji._fetchTableInfo = (event, next) => {
      this.describeTableMap(event).then(
        (entry) => {
          if (this.ended) return;
          this.zongji.tableMap[event.tableId] = entry;
          next();
        },
        (error: unknown) => this.fail(error),
      );
    };
    this.zongji.on('binlog', (event) => this.onEvent(event));
    this.zongji.on('error', (error) => this.fail(this.source.streamError(error, this.lastBoundary)));
    this.zongji.connection.on('end', () => {
      if (!this.ended) this.fail(this.source.streamError(lostConnection('the server closed the binlog connection'), this.lastBoundary));
    });
    this.zongji.start(zongjiOptions);
  }

  /** Resolves once the server streams (its first event), rejects with what went wrong otherwise. */
  async open(): Promise<void> {
    const timeout = setTimeout(() => {
      const silence = lostConnection(`no binlog event within ${START_TIMEOUT_MS / 1000} s of connecting`);
      this.fail(this.source.streamError(silence, this.from));
    }, START_TIMEOUT_MS);
    try {
      await new Promise<void>((resolve, reject) => {
        this.startWaiter = { resolve, reject };
      });
    } catch (error) {
      await this.closing; // the caller never sees this stream: leave nothing of it behind
      throw error;
    } finally {
      clearTimeout(timeout);
      this.startWaiter = undefined;
    }
    if (this.ended) return; // failed right after its first event: `done` tells the caller
    // Only the binlog connection is needed from here on; an idle control connection would be closed by
    // the server after wait_timeout and zongji would report that as an error.
    this.zongji.ctrlConnection.removeAllListeners('error');
    this.zongji.ctrlConnection.on('error', () => undefined);
    this.zongji.ctrlConnection.end(() => undefined);
    this.timer = setInterval(() => void this.supervise(), this.options.heartbeatMs);
  }

  async acknowledge(): Promise<void> {
    // The binlog keeps no reader state on the server.
  }

  async stop(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      this.queue.length = 0;
      await this.close();
      this.resolveDone();
    }
    await this.closing;
  }

  // ----------------------------------------------------------------------------------------------
  // events

  private onEvent(event: ZongJiEvent): void {
    if (this.ended) return;
    try {
      this.lastEventAt = Date.now();
      if (!this.started) {
        this.started = true;
        this.startWaiter?.resolve();
      }
      switch (event.getTypeName()) {
        case 'Rotate':
          this.onRotate(event as ZongJiRotateEvent);
          break;
        case 'WriteRows':
        case 'DeleteRows':
          this.onRows(event as ZongJiRowsEvent, false);
          break;
        case 'UpdateRows':
          this.onRows(event as ZongJiRowsEvent, true);
          break;
        case 'Xid':
          this.endTransaction(this.positionAfter(event), event.timestamp);
          break;
        case 'Query':
          this.onQuery(event as ZongJiQueryEvent);
          break;
        default:
          break;
      }
      // A rotate's own end lies in the previous file; onRotate moved lastSeen to the next one.
      if (event.nextPosition > 0 && event.getTypeName() !== 'Rotate') this.lastSeen = this.positionAfter(event);
      this.applyBackpressure();
    } catch (error) {
      this.fail(error);
    }
  }

  private positionAfter(event: ZongJiEvent): string {
    return formatBinlogPosition({ file: this.file, offset: event.nextPosition });
  }

  /**
   * A real rotate (end of a file) names the next file and its first offset: a boundary between
   * transactions. The server also sends a fake one (timestamp 0, no position of its own) when a dump
   * starts and after each real one, naming the file being read.
   */
  private onRotate(event: ZongJiRotateEvent): void {
    const fake = event.timestamp === 0 || event.nextPosition === 0;
    this.file = event.binlogName;
    const position = formatBinlogPosition({ file: event.binlogName, offset: event.position });
    this.lastSeen = position;
    if (fake || this.pending) return;
    this.lastBoundary = position;
    this.reportIdle(false);
  }

  private onRows(event: ZongJiRowsEvent, update: boolean): void {
    const state = this.zongji.tableMap[event.tableId]?.[STREAMED_TABLE];
    if (!state) return;
    const transaction = this.currentTransaction();
    const decoders = state.keyDecoders;
    if (!decoders) {
      transaction.reconcile(state.table, 'schema');
      return;
    }
    for (const row of event.rows) {
      if (update) {
        const image = row as unknown as { before: Record<string, unknown>; after: Record<string, unknown> };
        const after = keyOf(decoders, image.after);
        const before = keyOf(decoders, image.before);
        transaction.addKey(state.table, identityOf(decoders, after), after);
        // An update that changes the key names both rows; most do not, and name one.
        transaction.addKey(state.table, identityOf(decoders, before), before);
      } else {
        const key = keyOf(decoders, row);
        transaction.addKey(state.table, identityOf(decoders, key), key);
      }
    }
  }

  private onQuery(event: ZongJiQueryEvent): void {
    const meaning = classifyQueryEvent(event.query);
    switch (meaning.kind) {
      case 'begin':
        this.currentTransaction();
        return;
      case 'commit':
      case 'rollback':
        // ROLLBACK is logged only when non-transactional tables kept changes: those keys are real.
        this.endTransaction(this.positionAfter(event), event.timestamp);
        return;
      case 'none':
        // A statement outside any transaction (GRANT, FLUSH, DDL of other tables...) is a group of its own.
        if (!this.pending && event.nextPosition > 0) this.endTransaction(this.positionAfter(event), event.timestamp);
        return;
      case 'change': {
        const inTransaction = this.pending !== undefined;
        const transaction = this.currentTransaction();
        const name = (reference: TableReference) => this.streamedTablesNamed(reference, event.schema);
        for (const reference of meaning.truncated) for (const table of name(reference)) transaction.reconcile(table, 'truncate');
        for (const reference of [...meaning.altered, ...meaning.rewritten]) {
          for (const table of name(reference)) {
            transaction.reconcile(table, 'schema');
            this.forgetTableMaps(table);
          }
        }
        for (const database of meaning.droppedDatabases) {
          if (database.toLowerCase() !== this.source.databaseName.toLowerCase()) continue;
          for (const table of this.options.tables) {
            transaction.reconcile(table, 'schema');
            this.forgetTableMaps(table);
          }
        }
        // DDL commits on its own; inside a transaction (CREATE TABLE ... SELECT) it ends with it.
        if (!inTransaction) this.endTransaction(this.positionAfter(event), event.timestamp);
        return;
      }
      default: {
        const unreachable: never = meaning;
        throw new Error(`unknown query event meaning ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /**
   * Streamed tables a statement's name may mean: in the connection's database (the name's qualifier,
   * else the statement's default database), compared without case. A case-insensitive match costs at
   * most a needless reconcile where lower_case_table_names=0 tells `T` from `t`.
   */
  private streamedTablesNamed(reference: TableReference, defaultSchema: string): string[] {
    const schema = reference.schema ?? defaultSchema;
    if (schema.toLowerCase() !== this.source.databaseName.toLowerCase()) return [];
    const wanted = reference.table.toLowerCase();
    return this.options.tables.filter((table) => table.toLowerCase() === wanted);
  }

  /** The table's definition changed: its next TABLE_MAP is described again. */
  private forgetTableMaps(table: string): void {
    for (const [tableId, entry] of Object.entries(this.zongji.tableMap)) {
      if (entry[STREAMED_TABLE]?.table === table) delete this.zongji.tableMap[Number(tableId)];
    }
  }

  private currentTransaction(): PendingTransaction {
    this.pending ??= new PendingTransaction();
    return this.pending;
  }

  private endTransaction(position: string, committedAt: number): void {
    const transaction = this.pending;
    this.pending = undefined;
    if (compareBinlogPositions(position, this.lastBoundary) > 0) this.lastBoundary = position;
    const changes = transaction?.changes() ?? [];
    if (changes.length === 0) {
      this.reportIdle(false);
      return;
    }
    this.lastQueued = position;
    this.queue.push({ kind: 'transaction', transaction: { position, changes, committedAt }, keyCount: transaction?.keyCount ?? 0 });
    this.queuedKeys += transaction?.keyCount ?? 0;
    this.pump();
  }

  /**
   * Queues an idle report of the last boundary when it is past everything queued and (unless forced
   * by the heartbeat) none was queued for heartbeatMs. A queued report not yet delivered is moved
   * forward instead of adding another.
   */
  private reportIdle(heartbeat: boolean): void {
    if (compareBinlogPositions(this.lastBoundary, this.lastQueued) <= 0) return;
    const now = Date.now();
    if (!heartbeat && now - this.lastIdleAt < this.options.heartbeatMs) return;
    this.lastIdleAt = now;
    this.lastQueued = this.lastBoundary;
    const last = this.queue[this.queue.length - 1];
    if (last?.kind === 'idle') last.position = this.lastBoundary;
    else this.queue.push({ kind: 'idle', position: this.lastBoundary });
    this.pump();
  }

  // ----------------------------------------------------------------------------------------------
  // table maps

  /**
   * zongji's TABLE_MAP metadata for a streamed table, from describeTable. The event's column types
   * are the table as it was when the event was written; describeTable is the table now. When they
   * differ (column count, or a key column's type), the rows of this table id cannot be given exact
   * keys: they ask for a reconcile instead (undefined decoders). Columns are then named `@1`, `@2` ...
   * (zongji still needs a name per column to consume the row; the values are not used).
   * Character sets are given to zongji as utf8 for every text column: zongji decodes (and sets its
   * parser's encoding to) whatever is given, and throws on names Node does not know (utf16);
   * rowsync reads no value zongji decodes, only the raw key bytes.
   */
  private async describeTableMap(event: ZongJiTableMapEvent): Promise<ZongJiTableMapEntry> {
    // includeSchema let through only TABLE_MAPs of streamed names, matched exactly.
    const table = event.tableName;
    const types = event.columnTypes.map((type, index) => event.columnsMetadata[index]?.type ?? type);
    let described: StreamedTable | undefined;
    try {
      described = await this.source.describeStreamedTable(table);
    } catch (error) {
      // Gone or keyless now (dropped, renamed, altered later in the log): reconcile, which then says so.
      if (!(error instanceof SchemaError) || (error.code !== 'TABLE_NOT_FOUND' && error.code !== 'NO_PRIMARY_KEY')) throw error;
    }
    const fits =
      described !== undefined &&
      columnsFit(described.schema.columns.length, types) &&
      described.keyDecoders.every((decoder) => {
        const index = described!.schema.columns.indexOf(decoder.column);
        const type = types[index];
        if (type === undefined) return false;
        const hint = legacyTemporalHint(decoder.column, type);
        if (hint) {
          throw new SchemaError('UNSUPPORTED_TYPE', `table ${table} on connection ${this.options.connectionName}: ${hint}`, {
            subject: `${this.options.connectionName}.${table}.${decoder.column.name}`,
          });
        }
        return decoder.matches(type, event.columnsMetadata[index]);
      });
    if (described && fits) {
      const known = described.schema.columns;
      return {
        columnSchemas: types.map((_, index) => {
          const column = known[index];
          return column ? zongjiColumnSchema(column.name, column.nativeType, column.charset) : zongjiColumnSchema(`@${index + 1}`, '', undefined);
        }),
        parentSchema: event.schemaName,
        tableName: event.tableName,
        [KEY_COLUMNS]: new Set(described.schema.primaryKey),
        [STREAMED_TABLE]: { table, keyDecoders: described.keyDecoders },
      };
    }
    return {
      columnSchemas: types.map((_, index) => zongjiColumnSchema(`@${index + 1}`, '', undefined)),
      parentSchema: event.schemaName,
      tableName: event.tableName,
      [STREAMED_TABLE]: { table, keyDecoders: undefined },
    };
  }

  // ----------------------------------------------------------------------------------------------
  // delivery and backpressure

  private pump(): void {
    if (this.delivering || this.ended) return;
    this.delivering = true;
    void this.deliver();
  }

  private async deliver(): Promise<void> {
    try {
      while (!this.ended && this.queue.length > 0) {
        const item = this.queue.shift()!;
        if (item.kind === 'transaction') {
          this.queuedKeys -= item.keyCount;
          this.releaseBackpressure();
          await this.handler.onTransaction(item.transaction);
        } else {
          this.releaseBackpressure();
          await this.handler.onIdle?.(item.position);
        }
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.delivering = false;
    }
  }

  /**
   * Pauses the binlog socket while too much is queued. Checked after every event: zongji resumes the
   * connection itself after describing a table map, which can undo a pause.
   */
  private applyBackpressure(): void {
    if (this.queue.length <= PAUSE_AT_QUEUED_TRANSACTIONS && this.queuedKeys <= PAUSE_AT_QUEUED_KEYS) return;
    this.zongji.connection.pause();
    this.paused = true;
  }

  /** Resumes at half the limits, so that a full queue does not pause and resume on every transaction. */
  private releaseBackpressure(): void {
    if (!this.paused || this.ended) return;
    if (this.queue.length > PAUSE_AT_QUEUED_TRANSACTIONS / 2 || this.queuedKeys > PAUSE_AT_QUEUED_KEYS / 2) return;
    this.paused = false;
    this.lastEventAt = Date.now(); // the quiet time of a pause is not a stall
    this.zongji.connection.resume();
  }

  // ----------------------------------------------------------------------------------------------
  // heartbeat and supervision

  /**
   * Every heartbeatMs: report the last boundary when idle, and fail the stream when the server's binlog
   * has moved past what arrived while nothing arrived for STALL_HEARTBEATS heartbeats (a connection
   * that died without a word, a dump thread the server forgot). A pause is no stall.
   */
  private async supervise(): Promise<void> {
    if (this.ended || this.supervising) return;
    this.supervising = true;
    try {
      if (!this.delivering && this.queue.length === 0) this.reportIdle(true);
      let server: string;
      try {
        server = await this.source.currentPosition();
      } catch {
        return; // the server being unreachable shows on the stream's own connection
      }
      if (this.ended || this.paused) return;
      const quietMs = Date.now() - this.lastEventAt;
      if (quietMs >= STALL_HEARTBEATS * this.options.heartbeatMs && compareBinlogPositions(server, this.lastSeen) > 0) {
        this.fail(this.source.stallError(server, this.lastSeen, quietMs));
      }
    } finally {
      this.supervising = false;
    }
  }

  // ----------------------------------------------------------------------------------------------
  // ending

  private fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.queue.length = 0;
    this.startWaiter?.reject(error);
    this.rejectDone(error);
    void this.close();
  }

  /** Closes both connections and has the server end its dump thread (destroying the socket alone does not). */
  private close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      const threadId = this.zongji.connection.threadId;
      // zongji may still report errors of connections being torn down: nobody is listening any more.
      this.zongji.removeAllListeners('error');
      this.zongji.on('error', () => undefined);
      this.zongji.connection.destroy();
      this.zongji.ctrlConnection.destroy();
      if (threadId !== null && threadId !== undefined) {
        let timeout: NodeJS.Timeout | undefined;
        await Promise.race([
          this.source.killDumpThread(threadId),
          new Promise<void>((resolve) => {
            timeout = setTimeout(resolve, KILL_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timeout);
      }
    })();
    return this.closing;
  }
}

/**
 * Whether a TABLE_MAP of these column types can be the table as described now: the same number of
 * columns, or those plus the two columns MariaDB adds to a table WITH SYSTEM VERSIONING that declares
 * no period columns of its own (row_start and row_end, TIMESTAMP(6) or BIGINT UNSIGNED transaction
 * ids, last in the row and absent from information_schema).
 */
function columnsFit(describedCount: number, types: readonly number[]): boolean {
  if (types.length === describedCount) return true;
  const versioning = (type: number | undefined) => type === BinlogColumnType.TIMESTAMP2 || type === BinlogColumnType.LONGLONG;
  return types.length === describedCount + 2 && versioning(types[describedCount]) && versioning(types[describedCount + 1]);
}

/** zongji's column description for a column of the current table. */
function zongjiColumnSchema(name: string, nativeType: string, charset: string | undefined): ZongJiColumnSchema {
  return {
    COLUMN_NAME: name,
    COLLATION_NAME: null,
    CHARACTER_SET_NAME: charset === undefined ? null : 'utf8',
    COLUMN_COMMENT: '',
    COLUMN_TYPE: nativeType.toLowerCase(),
  };
}

function keyOf(decoders: readonly KeyColumnDecoder[], row: Record<string, unknown>): KeyTuple {
  return decoders.map((decoder) => {
    const value = row[decoder.column.name];
    if (value === null || value === undefined) return null;
    const raw = (value as Partial<CapturedKeyValue>)[RAW_KEY_VALUE];
    if (!raw) throw new Error(`binlog row of column ${decoder.column.name}: the raw key bytes were not captured`);
    return decoder.decode(raw);
  });
}

function identityOf(decoders: readonly KeyColumnDecoder[], key: KeyTuple): string {
  return decoders.map((decoder, index) => canonicalToken(decoder.column.kind, key[index] ?? null)).join('');
}

function lostConnection(message: string): Error & { code: string; fatal: boolean } {
  return Object.assign(new Error(message), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true });
}
