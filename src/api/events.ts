import type { RunProgressCounts } from '../../jobs/run-progress.js';
import type { ReaderStatus, TargetStatus } from '../cdc/cdc-reader.js';
import type { RunReport } from '../reconcile/report.js';
import type { FailedJob } from './run-failed-error.js';

/**
 * What a `Rowsync` instance tells its listeners (`rowsync.on('run:progress', ...)`): progress and
 * results of the runs it waits for, the state and lag of the CDC readers it runs, and what the
 * workers it runs did. The library itself never writes to the console: these events (and the
 * caller's logger) are how a service shows what rowsync does.
 *
 * Events about work (`cdc:batch`, `conflict`, `job:failed`) come from this instance's own workers:
 * work that `rowsync worker` processes elsewhere do shows in `syncStats()`, `conflictStats()` and
 * `status()`, not here.
 */
export type RowsyncEvents = {
  /** A run was enqueued (`added` false: a run with that id existed already; enqueuing it again was a no-op). */
  'run:enqueued': [RunEnqueuedEvent];
  /** Live counters of a run being waited for, every poll (0.5 s) and once more when it ends: in order, never decreasing. */
  'run:progress': [RunProgressEvent];
  /** A run ended with its report (the value `reconcile()` resolves to). */
  'run:completed': [RunCompletedEvent];
  /** A run failed, waits for failed jobs, or vanished (the error `reconcile()` rejects with). */
  'run:failed': [RunFailedEvent];
  /** A CDC reader of this instance changed state (standby, streaming, recovering, failing, stopped). */
  'cdc:status': [CdcStatusEvent];
  /** Lag and position per target of a streaming reader of this instance, at most once a second per stream. */
  'cdc:lag': [CdcLagEvent];
  /** A CDC batch part applied (or dead-lettered) by this instance's workers. */
  'cdc:batch': [CdcBatchEvent];
  /** Conflicts met by a sync of this instance's workers (a reconcile chunk, or a CDC batch). */
  conflict: [ConflictEvent];
  /** A job of this instance's workers failed (`exhausted`: no attempt left; it stays failed, or is dead-lettered). */
  'job:failed': [JobFailedEvent];
};

export type RowsyncEventName = keyof RowsyncEvents;

export interface RunEnqueuedEvent {
  readonly runId: string;
  readonly pipeline: string;
  readonly dryRun: boolean;
  readonly added: boolean;
}

export interface RunProgressEvent {
  readonly runId: string;
  readonly counts: RunProgressCounts;
}

export interface RunCompletedEvent {
  readonly runId: string;
  readonly report: RunReport;
}

export interface RunFailedEvent {
  readonly runId: string;
  /** `stuck`: jobs exhausted their attempts and the run waits for them to be retried; `failed`: the run job itself failed; `missing`: not in Redis. */
  readonly outcome: 'stuck' | 'failed' | 'missing';
  readonly reason: string;
  readonly failedJobs: readonly FailedJob[];
}

export interface CdcStatusEvent {
  readonly pipeline: string;
  /** The pipeline, or `<pipeline><-<side B>` for the B -> A stream of a bidirectional pipeline. */
  readonly stream: string;
  readonly state: ReaderStatus['state'];
  readonly error?: string;
}

export interface CdcLagEvent {
  readonly pipeline: string;
  readonly stream: string;
  readonly targets: readonly Pick<TargetStatus, 'target' | 'checkpoint' | 'lagMs' | 'queuedJobs'>[];
}

export interface CdcBatchEvent {
  readonly pipeline: string;
  /** The connection whose changes these are, and the one they were synced to. */
  readonly from: string;
  readonly target: string;
  /** Changed keys in the part. */
  readonly keys: number;
  /** Source position right after the part. */
  readonly position: string;
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
  readonly conflicts: number;
  /** Set when the part went to the dead-letter queue instead (the error). */
  readonly deadLettered?: string;
}

export interface ConflictEvent {
  readonly pipeline: string;
  readonly target: string;
  /** The table (reconcile chunks); a CDC part may span several. */
  readonly table?: string;
  readonly count: number;
  readonly trigger: 'reconcile' | 'cdc';
  readonly runId?: string;
}

export interface JobFailedEvent {
  readonly queue: string;
  readonly jobId: string;
  readonly reason: string;
  readonly attemptsMade: number;
  readonly exhausted: boolean;
}
