/**
 * The 'polling' change source for PostgreSQL (13+): triggers record changed keys in a change table,
 * and a reader polls it. For sources where logical replication is not allowed (no REPLICATION
 * role, `wal_level` not `logical`, no free slot).
 *
 * What setup creates, in one transaction (idempotent; `teardown` removes it):
 * - `rowsync_chg_<pipeline>` in the connection's schema: one row per changed row with the writing
 *   transaction's id (`txid xid8`, `pg_current_xact_id()`), the table, the key as exact text
 *   (polling-source-base.ts), the old key of an UPDATE that changed the key, and the time. The table
 *   comment holds a random "generation", new each time setup creates the table; positions carry it,
 *   so a position from before a teardown + setup (whose changes in between no trigger recorded) is
 *   refused with `PositionLostError` and answered with a reconcile.
 * - per streamed table, a trigger function `rowsync_<hash>_<table>` and AFTER INSERT / UPDATE /
 *   DELETE row triggers plus an AFTER TRUNCATE statement trigger (`..._i/_u/_d/_t`). A TRUNCATE is
 *   recorded with a NULL key and arrives as `{ kind: 'reconcile', reason: 'truncate' }`. Schema
 *   changes fire no trigger (event triggers need a superuser): scheduled reconciles cover them, and
 *   a change recorded with a key that no longer fits the table arrives as a 'schema' reconcile.
 * - The triggers are enabled ALWAYS: with the default (ORIGIN) they would not fire in sessions with
 *   `session_replication_role = replica`, which is how logical replication apply workers and
 *   trigger-less restores write, and those changes would be lost without a word. (Needs ownership
 *   of the tables.)
 * - The triggers record nothing while the writing session has `rowsync.applying = 'on'`
 *   (`SET LOCAL rowsync.applying = 'on'`): rowsync's own writes, once it applies changes to this
 *   database (bidirectional sync). A setting rather than `session_replication_role`, which needs
 *   superuser and would silence every other trigger of the session too.
 *
 * Reading order: the transaction horizon
 * --------------------------------------
 * Ids of concurrent transactions commit out of order, so the reader does not follow an id. Each
 * change row holds its transaction's id, and the position is a horizon H: every change of a
 * transaction whose id is below H has been delivered. A poll reads, in one statement (one snapshot),
 * `xmin = pg_snapshot_xmin(pg_current_snapshot())` (no transaction below it is still running, so
 * each has committed, with all its rows visible to this snapshot, or rolled back, leaving none) and
 * the rows with H <= txid < xmin, in (txid, id) order. Each transaction is delivered whole with
 * position txid + 1; when nothing is left below xmin, the position moves to xmin (`onIdle`).
 * Consequences:
 * - Nothing is read past a transaction that is still open: a long writing transaction anywhere on
 *   the server (transaction ids are cluster-wide, so in any database) holds back the delivery of
 *   everything that started writing after it; read-only transactions have no id and hold back
 *   nothing. Prepared (two-phase) transactions hold it back until they are resolved. The horizon
 *   buys exactness without per-gap bookkeeping (compare the MySQL reader); lag under long writers
 *   is its price.
 * - Transactions are delivered in the order their ids were assigned (their first write), which can
 *   differ from commit order; harmless, as every change is only a notice to converge its keys.
 * - A transaction with more rows than a poll reads arrives in parts (the contract's "whole" gives
 *   way to bounded memory): each earlier part carries a position inside the transaction,
 *   `<generation>:<txid>:<last id delivered>`, the last part txid + 1. Positions still increase
 *   strictly with every delivery (the CDC reader skips a batch whose position is not past the
 *   last), and resuming from a part replays nothing of it: the transaction is finished, its rows fixed.
 */
import pg from 'pg';
import { CdcSetupError, DatabaseError, PositionLostError } from '../../errors/index.js';
import type { ChangeSource, ChangeSourceOptions, ChangeStream, ChangeStreamHandler } from '../change-source.js';
import {
  Delivery, POLL_BATCH_ROWS, PollingStream, StreamedTables, changeTableName, changesOf, keyTextSql, newGeneration, notSetUp,
  triggerBaseName, triggerName, triggerPrefix, validatePollingOptions, type ChangeRow, type PollingCycle, type TriggerEvent,
} from '../polling-source-base.js';
import type { Database } from '../dialect.js';
import type { PortableValue, ShapeColumn, TableShape } from '../types.js';
import { LOSSLESS_TYPES, SESSION_OPTIONS, parsePostgresUrl, serverOptions, type PostgresConnectionSettings } from './postgres-connection.js';
import { translatePostgresError, type ErrorContext } from './postgres-errors.js';
import { normalizeTimestamp, normalizeValue, quoteIdentifier } from './postgres-sql.js';

const EVENTS: readonly TriggerEvent[] = ['insert', 'update', 'delete', 'truncate'];
/** Rows deleted per statement by acknowledge. */
const ACKNOWLEDGE_BATCH = 10_000;
const GENERATION_COMMENT = /^rowsync change table; generation ([0-9a-f]+)$/;
const POSITION = /^([0-9a-f]+):(\d+)(?::(\d+))?$/;
/** How long setup waits for a table lock (CREATE TRIGGER blocks writers while it waits). */
const SETUP_LOCK_TIMEOUT = '30s';

/**
 * Key column base types whose `::text` does not depend on session settings (DateStyle,
 * IntervalStyle, extra_float_digits, TimeZone). Any other type (float, interval, ranges, arrays)
 * makes the trigger function run with the dialect's own session settings (a SET clause, which costs
 * about 15% of an insert's time, measured: so only where needed).
 */
const SESSION_INDEPENDENT_TEXT = new Set([
  'text', 'varchar', 'bpchar', 'name', 'citext', 'char', 'json', 'jsonb', 'uuid', 'inet', 'cidr', 'macaddr', 'macaddr8',
  'bit', 'varbit', 'xml', 'oid', 'pg_lsn', 'tsvector', 'tsquery', 'time', 'timetz',
]);

/** The dialect's session settings (postgres-connection.ts), as function SET clauses. */
const FIXED_SESSION_CLAUSES =
  `SET "DateStyle" TO 'ISO, YMD' SET "IntervalStyle" TO 'postgres' SET extra_float_digits TO 3 ` +
  `SET "TimeZone" TO 'UTC' SET bytea_output TO 'hex'`;

// ------------------------------------------------------------------------------------------------
// positions: '<generation>:<horizon>[:<after id>]'

/**
 * Every change of the transactions below `horizon` was delivered, and of transaction `horizon`
 * itself the rows up to id `afterId` (0: none; a transaction delivered in parts).
 */
interface PostgresPosition {
  readonly generation: string;
  readonly horizon: bigint;
  readonly afterId: bigint;
}

function formatPosition(position: PostgresPosition): string {
  const base = `${position.generation}:${position.horizon}`;
  return position.afterId > 0n ? `${base}:${position.afterId}` : base;
}

function parsePosition(text: string): PostgresPosition | undefined {
  const match = POSITION.exec(text);
  return match ? { generation: match[1]!, horizon: BigInt(match[2]!), afterId: BigInt(match[3] ?? '0') } : undefined;
}

// ------------------------------------------------------------------------------------------------
// key rendering (inside the trigger functions) and decoding (in the reader)

interface KeyColumn {
  readonly column: ShapeColumn;
  /** The column's type, or a domain's base type (`timestamptz`, `int8`, ...). */
  readonly baseType: string;
  /** pg_type.typtype of that type ('e' for an enum). */
  readonly typeType: string;
}

function needsFixedSession(key: KeyColumn): boolean {
  if (key.column.kind === 'float') return true;
  return key.column.kind === 'text' && key.typeType !== 'e' && !SESSION_INDEPENDENT_TEXT.has(key.baseType);
}

/** `'...'` that means the same under any standard_conforming_strings. */
function textLiteral(text: string): string {
  return `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * The exact text of a key column of `NEW` or `OLD` (see polling-source-base.ts). Dates and
 * timestamps are formatted explicitly, so the common key types need no fixed session settings.
 */
function keyElementSql(key: KeyColumn, row: 'NEW' | 'OLD'): string {
  const c = `${row}.${quoteIdentifier(key.column.name)}`;
  switch (key.column.kind) {
    case 'integer':
    case 'boolean':
    case 'float':
    case 'uuid':
    case 'time':
      return `${c}::text`;
    case 'decimal':
      return `${c}::numeric::text`;
    case 'binary':
      return `encode(${c}::bytea, 'hex')`;
    case 'text':
    case 'json':
      return `encode(convert_to(${c}::text, 'UTF8'), 'hex')`;
    case 'date': {
      const value = `${c}::date`;
      return (
        `(CASE WHEN isfinite(${value}) THEN to_char(${value}, 'YYYY-MM-DD') || ` +
        `CASE WHEN ${value} < '0001-01-01'::date THEN ' BC' ELSE '' END ELSE ${value}::text END)`
      );
    }
    case 'datetime': {
      // An instant as its UTC wall time, whatever the writer's TimeZone (the dialect reads it so).
      const value = key.baseType === 'timestamptz' ? `(${c} AT TIME ZONE 'UTC')` : `${c}::timestamp`;
      return (
        `(CASE WHEN isfinite(${value}) THEN to_char(${value}, 'YYYY-MM-DD HH24:MI:SS.US') || ` +
        `CASE WHEN ${value} < '0001-01-01 00:00:00'::timestamp THEN ' BC' ELSE '' END ELSE ${value}::text END)`
      );
    }
    default: {
      const unreachable: never = key.column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/** A recorded element -> the value the PostgreSQL dialect's reads return for the column. */
export function decodePostgresKeyElement(column: ShapeColumn, element: string): PortableValue {
  switch (column.kind) {
    case 'integer': {
      // pg returns int8 as its text (LOSSLESS_TYPES), int2/int4 as numbers.
      const digits = BigInt(element).toString();
      const number = Number(digits);
      return column.nativeType === 'bigint' || !Number.isSafeInteger(number) ? digits : number;
    }
    case 'boolean':
      if (element !== 'true' && element !== 'false') throw new Error(`not a boolean: ${element}`);
      return element === 'true';
    case 'float':
      return Number(element);
    case 'binary':
      return Buffer.from(element, 'hex');
    case 'text':
    case 'json':
      return Buffer.from(element, 'hex').toString('utf8');
    case 'datetime':
      return normalizeTimestamp(element);
    case 'decimal':
    case 'uuid':
    case 'date':
    case 'time':
      return normalizeValue(column, element);
    default: {
      const unreachable: never = column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// a connection of the source's own

/** One pg.Client (not the pool): a known backend pid, a transaction for setup, failures seen. */
class PostgresSession {
  private constructor(
    private readonly client: pg.Client,
    private readonly errorContext: ErrorContext,
    readonly pid: number,
  ) {}

  static async open(options: ChangeSourceOptions, settings: PostgresConnectionSettings, role: string): Promise<PostgresSession> {
    const errorContext: ErrorContext = {
      connectionName: options.connectionName, host: settings.host, port: settings.port,
    };
    const client = new pg.Client({
      ...serverOptions(settings),
      types: LOSSLESS_TYPES,
      options: SESSION_OPTIONS,
      // Findable in pg_stat_activity: which pipeline's reader this is.
      application_name: `${settings.applicationName} ${role} ${options.pipeline}`.slice(0, 63),
      connectionTimeoutMillis: 20_000,
    });
    // A connection killed while idle emits 'error'; unheard, it would end the process.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw translatePostgresError(error, errorContext);
    }
    const pid = (client as unknown as { processID?: number }).processID ?? 0;
    return new PostgresSession(client, errorContext, pid);
  }

  /** Calls `listener` when the connection fails while no query runs (terminated, server gone). */
  onError(listener: (error: Error) => void): void {
    this.client.on('error', (error: unknown) => listener(translatePostgresError(error, this.errorContext)));
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<unknown[][]> {
    try {
      const result = await this.client.query<unknown[]>({ text: sql, values: params as unknown[], rowMode: 'array' });
      return result.rows;
    } catch (error) {
      throw translatePostgresError(error, this.errorContext);
    }
  }

  /** Runs `work` in one transaction (rolled back when it throws). */
  async transaction<T>(work: () => Promise<T>): Promise<T> {
    await this.query('BEGIN');
    try {
      const result = await work();
      await this.query('COMMIT');
      return result;
    } catch (error) {
      await this.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

// ------------------------------------------------------------------------------------------------
// the source

interface ExistingTrigger {
  readonly name: string;
  readonly table: string;
  /** pg_trigger.tgenabled: 'O' origin, 'A' always, 'R' replica, 'D' disabled. */
  readonly enabled: string;
  readonly functionName: string;
  readonly functionBody: string;
}

interface TriggerPlan {
  readonly table: string;
  readonly functionName: string;
  readonly body: string;
  readonly fixedSession: boolean;
}

export class PostgresPollingSource implements ChangeSource {
  readonly mode = 'polling' as const;
  private readonly settings: PostgresConnectionSettings;
  private readonly changeTable: string;

  constructor(private readonly options: ChangeSourceOptions) {
    validatePollingOptions(options);
    this.settings = parsePostgresUrl(options.url, options.connectionName);
    this.changeTable = changeTableName(options.pipeline);
  }

  /**
   * Checks that setup was done and is current (change table, every trigger enabled and calling the
   * function setup would create now), that every streamed table exists with a primary key
   * (`SchemaError`), the server version (xid8 needs 13) and SELECT and DELETE on the change table.
   */
  async preflight(): Promise<void> {
    const tables = await this.describeTables();
    await this.withSession('setup', async (session) => {
      const [version] = await session.query(`SELECT current_setting('server_version_num')::int`);
      if (Number(version?.[0]) < 130000) {
        throw new CdcSetupError(
          `connection ${this.options.connectionName}: polling CDC needs PostgreSQL 13 or later (xid8, pg_current_xact_id)`,
          { subject: 'server_version' },
        );
      }
      await this.checkSetup(session, tables);
      const [privileges] = await session.query(
        `SELECT has_table_privilege($1::regclass, 'SELECT'), has_table_privilege($1::regclass, 'DELETE')`,
        [this.qualified(this.changeTable)],
      );
      for (const [index, privilege] of ['SELECT', 'DELETE'].entries()) {
        if (privileges?.[index] !== true) {
          throw new CdcSetupError(
            `connection ${this.options.connectionName}: ${privilege} on ${this.changeTable} is needed to ` +
              `${privilege === 'SELECT' ? 'read changes' : 'drop acknowledged changes'}; GRANT it to the connection's role`,
            { subject: privilege },
          );
        }
      }
    });
  }

  /**
   * In one transaction: the change table if missing, the trigger function and triggers of every
   * table whose triggers are missing, disabled or out of date, and drops this pipeline's triggers and
   * functions on tables it no longer streams. Needs CREATE on the schema and ownership of the tables.
   */
  async setup(): Promise<void> {
    const tables = await this.describeTables();
    await this.withSession('setup', async (session) => {
      const plans = await this.plans(session, tables);
      await session.transaction(async () => {
        await session.query(`SET LOCAL lock_timeout = '${SETUP_LOCK_TIMEOUT}'`);
        const table = this.qualified(this.changeTable);
        if ((await this.generation(session)) === undefined) {
          await session.query(
            `CREATE TABLE ${table} (` +
              'id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ' +
              'txid xid8 NOT NULL DEFAULT pg_current_xact_id(), ' +
              'table_name text NOT NULL, ' +
              // NULL: the whole table (TRUNCATE).
              'row_key text, ' +
              'old_key text, ' +
              // clock_timestamp: when the row changed (now() would be the transaction's start).
              'changed_at timestamptz(3) NOT NULL DEFAULT clock_timestamp())',
          );
          await session.query(`COMMENT ON TABLE ${table} IS ${textLiteral(`rowsync change table; generation ${newGeneration()}`)}`);
          await session.query(`CREATE INDEX ${quoteIdentifier(`${this.changeTable}_tx`)} ON ${table} (txid, id)`);
        }
        const existing = await this.existingTriggers(session);
        const wanted = new Map(plans.flatMap((plan) => EVENTS.map((event) => [triggerName(this.options.pipeline, plan.table, event), plan.table] as const)));
        for (const trigger of existing.values()) {
          if (wanted.get(trigger.name) === trigger.table) continue;
          await session.query(`DROP TRIGGER IF EXISTS ${quoteIdentifier(trigger.name)} ON ${this.qualified(trigger.table)}`);
        }
        for (const plan of plans) {
          if (this.isCurrent(plan, existing)) continue;
          await session.query(this.functionSql(plan));
          for (const event of EVENTS) {
            const name = quoteIdentifier(triggerName(this.options.pipeline, plan.table, event));
            const target = this.qualified(plan.table);
            const timing = event === 'truncate' ? 'AFTER TRUNCATE' : `AFTER ${event.toUpperCase()}`;
            const level = event === 'truncate' ? 'FOR EACH STATEMENT' : 'FOR EACH ROW';
            await session.query(`DROP TRIGGER IF EXISTS ${name} ON ${target}`);
            await session.query(`CREATE TRIGGER ${name} ${timing} ON ${target} ${level} EXECUTE FUNCTION ${this.qualified(plan.functionName)}()`);
            await session.query(`ALTER TABLE ${target} ENABLE ALWAYS TRIGGER ${name}`);
          }
        }
        await this.dropStaleFunctions(session, new Set(plans.map((plan) => plan.functionName)));
      });
    });
  }

  /** Drops this pipeline's triggers (on any table), their functions, then the change table; one transaction. */
  async teardown(): Promise<void> {
    await this.withSession('setup', (session) =>
      session.transaction(async () => {
        await session.query(`SET LOCAL lock_timeout = '${SETUP_LOCK_TIMEOUT}'`);
        for (const trigger of (await this.existingTriggers(session)).values()) {
          await session.query(`DROP TRIGGER IF EXISTS ${quoteIdentifier(trigger.name)} ON ${this.qualified(trigger.table)}`);
        }
        await this.dropStaleFunctions(session, new Set());
        await session.query(`DROP TABLE IF EXISTS ${this.qualified(this.changeTable)}`);
      }),
    );
  }

  /**
   * The lower of the current xmin (every transaction from now on has an id at or above it) and the
   * oldest transaction still in the change table: changes recorded since setup (or the last
   * acknowledge) but before a first start are delivered too, rather than skipped.
   */
  async currentPosition(): Promise<string> {
    return this.withSession('setup', async (session) => {
      const generation = await this.requireGeneration(session);
      const [row] = await session.query(
        `SELECT least(pg_snapshot_xmin(pg_current_snapshot()), (SELECT min(txid) FROM ${this.qualified(this.changeTable)}))::text`,
      );
      return formatPosition({ generation, horizon: BigInt(String(row![0])), afterId: 0n });
    });
  }

  /** Polling positions are lost only with the change table; `start` tells which (see there). */
  recover(): Promise<string> {
    return this.currentPosition();
  }

  /** By horizon, then by the part of the horizon's transaction delivered. */
  comparePositions(a: string, b: string): number {
    const left = parsePosition(a);
    const right = parsePosition(b);
    if (!left || !right) throw new RangeError(`not a PostgreSQL polling position: ${JSON.stringify(left ? b : a)}`);
    if (left.horizon !== right.horizon) return left.horizon < right.horizon ? -1 : 1;
    return left.afterId < right.afterId ? -1 : left.afterId > right.afterId ? 1 : 0;
  }

  /**
   * Streams from `from`. `PositionLostError` when `from` is not a position of this change table
   * (another mode's position, or one from before the change table was created again: the changes in
   * between were never recorded); `CdcSetupError` when setup is missing or out of date.
   */
  async start(from: string, handler: ChangeStreamHandler): Promise<ChangeStream> {
    const tables = await this.describeTables();
    const generation = await this.withSession('setup', (session) => this.checkSetup(session, tables));
    const position = parsePosition(from);
    if (!position || position.generation !== generation) {
      throw new PositionLostError(
        `pipeline ${this.options.pipeline}: position ${JSON.stringify(from.slice(0, 200))} is not a position of the current ` +
          `change table ${this.changeTable} (it was created again, or the position belongs to another CDC mode)`,
        { position: from, subject: this.changeTable },
      );
    }
    const session = await PostgresSession.open(this.options, this.settings, 'polling');
    const reader = new PostgresChangeReader(
      session, this.options.database, this.qualified(this.changeTable), tables, new Delivery(handler, this.options.heartbeatMs, from), position,
    );
    const stream = new PollingStream(reader, this.options.pollIntervalMs, session.pid);
    session.onError((error) => stream.fail(error));
    return stream;
  }

  // ----------------------------------------------------------------------------------------------

  private describeTables(): Promise<StreamedTables> {
    return StreamedTables.describe(this.options.database, this.options.tables, decodePostgresKeyElement);
  }

  private qualified(name: string): string {
    return `${quoteIdentifier(this.settings.schema)}.${quoteIdentifier(name)}`;
  }

  /** What each table's trigger function should be now: its key columns' base types decide the rendering. */
  private async plans(session: PostgresSession, tables: StreamedTables): Promise<TriggerPlan[]> {
    const plans: TriggerPlan[] = [];
    for (const table of this.options.tables) {
      const shape = tables.shape(table)!;
      const rows = await session.query(
        `SELECT a.attname, bt.typname, bt.typtype
           FROM pg_catalog.pg_attribute a
           JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
           JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
          WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
        [this.qualified(table)],
      );
      const types = new Map(rows.map(([name, base, type]) => [String(name), { baseType: String(base), typeType: String(type) }]));
      const keys = shape.keyIndexes.map((index): KeyColumn => {
        const column = shape.columns[index]!;
        const type = types.get(column.name) ?? { baseType: '', typeType: 'b' };
        return { column, ...type };
      });
      const fixedSession = keys.some(needsFixedSession);
      plans.push({ table, functionName: triggerBaseName(this.options.pipeline, table), body: this.functionBody(shape, keys, fixedSession), fixedSession });
    }
    return plans;
  }

  private functionBody(shape: TableShape, keys: readonly KeyColumn[], fixedSession: boolean): string {
    const key = (row: 'NEW' | 'OLD') => keyTextSql(keys.map((column) => keyElementSql(column, row)), (parts) => `(${parts.join(' || ')})`);
    const table = textLiteral(shape.table);
    const insert = `INSERT INTO ${this.qualified(this.changeTable)}`;
    return [
      '',
      'BEGIN',
      // The key text of the columns this function was made for: preflight compares the whole body.
      ...(fixedSession ? ['  -- key text printed under the fixed session settings of the SET clauses'] : []),
      `  IF current_setting('rowsync.applying', true) = 'on' THEN RETURN NULL; END IF;`,
      `  IF TG_OP = 'INSERT' THEN`,
      `    ${insert} (table_name, row_key) VALUES (${table}, ${key('NEW')});`,
      `  ELSIF TG_OP = 'UPDATE' THEN`,
      // The old key only when the UPDATE changed it, compared as bytes.
      `    ${insert} (table_name, row_key, old_key) VALUES (${table}, ${key('NEW')}, NULLIF(${key('OLD')} COLLATE "C", ${key('NEW')}));`,
      `  ELSIF TG_OP = 'DELETE' THEN`,
      `    ${insert} (table_name, row_key) VALUES (${table}, ${key('OLD')});`,
      '  ELSE',
      `    ${insert} (table_name, row_key) VALUES (${table}, NULL);`,
      '  END IF;',
      '  RETURN NULL;',
      'END',
      '',
    ].join('\n');
  }

  private functionSql(plan: TriggerPlan): string {
    let tag = '$rowsync$';
    for (let n = 1; plan.body.includes(tag); n += 1) tag = `$rowsync_${n}$`;
    return (
      `CREATE OR REPLACE FUNCTION ${this.qualified(plan.functionName)}() RETURNS trigger LANGUAGE plpgsql ` +
      `${plan.fixedSession ? `${FIXED_SESSION_CLAUSES} ` : ''}AS ${tag}${plan.body}${tag}`
    );
  }

  private isCurrent(plan: TriggerPlan, existing: ReadonlyMap<string, ExistingTrigger>): boolean {
    return EVENTS.every((event) => {
      const trigger = existing.get(triggerName(this.options.pipeline, plan.table, event));
      return (
        trigger !== undefined && trigger.table === plan.table && trigger.enabled === 'A' &&
        trigger.functionName === plan.functionName && trigger.functionBody === plan.body
      );
    });
  }

  /** This pipeline's triggers in the schema, by name. */
  private async existingTriggers(session: PostgresSession): Promise<Map<string, ExistingTrigger>> {
    const prefix = triggerPrefix(this.options.pipeline);
    const rows = await session.query(
      `SELECT t.tgname, c.relname, t.tgenabled::text, p.proname, p.prosrc
         FROM pg_catalog.pg_trigger t
         JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
        WHERE n.nspname = $1 AND NOT t.tgisinternal AND starts_with(t.tgname, $2)`,
      [this.settings.schema, prefix],
    );
    const triggers = new Map<string, ExistingTrigger>();
    for (const [name, table, enabled, functionName, functionBody] of rows) {
      triggers.set(String(name), {
        name: String(name), table: String(table), enabled: String(enabled), functionName: String(functionName), functionBody: String(functionBody),
      });
    }
    return triggers;
  }

  /** Drops this pipeline's trigger functions other than `keep` (their triggers are gone already). */
  private async dropStaleFunctions(session: PostgresSession, keep: ReadonlySet<string>): Promise<void> {
    const rows = await session.query(
      `SELECT p.proname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = $1 AND starts_with(p.proname, $2) AND p.prorettype = 'pg_catalog.trigger'::regtype AND p.pronargs = 0`,
      [this.settings.schema, triggerPrefix(this.options.pipeline)],
    );
    for (const [name] of rows) {
      if (!keep.has(String(name))) await session.query(`DROP FUNCTION IF EXISTS ${this.qualified(String(name))}()`);
    }
  }

  /** The change table's generation, or undefined when it does not exist. */
  private async generation(session: PostgresSession): Promise<string | undefined> {
    const rows = await session.query(
      `SELECT obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'`,
      [this.settings.schema, this.changeTable],
    );
    if (rows.length === 0) return undefined;
    const match = GENERATION_COMMENT.exec(String(rows[0]![0] ?? ''));
    if (!match) {
      throw notSetUp(this.options.pipeline, `table ${this.changeTable} is not a rowsync change table (its comment was changed)`, this.changeTable);
    }
    return match[1]!;
  }

  private async requireGeneration(session: PostgresSession): Promise<string> {
    const generation = await this.generation(session);
    if (generation === undefined) {
      throw notSetUp(this.options.pipeline, `change table ${this.changeTable} does not exist in schema ${this.settings.schema}`, this.changeTable);
    }
    return generation;
  }

  /** The change table and every trigger exist, enabled, as setup would create them now; returns the generation. */
  private async checkSetup(session: PostgresSession, tables: StreamedTables): Promise<string> {
    const generation = await this.requireGeneration(session);
    const existing = await this.existingTriggers(session);
    for (const plan of await this.plans(session, tables)) {
      for (const event of EVENTS) {
        const name = triggerName(this.options.pipeline, plan.table, event);
        const trigger = existing.get(name);
        if (!trigger || trigger.table !== plan.table) throw notSetUp(this.options.pipeline, `trigger ${name} on table ${plan.table} does not exist`, name);
        // Disabled, or enabled only ORIGIN / REPLICA: it would miss some sessions' writes.
        if (trigger.enabled !== 'A') throw notSetUp(this.options.pipeline, `trigger ${name} on table ${plan.table} is not enabled ALWAYS`, name);
        if (trigger.functionName !== plan.functionName || trigger.functionBody !== plan.body) {
          throw notSetUp(this.options.pipeline, `trigger ${name} on table ${plan.table} is out of date (the table's key changed since setup)`, name);
        }
      }
    }
    return generation;
  }

  /** Runs `work` on a connection of its own; privilege errors become `CdcSetupError`. */
  private async withSession<T>(role: string, work: (session: PostgresSession) => Promise<T>): Promise<T> {
    const session = await PostgresSession.open(this.options, this.settings, role);
    try {
      return await work(session);
    } catch (error) {
      if (error instanceof DatabaseError && error.engineCode === '42501') {
        throw new CdcSetupError(
          `connection ${this.options.connectionName}, pipeline ${this.options.pipeline}: setup needs CREATE on schema ` +
            `${this.settings.schema} and ownership of every streamed table (${error.message})`,
          { subject: 'privileges', cause: error },
        );
      }
      throw error;
    } finally {
      await session.close();
    }
  }
}

/** Deletes the change rows the position says were delivered, in batches. */
async function deleteAcknowledged(database: Database, table: string, position: PostgresPosition): Promise<void> {
  for (;;) {
    const [row] = await database.execute(
      `WITH doomed AS (SELECT id FROM ${table} WHERE (txid, id) <= ($1::xid8, $2::int8) ORDER BY txid, id LIMIT ${ACKNOWLEDGE_BATCH}), ` +
        `deleted AS (DELETE FROM ${table} t USING doomed WHERE t.id = doomed.id RETURNING 1) ` +
        `SELECT count(*)::int AS deleted FROM deleted`,
      [position.horizon.toString(), position.afterId.toString()],
    );
    if (Number(row?.deleted ?? 0) < ACKNOWLEDGE_BATCH) return;
  }
}

// ------------------------------------------------------------------------------------------------
// the reader

class PostgresChangeReader implements PollingCycle {
  constructor(
    private readonly session: PostgresSession,
    /** The pool, for acknowledge (it may run while a poll is in flight on the session). */
    private readonly database: Database,
    private readonly changeTable: string,
    private readonly tables: StreamedTables,
    private readonly delivery: Delivery,
    private position: PostgresPosition,
  ) {}

  async poll(stopping: () => boolean): Promise<boolean> {
    // One statement, one snapshot: every transaction below its xmin has ended, and the rows of those
    // that committed are visible to the same snapshot.
    const result = await this.session.query(
      `WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
       SELECT horizon.xmin::text, c.txid::text, c.id::text, c.table_name, c.row_key, c.old_key,
              floor(extract(epoch FROM c.changed_at) * 1000)::int8::text
         FROM horizon
         LEFT JOIN LATERAL (
           SELECT * FROM ${this.changeTable}
            WHERE (txid, id) > ($1::xid8, $2::int8) AND txid < horizon.xmin
            ORDER BY txid, id LIMIT ${POLL_BATCH_ROWS}
         ) c ON true
        ORDER BY c.txid, c.id`,
      // Rows after (horizon, afterId): ids start at 1, so (H, 0) means "from transaction H on".
      [this.position.horizon.toString(), this.position.afterId.toString()],
    );
    const xmin = BigInt(String(result[0]![0]));
    const rows = result.filter((row) => row[1] !== null);
    const full = rows.length === POLL_BATCH_ROWS;

    let start = 0;
    while (start < rows.length) {
      if (stopping()) return false;
      const txid = BigInt(String(rows[start]![1]));
      let end = start;
      while (end < rows.length && BigInt(String(rows[end]![1])) === txid) end += 1;
      // The last transaction of a full batch may go on in the next batch.
      const complete = !(full && end === rows.length);
      const group = rows.slice(start, end).map(
        ([, , , table, key, oldKey, changedAt]): ChangeRow => ({
          table: String(table),
          key: key === null ? null : String(key),
          oldKey: oldKey === null ? null : String(oldKey),
          changedAtMs: Number(changedAt),
        }),
      );
      this.position = complete
        ? { generation: this.position.generation, horizon: txid + 1n, afterId: 0n }
        : { generation: this.position.generation, horizon: txid, afterId: BigInt(String(rows[end - 1]![2])) };
      const { changes, committedAt } = changesOf(group, this.tables);
      await this.delivery.transaction({
        position: formatPosition(this.position),
        changes,
        ...(committedAt === undefined ? {} : { committedAt }),
      });
      start = end;
    }
    if (full) return true;
    if (xmin > this.position.horizon) this.position = { generation: this.position.generation, horizon: xmin, afterId: 0n };
    if (stopping()) return false;
    await this.delivery.idle(formatPosition(this.position));
    return rows.length > 0;
  }

  /** Rows of another generation went with its table: nothing to delete. */
  async acknowledge(text: string): Promise<void> {
    const position = parsePosition(text);
    if (!position) throw new RangeError(`not a PostgreSQL polling position: ${JSON.stringify(text)}`);
    if (position.generation === this.position.generation) await deleteAcknowledged(this.database, this.changeTable, position);
  }

  close(): Promise<void> {
    return this.session.close();
  }
}

/** A position as one number that grows with the stream (metrics): its transaction id horizon. */
export function postgresPollingPositionNumber(text: string): number | undefined {
  const position = parsePosition(text);
  return position ? Number(position.horizon) : undefined;
}
