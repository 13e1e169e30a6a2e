import type { Job } from 'bullmq';
import type { DeadLetterPayload } from '../../jobs/cdc-batch.job.js';
import { LAG_HISTORY_MS, LAG_SAMPLE_EVERY_MS, readLagHistory, type LagSample } from '../../jobs/cdc-lag-history.js';
import { QUEUE_NAMES } from '../../jobs/queues.js';
import type { Runtime } from '../../jobs/runtime.js';
import { runTotals, type RunReport, type RunTotals } from '../../src/reconcile/report.js';
import { cdcStreams } from '../cdc-readers.js';
import {
  readConflictStatus, readCdcStreams, readDeadLetters, readQueueStatus, readRuns, type QueueStatus, type RunStatusEntry,
} from '../status-snapshot.js';

/**
 * The data of the board's overview page (`/overview`, and as it is at `/overview.json`): the same
 * figures `rowsync status` reads (workers/status-snapshot.ts), plus the pipelines of the config, each
 * run's report totals, the last hour of CDC lag and the dead letters themselves. Every `board` field
 * is a Bull Board page, relative to the board's root URL: the queue (or job) that holds the jobs.
 */

/** Bull Board's page of a queue (optionally one status tab) or of one job, relative to the board's root. */
export function boardLink(queue: string, options: { readonly status?: string; readonly jobId?: string } = {}): string {
  const job = options.jobId === undefined ? '' : `/${encodeURIComponent(options.jobId)}`;
  const status = options.status === undefined ? '' : `?status=${encodeURIComponent(options.status)}`;
  return `queue/${encodeURIComponent(queue)}${job}${status}`;
}

export type RunView = Omit<RunStatusEntry, 'report'> & {
  /** Present once the run has its report. */
  readonly totals?: RunTotals;
  readonly reportStatus?: RunReport['status'];
  readonly board: string;
};

export interface PipelineView {
  readonly name: string;
  readonly mode: string;
  readonly source: string;
  readonly targets: readonly string[];
  /** The configured tables; undefined: every source table with a primary key. */
  readonly tables?: readonly string[];
  readonly schedule?: string;
  /** The CDC mode of each streamed side; undefined: no CDC. */
  readonly cdc?: string;
  readonly lastRun?: { readonly runId: string; readonly state: string; readonly board: string };
  readonly board: string;
}

export interface LagSeries {
  readonly stream: string;
  readonly pipeline: string;
  readonly target: string;
  readonly samples: readonly LagSample[];
}

export interface DeadLetterView {
  readonly id: string;
  readonly pipeline: string;
  readonly target: string;
  readonly keys: number;
  readonly error: string;
  readonly deadLetteredAt: string;
  readonly board: string;
}

export interface OverviewData {
  readonly generatedAt: string;
  readonly workers: number;
  readonly queues: readonly (QueueStatus & { readonly board: string })[];
  readonly pipelines: readonly PipelineView[];
  readonly runs: { readonly current: readonly RunView[]; readonly recent: readonly RunView[]; readonly board: string };
  readonly cdc: {
    readonly streams: Awaited<ReturnType<typeof readCdcStreams>>;
    /** The CDC lag chart: one series per (stream, target), samples of the last `windowMs`. */
    readonly lag: { readonly windowMs: number; readonly sampleEveryMs: number; readonly series: readonly LagSeries[] };
    readonly board: string;
  };
  readonly deadLetters: {
    /** Parked (failed set) plus being retried. */
    readonly total: number;
    readonly parked: number;
    readonly retrying: number;
    readonly perTarget: readonly { readonly pipeline: string; readonly target: string; readonly count: number }[];
    /** The newest, newest first (at most `RECENT_DEAD_LETTERS`). */
    readonly recent: readonly DeadLetterView[];
    readonly board: string;
  };
  readonly conflicts: {
    readonly total: number;
    readonly pending: number;
    readonly perTarget: Awaited<ReturnType<typeof readConflictStatus>>;
    /** The queues whose jobs write (and record) conflicts: reconcile chunks, apply lanes, CDC batches. */
    readonly board: readonly { readonly queue: string; readonly board: string }[];
  };
}

/** States of a run job that is not finished. */
const CURRENT_RUN_STATES = new Set(['active', 'waiting', 'waiting-children', 'delayed', 'prioritized']);
const RECENT_DEAD_LETTERS = 20;

export async function readOverview(runtime: Runtime, now = Date.now()): Promise<OverviewData> {
  const { config } = runtime;
  const [queues, runs, letters, conflicts] = await Promise.all([
    readQueueStatus(runtime),
    readRuns(runtime, { withReports: true }),
    readDeadLetters(runtime),
    readConflictStatus(runtime),
  ]);
  const streams = await readCdcStreams(runtime, letters);
  const series = await Promise.all(
    lagSeriesOf(runtime, streams).map(async (entry) => ({
      ...entry,
      samples: await readLagHistory(runtime.redis, config.redis.prefix, entry.stream, entry.target, now),
    })),
  );
  const runViews = runs.map(runView);
  const deadLetterCounts = await runtime.queues.deadLetter.getJobCounts('failed', 'waiting', 'active');
  const parked = deadLetterCounts.failed ?? 0;
  const retrying = (deadLetterCounts.waiting ?? 0) + (deadLetterCounts.active ?? 0);

  return {
    generatedAt: new Date(now).toISOString(),
    workers: Math.max(0, ...queues.map((entry) => entry.workers)),
    queues: queues.map((entry) => ({ ...entry, board: boardLink(entry.queue) })),
    pipelines: config.pipelines.map((pipeline) => {
      const lastRun = runViews.find((run) => run.pipeline === pipeline.name);
      return {
        name: pipeline.name,
        mode: pipeline.mode,
        source: pipeline.source,
        targets: pipeline.targets,
        ...(pipeline.tables ? { tables: pipeline.tables } : {}),
        ...(pipeline.reconcile.schedule ? { schedule: pipeline.reconcile.schedule } : {}),
        ...(pipeline.cdc ? { cdc: pipeline.mode === 'bidirectional' ? `${pipeline.cdc.mode} / ${pipeline.cdc.modeB}` : pipeline.cdc.mode } : {}),
        ...(lastRun ? { lastRun: { runId: lastRun.runId, state: lastRun.state, board: lastRun.board } } : {}),
        board: boardLink(QUEUE_NAMES.run),
      };
    }),
    runs: {
      current: runViews.filter((run) => CURRENT_RUN_STATES.has(run.state)),
      recent: runViews.filter((run) => !CURRENT_RUN_STATES.has(run.state)),
      board: boardLink(QUEUE_NAMES.run),
    },
    cdc: {
      streams,
      lag: { windowMs: LAG_HISTORY_MS, sampleEveryMs: LAG_SAMPLE_EVERY_MS, series },
      board: boardLink(QUEUE_NAMES.cdc),
    },
    deadLetters: {
      total: parked + retrying,
      parked,
      retrying,
      perTarget: countPerTarget(letters),
      recent: [...letters]
        .sort((a, b) => b.data.deadLetteredAt - a.data.deadLetteredAt)
        .slice(0, RECENT_DEAD_LETTERS)
        .map(deadLetterView),
      board: boardLink(QUEUE_NAMES.deadLetter, { status: 'failed' }),
    },
    conflicts: {
      total: conflicts.reduce((sum, entry) => sum + entry.stats.total, 0),
      pending: conflicts.reduce((sum, entry) => sum + entry.stats.pending, 0),
      perTarget: conflicts,
      board: [QUEUE_NAMES.chunk, ...runtime.queues.apply.map((queue) => queue.name), ...(config.pipelines.some((p) => p.cdc) ? [QUEUE_NAMES.cdc] : [])].map(
        (queue) => ({ queue, board: boardLink(queue) }),
      ),
    },
  };
}

/**
 * The (stream, target) pairs of the lag chart: every configured CDC stream's, then any other a
 * reader reported (a pipeline since removed from this config still has its last hour).
 */
function lagSeriesOf(runtime: Runtime, streams: Awaited<ReturnType<typeof readCdcStreams>>) {
  const pairs = new Map<string, { stream: string; pipeline: string; target: string }>();
  const add = (stream: string, pipeline: string, target: string) => {
    const key = `${stream}\u0000${target}`;
    if (!pairs.has(key)) pairs.set(key, { stream, pipeline, target });
  };
  for (const pipeline of runtime.config.pipelines) {
    if (!pipeline.cdc) continue;
    for (const stream of cdcStreams(pipeline)) for (const target of stream.targets) add(stream.name, pipeline.name, target);
  }
  for (const stream of streams) for (const { target } of stream.targets) add(stream.stream, stream.pipeline, target);
  return [...pairs.values()];
}

function runView(run: RunStatusEntry): RunView {
  const { report, ...entry } = run;
  return {
    ...entry,
    ...(report ? { totals: runTotals(report), reportStatus: report.status } : {}),
    board: boardLink(QUEUE_NAMES.run, { jobId: run.runId }),
  };
}

function countPerTarget(letters: readonly Job<DeadLetterPayload>[]) {
  const counts = new Map<string, { pipeline: string; target: string; count: number }>();
  for (const { data } of letters) {
    const key = `${data.pipeline}\u0000${data.target}`;
    const entry = counts.get(key) ?? { pipeline: data.pipeline, target: data.target, count: 0 };
    entry.count += 1;
    counts.set(key, entry);
  }
  return [...counts.values()];
}

function deadLetterView(job: Job<DeadLetterPayload>): DeadLetterView {
  const { data } = job;
  return {
    id: job.id!,
    pipeline: data.pipeline,
    target: data.target,
    keys: data.tables.reduce((sum, [, keys]) => sum + keys.length, 0),
    error: job.failedReason || data.error,
    deadLetteredAt: new Date(data.deadLetteredAt).toISOString(),
    board: boardLink(QUEUE_NAMES.deadLetter, { jobId: job.id! }),
  };
}
