import { ConfigError } from '../../errors/index.js';
import { findPipeline } from '../../config/index.js';
import { newRunId } from '../../../jobs/job-ids.js';
import { enqueueRun } from '../../../jobs/reconcile-run.job.js';
import type { Runtime } from '../../../jobs/runtime.js';
import { startWorkers } from '../../../workers/start-workers.js';
import { openRuntime, type GlobalOptions } from '../context.js';
import { formatReport } from '../print-report.js';
import { ProgressDisplay } from '../progress-display.js';
import { watchRun, type RunOutcome } from '../run-monitor.js';

export interface ReconcileOptions extends GlobalOptions {
  readonly pipeline: string;
  readonly table?: string[];
  readonly dryRun?: boolean;
  readonly json?: boolean;
  readonly workers?: number;
  readonly wait?: boolean;
  readonly runId?: string;
}

/** `rowsync reconcile`: enqueue a run, process it with in-process workers, wait and report. */
export async function reconcileCommand(options: ReconcileOptions): Promise<number> {
  const { config, runtime } = openRuntime(options, 'reconcile');
  try {
    const pipeline = findPipeline(config, options.pipeline);
    if (options.table && pipeline.tables) {
      const unknown = options.table.filter((table) => !pipeline.tables!.includes(table));
      if (unknown.length > 0) {
        throw new ConfigError(`--table: ${unknown.join(', ')} not in pipeline ${pipeline.name} (tables: ${pipeline.tables.join(', ')})`, {
          subject: '--table',
        });
      }
    }
    const runId = options.runId ?? newRunId(pipeline.name);
    const added = await enqueueRun(runtime, {
      runId,
      pipeline: pipeline.name,
      ...(options.table ? { tables: [...new Set(options.table)] } : {}),
      dryRun: Boolean(options.dryRun),
      requestedAt: Date.now(),
    });
    process.stderr.write(`${added ? 'enqueued' : 'already enqueued:'} run ${runId}\n`);
    if (options.wait === false) {
      if (options.json) process.stdout.write(`${JSON.stringify({ runId, pipeline: pipeline.name, status: 'waiting' })}\n`);
      return 0;
    }
    return await processAndWait(runtime, runId, { ...options, ...(options.config ? { configFile: options.config } : {}) });
  } finally {
    await runtime.close();
  }
}

/** Runs in-process workers (unless `--workers 0`) until the run ends, then prints the outcome. */
export async function processAndWait(runtime: Runtime, runId: string, options: { workers?: number; json?: boolean; configFile?: string }): Promise<number> {
  const workerCount = options.workers ?? runtime.config.workers.concurrency.chunk;
  const workers = workerCount > 0 ? await startWorkers(runtime, { chunk: workerCount }) : undefined;
  const display = new ProgressDisplay(!options.json || process.stderr.isTTY);
  let outcome: RunOutcome;
  try {
    outcome = await watchRun(runtime, runId, { onProgress: (counts) => display.update(counts) });
  } finally {
    display.stop();
    await workers?.close();
  }
  return printOutcome(outcome, runId, options);
}

function printOutcome(outcome: RunOutcome, runId: string, options: { json?: boolean; configFile?: string }): number {
  switch (outcome.kind) {
    case 'completed':
      process.stdout.write(options.json ? `${JSON.stringify(outcome.report)}\n` : formatReport(outcome.report));
      return 0;
    case 'stuck': {
      const retry = `rowsync retry --config ${options.configFile ?? 'FILE'} --run ${runId}`;
      for (const job of outcome.stuck) {
        // Queue and job id: what an operator looks for in Bull Board to retry this one job.
        process.stderr.write(`error: ${job.description} (queue ${job.queue}, job ${job.id}) failed after ${job.attemptsMade} attempt(s): ${job.reason}\n`);
      }
      process.stderr.write(
        `run ${runId} is waiting for ${outcome.stuck.length} failed job(s). Fix the cause, then retry them from Bull Board ` +
          `(rowsync board) or with: ${retry}\n`,
      );
      if (options.json) process.stdout.write(`${JSON.stringify({ runId, status: 'failed', failedJobs: outcome.stuck })}\n`);
      return 1;
    }
    case 'failed':
      process.stderr.write(`error: run ${runId} failed: ${outcome.reason}\n`);
      if (options.json) process.stdout.write(`${JSON.stringify({ runId, status: 'failed', error: outcome.reason })}\n`);
      return 1;
    case 'missing':
      process.stderr.write(`error: run ${runId} is not in Redis (removed, or a different redis.prefix)\n`);
      return 1;
    default: {
      const unreachable: never = outcome;
      throw new Error(`unknown outcome ${String(unreachable)}`);
    }
  }
}
