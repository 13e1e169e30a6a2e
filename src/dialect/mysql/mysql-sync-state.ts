/**
 * The sync state (sync-state.ts) in a MySQL/MariaDB database: `rowsync_sync_state` and
 * `rowsync_sync_baselines` in the connection's database, created on the first write.
 *
 * Values are inlined, not sent as `?` placeholders: names as `_utf8mb4 X'<hex>'` (mysql-sql.ts: exact
 * whatever the session's sql_mode, where mysql2's backslash escaping breaks under
 * NO_BACKSLASH_ESCAPES), ids and hashes as plain literals once checked to be hex (syncStateWrites).
 * An ascii key_id compared with such a literal keeps its own collation (the column's is IMPLICIT, the
 * literal's only COERCIBLE), so the primary key serves every lookup.
 */
import { DatabaseError } from '../../errors/index.js';
import { SYNC_BASELINES_TABLE, SYNC_STATE_TABLE, checkSyncKeyIds, syncStateWrites } from '../conflicts-table.js';
import type { Database } from '../dialect.js';
import type { SyncStateStore } from '../sync-state.js';
import type { MysqlTransactions } from './mysql-database.js';
import { quoteIdentifier, textLiteral } from './mysql-sql.js';

/** Ids per IN list and rows per multi-row INSERT: about 80 KB of SQL per statement. */
const IDS_PER_STATEMENT = 1000;

const STATE = quoteIdentifier(SYNC_STATE_TABLE);
const BASELINES = quoteIdentifier(SYNC_BASELINES_TABLE);

/**
 * Names VARCHAR(191) utf8mb4_bin (case-sensitive; MariaDB's _bin collations ignore trailing spaces):
 * 191 characters keep the key within InnoDB's 3072-byte limit on every row format. Ids and hashes
 * CHAR(32) ascii: 32 bytes each. DATETIME(6) in the UTC session (as the checkpoints table).
 */
const CREATE_TABLES = [
  `CREATE TABLE IF NOT EXISTS ${STATE} (` +
    `pipeline VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, ` +
    `table_name VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, ` +
    `key_id CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, ` +
    `row_hash CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL, ` +
    `synced_at DATETIME(6) NOT NULL, PRIMARY KEY (pipeline, table_name, key_id)) ENGINE=InnoDB`,
  `CREATE TABLE IF NOT EXISTS ${BASELINES} (` +
    `pipeline VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, ` +
    `table_name VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, ` +
    `recorded_at DATETIME(6) NOT NULL, PRIMARY KEY (pipeline, table_name)) ENGINE=InnoDB`,
];

export class MysqlSyncStateStore implements SyncStateStore {
  constructor(private readonly database: Database) {}

  async read(pipeline: string, table: string, keyIds: readonly string[]): Promise<Map<string, string>> {
    const result = new Map<string, string>();
    const ids = [...new Set(keyIds)];
    checkSyncKeyIds(ids);
    for (let start = 0; start < ids.length; start += IDS_PER_STATEMENT) {
      const list = ids.slice(start, start + IDS_PER_STATEMENT).map((id) => `'${id}'`).join(', ');
      const rows = await this.orWhenMissing(
        () => this.database.execute(`SELECT key_id, row_hash FROM ${STATE} WHERE ${this.of(pipeline, table)} AND key_id IN (${list})`),
        [],
      );
      for (const row of rows) result.set(String(row.key_id), String(row.row_hash));
    }
    return result;
  }

  /**
   * Deletes by IN list, then multi-row INSERT ... ON DUPLICATE KEY UPDATE, in one transaction on one
   * connection (MysqlTransactions); a write of one statement skips BEGIN/COMMIT.
   */
  async write(pipeline: string, table: string, entries: readonly { readonly keyId: string; readonly hash: string | null }[]): Promise<void> {
    const { set, removed } = syncStateWrites(entries);
    const statements: string[] = [];
    for (let start = 0; start < removed.length; start += IDS_PER_STATEMENT) {
      const list = removed.slice(start, start + IDS_PER_STATEMENT).map((id) => `'${id}'`).join(', ');
      statements.push(`DELETE FROM ${STATE} WHERE ${this.of(pipeline, table)} AND key_id IN (${list})`);
    }
    const names = `${textLiteral(pipeline)}, ${textLiteral(table)}`;
    for (let start = 0; start < set.length; start += IDS_PER_STATEMENT) {
      // One timestamp per statement: UTC_TIMESTAMP(6) is the statement's start, the same for every row.
      const tuples = set.slice(start, start + IDS_PER_STATEMENT).map(({ keyId, hash }) => `(${names}, '${keyId}', '${hash}', UTC_TIMESTAMP(6))`);
      statements.push(
        `INSERT INTO ${STATE} (pipeline, table_name, key_id, row_hash, synced_at) VALUES ${tuples.join(', ')} ` +
          `ON DUPLICATE KEY UPDATE row_hash = VALUES(row_hash), synced_at = VALUES(synced_at)`,
      );
    }
    if (statements.length === 0) return;
    await this.creatingTables(async () => {
      if (statements.length === 1) {
        await this.database.execute(statements[0]!);
        return;
      }
      await this.transactions().transaction('writing the sync state', async (query) => {
        for (const sql of statements) await query(sql);
      });
    });
  }

  async hasBaseline(pipeline: string, table: string): Promise<boolean> {
    const rows = await this.orWhenMissing(() => this.database.execute(`SELECT 1 AS found FROM ${BASELINES} WHERE ${this.of(pipeline, table)}`), []);
    return rows.length > 0;
  }

  async markBaseline(pipeline: string, table: string): Promise<void> {
    await this.creatingTables(() =>
      this.database.execute(
        `INSERT INTO ${BASELINES} (pipeline, table_name, recorded_at) VALUES (${textLiteral(pipeline)}, ${textLiteral(table)}, UTC_TIMESTAMP(6)) ` +
          `ON DUPLICATE KEY UPDATE recorded_at = VALUES(recorded_at)`,
      ),
    );
  }

  async count(pipeline: string, table: string): Promise<number> {
    const rows = await this.orWhenMissing(() => this.database.execute(`SELECT COUNT(*) AS states FROM ${STATE} WHERE ${this.of(pipeline, table)}`), []);
    return Number(rows[0]?.states ?? 0);
  }

  /**
   * The baseline first, then the states, each its own statement: stopped in between, the pipeline is
   * left with states but no baseline, which only makes its next run write a new baseline.
   */
  async clear(pipeline: string): Promise<void> {
    for (const table of [BASELINES, STATE]) {
      await this.orWhenMissing(() => this.database.execute(`DELETE FROM ${table} WHERE pipeline = ${textLiteral(pipeline)}`), []);
    }
  }

  private of(pipeline: string, table: string): string {
    return `pipeline = ${textLiteral(pipeline)} AND table_name = ${textLiteral(table)}`;
  }

  /** Runs `work`; where a table does not exist yet (nothing was ever written), `whenMissing` is the answer. */
  private async orWhenMissing<T>(work: () => Promise<T>, whenMissing: T): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isMissingTable(error)) return whenMissing;
      throw error;
    }
  }

  /**
   * Runs `work`, creating the tables and running it again when one is missing (first write). CREATE
   * TABLE IF NOT EXISTS is safe to race on MySQL/MariaDB (the loser finds the table under its
   * metadata lock and only warns). DDL commits implicitly, so it never runs inside `work`'s
   * transaction: that one was rolled back by the failed statement's error.
   */
  private async creatingTables<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (!isMissingTable(error)) throw error;
      for (const sql of CREATE_TABLES) await this.database.execute(sql);
      return work();
    }
  }

  private transactions(): MysqlTransactions {
    const candidate = this.database as Database & Partial<MysqlTransactions>;
    if (typeof candidate.transaction !== 'function') {
      throw new Error(`connection ${this.database.connectionName}: the MySQL sync state needs a MysqlDatabase (transactions)`);
    }
    return candidate as Database & MysqlTransactions;
  }
}

/** ER_NO_SUCH_TABLE (1146), as the dialect translated it. */
function isMissingTable(error: unknown): boolean {
  return error instanceof DatabaseError && (error.engineCode === 'ER_NO_SUCH_TABLE' || error.engineCode === '1146');
}
