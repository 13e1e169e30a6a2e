import { keyIdentity, sameValue } from './canonical.js';
import type {
  ApplyResult, BucketChecksum, ChangeSet, ConditionalApplyResult, ConflictRecord, Engine, ExpectedRow, KeyHash, KeyRange,
  KeyTuple, LoadReading, RangeChecksum, ReplicaLagReading, Row, ShapeColumn, TableSchema, TableShape, ValueKind,
} from './types.js';

/**
 * One configured database connection, as every layer above `src/dialect` sees it. Each engine
 * implements it once (`mysql/mysql-database.ts`, `postgres/postgres-database.ts`); nothing outside
 * `src/dialect` branches on the engine.
 *
 * Contract shared by every implementation (the conformance suite checks it for both engines):
 * - Key order is byte order for text keys and numeric order for numbers, on both engines, so bounds
 *   read on one side select the same rows on the other.
 * - Reads return portable values (see `types.ts`), losslessly: exact BIGINT and DECIMAL, microseconds,
 *   instants in UTC, JSON as its text, binary as Buffer.
 * - `checksumRange` renders every row to the canonical text of `canonical.ts` (in SQL for columns whose
 *   `hashSite` is `sql`, in Node for `node`) so equal data checksums equal across engines.
 * - Driver errors surface as `DatabaseError` (never with the connection URL or password);
 *   schema problems as `SchemaError` naming the connection, table and column.
 * - A shape's `schema` qualifies the table in every statement; its `filter` (the user's `where`) is
 *   ANDed, in parentheses, to the WHERE of every read of the shape and of no write (see `TableShape`).
 */
export interface Database {
  readonly engine: Engine;
  /** The connection's name in the config (used in messages instead of its URL). */
  readonly connectionName: string;

  /** Kinds this engine can render to canonical text inside SQL; others are hashed in Node. */
  canRenderInSql(kind: ValueKind): boolean;

  /** Quotes an identifier so that any name (quotes, backticks, spaces, `;`, reserved words) is safe. */
  quoteIdentifier(name: string): string;

  /** Base tables of the connection's database/schema, sorted by name. */
  listTables(): Promise<string[]>;

  /**
   * Columns and primary key; `SchemaError` TABLE_NOT_FOUND / NO_PRIMARY_KEY / UNSUPPORTED_TYPE.
   * `schema`: a schema (PostgreSQL) or database (MySQL/MariaDB) of the same server other than the
   * connection's own; the result then carries it (`TableSchema.schema`).
   */
  describeTable(table: string, schema?: string): Promise<TableSchema>;

  /**
   * Checks that `shape.filter` is a valid condition on this table, by running it on no rows
   * (`SELECT 1 FROM t WHERE (filter) LIMIT 0`: parsed, names resolved, nothing read). A filter the
   * server refuses is a `SchemaError` INVALID_FILTER naming the connection, the table, the filter and
   * the server's own message. Nothing to check without a filter.
   */
  checkFilter(shape: TableShape): Promise<void>;

  /**
   * The server's load, one cheap statement: MySQL/MariaDB `SHOW GLOBAL STATUS LIKE 'Threads_running'`
   * (no privilege needed); PostgreSQL the client backends of the whole cluster in state `active` in
   * `pg_stat_activity` (other users' sessions show their state only to superusers and members of
   * `pg_read_all_stats`: without it, only the sessions of rowsync's own user are counted).
   */
  readLoad(): Promise<LoadReading>;

  /**
   * This server's replication lag, read on the replica itself. MySQL/MariaDB: `SHOW REPLICA STATUS`
   * (MariaDB 10.5.1+, MySQL 8.0.22+; `SHOW SLAVE STATUS` on older servers), its `Seconds_Behind_Source`
   * (MySQL 8.0.22+) or `Seconds_Behind_Master` (MariaDB, older MySQL), of the default replication
   * connection; needs REPLICATION CLIENT (MariaDB 10.5+: REPLICA MONITOR or SUPER). PostgreSQL:
   * `now() - pg_last_xact_replay_timestamp()` on a standby (`pg_is_in_recovery()`), 0 while it has
   * replayed everything it received. `{ replica: false }` on a server that is not a replica.
   */
  readReplicaLag(): Promise<ReplicaLagReading>;

  /** Row count and checksum of the rows whose key lies in `range`, computed inside the database. */
  checksumRange(shape: TableShape, range: KeyRange): Promise<RangeChecksum>;

  /**
   * Count and checksum per bucket of the key (see `BucketChecksum`), for every non-empty bucket of
   * `range`, in ascending bucket order: one scan and one GROUP BY, with the same row hash as
   * `checksumRange`, so the bucket sums add up to the range's checksum. A mismatching range then
   * shows which narrow key intervals differ without a second scan. Only for a shape whose key is one
   * integer column (`bucketKeyColumn`); throws otherwise.
   */
  checksumBuckets(shape: TableShape, range: KeyRange, width: number): Promise<BucketChecksum[]>;

  /**
   * Key and row hash of every row in `range`, in key order, at most `limit` rows: one scan that
   * moves 16 bytes of hash per row instead of the row, so a differing range is diffed by key without
   * bisecting it further (the rows themselves are read again by sync, by key). Several disjoint
   * ranges in ascending key order are read in one query (the differing buckets of a range: one
   * query instead of one per bucket, measured 1.4 ms instead of 7.7 ms of CPU for 20 buckets).
   */
  rowHashes(shape: TableShape, range: KeyRange | readonly KeyRange[], limit: number): Promise<KeyHash[]>;

  /** Number of rows whose key lies in `range`. */
  countRange(shape: TableShape, range: KeyRange): Promise<number>;

  /**
   * Keyset pagination: the key of the row `offset` rows past the first row in `range` (0 = first
   * row), or undefined when the range holds no more than `offset` rows. Walks the key index from
   * `range.lower`, never the whole table.
   */
  keyAtOffset(shape: TableShape, range: KeyRange, offset: number): Promise<KeyTuple | undefined>;

  /** Rows of `range` in key order, at most `limit` of them. */
  fetchRange(shape: TableShape, range: KeyRange, limit: number): Promise<Row[]>;

  /**
   * Rows with exactly these keys (byte-exact for text keys, even under a case-insensitive or
   * PAD SPACE collation), in no particular order. Missing keys are simply absent.
   */
  fetchByKeys(shape: TableShape, keys: readonly KeyTuple[]): Promise<Row[]>;

  /** Upserts and deletes in one transaction; generated columns are not written. */
  applyChanges(shape: TableShape, changes: ChangeSet): Promise<ApplyResult>;

  /**
   * Bidirectional writes: in ONE transaction, locks and re-reads the rows of every key in `expected`
   * (SELECT ... FOR UPDATE, byte-exact key match like fetchByKeys), and applies the upserts/deletes of
   * `changes` (with applyChanges' statements) only for keys whose current row is still exactly the
   * expected one (absent = undefined), compared in Node with canonical equality (`sameValue` per column).
   * Keys whose row changed since it was read are not written and are returned in `changed` (every
   * such key of `expected`, whether or not `changes` writes it), so the caller decides them again: a
   * user's write that lands between rowsync's read and its write is never overwritten. Every key of
   * `changes` (upsert rows' keys, delete keys) must appear in `expected`; otherwise it throws before
   * touching the database.
   *
   * Limit: a key expected absent that another session inserts while this runs may still be upserted
   * over. PostgreSQL locks no absent row (FOR UPDATE returns nothing to lock); MySQL/MariaDB under
   * REPEATABLE READ (the default) takes a gap lock that makes such an insert wait, but not under READ
   * COMMITTED. A key only in a case-insensitive or PAD SPACE key collation's sense equal to an
   * expected-absent key is overwritten by the upsert, as applyChanges does.
   */
  applyChangesIfUnchanged(shape: TableShape, changes: ChangeSet, expected: readonly ExpectedRow[]): Promise<ConditionalApplyResult>;

  /**
   * Stores `conflict: manual` pairs in this database's `rowsync_conflicts` table (created on first
   * use; see conflicts-table.ts): one row per (pipeline, table, key), status `pending`, refreshed
   * (rows and time) while it stays pending.
   */
  recordConflicts(records: readonly ConflictRecord[]): Promise<void>;

  /**
   * CDC checkpoints, stored durably in this (target) database's `rowsync_cdc_checkpoints` table
   * (created on first write): per (pipeline, source), the source position below which every change
   * batch has been applied here. Undefined when none was written yet.
   */
  readCheckpoint(pipeline: string, source: string): Promise<string | undefined>;
  writeCheckpoint(pipeline: string, source: string, position: string): Promise<void>;
  /** Removes the checkpoint (`rowsync cdc teardown`). */
  deleteCheckpoint(pipeline: string, source: string): Promise<void>;

  /**
   * Runs SQL as-is, for setup code (tests, demo, bench) and for the few statements that are not
   * part of the contract. Not used by the algorithm layers.
   */
  execute(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;

  close(): Promise<void>;
}

/** `rowHashes`'s range argument as a list. */
export function rangeList(range: KeyRange | readonly KeyRange[]): readonly KeyRange[] {
  return Array.isArray(range) ? (range as readonly KeyRange[]) : [range as KeyRange];
}

/**
 * The key column `checksumBuckets` buckets by: the shape's only key column, of kind integer. Throws
 * for any other key and for a width that is not a positive safe integer.
 */
export function bucketKeyColumn(shape: TableShape, width: number): ShapeColumn {
  const column = shape.keyIndexes.length === 1 ? shape.columns[shape.keyIndexes[0]!] : undefined;
  if (!column || column.kind !== 'integer') {
    throw new Error(`checksumBuckets: the key of ${shape.table} is not a single integer column`);
  }
  if (!Number.isSafeInteger(width) || width < 1) throw new RangeError(`checksumBuckets: width must be a positive integer, got ${width}`);
  return column;
}

/**
 * The engine-neutral half of `applyChangesIfUnchanged`. `keys` are the distinct keys of `expected`
 * (the engine locks and reads their rows); `decide` takes the rows read under the lock and keeps the
 * changes of the keys whose row is still the expected one. Throws when `changes` writes a key that
 * `expected` lacks (a caller's bug: such a write could overwrite anything). A key given twice in
 * `expected` keeps its last expectation.
 */
export interface ConditionalWrite {
  readonly keys: readonly KeyTuple[];
  decide(current: readonly Row[]): { readonly changes: ChangeSet; readonly changed: readonly KeyTuple[] };
}

export function planConditionalWrite(shape: TableShape, changes: ChangeSet, expected: readonly ExpectedRow[]): ConditionalWrite {
  const byKey = new Map<string, ExpectedRow>();
  for (const entry of expected) byKey.set(keyIdentity(shape, entry.key), entry);
  const rowKey = (row: Row): string => keyIdentity(shape, shape.keyIndexes.map((index) => row[index] ?? null));
  const missing =
    changes.upserts.map(rowKey).find((identity) => !byKey.has(identity)) ??
    changes.deletes.map((key) => keyIdentity(shape, key)).find((identity) => !byKey.has(identity));
  if (missing !== undefined) {
    throw new Error(`applyChangesIfUnchanged: ${shape.table}: the key ${JSON.stringify(missing)} is written but has no expected row`);
  }
  return {
    keys: [...byKey.values()].map((entry) => entry.key),
    decide(current) {
      const now = new Map<string, Row>();
      // Only rows whose key is exactly an expected one (the engines' key predicates already are exact).
      for (const row of current) {
        const identity = rowKey(row);
        if (byKey.has(identity)) now.set(identity, row);
      }
      const changedIds = new Set<string>();
      const changed: KeyTuple[] = [];
      for (const [identity, entry] of byKey) {
        if (sameRowOrAbsence(shape, entry.row, now.get(identity))) continue;
        changedIds.add(identity);
        changed.push(entry.key);
      }
      if (changed.length === 0) return { changes, changed };
      return {
        changes: {
          upserts: changes.upserts.filter((row) => !changedIds.has(rowKey(row))),
          deletes: changes.deletes.filter((key) => !changedIds.has(keyIdentity(shape, key))),
        },
        changed,
      };
    },
  };
}

function sameRowOrAbsence(shape: TableShape, a: Row | undefined, b: Row | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return shape.columns.every((column, index) => sameValue(column.kind, a[index] ?? null, b[index] ?? null));
}
