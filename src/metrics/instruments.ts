/**
 * The work this process does, as Prometheus counters, histograms and gauges (prom-client), and the
 * one typed helper per event that job and worker code calls. Job code never touches prom-client:
 * it says what happened (`recordChunkCompared`, `recordSync`...) and this module decides the metric.
 *
 * These metrics live in one registry per process (`processRegistry`), incremented where the work
 * happens whether or not a metrics server runs (an increment is a map lookup). Cluster-wide state
 * (queue depths, live workers, CDC lag, scheduled runs, the conflict log) is read at scrape time
 * instead: see cluster-metrics.ts.
 *
 * Labels are bounded by the config: pipeline, table, target/source (connection names), kind, queue,
 * database, trigger. Never keys, run ids or job ids. Apply lanes are one queue family, `apply`.
 * Counters count work done, including the work of attempts that failed and were retried.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SyncResult } from '../sync/sync-keys.js';

const registry = new Registry();
let defaultsCollected = false;

/**
 * The registry of this process's own metrics, with Node's process metrics (`process_*`, `nodejs_*`:
 * CPU, memory, event loop lag, GC) added on first use, so a `rowsync reconcile` that serves no
 * metrics does not start their observers.
 */
export function processRegistry(): Registry {
  if (!defaultsCollected) {
    collectDefaultMetrics({ register: registry });
    defaultsCollected = true;
  }
  return registry;
}

/** What started a sync: a reconcile run (chunk or apply job) or a CDC batch (or a dead letter's retry). */
export type SyncTrigger = 'reconcile' | 'cdc';

/** Seconds: a chunk compare takes milliseconds on a small table and minutes on a wide one over a slow link. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

const rowsCompared = new Counter({
  name: 'rowsync_reconcile_rows_compared_total',
  help: 'Rows compared by reconcile chunks, per side (source rows and target rows in the compared key ranges).',
  labelNames: ['pipeline', 'table', 'target', 'side'] as const,
  registers: [registry],
});

const differences = new Counter({
  name: 'rowsync_reconcile_differences_total',
  help: 'Differing keys found by reconcile chunks: missing (source only), extra (target only), changed (both, different).',
  labelNames: ['pipeline', 'table', 'target', 'kind'] as const,
  registers: [registry],
});

const chunks = new Counter({
  name: 'rowsync_reconcile_chunks_total',
  help: 'Reconcile chunks compared, by whether any key differed (outcome equal or differing).',
  labelNames: ['pipeline', 'table', 'target', 'outcome'] as const,
  registers: [registry],
});

const rowsWritten = new Counter({
  name: 'rowsync_rows_written_total',
  help:
    'Rows written by sync, per connection written to: kind insert, update or delete (one-way), or write ' +
    '(bidirectional pipelines, whose sync counts rows per side, not per statement).',
  labelNames: ['pipeline', 'table', 'target', 'kind', 'trigger'] as const,
  registers: [registry],
});

const conflictsDetected = new Counter({
  name: 'rowsync_sync_conflicts_total',
  help: 'Conflicts met by sync (manual pairs logged, bidirectional conflicts by any policy). Types: see rowsync_conflicts.',
  labelNames: ['pipeline', 'table', 'target', 'trigger'] as const,
  registers: [registry],
});

const chunkDuration = new Histogram({
  name: 'rowsync_reconcile_chunk_duration_seconds',
  help: "Duration of a reconcile chunk's compare step (checksums, bisection, row diff and any sync done in the chunk job).",
  labelNames: ['pipeline', 'target'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

const syncBatchDuration = new Histogram({
  name: 'rowsync_sync_batch_duration_seconds',
  help: 'Duration of one sync of a batch of keys (read both sides, decide, write in one target transaction).',
  labelNames: ['pipeline', 'target', 'trigger'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

const cdcBatchDuration = new Histogram({
  name: 'rowsync_cdc_batch_duration_seconds',
  help: "Duration of a CDC batch job (every table's syncs of one batch part, key lease waits included).",
  labelNames: ['pipeline', 'target'] as const,
  buckets: DURATION_BUCKETS,
  registers: [registry],
});

const cdcDeadLettered = new Counter({
  name: 'rowsync_cdc_batches_dead_lettered_total',
  help: 'CDC batch parts moved to the dead-letter queue (attempts exhausted or a final error).',
  labelNames: ['pipeline', 'target'] as const,
  registers: [registry],
});

const cdcBatchesQueued = new Counter({
  name: 'rowsync_cdc_batches_queued_total',
  help: 'CDC batch parts queued by the readers of this process.',
  labelNames: ['pipeline', 'target'] as const,
  registers: [registry],
});

const cdcKeysQueued = new Counter({
  name: 'rowsync_cdc_keys_queued_total',
  help: 'Changed keys queued by the CDC readers of this process.',
  labelNames: ['pipeline', 'target'] as const,
  registers: [registry],
});

const cdcReconciles = new Counter({
  name: 'rowsync_cdc_reconciles_requested_total',
  help: 'Reconcile runs a CDC reader started: initial snapshot, position-lost, truncate-or-schema-change.',
  labelNames: ['pipeline', 'reason'] as const,
  registers: [registry],
});

const jobAttemptsFailed = new Counter({
  name: 'rowsync_job_attempts_failed_total',
  help: 'Job attempts that failed in this process (retried ones included), per queue family.',
  labelNames: ['queue'] as const,
  registers: [registry],
});

const jobsFailed = new Counter({
  name: 'rowsync_jobs_failed_total',
  help: 'Jobs that failed for good in this process (attempts exhausted or unrecoverable): they wait in their failed set for a retry.',
  labelNames: ['queue'] as const,
  registers: [registry],
});

const schedulerTicks = new Counter({
  name: 'rowsync_scheduler_ticks_total',
  help: "Scheduled ticks of this scheduler: outcome enqueued, already_enqueued (another scheduler's), failed.",
  labelNames: ['pipeline', 'outcome'] as const,
  registers: [registry],
});

const queriesInFlight = new Gauge({
  name: 'rowsync_database_queries_in_flight',
  help: 'Queries this process is running on a configured connection right now.',
  labelNames: ['database'] as const,
  registers: [registry],
});

const queriesWaiting = new Gauge({
  name: 'rowsync_database_queries_waiting',
  help: "Queries of this process waiting for a slot of the connection's maxConcurrentQueries (cluster-wide cap).",
  labelNames: ['database'] as const,
  registers: [registry],
});

/** One table of a pipeline on one target (a reconcile chunk's or a sync's subject). */
export interface TableLabels {
  readonly pipeline: string;
  readonly table: string;
  readonly target: string;
}

/** What a chunk's compare found (`diffChunk`'s counts). */
export function recordChunkCompared(
  labels: TableLabels,
  found: { readonly sourceRows: number; readonly targetRows: number; readonly missing: number; readonly extra: number; readonly changed: number },
): void {
  const { pipeline, table, target } = labels;
  rowsCompared.inc({ pipeline, table, target, side: 'source' }, found.sourceRows);
  rowsCompared.inc({ pipeline, table, target, side: 'target' }, found.targetRows);
  differences.inc({ pipeline, table, target, kind: 'missing' }, found.missing);
  differences.inc({ pipeline, table, target, kind: 'extra' }, found.extra);
  differences.inc({ pipeline, table, target, kind: 'changed' }, found.changed);
  chunks.inc({ pipeline, table, target, outcome: found.missing + found.extra + found.changed > 0 ? 'differing' : 'equal' });
}

/**
 * What one sync wrote (not for dry runs: they write nothing). `source` is side A's connection: a
 * bidirectional sync writes to both sides, and each side's rows count under its own connection.
 */
export function recordSync(labels: TableLabels & { readonly source: string }, trigger: SyncTrigger, result: SyncResult): void {
  const { pipeline, table, target, source } = labels;
  const written = (connection: string, kind: string, count: number) => {
    if (count > 0) rowsWritten.inc({ pipeline, table, target: connection, kind, trigger }, count);
  };
  if (result.bidirectional) {
    written(source, 'write', result.bidirectional.writtenToA);
    written(target, 'write', result.bidirectional.writtenToB);
  } else {
    written(target, 'insert', result.inserted);
    written(target, 'update', result.updated);
    written(target, 'delete', result.deleted);
  }
  if (result.conflicts > 0) conflictsDetected.inc({ pipeline, table, target, trigger }, result.conflicts);
}

/** Starts timing a chunk's compare step; call the result when the step ends (whatever its outcome). */
export function chunkTimer(labels: { readonly pipeline: string; readonly target: string }): () => void {
  const end = chunkDuration.startTimer({ pipeline: labels.pipeline, target: labels.target });
  return () => void end();
}

/** Starts timing one sync of a batch of keys. */
export function syncBatchTimer(labels: { readonly pipeline: string; readonly target: string }, trigger: SyncTrigger): () => void {
  const end = syncBatchDuration.startTimer({ pipeline: labels.pipeline, target: labels.target, trigger });
  return () => void end();
}

/** Starts timing a CDC batch job. */
export function cdcBatchTimer(labels: { readonly pipeline: string; readonly target: string }): () => void {
  const end = cdcBatchDuration.startTimer({ pipeline: labels.pipeline, target: labels.target });
  return () => void end();
}

export function recordCdcDeadLetter(labels: { readonly pipeline: string; readonly target: string }): void {
  cdcDeadLettered.inc({ pipeline: labels.pipeline, target: labels.target });
}

export function recordCdcBatchQueued(labels: { readonly pipeline: string; readonly target: string }, keys: number): void {
  cdcBatchesQueued.inc({ pipeline: labels.pipeline, target: labels.target });
  if (keys > 0) cdcKeysQueued.inc({ pipeline: labels.pipeline, target: labels.target }, keys);
}

export function recordCdcReconcile(pipeline: string, reason: string): void {
  cdcReconciles.inc({ pipeline, reason });
}

/** A job attempt failed; `final` when no retry follows (attempts exhausted, or unrecoverable). */
export function recordJobFailure(queueName: string, final: boolean): void {
  const queue = queueFamily(queueName);
  jobAttemptsFailed.inc({ queue });
  if (final) jobsFailed.inc({ queue });
}

export function recordSchedulerTick(pipeline: string, outcome: 'enqueued' | 'already_enqueued' | 'failed'): void {
  schedulerTicks.inc({ pipeline, outcome });
}

/** A query started on a connection; call the result when it settles. */
export function queryStarted(database: string): () => void {
  queriesInFlight.inc({ database });
  return () => queriesInFlight.dec({ database });
}

/** A query began waiting for a concurrency slot; call the result when it has one (or gave up). */
export function queryWaiting(database: string): () => void {
  queriesWaiting.inc({ database });
  return () => queriesWaiting.dec({ database });
}

/**
 * The `queue` label of a BullMQ queue name: apply lanes (`apply-0`, `apply-1`...) are one family,
 * `apply`, so the label stays bounded however many lanes are configured.
 */
export function queueFamily(queueName: string): string {
  return /^apply-\d+$/.test(queueName) ? 'apply' : queueName;
}
