/**
 * The sync state (sync-state.ts) in a PostgreSQL database: `rowsync_sync_state` and
 * `rowsync_sync_baselines`, created on the first write. Table names are left unqualified: the pool's
 * search_path is the URL's schema (postgres-connection.ts), so they live beside the synced tables.
 *
 * Every call is one statement through `Database.execute`, so each is atomic without a transaction of
 * its own: a write passes its ids and hashes as arrays (unnest), whatever their number.
 */
import { DatabaseError } from '../../errors/index.js';
import { SYNC_BASELINES_TABLE, SYNC_STATE_TABLE, checkSyncKeyIds, syncStateWrites } from '../conflicts-table.js';
import type { Database } from '../dialect.js';
import type { SyncStateStore } from '../sync-state.js';
import { quoteIdentifier } from './postgres-sql.js';

/** Ids per read (one array parameter each). */
const IDS_PER_READ = 1000;

const STATE = quoteIdentifier(SYNC_STATE_TABLE);
const BASELINES = quoteIdentifier(SYNC_BASELINES_TABLE);

/** SQLSTATE undefined_table. */
const UNDEFINED_TABLE = '42P01';

/** char(32) ids and hashes, compared as bpchar[] parameters so the primary key serves the lookups. */
const CREATE_TABLES = [
  `CREATE TABLE IF NOT EXISTS ${STATE} (pipeline text NOT NULL, table_name text NOT NULL, key_id char(32) NOT NULL, ` +
    `row_hash char(32) NOT NULL, synced_at timestamptz NOT NULL, PRIMARY KEY (pipeline, table_name, key_id))`,
  `CREATE TABLE IF NOT EXISTS ${BASELINES} (pipeline text NOT NULL, table_name text NOT NULL, ` +
    `recorded_at timestamptz NOT NULL, PRIMARY KEY (pipeline, table_name))`,
];

export class PostgresSyncStateStore implements SyncStateStore {
  constructor(private readonly database: Database) {}

  async read(pipeline: string, table: string, keyIds: readonly string[]): Promise<Map<string, string>> {
    const result = new Map<string, string>();
    const ids = [...new Set(keyIds)];
    checkSyncKeyIds(ids);
    for (let start = 0; start < ids.length; start += IDS_PER_READ) {
      // One primary key probe per id, forced (OFFSET 0 keeps the subquery from being flattened into a
      // join): with `key_id = ANY($3)`, or a plain join, the planner scans the whole table's states
      // whenever its statistics predate the rows of this (pipeline, table), e.g. right after a first
      // baseline: measured 57 ms (hashed filter over 100k states) to 2.7 s (linear) per 1000 ids,
      // against 4 ms for the probes.
      const rows = await this.orWhenMissing(
        () =>
          this.database.execute(
            `SELECT state.key_id, state.row_hash FROM unnest($3::bpchar[]) AS wanted(key_id) CROSS JOIN LATERAL ` +
              `(SELECT key_id, row_hash FROM ${STATE} WHERE pipeline = $1 AND table_name = $2 AND key_id = wanted.key_id OFFSET 0) AS state`,
            [pipeline, table, ids.slice(start, start + IDS_PER_READ)],
          ),
        [],
      );
      for (const row of rows) result.set(String(row.key_id), String(row.row_hash));
    }
    return result;
  }

  /**
   * One statement: the removals in a data-modifying CTE, the states as one INSERT ... SELECT over
   * unnest(ids, hashes) ON CONFLICT DO UPDATE. The ids of the two parts are disjoint (syncStateWrites),
   * so no row is touched twice. The removals use `key_id = ANY($3)`, not read's forced probes: while
   * the statistics predate this table's states (see read) a removal filters all of them once per call
   * (a hashed filter, ~60 ms per 100k states); removals are rare and the next ANALYZE ends it.
   */
  async write(pipeline: string, table: string, entries: readonly { readonly keyId: string; readonly hash: string | null }[]): Promise<void> {
    const { set, removed } = syncStateWrites(entries);
    if (set.length === 0 && removed.length === 0) return;
    const sql =
      `WITH removed AS (DELETE FROM ${STATE} WHERE pipeline = $1 AND table_name = $2 AND key_id = ANY($3::bpchar[])) ` +
      `INSERT INTO ${STATE} (pipeline, table_name, key_id, row_hash, synced_at) ` +
      `SELECT $1::text, $2::text, entry.key_id, entry.row_hash, now() FROM unnest($4::bpchar[], $5::bpchar[]) AS entry(key_id, row_hash) ` +
      `ON CONFLICT (pipeline, table_name, key_id) DO UPDATE SET row_hash = EXCLUDED.row_hash, synced_at = EXCLUDED.synced_at`;
    const params = [pipeline, table, removed, set.map((entry) => entry.keyId), set.map((entry) => entry.hash)];
    await this.creatingTables(() => this.database.execute(sql, params));
  }

  async hasBaseline(pipeline: string, table: string): Promise<boolean> {
    const rows = await this.orWhenMissing(
      () => this.database.execute(`SELECT 1 AS found FROM ${BASELINES} WHERE pipeline = $1 AND table_name = $2`, [pipeline, table]),
      [],
    );
    return rows.length > 0;
  }

  async markBaseline(pipeline: string, table: string): Promise<void> {
    await this.creatingTables(() =>
      this.database.execute(
        `INSERT INTO ${BASELINES} (pipeline, table_name, recorded_at) VALUES ($1, $2, now()) ` +
          `ON CONFLICT (pipeline, table_name) DO UPDATE SET recorded_at = EXCLUDED.recorded_at`,
        [pipeline, table],
      ),
    );
  }

  async count(pipeline: string, table: string): Promise<number> {
    const rows = await this.orWhenMissing(
      () => this.database.execute(`SELECT count(*) AS states FROM ${STATE} WHERE pipeline = $1 AND table_name = $2`, [pipeline, table]),
      [],
    );
    return Number(rows[0]?.states ?? 0);
  }

  /**
   * The baseline first, then the states, each its own statement: stopped in between, the pipeline is
   * left with states but no baseline, which only makes its next run write a new baseline.
   */
  async clear(pipeline: string): Promise<void> {
    for (const table of [BASELINES, STATE]) {
      await this.orWhenMissing(() => this.database.execute(`DELETE FROM ${table} WHERE pipeline = $1`, [pipeline]), []);
    }
  }

  /** Runs `work`; where a table does not exist yet (nothing was ever written), `whenMissing` is the answer. */
  private async orWhenMissing<T>(work: () => Promise<T>, whenMissing: T): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (engineCode(error) === UNDEFINED_TABLE) return whenMissing;
      throw error;
    }
  }

  /** Runs `work`, creating the tables and running it again when one is missing (first write). */
  private async creatingTables<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (engineCode(error) !== UNDEFINED_TABLE) throw error;
      for (const sql of CREATE_TABLES) {
        await this.database.execute(sql).catch((failure: unknown) => {
          // IF NOT EXISTS is not atomic: of two sessions creating the table at once, the loser fails on
          // the catalog's unique index (23505), with duplicate_table (42P07) or, for the table's row type,
          // duplicate_object (42710: "type ... already exists", seen in tests). The table exists.
          const code = engineCode(failure);
          if (code !== '23505' && code !== '42P07' && code !== '42710') throw failure;
        });
      }
      return work();
    }
  }
}

function engineCode(error: unknown): string | undefined {
  return error instanceof DatabaseError ? error.engineCode : undefined;
}
