import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { Config, ReconcileConfig } from '../src/config/index.js';

/**
 * Queue names. Every queue lives under the config's `redis.prefix` (BullMQ's key prefix), so two
 * rowsync installations can share a Redis. Names contain no ':' (BullMQ forbids it in names and ids).
 */
export const QUEUE_NAMES = {
  run: 'reconcile-run',
  table: 'reconcile-table',
  chunk: 'reconcile-chunk',
  apply: (lane: number) => `apply-${lane}`,
  cdc: 'cdc-batch',
  deadLetter: 'cdc-dead-letter',
} as const;

/** The job name each queue's jobs carry (Bull Board shows it). */
export const JOB_NAMES = {
  run: 'reconcile:run', table: 'reconcile:table', chunk: 'reconcile:chunk', apply: 'sync', cdc: 'cdc:batch', deadLetter: 'cdc:dead-letter',
} as const;

export class RowsyncQueues {
  readonly run: Queue;
  readonly table: Queue;
  readonly chunk: Queue;
  /** One queue per apply lane; each runs one job at a time across all workers (global concurrency 1). */
  readonly apply: readonly Queue[];
  /** CDC batches: changed keys of one part of a stream batch for one target. */
  readonly cdc: Queue;
  /**
   * Batches that exhausted their attempts, parked in this queue's failed set with their error and keys
   * (Bull Board shows them); retrying one (Bull Board, `rowsync dlq retry`) syncs its keys again.
   */
  readonly deadLetter: Queue;

  /**
   * `onError`: where the queues' connection errors go. Without a listener BullMQ prints each one
   * with its stack on stderr, every reconnect attempt, for every queue.
   */
  constructor(
    readonly config: Config,
    readonly connection: ConnectionOptions,
    onError: (error: Error) => void = () => undefined,
  ) {
    const options = { connection, prefix: config.redis.prefix };
    this.run = new Queue(QUEUE_NAMES.run, options);
    this.table = new Queue(QUEUE_NAMES.table, options);
    this.chunk = new Queue(QUEUE_NAMES.chunk, options);
    this.apply = Array.from({ length: config.workers.lanes }, (_, lane) => new Queue(QUEUE_NAMES.apply(lane), options));
    this.cdc = new Queue(QUEUE_NAMES.cdc, options);
    this.deadLetter = new Queue(QUEUE_NAMES.deadLetter, options);
    for (const queue of this.all()) queue.on('error', onError);
  }

  all(): Queue[] {
    return [this.run, this.table, this.chunk, ...this.apply, this.cdc, this.deadLetter];
  }

  /** Lane queues run one job at a time globally: that is what makes two syncs of one key exclusive. */
  async enforceLaneExclusion(): Promise<void> {
    await Promise.all(this.apply.map((queue) => queue.setGlobalConcurrency(1)));
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((queue) => queue.close()));
  }
}

/**
 * Retry policy of chunk, table and apply jobs: `attempts` with exponential backoff. A job that
 * exhausts them stays in its queue's failed set; its parent waits (BullMQ's default for a failed
 * child) until the job is retried from Bull Board or `rowsync retry`.
 */
export function retryOptions(reconcile: ReconcileConfig): JobsOptions {
  return {
    attempts: reconcile.attempts,
    backoff: { type: 'exponential', delay: reconcile.backoffMs },
    removeOnComplete: { age: 7 * 24 * 3600, count: 50_000 },
    removeOnFail: false,
  };
}
