/**
 * Engine-neutral data model shared by every dialect and by the algorithm layers above them.
 * Nothing here knows SQL; `dialect.ts` is the contract each engine implements.
 */

export type Engine = 'mysql' | 'postgres';

/**
 * What a column holds, independent of the engine. The kind decides the canonical text a value is
 * rendered to for hashing and comparison (see `canonical.ts`), and the portable JS value a dialect
 * returns from reads and accepts for writes:
 *
 * | kind     | portable value                                   | canonical text                          |
 * |----------|--------------------------------------------------|-----------------------------------------|
 * | integer  | number or string (string when beyond 2^53)       | decimal digits, optional leading '-'    |
 * | decimal  | string                                           | exact, trailing fraction zeros removed  |
 * | float    | number                                           | 15 significant digits, plain notation   |
 * | boolean  | boolean, or number (MySQL TINYINT(1) may hold 2) | '1' / '0' (other integers as digits)    |
 * | text     | string                                           | the string, byte-exact                  |
 * | binary   | Buffer                                           | lowercase hex                           |
 * | date     | 'YYYY-MM-DD'                                     | same                                    |
 * | datetime | 'YYYY-MM-DD HH:MM:SS.ffffff' (instants in UTC)   | same, always 6 fraction digits          |
 * | time     | '[-]HH:MM:SS.ffffff'                             | same, always 6 fraction digits          |
 * | json     | string (JSON text)                               | by value: sorted keys, no whitespace    |
 * | uuid     | string                                           | lowercase, hyphenated                   |
 */
export type ValueKind =
  | 'integer'
  | 'decimal'
  | 'float'
  | 'boolean'
  | 'text'
  | 'binary'
  | 'date'
  | 'datetime'
  | 'time'
  | 'json'
  | 'uuid';

export type PortableValue = string | number | boolean | Buffer | null;

/** One column as introspected on one side. */
export interface ColumnSchema {
  readonly name: string;
  /** The engine's full type, e.g. `decimal(12,2)`, `timestamp with time zone`, `tinyint(1)`. */
  readonly nativeType: string;
  readonly kind: ValueKind;
  readonly nullable: boolean;
  /** Computed by the database (generated/identity-always columns): read and hashed, never written. */
  readonly generated: boolean;
  /**
   * MySQL/MariaDB string columns: the character set (`utf8mb4`, `latin1`, ...). The checksum SQL
   * renders a UTF-8 column's bytes as they are and converts the others. Undefined elsewhere.
   */
  readonly charset?: string;
}

/** One table as introspected on one side. Column order is the table's ordinal order. */
export interface TableSchema {
  readonly name: string;
  /**
   * The schema (PostgreSQL) or database (MySQL/MariaDB) the table was read from, when the caller named
   * one (`describeTable(table, schema)`); undefined: the connection's own.
   */
  readonly schema?: string;
  readonly columns: readonly ColumnSchema[];
  /** Primary key column names in key order; never empty (introspection rejects keyless tables). */
  readonly primaryKey: readonly string[];
}

/** Where a column's canonical text is produced during a checksum. */
export type HashSite = 'sql' | 'node';

export interface ShapeColumn {
  /** The column's name on this side (names are matched case-insensitively across sides). */
  readonly name: string;
  readonly nativeType: string;
  /** The kind both sides agree on for this column (see `table-pair.ts`). */
  readonly kind: ValueKind;
  readonly hashSite: HashSite;
  readonly generated: boolean;
  /** See `ColumnSchema.charset`. */
  readonly charset?: string;
}

/**
 * One side's view of a table pair: the columns both sides share, in the source's column order, with
 * the kinds and hash sites both sides agreed on. Rows are arrays aligned with `columns`, so a source
 * row and a target row compare index by index whatever the engines call the columns.
 */
export interface TableShape {
  readonly table: string;
  /** See `TableSchema.schema`: every statement on this shape names the table in it. */
  readonly schema?: string;
  readonly columns: readonly ShapeColumn[];
  /** Indexes into `columns` of the primary key, in key order. */
  readonly keyIndexes: readonly number[];
  /**
   * A row filter: an SQL boolean expression in this side's dialect, written by the user (the
   * config's `where`; trusted like the rest of the config, pasted into statements in parentheses).
   * Every read of the shape (counts, key offsets, checksums, row hashes, range and key fetches) sees
   * only the rows for which it is true; writes (upserts, deletes, locking reads) ignore it.
   */
  readonly filter?: string;
  /**
   * Set by `buildTablePair` when both sides run the same engine and every compared column has the
   * same native type on both: `checksumRange` and `checksumBuckets` may then sum an engine-native
   * 64-bit hash of the canonical text instead of its MD5 (see `RangeChecksum`), since both sides
   * compute it with the same function. `rowHashes` stays the canonical MD5 whatever this says: Node's
   * `rowHash` and the bidirectional baseline compare with it. Never set for a cross-engine pair.
   */
  readonly sameEngineChecksum?: boolean;
}

/** A row aligned with `TableShape.columns`. */
export type Row = readonly PortableValue[];

/** Primary key values in key order. */
export type KeyTuple = readonly PortableValue[];

/**
 * A key range in byte/numeric key order, identical on both engines. `lower` is inclusive, `upper`
 * exclusive; a missing bound is open, so the first and last chunk of a table also cover keys that
 * exist only on the target.
 */
export interface KeyRange {
  readonly lower?: KeyTuple;
  readonly upper?: KeyTuple;
}

/**
 * Count and order-independent checksum of the rows of a range: the exact sum of the first 60 bits
 * (hex digits 1-15) of each row's MD5, as data-diff does. Equal row multisets give equal sums on every
 * engine; unlike CRC32 + XOR, two equal changes do not cancel, and a false match needs the hash
 * deltas to add up to exactly zero (about 2^-60 for random changes). One sum, not two: each SUM reads
 * the per-row MD5 again and both engines then compute it twice per row (measured: 2x the scan time).
 * The sum is a decimal string (it exceeds 2^53).
 *
 * A shape with `sameEngineChecksum` may use an engine-native hash instead, compared only with the
 * other side's: PostgreSQL sums `hashtextextended` (64-bit Jenkins lookup3, not linear, so equal
 * changes do not cancel either: about 2^-64) of the same canonical text, which costs about 60% of
 * MD5 + hex + bit cast. MySQL/MariaDB keep MD5: their cheaper hashes (CRC32, CRC32C) are 32 bits and linear.
 */
export interface RangeChecksum {
  readonly count: number;
  readonly sum: string;
}

/**
 * Count and checksum (as in `RangeChecksum`) of the rows of a range whose single integer key `k`
 * falls in one bucket: `bucket` = k / width truncated toward zero, as decimal text (exact beyond
 * 2^53). Truncation puts the keys -(width-1) .. width-1 in bucket 0; every other bucket holds
 * `width` consecutive keys.
 */
export interface BucketChecksum {
  readonly bucket: string;
  readonly count: number;
  readonly sum: string;
}

/** One row's key and hex MD5 row hash (the hash `checksumRange` sums). */
export interface KeyHash {
  readonly key: KeyTuple;
  readonly hash: string;
}

/** A batch of writes applied to one table in one transaction. */
export interface ChangeSet {
  /** Full rows aligned with the shape: inserted, or replacing the row with the same key. */
  readonly upserts: readonly Row[];
  /** Keys of rows to delete. */
  readonly deletes: readonly KeyTuple[];
}

export interface ApplyResult {
  readonly upserted: number;
  readonly deleted: number;
}

/**
 * A key's row as the caller read it before deciding a conditional write (`applyChangesIfUnchanged`):
 * the write goes through only while the row is still exactly this one (undefined: absent).
 */
export interface ExpectedRow {
  readonly key: KeyTuple;
  readonly row: Row | undefined;
}

/** What `applyChangesIfUnchanged` wrote, and the keys it did not write because their rows changed. */
export interface ConditionalApplyResult {
  /** Upserted rows and deleted keys that were written (the keys whose rows were unchanged). */
  readonly upserted: number;
  readonly deleted: number;
  /** Keys of `expected` whose current row differs from the expected one: none of their changes was written. */
  readonly changed: readonly KeyTuple[];
}

/**
 * A row pair left for a human (`conflict: manual`): stored in the target database's
 * `rowsync_conflicts` table with status `pending`. One record per (pipeline, table, key): a later
 * run that finds the same key still in conflict refreshes the record instead of adding another.
 */
export interface ConflictRecord {
  readonly pipeline: string;
  readonly table: string;
  /** Primary key as an object column -> value. */
  readonly key: Readonly<Record<string, PortableValue>>;
  /** Source (side A) and target (side B) rows; null where the row was absent (update against delete). */
  readonly sourceRow: Readonly<Record<string, PortableValue>> | null;
  readonly targetRow: Readonly<Record<string, PortableValue>> | null;
  /** Bidirectional conflicts: `insert-insert`, `update-update`, `update-delete`. @defaultValue 'update-update' */
  readonly kind?: string;
  /** The policy that decided it. @defaultValue 'manual' */
  readonly policy?: string;
  /**
   * How it ended (`a_won`, `b_won`, `merged`, ...): logged as resolved, one row per occurrence. Absent
   * or `pending`: left for a human, one row per key, refreshed while it stays pending.
   */
  readonly outcome?: string;
}

/**
 * A server's load as `Database.readLoad` measures it: MySQL/MariaDB `Threads_running`, PostgreSQL
 * the client backends in state `active`. Both count the probe's own session.
 */
export interface LoadReading {
  /** What was measured, for messages ("Threads_running", "active backends"). */
  readonly measure: string;
  readonly value: number;
}

/**
 * Replication lag as `Database.readReplicaLag` reads it on a replica. `seconds` null: the server is
 * a replica whose replication is not running (or has replayed nothing yet), so its lag is unknown.
 */
export type ReplicaLagReading =
  | { readonly replica: false }
  | { readonly replica: true; readonly seconds: number | null; readonly measure: string };
