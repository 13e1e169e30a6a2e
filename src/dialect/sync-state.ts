import { keyIdentity, md5Hex } from './canonical.js';
import type { Database } from './dialect.js';
import { MysqlSyncStateStore } from './mysql/mysql-sync-state.js';
import { PostgresSyncStateStore } from './postgres/postgres-sync-state.js';
import type { KeyTuple, TableShape } from './types.js';

/**
 * The sync state of bidirectional pipelines (ARCHITECTURE.md, Bidirectional): per (pipeline, table,
 * key) the hash of the row as it was when both sides were last equal, kept durably in one database
 * (side B) in `rowsync_sync_state`, plus `rowsync_sync_baselines`, which records that a table's first
 * bidirectional run wrote the state of every row. One implementation per engine
 * (`mysql/mysql-sync-state.ts`, `postgres/postgres-sync-state.ts`); both create their tables on the
 * first write and read an absent table as empty.
 *
 * Contract shared by the implementations (test/integration/bidirectional-dialect.test.ts):
 * - Key ids and hashes are 32 lowercase hex digits; anything else is refused (RangeError) before
 *   any statement runs.
 * - `write` is atomic: all of its entries are stored, or none.
 * - Pipeline and table names compare case-sensitively (MariaDB's utf8mb4_bin ignores trailing spaces).
 */
export interface SyncStateStore {
  /** Row hashes (hex MD5, as canonical.ts rowHash) of these keys as last synced, by key id; absent ids have none. */
  read(pipeline: string, table: string, keyIds: readonly string[]): Promise<Map<string, string>>;
  /** Sets (hash) or removes (null) the state of keys, in one transaction; synced_at = now. The last entry of a key id wins. */
  write(pipeline: string, table: string, entries: readonly { readonly keyId: string; readonly hash: string | null }[]): Promise<void>;
  /** Whether a baseline of every row was recorded for the table (first bidirectional run done). */
  hasBaseline(pipeline: string, table: string): Promise<boolean>;
  markBaseline(pipeline: string, table: string): Promise<void>;
  /** Counts states of a table (tests, status). */
  count(pipeline: string, table: string): Promise<number>;
  /** Removes everything of a pipeline (teardown). */
  clear(pipeline: string): Promise<void>;
}

/** The store of the database's engine, on that database's connections (its tables live in its database/schema). */
export function createSyncStateStore(database: Database): SyncStateStore {
  switch (database.engine) {
    case 'mysql':
      return new MysqlSyncStateStore(database);
    case 'postgres':
      return new PostgresSyncStateStore(database);
    default: {
      const unreachable: never = database.engine;
      throw new Error(`no sync state store for engine ${String(unreachable)}`);
    }
  }
}

/**
 * A key's id in the sync state: hex MD5 of its canonical identity (keyIdentity), fixed width for the
 * primary key. The identity depends only on the key's values and agreed kinds, so both shapes of a
 * table pair (either engine) give a key the same id.
 */
export function syncStateKeyId(shape: TableShape, key: KeyTuple): string {
  return md5Hex(keyIdentity(shape, key));
}
