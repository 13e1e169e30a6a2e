import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { DatabaseError, RowsyncError, type PositionLostError } from '../../errors/index.js';
import type { ChangeSourceOptions, ChangeStream, ChangeStreamHandler, TableChange } from '../change-source.js';
import type { KeyTuple, PortableValue, ShapeColumn, ValueKind } from '../types.js';
import { SESSION_OPTIONS, serverOptions, type PostgresConnectionSettings } from './postgres-connection.js';
import { translatePostgresError, type ErrorContext } from './postgres-errors.js';
import { normalizeValue } from './postgres-sql.js';

/**
 * One logical replication session of `PostgresLogicalSource` (postgres-logical-source.ts): pgoutput
 * messages in, whole transactions of exact keys out, standby status updates that report only what
 * the caller acknowledged, heartbeats for idle streams.
 */

/** Prefix of our logical messages (pg_logical_emit_message): the heartbeat. */
const MESSAGE_PREFIX = 'rowsync';
/**
 * Standby status updates go out at least this often (and every heartbeatMs when that is shorter),
 * whether or not the server asks: the server drops a client it has not heard from within
 * wal_sender_timeout (60 s by default), and while a handler runs the socket is paused, so its
 * keepalive requests are not even read.
 */
const MAX_STATUS_INTERVAL_MS = 10_000;
const MIN_STATUS_INTERVAL_MS = 100;
/**
 * The stream fails when nothing (data or server keepalive) arrived for this long while idle,
 * although a heartbeat was written every heartbeatMs: a silently dead connection (no RST) would
 * otherwise wait for TCP to give up, many minutes later.
 */
const MIN_STALL_TIMEOUT_MS = 60_000;
/** Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const POSTGRES_EPOCH_MS = 946_684_800_000;

/** 'X/Y' (hex halves, as PostgreSQL prints a pg_lsn) -> 64-bit number. */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) throw new RangeError(`not a PostgreSQL LSN (X/Y in hex): ${JSON.stringify(text)}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** 64-bit number -> 'X/Y' exactly as PostgreSQL prints it (upper-case hex, no padding). */
export function formatLsn(value: bigint): string {
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** One primary key column of a streamed table, and how its pgoutput text becomes a portable value. */
export interface KeyColumn {
  readonly name: string;
  /** The type the column's values have (a domain's base type), e.g. `int8`, `bpchar`, `inet`. */
  readonly baseType: string;
  /** The column as `normalizeValue` wants it (only `kind` matters to it). */
  readonly shape: ShapeColumn;
}

/** What the stream knows of one streamed table. */
export interface StreamedTable {
  readonly name: string;
  oid: number;
  /** Qualified name and (name, type, typmod) of every published column, or undefined: not known yet. */
  signature: string | undefined;
  /** Undefined when the table could not be described (dropped, lost its key): its changes reconcile. */
  keyColumns: readonly KeyColumn[] | undefined;
}

/** What the stream needs from its source: catalog access and the source's error messages. */
export interface LogicalSourceAccess {
  /** `connection <name> (postgres)`, the start of every message. */
  where(): string;
  slotLostError(position: string, what: string, cause?: unknown): PositionLostError;
  slotInUseError(pid: number | undefined, action: string, cause?: unknown): DatabaseError;
  readSlot(): Promise<{ readonly invalidated: boolean } | undefined>;
  /** Key columns of a table as it is now; rejects when it cannot be streamed. */
  describeKeyColumns(table: string): Promise<KeyColumn[]>;
  /** A statement on a normal connection of the source database (the heartbeat). */
  query(sql: string): Promise<Record<string, unknown>[]>;
}

export interface StreamContext {
  readonly source: LogicalSourceAccess;
  readonly options: ChangeSourceOptions;
  readonly settings: PostgresConnectionSettings;
  readonly errorContext: ErrorContext;
  readonly objectName: string;
  readonly tables: readonly StreamedTable[];
  readonly from: bigint;
  readonly handler: ChangeStreamHandler;
}

/** What the library's private `_connection` (a pg Connection) offers: writing CopyData. */
interface CopyConnection {
  sendCopyFromChunk(chunk: Buffer): void;
}

/**
 * One replication session.
 *
 * Acknowledgement: the library sends standby status updates from three places: `acknowledge()`
 * (which reports the LSN plus one), `_acknowledge` after every message when `acknowledge.auto`, and
 * a timer (`acknowledge.timeoutSeconds`) that reports the last LSN it *received*, keepalive LSNs
 * included (its issue #174). With `auto: false, timeoutSeconds: 0` the last two never run, and this
 * class never calls `acknowledge()`: every status update is written by `sendStatus`, whose written,
 * flushed and applied positions are all exactly the last position passed to `acknowledge` (0/0,
 * "none", before the first). PostgreSQL moves the slot (confirmed_flush_lsn) only to the flushed
 * one. Not even the written position reports what was received: the walsender then pings whenever
 * it waits with WAL we have not confirmed, which costs little (measured: 14 keepalives over 2,000
 * commits to unpublished tables).
 *
 * Backpressure: the library's flowControl queues each parsed message, pauses the socket and awaits
 * our 'data' listener before the next one; the queue holds at most one socket read of messages.
 * The listener awaits the handler at each commit, so one transaction is in memory at a time (as
 * its distinct keys).
 */
export class LogicalStream implements ChangeStream {
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (error: Error) => void;

  private readonly service: LogicalReplicationService;
  private readonly plugin: RawTextPgoutputPlugin;
  private readonly tablesByOid = new Map<number, StreamedTable>();
  private readonly tablesByName = new Map<string, StreamedTable>();

  /** Set once: no message is handled and no status is sent after it. */
  private closed = false;
  private closing: Promise<void> | undefined;
  /** The last position delivered (or `from`): transactions ending at or before it are skipped. */
  private lastDelivered: bigint;
  /** The last position passed to `acknowledge`: the only LSN status updates report. */
  private acknowledged: bigint | undefined;
  private transaction: TransactionChanges | undefined;
  /** A handler call in progress (never rejects). */
  private delivery: Promise<void> = Promise.resolve();
  private delivering = false;
  private heartbeat: Promise<void> = Promise.resolve();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private lastReceivedAt = Date.now();
  private readonly statusIntervalMs: number;
  private readonly stallTimeoutMs: number;

  constructor(private readonly context: StreamContext) {
    this.lastDelivered = context.from;
    for (const table of context.tables) {
      this.tablesByName.set(table.name, table);
      if (table.oid !== 0) this.tablesByOid.set(table.oid, table);
    }
    const heartbeatMs = context.options.heartbeatMs;
    this.statusIntervalMs = Math.max(MIN_STATUS_INTERVAL_MS, Math.min(MAX_STATUS_INTERVAL_MS, heartbeatMs));
    this.stallTimeoutMs = Math.max(MIN_STALL_TIMEOUT_MS, heartbeatMs * 6);
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // `done` is also handed to callers; this only keeps a failed `open` (whose stream the caller never
    // sees) from surfacing as an unhandled rejection.
    this.done.catch(() => undefined);

    const { settings } = context;
    this.service = new LogicalReplicationService(
      {
        ...serverOptions(settings),
        application_name: settings.applicationName,
        // The walsender renders tuples with the output functions of this session: UTC instants,
        // ISO dates, hex bytea, exact floats, as the dialect's own reads.
        options: SESSION_OPTIONS,
        connectionTimeoutMillis: 20_000,
        keepAlive: true,
      },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    this.plugin = new RawTextPgoutputPlugin({
      protoVersion: 1,
      publicationNames: [context.objectName],
      messages: true,
    });
  }

  /** Connects and starts replication; rejects (with the translated error) when the server refuses. */
  async open(): Promise<void> {
    const started = new Promise<void>((resolve, reject) => {
      this.service.once('start', () => {
        this.startTimers();
        resolve();
      });
      this.done.then(() => reject(new Error(`${this.context.source.where()}: the replication stream stopped before it started`)), reject);
    });
    this.service.on('data', (_lsn: string, message: Pgoutput.Message) => this.receive(message));
    this.service.on('heartbeat', (_lsn: string, _timestamp: number, shouldRespond: boolean) => {
      this.lastReceivedAt = Date.now();
      if (shouldRespond) this.sendStatus();
    });
    this.service.on('error', (error: Error) => void this.fail(error));
    this.service.subscribe(this.plugin, this.context.objectName, formatLsn(this.context.from)).then(
      () => void this.fail(new Error('the server ended the replication stream')),
      (error: unknown) => void this.fail(error),
    );
    await started;
  }

  async acknowledge(position: string): Promise<void> {
    const lsn = parseLsn(position);
    if (lsn > this.lastDelivered) {
      throw new RangeError(
        `${this.context.source.where()}: cannot acknowledge ${position}: the stream has delivered up to ${formatLsn(this.lastDelivered)} only`,
      );
    }
    // Never backwards: PostgreSQL 15 would move confirmed_flush_lsn back to it.
    if (this.acknowledged !== undefined && lsn <= this.acknowledged) return;
    this.acknowledged = lsn;
    this.sendStatus();
  }

  async stop(): Promise<void> {
    await this.close(undefined);
  }

  // ---- messages -------------------------------------------------------------------------------

  private async receive(message: Pgoutput.Message): Promise<void> {
    if (this.closed) return;
    this.lastReceivedAt = Date.now();
    try {
      switch (message.tag) {
        case 'begin':
          this.transaction ??= new TransactionChanges();
          break;
        case 'relation':
          await this.onRelation(message);
          break;
        case 'insert':
          this.onRowChange(message.relation, [message.new]);
          break;
        case 'update':
          this.onUpdate(message);
          break;
        case 'delete':
          this.onRowChange(message.relation, [message.key ?? message.old]);
          break;
        case 'truncate':
          for (const relation of message.relations) {
            const table = relation === undefined ? undefined : this.streamedTable(relation);
            if (table) this.changes().addReconcile(table.name, 'truncate');
          }
          break;
        case 'commit':
          await this.onCommit(message);
          break;
        case 'message': // our heartbeat (or another application's): a transaction without changes
        case 'origin':
        case 'type':
          break;
        default: {
          const unreachable: never = message;
          throw new Error(`unknown pgoutput message ${JSON.stringify((unreachable as { tag?: unknown }).tag)}`);
        }
      }
    } catch (error) {
      await this.fail(error);
    }
  }

  private async onRelation(relation: Pgoutput.MessageRelation): Promise<void> {
    const table = this.streamedTable(relation);
    if (!table) return;
    const signature = relationSignature(
      relation.schema,
      relation.name,
      relation.columns.map((column) => ({ name: column.name, typeOid: column.typeOid >>> 0, typeMod: column.typeMod })),
    );
    if (signature === table.signature) return; // re-sent after an unrelated invalidation
    table.signature = signature;
    this.changes().addReconcile(table.name, 'schema');
    // The key may have changed with the columns. A table that cannot be described now (dropped,
    // renamed, lost its key) reconciles at every change: the reconcile names the problem.
    table.keyColumns = await this.context.source.describeKeyColumns(table.name).catch(() => undefined);
  }

  /**
   * The streamed table a relation is, by oid (a renamed table is still ours: its new name changes
   * the signature and reconciles), else by name (dropped and created again since the stream began).
   */
  private streamedTable(relation: Pgoutput.MessageRelation): StreamedTable | undefined {
    const oid = relation.relationOid >>> 0;
    const byOid = this.tablesByOid.get(oid);
    if (byOid) return byOid;
    if (relation.schema !== this.context.settings.schema) return undefined;
    const byName = this.tablesByName.get(relation.name);
    if (!byName) return undefined;
    this.tablesByOid.delete(byName.oid);
    byName.oid = oid;
    byName.signature = undefined;
    this.tablesByOid.set(oid, byName);
    return byName;
  }

  private onUpdate(message: Pgoutput.MessageUpdate): void {
    const table = this.streamedTable(message.relation);
    if (!table) return;
    // The new tuple always has the key (REPLICA IDENTITY DEFAULT sends the old key only when it
    // changed); an unchanged TOASTed key value is absent from it and taken from the old tuple.
    const oldTuple = message.key ?? message.old;
    const newKey = this.keyOf(table, message.new, oldTuple);
    const oldKey = oldTuple ? this.keyOf(table, oldTuple, null) : undefined;
    if (!newKey || (oldTuple && !oldKey)) {
      this.changes().addReconcile(table.name, 'schema');
      return;
    }
    if (oldKey && tupleIdentity(oldKey) !== tupleIdentity(newKey)) this.changes().addKey(table.name, oldKey);
    this.changes().addKey(table.name, newKey);
  }

  private onRowChange(relation: Pgoutput.MessageRelation, tuples: readonly (Record<string, unknown> | null)[]): void {
    const table = this.streamedTable(relation);
    if (!table) return;
    for (const tuple of tuples) {
      const key = tuple ? this.keyOf(table, tuple, null) : undefined;
      // No key in the change (a table described without one, an identity that lacks a key column):
      // the table reconciles instead of losing the change.
      if (key) this.changes().addKey(table.name, key);
      else this.changes().addReconcile(table.name, 'schema');
    }
  }

  private keyOf(table: StreamedTable, tuple: Record<string, unknown>, fallback: Record<string, unknown> | null): KeyTuple | undefined {
    if (!table.keyColumns) return undefined;
    const key: PortableValue[] = [];
    for (const column of table.keyColumns) {
      let text = tuple[column.name];
      if (typeof text !== 'string') text = fallback?.[column.name];
      if (typeof text !== 'string') return undefined;
      key.push(portableKeyValue(column, text));
    }
    return key;
  }

  private changes(): TransactionChanges {
    // pgoutput sends Relation/Truncate/changes between Begin and Commit; this only guards against
    // a server that would not.
    this.transaction ??= new TransactionChanges();
    return this.transaction;
  }

  private async onCommit(commit: Pgoutput.MessageCommit): Promise<void> {
    const changes = this.transaction?.changes ?? [];
    this.transaction = undefined;
    if (commit.commitEndLsn === null) throw new Error('pgoutput commit without an end LSN');
    const end = parseLsn(commit.commitEndLsn);
    // The server starts at the later of `from` and the slot's position and may resend what ends
    // there; "after `from`, exclusive" is ours to keep.
    if (end <= this.lastDelivered) return;
    this.lastDelivered = end;
    const position = formatLsn(end);
    const { handler } = this.context;
    const call =
      changes.length === 0 && handler.onIdle
        ? () => handler.onIdle!(position)
        : () => handler.onTransaction({ position, changes, committedAt: Math.floor(Number(commit.commitTime) / 1000) });
    this.delivering = true;
    let failure: { error: unknown } | undefined;
    // Through a resolved promise: a handler that throws instead of rejecting fails the same way.
    this.delivery = Promise.resolve().then(call).then(
      () => undefined,
      (error: unknown) => {
        failure = { error };
      },
    );
    await this.delivery;
    this.delivering = false;
    this.lastReceivedAt = Date.now(); // the socket was paused while the handler ran
    if (failure) {
      // The handler's own error, as it is (not a database error to translate).
      await this.close(failure.error instanceof Error ? failure.error : new Error(String(failure.error)));
      return;
    }
    this.scheduleHeartbeat();
  }

  // ---- status updates, heartbeats -------------------------------------------------------------

  /**
   * A standby status update (protocol 'r'): written, flushed and applied = the acknowledged
   * position, or 0/0 (InvalidXLogRecPtr: the server ignores it for the slot) before the first.
   */
  private sendStatus(): void {
    if (this.closed) return;
    const connection = (this.service as unknown as { _connection?: Partial<CopyConnection> | null })._connection;
    if (typeof connection?.sendCopyFromChunk !== 'function') return; // not connected (yet, or any more)
    connection.sendCopyFromChunk(standbyStatusUpdate(this.acknowledged ?? 0n));
  }

  private startTimers(): void {
    this.statusTimer = setInterval(() => this.sendStatus(), this.statusIntervalMs);
    this.scheduleHeartbeat();
  }

  private scheduleHeartbeat(): void {
    clearTimeout(this.heartbeatTimer);
    if (this.closed) return;
    this.heartbeatTimer = setTimeout(() => this.beat(), this.context.options.heartbeatMs);
  }

  /**
   * Nothing was delivered for heartbeatMs: write a transactional logical message in this database.
   * It comes back through the slot after everything committed before it and is delivered as
   * `onIdle(its commit end)`, so an idle stream's checkpoint (and the slot) moves on while other
   * databases of the server write WAL the slot would otherwise retain.
   */
  private beat(): void {
    if (this.closed || this.delivering) return; // the end of the delivery schedules the next one
    if (Date.now() - this.lastReceivedAt > this.stallTimeoutMs) {
      void this.close(
        new DatabaseError(
          'DB_TIMEOUT',
          `${this.context.source.where()}: nothing arrived on the replication connection for ` +
            `${Math.round((Date.now() - this.lastReceivedAt) / 1000)} s although heartbeats were written`,
          { connection: this.context.options.connectionName, retryable: true },
        ),
      );
      return;
    }
    this.heartbeat = this.context.source
      .query(`SELECT pg_logical_emit_message(true, '${MESSAGE_PREFIX}', 'heartbeat')`)
      .then(
        () => this.scheduleHeartbeat(),
        (error: unknown) => void this.fail(error),
      );
  }

  // ---- ending ---------------------------------------------------------------------------------

  /** A failure of the connection, the server or decoding: translated, then the stream ends with it. */
  private async fail(error: unknown): Promise<void> {
    if (this.closed) return;
    await this.close(await this.translate(error));
  }

  private close(error: Error | undefined): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    clearTimeout(this.heartbeatTimer);
    clearInterval(this.statusTimer);
    this.closing = this.service.stop().then(
      () => undefined,
      () => undefined, // the connection is gone already
    );
    // `done` settles once no handler call or heartbeat of this stream is still running.
    void this.closing
      .then(() => Promise.all([this.delivery, this.heartbeat]))
      .then(() => (error ? this.rejectDone(error) : this.resolveDone()));
    return this.closing;
  }

  private async translate(error: unknown): Promise<Error> {
    if (error instanceof RowsyncError) return error;
    const code = engineCode(error);
    const message = error instanceof Error ? error.message : String(error);
    const source = this.context.source;
    const from = formatLsn(this.context.from);
    if (code === '55006') return source.slotInUseError(undefined, 'stream', error);
    if (code === '42704' && /replication slot/i.test(message)) return source.slotLostError(from, 'does not exist any more (dropped)', error);
    if (/can no longer get changes from replication slot|requested WAL segment .* has already been removed/i.test(message)) {
      return source.slotLostError(from, 'has been invalidated', error);
    }
    if (code === '55000') {
      // 55000 (object_not_in_prerequisite_state) also means other things (wal_level, a slot of another
      // database); the slot itself says whether it is lost, whatever the server's message language.
      const slot = await source.readSlot().catch(() => undefined);
      if (!slot) return source.slotLostError(from, 'does not exist any more (dropped)', error);
      if (slot.invalidated) return source.slotLostError(from, 'has been invalidated (wal_status lost)', error);
    }
    return translatePostgresError(error, this.context.errorContext);
  }
}

/**
 * pgoutput with every column read as its raw text. The library gives each column the process-global
 * pg type parser of its oid (timestamps become millisecond Dates in local time); replacing the
 * parsers as soon as a Relation message is parsed (before the tuples that use it, which are parsed
 * later, in order) leaves the exact server text for `portableKeyValue`.
 */
class RawTextPgoutputPlugin extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer);
    if (message.tag === 'relation') {
      for (const column of message.columns) column.parser = rawText;
    }
    return message;
  }
}

const rawText = (text: string): string => text;

/** What one open transaction changed, in order: runs of keys per table, reconciles in their place. */
class TransactionChanges {
  readonly changes: TableChange[] = [];
  /** Per table, the run of keys that the next key joins (closed by a reconcile of the table). */
  private readonly openRuns = new Map<string, { keys: KeyTuple[]; seen: Set<string> }>();
  private readonly lastChange = new Map<string, TableChange>();

  addKey(table: string, key: KeyTuple): void {
    let run = this.openRuns.get(table);
    if (!run) {
      run = { keys: [], seen: new Set() };
      this.openRuns.set(table, run);
      const change: TableChange = { kind: 'keys', table, keys: run.keys };
      this.changes.push(change);
      this.lastChange.set(table, change);
    }
    // A row changed many times in one transaction is one key: sync reads its current state.
    const identity = tupleIdentity(key);
    if (run.seen.has(identity)) return;
    run.seen.add(identity);
    run.keys.push(key);
  }

  addReconcile(table: string, reason: 'truncate' | 'schema'): void {
    const last = this.lastChange.get(table);
    if (last?.kind === 'reconcile' && last.reason === reason) return;
    this.openRuns.delete(table);
    const change: TableChange = { kind: 'reconcile', table, reason };
    this.changes.push(change);
    this.lastChange.set(table, change);
  }
}

/**
 * The portable value of a key column from its pgoutput text: what PostgresDatabase returns for the
 * same value (`readExpression` read through pg with LOSSLESS_TYPES, then `normalizeValue`), so that
 * `fetchByKeys` finds the row and keys compare equal with those of reconcile. The walsender session
 * has the dialect's SESSION_OPTIONS, so the text is the one those reads see, except where
 * `readExpression` casts to text (below).
 */
export function portableKeyValue(column: KeyColumn, text: string): PortableValue {
  return normalizeValue(column.shape, driverValue(column.shape.kind, column.baseType, text));
}

/** What pg (LOSSLESS_TYPES) hands back for `readExpression` of a column whose output text is `text`. */
function driverValue(kind: ValueKind, baseType: string, text: string): unknown {
  switch (kind) {
    case 'integer':
      // int2/int4 go through pg's parseInt; int8 stays text (exact beyond 2^53).
      return baseType === 'int8' ? text : Number(text);
    case 'float':
      return parseFloat(text); // extra_float_digits=3: shortest exact text, as pg's parser reads it
    case 'boolean':
      return text === 't' || text === 'true';
    case 'text':
      // `::text` differs from the output function for these two: char(n) loses its padding,
      // inet always shows its netmask.
      if (baseType === 'bpchar') return text.replace(/ +$/, '');
      if (baseType === 'inet' && !text.includes('/')) return `${text}/${text.includes(':') ? 128 : 32}`;
      return text;
    case 'decimal': // exact text (LOSSLESS_TYPES keeps numeric raw)
    case 'binary': // '\x..' hex (bytea_output=hex); normalizeValue decodes it
    case 'date':
    case 'datetime': // timestamptz prints '+00' in the UTC session; normalizeValue drops it
    case 'time':
    case 'json':
    case 'uuid':
      return text;
    default: {
      const unreachable: never = kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/** A key's identity within one transaction (Buffers by content). */
function tupleIdentity(key: KeyTuple): string {
  return JSON.stringify(key.map((value) => (Buffer.isBuffer(value) ? { hex: value.toString('hex') } : value)));
}

/** Qualified name and published columns: what a Relation message says about a table. */
export function relationSignature(
  schema: string,
  table: string,
  columns: readonly { name: string; typeOid: number; typeMod: number }[],
): string {
  return JSON.stringify([schema, table, columns.map((column) => [column.name, column.typeOid, column.typeMod])]);
}

/** Standby status update: 'r', written, flushed, applied (all `position`), clock, no reply wanted. */
function standbyStatusUpdate(position: bigint): Buffer {
  const message = Buffer.alloc(34);
  message.write('r', 0, 'latin1');
  message.writeBigUInt64BE(position, 1);
  message.writeBigUInt64BE(position, 9);
  message.writeBigUInt64BE(position, 17);
  message.writeBigInt64BE(BigInt(Date.now() - POSTGRES_EPOCH_MS) * 1000n, 25);
  message.writeUInt8(0, 33);
  return message;
}

export function engineCode(error: unknown): string | undefined {
  if (error instanceof DatabaseError) return error.engineCode;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
