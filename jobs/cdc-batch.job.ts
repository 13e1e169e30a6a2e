import { UnrecoverableError, type Job, type JobsOptions } from 'bullmq';
import type { RedisClient } from '../src/coordination/redis-client.js';
import type { BatchPart, PartCompletion } from '../src/cdc/cdc-reader.js';
import { sourceTableOf, type CdcConfig } from '../src/config/index.js';
import { ConfigError, DatabaseError, RowsyncError, SchemaError } from '../src/errors/index.js';
import { leaseIdsOf } from '../src/sync/lanes.js';
import { decodeTuple, encodeTuple, type EncodedValue } from '../src/sync/portable-json.js';
import { addSyncResults, EMPTY_SYNC_RESULT, type SyncResult } from '../src/sync/sync-keys.js';
import { JOB_NAMES } from './queues.js';
import type { Runtime } from './runtime.js';
import { recordCdcChanges } from './cdc-change-counts.js';
import { cdcBatchTimer, recordCdcDeadLetter, recordSync, syncBatchTimer } from '../src/metrics/instruments.js';

/**
 * One part of a CDC batch for one target: changed keys per table, never row images. `epoch` is the
 * reader session that queued it and `seq` the batch's place in that session's stream: both go into the
 * job id, so a key changed again later is a new job (BullMQ silently ignores an add whose id it still
 * keeps), and the worker's completion report reaches the right reader session.
 */
export interface CdcBatchPayload {
  readonly pipeline: string;
  /** The enqueuing config's `pipelineFingerprint`: a worker with another config leaves the job alone. */
  readonly fingerprint?: string;
  /** The connection whose stream read these changes (a bidirectional pipeline streams both sides). */
  readonly from: string;
  /** Where the stream's checkpoint is kept: the side the changes are synced to. */
  readonly target: string;
  readonly epoch: string;
  readonly seq: number;
  readonly part: number;
  /** Source position right after the batch (for Bull Board and `rowsync dlq list`). */
  readonly position: string;
  readonly committedAt: number;
  /** [table, keys] pairs (an array, so no table name can collide with an object property). */
  readonly tables: readonly (readonly [string, readonly (readonly EncodedValue[])[]])[];
}

/** A dead letter: the batch part, why it failed, and when. */
export interface DeadLetterPayload extends CdcBatchPayload {
  readonly error: string;
  readonly deadLetteredAt: number;
  readonly attempts: number;
  /** Set when the dead letter was first parked; a later run of the job is a retry. */
  readonly parked?: boolean;
}

/** What a CDC batch job returns: what sync wrote, or that the part went to the dead-letter queue. */
export type CdcBatchResult = SyncResult & { readonly deadLettered?: string };

export const cdcJobId = (pipeline: string, target: string, epoch: string, seq: number, part: number) =>
  `cdc.${pipeline}.${target}.${epoch}.${seq}.${part}`;

export function cdcBatchPayload(pipeline: string, from: string, part: BatchPart): CdcBatchPayload {
  return {
    pipeline,
    from,
    target: part.target,
    epoch: part.epoch,
    seq: part.seq,
    part: part.part,
    position: part.position,
    committedAt: part.committedAt,
    tables: [...part.keys].map(([table, keys]) => [table, keys.map(encodeTuple)] as const),
  };
}

export function cdcJobOptions(cdc: CdcConfig, payload: CdcBatchPayload): JobsOptions {
  return {
    jobId: cdcJobId(payload.pipeline, payload.target, payload.epoch, payload.seq, payload.part),
    attempts: cdc.attempts,
    backoff: { type: 'exponential', delay: cdc.backoffMs },
    // The reader learns of completions from its report list, not from kept jobs: keep few.
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: 1000 },
  };
}

/** Redis list where workers report finished parts to the reader session `epoch` of `pipeline`. */
export const completionKey = (prefix: string, pipeline: string, epoch: string) => `${prefix}:cdc-done:${pipeline}:${epoch}`;
const COMPLETIONS_TTL_SECONDS = 24 * 3600;

export async function reportCompletion(redis: RedisClient, prefix: string, payload: CdcBatchPayload, outcome: PartCompletion['outcome']): Promise<void> {
  const key = completionKey(prefix, payload.pipeline, payload.epoch);
  await redis.multi().rpush(key, `${payload.target}\t${payload.seq}\t${outcome}`).expire(key, COMPLETIONS_TTL_SECONDS).exec();
}

export async function takeCompletions(redis: RedisClient, prefix: string, pipeline: string, epoch: string): Promise<PartCompletion[]> {
  const key = completionKey(prefix, pipeline, epoch);
  const completions: PartCompletion[] = [];
  for (;;) {
    const entries = (await redis.lpop(key, 1000)) ?? [];
    for (const entry of entries) {
      const [target, seq, outcome] = entry.split('\t');
      if (target && seq && (outcome === 'applied' || outcome === 'dead')) completions.push({ target, seq: Number(seq), outcome });
    }
    if (entries.length < 1000) return completions;
  }
}

/**
 * Syncs every key of the part at its target through the one write path (`syncKeys`), at most
 * `applyBatchSize` keys per target transaction, each sync under its keys' leases so that no reconcile
 * chunk, apply job or other batch syncs the same keys at the same time. Leases are released after
 * each sync, before the next are asked for, so a job never holds some leases while waiting for others.
 */
export async function syncBatchPart(runtime: Runtime, payload: CdcBatchPayload): Promise<SyncResult> {
  let total = EMPTY_SYNC_RESULT;
  const pipeline = runtime.pipeline(payload.pipeline);
  // A bidirectional sync reads and writes both sides whichever side's stream saw the change.
  const target = pipeline.mode === 'bidirectional' ? pipeline.targets[0]! : payload.target;
  for (const [streamedTable, encodedKeys] of payload.tables) {
    // Side B's stream names tables as side B does (a table entry's targetName): jobs use the pipeline's.
    const table = payload.from === pipeline.source ? streamedTable : sourceTableOf(pipeline, streamedTable);
    const context = await runtime.tableContext(payload.pipeline, table, target);
    const sync = await runtime.keySync(context, false, 'cdc');
    const keys = encodedKeys.map(decodeTuple);
    const size = context.pipeline.write.applyBatchSize;
    for (let start = 0; start < keys.length; start += size) {
      // The keys whose leases are free now are synced at once; the few another batch holds (two parts
      // of a busy stream share some keys) wait for the next round instead of holding up the rest
      // (measured: all-or-none leases left 8 workers waiting 27 s in 5 s of wall time).
      let pending = keys.slice(start, start + size);
      while (pending.length > 0) {
        const ids = leaseIdsOf(context.pair.source, pending);
        const { lease, held } = await runtime.keyLeases.holdSome(ids);
        const now = pending.filter((_, index) => held.has(ids[index]!));
        pending = pending.filter((_, index) => !held.has(ids[index]!));
        const endTimer = syncBatchTimer({ pipeline: payload.pipeline, target }, 'cdc');
        try {
          const result = await sync(now);
          recordSync({ pipeline: payload.pipeline, table, target, source: context.source.connectionName }, 'cdc', result);
          total = addSyncResults(total, result);
        } catch (error) {
          // A schema that changed under the stream (ALTER on one side first) is read again next attempt.
          if (error instanceof SchemaError || error instanceof DatabaseError) runtime.forgetTable(payload.pipeline, table, target);
          throw error;
        } finally {
          endTimer();
          await lease.release();
        }
      }
    }
  }
  return total;
}

/**
 * Errors that are transient under CDC are retried with backoff: besides lost connections and
 * deadlocks, a unique value swapped between two rows of different batches, a foreign key whose parent
 * is in another batch, or a schema change reaching one side before the other all resolve once the
 * other writes land. Only configuration errors (a resolver module that cannot load) are final.
 */
export function isFinalCdcError(error: unknown): boolean {
  if (error instanceof UnrecoverableError || error instanceof ConfigError) return true;
  if (error instanceof DatabaseError || error instanceof SchemaError) return false;
  return error instanceof RowsyncError && error.code === 'UNSUPPORTED_TYPE';
}

/**
 * A CDC batch job. On its last attempt (or a final error) the part moves to the dead-letter queue
 * inside the job itself, under a deterministic id, so a worker dying in between cannot lose it or
 * file it twice; the job then completes with `deadLettered`, and the reader is told.
 */
export async function processCdcBatch(job: Job<CdcBatchPayload>, runtime: Runtime): Promise<CdcBatchResult> {
  const payload = job.data;
  const endTimer = cdcBatchTimer(payload);
  try {
    const result = await syncBatchPart(runtime, payload);
    await reportCompletion(runtime.redis, runtime.config.redis.prefix, payload, 'applied');
    await countChanges(runtime, payload, result);
    return result;
  } catch (error) {
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (!lastAttempt && !isFinalCdcError(error)) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const deadLetter: DeadLetterPayload = { ...payload, error: message, deadLetteredAt: Date.now(), attempts: job.attemptsMade + 1 };
    await runtime.queues.deadLetter.add(JOB_NAMES.deadLetter, deadLetter, {
      jobId: `${job.id}.dlq`,
      attempts: 1,
      removeOnComplete: { age: 7 * 24 * 3600 },
      removeOnFail: false,
    });
    await reportCompletion(runtime.redis, runtime.config.redis.prefix, payload, 'dead');
    recordCdcDeadLetter(payload);
    runtime.logger.error(
      { pipeline: payload.pipeline, target: payload.target, jobId: job.id, attempts: deadLetter.attempts, err: message },
      'CDC batch moved to the dead-letter queue',
    );
    return { ...EMPTY_SYNC_RESULT, deadLettered: message };
  } finally {
    endTimer();
  }
}

/**
 * Adds an applied part to the durable change counts (cdc-change-counts.ts). After the completion
 * report, and never failing the job: the part is applied, and a retry for a statistic would sync its
 * keys again and count them twice.
 */
async function countChanges(runtime: Runtime, payload: CdcBatchPayload, result: SyncResult): Promise<void> {
  try {
    await recordCdcChanges(runtime.redis, runtime.config.redis.prefix, payload, result);
  } catch (error) {
    runtime.logger.warn({ pipeline: payload.pipeline, target: payload.target, err: (error as Error).message }, 'could not count the applied CDC changes');
  }
}

/**
 * A dead letter's job. Its first run parks it: it fails at once with the batch's own error, so it
 * sits in the queue's failed set where Bull Board shows the error and the keys. A retry (Bull Board's,
 * or `rowsync dlq retry`) runs it again and this time syncs its keys through the write path: the
 * source's current rows, so a retry days later cannot write a stale value. A retry that fails parks
 * it again with the new error.
 */
export async function processDeadLetter(job: Job<DeadLetterPayload>, runtime: Runtime): Promise<SyncResult> {
  if (!job.data.parked) {
    // Marked in the job's data, not by attemptsMade: a retry may reset the attempt count.
    await job.updateData({ ...job.data, parked: true });
    throw new UnrecoverableError(job.data.error);
  }
  try {
    const result = await syncBatchPart(runtime, job.data);
    await reportCompletion(runtime.redis, runtime.config.redis.prefix, job.data, 'applied');
    await countChanges(runtime, job.data, result);
    return result;
  } catch (error) {
    throw new UnrecoverableError(error instanceof Error ? error.message : String(error));
  }
}
