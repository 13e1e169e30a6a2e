import type { Job, Queue } from 'bullmq';
import type { Runtime } from '../../jobs/runtime.js';
import type { RunProgressCounts } from '../../jobs/run-progress.js';
import type { RunReport } from '../reconcile/report.js';
import type { FailedJob } from './run-failed-error.js';

/**
 * Following a run to its end from Redis, whoever processes it: `Rowsync.waitForRun` (and so
 * `reconcile()`, `rowsync reconcile`, `rowsync retry`) and the test harness.
 */

/** A job of a run that exhausted its attempts (or failed unrecoverably) and now holds the run. */
export type StuckJob = FailedJob;

export type RunOutcome =
  | { readonly kind: 'completed'; readonly report: RunReport }
  | { readonly kind: 'stuck'; readonly stuck: readonly StuckJob[] }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'missing' };

/** Poll interval once every planned chunk is done: the run is then a few job steps from its end. */
const FINISHING_POLL_MS = 50;

/**
 * Polls a run until it completes, fails, or one of its jobs sits in a failed set (attempts exhausted:
 * the run waits for it to be retried). `onProgress` receives the run's live counters. Polls every
 * `intervalMs`, and every 50 ms once all planned chunks are done, so that the report does not wait
 * up to a whole interval after the run has ended.
 */
export async function watchRun(
  runtime: Runtime,
  runId: string,
  options: { intervalMs?: number; onProgress?: (counts: RunProgressCounts) => void; signal?: AbortSignal } = {},
): Promise<RunOutcome> {
  const intervalMs = options.intervalMs ?? 500;
  let polls = 0;
  for (;;) {
    const job = await runtime.queues.run.getJob(runId);
    if (!job) return { kind: 'missing' };
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') {
      // `job` was read before getState(): when the run finished in between, its snapshot has no
      // return value or failure reason yet. Read it again now that it is final.
      const final = (await runtime.queues.run.getJob(runId)) ?? job;
      if (state === 'failed') return { kind: 'failed', reason: final.failedReason };
      // A run shorter than one poll would otherwise leave the display at its last partial count.
      options.onProgress?.(await runtime.progress.read(runId));
      return { kind: 'completed', report: final.returnvalue as RunReport };
    }
    const counts = await runtime.progress.read(runId);
    options.onProgress?.(counts);
    // Failed sets are scanned every few polls: they are larger than one job lookup.
    if (polls % 4 === 3) {
      const stuck = await findStuckJobs(runtime, runId);
      if (stuck.length > 0) return { kind: 'stuck', stuck };
    }
    polls += 1;
    if (options.signal?.aborted) return { kind: 'missing' };
    const finishing = counts.tablesPlanned > 0 && counts.chunksDone >= counts.chunksPlanned;
    await new Promise((resolve) => setTimeout(resolve, finishing ? Math.min(FINISHING_POLL_MS, intervalMs) : intervalMs));
  }
}

/** Jobs of a run (ids start with the run id) in any failed set. */
export async function findStuckJobs(runtime: Runtime, runId: string): Promise<StuckJob[]> {
  const stuck: StuckJob[] = [];
  const queues: Queue[] = [runtime.queues.run, runtime.queues.table, runtime.queues.chunk, ...runtime.queues.apply];
  for (const queue of queues) {
    for (const job of await failedJobsOfRun(queue, runId)) {
      stuck.push({
        queue: queue.name,
        id: job.id!,
        description: describeJob(job),
        reason: job.failedReason,
        attemptsMade: job.attemptsMade,
      });
    }
  }
  return stuck;
}

export async function failedJobsOfRun(queue: Queue, runId: string): Promise<Job[]> {
  const jobs: Job[] = [];
  const page = 500;
  for (let start = 0; ; start += page) {
    const failed = await queue.getFailed(start, start + page - 1);
    jobs.push(...failed.filter((job) => job && (job.id === runId || job.id?.startsWith(`${runId}.`))));
    if (failed.length < page) return jobs;
  }
}

function describeJob(job: Job): string {
  const data = job.data as { table?: string; target?: string; index?: number; keys?: unknown[] };
  if (data.index !== undefined) return `chunk ${data.index} of ${data.table} -> ${data.target}`;
  if (data.keys) return `apply batch of ${data.keys.length} keys of ${data.table} -> ${data.target}`;
  if (data.table) return `table ${data.table} -> ${data.target}`;
  return `run ${job.id}`;
}
