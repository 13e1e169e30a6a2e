import type { LoggedConflict } from '../../dialect/conflict-log.js';
import { openApi, type GlobalOptions } from '../context.js';

export interface ConflictsOptions extends GlobalOptions {
  readonly pipeline: string;
  readonly all?: boolean;
  readonly json?: boolean;
  readonly id?: string[];
  readonly keep?: string;
}

/** `rowsync conflicts list`: pending conflicts of a pipeline (every logged one with --all), per target. */
export async function conflictsListCommand(options: ConflictsOptions): Promise<number> {
  const { rowsync } = openApi(options, 'conflicts');
  try {
    const perTarget = await rowsync.conflicts(options.pipeline, options.all ? { all: true } : {});
    if (options.json) {
      process.stdout.write(`${JSON.stringify(perTarget)}\n`);
      return 0;
    }
    for (const { target, stats, conflicts } of perTarget) {
      process.stdout.write(
        `${options.pipeline} -> ${target}: ${stats.total} conflict(s), ${stats.pending} pending; by kind ${format(stats.byKind)}; by outcome ${format(stats.byOutcome)}\n`,
      );
      for (const conflict of conflicts) process.stdout.write(`  ${describe(conflict)}\n`);
    }
    return 0;
  } finally {
    await rowsync.close();
  }
}

/**
 * `rowsync conflicts resolve --keep <side>`: settles pending conflicts by keeping one side's CURRENT
 * row, written to the other side (see `Rowsync.resolveConflicts`). `--keep` names a side by
 * connection name, or `a`/`source` and `b`/`target`.
 */
export async function conflictsResolveCommand(options: ConflictsOptions): Promise<number> {
  const { rowsync } = openApi(options, 'conflicts');
  try {
    const { resolved, kept } = await rowsync.resolveConflicts(options.pipeline, {
      keep: options.keep ?? '',
      ...(options.id ? { ids: options.id } : {}),
      ...(options.all ? { all: true } : {}),
    });
    process.stderr.write(`resolved ${resolved} conflict(s), keeping the ${kept} side's current rows\n`);
    return 0;
  } finally {
    await rowsync.close();
  }
}

function format(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts).map(([name, count]) => `${name} ${count}`).join(', ') || 'none';
}

function describe(conflict: LoggedConflict): string {
  return `${conflict.id}  ${conflict.table} ${JSON.stringify(conflict.key)}  ${conflict.kind}  ${conflict.policy} -> ${conflict.outcome}  at ${conflict.detectedAt}`;
}
