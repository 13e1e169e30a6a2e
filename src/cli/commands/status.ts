import { openApi, type GlobalOptions } from '../context.js';

export interface StatusOptions extends GlobalOptions {
  readonly json?: boolean;
}

/** `rowsync status`: queue counts, connected workers, current and recent runs. */
export async function statusCommand(options: StatusOptions): Promise<number> {
  const { rowsync } = openApi(options, 'status');
  try {
    const { workers, queues, runs, cdc, conflicts } = await rowsync.status();
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ workers, queues, runs, cdc, conflicts })}\n`);
      return 0;
    }
    const lines = [`workers connected: ${workers}`, 'queues:'];
    for (const { queue, counts } of queues) {
      lines.push(`  ${queue.padEnd(16)} ${Object.entries(counts).map(([state, count]) => `${state} ${count}`).join(', ')}`);
    }
    lines.push(runs.length ? 'runs (newest first):' : 'runs: none');
    for (const run of runs) {
      const { progress } = run;
      lines.push(
        `  ${run.runId}  ${run.state}${run.dryRun ? ' (dry run)' : ''}  chunks ${progress.chunksDone}/${progress.chunksPlanned}, ` +
          `rows ${progress.rowsCompared}, differences ${progress.differences}${run.error ? `, error: ${run.error}` : ''}` +
          // Held back by reconcile.maxLoad / maxReplicaLag: say by what.
          `${progress.waiting && run.state !== 'completed' && run.state !== 'failed' ? `, waiting: ${progress.waiting}` : ''}`,
      );
    }
    lines.push(cdc.length ? 'cdc (per pipeline and target):' : 'cdc: no reader has run');
    for (const pipeline of cdc) {
      lines.push(`  ${pipeline.stream}  ${pipeline.mode}  ${pipeline.state}${pipeline.stale ? ' (no report for over 30 s)' : ''}${pipeline.error ? `: ${pipeline.error}` : ''}`);
      for (const target of pipeline.targets) {
        lines.push(
          `    -> ${target.target}  position ${target.checkpoint}, lag ${(target.lagMs / 1000).toFixed(1)} s, ` +
            `queued ${target.queuedJobs}, dead letters ${target.deadLetters}${target.detached ? ', catching up' : ''}`,
        );
      }
    }
    const logged = conflicts.filter((entry) => entry.stats.total > 0);
    lines.push(logged.length ? 'conflicts (per pipeline and target):' : 'conflicts: none logged');
    for (const { pipeline, target, stats } of logged) {
      const counts = (of: Readonly<Record<string, number>>) => Object.entries(of).map(([name, count]) => `${name} ${count}`).join(', ');
      lines.push(`  ${pipeline} -> ${target}: ${stats.total} total, ${stats.pending} pending; ${counts(stats.byKind)}; ${counts(stats.byOutcome)}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await rowsync.close();
  }
}
