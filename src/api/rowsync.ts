import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnrecoverableError, type Job } from 'bullmq';
import { pino } from 'pino';
import { keysInPart } from '../../jobs/cdc-change-counts.js';
import type { CdcBatchPayload, CdcBatchResult } from '../../jobs/cdc-batch.job.js';
import { newRunId } from '../../jobs/job-ids.js';
import { QUEUE_NAMES } from '../../jobs/queues.js';
import { enqueueRun } from '../../jobs/reconcile-run.job.js';
import type { ChunkPayload } from '../../jobs/reconcile-chunk.job.js';
import type { RunProgressCounts } from '../../jobs/run-progress.js';
import { Runtime } from '../../jobs/runtime.js';
import { cdcPipelines, cdcStreams, changeSourceOf, startCdcReaders } from '../../workers/cdc-readers.js';
import { startScheduler } from '../../workers/scheduler.js';
import { startWorkers as startWorkerSet, type RunningWorkers, type WorkerConcurrency } from '../../workers/start-workers.js';
import { readStatusSnapshot, type StatusSnapshot } from '../../workers/status-snapshot.js';
import type { ReaderStatus } from '../cdc/cdc-reader.js';
import { findPipeline, parseConfig, readConfigInput, type Config, type ConfigInput } from '../config/index.js';
import { ConfigError } from '../errors/index.js';
import type { Logger } from '../logging/logger.js';
import type { ChunkReport, RunReport } from '../reconcile/report.js';
import {
  listConflicts, pipelineConflictStats, resolveConflicts, type ListConflictsOptions, type PipelineConflictStats, type ResolveConflictsOptions,
  type TargetConflicts,
} from './conflicts.js';
import { readConcurrency, resetConcurrency, setConcurrency, type KindConcurrency } from './concurrency.js';
import type { JobKind } from '../coordination/concurrency-overrides.js';
import {
  awaitDeadLetters, deadLetterJobs, describeDeadLetter, purgeDeadLetters, requeueDeadLetters, type DeadLetter, type DeadLetterFilter,
} from './dead-letters.js';
import type { RowsyncEvents } from './events.js';
import { RunFailedError } from './run-failed-error.js';
import { resolveRunSettings, type ConfigOrigin, type ReconcileSettings } from './run-settings.js';
import { failedJobsOfRun, watchRun, type RunOutcome } from './run-watch.js';
import { readSyncStats, type PipelineSyncStats } from './sync-stats.js';

/** A config: the object a config file holds (validated the same way), or the path of such a file (JSON or YAML). */
export type ConfigSource = ConfigInput | string;

export interface RowsyncOptions {
  /**
   * Where rowsync logs (a pino logger, or one with pino's methods: `child`, `info`, `warn`...).
   * @defaultValue silent: the library writes nothing anywhere unless given a logger
   */
  readonly logger?: Logger;
  /** Variables for `${VAR}` in the config. @defaultValue process.env */
  readonly env?: NodeJS.ProcessEnv;
}

export interface EnqueueReconcileOptions extends ReconcileSettings {
  /**
   * Record up to this many of the run's differing keys with their kind, for `differingKeys(runId)`
   * (`rowsync reconcile --print-keys`). @defaultValue none are recorded
   */
  readonly recordKeys?: number;
  /** Only these tables (each must be in the pipeline's `tables` when it lists them). @defaultValue the pipeline's */
  readonly tables?: readonly string[];
  /** Compare and report exactly what would be written, write nothing. @defaultValue false */
  readonly dryRun?: boolean;
  /** Use this run id (letters, digits, `_ . -`); enqueuing an existing id again is a no-op. @defaultValue a new one */
  readonly runId?: string;
}

export interface WaitForRunOptions {
  /**
   * Chunk jobs at once in this process while the run lasts; 0 leaves the work to worker processes
   * (`rowsync worker`, or `startWorkers`). @defaultValue `workers.concurrency.chunk`, or 0 while
   * this instance runs workers already (`startWorkers`)
   */
  readonly workers?: number;
  /** Stops waiting (the run goes on in Redis for other workers); the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** The run's live counters, as `run:progress` events carry them. */
  readonly onProgress?: (counts: RunProgressCounts) => void;
}

/** `reconcile()`: what to run, how (the run's own settings over the pipeline's), and how to wait. */
export interface ReconcileOptions extends EnqueueReconcileOptions, WaitForRunOptions {}

/** Workers of every rowsync queue in this process (what `rowsync worker` runs). */
export interface WorkersHandle {
  /** Jobs at once per kind now (the cluster-wide overrides of `setConcurrency` on top). */
  concurrency(): WorkerConcurrency;
  /**
   * Stops taking jobs and lets the active ones finish for at most `timeoutMs` (default
   * `workers.shutdownTimeoutMs`); the rest go back to their queues for another worker.
   */
  stop(timeoutMs?: number): Promise<{ readonly handedBack: number }>;
}

export interface StartWorkersOptions {
  /** A number: chunk jobs at once (as `rowsync worker --concurrency`); or jobs at once per kind. @defaultValue `workers.concurrency` */
  readonly concurrency?: number | Partial<WorkerConcurrency>;
  /**
   * Only this run's jobs (`waitForRun` / `reconcile` with in-process workers): other runs' jobs are
   * left to other workers, and no CDC batch is taken. @defaultValue every job this config can run
   */
  readonly onlyRun?: string;
}

export interface StartCdcOptions {
  /** Only this pipeline's streams. @defaultValue every pipeline with a `cdc` section */
  readonly pipeline?: string;
  /** Also apply CDC batches in this process, this many at once (0: worker processes do). @defaultValue 0 */
  readonly workers?: number;
}

export interface CdcHandle {
  /** Readers started (one per stream; each waits as a standby while another process streams it). */
  readonly readers: number;
  /** Stops the readers (their locks are released: a standby elsewhere takes over at once), then this handle's workers. */
  stop(): Promise<void>;
}

export interface StartBidirectionalOptions {
  /** A reconcile of the pipeline every this many ms, counted from the end of the previous one (at least 1000). */
  readonly intervalMs: number;
  /** Also stream both sides' changes as they happen (the pipeline needs a `cdc` section). @defaultValue false */
  readonly realTime?: boolean;
  /** Chunk and CDC jobs at once in this process; 0 leaves them to worker processes. @defaultValue as for `reconcile` */
  readonly workers?: number;
}

export interface BidirectionalHandle {
  /** Runs completed so far, and the last one's report. */
  readonly completedRuns: number;
  readonly lastReport: RunReport | undefined;
  /** Stops the periodic runs (a run in progress is left to finish in Redis), the readers and this handle's workers. */
  stop(): Promise<void>;
}

export interface BoardHandle {
  readonly url: string;
  readonly overviewUrl: string;
  stop(): Promise<void>;
}

export interface StartBoardOptions {
  /** @defaultValue board.host */
  readonly host?: string;
  /** 0: any free port. @defaultValue board.port */
  readonly port?: number;
  /** Basic auth (both or neither; required to listen on a non-loopback address). */
  readonly user?: string;
  readonly password?: string;
}

export interface SchedulerHandle {
  /** Pipelines with a schedule, as `name: cron (timezone)`. */
  readonly scheduled: readonly string[];
  stop(): Promise<void>;
}

/** One stream set up or torn down by `setupCdc` / `teardownCdc`. */
export interface CdcStreamSetup {
  readonly pipeline: string;
  /** The connection whose changes the stream reads. */
  readonly from: string;
  readonly mode: string;
}

interface Service {
  /** Stop order: readers and loops first (a standby takes over), workers last (they finish what was queued). */
  readonly order: number;
  stop(): Promise<void>;
}

const RECONCILE_OPTION_KEYS = [
  'tables', 'dryRun', 'runId', 'workers', 'signal', 'onProgress', 'recordKeys',
  'chunkSize', 'chunkTimeMs', 'applyBatchSize', 'compare', 'timestampColumn', 'conflict', 'conflictColumn', 'priority', 'deleteExtra',
] as const;
const LAG_EVENT_EVERY_MS = 1000;
const MIN_INTERVAL_MS = 1000;

/** The engine under each instance, for the CLI in this package (its Redis watchdog, metrics server); not part of the API. */
const engines = new WeakMap<Rowsync, Runtime>();

/**
 * rowsync as a library: the same engine the `rowsync` commands run (they are thin callers of this
 * class), over the same Redis queues, so a service embedding it and the CLI never disagree, and
 * worker processes anywhere share its work. Create it with `createRowsync(config)`; `close()` it
 * when done (it holds Redis and database connections).
 *
 * The seed's four classes map onto it: the real-time synchronizer is `startCdc()` / `stop()` /
 * `syncStats()`; the batch synchronizer's `executeBatchSync` is `reconcile(pipeline, { chunkSize,
 * applyBatchSize, workers, compare, conflict })`; the bidirectional synchronizer is
 * `startBidirectional(pipeline, { intervalMs, realTime })`; the conflict resolver is
 * `conflictStats()`, `conflicts()` and `resolveConflicts()`.
 */
export class Rowsync extends EventEmitter<RowsyncEvents> {
  /** The validated, frozen config. */
  readonly config: Config;
  readonly #runtime: Runtime;
  readonly #origin: ConfigOrigin;
  readonly #services = new Set<Service>();
  readonly #waits = new Set<Promise<unknown>>();
  /** Aborted by stop()/close(): ends every wait of this instance. */
  #stopping = new AbortController();
  #workerSets = 0;
  #handedBack = 0;
  #closed: Promise<void> | undefined;
  readonly #readerStates = new Map<string, { state: string; error: string | undefined; lagAt: number }>();

  /** @internal Use `createRowsync`. */
  constructor(origin: ConfigOrigin, logger: Logger) {
    super();
    this.#origin = origin;
    this.config = parseConfig(origin.input, { ...(origin.file ? { file: origin.file } : {}), env: origin.env });
    this.#runtime = new Runtime(this.config, logger);
    engines.set(this, this.#runtime);
  }

  /**
   * Reconciles a pipeline: enqueues a run, processes it with `workers` chunk jobs at once in this
   * process (0: worker processes do) and resolves to its report once it completes. Emits
   * `run:enqueued`, `run:progress` (in order) and `run:completed`; rejects with a `RunFailedError`
   * (and emits `run:failed`) when the run fails or waits for jobs that exhausted their attempts.
   * The settings (`chunkSize`, `compare`, `conflict`...) apply to this run only and are validated
   * as the config file is; nothing is enqueued when one is wrong.
   */
  async reconcile(pipeline: string, options: ReconcileOptions = {}): Promise<RunReport> {
    checkOptions('reconcile options', options, RECONCILE_OPTION_KEYS);
    const { runId } = await this.enqueueReconcile(pipeline, options);
    return this.waitForRun(runId, options);
  }

  /** Enqueues a run and resolves at once (`rowsync reconcile --no-wait`); `added` false: the run id existed. */
  async enqueueReconcile(pipeline: string, options: EnqueueReconcileOptions = {}): Promise<{ readonly runId: string; readonly added: boolean }> {
    checkOptions('reconcile options', options, RECONCILE_OPTION_KEYS);
    this.#assertOpen();
    const chosen = findPipeline(this.config, pipeline);
    if (options.tables && chosen.tables) {
      const unknown = options.tables.filter((table) => !chosen.tables!.includes(table));
      if (unknown.length > 0) {
        throw new ConfigError(`--table: ${unknown.join(', ')} not in pipeline ${chosen.name} (tables: ${chosen.tables.join(', ')})`, {
          subject: '--table',
        });
      }
    }
    const settings = resolveRunSettings(this.#origin, chosen.name, options);
    const runId = options.runId ?? newRunId(chosen.name);
    if (options.recordKeys !== undefined) {
      if (!Number.isInteger(options.recordKeys) || options.recordKeys < 1) {
        throw new ConfigError(`recordKeys: expected a whole number of at least 1, got '${String(options.recordKeys)}'`, { subject: 'recordKeys' });
      }
      await this.#runtime.runKeys.enable(runId, options.recordKeys);
    }
    const dryRun = Boolean(options.dryRun);
    const added = await enqueueRun(this.#runtime, {
      runId,
      pipeline: chosen.name,
      ...(options.tables ? { tables: [...new Set(options.tables)] } : {}),
      dryRun,
      ...(settings ? { settings } : {}),
      requestedAt: Date.now(),
    });
    this.#emit('run:enqueued', { runId, pipeline: chosen.name, dryRun, added });
    return { runId, added };
  }

  /**
   * Waits for a run (enqueued here, by the scheduler, by CDC or by another process), processing it
   * with in-process workers unless `workers` is 0, and resolves to its report. See `reconcile`.
   */
  async waitForRun(runId: string, options: WaitForRunOptions = {}): Promise<RunReport> {
    this.#assertOpen();
    const count = options.workers ?? (this.#workerSets > 0 ? 0 : this.config.workers.concurrency.chunk);
    if (!Number.isInteger(count) || count < 0) throw new ConfigError(`workers: expected a whole number, got '${String(options.workers)}'`, { subject: 'workers' });
    const signal = options.signal ? AbortSignal.any([options.signal, this.#stopping.signal]) : this.#stopping.signal;
    const wait = (async () => {
      const workers = count > 0 ? await this.startWorkers({ concurrency: { chunk: count }, onlyRun: runId }) : undefined;
      let outcome: RunOutcome;
      try {
        outcome = await watchRun(this.#runtime, runId, {
          signal,
          onProgress: (counts) => {
            options.onProgress?.(counts);
            this.#emit('run:progress', { runId, counts });
          },
        });
      } finally {
        await workers?.stop();
      }
      if (signal.aborted) throw signal.reason;
      return this.#settle(runId, outcome);
    })();
    this.#waits.add(wait);
    try {
      return await wait;
    } finally {
      this.#waits.delete(wait);
    }
  }

  /**
   * Moves every failed job of a run back to its queue (what Bull Board's retry does) and resolves with
   * how many; `waitForRun` then processes and waits for it (`rowsync retry`).
   */
  async retryRun(runId: string): Promise<number> {
    this.#assertOpen();
    if (!(await this.#runtime.queues.run.getJob(runId))) {
      throw new ConfigError(`--run: no run '${runId}' in Redis (prefix ${this.config.redis.prefix})`, { subject: '--run' });
    }
    let retried = 0;
    for (const queue of this.#runtime.queues.all()) {
      for (const job of await failedJobsOfRun(queue, runId)) {
        await job.retry('failed', { resetAttemptsMade: true });
        retried += 1;
      }
    }
    return retried;
  }

  /**
   * Starts workers for every rowsync queue in this process (reconcile chunks, apply lanes, CDC
   * batches, dead-letter retries), as `rowsync worker` does. Jobs of any process's runs and streams
   * are shared among all workers. Emits `cdc:batch`, `conflict` and `job:failed` for their work.
   */
  async startWorkers(options: StartWorkersOptions = {}): Promise<WorkersHandle> {
    this.#assertOpen();
    const concurrency = typeof options.concurrency === 'number' ? { chunk: options.concurrency } : (options.concurrency ?? {});
    for (const [kind, value] of Object.entries(concurrency)) {
      if (!Number.isInteger(value) || value < 1 || value > 256) {
        throw new ConfigError(`concurrency.${kind}: expected a whole number from 1 to 256, got '${String(value)}'`, { subject: `concurrency.${kind}` });
      }
    }
    const running = await startWorkerSet(this.#runtime, concurrency, options.onlyRun !== undefined ? { runId: options.onlyRun } : {});
    this.#watchWorkers(running);
    this.#workerSets += 1;
    let stopped: Promise<{ handedBack: number }> | undefined;
    const stop = (timeoutMs?: number) =>
      (stopped ??= (async () => {
        this.#services.delete(service);
        const { handedBack } = await running.close(timeoutMs);
        this.#workerSets -= 1;
        this.#handedBack += handedBack;
        return { handedBack };
      })());
    const service: Service = { order: 3, stop: async () => void (await stop()) };
    this.#services.add(service);
    return { concurrency: () => running.concurrency.current(), stop };
  }

  /**
   * Starts the CDC readers of every pipeline with `cdc` (or the one named): each streams while it
   * holds its stream's lock in Redis, and waits as a standby while another process does. The readers'
   * preflight runs first: a missing server setting fails here, naming it. Emits `cdc:status` and
   * `cdc:lag`; `syncStats()` reads what every reader and worker recorded.
   */
  async startCdc(options: StartCdcOptions = {}): Promise<CdcHandle> {
    this.#assertOpen();
    checkOptions('startCdc options', options, ['pipeline', 'workers']);
    // Checked before any worker starts: a pipeline without `cdc` names itself.
    cdcPipelines(this.#runtime, options.pipeline);
    const workers = options.workers ? await this.startWorkers({ concurrency: { cdc: options.workers } }) : undefined;
    let readers: Awaited<ReturnType<typeof startCdcReaders>>;
    try {
      readers = await startCdcReaders(this.#runtime, {
        ...(options.pipeline ? { pipeline: options.pipeline } : {}),
        onStatus: (status) => this.#readerStatus(status),
      });
    } catch (error) {
      await workers?.stop();
      throw error;
    }
    let stopped: Promise<void> | undefined;
    const stop = () =>
      (stopped ??= (async () => {
        this.#services.delete(service);
        await readers.stop();
        await workers?.stop();
      })());
    const service: Service = { order: 1, stop };
    this.#services.add(service);
    return { readers: readers.readers.length, stop };
  }

  /**
   * Keeps a bidirectional pipeline in sync: a reconcile now and then every `intervalMs` after the
   * previous one ended (runs never overlap), and with `realTime` both sides' change streams too. A
   * failed run is reported (`run:failed`) and the next interval runs again.
   */
  async startBidirectional(pipeline: string, options: StartBidirectionalOptions): Promise<BidirectionalHandle> {
    this.#assertOpen();
    checkOptions('startBidirectional options', options, ['intervalMs', 'realTime', 'workers']);
    const chosen = findPipeline(this.config, pipeline);
    const field = `pipelines.${chosen.name}.mode`;
    if (chosen.mode !== 'bidirectional') throw new ConfigError(`${field}: pipeline '${chosen.name}' is one-way; startBidirectional needs mode: bidirectional`, { subject: field });
    if (!Number.isInteger(options.intervalMs) || options.intervalMs < MIN_INTERVAL_MS) {
      throw new ConfigError(`intervalMs: expected a whole number of ms, at least ${MIN_INTERVAL_MS}, got '${String(options.intervalMs)}'`, { subject: 'intervalMs' });
    }
    if (options.realTime && !chosen.cdc) {
      throw new ConfigError(`realTime: pipeline '${chosen.name}' has no cdc section (add "cdc": {} to stream it)`, { subject: 'realTime' });
    }
    const count = options.workers ?? (this.#workerSets > 0 ? 0 : this.config.workers.concurrency.chunk);
    const workers = count > 0 ? await this.startWorkers({ concurrency: { chunk: count, cdc: count } }) : undefined;
    let readers: CdcHandle | undefined;
    try {
      if (options.realTime) readers = await this.startCdc({ pipeline: chosen.name });
    } catch (error) {
      await workers?.stop();
      throw error;
    }
    const loopStop = new AbortController();
    const state = { completedRuns: 0, lastReport: undefined as RunReport | undefined };
    const loop = (async () => {
      while (!loopStop.signal.aborted) {
        try {
          state.lastReport = await this.reconcile(chosen.name, { workers: 0, signal: loopStop.signal });
          state.completedRuns += 1;
        } catch (error) {
          if (loopStop.signal.aborted || this.#stopping.signal.aborted) break;
          // A RunFailedError was announced as `run:failed`; anything else (Redis lost) is logged.
          if (!(error instanceof RunFailedError)) this.#runtime.logger.warn({ pipeline: chosen.name, err: (error as Error).message }, 'periodic bidirectional run failed');
        }
        await sleep(options.intervalMs, undefined, { signal: loopStop.signal }).catch(() => undefined);
      }
    })();
    let stopped: Promise<void> | undefined;
    const stop = () =>
      (stopped ??= (async () => {
        this.#services.delete(service);
        loopStop.abort(new Error('stopped'));
        await loop;
        await readers?.stop();
        await workers?.stop();
      })());
    const service: Service = { order: 1, stop };
    this.#services.add(service);
    return {
      get completedRuns() {
        return state.completedRuns;
      },
      get lastReport() {
        return state.lastReport;
      },
      stop,
    };
  }

  /** Enqueues each pipeline's `reconcile.schedule` (node-cron) until stopped, as `rowsync scheduler` does. */
  startScheduler(): SchedulerHandle {
    this.#assertOpen();
    const scheduler = startScheduler(this.#runtime);
    let stopped: Promise<void> | undefined;
    const stop = () =>
      (stopped ??= (async () => {
        this.#services.delete(service);
        await scheduler.stop();
      })());
    const service: Service = { order: 2, stop };
    this.#services.add(service);
    return { scheduled: scheduler.scheduled, stop };
  }

  /** Serves Bull Board over every rowsync queue, and the overview page, as `rowsync board` does. */
  async startBoard(options: StartBoardOptions = {}): Promise<BoardHandle> {
    this.#assertOpen();
    // Loaded on use: Bull Board and express add about 0.3 s to the start of anything that imports them.
    const { startBoard } = await import('../../workers/board.js');
    const board = await startBoard(this.#runtime, {
      host: options.host ?? this.config.board.host,
      port: options.port ?? this.config.board.port,
      ...(options.user ? { user: options.user } : {}),
      ...(options.password ? { password: options.password } : {}),
    });
    let stopped: Promise<void> | undefined;
    const stop = () =>
      (stopped ??= (async () => {
        this.#services.delete(service);
        await board.close();
      })());
    const service: Service = { order: 2, stop };
    this.#services.add(service);
    return { url: board.url, overviewUrl: board.overviewUrl, stop };
  }

  /** Creates what a pipeline's CDC mode needs on its source(s) (slot + publication, or change table + triggers), then runs the preflight. */
  async setupCdc(pipeline: string, onReady?: (stream: CdcStreamSetup) => void): Promise<CdcStreamSetup[]> {
    return this.#eachStream(pipeline, async (source) => {
      await source.setup();
      await source.preflight();
    }, onReady);
  }

  /** Removes what `setupCdc` created on the source(s), and the pipeline's checkpoints in the targets. */
  async teardownCdc(pipeline: string, onRemoved?: (stream: CdcStreamSetup) => void): Promise<CdcStreamSetup[]> {
    return this.#eachStream(pipeline, async (source, stream) => {
      await source.teardown();
      for (const target of stream.targets) await this.#runtime.database(target).deleteCheckpoint(stream.pipeline.name, stream.from);
    }, onRemoved);
  }

  /** What the seed's `getSyncStats` answered, per pipeline (every one, in config order). */
  syncStats(): Promise<PipelineSyncStats[]>;
  /** What the seed's `getSyncStats` answered, for one pipeline. */
  syncStats(pipeline: string): Promise<PipelineSyncStats>;
  async syncStats(pipeline?: string): Promise<PipelineSyncStats | PipelineSyncStats[]> {
    this.#assertOpen();
    if (pipeline === undefined) return readSyncStats(this.#runtime);
    const [stats] = await readSyncStats(this.#runtime, [pipeline]);
    return stats!;
  }

  /** What the seed's `getConflictStats` answered, per pipeline: total, pending, by kind, table and outcome, the newest ones. */
  conflictStats(): Promise<PipelineConflictStats[]>;
  conflictStats(pipeline: string, options?: { readonly recent?: number }): Promise<PipelineConflictStats>;
  async conflictStats(pipeline?: string, options: { readonly recent?: number } = {}): Promise<PipelineConflictStats | PipelineConflictStats[]> {
    this.#assertOpen();
    if (pipeline === undefined) return Promise.all(this.config.pipelines.map((entry) => pipelineConflictStats(this.#runtime, entry.name, options)));
    return pipelineConflictStats(this.#runtime, pipeline, options);
  }

  /** A pipeline's conflicts per target: statistics and the pending ones (`all`: every logged one). */
  async conflicts(pipeline: string, options: ListConflictsOptions = {}): Promise<TargetConflicts[]> {
    this.#assertOpen();
    return listConflicts(this.#runtime, pipeline, options);
  }

  /** Settles pending conflicts by keeping one side's current row, written to the other side (`rowsync conflicts resolve`). */
  async resolveConflicts(pipeline: string, options: ResolveConflictsOptions): Promise<{ readonly resolved: number; readonly kept: 'source' | 'target' }> {
    this.#assertOpen();
    return resolveConflicts(this.#runtime, pipeline, options);
  }

  /** Dead-lettered CDC batch parts waiting for an operator, oldest first. */
  async deadLetters(filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
    this.#assertOpen();
    return (await deadLetterJobs(this.#runtime, filter)).map(describeDeadLetter);
  }

  /** Sends dead letters back through the write path (the source rows as they are now); resolves with their ids. */
  async requeueDeadLetters(filter: DeadLetterFilter = {}): Promise<string[]> {
    this.#assertOpen();
    return requeueDeadLetters(this.#runtime, filter);
  }

  /**
   * Waits for requeued dead letters to be applied or fail again (parked again with the new error),
   * processing them in this process unless `workers` is 0.
   */
  async awaitDeadLetters(
    ids: readonly string[],
    options: { readonly workers?: number; readonly onFailedAgain?: (id: string, reason: string) => void } = {},
  ): Promise<{ readonly applied: number; readonly failed: readonly { readonly id: string; readonly reason: string }[] }> {
    this.#assertOpen();
    if (ids.length === 0) return { applied: 0, failed: [] };
    const count = options.workers ?? (this.#workerSets > 0 ? 0 : 1);
    const workers = count > 0 ? await this.startWorkers({ concurrency: { table: 1, chunk: 1, apply: 1, cdc: count } }) : undefined;
    try {
      return await awaitDeadLetters(this.#runtime, ids, options.onFailedAgain);
    } finally {
      await workers?.stop();
    }
  }

  /** Drops dead letters for good (a reconcile then repairs their keys); resolves with how many. */
  async purgeDeadLetters(filter: DeadLetterFilter = {}): Promise<number> {
    this.#assertOpen();
    return purgeDeadLetters(this.#runtime, filter);
  }

  /** Queues, workers, current and recent runs, CDC readers and conflicts: what `rowsync status --json` prints. */
  /**
   * The differing keys a run recorded (`recordKeys`), as JSON lines `{"table","target","kind","key"}`
   * (kind `missing`: only the source has the row, `extra`: only the target, `changed`: both, different),
   * and how many differing keys the run found in all (more than the lines when the limit cut them).
   */
  async differingKeys(runId: string): Promise<{ readonly lines: readonly string[]; readonly found: number }> {
    this.#assertOpen();
    return this.#runtime.runKeys.read(runId);
  }

  /**
   * Worker processes connected to this config's Redis prefix that take reconcile chunks (any
   * machine; BullMQ's worker registry), 0 when none would process a run enqueued now.
   */
  async connectedWorkers(): Promise<number> {
    this.#assertOpen();
    return (await this.#runtime.queues.chunk.getWorkers()).length;
  }

  async status(): Promise<StatusSnapshot> {
    this.#assertOpen();
    return readStatusSnapshot(this.#runtime);
  }

  /** Jobs at once per worker process, per kind: the config's value, the cluster-wide override, the value in force. */
  async concurrency(): Promise<KindConcurrency[]> {
    this.#assertOpen();
    return readConcurrency(this.#runtime);
  }

  /** Overrides a kind (`table`, `chunk`, `apply`, `cdc`) for every worker process; they apply it within seconds. */
  async setConcurrency(kind: string, jobs: number): Promise<{ readonly before: KindConcurrency; readonly after: KindConcurrency }> {
    this.#assertOpen();
    return setConcurrency(this.#runtime, kind, jobs);
  }

  /** Drops the override of a kind (or of every kind); resolves with the kinds reset. */
  async resetConcurrency(kind?: string): Promise<readonly JobKind[]> {
    this.#assertOpen();
    return resetConcurrency(this.#runtime, kind);
  }

  /**
   * Stops everything this instance started (readers and periodic runs first, then the scheduler and
   * board, then the workers, which finish their active jobs within `workers.shutdownTimeoutMs`) and
   * ends its waits (they reject). The instance stays usable; `close()` also closes its connections.
   */
  async stop(): Promise<void> {
    this.#stopping.abort(new Error('rowsync stopped'));
    await Promise.allSettled([...this.#waits]);
    const services = [...this.#services].sort((a, b) => a.order - b.order);
    for (const order of [...new Set(services.map((service) => service.order))]) {
      await Promise.all(services.filter((service) => service.order === order).map((service) => service.stop()));
    }
    this.#stopping = new AbortController();
  }

  /** `stop()`, then closes Redis, the queues and every database pool: the process can then exit on its own. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.stop();
      // Jobs handed back at the shutdown bound may still hold queries a pool's close would wait for.
      await this.#runtime.close(this.#handedBack > 0 ? { queriesTimeoutMs: 1000 } : {});
    })();
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ConfigError('rowsync: this instance is closed (create another with createRowsync)', { subject: 'close' });
  }

  #settle(runId: string, outcome: RunOutcome): RunReport {
    switch (outcome.kind) {
      case 'completed':
        this.#emit('run:completed', { runId, report: outcome.report });
        return outcome.report;
      case 'stuck':
      case 'failed':
      case 'missing': {
        const failedJobs = outcome.kind === 'stuck' ? outcome.stuck : [];
        const error = new RunFailedError(runId, outcome.kind, outcome.kind === 'failed' ? outcome.reason : '', failedJobs);
        this.#emit('run:failed', { runId, outcome: outcome.kind, reason: error.message, failedJobs });
        throw error;
      }
      default: {
        const unreachable: never = outcome;
        throw new Error(`unknown outcome ${String(unreachable)}`);
      }
    }
  }

  async #eachStream(
    pipeline: string,
    work: (source: Awaited<ReturnType<typeof changeSourceOf>>, stream: ReturnType<typeof cdcStreams>[number]) => Promise<void>,
    onDone: ((stream: CdcStreamSetup) => void) | undefined,
  ): Promise<CdcStreamSetup[]> {
    this.#assertOpen();
    const done: CdcStreamSetup[] = [];
    for (const chosen of cdcPipelines(this.#runtime, pipeline)) {
      for (const stream of cdcStreams(chosen)) {
        const source = await changeSourceOf(this.#runtime, stream);
        await work(source, stream);
        const entry = { pipeline: chosen.name, from: stream.from, mode: source.mode };
        done.push(entry);
        onDone?.(entry);
      }
    }
    return done;
  }

  /** Turns a reader's frequent reports into `cdc:status` (on a change of state) and `cdc:lag` (at most once a second). */
  #readerStatus(status: ReaderStatus): void {
    const last = this.#readerStates.get(status.stream);
    const now = Date.now();
    if (!last || last.state !== status.state || last.error !== status.error) {
      this.#emit('cdc:status', { pipeline: status.pipeline, stream: status.stream, state: status.state, ...(status.error ? { error: status.error } : {}) });
    }
    const lagDue = status.state === 'streaming' && status.targets.length > 0 && (!last || now - last.lagAt >= LAG_EVENT_EVERY_MS);
    this.#readerStates.set(status.stream, { state: status.state, error: status.error, lagAt: lagDue ? now : (last?.lagAt ?? 0) });
    if (lagDue) {
      this.#emit('cdc:lag', {
        pipeline: status.pipeline,
        stream: status.stream,
        targets: status.targets.map(({ target, checkpoint, lagMs, queuedJobs }) => ({ target, checkpoint, lagMs, queuedJobs })),
      });
    }
  }

  /** Events for what this instance's workers did. */
  #watchWorkers(running: RunningWorkers): void {
    for (const worker of running.workers) {
      worker.on('completed', (job: Job, result: unknown) => {
        if (worker.name === QUEUE_NAMES.cdc || (worker.name === QUEUE_NAMES.deadLetter && result)) {
          const payload = job.data as CdcBatchPayload;
          const applied = result as CdcBatchResult;
          this.#emit('cdc:batch', {
            pipeline: payload.pipeline,
            from: payload.from,
            target: payload.target,
            keys: keysInPart(payload),
            position: payload.position,
            inserted: applied.inserted,
            updated: applied.updated,
            deleted: applied.deleted,
            conflicts: applied.conflicts,
            ...(applied.deadLettered ? { deadLettered: applied.deadLettered } : {}),
          });
          if (applied.conflicts > 0) this.#emit('conflict', { pipeline: payload.pipeline, target: payload.target, count: applied.conflicts, trigger: 'cdc' });
        } else if (worker.name === QUEUE_NAMES.chunk) {
          // A chunk's report sums what its apply lanes wrote: counted here, not per apply job.
          const data = job.data as ChunkPayload;
          const report = result as ChunkReport | undefined;
          if (report && report.conflicts > 0) {
            this.#emit('conflict', { pipeline: data.pipeline, target: data.target, table: data.table, count: report.conflicts, trigger: 'reconcile', runId: data.runId });
          }
        }
      });
      worker.on('failed', (job: Job | undefined, error: Error) => {
        if (!job) return;
        this.#emit('job:failed', {
          queue: worker.name,
          jobId: job.id ?? '',
          reason: error.message,
          attemptsMade: job.attemptsMade,
          exhausted: job.attemptsMade >= (job.opts.attempts ?? 1) || error instanceof UnrecoverableError,
        });
      });
    }
  }

  /** A listener that throws must not break the worker or reader that reported. */
  #emit<K extends keyof RowsyncEvents>(event: K, ...args: RowsyncEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: RowsyncEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.#runtime.logger.warn({ event, err: (error as Error).message }, 'a rowsync event listener threw');
    }
  }
}

/**
 * Creates a rowsync instance from a config object (what a config file holds) or the path of a
 * config file (JSON or YAML), validated exactly as the CLI validates the file: a `ConfigError` whose
 * message names the field (`pipelines[0].reconcile.chunkSize: expected a number`).
 */
export function createRowsync(config: ConfigSource, options: RowsyncOptions = {}): Rowsync {
  if (typeof config !== 'string' && (config === null || typeof config !== 'object' || Array.isArray(config))) {
    throw new ConfigError(`config: expected a config object or the path of a config file, got ${config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config}`, {
      subject: 'config',
    });
  }
  return openRowsync(typeof config === 'string' ? { file: config } : { input: config }, options);
}

/**
 * `createRowsync` for the CLI: `file` undefined reads $ROWSYNC_CONFIG (the `--config` default), and
 * its messages name `--config`.
 */
export function openRowsync(source: { readonly file: string | undefined } | { readonly input: unknown }, options: RowsyncOptions = {}): Rowsync {
  const env = options.env ?? process.env;
  const origin: ConfigOrigin =
    'input' in source ? { input: structuredClone(source.input), file: undefined, env } : { ...readConfigInput(source.file, env), env };
  return new Rowsync(origin, options.logger ?? silentLogger());
}

/** The engine under an instance: for the CLI of this package only (not exported from the package). */
export function engineOf(rowsync: Rowsync): Runtime {
  return engines.get(rowsync)!;
}

function silentLogger(): Logger {
  // A stream of its own, not stdout: a silent logger must not even open a destination.
  return pino({ level: 'silent' }, { write: () => undefined });
}

function checkOptions(where: string, options: object, known: readonly string[]): void {
  if (options === null || typeof options !== 'object') throw new ConfigError(`${where}: expected an object`, { subject: where });
  const unknown = Object.keys(options).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new ConfigError(`${where}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => `'${key}'`).join(', ')} (known: ${known.join(', ')})`, {
      subject: unknown[0],
    });
  }
}
