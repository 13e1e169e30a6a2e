import { WaitingChildrenError, type Job } from 'bullmq';
import { SchemaError } from '../src/errors/index.js';
import { planAdaptiveChunks, planChunks } from '../src/reconcile/chunk-planner.js';
import { compareShapes } from '../src/reconcile/compare-shape.js';
import { emptyTableReport, tableReport, type ChunkReport, type TableReport } from '../src/reconcile/report.js';
import { decodeTuple, encodeRange, encodeTuple, type EncodedValue } from '../src/sync/portable-json.js';
import { ChunkSizer, chunkSizing } from '../src/reconcile/chunk-sizer.js';
import { ConcurrencyOverrides } from '../src/coordination/concurrency-overrides.js';
import type { KeyRange } from '../src/dialect/types.js';
import { conflictColumnIndex } from '../src/sync/sync-keys.js';
import { chunkJobId } from './job-ids.js';
import { JOB_NAMES, retryOptions } from './queues.js';
import type { ChunkPayload } from './reconcile-chunk.job.js';
import type { Runtime, TableContext } from './runtime.js';
import { withRunSettings, type RunSettings } from './run-settings.js';

/**
 * `AdaptivePlanPosition` (chunk-planner.ts) as the job's data keeps it, saved before each batch is
 * added: a table job that dies while planning resumes here, so every row is in exactly one chunk
 * whatever the sizes were.
 */
export interface PlanCursor {
  readonly lower?: EncodedValue[];
  readonly chunks: number;
  readonly size: number;
  readonly done: boolean;
  /** The chunks planned with this cursor: added again on resume (their ids make that a no-op). */
  readonly pending: readonly ChunkPayload[];
}

export interface TablePayload {
  readonly runId: string;
  readonly pipeline: string;
  /** The enqueuing config's `pipelineFingerprint`: a worker with another config leaves the job alone. */
  readonly fingerprint?: string;
  readonly table: string;
  readonly target: string;
  readonly dryRun: boolean;
  /** See `RunPayload.writePolicy`. */
  readonly writePolicy?: 'cdc';
  /** See `RunPayload.settings`. */
  readonly settings?: RunSettings;
  /** Set by the plan step: this run records the bidirectional baseline of the table (see ChunkPayload). */
  readonly recordBaseline?: boolean;
  readonly step?: 'plan' | 'wait';
  readonly chunks?: number;
  /** Adaptive planning in progress (`reconcile.chunkTimeMs` > 0). */
  readonly cursor?: PlanCursor;
}

/**
 * Chunk jobs added per Redis round trip while planning a large table. The first batches are small so
 * that workers start comparing while the planner is still walking the key index (planning 100
 * chunks takes ~0.5 s of sequential index dives, measured on the 1M-row bench).
 */
const ADD_BATCH = 500;
const FIRST_ADD_BATCHES = [4, 16, 64];

/**
 * Step 1 (plan): introspects both sides, walks the source key index for chunk bounds and adds one
 * child job per chunk as it goes (memory stays flat for any table size), then waits for them.
 * Step 2 (report): sums the chunk reports. A table that cannot be reconciled (no primary key,
 * missing, a column the target lacks) completes with the reason in `errors`, so the rest of the run
 * goes on; connection problems throw and are retried.
 */
export async function processTable(job: Job<TablePayload>, token: string | undefined, runtime: Runtime): Promise<TableReport> {
  const data = job.data;
  if (data.step !== 'wait') {
    let chunks = 0;
    let recordBaseline = false;
    try {
      const context = withRunSettings(await runtime.tableContext(data.pipeline, data.table, data.target), data.settings);
      const { reconcile } = context.pipeline;
      compareShapes(context.pair, reconcile.compare, reconcile.timestampColumn, context.source.connectionName);
      if (reconcile.conflict === 'timestamp') {
        conflictColumnIndex(context.pair.source, reconcile.conflictColumn, context.source.connectionName);
      }
      recordBaseline =
        context.pipeline.mode === 'bidirectional' && !data.dryRun && !(await runtime.syncState(data.target).hasBaseline(data.pipeline, data.table));
      const chunkPayload = (range: KeyRange, index: number): ChunkPayload => ({
        runId: data.runId, pipeline: data.pipeline, table: data.table, target: data.target,
        index, range: encodeRange(range), dryRun: data.dryRun, ...(data.writePolicy ? { writePolicy: data.writePolicy } : {}),
        ...(data.fingerprint ? { fingerprint: data.fingerprint } : {}),
        ...(data.settings ? { settings: data.settings } : {}),
        ...(recordBaseline ? { recordBaseline } : {}),
      });
      const addChunks = async (payloads: readonly ChunkPayload[]) => {
        if (payloads.length === 0) return;
        await runtime.queues.chunk.addBulk(
          payloads.map((payload) => ({
            name: JOB_NAMES.chunk,
            data: payload,
            opts: {
              ...retryOptions(reconcile),
              jobId: chunkJobId(job.id!, payload.range),
              parent: { id: job.id!, queue: job.queueQualifiedName },
            },
          })),
        );
        await runtime.progress.add(data.runId, { chunksPlanned: payloads.length });
      };
      if (reconcile.chunkTimeMs > 0) {
        chunks = await planAdaptively(job, token, runtime, context, chunkPayload, addChunks);
      } else {
        let batch: ChunkPayload[] = [];
        let flushes = 0;
        for await (const range of planChunks({ database: context.source, shape: context.pair.source }, reconcile.chunkSize)) {
          batch.push(chunkPayload(range, chunks));
          chunks += 1;
          if (batch.length >= (FIRST_ADD_BATCHES[flushes] ?? ADD_BATCH)) {
            await addChunks(batch);
            batch = [];
            flushes += 1;
          }
        }
        await addChunks(batch);
      }
    } catch (error) {
      if (error instanceof SchemaError) {
        runtime.logger.warn({ table: data.table, target: data.target, code: error.code }, error.message);
        await runtime.progress.add(data.runId, { tablesDone: 1 });
        return { ...emptyTableReport(data.table, data.target, [error.message]), sourceRows: await sourceRowCount(runtime, data) };
      }
      throw error;
    }
    await job.updateData({ ...data, step: 'wait', chunks, ...(recordBaseline ? { recordBaseline } : {}) });
    if (await job.moveToWaitingChildren(token ?? '')) throw new WaitingChildrenError();
  }
  const chunkReports = Object.values(await job.getChildrenValues<ChunkReport>());
  // Every chunk recorded its rows: from now on only differing keys need their state read.
  if (job.data.recordBaseline) await runtime.syncState(data.target).markBaseline(data.pipeline, data.table);
  await runtime.progress.add(data.runId, { tablesDone: 1 });
  return tableReport(data.table, data.target, chunkReports);
}

/** Longest the planner waits between two looks at the table's progress. */
const MAX_PLAN_POLL_MS = 250;

/**
 * Adaptive planning (`reconcile.chunkTimeMs`, see `planAdaptiveChunks`) wired to this job: scans
 * from the run's progress, the position saved in the job's data before each batch is added, and a
 * resume from that position after a crash or a hand-back. The table job stays active until its last
 * chunk is planned. Returns the number of chunks.
 */
async function planAdaptively(
  job: Job<TablePayload>,
  token: string | undefined,
  runtime: Runtime,
  context: TableContext,
  chunkPayload: (range: KeyRange, index: number) => ChunkPayload,
  addChunks: (payloads: readonly ChunkPayload[]) => Promise<void>,
): Promise<number> {
  const { reconcile } = context.pipeline;
  const resumed = job.data.cursor;
  // A batch saved but perhaps not added before a crash: add it (again; its ids make that a no-op).
  if (resumed) await addChunks(resumed.pending);
  const pollMs = Math.min(MAX_PLAN_POLL_MS, Math.max(10, reconcile.chunkTimeMs / 4));
  return planAdaptiveChunks(
    { database: context.source, shape: context.pair.source },
    new ChunkSizer(chunkSizing(reconcile.chunkSize, reconcile.chunkTimeMs), resumed?.size),
    resumed ? { ...(resumed.lower ? { lower: decodeTuple(resumed.lower) } : {}), chunks: resumed.chunks, done: resumed.done } : undefined,
    await chunkLookahead(runtime),
    {
      scans: () => runtime.progress.tableScans(job.data.runId, job.id!),
      pause: () => sleep(pollMs),
      async commit(batch, position) {
        // A job handed back at shutdown, or taken over after a stall, goes on in another process from
        // the saved position: this one must not plan further (two planners would cover rows twice).
        if (token && (await job.extendLock(token, runtime.config.workers.lockDurationMs)) !== 1) {
          throw new Error(`table job ${job.id}: lost its lock while planning; another worker resumes the plan`);
        }
        const pending = batch.map((range, offset) => chunkPayload(range, position.chunks - batch.length + offset));
        const cursor: PlanCursor = {
          ...(position.lower ? { lower: encodeTuple(position.lower) } : {}), chunks: position.chunks, size: position.size, done: position.done, pending,
        };
        await job.updateData({ ...job.data, cursor });
        await addChunks(pending);
      },
    },
  );
}

/**
 * Chunks an adaptive plan keeps ready beyond those compared: twice the chunk jobs all connected
 * workers run at once (each at `workers.concurrency.chunk`, or the `rowsync concurrency` override),
 * so none waits for the planner. Read once per table.
 */
async function chunkLookahead(runtime: Runtime): Promise<number> {
  const [workers, overrides] = await Promise.all([
    runtime.queues.chunk.getWorkersCount().catch(() => 1),
    new ConcurrencyOverrides(runtime.redis, runtime.config.redis.prefix).read().catch(() => ({ chunk: undefined })),
  ]);
  const perWorker = overrides.chunk ?? runtime.config.workers.concurrency.chunk;
  return Math.max(4, 2 * perWorker * Math.max(1, workers));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The source's rows of a table that could not be reconciled (it lacks a primary key, the target
 * lacks the table or a column...), so its report does not claim an empty source: a plain count,
 * 0 when the source lacks the table too.
 */
async function sourceRowCount(runtime: Runtime, data: TablePayload): Promise<number> {
  const source = runtime.database(runtime.pipeline(data.pipeline).source);
  try {
    const rows = await source.execute(`SELECT COUNT(*) AS n FROM ${source.quoteIdentifier(data.table)}`);
    return Number(rows[0]?.n ?? 0);
  } catch {
    return 0;
  }
}
