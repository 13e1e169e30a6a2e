import { DelayedError, WaitingChildrenError, type Job } from 'bullmq';
import { compareShapes } from '../src/reconcile/compare-shape.js';
import { diffChunk } from '../src/reconcile/reconcile-chunk.js';
import { throttleReason, throttleWaitMs } from '../src/reconcile/throttle.js';
import { chunkReport, type ChunkReport } from '../src/reconcile/report.js';
import type { KeyTuple } from '../src/dialect/types.js';
import { keyIdentity } from '../src/dialect/canonical.js';
import { syncStateKeyId } from '../src/dialect/sync-state.js';
import { batchKeysByLane, leaseIdsOf } from '../src/sync/lanes.js';
import { decodeRange, encodeTuple, type EncodedRange } from '../src/sync/portable-json.js';
import { addSyncResults, EMPTY_SYNC_RESULT, type SyncResult } from '../src/sync/sync-keys.js';
import { applyJobId, tableJobId } from './job-ids.js';
import type { ApplyPayload } from './apply.job.js';
import { JOB_NAMES, retryOptions } from './queues.js';
import type { Runtime, TableContext } from './runtime.js';
import { withRunSettings, type RunSettings } from './run-settings.js';
import { chunkTimer, recordChunkCompared, recordSync, syncBatchTimer } from '../src/metrics/instruments.js';

/** How long a chunk waits for the leases of its keys before it hands the keys to the lanes. */
const INLINE_LEASE_WAIT_MS = 2000;

export interface ChunkPayload {
  readonly runId: string;
  readonly pipeline: string;
  /** The enqueuing config's `pipelineFingerprint`: a worker with another config leaves the job alone. */
  readonly fingerprint?: string;
  readonly table: string;
  readonly target: string;
  /** Position of the chunk in its table (for messages: "chunk 12 of orders -> replica"). */
  readonly index: number;
  readonly range: EncodedRange;
  readonly dryRun: boolean;
  /** See `RunPayload.writePolicy`. */
  readonly writePolicy?: 'cdc';
  /** See `RunPayload.settings`. */
  readonly settings?: RunSettings;
  /** Bidirectional first run of the table: record the sync state of every row equal on both sides. */
  readonly recordBaseline?: boolean;
  readonly step?: 'diff' | 'wait';
  readonly diff?: { sourceRows: number; targetRows: number; missing: number; extra: number; changed: number; scanMs?: number };
  /** Times in a row the load or lag gate held this chunk back (its next wait doubles). */
  readonly throttled?: number;
}

/**
 * Step 1 (diff): compares the chunk (checksums in both databases, bisection, row diff). Differing keys
 * that fit in one sync batch are synced here, under their key leases (one sync instead of a job per
 * lane: drift spread thinly over a table otherwise costs a BullMQ job for every two or three keys).
 * More keys, a lease held elsewhere, or a failed sync: the keys go to the apply lanes as child
 * jobs, batched per lane (retries, backoff, Bull Board), and the chunk waits for them. A dry run plans
 * the same syncs without writing and returns at once. Step 2 (report): sums what the lanes wrote.
 * Re-running step 1 after a crash re-diffs: keys already repaired no longer differ.
 */
export async function processChunk(job: Job<ChunkPayload>, token: string | undefined, runtime: Runtime): Promise<ChunkReport> {
  const data = job.data;
  if (data.step !== 'wait') {
    if (await holdBack(job, token, runtime)) throw new DelayedError();
    const endTimer = chunkTimer(data);
    try {
      const report = await compareStep(job, token, runtime);
      if (report) return report;
    } finally {
      endTimer();
    }
  }
  const applied = Object.values(await job.getChildrenValues<SyncResult>()).reduce(addSyncResults, EMPTY_SYNC_RESULT);
  return finish(runtime, data, chunkReport(job.data.diff!, applied));
}

/**
 * The load and lag gates (src/reconcile/throttle.ts), before the chunk reads anything. Over a limit,
 * the job goes back to the delayed set (its worker slot is free meanwhile; BullMQ counts no attempt)
 * for 0.5 s, then 1, 2, up to 5 s while it stays over, and the run's progress says why it waits.
 * True when the job was moved (the caller then throws `DelayedError`).
 */
async function holdBack(job: Job<ChunkPayload>, token: string | undefined, runtime: Runtime): Promise<boolean> {
  const data = job.data;
  const pipeline = runtime.pipeline(data.pipeline);
  const reason = await throttleReason(
    pipeline.reconcile,
    {
      source: runtime.database(pipeline.source),
      target: runtime.database(data.target),
      replica: (name) => runtime.database(name),
      field: `pipelines.${pipeline.name}.reconcile`,
    },
    !data.dryRun,
  );
  if (reason === undefined) {
    if (data.throttled) {
      await runtime.progress.clearWaiting(data.runId);
      await job.updateData({ ...data, throttled: 0 });
    }
    return false;
  }
  const throttled = (data.throttled ?? 0) + 1;
  if (throttled === 1) {
    runtime.logger.info({ runId: data.runId, table: data.table, target: data.target, chunk: data.index }, 'chunk held back: %s', reason);
  }
  await runtime.progress.setWaiting(data.runId, reason);
  await job.updateData({ ...data, throttled });
  await job.moveToDelayed(Date.now() + throttleWaitMs(throttled), token);
  return true;
}

/**
 * Step 1: the chunk's report when the chunk is done with (no difference, a dry run, or synced in
 * this job); undefined when its keys went to the lanes and every child has already finished.
 * Throws `WaitingChildrenError` while they run.
 */
async function compareStep(job: Job<ChunkPayload>, token: string | undefined, runtime: Runtime): Promise<ChunkReport | undefined> {
  const data = job.data;
  const context = withRunSettings(await runtime.tableContext(data.pipeline, data.table, data.target), data.settings);
  const { reconcile } = context.pipeline;
  const tableKey = tableJobId(data.runId, data.table, data.target);
  const direct = reconcile.compare !== 'field_by_field' && (await runtime.progress.mostChunksDiffer(data.runId, tableKey));
  const found = await diffChunk({
    direct,
    source: context.source,
    target: context.target,
    comparePair: compareShapes(context.pair, reconcile.compare, reconcile.timestampColumn, context.source.connectionName),
    range: decodeRange(data.range),
    compare: reconcile.compare,
  });
  const diff = {
    sourceRows: found.stats.sourceRows,
    targetRows: found.stats.targetRows,
    missing: found.missing,
    extra: found.extra,
    changed: found.changed,
    scanMs: Math.round(found.stats.scanMs * 10) / 10,
  };
  // Adaptive chunk sizes: the table's planner sizes the next chunks by these scans (chunk-sizer.ts).
  const scan = reconcile.chunkTimeMs > 0 ? { rows: Math.max(diff.sourceRows, diff.targetRows), ms: found.stats.scanMs } : undefined;
  await runtime.progress.recordChunk(data.runId, tableKey, { rowsCompared: diff.sourceRows, differences: found.keys.length }, found.keys.length > 0, scan);
  recordChunkCompared(data, diff);
  if (found.keys.length === 0) return finish(runtime, data, chunkReport(diff, EMPTY_SYNC_RESULT));
  // `--print-keys`: the differing keys with their kind, for the command to list (a no-op otherwise).
  await runtime.runKeys.record(data.runId, data.table, data.target, context.pair.source, found.differences);

  if (data.dryRun) {
    const sync = await runtime.keySync(context, true, data.writePolicy ?? 'reconcile');
    let planned = EMPTY_SYNC_RESULT;
    for (let start = 0; start < found.keys.length; start += reconcile.applyBatchSize) {
      planned = addSyncResults(planned, await sync(found.keys.slice(start, start + reconcile.applyBatchSize)));
    }
    return finish(runtime, data, chunkReport(diff, planned));
  }

  const synced = await syncInline(runtime, context, found.keys, data);
  if (synced) return finish(runtime, data, chunkReport(diff, synced));

  const batches = batchKeysByLane(context.pair.source, found.keys, runtime.config.workers.lanes, reconcile.applyBatchSize);
  for (const batch of batches) {
    const keys = batch.keys.map(encodeTuple);
    const payload: ApplyPayload = {
      runId: data.runId, pipeline: data.pipeline, table: data.table, target: data.target, keys,
      ...(data.writePolicy ? { writePolicy: data.writePolicy } : {}),
      ...(data.fingerprint ? { fingerprint: data.fingerprint } : {}),
      ...(data.settings ? { settings: data.settings } : {}),
    };
    await runtime.queues.apply[batch.lane]!.add(JOB_NAMES.apply, payload, {
      ...retryOptions(reconcile),
      jobId: applyJobId(job.id!, batch.lane, keys),
      parent: { id: job.id!, queue: job.queueQualifiedName },
    });
  }
  await job.updateData({ ...data, step: 'wait', diff });
  if (await job.moveToWaitingChildren(token ?? '')) throw new WaitingChildrenError();
  return undefined;
}

/**
 * Syncs a chunk's differing keys in this job while holding their key leases.
 * Undefined (nothing written) when they need more than one batch, when the leases stay taken, or when
 * the sync fails: the caller then hands the keys to the lanes.
 */
async function syncInline(runtime: Runtime, context: TableContext, keys: readonly KeyTuple[], data: ChunkPayload): Promise<SyncResult | undefined> {
  if (keys.length > context.pipeline.reconcile.applyBatchSize) return undefined;
  const lease = await runtime.keyLeases.hold(leaseIdsOf(context.pair.source, keys), INLINE_LEASE_WAIT_MS);
  if (!lease) return undefined;
  const endTimer = syncBatchTimer(data, 'reconcile');
  try {
    const result = await (await runtime.keySync(context, false, data.writePolicy ?? 'reconcile'))(keys);
    recordSync({ ...data, source: context.source.connectionName }, 'reconcile', result);
    return result;
  } catch (error) {
    // Not a failure yet: the apply lanes retry these keys, and their jobs' failures are what is reported.
    runtime.logger.debug(
      { table: data.table, target: data.target, chunk: data.index, err: error instanceof Error ? error.message : String(error) },
      'sync in the chunk job failed: handing its keys to the apply lanes',
    );
    return undefined;
  } finally {
    endTimer();
    await lease.release();
  }
}

async function finish(runtime: Runtime, data: ChunkPayload, report: ChunkReport): Promise<ChunkReport> {
  if (data.recordBaseline && !data.dryRun) await recordBaseline(runtime, data, report);
  await runtime.progress.add(data.runId, { chunksDone: 1 });
  return report;
}

/**
 * The first bidirectional run of a table records, once its differences are synced, the state of
 * every row of the chunk that is equal on both sides: later runs tell "changed here" from "changed
 * there" by it. Rows still different (a `manual` conflict left pending) get none. One more scan of
 * the chunk's row hashes per side, on the first run only.
 */
async function recordBaseline(runtime: Runtime, data: ChunkPayload, report: ChunkReport): Promise<void> {
  const context = await runtime.tableContext(data.pipeline, data.table, data.target);
  const { pair } = context;
  const range = decodeRange(data.range);
  // Generous: rows inserted into the range since the diff are simply not recorded (their sync is).
  const limit = 2 * Math.max(report.sourceRows, report.targetRows) + 1000;
  const [hashesA, hashesB] = await Promise.all([
    context.source.rowHashes(pair.source, range, limit),
    context.target.rowHashes(pair.target, range, limit),
  ]);
  const onB = new Map(hashesB.map((entry) => [keyIdentity(pair.target, entry.key), entry.hash]));
  const entries = hashesA
    .filter((entry) => onB.get(keyIdentity(pair.source, entry.key)) === entry.hash)
    .map((entry) => ({ keyId: syncStateKeyId(pair.source, entry.key), hash: entry.hash }));
  const state = runtime.syncState(data.target);
  for (let start = 0; start < entries.length; start += BASELINE_WRITE_BATCH) {
    await state.write(data.pipeline, data.table, entries.slice(start, start + BASELINE_WRITE_BATCH));
  }
}

const BASELINE_WRITE_BATCH = 5000;
