import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { cdcBatchPayload, cdcJobId, cdcJobOptions, takeCompletions } from '../jobs/cdc-batch.job.js';
import { newRunId } from '../jobs/job-ids.js';
import { JOB_NAMES } from '../jobs/queues.js';
import { enqueueRun, pipelineTables } from '../jobs/reconcile-run.job.js';
import type { Runtime } from '../jobs/runtime.js';
import { CdcReader, type CdcReaderPorts, type ReaderStatus } from '../src/cdc/cdc-reader.js';
import type { PipelineConfig } from '../src/config/index.js';
import { LeaderLock } from '../src/coordination/leader-lock.js';
import type { ChangeSource } from '../src/dialect/change-source.js';
import { createChangeSource } from '../src/dialect/create-change-source.js';
import { ConfigError, PositionLostError } from '../src/errors/index.js';

/** Redis hash of the readers' published status, one field per pipeline (read by `rowsync status`). */
export const cdcStatusKey = (prefix: string) => `${prefix}:cdc-status`;
/** The leader lock of a pipeline's reader: one reader per (pipeline, source) cluster-wide. */
export const cdcLeaderKey = (prefix: string, pipeline: string) => `${prefix}:cdc-leader:${pipeline}`;

export interface RunningReaders {
  readonly readers: readonly CdcReader[];
  stop(): Promise<void>;
}

/** The pipelines a `rowsync cdc` / `rowsync start` process streams: those with `cdc`, or the one named. */
export function cdcPipelines(runtime: Runtime, only?: string): PipelineConfig[] {
  if (only) {
    const pipeline = runtime.pipeline(only);
    if (!pipeline.cdc) {
      throw new ConfigError(`--pipeline: pipeline '${only}' has no cdc section (add "cdc": {} to stream it)`, { subject: '--pipeline' });
    }
    return [pipeline];
  }
  return runtime.config.pipelines.filter((pipeline) => pipeline.cdc);
}

/** The change source of a pipeline, on the runtime's pool of its source. */
export async function changeSourceOf(runtime: Runtime, pipeline: PipelineConfig): Promise<ChangeSource> {
  const cdc = pipeline.cdc;
  if (!cdc) throw new ConfigError(`pipelines.${pipeline.name}.cdc: not configured`, { subject: `pipelines.${pipeline.name}.cdc` });
  const connection = runtime.config.connections[pipeline.source]!;
  return createChangeSource(cdc.mode, {
    pipeline: pipeline.name,
    connectionName: pipeline.source,
    url: connection.url,
    database: runtime.database(pipeline.source),
    tables: await pipelineTables(runtime, pipeline),
    serverId: cdc.serverId,
    heartbeatMs: cdc.heartbeatMs,
    pollIntervalMs: cdc.pollIntervalMs,
  });
}

/**
 * Starts one reader per CDC pipeline (each waits as a standby while another process holds its lock).
 * Every reader's source is preflighted first, so a missing server setting fails the command at once,
 * naming the setting, instead of retrying in the background.
 */
export async function startCdcReaders(runtime: Runtime, options: { pipeline?: string } = {}): Promise<RunningReaders> {
  const pipelines = cdcPipelines(runtime, options.pipeline);
  const readers: CdcReader[] = [];
  for (const pipeline of pipelines) {
    const source = await changeSourceOf(runtime, pipeline);
    // A lost position is not a setup problem: the reader answers it with a reconcile.
    await source.preflight().catch((error: unknown) => {
      if (!(error instanceof PositionLostError)) throw error;
    });
    readers.push(new CdcReader(readerPorts(runtime, pipeline, source), readerOptions(pipeline), runtime.logger.child({ pipeline: pipeline.name })));
  }
  for (const reader of readers) reader.start();
  return {
    readers,
    async stop() {
      await Promise.all(readers.map((reader) => reader.stop()));
    },
  };
}

function readerOptions(pipeline: PipelineConfig) {
  const cdc = pipeline.cdc!;
  return {
    pipeline: pipeline.name,
    batchSize: cdc.batchSize,
    batchWindowMs: cdc.batchWindowMs,
    maxInFlightBatches: cdc.maxInFlightBatches,
    initialReconcile: cdc.initialReconcile,
  };
}

function readerPorts(runtime: Runtime, pipeline: PipelineConfig, source: ChangeSource): CdcReaderPorts {
  const { redis, queues, config } = runtime;
  const prefix = config.redis.prefix;
  const cdc = pipeline.cdc!;
  const where = `${hostname()}:${process.pid}`;
  return {
    source,
    targets: pipeline.targets,
    readCheckpoint: (target) => runtime.database(target).readCheckpoint(pipeline.name, pipeline.source),
    writeCheckpoint: (target, position) => runtime.database(target).writeCheckpoint(pipeline.name, pipeline.source, position),
    async enqueue(part) {
      const payload = cdcBatchPayload(pipeline.name, part);
      await queues.cdc.add(JOB_NAMES.cdc, payload, cdcJobOptions(cdc, payload));
    },
    takeCompletions: (epoch) => takeCompletions(redis, prefix, pipeline.name, epoch),
    async partExists(target, epoch, seq) {
      const state = await queues.cdc.getJobState(cdcJobId(pipeline.name, target, epoch, seq, 0));
      return state !== 'unknown';
    },
    async enqueueReconcile(tables, reason) {
      const runId = `${newRunId(pipeline.name)}.cdc-${reason}`;
      await enqueueRun(runtime, {
        runId,
        pipeline: pipeline.name,
        dryRun: false,
        // The initial snapshot is a plain reconcile (target-only rows follow deleteExtra); after a
        // TRUNCATE, a schema change or a lost position, rows the source deleted go at the target too.
        ...(reason === 'initial' ? {} : { writePolicy: 'cdc' as const }),
        requestedAt: Date.now(),
        ...(tables === 'all' ? {} : { tables }),
      });
      return runId;
    },
    async waitForRun(runId) {
      for (;;) {
        const state = await queues.run.getJobState(runId);
        if (state === 'completed' || state === 'failed' || state === 'unknown') return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    },
    publishStatus: (status) => publishStatus(redis, prefix, { ...status, reader: where } as ReaderStatus),
    lock: new LeaderLock(redis, cdcLeaderKey(prefix, pipeline.name)),
  };
}

async function publishStatus(redis: Redis, prefix: string, status: ReaderStatus): Promise<void> {
  await redis.hset(cdcStatusKey(prefix), status.pipeline, JSON.stringify(status));
}

/** Every reader's last published status (`rowsync status`). */
export async function readCdcStatus(redis: Redis, prefix: string): Promise<(ReaderStatus & { reader?: string })[]> {
  const fields = await redis.hgetall(cdcStatusKey(prefix));
  return Object.values(fields).map((text) => JSON.parse(text) as ReaderStatus & { reader?: string });
}
