/**
 * The MySQL/MariaDB `Database` (dialect.ts) on a mysql2 pool. Tested against MariaDB 10.11; MySQL 8
 * differences are noted where they matter (here, in mysql-sql.ts and mysql-introspector.ts).
 */
import type { Readable } from 'node:stream';
import { createPool, type Pool } from 'mysql2/promise';
import { BucketAccumulator, ChecksumAccumulator, finishRowHash, keyIdentity, rowHash } from '../canonical.js';
import { CHECKPOINTS_TABLE, CONFLICTS_TABLE, conflictRow } from '../conflicts-table.js';
import type { DatabaseOptions } from '../create-database.js';
import { bucketKeyColumn, planConditionalWrite, rangeList, type Database } from '../dialect.js';
import type {
  ApplyResult, BucketChecksum, ChangeSet, ConditionalApplyResult, ConflictRecord, Engine, ExpectedRow, KeyHash, KeyRange, KeyTuple,
  LoadReading, RangeChecksum, ReplicaLagReading, Row, ShapeColumn, TableSchema, TableShape, ValueKind,
} from '../types.js';
import { mysqlConnectionSettings } from './mysql-connection-options.js';
import { DatabaseError, SchemaError } from '../../errors/index.js';
import { translateMysqlError, type ErrorContext } from './mysql-errors.js';
import { describeTable, listTables, type ArrayQuery } from './mysql-introspector.js';
import {
  keyColumns, keysPredicate, orderByKey, quoteIdentifier, rangePredicate, readExpr, rowHashExpr, textLiteral, valueLiteral, withFilter,
} from './mysql-sql.js';
import { toPortable } from './mysql-values.js';

const DEFAULT_POOL_SIZE = 4;
/** Keys per `IN (...)` list: well under the ~10k-value mark where statements get slow to parse. */
const MAX_KEY_VALUES_PER_STATEMENT = 10_000;
const MAX_KEYS_PER_STATEMENT = 2_000;
/** Rows per multi-row INSERT, and a text budget well under MariaDB's default 16 MiB max_allowed_packet. */
const MAX_ROWS_PER_INSERT = 1_000;
const MAX_STATEMENT_CHARS = 4 * 1024 * 1024;
const STREAM_HIGH_WATER_MARK = 500;

/** The callback-style connection under mysql2's promise wrapper (typed loosely by mysql2). */
interface CoreConnection {
  query(options: { sql: string; rowsAsArray: boolean }): { stream(options: { highWaterMark: number }): Readable };
  query(sql: string, callback: (error: Error | null) => void): void;
  destroy(): void;
}

/** 2^100: what a row whose hash is NULL (canonical text over max_allowed_packet) adds to the sum. */
const OVERFLOW_MARKER = '1267650600228229401496703205376';

/** One statement on the connection of a transaction; rows as arrays (mysql2 `rowsAsArray`). */
export type TransactionQuery = (sql: string) => Promise<unknown[][]>;

/**
 * What `MysqlDatabase` offers the other roles of this dialect (mysql-sync-state.ts) beyond `Database`:
 * several statements in one transaction on one connection, which `execute` (any pool connection per
 * call, no multipleStatements) cannot hold together.
 */
export interface MysqlTransactions {
  /**
   * Runs `work` between BEGIN and COMMIT on one pool connection; ROLLBACK when it throws. Errors are
   * translated (`DatabaseError`), `action` names what was done in their message.
   */
  transaction<T>(action: string, work: (query: TransactionQuery) => Promise<T>): Promise<T>;
}

export class MysqlDatabase implements Database, MysqlTransactions {
  readonly engine: Engine = 'mysql';
  readonly connectionName: string;
  private readonly pool: Pool;
  private readonly errorContext: ErrorContext;
  private readonly arrayQuery: ArrayQuery;
  /** The conflict log's table, made (and brought up to date) once per process. */
  private conflictsTable: Promise<void> | undefined;

  constructor(options: DatabaseOptions) {
    this.connectionName = options.connectionName;
    const settings = mysqlConnectionSettings(options.connectionName, options.url, options.poolSize ?? DEFAULT_POOL_SIZE);
    this.errorContext = { connectionName: options.connectionName };
    this.pool = createPool(settings.pool);
    // Session setup, queued on each new connection before the pool hands it out (a connection runs its
    // commands in order, so no query can precede it):
    // - time_zone UTC: TIMESTAMPs are read, written and DATE_FORMATted as UTC instants;
    // - NO_AUTO_VALUE_ON_ZERO: a key 0 copied from the other side is stored as 0, not as a new
    //   AUTO_INCREMENT value. The rest of the server's sql_mode is kept.
    (this.pool.pool as unknown as NodeJS.EventEmitter).on('connection', (connection: CoreConnection) => {
      connection.query(
        "SET time_zone = '+00:00', sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_AUTO_VALUE_ON_ZERO')",
        (error) => {
          // Never leave a connection in the wrong time zone: the next query on it fails as a lost connection.
          if (error) connection.destroy();
        },
      );
    });
    this.arrayQuery = async (sql, params) => {
      const [rows] = await this.pool.query({ sql, rowsAsArray: true }, params === undefined ? undefined : [...params]);
      return rows as unknown as unknown[][];
    };
  }

  canRenderInSql(kind: ValueKind): boolean {
    // A double cannot be printed at 15 significant digits identically by both engines, and JSON needs
    // key sorting and exact number forms (MariaDB stores JSON text as written): both hashed in Node.
    return kind !== 'float' && kind !== 'json';
  }

  quoteIdentifier(name: string): string {
    return quoteIdentifier(name);
  }

  listTables(): Promise<string[]> {
    return this.guard('listing tables', () => listTables(this.arrayQuery));
  }

  describeTable(table: string, schema?: string): Promise<TableSchema> {
    return this.guard(`describing table ${table}`, () => describeTable(this.arrayQuery, this.connectionName, table, schema));
  }

  async checkFilter(shape: TableShape): Promise<void> {
    if (shape.filter === undefined) return;
    try {
      await this.arrayQuery(`SELECT 1 FROM ${this.from(shape)} WHERE ${withFilter(shape, '1 = 1')} LIMIT 0`);
    } catch (error) {
      const translated = translateMysqlError(error, this.errorContext, `checking the filter of ${shape.table}`);
      if (translated instanceof DatabaseError && translated.retryable) throw translated;
      const reason = String((error as { sqlMessage?: unknown }).sqlMessage ?? (error as Error).message);
      throw new SchemaError(
        'INVALID_FILTER',
        `table ${shape.table} on connection ${this.connectionName}: the filter (${shape.filter}) is not a valid condition here: ${reason}`,
        { subject: `${this.connectionName}.${shape.table}`, cause: translated },
      );
    }
  }

  readLoad(): Promise<LoadReading> {
    return this.guard('reading Threads_running', async () => {
      const rows = await this.arrayQuery("SHOW GLOBAL STATUS LIKE 'Threads_running'");
      return { measure: 'Threads_running', value: Number(rows[0]?.[1] ?? 0) };
    });
  }

  /**
   * `SHOW REPLICA STATUS` first (MariaDB 10.5.1+, MySQL 8.0.22+), `SHOW SLAVE STATUS` where the
   * server does not know it (a parse error: ER_PARSE_ERROR 1064). The column is
   * `Seconds_Behind_Source` on MySQL 8.0.22+ and `Seconds_Behind_Master` on MariaDB (both statements)
   * and older MySQL; NULL while the replication threads are stopped.
   */
  readReplicaLag(): Promise<ReplicaLagReading> {
    return this.guard('reading the replica status', async () => {
      let rows: Record<string, unknown>[];
      try {
        [rows] = (await this.pool.query('SHOW REPLICA STATUS')) as unknown as [Record<string, unknown>[]];
      } catch (error) {
        if ((error as { errno?: unknown }).errno !== 1064) throw error;
        [rows] = (await this.pool.query('SHOW SLAVE STATUS')) as unknown as [Record<string, unknown>[]];
      }
      const status = rows[0];
      if (!status) return { replica: false };
      const measure = 'Seconds_Behind_Source' in status ? 'Seconds_Behind_Source' : 'Seconds_Behind_Master';
      const seconds = status[measure];
      return { replica: true, measure, seconds: seconds === null || seconds === undefined ? null : Number(seconds) };
    });
  }

  countRange(shape: TableShape, range: KeyRange): Promise<number> {
    return this.guard(`counting ${shape.table}`, async () => {
      const rows = await this.arrayQuery(`SELECT COUNT(*) FROM ${this.from(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range))}`);
      return Number(rows[0]?.[0] ?? 0);
    });
  }

  async keyAtOffset(shape: TableShape, range: KeyRange, offset: number): Promise<KeyTuple | undefined> {
    if (!Number.isInteger(offset) || offset < 0) throw new RangeError(`keyAtOffset: offset must be a non-negative integer, got ${offset}`);
    return this.guard(`paging ${shape.table}`, async () => {
      const keys = keyColumns(shape);
      const rows = await this.arrayQuery(
        `SELECT ${keys.map(readExpr).join(', ')} FROM ${this.from(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range))} ` +
          `ORDER BY ${orderByKey(shape)} LIMIT 1 OFFSET ${offset}`,
      );
      const row = rows[0];
      return row ? keys.map((column, index) => toPortable(column, row[index])) : undefined;
    });
  }

  async fetchRange(shape: TableShape, range: KeyRange, limit: number): Promise<Row[]> {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`fetchRange: limit must be a non-negative integer, got ${limit}`);
    return this.guard(`reading ${shape.table}`, async () => {
      const rows = await this.arrayQuery(
        `SELECT ${this.selectList(shape)} FROM ${this.from(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range))} ` +
          `ORDER BY ${orderByKey(shape)} LIMIT ${limit}`,
      );
      return rows.map((row) => this.portableRow(shape, row));
    });
  }

  fetchByKeys(shape: TableShape, keys: readonly KeyTuple[]): Promise<Row[]> {
    return this.guard(`reading ${shape.table} by key`, async () => {
      const wanted = new Set(keys.map((key) => keyIdentity(shape, key)));
      const result: Row[] = [];
      for (const batch of chunks(keys, this.keysPerStatement(shape))) {
        const rows = await this.arrayQuery(
          `SELECT ${this.selectList(shape)} FROM ${this.from(shape)} WHERE ${withFilter(shape, keysPredicate(shape, batch))}`,
        );
        for (const raw of rows) {
          const row = this.portableRow(shape, raw);
          // The SQL already compares text keys byte-exactly; this also guards uuid case and any
          // comparison the server makes looser than canonical equality.
          if (wanted.has(keyIdentity(shape, shape.keyIndexes.map((index) => row[index] ?? null)))) result.push(row);
        }
      }
      return result;
    });
  }

  /**
   * Always the canonical MD5 sum, `sameEngineChecksum` or not: MySQL/MariaDB have no cheaper hash as
   * strong (CRC32 and CRC32C are 32 bits and linear), MD5 over the canonical CONCAT costs about 1.2x
   * the raw CONCAT_WS of the bench floor, and the Node fallbacks below compute the same canonical MD5.
   */
  checksumRange(shape: TableShape, range: KeyRange): Promise<RangeChecksum> {
    return this.guard(`checksumming ${shape.table}`, async () => {
      const nodeColumns = shape.columns.filter((column) => column.hashSite === 'node');
      if (nodeColumns.length === 0) {
        const checksum = await this.sqlChecksum(shape, range);
        if (checksum) return checksum;
      } else {
        const checksum = await this.mixedChecksum(shape, range, nodeColumns);
        if (checksum) return checksum;
      }
      // Some row's canonical text exceeded max_allowed_packet (CONCAT returns NULL): hash in Node.
      return this.nodeChecksum(shape, range);
    });
  }

  async checksumBuckets(shape: TableShape, range: KeyRange, width: number): Promise<BucketChecksum[]> {
    const key = bucketKeyColumn(shape, width);
    return this.guard(`checksumming buckets of ${shape.table}`, async () => {
      const nodeColumns = shape.columns.filter((column) => column.hashSite === 'node');
      const buckets =
        nodeColumns.length === 0
          ? await this.sqlBuckets(shape, range, key, width)
          : await this.mixedBuckets(shape, range, key, width, nodeColumns);
      // Some row's canonical text exceeded max_allowed_packet (CONCAT returns NULL): hash in Node.
      return buckets ?? this.nodeBuckets(shape, range, width);
    });
  }

  rowHashes(shape: TableShape, range: KeyRange | readonly KeyRange[], limit: number): Promise<KeyHash[]> {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`rowHashes: limit must be a non-negative integer, got ${limit}`);
    return this.guard(`hashing ${shape.table}`, async () => {
      const keys = shape.keyIndexes.map((index) => shape.columns[index]!);
      const sqlColumns = shape.columns.filter((column) => column.hashSite === 'sql');
      const nodeColumns = shape.columns.filter((column) => column.hashSite === 'node');
      const rows = await this.arrayQuery(
        `SELECT ${[...keys.map(readExpr), rowHashExpr(sqlColumns), ...nodeColumns.map(readExpr)].join(', ')} ` +
          `FROM ${this.from(shape)} WHERE ${withFilter(shape, rangesPredicate(shape, range))} ORDER BY ${orderByKey(shape)} LIMIT ${limit}`,
      );
      if (rows.some((raw) => typeof raw[keys.length] !== 'string')) {
        // Some row's canonical text exceeded max_allowed_packet (CONCAT returned NULL): hash in Node.
        const full: Row[] = [];
        for (const part of rangeList(range)) full.push(...(await this.fetchRange(shape, part, limit - full.length)));
        return full.map((row) => ({ key: shape.keyIndexes.map((index) => row[index] ?? null), hash: rowHash(shape, row) }));
      }
      return rows.map((raw) => {
        const key = keys.map((column, index) => toPortable(column, raw[index]));
        return { key, hash: finishRowHash(raw[keys.length] as string, nodeColumns, raw, keys.length + 1, toPortable) };
      });
    });
  }

  applyChanges(shape: TableShape, changes: ChangeSet): Promise<ApplyResult> {
    return this.guard(`writing ${shape.table}`, async () => {
      if (changes.upserts.length === 0 && changes.deletes.length === 0) return { upserted: 0, deleted: 0 };
      const statements = [...this.deleteStatements(shape, changes.deletes), ...this.upsertStatements(shape, changes.upserts)];
      if (statements.length === 1) {
        // One statement is atomic on its own (InnoDB rolls a failed statement back): no BEGIN/COMMIT
        // round trips, which are most of the cost of the small batches the apply lanes write.
        await this.pool.query(statements[0]!);
        return { upserted: changes.upserts.length, deleted: changes.deletes.length };
      }
      await this.inTransaction(async (query) => {
        for (const sql of statements) await query(sql);
      });
      return { upserted: changes.upserts.length, deleted: changes.deletes.length };
    });
  }

  /**
   * Locking read, then applyChanges' statements for the unchanged keys, in one transaction.
   * `SELECT ... FOR UPDATE` is a locking read: it reads the latest committed rows (not the
   * transaction's snapshot) and waits for a transaction that holds one of them, so a user's write
   * that commits before the lock is granted is seen, and one that comes after waits for our COMMIT.
   * On the key's index InnoDB also locks the gaps of absent keys (REPEATABLE READ, the default), so
   * an insert of an expected-absent key by another session waits as well (checked on MariaDB 10.11
   * for integer and utf8mb4_bin keys), as does any insert into the same gap, until COMMIT. Rows are
   * locked in index order of each IN list; two such calls over overlapping keys can still deadlock
   * (DB_DEADLOCK, retryable).
   */
  async applyChangesIfUnchanged(shape: TableShape, changes: ChangeSet, expected: readonly ExpectedRow[]): Promise<ConditionalApplyResult> {
    const plan = planConditionalWrite(shape, changes, expected);
    if (plan.keys.length === 0) return { upserted: 0, deleted: 0, changed: [] };
    return this.guard(`writing ${shape.table} where unchanged`, () =>
      this.inTransaction(async (query) => {
        const current: Row[] = [];
        for (const batch of chunks(plan.keys, this.keysPerStatement(shape))) {
          const rows = await query(`SELECT ${this.selectList(shape)} FROM ${this.from(shape)} WHERE ${keysPredicate(shape, batch)} FOR UPDATE`);
          for (const raw of rows) current.push(this.portableRow(shape, raw));
        }
        const decided = plan.decide(current);
        const write = decided.changes;
        for (const sql of [...this.deleteStatements(shape, write.deletes), ...this.upsertStatements(shape, write.upserts)]) await query(sql);
        return { upserted: write.upserts.length, deleted: write.deletes.length, changed: decided.changed };
      }),
    );
  }

  transaction<T>(action: string, work: (query: TransactionQuery) => Promise<T>): Promise<T> {
    return this.guard(action, () => this.inTransaction(work));
  }

  /**
   * `rowsync_conflicts` in this database (conflicts-table.ts). JSON columns: MySQL 8's JSON type,
   * MariaDB's LONGTEXT + json_valid CHECK, both spelled `JSON`. DATETIME(6) rather than TIMESTAMP
   * (no 2038 limit); the session is UTC, so the times are UTC.
   */
  recordConflicts(records: readonly ConflictRecord[]): Promise<void> {
    return this.guard('recording conflicts', async () => {
      if (records.length === 0) return;
      const table = quoteIdentifier(CONFLICTS_TABLE);
      this.conflictsTable ??= (async () => {
        await this.pool.query(
          `CREATE TABLE IF NOT EXISTS ${table} (id CHAR(32) CHARACTER SET ascii NOT NULL PRIMARY KEY, ` +
            `pipeline VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL, row_key JSON NOT NULL, ` +
            `source_row JSON NOT NULL, target_row JSON NOT NULL, ` +
            `detected_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), ` +
            `status VARCHAR(16) NOT NULL DEFAULT 'pending', resolved_at DATETIME(6) NULL, ` +
            `kind VARCHAR(16) NULL, policy VARCHAR(16) NULL, outcome VARCHAR(16) NULL) CHARACTER SET utf8mb4`,
        );
        // A log created before kind/policy/outcome existed (MySQL 8 lacks ADD COLUMN IF NOT EXISTS:
        // there this step fails on an old table, which then needs the three columns added by hand).
        await this.pool.query(
          `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS kind VARCHAR(16) NULL, ADD COLUMN IF NOT EXISTS policy VARCHAR(16) NULL, ` +
            `ADD COLUMN IF NOT EXISTS outcome VARCHAR(16) NULL`,
        );
      })();
      this.conflictsTable.catch(() => (this.conflictsTable = undefined));
      await this.conflictsTable;
      for (const batch of chunks(records.map(conflictRow), 500)) {
        const tuples = batch.map(
          (row) =>
            `(${[row.id, row.pipeline, row.tableName, row.rowKey, row.sourceRow, row.targetRow, row.kind, row.policy, row.outcome, row.status]
              .map(textLiteral)
              .join(', ')}, ${row.status === 'resolved' ? 'CURRENT_TIMESTAMP(6)' : 'NULL'})`,
        );
        // A key that is in conflict again is pending again, with the rows as they are now (decided
        // conflicts have ids of their own and never collide).
        await this.pool.query(
          `INSERT INTO ${table} (id, pipeline, table_name, row_key, source_row, target_row, kind, policy, outcome, status, resolved_at) ` +
            `VALUES ${tuples.join(', ')} ` +
            `ON DUPLICATE KEY UPDATE source_row = VALUES(source_row), target_row = VALUES(target_row), kind = VALUES(kind), ` +
            `policy = VALUES(policy), outcome = VALUES(outcome), detected_at = CURRENT_TIMESTAMP(6), status = 'pending', resolved_at = NULL`,
        );
      }
    });
  }

  readCheckpoint(pipeline: string, source: string): Promise<string | undefined> {
    return this.guard('reading the CDC checkpoint', async () => {
      const rows = await this.arrayQuery(
        `SELECT position FROM ${quoteIdentifier(CHECKPOINTS_TABLE)} WHERE pipeline = ${textLiteral(pipeline)} AND source = ${textLiteral(source)}`,
      ).catch((error: { errno?: number }) => {
        if (error.errno === 1146) return []; // ER_NO_SUCH_TABLE: nothing was written yet
        throw error;
      });
      return rows[0] ? String(rows[0][0]) : undefined;
    });
  }

  writeCheckpoint(pipeline: string, source: string, position: string): Promise<void> {
    return this.guard('writing the CDC checkpoint', async () => {
      const table = quoteIdentifier(CHECKPOINTS_TABLE);
      const upsert =
        `INSERT INTO ${table} (pipeline, source, position, updated_at) VALUES (${[pipeline, source, position].map(textLiteral).join(', ')}, ` +
        `UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE position = VALUES(position), updated_at = VALUES(updated_at)`;
      try {
        await this.pool.query(upsert);
      } catch (error) {
        if ((error as { errno?: number }).errno !== 1146) throw error;
        await this.pool.query(
          `CREATE TABLE IF NOT EXISTS ${table} (pipeline VARCHAR(191) NOT NULL, source VARCHAR(191) NOT NULL, ` +
            `position VARCHAR(2000) NOT NULL, updated_at DATETIME(6) NOT NULL, PRIMARY KEY (pipeline, source)) ` +
            `ENGINE=InnoDB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
        );
        await this.pool.query(upsert);
      }
    });
  }

  deleteCheckpoint(pipeline: string, source: string): Promise<void> {
    return this.guard('deleting the CDC checkpoint', async () => {
      await this.pool
        .query(`DELETE FROM ${quoteIdentifier(CHECKPOINTS_TABLE)} WHERE pipeline = ${textLiteral(pipeline)} AND source = ${textLiteral(source)}`)
        .catch((error: { errno?: number }) => {
          if (error.errno !== 1146) throw error;
        });
    });
  }

  execute(sql: string, params: readonly unknown[] = []): Promise<Record<string, unknown>[]> {
    return this.guard('executing SQL', async () => {
      const [result] = await this.pool.query(sql, [...params]);
      if (!Array.isArray(result)) return [];
      return (result as unknown[]).filter((row): row is Record<string, unknown> => typeof row === 'object' && row !== null && !Array.isArray(row));
    });
  }

  async close(): Promise<void> {
    await this.guard('closing the pool', () => this.pool.end());
  }

  // ----------------------------------------------------------------------------------------------

  private async guard<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw translateMysqlError(error, this.errorContext, action);
    }
  }

  /** BEGIN ... COMMIT on one pool connection; a connection whose ROLLBACK failed is destroyed, not reused. */
  private async inTransaction<T>(work: (query: TransactionQuery) => Promise<T>): Promise<T> {
    const connection = await this.pool.getConnection();
    let healthy = true;
    try {
      await connection.beginTransaction();
      try {
        const result = await work(async (sql) => {
          const [rows] = await connection.query({ sql, rowsAsArray: true });
          return Array.isArray(rows) ? (rows as unknown as unknown[][]) : [];
        });
        await connection.commit();
        return result;
      } catch (error) {
        await connection.rollback().catch(() => {
          healthy = false;
        });
        throw error;
      }
    } finally {
      if (healthy) connection.release();
      else connection.destroy();
    }
  }

  private from(shape: TableShape): string {
    return shape.schema === undefined ? quoteIdentifier(shape.table) : `${quoteIdentifier(shape.schema)}.${quoteIdentifier(shape.table)}`;
  }

  private selectList(shape: TableShape): string {
    return shape.columns.map(readExpr).join(', ');
  }

  private portableRow(shape: TableShape, raw: readonly unknown[]): Row {
    return shape.columns.map((column, index) => toPortable(column, raw[index]));
  }

  private keysPerStatement(shape: TableShape): number {
    return Math.max(1, Math.min(MAX_KEYS_PER_STATEMENT, Math.floor(MAX_KEY_VALUES_PER_STATEMENT / Math.max(1, shape.keyIndexes.length))));
  }

  /**
   * Everything in one aggregate, with the row hash referenced once: MariaDB merges a derived table
   * and evaluates its expression once per reference, so a second reference (e.g. `SUM(h IS NULL)`)
   * would compute every MD5 twice (measured: 1.45 s instead of 0.75 s on 500k rows). A row whose
   * canonical text exceeds max_allowed_packet makes CONCAT return NULL; it contributes 2^100 instead,
   * a value no sum of 60-bit hashes of fewer than 2^40 rows reaches, so the overflow is detected
   * without a second reference. SUM over integers returns an exact DECIMAL (mysql2: a string).
   */
  private async sqlChecksum(shape: TableShape, range: KeyRange): Promise<RangeChecksum | undefined> {
    const rows = await this.arrayQuery(
      `SELECT COUNT(*), SUM(IFNULL(CAST(CONV(SUBSTRING(${rowHashExpr(shape.columns)}, 1, 15), 16, 10) AS UNSIGNED), ${OVERFLOW_MARKER})) ` +
        `FROM ${this.from(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range))}`,
    );
    const [count, sum] = rows[0] ?? [];
    const total = decimalText(sum);
    if (BigInt(total) >= BigInt(OVERFLOW_MARKER)) return undefined;
    return { count: Number(count ?? 0), sum: total };
  }

  /**
   * `sqlChecksum` per bucket: the row hash is still referenced once per row, and a bucket holding an
   * overflowing row reaches the 2^100 marker. `DIV` truncates toward zero and is exact on BIGINT
   * UNSIGNED. The GROUP BY costs a small in-memory temporary table (at most a few thousand groups).
   */
  private async sqlBuckets(shape: TableShape, range: KeyRange, key: ShapeColumn, width: number): Promise<BucketChecksum[] | undefined> {
    const rows = await this.arrayQuery(
      `SELECT ${quoteIdentifier(key.name)} DIV ${width}, COUNT(*), ` +
        `SUM(IFNULL(CAST(CONV(SUBSTRING(${rowHashExpr(shape.columns)}, 1, 15), 16, 10) AS UNSIGNED), ${OVERFLOW_MARKER})) ` +
        `FROM ${this.from(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range))} GROUP BY 1 ORDER BY 1`,
    );
    const marker = BigInt(OVERFLOW_MARKER);
    const buckets: BucketChecksum[] = [];
    for (const [bucket, count, sum] of rows) {
      const total = decimalText(sum);
      if (BigInt(total) >= marker) return undefined;
      buckets.push({ bucket: String(bucket), count: Number(count ?? 0), sum: total });
    }
    return buckets;
  }

  private async mixedBuckets(
    shape: TableShape, range: KeyRange, key: ShapeColumn, width: number, nodeColumns: readonly ShapeColumn[],
  ): Promise<BucketChecksum[] | undefined> {
    const sqlColumns = shape.columns.filter((column) => column.hashSite === 'sql');
    const sql =
      `SELECT ${[readExpr(key), rowHashExpr(sqlColumns), ...nodeColumns.map(readExpr)].join(', ')} ` +
      `FROM ${this.from(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range))}`;
    const accumulator = new BucketAccumulator(width);
    for await (const raw of this.stream(sql)) {
      const sqlPart = raw[1];
      if (typeof sqlPart !== 'string') return undefined;
      accumulator.add(toPortable(key, raw[0]), finishRowHash(sqlPart, nodeColumns, raw, 2, toPortable));
    }
    return accumulator.result();
  }

  private async nodeBuckets(shape: TableShape, range: KeyRange, width: number): Promise<BucketChecksum[]> {
    const accumulator = new BucketAccumulator(width);
    const keyIndex = shape.keyIndexes[0]!;
    const sql = `SELECT ${this.selectList(shape)} FROM ${this.from(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range))}`;
    for await (const raw of this.stream(sql)) {
      const row = this.portableRow(shape, raw);
      accumulator.add(row[keyIndex] ?? null, rowHash(shape, row));
    }
    return accumulator.result();
  }

  /** MD5 of the SQL-rendered columns per row, finished in Node with the node-hashed columns; streamed. */
  private async mixedChecksum(shape: TableShape, range: KeyRange, nodeColumns: readonly ShapeColumn[]): Promise<RangeChecksum | undefined> {
    const sqlColumns = shape.columns.filter((column) => column.hashSite === 'sql');
    const sql =
      `SELECT ${[`${rowHashExpr(sqlColumns)}`, ...nodeColumns.map(readExpr)].join(', ')} ` +
      `FROM ${this.from(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range))}`;
    const accumulator = new ChecksumAccumulator();
    for await (const raw of this.stream(sql)) {
      const sqlPart = raw[0];
      if (typeof sqlPart !== 'string') return undefined;
      accumulator.add(finishRowHash(sqlPart, nodeColumns, raw, 1, toPortable));
    }
    return accumulator.result();
  }

  private async nodeChecksum(shape: TableShape, range: KeyRange): Promise<RangeChecksum> {
    const accumulator = new ChecksumAccumulator();
    const sql = `SELECT ${this.selectList(shape)} FROM ${this.from(shape)} WHERE ${withFilter(shape, rangePredicate(shape, range))}`;
    for await (const raw of this.stream(sql)) accumulator.add(rowHash(shape, this.portableRow(shape, raw)));
    return accumulator.result();
  }

  /** Rows as arrays, streamed with backpressure on a dedicated connection (never buffers the range). */
  private async *stream(sql: string): AsyncGenerator<unknown[]> {
    const connection = await this.pool.getConnection();
    const core = connection.connection as unknown as CoreConnection;
    let finished = false;
    try {
      for await (const row of core.query({ sql, rowsAsArray: true }).stream({ highWaterMark: STREAM_HIGH_WATER_MARK })) {
        yield row as unknown[];
      }
      finished = true;
    } finally {
      // Abandoned mid-result (error, or the consumer stopped): the connection still has rows in flight.
      if (finished) connection.release();
      else connection.destroy();
    }
  }

  /** Deletes are byte-exact on text keys (keysPredicate), so 'abc' never deletes 'ABC' or 'abc '. */
  private deleteStatements(shape: TableShape, deletes: readonly KeyTuple[]): string[] {
    return chunks(deletes, this.keysPerStatement(shape)).map(
      (batch) => `DELETE FROM ${this.from(shape)} WHERE ${keysPredicate(shape, batch)}`,
    );
  }

  /**
   * `INSERT ... ON DUPLICATE KEY UPDATE c = VALUES(c)` for every written column, key columns included:
   * under a case-insensitive key collation 'abc' replaces 'ABC' instead of being lost, and a table of
   * key columns only needs no special case. MySQL 8.0.20+ deprecates VALUES() in favour of a row alias
   * (`INSERT ... AS new ON DUPLICATE KEY UPDATE c = new.c`), which MariaDB lacks; VALUES() works on both.
   * A conflict on a secondary UNIQUE key also resolves to an update of that row (MySQL semantics).
   */
  private upsertStatements(shape: TableShape, upserts: readonly Row[]): string[] {
    const written = shape.columns.map((column, index) => ({ column, index })).filter(({ column }) => !column.generated);
    if (upserts.length === 0 || written.length === 0) return [];
    const names = written.map(({ column }) => quoteIdentifier(column.name));
    const head = `INSERT INTO ${this.from(shape)} (${names.join(', ')}) VALUES `;
    const tail = ` ON DUPLICATE KEY UPDATE ${names.map((name) => `${name} = VALUES(${name})`).join(', ')}`;
    const statements: string[] = [];
    let tuples: string[] = [];
    let size = 0;
    const flush = () => {
      if (tuples.length > 0) statements.push(head + tuples.join(', ') + tail);
      tuples = [];
      size = 0;
    };
    for (const row of upserts) {
      const tuple = `(${written.map(({ column, index }) => valueLiteral(column, row[index] ?? null)).join(', ')})`;
      if (tuples.length > 0 && (tuples.length >= MAX_ROWS_PER_INSERT || size + tuple.length > MAX_STATEMENT_CHARS)) flush();
      tuples.push(tuple);
      size += tuple.length + 2;
    }
    flush();
    return statements;
  }
}

/** Disjoint ranges OR'ed: MariaDB reads them as one multi-range scan of the key index. */
function rangesPredicate(shape: TableShape, range: KeyRange | readonly KeyRange[]): string {
  const ranges = rangeList(range);
  if (ranges.length === 0) return '1 = 0';
  return ranges.map((part) => `(${rangePredicate(shape, part)})`).join(' OR ');
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size));
  return result;
}

function decimalText(value: unknown): string {
  if (value === null || value === undefined) return '0';
  return String(value);
}
