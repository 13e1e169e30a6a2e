import type { Job } from 'bullmq';
import { decodeTuple, type EncodedValue } from '../src/sync/portable-json.js';
import { leaseIdsOf } from '../src/sync/lanes.js';
import type { SyncResult } from '../src/sync/sync-keys.js';
import type { Runtime } from './runtime.js';
import { withRunSettings, type RunSettings } from './run-settings.js';
import { recordSync, syncBatchTimer } from '../src/metrics/instruments.js';

/**
 * A batch of keys of one table for one target, all in one lane. The job carries keys only, never
 * row images: sync re-reads both sides, so a retry days later still writes the current source state.
 */
export interface ApplyPayload {
  readonly runId?: string;
  readonly pipeline: string;
  /** The enqueuing config's `pipelineFingerprint`: a worker with another config leaves the job alone. */
  readonly fingerprint?: string;
  readonly table: string;
  readonly target: string;
  readonly keys: readonly (readonly EncodedValue[])[];
  /** See `RunPayload.writePolicy`. */
  readonly writePolicy?: 'cdc';
  /** See `RunPayload.settings` (its conflict policy and batch size). */
  readonly settings?: RunSettings;
}

/**
 * Syncs the batch while holding its keys' leases: a chunk job may be syncing some of them itself
 * (see reconcile-chunk.job.ts), and the lane queue's global concurrency of 1 alone cannot see that.
 */
export async function processApply(job: Job<ApplyPayload>, runtime: Runtime): Promise<SyncResult> {
  const { pipeline, table, target } = job.data;
  const keys = job.data.keys.map(decodeTuple);
  const context = withRunSettings(await runtime.tableContext(pipeline, table, target), job.data.settings);
  const sync = await runtime.keySync(context, false, job.data.writePolicy ?? 'reconcile');
  const lease = (await runtime.keyLeases.hold(leaseIdsOf(context.pair.source, keys)))!;
  const endTimer = syncBatchTimer(job.data, 'reconcile');
  try {
    const result = await sync(keys);
    recordSync({ pipeline, table, target, source: context.source.connectionName }, 'reconcile', result);
    return result;
  } finally {
    endTimer();
    await lease.release();
  }
}
