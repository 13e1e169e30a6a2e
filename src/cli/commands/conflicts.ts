import { conflictStats, markResolved, readConflicts, type LoggedConflict } from '../../dialect/conflict-log.js';
import { syncStateKeyId } from '../../dialect/sync-state.js';
import type { KeyTuple } from '../../dialect/types.js';
import { rowHash } from '../../dialect/canonical.js';
import { ConfigError } from '../../errors/index.js';
import { leaseIdsOf } from '../../sync/lanes.js';
import type { Runtime, TableContext } from '../../../jobs/runtime.js';
import { openRuntime, type GlobalOptions } from '../context.js';

export interface ConflictsOptions extends GlobalOptions {
  readonly pipeline: string;
  readonly all?: boolean;
  readonly json?: boolean;
  readonly id?: string[];
  readonly keep?: string;
}

/** `rowsync conflicts list`: pending conflicts of a pipeline (every logged one with --all), per target. */
export async function conflictsListCommand(options: ConflictsOptions): Promise<number> {
  const { runtime } = openRuntime(options, 'conflicts');
  try {
    const pipeline = runtime.pipeline(options.pipeline);
    const perTarget = await Promise.all(
      pipeline.targets.map(async (target) => ({
        target,
        stats: await conflictStats(runtime.database(target), pipeline.name),
        conflicts: await readConflicts(runtime.database(target), pipeline.name, options.all ? {} : { status: 'pending' }),
      })),
    );
    if (options.json) {
      process.stdout.write(`${JSON.stringify(perTarget)}\n`);
      return 0;
    }
    for (const { target, stats, conflicts } of perTarget) {
      process.stdout.write(
        `${pipeline.name} -> ${target}: ${stats.total} conflict(s), ${stats.pending} pending; by kind ${format(stats.byKind)}; by outcome ${format(stats.byOutcome)}\n`,
      );
      for (const conflict of conflicts) process.stdout.write(`  ${describe(conflict)}\n`);
    }
    return 0;
  } finally {
    await runtime.close();
  }
}

/**
 * `rowsync conflicts resolve --keep <side>`: settles pending conflicts by keeping one side's CURRENT
 * row (read now, not the one logged), written to the other side under the key's lease; the sync state
 * of bidirectional pipelines records the agreed row, and the log marks the conflict resolved.
 * `--keep` names a side by connection name, or `a`/`source` and `b`/`target`. On a one-way pipeline
 * (`conflict: manual`) keeping the target leaves both rows as they are and only closes the record.
 */
export async function conflictsResolveCommand(options: ConflictsOptions): Promise<number> {
  const { runtime } = openRuntime(options, 'conflicts');
  try {
    const pipeline = runtime.pipeline(options.pipeline);
    if (!options.id && !options.all) throw new ConfigError('--id: name the conflicts to resolve (repeatable), or --all', { subject: '--id' });
    const keep = sideOf(options.keep, pipeline.source, pipeline.targets);
    let resolved = 0;
    for (const target of pipeline.targets) {
      const conflicts = await readConflicts(runtime.database(target), pipeline.name, { status: 'pending', ...(options.id ? { ids: options.id } : {}) });
      for (const conflict of conflicts) {
        const context = await runtime.tableContext(pipeline.name, conflict.table, target);
        await keepSide(runtime, context, conflict, keep);
        await markResolved(runtime.database(target), [conflict.id], keep === 'source' ? 'a_won' : 'b_won');
        resolved += 1;
      }
    }
    process.stderr.write(`resolved ${resolved} conflict(s), keeping the ${keep} side's current rows\n`);
    return 0;
  } finally {
    await runtime.close();
  }
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

function format(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts).map(([name, count]) => `${name} ${count}`).join(', ') || 'none';
}

function describe(conflict: LoggedConflict): string {
  return `${conflict.id}  ${conflict.table} ${JSON.stringify(conflict.key)}  ${conflict.kind}  ${conflict.policy} -> ${conflict.outcome}  at ${conflict.detectedAt}`;
}
