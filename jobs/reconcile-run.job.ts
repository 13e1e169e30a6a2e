import { WaitingChildrenError, type Job } from 'bullmq';
import type { RedisClient } from '../src/coordination/redis-client.js';
import type { RunReport, TableReport } from '../src/reconcile/report.js';
import { SchemaError } from '../src/errors/index.js';
import { JOB_NAMES, type RowsyncQueues } from './queues.js';
import { RUN_ID_PATTERN, tableJobId } from './job-ids.js';
import type { Runtime } from './runtime.js';
import type { TablePayload } from './reconcile-table.job.js';
import type { RunSettings } from './run-settings.js';
import { ConfigError } from '../src/errors/index.js';
import { pipelineFingerprint } from '../src/config/config-fingerprint.js';
import type { PipelineConfig } from '../src/config/index.js';
import { ROWSYNC_TABLE_PREFIX } from '../src/dialect/conflicts-table.js';
import { checkReplicas } from '../src/reconcile/throttle.js';

export interface RunPayload {
  readonly runId: string;
  readonly pipeline: string;
  /** The enqueuing config's `pipelineFingerprint`: a worker with another config leaves the job alone. */
  readonly fingerprint?: string;
  /** Tables to reconcile; omitted: the pipeline's `tables`, or every source table with a primary key. */
  readonly tables?: readonly string[];
  readonly dryRun: boolean;
  /**
   * Whose write policy the run's writes follow: reconcile's (default), or CDC's for the runs CDC
   * starts (after a TRUNCATE, a schema change or a lost position): rows the source deleted are then
   * deleted at the target whatever `reconcile.deleteExtra` says, as the stream would have deleted them.
   */
  readonly writePolicy?: 'cdc';
  /** The run's own reconcile settings over the pipeline's (see run-settings.ts). */
  readonly settings?: RunSettings;
  /** When the run was enqueued (ms since epoch): `durationMs` counts from here. */
  readonly requestedAt: number;
  readonly step?: 'plan' | 'wait';
  /** (table, target) pairs in report order, filled by the plan step. */
  readonly planned?: readonly { readonly table: string; readonly target: string }[];
}

/** How long the "this run id was enqueued" marker lives (longer than any run is kept). */
const ENQUEUED_MARKER_SECONDS = 30 * 24 * 3600;

/**
 * Enqueues a run. The job id is the run id, so enqueuing the same run twice is a no-op (BullMQ adds
 * nothing for an existing id). Returns whether this call was the first for that id, from an atomic
 * SET NX marker: two schedulers firing the same tick both add, one run exists, and only one of them
 * reports (and logs) that it started it. Both add even so, so a caller that died between the marker
 * and the add is made good by the next one.
 */
export async function enqueueRun(
  { queues, redis }: { readonly queues: RowsyncQueues; readonly redis: RedisClient },
  payload: Omit<RunPayload, 'step' | 'planned'>,
): Promise<boolean> {
  if (!RUN_ID_PATTERN.test(payload.runId)) {
    throw new ConfigError(`--run-id: '${payload.runId}' must be letters, digits, _ . - (no ':')`, { subject: '--run-id' });
  }
  const marker = `${queues.config.redis.prefix}:run-enqueued:${payload.runId}`;
  const first = (await redis.set(marker, String(payload.requestedAt), 'EX', ENQUEUED_MARKER_SECONDS, 'NX')) === 'OK';
  const fingerprint = payload.fingerprint ?? pipelineFingerprint(queues.config, payload.pipeline);
  await queues.run.add(JOB_NAMES.run, { ...payload, ...(fingerprint ? { fingerprint } : {}) }, {
    jobId: payload.runId,
    attempts: 3,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { count: 1000 },
    removeOnFail: false,
  });
  return first;
}

/**
 * Step 1 (plan): lists the tables and adds one child job per (table, target), then waits for them.
 * Step 2 (report): collects the table reports. Both steps are idempotent: child ids are deterministic.
 */
export async function processRun(job: Job<RunPayload>, token: string | undefined, runtime: Runtime): Promise<RunReport> {
  const data = job.data;
  if (data.step !== 'wait') {
    const pipeline = runtime.pipeline(data.pipeline);
    // A watched connection that is no replica would hold every writing chunk forever: fail the run
    // before any write (a dry run too, so that a monitoring run reports the mistake).
    await checkReplicas(pipeline.reconcile, { replica: (name) => runtime.database(name), field: `pipelines.${pipeline.name}.reconcile` });
    const tables = data.tables ?? (await pipelineTables(runtime, pipeline));
    const planned = tables.flatMap((table) => pipeline.targets.map((target) => ({ table, target })));
    await runtime.queues.table.addBulk(
      planned.map(({ table, target }) => ({
        name: JOB_NAMES.table,
        data: {
          runId: data.runId, pipeline: data.pipeline, table, target, dryRun: data.dryRun, ...(data.writePolicy ? { writePolicy: data.writePolicy } : {}),
          ...(data.fingerprint ? { fingerprint: data.fingerprint } : {}),
          ...(data.settings ? { settings: data.settings } : {}),
        } satisfies TablePayload,
        opts: {
          jobId: tableJobId(data.runId, table, target),
          parent: { id: job.id!, queue: job.queueQualifiedName },
          attempts: pipeline.reconcile.attempts,
          backoff: { type: 'exponential', delay: pipeline.reconcile.backoffMs },
          removeOnComplete: { age: 7 * 24 * 3600 },
          removeOnFail: false,
        },
      })),
    );
    await runtime.progress.add(data.runId, { tablesPlanned: planned.length });
    await job.updateData({ ...data, step: 'wait', planned });
    if (await job.moveToWaitingChildren(token ?? '')) throw new WaitingChildrenError();
  }
  const reports = Object.values(await job.getChildrenValues<TableReport>());
  const order = (job.data.planned ?? []).map(({ table, target }) => `${table}\u0000${target}`);
  reports.sort((a, b) => order.indexOf(`${a.table}\u0000${a.target}`) - order.indexOf(`${b.table}\u0000${b.target}`));
  return {
    runId: data.runId,
    pipeline: data.pipeline,
    status: reports.some((report) => report.errors.length > 0) ? 'completed_with_errors' : 'completed',
    dryRun: data.dryRun,
    durationMs: Date.now() - data.requestedAt,
    tables: reports,
  };
}

/**
 * The tables a pipeline keeps equal: its `tables`, or every source table with a primary key except
 * rowsync's own bookkeeping tables (`rowsync_` conflicts, CDC checkpoints and change tables).
 */
export async function pipelineTables(runtime: Runtime, pipeline: PipelineConfig): Promise<readonly string[]> {
  if (pipeline.tables) return pipeline.tables;
  const database = runtime.database(pipeline.source);
  const tables: string[] = [];
  for (const table of await database.listTables()) {
    if (table.startsWith(ROWSYNC_TABLE_PREFIX)) continue;
    try {
      await database.describeTable(table);
      tables.push(table);
    } catch (error) {
      if (error instanceof SchemaError) {
        runtime.logger.info({ table, reason: error.code }, 'skipping table: %s', error.message);
        continue;
      }
      throw error;
    }
  }
  return tables;
}
