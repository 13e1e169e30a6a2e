import type pg from 'pg';
import { ConfigError, DatabaseError, SchemaError } from '../../errors/index.js';
import { BucketAccumulator, ChecksumAccumulator, finishRowHash, keyIdentity } from '../canonical.js';
import type { DatabaseOptions } from '../create-database.js';
import { CHECKPOINTS_TABLE, CONFLICTS_TABLE, conflictRow } from '../conflicts-table.js';
import { bucketKeyColumn, planConditionalWrite, rangeList, type Database } from '../dialect.js';
import type {
  ApplyResult, BucketChecksum, ChangeSet, ConditionalApplyResult, ConflictRecord, ExpectedRow, KeyHash, KeyRange, KeyTuple,
  LoadReading, RangeChecksum, ReplicaLagReading, Row, ShapeColumn, TableSchema, TableShape, ValueKind,
} from '../types.js';
import { createPool, parsePostgresUrl, type PostgresConnectionSettings } from './postgres-connection.js';
import { translatePostgresError, type ErrorContext } from './postgres-errors.js';
import { PostgresIntrospector } from './postgres-introspector.js';
import {
  Params, isIntegerNative, keyColumns, keyOrderBy, keysPredicate, normalizeValue, quoteIdentifier, rangePredicate,
  readExpression, rowMd5Sql, rowNativeHashSql, toParam, withFilter,
} from './postgres-sql.js';

/** Keys per fetch/delete statement, and bind parameters per statement (protocol limit: 65535). */
const MAX_KEYS_PER_STATEMENT = 2000;
const MAX_KEY_PARAMS = 10_000;
const MAX_UPSERT_PARAMS = 60_000;
const MAX_UPSERT_ROWS = 1000;
/** Rows per FETCH from the cursor of a checksum that finishes row hashes in Node. */
const CURSOR_BATCH = 2000;

type Client = pg.PoolClient;

/** SQLSTATE undefined_table. */
const UNDEFINED_TABLE = '42P01';

/** The PostgreSQL implementation of `Database` (pg Pool, lossless per-pool type parsers, UTC session). */
export class PostgresDatabase implements Database {
  readonly engine = 'postgres' as const;
  readonly connectionName: string;
  private readonly settings: PostgresConnectionSettings;
  private readonly pool: pg.Pool;
  private readonly introspector: PostgresIntrospector;
  private readonly errorContext: ErrorContext;
  private readonly identityCache = new Map<string, Promise<Set<string>>>();
  /** The conflict log's table, made (and brought up to date) once per process. */
  private conflictsTable: Promise<void> | undefined;

  constructor(options: DatabaseOptions) {
    this.connectionName = options.connectionName;
    const poolSize = options.poolSize ?? 4;
    if (!Number.isInteger(poolSize) || poolSize < 1) {
      throw new ConfigError(`connections.${options.connectionName}.poolSize must be a positive integer (got ${poolSize})`, {
        subject: `connections.${options.connectionName}.poolSize`,
      });
    }
    this.settings = parsePostgresUrl(options.url, options.connectionName);
    this.pool = createPool(this.settings, poolSize);
    this.errorContext = {
      connectionName: options.connectionName,
      host: this.settings.host,
      port: this.settings.port,
    };
    this.introspector = new PostgresIntrospector(
      (sql, params) => this.queryArrays(sql, params),
      this.settings.schema,
      options.connectionName,
    );
  }

  /** Floats and JSON are hashed in Node (see canonical.ts); everything else renders exactly in SQL. */
  canRenderInSql(kind: ValueKind): boolean {
    return kind !== 'float' && kind !== 'json';
  }

  quoteIdentifier(name: string): string {
    return quoteIdentifier(name);
  }

  listTables(): Promise<string[]> {
    return this.introspector.listTables();
  }

  describeTable(table: string, schema?: string): Promise<TableSchema> {
    this.identityCache.delete(`${schema ?? this.settings.schema}\u0000${table}`);
    return this.introspector.describeTable(table, schema);
  }

  async checkFilter(shape: TableShape): Promise<void> {
    if (shape.filter === undefined) return;
    try {
      // A bind parameter makes it an extended-protocol statement: one statement only, so a filter
      // with a `;` in it fails here instead of running a second statement.
      await this.pool.query({ text: `SELECT 1 FROM ${this.tableName(shape)} WHERE ${withFilter(shape, 'TRUE')} LIMIT $1`, values: [0] });
    } catch (error) {
      const translated = translatePostgresError(error, this.errorContext);
      if (translated instanceof DatabaseError && translated.retryable) throw translated;
      throw new SchemaError(
        'INVALID_FILTER',
        `table ${shape.table} on connection ${this.connectionName}: the filter (${shape.filter}) is not a valid condition here: ` +
          `${String((error as Error).message)}`,
        { subject: `${this.connectionName}.${shape.table}`, cause: translated },
      );
    }
  }

  async readLoad(): Promise<LoadReading> {
    const rows = await this.queryArrays(
      `SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend'`,
      [],
    );
    return { measure: 'active backends', value: Number(rows[0]?.[0] ?? 0) };
  }

  /**
   * On a standby, the age of the last transaction it replayed; 0 while it has replayed all the WAL
   * it received (an idle primary sends no transactions, and the age alone would grow without lag).
   * Null when it has replayed nothing yet.
   */
  async readReplicaLag(): Promise<ReplicaLagReading> {
    const rows = await this.queryArrays(
      `SELECT pg_catalog.pg_is_in_recovery(),
              CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN NULL
                   WHEN pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() THEN 0
                   ELSE extract(epoch FROM now() - pg_catalog.pg_last_xact_replay_timestamp()) END`,
      [],
    );
    const [inRecovery, seconds] = rows[0] ?? [false, null];
    if (inRecovery !== true) return { replica: false };
    return { replica: true, measure: 'replay lag', seconds: seconds === null || seconds === undefined ? null : Math.max(0, Number(seconds)) };
  }

  async countRange(shape: TableShape, range: KeyRange): Promise<number> {
    const params = new Params();
    const rows = await this.queryArrays(
      `SELECT count(*) FROM ${this.tableName(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range, params))}`,
      params.values,
    );
    return Number(rows[0]?.[0] ?? 0);
  }

  async keyAtOffset(shape: TableShape, range: KeyRange, offset: number): Promise<KeyTuple | undefined> {
    const params = new Params();
    const columns = keyColumns(shape);
    const where = withFilter(shape, rangePredicate(shape, range, params));
    const rows = await this.queryArrays(
      `SELECT ${columns.map(readExpression).join(', ')} FROM ${this.tableName(shape)} WHERE ${where} ` +
        `ORDER BY ${keyOrderBy(shape)} LIMIT 1 OFFSET ${params.add(Math.max(0, Math.trunc(offset)))}`,
      params.values,
    );
    const row = rows[0];
    return row === undefined ? undefined : columns.map((column, index) => normalizeValue(column, row[index]));
  }

  async fetchRange(shape: TableShape, range: KeyRange, limit: number): Promise<Row[]> {
    const params = new Params();
    const where = withFilter(shape, rangePredicate(shape, range, params));
    const rows = await this.queryArrays(
      `SELECT ${this.selectList(shape)} FROM ${this.tableName(shape)} WHERE ${where} ` +
        `ORDER BY ${keyOrderBy(shape)} LIMIT ${params.add(Math.max(0, Math.trunc(limit)))}`,
      params.values,
    );
    return rows.map((row) => this.toRow(shape, row));
  }

  async rowHashes(shape: TableShape, range: KeyRange | readonly KeyRange[], limit: number): Promise<KeyHash[]> {
    const keys = shape.keyIndexes.map((index) => shape.columns[index]!);
    const sqlColumns = shape.columns.filter((column) => column.hashSite === 'sql');
    const nodeColumns = shape.columns.filter((column) => column.hashSite === 'node');
    const params = new Params();
    const ranges = rangeList(range);
    // Several ranges: a BitmapOr of index range scans, then a sort of the (few) rows they hold.
    const where = withFilter(shape, ranges.length === 0 ? 'FALSE' : ranges.map((part) => `(${rangePredicate(shape, part, params)})`).join(' OR '));
    const rows = await this.queryArrays(
      `SELECT ${[...keys.map(readExpression), rowMd5Sql(sqlColumns), ...nodeColumns.map(readExpression)].join(', ')} ` +
        `FROM ${this.tableName(shape)} WHERE ${where} ORDER BY ${keyOrderBy(shape)} LIMIT ${params.add(Math.max(0, Math.trunc(limit)))}`,
      params.values,
    );
    return rows.map((raw) => {
      const key = keys.map((column, index) => normalizeValue(column, raw[index]));
      return { key, hash: finishRowHash(String(raw[keys.length]), nodeColumns, raw, keys.length + 1, normalizeValue) };
    });
  }

  async fetchByKeys(shape: TableShape, keys: readonly KeyTuple[]): Promise<Row[]> {
    const wanted = new Set(keys.map((key) => keyIdentity(shape, key)));
    const result: Row[] = [];
    for (const batch of this.keyBatches(shape, keys)) {
      const params = new Params();
      const where = withFilter(shape, keysPredicate(shape, batch, params));
      const rows = await this.queryArrays(
        `SELECT ${this.selectList(shape)} FROM ${this.tableName(shape)} WHERE ${where}`,
        params.values,
      );
      for (const raw of rows) {
        const row = this.toRow(shape, raw);
        // `=` may be looser than byte equality (citext, nondeterministic collations, a number
        // compared with a text key): keep only rows whose key is exactly one that was asked for.
        if (wanted.has(keyIdentity(shape, shape.keyIndexes.map((index) => row[index] ?? null)))) result.push(row);
      }
    }
    return result;
  }

  async checksumRange(shape: TableShape, range: KeyRange): Promise<RangeChecksum> {
    const sqlColumns = shape.columns.filter((column) => column.hashSite === 'sql');
    const nodeColumns = shape.columns.filter((column) => column.hashSite === 'node');
    const params = new Params();
    const where = withFilter(shape, rangePredicate(shape, range, params));
    if (nodeColumns.length === 0) {
      // sum(bigint) is numeric, exact. The row hash is referenced once: a flattened subquery
      // evaluates it once per reference.
      const rows = await this.queryArrays(
        `SELECT count(*), coalesce(sum(${checksumTermSql(shape, sqlColumns)}), 0)::text
           FROM ${this.tableName(shape)} WHERE ${where}`,
        params.values,
      );
      const row = rows[0] ?? [0, '0'];
      return { count: Number(row[0]), sum: String(row[1]) };
    }

    // Some columns are hashed in Node: the database returns the MD5 of the SQL part plus the raw node
    // columns, streamed through a cursor (a chunk may be large) in one REPEATABLE READ snapshot.
    const sql =
      `SELECT ${[rowMd5Sql(sqlColumns), ...nodeColumns.map(readExpression)].join(', ')} ` +
      `FROM ${this.tableName(shape)} WHERE ${where}`;
    const accumulator = new ChecksumAccumulator();
    await this.streamRows(sql, params.values, (row) => {
      accumulator.add(finishRowHash(String(row[0]), nodeColumns, row, 1, normalizeValue));
    });
    return accumulator.result();
  }

  /** Rows of `sql` as arrays through a cursor (a range may be large), in one REPEATABLE READ snapshot. */
  private async streamRows(sql: string, values: readonly unknown[], onRow: (row: unknown[]) => void): Promise<void> {
    await this.withClient(async (client) => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        await client.query({ text: `DECLARE rowsync_checksum NO SCROLL CURSOR FOR ${sql}`, values: values as unknown[] });
        for (;;) {
          const batch = await client.query<unknown[]>({
            text: `FETCH ${CURSOR_BATCH} FROM rowsync_checksum`,
            rowMode: 'array',
          });
          for (const row of batch.rows) onRow(row);
          if (batch.rows.length < CURSOR_BATCH) break;
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  async checksumBuckets(shape: TableShape, range: KeyRange, width: number): Promise<BucketChecksum[]> {
    const key = bucketKeyColumn(shape, width);
    const sqlColumns = shape.columns.filter((column) => column.hashSite === 'sql');
    const nodeColumns = shape.columns.filter((column) => column.hashSite === 'node');
    const params = new Params();
    const where = withFilter(shape, rangePredicate(shape, range, params));
    if (nodeColumns.length === 0) {
      // Integer `/` truncates toward zero like MySQL's DIV; a non-integer native type holding an
      // integer kind (a domain) divides as numeric with div(), which truncates the same way, exactly.
      const column = quoteIdentifier(key.name);
      const bucket = isIntegerNative(key)
        ? `(${column}::bigint / ${params.add(width)}::bigint)`
        : `div(${column}::numeric, ${params.add(width)}::numeric)`;
      // As in checksumRange, the row hash is referenced once per row.
      const rows = await this.queryArrays(
        `SELECT ${bucket}::text, count(*), coalesce(sum(${checksumTermSql(shape, sqlColumns)}), 0)::text
           FROM ${this.tableName(shape)} WHERE ${where} GROUP BY ${bucket} ORDER BY ${bucket}`,
        params.values,
      );
      return rows.map(([bucket, count, sum]) => ({ bucket: String(bucket), count: Number(count), sum: String(sum) }));
    }
    const sql =
      `SELECT ${[readExpression(key), rowMd5Sql(sqlColumns), ...nodeColumns.map(readExpression)].join(', ')} ` +
      `FROM ${this.tableName(shape)} WHERE ${where}`;
    const accumulator = new BucketAccumulator(width);
    await this.streamRows(sql, params.values, (row) => {
      accumulator.add(normalizeValue(key, row[0]), finishRowHash(String(row[1]), nodeColumns, row, 2, normalizeValue));
    });
    return accumulator.result();
  }

  async applyChanges(shape: TableShape, changes: ChangeSet): Promise<ApplyResult> {
    if (changes.upserts.length === 0 && changes.deletes.length === 0) return { upserted: 0, deleted: 0 };
    const identityAlways = changes.upserts.length > 0 ? await this.identityAlways(shape) : new Set<string>();
    const statements = this.changeStatements(shape, changes, identityAlways);
    await this.withClient(async (client) => {
      if (statements.length === 1) {
        // One statement is atomic on its own: no BEGIN/COMMIT round trips, which are most of the
        // cost of the small batches the apply lanes write.
        await client.query(statements[0]!.text, statements[0]!.values);
        return;
      }
      await this.inTransaction(client, async () => {
        for (const statement of statements) await client.query(statement.text, statement.values);
      });
    });
    return { upserted: changes.upserts.length, deleted: changes.deletes.length };
  }

  /**
   * Locking read, then applyChanges' statements for the unchanged keys, in one transaction (READ
   * COMMITTED). `SELECT ... FOR UPDATE` waits for a transaction that holds one of the rows and then
   * returns the row as that transaction committed it (or nothing, if it deleted it), so a user's
   * write is either seen here or waits for our COMMIT. Absent rows cannot be locked: another session
   * may insert an expected-absent key meanwhile, and the upsert (ON CONFLICT DO UPDATE) then
   * overwrites it. Two such calls over overlapping keys may deadlock (DB_DEADLOCK, retryable).
   */
  async applyChangesIfUnchanged(shape: TableShape, changes: ChangeSet, expected: readonly ExpectedRow[]): Promise<ConditionalApplyResult> {
    const plan = planConditionalWrite(shape, changes, expected);
    if (plan.keys.length === 0) return { upserted: 0, deleted: 0, changed: [] };
    // Looked up before taking a client: a pool query made while holding one could wait forever for a
    // free client when every client of the pool does the same.
    const identityAlways = changes.upserts.length > 0 ? await this.identityAlways(shape) : new Set<string>();
    return this.withClient((client) =>
      this.inTransaction(client, async () => {
        const current: Row[] = [];
        for (const batch of this.keyBatches(shape, plan.keys)) {
          const params = new Params();
          const result = await client.query<unknown[]>({
            text: `SELECT ${this.selectList(shape)} FROM ${this.tableName(shape)} WHERE ${keysPredicate(shape, batch, params)} FOR UPDATE`,
            values: params.values,
            rowMode: 'array',
          });
          for (const raw of result.rows) current.push(this.toRow(shape, raw));
        }
        const decided = plan.decide(current);
        const write = decided.changes;
        for (const statement of this.changeStatements(shape, write, identityAlways)) await client.query(statement.text, statement.values);
        return { upserted: write.upserts.length, deleted: write.deletes.length, changed: decided.changed };
      }),
    );
  }

  /** The DELETE and INSERT ... ON CONFLICT statements of a change set, deletes first. */
  private changeStatements(shape: TableShape, changes: ChangeSet, identityAlways: ReadonlySet<string>): { text: string; values: unknown[] }[] {
    const keyNames = new Set(keyColumns(shape).map((column) => column.name));
    const writable = shape.columns
      .map((column, index) => ({ column, index }))
      .filter(({ column }) => !column.generated);
    const updatable = writable.filter(({ column }) => !keyNames.has(column.name) && !identityAlways.has(column.name));

    // One row per key (last wins): ON CONFLICT DO UPDATE refuses to touch the same row twice.
    const upserts = [...new Map(changes.upserts.map((row) => [rowKeyIdentity(shape, row), row])).values()];

    // Deletes first, then upserts: a key present in both ends up holding the upserted row.
    const statements: { text: string; values: unknown[] }[] = [];
    for (const batch of this.keyBatches(shape, changes.deletes)) {
      const params = new Params();
      statements.push({ text: `DELETE FROM ${this.tableName(shape)} WHERE ${keysPredicate(shape, batch, params)}`, values: params.values });
    }
    const perRow = Math.max(1, writable.length);
    const rowsPerStatement = Math.max(1, Math.min(MAX_UPSERT_ROWS, Math.floor(MAX_UPSERT_PARAMS / perRow)));
    const columnList = writable.map(({ column }) => quoteIdentifier(column.name)).join(', ');
    const conflict = keyColumns(shape).map((column) => quoteIdentifier(column.name)).join(', ');
    const onConflict =
      updatable.length === 0
        ? 'DO NOTHING'
        : `DO UPDATE SET ${updatable
            .map(({ column }) => `${quoteIdentifier(column.name)} = EXCLUDED.${quoteIdentifier(column.name)}`)
            .join(', ')}`;
    for (let start = 0; start < upserts.length; start += rowsPerStatement) {
      const params = new Params();
      const tuples = upserts
        .slice(start, start + rowsPerStatement)
        .map((row) => `(${writable.map(({ column, index }) => params.add(toParam(column, row[index]))).join(', ')})`);
      // Multi-row VALUES in an INSERT resolves untyped parameters to the target columns' types,
      // so JSON text, '1'/'0' booleans, 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC session) and Buffers
      // are parsed by the column's own input function. OVERRIDING SYSTEM VALUE lets rows keep
      // their GENERATED ALWAYS identity values and is a no-op for tables without one.
      statements.push({
        text:
          `INSERT INTO ${this.tableName(shape)} (${columnList}) OVERRIDING SYSTEM VALUE ` +
          `VALUES ${tuples.join(', ')} ON CONFLICT (${conflict}) ${onConflict}`,
        values: params.values,
      });
    }
    return statements;
  }

  /** BEGIN ... COMMIT on `client`; ROLLBACK when `work` throws (withClient then decides whether the client is reused). */
  private async inTransaction<T>(client: Client, work: () => Promise<T>): Promise<T> {
    await client.query('BEGIN');
    try {
      const result = await work();
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  async recordConflicts(records: readonly ConflictRecord[]): Promise<void> {
    if (records.length === 0) return;
    const table = this.tableName(CONFLICTS_TABLE);
    await this.withClient(async (client) => {
      this.conflictsTable ??= (async () => {
        await client
          .query(
            `CREATE TABLE IF NOT EXISTS ${table} (id char(32) PRIMARY KEY, pipeline text NOT NULL, table_name text NOT NULL, ` +
              `row_key jsonb NOT NULL, source_row jsonb NOT NULL, target_row jsonb NOT NULL, ` +
              `detected_at timestamptz NOT NULL DEFAULT now(), status text NOT NULL DEFAULT 'pending', resolved_at timestamptz NULL, ` +
              `kind text NULL, policy text NULL, outcome text NULL)`,
          )
          .catch((error: { code?: string }) => {
            // IF NOT EXISTS is not atomic: two lanes creating the table at once, the loser fails on the
            // catalog's unique index (23505, measured) or with duplicate_table (42P07). The table exists.
            if (error.code !== '23505' && error.code !== '42P07' && error.code !== '42710') throw error;
          });
        // A log created before kind/policy/outcome existed.
        await client.query(
          `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS kind text NULL, ADD COLUMN IF NOT EXISTS policy text NULL, ADD COLUMN IF NOT EXISTS outcome text NULL`,
        );
      })();
      this.conflictsTable.catch(() => (this.conflictsTable = undefined));
      await this.conflictsTable;
      const params = new Params();
      const tuples = records.map(conflictRow).map(
        (row) =>
          `(${params.add(row.id)}, ${params.add(row.pipeline)}, ${params.add(row.tableName)}, ${params.add(row.rowKey)}::jsonb, ` +
          `${params.add(row.sourceRow)}::jsonb, ${params.add(row.targetRow)}::jsonb, ${params.add(row.kind)}, ${params.add(row.policy)}, ` +
          `${params.add(row.outcome)}, ${params.add(row.status)}, ${row.status === 'resolved' ? 'now()' : 'NULL'})`,
      );
      // A key that is in conflict again is pending again, with the rows as they are now (decided
      // conflicts have ids of their own and never collide).
      await client.query(
        `INSERT INTO ${table} (id, pipeline, table_name, row_key, source_row, target_row, kind, policy, outcome, status, resolved_at) ` +
          `VALUES ${tuples.join(', ')} ` +
          `ON CONFLICT (id) DO UPDATE SET source_row = EXCLUDED.source_row, target_row = EXCLUDED.target_row, kind = EXCLUDED.kind, ` +
          `policy = EXCLUDED.policy, outcome = EXCLUDED.outcome, detected_at = now(), status = 'pending', resolved_at = NULL`,
        params.values,
      );
    });
  }

  async readCheckpoint(pipeline: string, source: string): Promise<string | undefined> {
    const sql = `SELECT position FROM ${this.tableName(CHECKPOINTS_TABLE)} WHERE pipeline = $1 AND source = $2`;
    const rows = await this.checkpointStatement(() => this.pool.query(sql, [pipeline, source]).then((result) => result.rows), []);
    return rows[0] ? String((rows[0] as { position: unknown }).position) : undefined;
  }

  async writeCheckpoint(pipeline: string, source: string, position: string): Promise<void> {
    const table = this.tableName(CHECKPOINTS_TABLE);
    const upsert = () =>
      this.pool.query(
        `INSERT INTO ${table} (pipeline, source, position, updated_at) VALUES ($1, $2, $3, now()) ` +
          `ON CONFLICT (pipeline, source) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at`,
        [pipeline, source, position],
      );
    const create = () =>
      this.pool
        .query(
          `CREATE TABLE IF NOT EXISTS ${table} (pipeline text NOT NULL, source text NOT NULL, position text NOT NULL, ` +
            `updated_at timestamptz NOT NULL, PRIMARY KEY (pipeline, source))`,
        )
        .catch((error: { code?: string }) => {
          // IF NOT EXISTS is not atomic: a concurrent creator makes this one fail on the catalog (23505/42P07).
          if (error.code !== '23505' && error.code !== '42P07' && error.code !== '42710') throw error;
        });
    await this.checkpointStatement(() => upsert().catch(async (error: { code?: string }) => {
      if (error.code !== UNDEFINED_TABLE) throw error;
      await create();
      await upsert();
    }), undefined);
  }

  async deleteCheckpoint(pipeline: string, source: string): Promise<void> {
    const sql = `DELETE FROM ${this.tableName(CHECKPOINTS_TABLE)} WHERE pipeline = $1 AND source = $2`;
    await this.checkpointStatement(() => this.pool.query(sql, [pipeline, source]), undefined);
  }

  /** Runs a checkpoint statement; where the table does not exist yet, `whenMissing` is the answer. */
  private async checkpointStatement<T>(statement: () => Promise<T>, whenMissing: T): Promise<T> {
    try {
      return await statement();
    } catch (error) {
      if ((error as { code?: string }).code === UNDEFINED_TABLE) return whenMissing;
      throw translatePostgresError(error, this.errorContext);
    }
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> {
    try {
      const result = await this.pool.query(sql, params as unknown[]);
      // A multi-statement string returns one result per statement; hand back the last one's rows.
      const last = Array.isArray(result) ? (result as pg.QueryResult[])[(result as pg.QueryResult[]).length - 1] : result;
      return (last?.rows ?? []) as Record<string, unknown>[];
    } catch (error) {
      throw translatePostgresError(error, this.errorContext);
    }
  }

  async close(): Promise<void> {
    try {
      await this.pool.end();
    } catch (error) {
      throw translatePostgresError(error, this.errorContext);
    }
  }

  private tableName(shape: TableShape | string): string {
    const table = typeof shape === 'string' ? shape : shape.table;
    const schema = typeof shape === 'string' ? this.settings.schema : (shape.schema ?? this.settings.schema);
    return `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
  }

  private selectList(shape: TableShape): string {
    return shape.columns.map(readExpression).join(', ');
  }

  private toRow(shape: TableShape, raw: unknown[]): Row {
    return shape.columns.map((column: ShapeColumn, index) => normalizeValue(column, raw[index]));
  }

  private *keyBatches(shape: TableShape, keys: readonly KeyTuple[]): Generator<readonly KeyTuple[]> {
    // Twice the key width: the byte-exact check repeats every tuple (see keysPredicate).
    const perKey = shape.keyIndexes.length * 2;
    const size = Math.max(1, Math.min(MAX_KEYS_PER_STATEMENT, Math.floor(MAX_KEY_PARAMS / perKey)));
    for (let start = 0; start < keys.length; start += size) yield keys.slice(start, start + size);
  }

  private identityAlways(shape: TableShape): Promise<Set<string>> {
    const key = `${shape.schema ?? this.settings.schema}\u0000${shape.table}`;
    let cached = this.identityCache.get(key);
    if (!cached) {
      cached = this.introspector.identityAlwaysColumns(shape.table, shape.schema);
      cached.catch(() => this.identityCache.delete(key));
      this.identityCache.set(key, cached);
    }
    return cached;
  }

  private async queryArrays(sql: string, params: readonly unknown[]): Promise<unknown[][]> {
    try {
      const result = await this.pool.query<unknown[]>({ text: sql, values: params as unknown[], rowMode: 'array' });
      return result.rows;
    } catch (error) {
      throw translatePostgresError(error, this.errorContext);
    }
  }

  /** A dedicated client for a transaction or cursor; a client that failed mid-protocol is discarded. */
  private async withClient<T>(work: (client: Client) => Promise<T>): Promise<T> {
    let client: Client;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw translatePostgresError(error, this.errorContext);
    }
    let broken: Error | undefined;
    try {
      return await work(client);
    } catch (error) {
      const translated = translatePostgresError(error, this.errorContext);
      // After a query error the ROLLBACK has left the session clean; after anything else (lost
      // connection, timeout mid-protocol) the client is not trusted again.
      const code = (translated as { code?: string }).code;
      if (code !== 'DB_QUERY_FAILED' && code !== 'DB_CONSTRAINT_VIOLATION' && code !== 'DB_DEADLOCK') broken = translated;
      throw translated;
    } finally {
      client.release(broken);
    }
  }
}

function rowKeyIdentity(shape: TableShape, row: Row): string {
  return keyIdentity(shape, shape.keyIndexes.map((index) => row[index] ?? null));
}

/**
 * The per-row term `checksumRange` and `checksumBuckets` sum when every column is hashed in SQL: hex
 * digits 1-15 of the row's MD5 as a 60-bit integer (`RangeChecksum`), or, when the other side is
 * PostgreSQL with the same column types (`sameEngineChecksum`), the native 64-bit hash of the same
 * canonical text (`rowNativeHashSql`).
 */
function checksumTermSql(shape: TableShape, sqlColumns: readonly ShapeColumn[]): string {
  return shape.sameEngineChecksum ? rowNativeHashSql(sqlColumns) : `('x' || substr(${rowMd5Sql(sqlColumns)}, 1, 15))::bit(60)::bigint`;
}
