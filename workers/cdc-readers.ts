import { hostname } from 'node:os';
import { pipelineFingerprint } from '../src/config/config-fingerprint.js';
import type { RedisClient } from '../src/coordination/redis-client.js';
import { cdcBatchPayload, cdcJobId, cdcJobOptions, takeCompletions } from '../jobs/cdc-batch.job.js';
import { LagSampler } from '../jobs/cdc-lag-history.js';
import { newRunId } from '../jobs/job-ids.js';
import { JOB_NAMES } from '../jobs/queues.js';
import { enqueueRun, pipelineTables } from '../jobs/reconcile-run.job.js';
import type { Runtime } from '../jobs/runtime.js';
import { CdcReader, type CdcReaderPorts, type ReaderStatus } from '../src/cdc/cdc-reader.js';
import { sourceTableOf, targetTableOf, type CdcMode, type PipelineConfig } from '../src/config/index.js';
import { LeaderLock } from '../src/coordination/leader-lock.js';
import type { ChangeSource } from '../src/dialect/change-source.js';
import { createChangeSource } from '../src/dialect/create-change-source.js';
import { ConfigError, PositionLostError } from '../src/errors/index.js';
import { recordCdcBatchQueued, recordCdcReconcile } from '../src/metrics/instruments.js';

/** Redis hash of the readers' published status, one field per pipeline (read by `rowsync status`). */
export const cdcStatusKey = (prefix: string) => `${prefix}:cdc-status`;
/** The leader lock of a stream's reader: one reader per (pipeline, source side) cluster-wide. */
export const cdcLeaderKey = (prefix: string, stream: string) => `${prefix}:cdc-leader:${stream}`;

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

/**
 * One change stream of a pipeline: its source side and the side(s) its changes are synced to (where
 * its checkpoints live). A one-way pipeline has one stream; a bidirectional one has two, A -> B and
 * B -> A, each with its own reader, lock and checkpoint (the checkpoint of a side's stream is kept in
 * the other side).
 */
export interface CdcStream {
  readonly pipeline: PipelineConfig;
  /** The connection whose changes this stream reads. */
  readonly from: string;
  readonly targets: readonly string[];
  readonly mode: CdcMode;
  readonly serverId: number;
  /** Names the stream's lock and status: the pipeline, plus `<-` and the side for side B's stream. */
  readonly name: string;
}

export function cdcStreams(pipeline: PipelineConfig): CdcStream[] {
  const cdc = pipeline.cdc;
  if (!cdc) throw new ConfigError(`pipelines.${pipeline.name}.cdc: not configured`, { subject: `pipelines.${pipeline.name}.cdc` });
  const streams: CdcStream[] = [{ pipeline, from: pipeline.source, targets: pipeline.targets, mode: cdc.mode, serverId: cdc.serverId, name: pipeline.name }];
  if (pipeline.mode === 'bidirectional') {
    const sideB = pipeline.targets[0]!;
    streams.push({ pipeline, from: sideB, targets: [pipeline.source], mode: cdc.modeB, serverId: cdc.serverIdB, name: `${pipeline.name}<-${sideB}` });
  }
  return streams;
}

/** The change source of a stream (a pipeline: its source side's), on the runtime's pool of that side. */
export async function changeSourceOf(runtime: Runtime, of: CdcStream | PipelineConfig): Promise<ChangeSource> {
  const stream = 'from' in of ? of : cdcStreams(of)[0]!;
  const { pipeline } = stream;
  const cdc = pipeline.cdc!;
  return createChangeSource(stream.mode, {
    pipeline: pipeline.name,
    connectionName: stream.from,
    url: runtime.config.connections[stream.from]!.url,
    database: runtime.database(stream.from),
    // Side B's stream reads the tables under their target-side names (table entries' targetName).
    tables: (await pipelineTables(runtime, pipeline)).map((table) => (stream.from === pipeline.source ? table : targetTableOf(pipeline, table))),
    serverId: stream.serverId,
    heartbeatMs: cdc.heartbeatMs,
    pollIntervalMs: cdc.pollIntervalMs,
  });
}

/**
 * Starts one reader per CDC stream (each waits as a standby while another process holds its lock).
 * Every reader's source is preflighted first, so a missing server setting fails the command at once,
 * naming the setting, instead of retrying in the background.
 */
export async function startCdcReaders(
  runtime: Runtime,
  options: { pipeline?: string; onStatus?: (status: ReaderStatus) => void } = {},
): Promise<RunningReaders> {
  const readers: CdcReader[] = [];
  for (const pipeline of cdcPipelines(runtime, options.pipeline)) {
    for (const stream of cdcStreams(pipeline)) {
      const source = await changeSourceOf(runtime, stream);
      // A lost position is not a setup problem: the reader answers it with a reconcile.
      await source.preflight().catch((error: unknown) => {
        if (!(error instanceof PositionLostError)) throw error;
      });
      readers.push(new CdcReader(readerPorts(runtime, stream, source, options.onStatus), readerOptions(stream), runtime.logger.child({ pipeline: pipeline.name, stream: stream.from })));
    }
  }
  for (const reader of readers) reader.start();
  return {
    readers,
    async stop() {
      await Promise.all(readers.map((reader) => reader.stop()));
    },
  };
}

function readerOptions(stream: CdcStream) {
  const cdc = stream.pipeline.cdc!;
  return {
    pipeline: stream.pipeline.name,
    stream: stream.name,
    batchSize: cdc.batchSize,
    batchWindowMs: cdc.batchWindowMs,
    maxInFlightBatches: cdc.maxInFlightBatches,
    initialReconcile: cdc.initialReconcile,
  };
}

/** `onStatus`: this process's own readers' reports as they publish them (the library's events). */
function readerPorts(runtime: Runtime, stream: CdcStream, source: ChangeSource, onStatus?: (status: ReaderStatus) => void): CdcReaderPorts {
  const { redis, queues, config } = runtime;
  const { pipeline } = stream;
  const prefix = config.redis.prefix;
  const cdc = pipeline.cdc!;
  const where = `${hostname()}:${process.pid}`;
  const lagSampler = new LagSampler(redis, prefix);
  const fingerprint = pipelineFingerprint(config, pipeline.name);
  return {
    source,
    targets: stream.targets,
    readCheckpoint: (target) => runtime.database(target).readCheckpoint(pipeline.name, stream.from),
    writeCheckpoint: (target, position) => runtime.database(target).writeCheckpoint(pipeline.name, stream.from, position),
    async enqueue(part) {
      const payload = { ...cdcBatchPayload(pipeline.name, stream.from, part), fingerprint };
      await queues.cdc.add(JOB_NAMES.cdc, payload, cdcJobOptions(cdc, payload));
      recordCdcBatchQueued({ pipeline: pipeline.name, target: part.target }, [...part.keys.values()].reduce((sum, keys) => sum + keys.length, 0));
    },
    takeCompletions: (epoch) => takeCompletions(redis, prefix, pipeline.name, epoch),
    async partExists(target, epoch, seq) {
      const state = await queues.cdc.getJobState(cdcJobId(pipeline.name, target, epoch, seq, 0));
      return state !== 'unknown';
    },
    async enqueueReconcile(tables, reason) {
      const runId = `${newRunId(pipeline.name)}.cdc-${reason}`;
      recordCdcReconcile(pipeline.name, reason);
      await enqueueRun(runtime, {
        runId,
        pipeline: pipeline.name,
        dryRun: false,
        // The initial snapshot is a plain reconcile (target-only rows follow deleteExtra); after a
        // TRUNCATE, a schema change or a lost position, rows the source deleted go at the target too.
        ...(reason === 'initial' ? {} : { writePolicy: 'cdc' as const }),
        requestedAt: Date.now(),
        ...(tables === 'all' ? {} : { tables: stream.from === pipeline.source ? tables : tables.map((table) => sourceTableOf(pipeline, table)) }),
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
    async publishStatus(status) {
      await publishStatus(redis, prefix, { ...status, source: stream.from, reader: where } as ReaderStatus);
      onStatus?.({ ...status, source: stream.from });
      // The board's lag chart: one sample every few seconds, kept for an hour.
      await lagSampler.offer(status);
    },
    lock: new LeaderLock(redis, cdcLeaderKey(prefix, stream.name)),
  };
}

async function publishStatus(redis: RedisClient, prefix: string, status: ReaderStatus): Promise<void> {
  await redis.hset(cdcStatusKey(prefix), status.stream, JSON.stringify(status));
}

/** Every reader's last published status (`rowsync status`). */
export async function readCdcStatus(redis: RedisClient, prefix: string): Promise<(ReaderStatus & { reader?: string })[]> {
  const fields = await redis.hgetall(cdcStatusKey(prefix));
  return Object.values(fields).map((text) => JSON.parse(text) as ReaderStatus & { reader?: string });
}
