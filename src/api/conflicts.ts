import type { Runtime, TableContext } from '../../jobs/runtime.js';
import { rowHash } from '../dialect/canonical.js';
import { conflictStats as targetConflictStats, markResolved, readConflicts, type ConflictStats, type LoggedConflict } from '../dialect/conflict-log.js';
import { syncStateKeyId } from '../dialect/sync-state.js';
import type { KeyTuple } from '../dialect/types.js';
import { ConfigError } from '../errors/index.js';
import { leaseIdsOf } from '../sync/lanes.js';

/**
 * The conflict log of a pipeline (`rowsync_conflicts` in each target database): statistics, the
 * logged conflicts, and settling pending ones by hand. What `rowsync conflicts list|resolve` and
 * `rowsync status` show, and the library's `conflictStats()` / `conflicts()` / `resolveConflicts()`.
 */

/** One target's conflicts: its statistics and the conflicts asked for. */
export interface TargetConflicts {
  readonly target: string;
  readonly stats: ConflictStats;
  readonly conflicts: readonly LoggedConflict[];
}

/** A pipeline's conflict statistics over all its targets, and each target's own. */
export interface PipelineConflictStats extends ConflictStats {
  readonly pipeline: string;
  readonly targets: readonly { readonly target: string; readonly stats: ConflictStats; readonly error?: string }[];
}

export interface ListConflictsOptions {
  /** Resolved ones too (default: pending only). */
  readonly all?: boolean;
  /** Only these conflict ids. */
  readonly ids?: readonly string[];
}

/** Statistics and conflicts per target of a pipeline (`rowsync conflicts list`). */
export async function listConflicts(runtime: Runtime, pipelineName: string, options: ListConflictsOptions = {}): Promise<TargetConflicts[]> {
  const pipeline = runtime.pipeline(pipelineName);
  return Promise.all(
    pipeline.targets.map(async (target) => ({
      target,
      stats: await targetConflictStats(runtime.database(target), pipeline.name),
      conflicts: await readConflicts(runtime.database(target), pipeline.name, {
        ...(options.all ? {} : { status: 'pending' as const }),
        ...(options.ids ? { ids: options.ids } : {}),
      }),
    })),
  );
}

/**
 * What `getConflictStats` answered: total, pending, by kind (`insert-insert`, `update-update`,
 * `update-delete`), by table and by outcome, summed over the pipeline's targets, and the `recent`
 * newest conflicts (default 10) over all of them. A target that cannot be read is reported with its
 * error and counts nothing.
 */
export async function pipelineConflictStats(runtime: Runtime, pipelineName: string, options: { readonly recent?: number } = {}): Promise<PipelineConflictStats> {
  const pipeline = runtime.pipeline(pipelineName);
  const recent = options.recent ?? 10;
  const targets = await Promise.all(
    pipeline.targets.map(async (target) => {
      try {
        return { target, stats: await targetConflictStats(runtime.database(target), pipeline.name, recent) };
      } catch (error) {
        return { target, stats: EMPTY_STATS, error: (error as Error).message };
      }
    }),
  );
  const sum = (pick: (stats: ConflictStats) => Readonly<Record<string, number>>) => {
    const total: Record<string, number> = {};
    for (const { stats } of targets) for (const [name, count] of Object.entries(pick(stats))) total[name] = (total[name] ?? 0) + count;
    return total;
  };
  return {
    pipeline: pipeline.name,
    total: targets.reduce((total, { stats }) => total + stats.total, 0),
    pending: targets.reduce((total, { stats }) => total + stats.pending, 0),
    byKind: sum((stats) => stats.byKind),
    byTable: sum((stats) => stats.byTable),
    byOutcome: sum((stats) => stats.byOutcome),
    recent: targets
      .flatMap(({ stats }) => stats.recent)
      .sort((a, b) => (a.detectedAt < b.detectedAt ? 1 : a.detectedAt > b.detectedAt ? -1 : 0))
      .slice(0, recent),
    targets,
  };
}

const EMPTY_STATS: ConflictStats = { total: 0, pending: 0, byKind: {}, byTable: {}, byOutcome: {}, recent: [] };

export interface ResolveConflictsOptions {
  /** The side whose current row is kept: `a` / `source`, `b` / `target`, or a connection of the pipeline. */
  readonly keep: string;
  /** These pending conflicts; or `all`. */
  readonly ids?: readonly string[];
  readonly all?: boolean;
}

/**
 * Settles pending conflicts by keeping one side's CURRENT row (read now, not the one logged),
 * written to the other side under the key's lease; the sync state of bidirectional pipelines records
 * the agreed row, and the log marks the conflict resolved. On a one-way pipeline (`conflict: manual`)
 * keeping the target leaves both rows as they are and only closes the record. Resolves with how many
 * were settled and which side was kept.
 */
export async function resolveConflicts(
  runtime: Runtime,
  pipelineName: string,
  options: ResolveConflictsOptions,
): Promise<{ readonly resolved: number; readonly kept: 'source' | 'target' }> {
  const pipeline = runtime.pipeline(pipelineName);
  if (!options.ids && !options.all) throw new ConfigError('--id: name the conflicts to resolve (repeatable), or --all', { subject: '--id' });
  const keep = sideOf(options.keep, pipeline.source, pipeline.targets);
  let resolved = 0;
  for (const target of pipeline.targets) {
    const conflicts = await readConflicts(runtime.database(target), pipeline.name, { status: 'pending', ...(options.ids ? { ids: options.ids } : {}) });
    for (const conflict of conflicts) {
      const context = await runtime.tableContext(pipeline.name, conflict.table, target);
      await keepSide(runtime, context, conflict, keep);
      await markResolved(runtime.database(target), [conflict.id], keep === 'source' ? 'a_won' : 'b_won');
      resolved += 1;
    }
  }
  return { resolved, kept: keep };
}

function sideOf(keep: string | undefined, source: string, targets: readonly string[]): 'source' | 'target' {
  if (keep === 'a' || keep === 'source' || keep === source) return 'source';
  if (keep === 'b' || keep === 'target' || (keep !== undefined && targets.includes(keep))) return 'target';
  throw new ConfigError(`--keep: expected a, b, source, target or a connection of the pipeline (${[source, ...targets].join(', ')}), got '${keep ?? ''}'`, {
    subject: '--keep',
  });
}

async function keepSide(runtime: Runtime, context: TableContext, conflict: LoggedConflict, keep: 'source' | 'target'): Promise<void> {
  const { pair } = context;
  // A one-way pipeline never writes its source: keeping the target's row is leaving it as it is.
  if (context.pipeline.mode !== 'bidirectional' && keep === 'target') return;
  const key: KeyTuple = pair.source.keyIndexes.map((index) => conflict.key[pair.source.columns[index]!.name] ?? null);
  const lease = (await runtime.keyLeases.hold(leaseIdsOf(pair.source, [key])))!;
  try {
    const [kept] = keep === 'source' ? await context.source.fetchByKeys(pair.source, [key]) : await context.target.fetchByKeys(pair.target, [key]);
    const [other, otherShape] = keep === 'source' ? [context.target, pair.target] : [context.source, pair.source];
    await other.applyChanges(otherShape, kept ? { upserts: [kept], deletes: [] } : { upserts: [], deletes: [key] });
    if (context.pipeline.mode === 'bidirectional') {
      await runtime.syncState(context.target.connectionName).write(context.pipeline.name, pair.source.table, [
        { keyId: syncStateKeyId(pair.source, key), hash: kept ? rowHash(pair.source, kept) : null },
      ]);
    }
  } finally {
    await lease.release();
  }
}
