import type { RunReport } from '../../reconcile/report.js';
import { openRuntime, type GlobalOptions } from '../context.js';
import type { Runtime } from '../../../jobs/runtime.js';
import type { RunPayload } from '../../../jobs/reconcile-run.job.js';
import type { DeadLetterPayload } from '../../../jobs/cdc-batch.job.js';
import { readCdcStatus } from '../../../workers/cdc-readers.js';
import { conflictStats } from '../../dialect/conflict-log.js';

export interface StatusOptions extends GlobalOptions {
  readonly json?: boolean;
}

/** `rowsync status`: queue counts, connected workers, current and recent runs. */
export async function statusCommand(options: StatusOptions): Promise<number> {
  const { runtime } = openRuntime(options, 'status');
  try {
    const queues = await Promise.all(
      runtime.queues.all().map(async (queue) => ({
        queue: queue.name,
        counts: await queue.getJobCounts('active', 'waiting', 'waiting-children', 'delayed', 'failed', 'completed'),
        workers: (await queue.getWorkers()).length,
      })),
    );
    const runJobs = await runtime.queues.run.getJobs(['active', 'waiting', 'waiting-children', 'delayed', 'failed', 'completed'], 0, 49);
    const runs = await Promise.all(
      runJobs
        .filter((job) => job?.id)
        .sort((a, b) => b.timestamp - a.timestamp)
        .slice(0, 20)
        .map(async (job) => {
          const data = job.data as RunPayload;
          const report = job.returnvalue as RunReport | null;
          return {
            runId: job.id!,
            pipeline: data.pipeline,
            dryRun: data.dryRun,
            state: await job.getState(),
            enqueuedAt: new Date(job.timestamp).toISOString(),
            progress: await runtime.progress.read(job.id!),
            ...(report ? { durationMs: report.durationMs, tables: report.tables.length } : {}),
            ...(job.failedReason ? { error: job.failedReason } : {}),
          };
        }),
    );
    const workers = Math.max(0, ...queues.map((entry) => entry.workers));
    const cdc = await cdcStatus(runtime);
    const conflicts = await conflictStatus(runtime);
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
          `rows ${progress.rowsCompared}, differences ${progress.differences}${run.error ? `, error: ${run.error}` : ''}`,
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
    await runtime.close();
  }
}

/** Readers' published status with the dead letters waiting per target (from the dead-letter queue). */
async function cdcStatus(runtime: Runtime) {
  const letters = (await runtime.queues.deadLetter.getJobs(['failed', 'waiting', 'active'], 0, -1)).filter(Boolean);
  const deadLetters = (pipeline: string, target: string) =>
    letters.filter((job) => (job.data as DeadLetterPayload).pipeline === pipeline && (job.data as DeadLetterPayload).target === target).length;
  return (await readCdcStatus(runtime.redis, runtime.config.redis.prefix)).map((status) => ({
    ...status,
    stale: status.state !== 'stopped' && Date.now() - status.updatedAt > 30_000,
    targets: status.targets.map((target) => ({ ...target, deadLetters: deadLetters(status.pipeline, target.target) })),
  }));
}

/**
 * Conflict statistics per pipeline and target (the log in each target database). A database that
 * cannot be reached is reported as such instead of failing the whole status.
 */
async function conflictStatus(runtime: Runtime) {
  const entries = runtime.config.pipelines.flatMap((pipeline) => pipeline.targets.map((target) => ({ pipeline: pipeline.name, target })));
  return Promise.all(
    entries.map(async ({ pipeline, target }) => {
      try {
        return { pipeline, target, stats: await conflictStats(runtime.database(target), pipeline, 5) };
      } catch (error) {
        return { pipeline, target, stats: { total: 0, pending: 0, byKind: {}, byTable: {}, byOutcome: {}, recent: [] }, error: (error as Error).message };
      }
    }),
  );
}
