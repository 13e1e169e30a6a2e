import type { Job } from 'bullmq';
import { reportCompletion, type DeadLetterPayload } from '../../jobs/cdc-batch.job.js';
import type { Runtime } from '../../jobs/runtime.js';
import { ConfigError } from '../errors/index.js';
import type { EncodedValue } from '../sync/portable-json.js';

/**
 * Dead-lettered CDC batch parts (parked in the `cdc-dead-letter` queue's failed set): list them,
 * send them back through the write path, or drop them. What `rowsync dlq list|retry|purge` do.
 */

export interface DeadLetterFilter {
  /** Only this pipeline's. */
  readonly pipeline?: string;
  /** Only these dead letters (an unknown id is an error). */
  readonly ids?: readonly string[];
}

export interface DeadLetter {
  readonly id: string;
  readonly pipeline: string;
  readonly target: string;
  /** Keys per table. */
  readonly keys: Readonly<Record<string, number>>;
  /** The first five keys per table. */
  readonly firstKeys: Readonly<Record<string, readonly (readonly EncodedValue[])[]>>;
  readonly error: string;
  /** ISO time it was parked. */
  readonly deadLetteredAt: string;
  readonly attempts: number;
}

/** The dead letters waiting for an operator (parked in the failed set), oldest first. */
export async function deadLetterJobs(runtime: Runtime, filter: DeadLetterFilter = {}): Promise<Job<DeadLetterPayload>[]> {
  if (filter.pipeline) runtime.pipeline(filter.pipeline);
  const jobs = (await runtime.queues.deadLetter.getJobs(['failed'], 0, -1)) as Job<DeadLetterPayload>[];
  const chosen = jobs.filter(
    (job) => job?.id && (!filter.pipeline || job.data.pipeline === filter.pipeline) && (!filter.ids || filter.ids.includes(job.id)),
  );
  const unknown = (filter.ids ?? []).filter((id) => !chosen.some((job) => job.id === id));
  if (unknown.length > 0) throw new ConfigError(`--id: no dead letter ${unknown.join(', ')} (see rowsync dlq list)`, { subject: '--id' });
  return chosen.sort((a, b) => a.timestamp - b.timestamp);
}

export function describeDeadLetter(job: Job<DeadLetterPayload>): DeadLetter {
  const data = job.data;
  return {
    id: job.id!,
    pipeline: data.pipeline,
    target: data.target,
    keys: Object.fromEntries(data.tables.map(([table, keys]) => [table, keys.length])),
    firstKeys: Object.fromEntries(data.tables.map(([table, keys]) => [table, keys.slice(0, 5)])),
    error: job.failedReason || data.error,
    deadLetteredAt: new Date(data.deadLetteredAt).toISOString(),
    attempts: data.attempts,
  };
}

/** Sends dead letters back through the write path (what Bull Board's retry does); resolves with their ids. */
export async function requeueDeadLetters(runtime: Runtime, filter: DeadLetterFilter = {}): Promise<string[]> {
  const letters = await deadLetterJobs(runtime, filter);
  for (const job of letters) await job.retry('failed');
  return letters.map((job) => job.id!);
}

/**
 * Waits until every requeued dead letter has been applied or has failed again (it is then parked
 * again with the new error). `onFailedAgain` hears of each failure as it is seen.
 */
export async function awaitDeadLetters(
  runtime: Runtime,
  ids: readonly string[],
  onFailedAgain: (id: string, reason: string) => void = () => undefined,
): Promise<{ readonly applied: number; readonly failed: readonly { readonly id: string; readonly reason: string }[] }> {
  const pending = new Set(ids);
  const failed: { id: string; reason: string }[] = [];
  while (pending.size > 0) {
    for (const id of [...pending]) {
      const state = await runtime.queues.deadLetter.getJobState(id);
      if (state === 'completed' || state === 'failed' || state === 'unknown') {
        pending.delete(id);
        if (state === 'failed') {
          const job = await runtime.queues.deadLetter.getJob(id);
          const reason = job?.failedReason ?? 'unknown error';
          failed.push({ id, reason });
          onFailedAgain(id, reason);
        }
      }
    }
    if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { applied: ids.length - failed.length, failed };
}

/**
 * Drops dead letters for good. Their keys are then repaired only by a reconcile; a reader still
 * waiting for them lets its checkpoint move on. Resolves with how many were dropped.
 */
export async function purgeDeadLetters(runtime: Runtime, filter: DeadLetterFilter = {}): Promise<number> {
  const letters = await deadLetterJobs(runtime, filter);
  for (const job of letters) {
    await reportCompletion(runtime.redis, runtime.config.redis.prefix, job.data, 'applied');
    await job.remove();
  }
  return letters.length;
}
