/**
 * What the two trigger-based ('polling') change sources share: the names of their objects, the text
 * a trigger records a key as, the conversion of change rows into `ChangeTransaction`s, and the poll
 * loop with its stop/fail handling. The engine files (`mysql/mysql-polling-source.ts`,
 * `postgres/postgres-polling-source.ts`) hold the SQL and the reading order, which is where the
 * engines differ most (see their top comments).
 *
 * The recorded key
 * ----------------
 * A trigger writes one change row per changed row: the table's name and its primary key as
 * `["e1","e2",...]`, one element per key column in key order. Each element is the column's exact
 * text, rendered inside the trigger so that it does not depend on the writing session's settings,
 * and restricted to characters JSON never escapes:
 *   - integers and decimals: their exact decimal text; booleans: digits (MySQL) or true/false;
 *     floats (PostgreSQL only): the shortest text that reads back as the same double;
 *   - dates, times, datetimes: fixed formats with microseconds (instants as their UTC time; a MySQL
 *     TIMESTAMP as its epoch seconds);
 *   - text and JSON (and MariaDB's UUID type): hex of their UTF-8 bytes; binary: hex of the bytes;
 *     a PostgreSQL uuid: its lowercase text.
 * Hex for text costs twice the bytes but needs no escaping at all, so no character (quote,
 * backslash, control character, invalid byte sequence) can break the record, and the text is the
 * same whatever character set, sql_mode or standard_conforming_strings the writer runs with.
 * The readers turn every element back into the portable value the dialect's reads return for that
 * column (`database.fetchByKeys` finds the row with it). A NULL key means "the whole table" (a
 * PostgreSQL TRUNCATE): the reader delivers `{ kind: 'reconcile' }` for the table.
 */
import { createHash, randomBytes } from 'node:crypto';
import { CdcSetupError, ConfigError } from '../errors/index.js';
import { keyIdentity } from './canonical.js';
import type { ChangeSourceOptions, ChangeStream, ChangeStreamHandler, ChangeTransaction, TableChange } from './change-source.js';
import type { Database } from './dialect.js';
import { shapeOf } from './table-pair.js';
import type { KeyTuple, PortableValue, ShapeColumn, TableShape } from './types.js';

/**
 * Change rows read per query. A poll that fills it polls again at once; a smaller batch would only
 * add round trips, a larger one holds more keys in memory per delivered transaction.
 */
export const POLL_BATCH_ROWS = 10_000;

/**
 * Longest object name both engines accept (MySQL 64, PostgreSQL 63 bytes), less room for the
 * `_tx` index suffix PostgreSQL derives from the change table's name.
 */
const MAX_TABLE_NAME = 60;
/** Longest per-table part of a trigger name: `rowsync_<8>_<40>_<op>` stays within 63 characters. */
const MAX_TABLE_PART = 40;

export type TriggerEvent = 'insert' | 'update' | 'delete' | 'truncate';

const EVENT_SUFFIX: Readonly<Record<TriggerEvent, string>> = { insert: 'i', update: 'u', delete: 'd', truncate: 't' };

/** First 8 hex digits of SHA-256: short, stable names that tell pipelines and tables apart. */
export function shortHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 8);
}

/** Lowercase ASCII letters, digits and `_`: a name that needs no quoting and has no case to lose. */
function sanitize(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

/**
 * `rowsync_chg_<pipeline>`, the pipeline's change table. A hash suffix is added when the name had
 * to be shortened or changed by sanitising, so pipelines `a-b` and `a_b` never share one.
 */
export function changeTableName(pipeline: string): string {
  const clean = sanitize(pipeline);
  const plain = `rowsync_chg_${clean}`;
  if (clean === pipeline && plain.length <= MAX_TABLE_NAME) return plain;
  const room = MAX_TABLE_NAME - 'rowsync_chg_'.length - 9;
  return `rowsync_chg_${clean.slice(0, room)}_${shortHash(pipeline)}`;
}

/** Every trigger (and PostgreSQL trigger function) of a pipeline starts with this. */
export function triggerPrefix(pipeline: string): string {
  return `rowsync_${shortHash(pipeline)}_`;
}

/**
 * `rowsync_<pipeline hash>_<table>`: the base of a table's trigger names, and the PostgreSQL trigger
 * function's name. The table part carries its own hash when sanitising changed the name (MySQL can
 * hold tables `Orders` and `orders` side by side) or it was shortened.
 */
export function triggerBaseName(pipeline: string, table: string): string {
  const clean = sanitize(table);
  const part = clean === table && clean.length <= MAX_TABLE_PART ? clean : `${clean.slice(0, MAX_TABLE_PART - 9)}_${shortHash(table)}`;
  return `${triggerPrefix(pipeline)}${part}`;
}

export function triggerName(pipeline: string, table: string, event: TriggerEvent): string {
  return `${triggerBaseName(pipeline, table)}_${EVENT_SUFFIX[event]}`;
}

/** The setup hint every "not set up" error ends with. */
export function setupHint(pipeline: string): string {
  return `run \`rowsync cdc setup --pipeline ${pipeline}\``;
}

/** Checks the options a polling source relies on; `ConfigError` names the option. */
export function validatePollingOptions(options: ChangeSourceOptions): void {
  const fail = (option: string, reason: string): never => {
    throw new ConfigError(`polling change source: ${option} ${reason}`, { subject: option });
  };
  if (options.pipeline.length === 0) fail('pipeline', 'must not be empty');
  if (!Number.isInteger(options.pollIntervalMs) || options.pollIntervalMs < 1) {
    fail('pollIntervalMs', `must be a positive integer (got ${options.pollIntervalMs})`);
  }
  if (!Number.isInteger(options.heartbeatMs) || options.heartbeatMs < 0) {
    fail('heartbeatMs', `must be a non-negative integer (got ${options.heartbeatMs})`);
  }
  if (new Set(options.tables).size !== options.tables.length) fail('tables', 'must not name a table twice');
}

// ------------------------------------------------------------------------------------------------
// recorded keys -> portable keys

/** One row of a change table, as both readers hand it over. */
export interface ChangeRow {
  readonly table: string;
  /** The key as recorded (`["e1",...]`), or null for a change of the whole table (TRUNCATE). */
  readonly key: string | null;
  /** The key before an UPDATE that changed it; null otherwise. */
  readonly oldKey: string | null;
  /** When the trigger ran, ms since the epoch. */
  readonly changedAtMs: number;
}

/** Turns one recorded element into the portable value the dialect's reads return for the column. */
export type KeyElementDecoder = (column: ShapeColumn, element: string) => PortableValue;

/** A recorded element: only the characters the renderers produce (no quote, no backslash). */
const ELEMENT = /^[0-9A-Za-z.:+\- ]*$/;

/** The streamed tables with their key columns, as the reader decodes recorded keys for them. */
export class StreamedTables {
  private constructor(
    private readonly shapes: ReadonlyMap<string, TableShape>,
    private readonly decodeElement: KeyElementDecoder,
  ) {}

  /** Describes every table (`SchemaError` for a missing table or one without primary key). */
  static async describe(database: Database, tables: readonly string[], decodeElement: KeyElementDecoder): Promise<StreamedTables> {
    const shapes = new Map<string, TableShape>();
    for (const table of tables) shapes.set(table, shapeOf(database, await database.describeTable(table)));
    return new StreamedTables(shapes, decodeElement);
  }

  shape(table: string): TableShape | undefined {
    return this.shapes.get(table);
  }

  /**
   * The portable key of a recorded key text, or undefined when the text does not fit the table's
   * current key (a row recorded before the key's columns or types changed): the caller reconciles
   * the table instead of guessing.
   */
  decodeKey(shape: TableShape, text: string): KeyTuple | undefined {
    let elements: unknown;
    try {
      elements = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!Array.isArray(elements) || elements.length !== shape.keyIndexes.length) return undefined;
    const key: PortableValue[] = [];
    for (const [position, element] of elements.entries()) {
      if (typeof element !== 'string' || !ELEMENT.test(element)) return undefined;
      try {
        key.push(this.decodeElement(shape.columns[shape.keyIndexes[position]!]!, element));
      } catch {
        return undefined;
      }
    }
    return key;
  }
}

/**
 * The changes of one delivered group of change rows, in row order: per table, its distinct keys
 * (both keys of a key-changing UPDATE); a NULL key (TRUNCATE) or a key that no longer fits the
 * table becomes a `reconcile` of the table at its place, and keys after it start a new entry.
 * Rows of tables the pipeline does not stream (left by an older setup) are skipped.
 */
export function changesOf(rows: readonly ChangeRow[], tables: StreamedTables): { changes: TableChange[]; committedAt: number | undefined } {
  const changes: TableChange[] = [];
  const open = new Map<string, { keys: KeyTuple[]; seen: Set<string> }>();
  let committedAt: number | undefined;
  const reconcile = (table: string, reason: 'truncate' | 'schema') => {
    changes.push({ kind: 'reconcile', table, reason });
    open.delete(table);
  };
  for (const row of rows) {
    committedAt = committedAt === undefined ? row.changedAtMs : Math.max(committedAt, row.changedAtMs);
    const shape = tables.shape(row.table);
    if (!shape) continue;
    if (row.key === null) {
      reconcile(row.table, 'truncate');
      continue;
    }
    const recorded = row.oldKey === null ? [row.key] : [row.oldKey, row.key];
    const keys = recorded.map((text) => tables.decodeKey(shape, text));
    if (keys.some((key) => key === undefined)) {
      reconcile(row.table, 'schema');
      continue;
    }
    let entry = open.get(row.table);
    if (!entry) {
      entry = { keys: [], seen: new Set() };
      open.set(row.table, entry);
      changes.push({ kind: 'keys', table: row.table, keys: entry.keys });
    }
    for (const key of keys as KeyTuple[]) {
      const identity = keyIdentity(shape, key);
      if (entry.seen.has(identity)) continue;
      entry.seen.add(identity);
      entry.keys.push(key);
    }
  }
  return { changes, committedAt };
}

/** SQL for `["e1","e2"]` from the elements' SQL expressions; `concat` is the engine's concatenation. */
export function keyTextSql(elements: readonly string[], concat: (parts: readonly string[]) => string): string {
  const parts: string[] = [`'["'`];
  elements.forEach((element, index) => {
    if (index > 0) parts.push(`'","'`);
    parts.push(element);
  });
  parts.push(`'"]'`);
  return concat(parts);
}

// ------------------------------------------------------------------------------------------------
// delivery and the poll loop

/**
 * Hands transactions and idle positions to the handler. Idle positions are reported when they
 * moved, at most once per `heartbeatMs` (a PostgreSQL horizon moves with every write anywhere on the
 * server; the caller need not checkpoint each step).
 */
export class Delivery {
  private lastReported: string;
  private lastReportAt = 0;

  constructor(
    private readonly handler: ChangeStreamHandler,
    private readonly heartbeatMs: number,
    from: string,
  ) {
    this.lastReported = from;
  }

  async transaction(transaction: ChangeTransaction): Promise<void> {
    await this.handler.onTransaction(transaction);
    this.lastReported = transaction.position;
    this.lastReportAt = Date.now();
  }

  async idle(position: string): Promise<void> {
    if (position === this.lastReported || !this.handler.onIdle) return;
    if (Date.now() - this.lastReportAt < this.heartbeatMs) return;
    await this.handler.onIdle(position);
    this.lastReported = position;
    this.lastReportAt = Date.now();
  }
}

/** What an engine supplies to a `PollingStream`. */
export interface PollingCycle {
  /**
   * Reads the change table once and delivers what it found. Returns true when there may be more
   * right away (it delivered something or its batch was full): the loop then polls again at once.
   * `stopping()` turns true when stop() was called: deliver nothing more once it is.
   */
  poll(stopping: () => boolean): Promise<boolean>;
  /** See `ChangeStream.acknowledge`. */
  acknowledge(position: string): Promise<void>;
  /** Closes the stream's own connection. Called once, when the loop has ended. */
  close(): Promise<void>;
}

/**
 * The poll loop: polls at once while there was work, else after `pollIntervalMs`. A failure (a
 * query error, the connection killed from the server side, a handler rejection) ends the loop and
 * rejects `done`; stop() ends it after the current poll and resolves `done`. Either way the
 * connection is closed and no timer is left behind.
 */
export class PollingStream implements ChangeStream {
  readonly done: Promise<void>;
  /**
   * The server's id of the stream's own connection (MySQL connection id, PostgreSQL backend pid),
   * for operators who look for it in the process list, and for tests that kill it.
   */
  readonly serverSessionId: number;
  private stopping = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cycle: PollingCycle,
    private readonly pollIntervalMs: number,
    serverSessionId: number,
  ) {
    this.serverSessionId = serverSessionId;
    this.done = this.run();
    // The caller learns of a failure through `done` (or stop()); never as an unhandled rejection.
    this.done.catch(() => undefined);
  }

  /**
   * Ends the stream's wait for the next poll with `error`: a connection's asynchronous 'error'
   * event while the stream sleeps (a killed idle connection) fails the stream at once.
   */
  fail(error: Error): void {
    this.failure ??= error;
    this.interruptSleep();
  }

  acknowledge(position: string): Promise<void> {
    return this.cycle.acknowledge(position);
  }

  /**
   * Stops after the poll in progress (a transaction being handled is awaited first: never call
   * stop() from inside `onTransaction` and wait for it there). Resolves when the connection is closed.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.interruptSleep();
    await this.done.catch(() => undefined);
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopping) {
        if (this.failure) throw this.failure;
        const more = await this.cycle.poll(() => this.stopping);
        if (this.failure) throw this.failure;
        if (!more && !this.stopping) await this.sleep(this.pollIntervalMs);
      }
    } finally {
      this.interruptSleep();
      await this.cycle.close().catch(() => undefined);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private interruptSleep(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** A `CdcSetupError` for something setup creates that is missing or out of date. */
export function notSetUp(pipeline: string, what: string, subject: string): CdcSetupError {
  return new CdcSetupError(`pipeline ${pipeline}: ${what}; ${setupHint(pipeline)}`, { subject });
}

/** A random id for one incarnation of a change table (see the engine files: positions carry it). */
export function newGeneration(): string {
  return randomBytes(6).toString('hex');
}
