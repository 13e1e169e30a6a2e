import type { Job } from 'bullmq';
import type { DeadLetterPayload } from '../jobs/cdc-batch.job.js';
import type { RunPayload } from '../jobs/reconcile-run.job.js';
import type { RunProgressCounts } from '../jobs/run-progress.js';
import type { Runtime } from '../jobs/runtime.js';
import { conflictStats, type ConflictStats } from '../src/dialect/conflict-log.js';
import type { RunReport } from '../src/reconcile/report.js';
import { findStuckJobs } from '../src/api/run-watch.js';
import { readCdcStatus } from './cdc-readers.js';

/**
 * What `rowsync status` prints and the board's overview page shows, read once from Redis and the
 * target databases: queue counts and workers, current and recent runs, the CDC readers' status with
 * dead letters per target, and the conflict log per pipeline and target.
 */

/** A reader that published nothing for this long is reported stale. */
const STALE_AFTER_MS = 30_000;
const JOB_STATES = ['active', 'waiting', 'waiting-children', 'delayed', 'failed', 'completed'] as const;
/** BullMQ states in which a dead letter is still waiting: parked (failed) or being retried. */
const DEAD_LETTER_STATES = ['failed', 'waiting', 'active'] as const;

export interface QueueStatus {
  readonly queue: string;
  readonly counts: Readonly<Record<string, number>>;
  readonly workers: number;
}

export interface RunStatusEntry {
  readonly runId: string;
  readonly pipeline: string;
  readonly dryRun: boolean;
  /**
   * The run job's BullMQ state, except `failed` also for a run held by jobs that exhausted their
   * attempts (`failedJobs` of them; retrying them resumes the run).
   */
  readonly state: string;
  readonly failedJobs?: number;
  readonly enqueuedAt: string;
  readonly progress: RunProgressCounts;
  readonly durationMs?: number;
  /** (table, target) pairs in the report. */
  readonly tables?: number;
  readonly error?: string;
  /** The run's report, once it has one (only with `withReports`). */
  readonly report?: RunReport;
}

export interface StatusSnapshot {
  readonly workers: number;
  readonly queues: QueueStatus[];
  readonly runs: RunStatusEntry[];
  readonly cdc: Awaited<ReturnType<typeof readCdcStreams>>;
  readonly conflicts: Awaited<ReturnType<typeof readConflictStatus>>;
}

/** Everything `rowsync status` shows (`--json` prints this object as it is). */
export async function readStatusSnapshot(runtime: Runtime): Promise<StatusSnapshot> {
  const queues = await readQueueStatus(runtime);
  const runs = await readRuns(runtime);
  const workers = Math.max(0, ...queues.map((entry) => entry.workers));
  const cdc = await readCdcStreams(runtime);
  const conflicts = await readConflictStatus(runtime);
  return { workers, queues, runs, cdc, conflicts };
}

export async function readQueueStatus(runtime: Runtime): Promise<QueueStatus[]> {
  return Promise.all(
    runtime.queues.all().map(async (queue) => ({
      queue: queue.name,
      counts: await queue.getJobCounts(...JOB_STATES),
      workers: (await queue.getWorkers()).length,
    })),
  );
}

/** The newest runs (up to `limit`), newest first, with their live progress counters. */
export async function readRuns(runtime: Runtime, options: { readonly limit?: number; readonly withReports?: boolean } = {}): Promise<RunStatusEntry[]> {
  const runJobs = await runtime.queues.run.getJobs([...JOB_STATES], 0, 49);
  return Promise.all(
    runJobs
      .filter((job) => job?.id)
      .sort((a, b) => b.timestamp - a.timestamp)
      .slice(0, options.limit ?? 20)
      .map(async (job) => {
        const data = job.data as RunPayload;
        const report = job.returnvalue as RunReport | null;
        const jobState = await job.getState();
        // A run whose job exhausted its attempts waits for a retry that may never come: it is failed
        // (until retried), not "waiting-children" forever.
        const stuck = jobState === 'waiting-children' ? await findStuckJobs(runtime, job.id!) : [];
        const stuckError = stuck.length === 0
          ? undefined
          : `${stuck.length} job(s) failed after their attempts (${stuck[0]!.description}: ${stuck[0]!.reason}); ` +
            `retry them from Bull Board or with rowsync retry --run ${job.id!}`;
        return {
          runId: job.id!,
          pipeline: data.pipeline,
          dryRun: data.dryRun,
          state: stuck.length > 0 ? 'failed' : jobState,
          ...(stuck.length > 0 ? { failedJobs: stuck.length } : {}),
          enqueuedAt: new Date(job.timestamp).toISOString(),
          progress: await runtime.progress.read(job.id!),
          ...(report ? { durationMs: report.durationMs, tables: report.tables.length } : {}),
          ...(job.failedReason ? { error: job.failedReason } : stuckError ? { error: stuckError } : {}),
          ...(report && options.withReports ? { report } : {}),
        };
      }),
  );
}

/** Dead-lettered CDC batches still waiting: parked in the failed set, or being retried. */
export async function readDeadLetters(runtime: Runtime): Promise<Job<DeadLetterPayload>[]> {
  return ((await runtime.queues.deadLetter.getJobs([...DEAD_LETTER_STATES], 0, -1)) as Job<DeadLetterPayload>[]).filter(Boolean);
}

/** Readers' published status with the dead letters waiting per target (from the dead-letter queue). */
export async function readCdcStreams(runtime: Runtime, letters?: readonly Job<DeadLetterPayload>[]) {
  const waiting = letters ?? (await readDeadLetters(runtime));
  const deadLetters = (pipeline: string, target: string) =>
    waiting.filter((job) => job.data.pipeline === pipeline && job.data.target === target).length;
  return (await readCdcStatus(runtime.redis, runtime.config.redis.prefix)).map((status) => ({
    ...status,
    stale: status.state !== 'stopped' && Date.now() - status.updatedAt > STALE_AFTER_MS,
    targets: status.targets.map((target) => ({ ...target, deadLetters: deadLetters(status.pipeline, target.target) })),
  }));
}

export interface ConflictStatusEntry {
  readonly pipeline: string;
  readonly target: string;
  readonly stats: ConflictStats;
  /** The target database could not be read. */
  readonly error?: string;
}

/**
 * Conflict statistics per pipeline and target (the log in each target database). A database that
 * cannot be reached is reported as such instead of failing the whole status.
 */
export async function readConflictStatus(runtime: Runtime): Promise<ConflictStatusEntry[]> {
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
