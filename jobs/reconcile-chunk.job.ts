import { WaitingChildrenError, type Job } from 'bullmq';
import { compareShapes } from '../src/reconcile/compare-shape.js';
import { diffChunk } from '../src/reconcile/reconcile-chunk.js';
import { chunkReport, type ChunkReport } from '../src/reconcile/report.js';
import { batchKeysByLane } from '../src/sync/lanes.js';
import { decodeRange, encodeTuple, type EncodedRange } from '../src/sync/portable-json.js';
import { addSyncResults, EMPTY_SYNC_RESULT, syncKeys, type SyncResult } from '../src/sync/sync-keys.js';
import { applyJobId, tableJobId } from './job-ids.js';
import type { ApplyPayload } from './apply.job.js';
import { JOB_NAMES, retryOptions } from './queues.js';
import type { Runtime } from './runtime.js';

export interface ChunkPayload {
  readonly runId: string;
  readonly pipeline: string;
  readonly table: string;
  readonly target: string;
  /** Position of the chunk in its table (for messages: "chunk 12 of orders -> replica"). */
  readonly index: number;
  readonly range: EncodedRange;
  readonly dryRun: boolean;
  readonly step?: 'diff' | 'wait';
  readonly diff?: { sourceRows: number; targetRows: number; missing: number; extra: number; changed: number };
}

/**
 * Step 1 (diff): compares the chunk (checksums in both databases, bisection, row diff) and hands the
 * differing keys to the apply lanes as child jobs, batched per lane, then waits for them. A dry run
 * plans the same syncs without writing and returns at once. Step 2 (report): sums what the lanes
 * wrote. Re-running step 1 after a crash re-diffs: keys already repaired no longer differ.
 */
export async function processChunk(job: Job<ChunkPayload>, token: string | undefined, runtime: Runtime): Promise<ChunkReport> {
  const data = job.data;
  if (data.step !== 'wait') {
    const context = await runtime.tableContext(data.pipeline, data.table, data.target);
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
    };
    await runtime.progress.add(data.runId, { rowsCompared: diff.sourceRows, differences: found.keys.length });
    await runtime.progress.recordChunk(data.runId, tableKey, found.keys.length > 0);
    if (found.keys.length === 0) return finish(runtime, data, chunkReport(diff, EMPTY_SYNC_RESULT));

    if (data.dryRun) {
      const request = await runtime.syncRequest(context, true);
      let planned = EMPTY_SYNC_RESULT;
      for (let start = 0; start < found.keys.length; start += reconcile.applyBatchSize) {
        planned = addSyncResults(planned, await syncKeys(request, found.keys.slice(start, start + reconcile.applyBatchSize)));
      }
      return finish(runtime, data, chunkReport(diff, planned));
    }

    const batches = batchKeysByLane(context.pair.source, found.keys, runtime.config.workers.lanes, reconcile.applyBatchSize);
    for (const batch of batches) {
      const keys = batch.keys.map(encodeTuple);
      const payload: ApplyPayload = { runId: data.runId, pipeline: data.pipeline, table: data.table, target: data.target, keys };
      await runtime.queues.apply[batch.lane]!.add(JOB_NAMES.apply, payload, {
        ...retryOptions(reconcile),
        jobId: applyJobId(job.id!, batch.lane, keys),
        parent: { id: job.id!, queue: job.queueQualifiedName },
      });
    }
    await job.updateData({ ...data, step: 'wait', diff });
    if (await job.moveToWaitingChildren(token ?? '')) throw new WaitingChildrenError();
  }
  const applied = Object.values(await job.getChildrenValues<SyncResult>()).reduce(addSyncResults, EMPTY_SYNC_RESULT);
  return finish(runtime, data, chunkReport(job.data.diff!, applied));
}

async function finish(runtime: Runtime, data: ChunkPayload, report: ChunkReport): Promise<ChunkReport> {
  await runtime.progress.add(data.runId, { chunksDone: 1 });
  return report;
}
