import { createHash } from 'node:crypto';
import { CdcSetupError, ConfigError, DatabaseError, PositionLostError } from '../../errors/index.js';
import type { ChangeSource, ChangeSourceOptions, ChangeStream, ChangeStreamHandler } from '../change-source.js';
import { parsePostgresUrl, type PostgresConnectionSettings } from './postgres-connection.js';
import type { ErrorContext } from './postgres-errors.js';
import {
  LogicalStream, engineCode, formatLsn, parseLsn, relationSignature, type KeyColumn, type LogicalSourceAccess, type StreamedTable,
} from './postgres-logical-stream.js';
import { quoteIdentifier } from './postgres-sql.js';

export { formatLsn, parseLsn } from './postgres-logical-stream.js';

/**
 * CDC from PostgreSQL logical replication (pgoutput, via pg-logical-replication): a slot and a
 * publication per pipeline, both named `replicationObjectName(pipeline, database, schema)`.
 *
 * What the log shows, in its place in the stream:
 * - INSERT / UPDATE / DELETE: keys, read from the raw text of the tuples (`portableKeyValue`, postgres-logical-stream.ts).
 * - TRUNCATE of a streamed table: `{ kind: 'reconcile', reason: 'truncate' }`.
 * - A schema change: pgoutput sends a Relation message before the first change that follows it; a
 *   Relation whose columns (names, types, typmods) or name differ from the last one seen (or, for
 *   the first one of a session, from the catalog when the stream started) gives
 *   `{ kind: 'reconcile', reason: 'schema' }`. A change that adds no column and changes no data
 *   (an index, a default) is not seen, and needs no reconcile.
 *
 * The slot only ever moves to positions passed to `ChangeStream.acknowledge` (`LogicalStream`, postgres-logical-stream.ts).
 */

/** PostgreSQL's NAMEDATALEN - 1: longer slot and publication names are refused (or truncated). */
const MAX_IDENTIFIER_BYTES = 63;
/** pgoutput `messages` (the heartbeat) needs PostgreSQL 14. */
const MIN_SERVER_VERSION = 140000;
/**
 * How long `start` waits for the slot to be released by a walsender that is going away (ours, after
 * a stop a moment ago: the server notices the closed socket within milliseconds) before it says
 * that another reader holds it.
 */
const SLOT_RELEASE_WAIT_MS = 3000;

/**
 * Slot and publication name of a pipeline: `rowsync_<pipeline>` in [a-z0-9_], at most 63 bytes.
 * When sanitising changed the name (case, other characters) or it had to be shortened, a short
 * hash of the pipeline name is appended, so that `Orders` and `orders` (or two long names with the
 * same first 63 bytes) do not share a slot.
 */
export function replicationObjectName(pipeline: string, database: string, schema: string): string {
  // Slot names are server-wide and publication names database-wide: the hash of where the pipeline
  // streams from keeps two installations (or two schemas of one database) with the same pipeline
  // name from sharing a slot.
  const hash = createHash('sha256').update(`${database}\u0000${schema}\u0000${pipeline}`, 'utf8').digest('hex').slice(0, 8);
  const sanitised = `rowsync_${pipeline}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return `${sanitised.slice(0, MAX_IDENTIFIER_BYTES - hash.length - 1)}_${hash}`;
}

interface SlotState {
  readonly plugin: string | null;
  readonly slotType: string;
  readonly database: string | null;
  /** Slot names are server-wide; a logical slot decodes one database. */
  readonly inThisDatabase: boolean;
  readonly activePid: number | null;
  readonly confirmedFlush: string | null;
  /** wal_status 'lost' (PG13+), `conflicting` (PG16+) or an `invalidation_reason` (PG17+). */
  readonly invalidated: boolean;
}

/** The logical-replication change source (mode 'logical'). */
export class PostgresLogicalSource implements ChangeSource, LogicalSourceAccess {
  readonly mode = 'logical' as const;
  /** Slot and publication name. */
  readonly objectName: string;
  private readonly settings: PostgresConnectionSettings;
  private readonly errorContext: ErrorContext;

  constructor(private readonly options: ChangeSourceOptions) {
    const where = `pipelines.${options.pipeline}`;
    if (options.tables.length === 0) {
      throw new ConfigError(`${where}: logical replication needs at least one table`, { subject: `${where}.tables` });
    }
    if (!Number.isInteger(options.heartbeatMs) || options.heartbeatMs < 1) {
      throw new ConfigError(`${where}.cdc.heartbeatMs must be a positive integer (got ${options.heartbeatMs})`, {
        subject: `${where}.cdc.heartbeatMs`,
      });
    }
    this.settings = parsePostgresUrl(options.url, options.connectionName);
    this.objectName = replicationObjectName(options.pipeline, this.settings.database ?? '', this.settings.schema);
    this.errorContext = {
      connectionName: options.connectionName,
      host: this.settings.host,
      port: this.settings.port,
    };
  }

  async preflight(): Promise<void> {
    await this.checkServer();
    const slot = await this.readSlot();
    if (!slot) {
      const { used, max } = await this.slotUsage();
      if (used >= max) {
        throw new CdcSetupError(
          `${this.where()}: replication slot ${this.objectName} does not exist and all ${max} slots of the server ` +
            `are in use: drop unused slots (pg_replication_slots) or raise max_replication_slots (restart needed), ` +
            `then run \`rowsync cdc setup --pipeline ${this.options.pipeline}\``,
          { subject: 'max_replication_slots' },
        );
      }
      // The publication outlives the slot only when the slot was dropped or lost under a pipeline that
      // was set up (teardown drops both): its changes since the checkpoint are gone, a lost position.
      if (await this.readPublication()) throw this.slotLostError('0/0', 'does not exist any more (dropped)');
      throw new CdcSetupError(
        `${this.where()}: replication slot ${this.objectName} does not exist: run \`rowsync cdc setup --pipeline ${this.options.pipeline}\``,
        { subject: this.objectName },
      );
    }
    this.checkSlotIsOurs(slot);
    if (slot.invalidated) throw this.slotLostError(slot.confirmedFlush ?? '0/0', 'has been invalidated (wal_status lost)');
    await this.checkPublication();
    await this.checkTables();
  }

  async setup(): Promise<void> {
    await this.checkServer();
    // Before anything is published: publishing deletes of a table whose deletes cannot carry a key
    // (REPLICA IDENTITY NOTHING, no primary key) makes PostgreSQL refuse the application's deletes.
    await this.checkTables();
    await this.ensurePublication();
    await this.ensureSlot();
  }

  async teardown(): Promise<void> {
    const slot = await this.readSlot();
    // A slot of that name in another database is not ours to drop.
    if (slot?.inThisDatabase) {
      if (slot.activePid !== null) throw this.slotInUseError(slot.activePid, 'teardown');
      try {
        await this.query('SELECT pg_drop_replication_slot($1)', [this.objectName]);
      } catch (error) {
        if (engineCode(error) === '55006') throw this.slotInUseError(undefined, 'teardown');
        if (engineCode(error) !== '42704') throw error; // 42704: dropped meanwhile
      }
    }
    // After the slot: a reader still streaming would fail on the missing publication.
    await this.query(`DROP PUBLICATION IF EXISTS ${quoteIdentifier(this.objectName)}`);
  }

  async currentPosition(): Promise<string> {
    const slot = await this.readSlot();
    if (!slot) {
      throw new CdcSetupError(
        `${this.where()}: replication slot ${this.objectName} does not exist: run \`rowsync cdc setup --pipeline ${this.options.pipeline}\``,
        { subject: this.objectName },
      );
    }
    this.checkSlotIsOurs(slot);
    if (slot.invalidated || slot.confirmedFlush === null) {
      throw this.slotLostError(slot.confirmedFlush ?? '0/0', 'has been invalidated (wal_status lost)');
    }
    // A new slot's confirmed position is where it was created: it retains everything after it.
    return formatLsn(parseLsn(slot.confirmedFlush));
  }

  async recover(): Promise<string> {
    const slot = await this.readSlot();
    if (slot?.invalidated && slot.inThisDatabase) {
      if (slot.activePid !== null) throw this.slotInUseError(slot.activePid, 'recover');
      try {
        await this.query('SELECT pg_drop_replication_slot($1)', [this.objectName]);
      } catch (error) {
        if (engineCode(error) !== '42704') throw error;
      }
    }
    await this.setup();
    return this.currentPosition();
  }

  comparePositions(a: string, b: string): number {
    const difference = parseLsn(a) - parseLsn(b);
    return difference < 0n ? -1 : difference > 0n ? 1 : 0;
  }

  async start(from: string, handler: ChangeStreamHandler): Promise<ChangeStream> {
    const fromLsn = parseLsn(from);
    const slot = await this.slotWhenReleased();
    if (!slot) throw this.slotLostError(from, 'does not exist any more (dropped)');
    this.checkSlotIsOurs(slot);
    if (slot.invalidated) throw this.slotLostError(from, 'has been invalidated (wal_status lost)');
    if (slot.activePid !== null) throw this.slotInUseError(slot.activePid, 'start');
    // The caller acknowledges only what it has made durable and resumes from it, so the slot can
    // never be ahead of `from`, unless the slot was recreated (by `cdc setup` after a loss) or read
    // by someone else: the server would then silently start after the changes we still need.
    if (slot.confirmedFlush !== null && parseLsn(slot.confirmedFlush) > fromLsn) {
      throw this.slotLostError(from, `has already confirmed ${slot.confirmedFlush}, past the position to resume from`);
    }
    const tables = await this.describeStreamedTables();
    const stream = new LogicalStream({
      source: this,
      options: this.options,
      settings: this.settings,
      errorContext: this.errorContext,
      objectName: this.objectName,
      tables,
      from: fromLsn,
      handler,
    });
    await stream.open();
    return stream;
  }

  // ---- catalog checks -------------------------------------------------------------------------

  /** Server version, wal_level, the role's REPLICATION attribute, the heartbeat function. */
  private async checkServer(): Promise<void> {
    const [row] = await this.query(
      `SELECT current_setting('server_version_num')::int AS version, current_setting('wal_level') AS wal_level,
              r.rolsuper OR r.rolreplication AS can_replicate, current_user AS role,
              has_function_privilege('pg_catalog.pg_logical_emit_message(boolean,text,text)', 'EXECUTE') AS can_emit
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
    );
    if (!row) throw new Error(`${this.where()}: the current role is not in pg_roles`);
    if (Number(row.version) < MIN_SERVER_VERSION) {
      throw new CdcSetupError(`${this.where()}: logical replication with rowsync needs PostgreSQL 14 or later (pgoutput messages)`, {
        subject: 'server_version',
      });
    }
    if (row.wal_level !== 'logical') {
      throw new CdcSetupError(
        `${this.where()}: wal_level is ${String(row.wal_level)}, logical replication needs logical: ` +
          `ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL`,
        { subject: 'wal_level' },
      );
    }
    if (row.can_replicate !== true) {
      throw new CdcSetupError(
        `${this.where()}: role ${String(row.role)} may not use replication slots: ` +
          `ALTER ROLE ${quoteIdentifier(String(row.role))} WITH REPLICATION (as a superuser)`,
        { subject: 'REPLICATION' },
      );
    }
    if (row.can_emit !== true) {
      throw new CdcSetupError(
        `${this.where()}: role ${String(row.role)} may not write heartbeats: ` +
          `GRANT EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text) TO ${quoteIdentifier(String(row.role))}`,
        { subject: 'pg_logical_emit_message' },
      );
    }
  }

  /**
   * Every streamed table exists with a primary key (`describeTable`: SchemaError), its key is not a
   * generated column (pgoutput does not send those), and its replica identity lets deletes and
   * key-changing updates carry the whole old primary key.
   */
  private async checkTables(): Promise<void> {
    const schemas = await Promise.all(this.options.tables.map((table) => this.options.database.describeTable(table)));
    const rows = await this.query(
      `SELECT c.relname AS table_name, c.relreplident AS identity,
              ARRAY(SELECT a.attname::text FROM pg_catalog.pg_index i
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                     WHERE i.indrelid = c.oid AND i.indisreplident) AS identity_columns,
              ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> '') AS generated_columns
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = ANY ($2::text[]) AND c.relkind IN ('r', 'p')`,
      [this.settings.schema, [...this.options.tables]],
    );
    const byName = new Map(rows.map((row) => [String(row.table_name), row]));
    for (const schema of schemas) {
      const row = byName.get(schema.name);
      if (!row) continue; // describeTable found it a moment ago: dropped meanwhile, the stream will say so
      const table = `${this.settings.schema}.${schema.name}`;
      const subject = `${this.options.connectionName}.${schema.name}`;
      const fix = `ALTER TABLE ${quoteIdentifier(this.settings.schema)}.${quoteIdentifier(schema.name)} REPLICA IDENTITY DEFAULT`;
      const generated = new Set(textArray(row.generated_columns));
      const generatedKey = schema.primaryKey.find((column) => generated.has(column));
      if (generatedKey !== undefined) {
        throw new CdcSetupError(
          `${this.where()}: primary key column ${generatedKey} of table ${table} is generated; pgoutput does not ` +
            `send generated columns, so changes would arrive without their key`,
          { subject: `${subject}.${generatedKey}` },
        );
      }
      if (row.identity === 'n') {
        throw new CdcSetupError(
          `${this.where()}: table ${table} has REPLICA IDENTITY NOTHING: its deletes cannot be streamed ` +
            `(and PostgreSQL refuses deletes of a published table without identity): ${fix}`,
          { subject },
        );
      }
      if (row.identity === 'i') {
        const identity = new Set(textArray(row.identity_columns));
        const missing = schema.primaryKey.filter((column) => !identity.has(column));
        if (missing.length > 0) {
          throw new CdcSetupError(
            `${this.where()}: the replica identity index of table ${table} lacks primary key column(s) ` +
              `${missing.join(', ')}: deletes would arrive without their primary key: ${fix}`,
            { subject },
          );
        }
      }
    }
  }

  /** The publication exists, publishes what we need and covers every streamed table. */
  private async checkPublication(): Promise<void> {
    const publication = await this.readPublication();
    const setup = `run \`rowsync cdc setup --pipeline ${this.options.pipeline}\``;
    if (!publication) {
      throw new CdcSetupError(`${this.where()}: publication ${this.objectName} does not exist: ${setup}`, { subject: this.objectName });
    }
    if (!publication.publishesEverything) {
      throw new CdcSetupError(
        `${this.where()}: publication ${this.objectName} does not publish insert, update, delete and truncate ` +
          `(through the partition root): ${setup}`,
        { subject: this.objectName },
      );
    }
    const missing = this.options.tables.filter((table) => !publication.allTables && !publication.tables.has(this.qualified(table)));
    if (missing.length > 0) {
      throw new CdcSetupError(
        `${this.where()}: publication ${this.objectName} does not include table(s) ${missing.join(', ')}: ${setup}`,
        { subject: this.objectName },
      );
    }
  }

  // ---- setup ----------------------------------------------------------------------------------

  private async ensurePublication(): Promise<void> {
    const name = quoteIdentifier(this.objectName);
    const tableList = this.options.tables
      .map((table) => `${quoteIdentifier(this.settings.schema)}.${quoteIdentifier(table)}`)
      .join(', ');
    // publish_via_partition_root: changes of a partitioned table arrive under its own name, not
    // under the names of its partitions (which are not streamed and would be ignored).
    const publishOptions = `publish = 'insert, update, delete, truncate', publish_via_partition_root = true`;
    let publication = await this.readPublication();
    if (!publication) {
      try {
        await this.runSetupStatement(`CREATE PUBLICATION ${name} FOR TABLE ${tableList} WITH (${publishOptions})`);
        return;
      } catch (error) {
        if (engineCode(error) !== '42710') throw error; // 42710: a concurrent setup created it
        publication = await this.readPublication();
        if (!publication) throw error;
      }
    }
    const wanted = new Set(this.options.tables.map((table) => this.qualified(table)));
    const sameTables = publication.tables.size === wanted.size && [...wanted].every((table) => publication.tables.has(table));
    if (!publication.allTables && !sameTables) await this.runSetupStatement(`ALTER PUBLICATION ${name} SET TABLE ${tableList}`);
    if (!publication.publishesEverything) await this.runSetupStatement(`ALTER PUBLICATION ${name} SET (${publishOptions})`);
  }

  private async ensureSlot(): Promise<void> {
    const slot = await this.readSlot();
    if (slot) {
      // An invalidated slot is left for `recover`, which the reader calls after a full reconcile.
      this.checkSlotIsOurs(slot);
      return;
    }
    try {
      // Waits for the transactions running now to finish (the slot's consistent point).
      await this.runSetupStatement(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [this.objectName]);
    } catch (error) {
      if (engineCode(error) === '42710') return; // a concurrent setup created it
      if (engineCode(error) === '53400') {
        throw new CdcSetupError(
          `${this.where()}: all replication slots of the server are in use: drop unused slots (pg_replication_slots) ` +
            `or raise max_replication_slots (restart needed)`,
          { subject: 'max_replication_slots', cause: error },
        );
      }
      throw error;
    }
  }

  /** A setup statement; a missing privilege becomes a CdcSetupError that shows the statement. */
  private async runSetupStatement(sql: string, params: readonly unknown[] = []): Promise<void> {
    try {
      await this.query(sql, params);
    } catch (error) {
      if (engineCode(error) === '42501') {
        throw new CdcSetupError(
          `${this.where()}: the role may not run \`${sql.replace('$1', `'${this.objectName}'`)}\` ` +
            `(publications need the tables' owner or a superuser; slots need REPLICATION): ` +
            `run it as such a role, then run \`rowsync cdc setup --pipeline ${this.options.pipeline}\` again`,
          { subject: sql.startsWith('SELECT') ? 'REPLICATION' : 'CREATE PUBLICATION', cause: error },
        );
      }
      throw error;
    }
  }

  // ---- catalog reads --------------------------------------------------------------------------

  /** The slot, read as JSON so that columns added by later versions are seen where they exist. */
  async readSlot(): Promise<SlotState | undefined> {
    const [row] = await this.query(
      `SELECT to_jsonb(s) AS slot, s.database = current_database() AS in_this_database
         FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1`,
      [this.objectName],
    );
    if (!row) return undefined;
    const slot = (typeof row.slot === 'string' ? JSON.parse(row.slot) : row.slot) as Record<string, unknown>;
    return {
      plugin: typeof slot.plugin === 'string' ? slot.plugin : null,
      slotType: String(slot.slot_type),
      database: typeof slot.database === 'string' ? slot.database : null,
      inThisDatabase: row.in_this_database === true,
      activePid: slot.active === true && typeof slot.active_pid === 'number' ? slot.active_pid : null,
      confirmedFlush: typeof slot.confirmed_flush_lsn === 'string' ? slot.confirmed_flush_lsn : null,
      invalidated:
        slot.wal_status === 'lost' ||
        slot.conflicting === true ||
        (typeof slot.invalidation_reason === 'string' && slot.invalidation_reason !== ''),
    };
  }

  /** The slot; while a walsender holds it, waits a moment for it to go (our own previous stream). */
  private async slotWhenReleased(): Promise<SlotState | undefined> {
    const deadline = Date.now() + SLOT_RELEASE_WAIT_MS;
    for (;;) {
      const slot = await this.readSlot();
      if (!slot || slot.activePid === null || Date.now() >= deadline) return slot;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private async slotUsage(): Promise<{ used: number; max: number }> {
    const [row] = await this.query(
      `SELECT (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int AS used, current_setting('max_replication_slots')::int AS max`,
    );
    return { used: Number(row?.used ?? 0), max: Number(row?.max ?? 0) };
  }

  private async readPublication(): Promise<
    { allTables: boolean; publishesEverything: boolean; tables: Set<string> } | undefined
  > {
    const [row] = await this.query(
      `SELECT p.puballtables, p.pubinsert AND p.pubupdate AND p.pubdelete AND p.pubtruncate AND p.pubviaroot AS everything,
              ARRAY(SELECT t.schemaname::text || '.' || t.tablename::text FROM pg_catalog.pg_publication_tables t
                     WHERE t.pubname = p.pubname) AS tables
         FROM pg_catalog.pg_publication p WHERE p.pubname = $1`,
      [this.objectName],
    );
    if (!row) return undefined;
    return { allTables: row.puballtables === true, publishesEverything: row.everything === true, tables: new Set(textArray(row.tables)) };
  }

  /** Oid, published columns and key columns (with their base types) of every streamed table. */
  async describeStreamedTables(): Promise<StreamedTable[]> {
    const catalog = await this.readTableCatalog(this.options.tables);
    return Promise.all(
      this.options.tables.map(async (name) => {
        const entry = catalog.get(name);
        return {
          name,
          oid: entry?.oid ?? 0,
          signature: entry?.signature,
          keyColumns: await this.describeKeyColumns(name, entry?.baseTypes),
        };
      }),
    );
  }

  /** Key columns of a table as it is now (`describeTable` throws SchemaError when it cannot stream). */
  async describeKeyColumns(table: string, knownBaseTypes?: ReadonlyMap<string, string>): Promise<KeyColumn[]> {
    const schema = await this.options.database.describeTable(table);
    const baseTypes = knownBaseTypes ?? (await this.readTableCatalog([table])).get(table)?.baseTypes ?? new Map<string, string>();
    return schema.primaryKey.map((name) => {
      const column = schema.columns.find((candidate) => candidate.name === name)!;
      return {
        name,
        baseType: baseTypes.get(name) ?? '',
        shape: { name, nativeType: column.nativeType, kind: column.kind, hashSite: 'sql', generated: column.generated },
      };
    });
  }

  private async readTableCatalog(
    tables: readonly string[],
  ): Promise<Map<string, { oid: number; signature: string; baseTypes: Map<string, string> }>> {
    const rows = await this.query(
      `SELECT c.oid AS table_oid, c.relname AS table_name, a.attname AS column_name, a.atttypid AS type_oid,
              a.atttypmod AS type_mod, a.attgenerated <> '' AS generated, bt.typname AS base_type
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
        WHERE n.nspname = $1 AND c.relname = ANY ($2::text[]) AND c.relkind IN ('r', 'p')
        ORDER BY c.relname, a.attnum`,
      [this.settings.schema, [...tables]],
    );
    const result = new Map<string, { oid: number; columns: { name: string; typeOid: number; typeMod: number }[]; baseTypes: Map<string, string> }>();
    for (const row of rows) {
      const name = String(row.table_name);
      let entry = result.get(name);
      if (!entry) {
        entry = { oid: Number(row.table_oid), columns: [], baseTypes: new Map() };
        result.set(name, entry);
      }
      entry.baseTypes.set(String(row.column_name), String(row.base_type));
      // pgoutput leaves generated columns out of its Relation messages (PostgreSQL 15-17 default).
      if (row.generated !== true) {
        entry.columns.push({ name: String(row.column_name), typeOid: Number(row.type_oid), typeMod: Number(row.type_mod) });
      }
    }
    return new Map(
      [...result].map(([name, entry]) => [
        name,
        { oid: entry.oid, signature: relationSignature(this.settings.schema, name, entry.columns), baseTypes: entry.baseTypes },
      ]),
    );
  }

  /** Slot names are server-wide: refuse a slot of another plugin or of another database. */
  private checkSlotIsOurs(slot: SlotState): void {
    if (slot.slotType !== 'logical' || slot.plugin !== 'pgoutput') {
      throw new CdcSetupError(
        `${this.where()}: replication slot ${this.objectName} exists but is a ${slot.slotType} slot ` +
          `(plugin ${slot.plugin ?? 'none'}), not a pgoutput logical slot: drop it or rename the pipeline`,
        { subject: this.objectName },
      );
    }
    if (!slot.inThisDatabase) {
      throw new CdcSetupError(
        `${this.where()}: replication slot ${this.objectName} belongs to database ${slot.database}; slot names are ` +
          `shared by every database of the server: give this pipeline another name`,
        { subject: this.objectName },
      );
    }
  }

  // ---- LogicalSourceAccess: what the stream uses ------------------------------------------------

  /** `connection <name> (postgres)`, the start of every message (never the URL). */
  where(): string {
    return `connection ${this.options.connectionName} (postgres)`;
  }

  slotLostError(position: string, what: string, cause?: unknown): PositionLostError {
    return new PositionLostError(
      `${this.where()}: replication slot ${this.objectName} ${what}: the changes after ${position} cannot be ` +
        `read from it; a full reconcile of pipeline ${this.options.pipeline} is needed, and recover() makes the slot usable again`,
      { position, subject: this.objectName, ...(cause === undefined ? {} : { cause }) },
    );
  }

  /** 55006: a slot serves one walsender at a time. Retryable: a dead holder goes within wal_sender_timeout. */
  slotInUseError(pid: number | undefined, action: string, cause?: unknown): DatabaseError {
    const holder = pid === undefined ? 'another process' : `process ${pid}`;
    return new DatabaseError(
      'DB_QUERY_FAILED',
      `${this.where()}: cannot ${action}: replication slot ${this.objectName} is in use by ${holder}: another reader ` +
        `holds the slot (a second rowsync reader of pipeline ${this.options.pipeline}, or a client that was not ` +
        `stopped); stop it, or wait for the server to drop a dead one (wal_sender_timeout)`,
      { connection: this.options.connectionName, retryable: true, engineCode: '55006', subject: this.objectName, ...(cause === undefined ? {} : { cause }) },
    );
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> {
    return this.options.database.execute(sql, params);
  }

  private qualified(table: string): string {
    return `${this.settings.schema}.${table}`;
  }
}

function textArray(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}
