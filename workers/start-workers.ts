import { UnrecoverableError, Worker, type Job, type Processor } from 'bullmq';
import pLimit from 'p-limit';
import { DatabaseError, RowsyncError } from '../src/errors/index.js';
import { processApply, type ApplyPayload } from '../jobs/apply.job.js';
import { processCdcBatch, processDeadLetter, type CdcBatchPayload, type DeadLetterPayload } from '../jobs/cdc-batch.job.js';
import { QUEUE_NAMES } from '../jobs/queues.js';
import { processChunk, type ChunkPayload } from '../jobs/reconcile-chunk.job.js';
import { processRun, type RunPayload } from '../jobs/reconcile-run.job.js';
import { processTable, type TablePayload } from '../jobs/reconcile-table.job.js';
import type { Runtime } from '../jobs/runtime.js';

export interface WorkerConcurrency {
  readonly table: number;
  readonly chunk: number;
  readonly apply: number;
  readonly cdc: number;
}

export interface RunningWorkers {
  readonly workers: readonly Worker[];
  /** Stops taking jobs and waits for the active ones to finish (SIGTERM behaviour). */
  close(): Promise<void>;
}

/** Run jobs only plan and wait for children: cheap, so one process can hold many. */
const RUN_CONCURRENCY = 16;

/**
 * Starts this process's workers for every rowsync queue: run, table and chunk queues with the
 * configured concurrency, one worker per apply lane (each lane runs one job at a time across
 * all processes; `apply` caps how many lanes this process works on at once), CDC batches (`cdc`
 * at once; their keys' leases keep two syncs of a key apart) and the dead-letter queue.
 */
export async function startWorkers(runtime: Runtime, concurrency: Partial<WorkerConcurrency> = {}): Promise<RunningWorkers> {
  const configured = runtime.config.workers;
  const limits: WorkerConcurrency = { ...configured.concurrency, ...concurrency };
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
  const logged = <T>(kind: string, processor: Processor<T>): Processor<T> => async (job, token) => {
    try {
      return await processor(job, token);
    } catch (error) {
      throw classify(error, kind, job as Job, runtime);
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
    new Worker<CdcBatchPayload>(QUEUE_NAMES.cdc, logged('cdc', (job) => processCdcBatch(job, runtime)), {
      ...options, concurrency: limits.cdc,
    }),
    new Worker<DeadLetterPayload>(QUEUE_NAMES.deadLetter, logged('dead-letter', (job) => processDeadLetter(job, runtime)), {
      ...options, concurrency: 1,
    }),
    ...runtime.queues.apply.map(
      (queue) =>
        new Worker<ApplyPayload>(queue.name, logged('apply', (job) => applyGate(() => processApply(job, runtime))), {
          ...options, concurrency: 1,
        }),
    ),
  ];
  for (const worker of workers) {
    worker.on('error', (error) => runtime.logger.warn({ queue: worker.name, err: error.message }, 'worker error'));
    worker.on('failed', (job, error) => {
      if (!job) return;
      const exhausted = job.attemptsMade >= (job.opts.attempts ?? 1) || error instanceof UnrecoverableError;
      runtime.logger[exhausted ? 'error' : 'warn'](
        { queue: worker.name, jobId: job.id, attempt: job.attemptsMade, exhausted },
        error.message,
      );
    });
  }
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  return {
    workers,
    async close() {
      await Promise.all(workers.map((worker) => worker.close()));
    },
  };
}

/**
 * Errors a retry cannot fix (bad credentials, a table whose schema no longer matches, a config
 * problem) fail the job at once; connection losses, deadlocks and timeouts are retried with backoff.
 */
function classify(error: unknown, kind: string, job: Job, runtime: Runtime): Error {
  if (error instanceof Error && error.name === 'WaitingChildrenError') return error;
  // CDC batches decide for themselves (jobs/cdc-batch.job.ts): what is transient under CDC differs.
  if (kind === 'cdc' || kind === 'dead-letter') return error instanceof Error ? error : new Error(String(error));
  if (error instanceof DatabaseError && error.retryable) return error;
  if (error instanceof RowsyncError) {
    runtime.logger.error({ kind, jobId: job.id, code: error.code, subject: error.subject }, error.message);
    return new UnrecoverableError(`${error.code}: ${error.message}`);
  }
  return error instanceof Error ? error : new Error(String(error));
}
