import { CONFLICTS_TABLE } from './conflicts-table.js';
import type { Database } from './dialect.js';
import type { PortableValue } from './types.js';

/**
 * Reading the conflict log (`rowsync_conflicts` in each target database, written by
 * `Database.recordConflicts`): what `rowsync conflicts list`, `rowsync status` and the library's
 * conflict statistics show, and marking a pending conflict resolved. Engine-specific only in its
 * placeholders and JSON columns, so both engines share these functions.
 */

export interface LoggedConflict {
  readonly id: string;
  readonly pipeline: string;
  readonly table: string;
  readonly key: Readonly<Record<string, PortableValue>>;
  /** Side A (the source) and side B (the target) as they were; null: the row was absent there. */
  readonly sourceRow: Readonly<Record<string, PortableValue>> | null;
  readonly targetRow: Readonly<Record<string, PortableValue>> | null;
  /** `insert-insert`, `update-update`, `update-delete`; one-way `manual` pairs: `update-update`. */
  readonly kind: string;
  readonly policy: string;
  readonly outcome: string;
  readonly status: 'pending' | 'resolved';
  readonly detectedAt: string;
  readonly resolvedAt: string | null;
}

export interface ConflictStats {
  readonly total: number;
  readonly pending: number;
  readonly byKind: Readonly<Record<string, number>>;
  readonly byTable: Readonly<Record<string, number>>;
  readonly byOutcome: Readonly<Record<string, number>>;
  /** The newest conflicts, newest first. */
  readonly recent: readonly LoggedConflict[];
}

const EMPTY_STATS: ConflictStats = { total: 0, pending: 0, byKind: {}, byTable: {}, byOutcome: {}, recent: [] };

/** Conflicts of a pipeline in one database, newest first (`status` filters). */
export async function readConflicts(
  database: Database,
  pipeline: string,
  options: { readonly status?: 'pending' | 'resolved'; readonly limit?: number; readonly ids?: readonly string[] } = {},
): Promise<LoggedConflict[]> {
  const mark = placeholders(database);
  const params: unknown[] = [pipeline];
  let where = `pipeline = ${mark(1)}`;
  if (options.status) {
    params.push(options.status);
    where += ` AND status = ${mark(params.length)}`;
  }
  if (options.ids && options.ids.length > 0) {
    where += ` AND id IN (${options.ids.map((id) => (params.push(id), mark(params.length))).join(', ')})`;
  }
  const rows = await tolerateMissing(() =>
    database.execute(
      `SELECT id, pipeline, table_name, row_key, source_row, target_row, kind, policy, outcome, status, detected_at, resolved_at ` +
        `FROM ${database.quoteIdentifier(CONFLICTS_TABLE)} WHERE ${where} ORDER BY detected_at DESC, id LIMIT ${Math.max(1, options.limit ?? 1000)}`,
      params,
    ),
  );
  return (rows ?? []).map(conflictOf);
}

/** Logged conflicts of one (table, kind, outcome, status), as `conflictCounts` groups them. */
export interface ConflictCount {
  readonly table: string;
  readonly kind: string;
  readonly outcome: string;
  readonly status: 'pending' | 'resolved';
  readonly count: number;
}

/**
 * The log of a pipeline counted per table, kind, outcome and status in one GROUP BY (the statistics
 * below, and the `rowsync_conflicts` gauge); empty before the first conflict.
 */
export async function conflictCounts(database: Database, pipeline: string): Promise<ConflictCount[]> {
  const mark = placeholders(database);
  const grouped = await tolerateMissing(() =>
    database.execute(
      `SELECT table_name, kind, outcome, status, COUNT(*) AS n FROM ${database.quoteIdentifier(CONFLICTS_TABLE)} ` +
        `WHERE pipeline = ${mark(1)} GROUP BY table_name, kind, outcome, status`,
      [pipeline],
    ),
  );
  return (grouped ?? []).map((row) => {
    const status = row.status === 'pending' ? 'pending' : 'resolved';
    return {
      table: String(row.table_name),
      kind: String(row.kind ?? 'update-update'),
      outcome: String(row.outcome ?? status),
      status,
      count: Number(row.n),
    };
  });
}

/** What `getConflictStats` answers: total, pending, by kind, table and outcome, and the newest ones. */
export async function conflictStats(database: Database, pipeline: string, recent = 10): Promise<ConflictStats> {
  const grouped = await conflictCounts(database, pipeline);
  if (grouped.length === 0) return EMPTY_STATS;
  const byKind: Record<string, number> = {};
  const byTable: Record<string, number> = {};
  const byOutcome: Record<string, number> = {};
  let total = 0;
  let pending = 0;
  for (const { table, kind, outcome, status, count } of grouped) {
    total += count;
    if (status === 'pending') pending += count;
    byKind[kind] = (byKind[kind] ?? 0) + count;
    byTable[table] = (byTable[table] ?? 0) + count;
    byOutcome[outcome] = (byOutcome[outcome] ?? 0) + count;
  }
  return { total, pending, byKind, byTable, byOutcome, recent: await readConflicts(database, pipeline, { limit: recent }) };
}

/** Marks pending conflicts resolved, with the side that was kept. */
export async function markResolved(database: Database, ids: readonly string[], outcome: string): Promise<void> {
  if (ids.length === 0) return;
  const mark = placeholders(database);
  const now = database.engine === 'mysql' ? 'UTC_TIMESTAMP(6)' : 'now()';
  await database.execute(
    `UPDATE ${database.quoteIdentifier(CONFLICTS_TABLE)} SET status = 'resolved', outcome = ${mark(1)}, resolved_at = ${now} ` +
      `WHERE status = 'pending' AND id IN (${ids.map((_, index) => mark(index + 2)).join(', ')})`,
    [outcome, ...ids],
  );
}

function placeholders(database: Database): (index: number) => string {
  return database.engine === 'mysql' ? () => '?' : (index) => `$${index}`;
}

/** The log does not exist before the first conflict: nothing to read then. */
async function tolerateMissing<T>(query: () => Promise<T>): Promise<T | undefined> {
  try {
    return await query();
  } catch (error) {
    const engineCode = (error as { engineCode?: string }).engineCode;
    if (engineCode === 'ER_NO_SUCH_TABLE' || engineCode === '42P01' || /doesn't exist|does not exist/.test((error as Error).message)) return undefined;
    throw error;
  }
}

function conflictOf(row: Record<string, unknown>): LoggedConflict {
  const json = (value: unknown) => (value === null || value === undefined ? null : typeof value === 'string' ? JSON.parse(value) : value) as Record<string, PortableValue> | null;
  const time = (value: unknown) => (value === null || value === undefined ? null : value instanceof Date ? value.toISOString() : String(value));
  return {
    id: String(row.id),
    pipeline: String(row.pipeline),
    table: String(row.table_name),
    key: json(row.row_key) ?? {},
    sourceRow: json(row.source_row),
    targetRow: json(row.target_row),
    kind: String(row.kind ?? 'update-update'),
    policy: String(row.policy ?? 'manual'),
    outcome: String(row.outcome ?? (row.status === 'pending' ? 'pending' : 'resolved')),
    status: row.status === 'resolved' ? 'resolved' : 'pending',
    detectedAt: time(row.detected_at) ?? '',
    resolvedAt: time(row.resolved_at),
  };
}
