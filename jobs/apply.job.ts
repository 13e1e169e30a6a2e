import type { Job } from 'bullmq';
import { decodeTuple, type EncodedValue } from '../src/sync/portable-json.js';
import { syncKeys, type SyncResult } from '../src/sync/sync-keys.js';
import type { Runtime } from './runtime.js';

/**
 * A batch of keys of one table for one target, all in one lane. The job carries keys only, never
 * row images: sync re-reads both sides, so a retry days later still writes the current source state.
 */
export interface ApplyPayload {
  readonly runId?: string;
  readonly pipeline: string;
  readonly table: string;
  readonly target: string;
  readonly keys: readonly (readonly EncodedValue[])[];
}

/**
 * Syncs the batch while holding its lane's lease: a chunk job may be syncing keys of this lane
 * itself (see reconcile-chunk.job.ts), and the queue's global concurrency of 1 alone cannot see that.
 */
export async function processApply(job: Job<ApplyPayload>, lane: number, runtime: Runtime): Promise<SyncResult> {
  const { pipeline, table, target, keys } = job.data;
  const context = await runtime.tableContext(pipeline, table, target);
  const request = await runtime.syncRequest(context, false);
  const lease = (await runtime.laneLocks.hold([lane]))!;
  try {
    return await syncKeys(request, keys.map(decodeTuple));
  } finally {
    await lease.release();
  }
}
