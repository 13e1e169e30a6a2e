import { RowsyncError } from '../errors/rowsync-error.js';

/** A job of a run that exhausted its attempts (or failed unrecoverably) and now holds the run. */
export interface FailedJob {
  readonly queue: string;
  readonly id: string;
  /** `chunk 12 of orders -> replica`, `table orders -> replica`, ... */
  readonly description: string;
  readonly reason: string;
  readonly attemptsMade: number;
}

/**
 * A run that did not complete: `stuck` (jobs exhausted their attempts; the run waits for them to be
 * retried, with `retryRun` or Bull Board, and then completes), `failed` (the run job itself failed:
 * a replica check, a config problem) or `missing` (not in Redis: removed, or another `redis.prefix`).
 */
export class RunFailedError extends RowsyncError {
  override readonly name = 'RunFailedError';

  constructor(
    readonly runId: string,
    readonly outcome: 'stuck' | 'failed' | 'missing',
    readonly reason: string,
    readonly failedJobs: readonly FailedJob[] = [],
  ) {
    super(outcome === 'stuck' ? 'RUN_STUCK' : outcome === 'failed' ? 'RUN_FAILED' : 'RUN_MISSING', describe(runId, outcome, reason, failedJobs), {
      subject: runId,
    });
  }
}

function describe(runId: string, outcome: RunFailedError['outcome'], reason: string, failedJobs: readonly FailedJob[]): string {
  switch (outcome) {
    case 'stuck':
      return `run ${runId} is waiting for ${failedJobs.length} failed job(s): ${failedJobs.map((job) => `${job.description}: ${job.reason}`).join('; ')}`;
    case 'failed':
      return `run ${runId} failed: ${reason}`;
    case 'missing':
      return `run ${runId} is not in Redis (removed, or a different redis.prefix)`;
    default: {
      const unreachable: never = outcome;
      return String(unreachable);
    }
  }
}
