import { DelayedError, UnrecoverableError, Worker, type Job, type Processor } from 'bullmq';
import pLimit from 'p-limit';
import { DatabaseError, RowsyncError } from '../src/errors/index.js';
import { processApply, type ApplyPayload } from '../jobs/apply.job.js';
import { processCdcBatch, processDeadLetter, type CdcBatchPayload, type DeadLetterPayload } from '../jobs/cdc-batch.job.js';
import { QUEUE_NAMES } from '../jobs/queues.js';
import { processChunk, type ChunkPayload } from '../jobs/reconcile-chunk.job.js';
import { processRun, type RunPayload } from '../jobs/reconcile-run.job.js';
import { processTable, type TablePayload } from '../jobs/reconcile-table.job.js';
import type { Runtime } from '../jobs/runtime.js';
import type { Config } from '../src/config/index.js';
import { pipelineFingerprint } from '../src/config/config-fingerprint.js';
import { jobLogContext, withLogContext } from '../src/logging/log-context.js';
import { runTotals, type RunReport } from '../src/reconcile/report.js';
import { ConcurrencyOverrides } from '../src/coordination/concurrency-overrides.js';
import { watchConcurrency, type ConcurrencyWatcher } from './concurrency-watcher.js';
import { recordJobFailure } from '../src/metrics/instruments.js';

export interface WorkerConcurrency {
  readonly table: number;
  readonly chunk: number;
  readonly apply: number;
  readonly cdc: number;
}

export interface RunningWorkers {
  readonly workers: readonly Worker[];
  /**
   * Jobs at once per kind in this process now: the config (or this process's flags) with the
   * cluster-wide overrides of `rowsync concurrency set` on top, followed without a restart.
   */
  readonly concurrency: Pick<ConcurrencyWatcher, 'current' | 'refresh'>;
  /**
   * SIGTERM behaviour: stops taking jobs and lets the active ones finish for at most `timeoutMs`
   * (default `workers.shutdownTimeoutMs`); jobs still running then are handed back to their queue's
   * wait list, where another worker takes them at once (instead of after lockDuration plus a
   * stalled check). Resolves with how many jobs were handed back.
   */
  close(timeoutMs?: number): Promise<{ readonly handedBack: number }>;
}

/** Which jobs a process takes (beyond the pipelines and databases of its config, always checked). */
export interface WorkerScope {
  /** Only this run's jobs (`rowsync reconcile` / `retry` with in-process workers); CDC batches are left alone. */
  readonly runId?: string;
}

/**
 * How long a job this process leaves alone waits before a worker (perhaps this one) takes it
 * again: another run's job is fine to run elsewhere at once; a job of another configuration waits
 * longer, for a worker that has it.
 */
const OTHER_RUN_DELAY_MS = 1000;
const OTHER_CONFIG_DELAY_MS = 5000;

export interface ForeignJob {
  readonly reason: string;
  /** The job's pipeline is unknown here or has other databases or tables (not merely another run). */
  readonly otherConfig: boolean;
  readonly retryInMs: number;
}

/**
 * Why this process must not run a job, or undefined when it may: another run than the one it
 * works for, a pipeline its config does not define, or one it defines with other databases or
 * tables than the process that enqueued the job (their fingerprints differ; jobs from before
 * fingerprints carry none and are taken when the pipeline exists).
 */
export function foreignJob(data: unknown, config: Config, scope: WorkerScope): ForeignJob | undefined {
  const payload = (data ?? {}) as { runId?: unknown; pipeline?: unknown; fingerprint?: unknown };
  const otherConfig = (reason: string): ForeignJob => ({ reason, otherConfig: true, retryInMs: OTHER_CONFIG_DELAY_MS });
  if (typeof payload.pipeline === 'string') {
    const fingerprint = pipelineFingerprint(config, payload.pipeline);
    if (fingerprint === undefined) return otherConfig(`pipeline ${payload.pipeline} is not in this process's config`);
    if (typeof payload.fingerprint === 'string' && payload.fingerprint !== fingerprint) {
      return otherConfig(`pipeline ${payload.pipeline} has other databases or tables in this process's config than in the one that enqueued the job`);
    }
  }
  if (scope.runId !== undefined && payload.runId !== scope.runId) {
    const reason = typeof payload.runId === 'string' ? `it belongs to run ${payload.runId}, this process works on run ${scope.runId} only` : `this process works on run ${scope.runId} only`;
    return { reason, otherConfig: false, retryInMs: OTHER_RUN_DELAY_MS };
  }
  return undefined;
}

/** Run jobs only plan and wait for children: cheap, so one process can hold many. */
const RUN_CONCURRENCY = 16;

/**
 * Starts this process's workers for every rowsync queue: run, table and chunk queues with the
 * configured concurrency, one worker per apply lane (each lane runs one job at a time across
 * all processes; `apply` caps how many lanes this process works on at once), CDC batches (`cdc`
 * at once; their keys' leases keep two syncs of a key apart) and the dead-letter queue.
 */
export async function startWorkers(
  runtime: Runtime,
  concurrency: Partial<WorkerConcurrency> = {},
  scope: WorkerScope = {},
): Promise<RunningWorkers> {
  const configured = runtime.config.workers;
  const base: WorkerConcurrency = { ...configured.concurrency, ...concurrency };
  // Cluster-wide overrides set at run time (`rowsync concurrency set`) win over the config and flags.
  const overrides = new ConcurrencyOverrides(runtime.redis, runtime.config.redis.prefix);
  const limits: WorkerConcurrency = { ...base, ...(await overrides.read()) };
  await runtime.queues.enforceLaneExclusion();
  const options = {
    connection: runtime.redis,
    prefix: runtime.config.redis.prefix,
    // A worker killed with -9 loses its lock after lockDuration; the stalled check then hands its
    // jobs to another worker (measured ~4 s with 5000/2000 instead of ~60 s with the defaults).
    lockDuration: configured.lockDurationMs,
    stalledInterval: configured.stalledIntervalMs,
    maxStalledCount: 3,
    autorun: true,
  };
  const active = new Set<{ readonly job: Job; readonly token: string | undefined }>();
  let whenIdle: (() => void) | undefined;
  const leftAlone = new Set<string>();
  const logged = <T>(kind: string, processor: Processor<T>): Processor<T> => async (job, token) => {
    const foreign = foreignJob(job.data, runtime.config, scope);
    if (foreign) {
      // Back to the queue for a process that can run it: not failed, no attempt spent.
      await job.moveToDelayed(Date.now() + foreign.retryInMs, token);
      if (job.id && !leftAlone.has(job.id)) {
        if (leftAlone.size > 10_000) leftAlone.clear();
        leftAlone.add(job.id);
        runtime.logger[foreign.otherConfig ? 'warn' : 'debug'](
          { ...jobLogContext(job.queueName, job.id, job.data) },
          `leaving the job to another worker: ${foreign.reason}`,
        );
      }
      throw new DelayedError();
    }
    const entry = { job: job as Job, token };
    active.add(entry);
    try {
      return await withLogContext(jobLogContext(job.queueName, job.id, job.data), () => processor(job, token));
    } catch (error) {
      throw classify(error, kind);
    } finally {
      active.delete(entry);
      if (active.size === 0) whenIdle?.();
    }
  };
  const applyGate = pLimit(limits.apply);
  const workers: Worker[] = [
    new Worker<RunPayload>(QUEUE_NAMES.run, logged('run', (job, token) => processRun(job, token, runtime)), {
      ...options, concurrency: RUN_CONCURRENCY,
    }),
    new Worker<TablePayload>(QUEUE_NAMES.table, logged('table', (job, token) => processTable(job, token, runtime)), {
      ...options, concurrency: limits.table,
    }),
    new Worker<ChunkPayload>(QUEUE_NAMES.chunk, logged('chunk', (job, token) => processChunk(job, token, runtime)), {
      ...options, concurrency: limits.chunk,
    }),
    // Workers for one run take no CDC batch at all (bouncing them would delay a live stream).
    new Worker<CdcBatchPayload>(QUEUE_NAMES.cdc, logged('cdc', (job) => processCdcBatch(job, runtime)), {
      ...options, concurrency: limits.cdc, autorun: scope.runId === undefined,
    }),
    new Worker<DeadLetterPayload>(QUEUE_NAMES.deadLetter, logged('dead-letter', (job) => processDeadLetter(job, runtime)), {
      ...options, concurrency: 1, autorun: scope.runId === undefined,
    }),
    ...runtime.queues.apply.map(
      (queue) =>
        new Worker<ApplyPayload>(queue.name, logged('apply', (job) => applyGate(() => processApply(job, runtime))), {
          ...options, concurrency: 1,
        }),
    ),
  ];
  for (const worker of workers) {
    worker.on('error', (error) => {
      if (isConnectionError(error)) runtime.redisErrors.report(error);
      else runtime.logger.warn({ queue: worker.name, err: error.message }, 'worker error');
    });
    // One line per failed attempt (warn) or exhausted job (error), and nowhere else. Workers of one
    // run (`rowsync reconcile`, `retry`) leave it to their caller, which reports the run's failed jobs.
    worker.on('failed', (job, error) => {
      if (!job) return;
      const exhausted = job.attemptsMade >= (job.opts.attempts ?? 1) || error instanceof UnrecoverableError;
      recordJobFailure(worker.name, exhausted);
      runtime.logger[scope.runId !== undefined ? 'debug' : exhausted ? 'error' : 'warn'](
        { ...jobLogContext(worker.name, job.id, job.data), attempt: job.attemptsMade, exhausted },
        error.message,
      );
    });
  }
  // A finished run, in one line: what `rowsync worker` operators look for in its log.
  workers[0]!.on('completed', (job, report: RunReport | undefined) => {
    if (!report || !Array.isArray(report.tables)) return;
    runtime.logger.info(
      {
        runId: report.runId, pipeline: report.pipeline, status: report.status, dryRun: report.dryRun, durationMs: report.durationMs,
        tables: report.tables.length, ...runTotals(report),
      },
      'run finished',
    );
  });
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  const workerOf = (queue: string) => workers.find((worker) => worker.name === queue)!;
  const watcher = watchConcurrency(overrides, base, limits, {
    table: workerOf(QUEUE_NAMES.table), chunk: workerOf(QUEUE_NAMES.chunk), cdc: workerOf(QUEUE_NAMES.cdc), apply: applyGate,
  }, runtime.logger);
  return {
    workers,
    concurrency: watcher,
    async close(timeoutMs = configured.shutdownTimeoutMs) {
      watcher.stop();
      // Not worker.close() first: a forced close() after it only waits for the same promise.
      await Promise.all(workers.map((worker) => worker.pause(true)));
      let timer: NodeJS.Timeout | undefined;
      const idle = await new Promise<boolean>((resolve) => {
        if (active.size === 0) return resolve(true);
        whenIdle = () => resolve(true);
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      clearTimeout(timer);
      whenIdle = undefined;
      if (!idle) return handBack([...active], workers, runtime);
      await Promise.all(workers.map((worker) => worker.close()));
      return { handedBack: 0 };
    },
  };
}

/**
 * The shutdown bound passed with jobs still running: each goes back to its queue's wait list
 * (its lock with it), then the workers close without waiting. The processors are abandoned, not
 * stopped: the process is about to exit, which ends their connections, and a server rolls back
 * what they had not committed. Their key leases are left to expire (5 s) rather than released: a
 * write of theirs still in flight could otherwise land after another worker's newer one.
 */
async function handBack(
  entries: readonly { readonly job: Job; readonly token: string | undefined }[],
  workers: readonly Worker[],
  runtime: Runtime,
): Promise<{ handedBack: number }> {
  let handedBack = 0;
  for (const { job, token } of entries) {
    try {
      await job.moveToWait(token);
      handedBack += 1;
    } catch (error) {
      // Finished or lost its lock in the meantime: nothing to hand back.
      runtime.logger.warn({ queue: job.queueName, jobId: job.id, err: (error as Error).message }, 'could not hand the job back');
    }
  }
  runtime.logger.warn({ handedBack }, 'shutdown bound reached: active jobs handed back to their queues');
  await Promise.all(workers.map((worker) => worker.close(true)));
  return { handedBack };
}

/**
 * Errors a retry cannot fix (bad credentials, a table whose schema no longer matches, a config
 * problem) fail the job at once; connection losses, deadlocks and timeouts are retried with backoff.
 */
function classify(error: unknown, kind: string): Error {
  if (error instanceof Error && error.name === 'WaitingChildrenError') return error;
  // CDC batches decide for themselves (jobs/cdc-batch.job.ts): what is transient under CDC differs.
  if (kind === 'cdc' || kind === 'dead-letter') return error instanceof Error ? error : new Error(String(error));
  if (error instanceof DatabaseError && error.retryable) return error;
  // Logged once, by the worker's 'failed' listener.
  if (error instanceof RowsyncError) return new UnrecoverableError(`${error.code}: ${error.message}`);
  return error instanceof Error ? error : new Error(String(error));
}

/** Socket-level failures (Redis down or unreachable): reported once per interval, not per event. */
function isConnectionError(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND' || code === 'EPIPE'
    || /Connection is closed|connect ETIMEDOUT/.test(error.message);
}
