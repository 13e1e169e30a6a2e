import { readCdcChanges, type LinkChangeCounts } from '../../jobs/cdc-change-counts.js';
import type { Runtime } from '../../jobs/runtime.js';
import { cdcStreams } from '../../workers/cdc-readers.js';
import { readCdcStreams, readDeadLetters } from '../../workers/status-snapshot.js';
import type { ReaderStatus } from '../cdc/cdc-reader.js';
import type { PipelineConfig } from '../config/index.js';

/**
 * What the seed's `getSyncStats()` answered, per pipeline, from what every rowsync process records
 * in Redis (so it is the same whichever process asks): total changes and changes in the last hour
 * (the durable counts of jobs/cdc-change-counts.ts), queue length, running or not, last change time;
 * plus per stream and target the durable position, lag and dead letters (the readers' published
 * status, as `rowsync status` shows it).
 */

/** A reader that published nothing for this long is not counted as running (status-snapshot.ts says stale). */
const RUNNING_FRESH_MS = 30_000;

export interface CdcLinkStats {
  /** The target the stream's changes are synced to (where its checkpoint lives). */
  readonly target: string;
  /** Durable checkpoint: the source position below which every change has been applied here; undefined before the first. */
  readonly position: string | undefined;
  /** Source commit to now of the oldest change not yet applied here (0 when caught up); undefined without a reader's report. */
  readonly lagMs: number | undefined;
  /** Batch jobs queued for this target and not yet applied. */
  readonly queuedJobs: number;
  /** Dead-lettered batch parts waiting (parked, or being retried). */
  readonly deadLetters: number;
  /** Keys synced by CDC here, ever and in the last hour, and rows that changed for it. */
  readonly changes: number;
  readonly changesLastHour: number;
  readonly rowsWritten: number;
  /** ISO time the last change was applied here, and when the source had committed it. */
  readonly lastChangeAt: string | undefined;
  readonly lastChangeCommittedAt: string | undefined;
}

export interface CdcStreamStats {
  /** The pipeline, or `<pipeline><-<side B>` for the B -> A stream of a bidirectional pipeline. */
  readonly stream: string;
  /** The connection whose changes it reads. */
  readonly from: string;
  readonly mode: string;
  /** The reader's last published state; `not-started` when no reader ever ran. */
  readonly state: ReaderStatus['state'] | 'not-started';
  /** A reader streams it now (its report is fresh), in any process. */
  readonly running: boolean;
  /** `host:pid` of the process whose reader reported last. */
  readonly reader: string | undefined;
  readonly error: string | undefined;
  readonly targets: readonly CdcLinkStats[];
}

export interface PipelineSyncStats {
  readonly pipeline: string;
  readonly mode: PipelineConfig['mode'];
  /** The pipeline has a `cdc` section. */
  readonly cdc: boolean;
  /** Some stream of the pipeline is streaming now, in any process. */
  readonly running: boolean;
  /** Keys synced by CDC since it first ran, over every stream and target. */
  readonly totalChanges: number;
  readonly changesLastHour: number;
  /** ISO time of the newest applied change. */
  readonly lastChangeAt: string | undefined;
  /** CDC batch jobs queued and not yet applied, over every stream and target. */
  readonly queueLength: number;
  readonly deadLetters: number;
  /** The largest lag of any target (ms); undefined when no reader reported one. */
  readonly lagMs: number | undefined;
  readonly streams: readonly CdcStreamStats[];
}

/** Sync statistics of the named pipelines (default: every configured one), in config order. */
export async function readSyncStats(runtime: Runtime, pipelines: readonly string[] = runtime.config.pipelines.map((pipeline) => pipeline.name)): Promise<PipelineSyncStats[]> {
  const chosen = pipelines.map((name) => runtime.pipeline(name));
  const letters = await readDeadLetters(runtime);
  const statuses = await readCdcStreams(runtime, letters);
  return Promise.all(
    chosen.map(async (pipeline) => {
      const counts = await readCdcChanges(runtime.redis, runtime.config.redis.prefix, pipeline.name);
      const streams = pipeline.cdc
        ? await Promise.all(
            cdcStreams(pipeline).map((stream) =>
              streamStats(runtime, pipeline, stream.name, stream.from, stream.mode, stream.targets, statuses, counts, letters.map((job) => job.data)),
            ),
          )
        : [];
      const links = streams.flatMap((stream) => stream.targets);
      const lags = links.map((link) => link.lagMs).filter((lag): lag is number => lag !== undefined);
      const changeTimes = counts.map((link) => link.lastChangeAt).filter((at): at is number => at !== undefined);
      const lastChange = changeTimes.length > 0 ? Math.max(...changeTimes) : undefined;
      return {
        pipeline: pipeline.name,
        mode: pipeline.mode,
        cdc: pipeline.cdc !== undefined,
        running: streams.some((stream) => stream.running),
        totalChanges: counts.reduce((total, link) => total + link.changes, 0),
        changesLastHour: counts.reduce((total, link) => total + link.changesLastHour, 0),
        lastChangeAt: iso(lastChange),
        queueLength: links.reduce((total, link) => total + link.queuedJobs, 0),
        deadLetters: letters.filter((job) => job.data.pipeline === pipeline.name).length,
        lagMs: lags.length > 0 ? Math.max(...lags) : undefined,
        streams,
      };
    }),
  );
}

async function streamStats(
  runtime: Runtime,
  pipeline: PipelineConfig,
  stream: string,
  from: string,
  mode: string,
  targets: readonly string[],
  statuses: Awaited<ReturnType<typeof readCdcStreams>>,
  counts: readonly LinkChangeCounts[],
  letters: readonly { readonly pipeline: string; readonly from: string; readonly target: string }[],
): Promise<CdcStreamStats> {
  const status = statuses.find((entry) => entry.pipeline === pipeline.name && entry.stream === stream);
  const running = status?.state === 'streaming' && Date.now() - status.updatedAt < RUNNING_FRESH_MS;
  return {
    stream,
    from,
    mode: status?.mode ?? mode,
    state: status?.state ?? 'not-started',
    running,
    reader: status?.reader,
    error: status?.error,
    targets: await Promise.all(
      targets.map(async (target) => {
        const reported = status?.targets.find((entry) => entry.target === target);
        const count = counts.find((entry) => entry.from === from && entry.target === target);
        return {
          target,
          // The report's checkpoint is the durable one as of its last write; without a report, the target's own.
          position: reported?.checkpoint || (await durableCheckpoint(runtime, pipeline.name, from, target)),
          lagMs: reported?.lagMs,
          queuedJobs: reported?.queuedJobs ?? 0,
          deadLetters: letters.filter((letter) => letter.pipeline === pipeline.name && letter.from === from && letter.target === target).length,
          changes: count?.changes ?? 0,
          changesLastHour: count?.changesLastHour ?? 0,
          rowsWritten: count?.written ?? 0,
          lastChangeAt: iso(count?.lastChangeAt),
          lastChangeCommittedAt: iso(count?.lastCommittedAt),
        };
      }),
    ),
  };
}

/** The checkpoint stored in the target database; undefined when there is none or the target cannot be read. */
async function durableCheckpoint(runtime: Runtime, pipeline: string, from: string, target: string): Promise<string | undefined> {
  try {
    return await runtime.database(target).readCheckpoint(pipeline, from);
  } catch {
    return undefined;
  }
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined || ms === 0 ? undefined : new Date(ms).toISOString();
}
