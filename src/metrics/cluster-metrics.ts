/**
 * Cluster-wide gauges, read at scrape time in prom-client `collect()` callbacks: queue depths and
 * live workers (BullMQ), dead letters, the CDC readers' published status (lag, positions), each
 * scheduled pipeline's last tick and its run's outcome, and the conflict log of every target.
 *
 * Every rowsync process serves the same values (they come from Redis and the databases, not from
 * the process): aggregate them with `max by (...)`, never `sum`. Reads are cached (Redis 5 s, the
 * conflict log 15 s) and single-flight, and time out (3 s): a scrape storm reads Redis once per
 * period, and a Redis that does not answer makes these series vanish and
 * `rowsync_collector_up{collector="redis"}` 0 instead of hanging the scrape.
 */
import { Gauge, Registry } from 'prom-client';
import type { Runtime } from '../../jobs/runtime.js';
import type { DeadLetterPayload } from '../../jobs/cdc-batch.job.js';
import type { ReaderStatus } from '../cdc/cdc-reader.js';
import { CDC_MODES, type CdcMode } from '../config/index.js';
import { conflictCounts } from '../dialect/conflict-log.js';
import { positionNumber } from '../dialect/position-number.js';
import { readCdcStatus } from '../../workers/cdc-readers.js';
import { readScheduledRuns } from '../../workers/scheduler.js';
import { queueFamily } from './instruments.js';

export interface ClusterMetricsOptions {
  /** How long one read of Redis serves scrapes (ms). @defaultValue 5000 */
  readonly redisCacheMs?: number;
  /** How long one read of the conflict logs serves scrapes (ms): a GROUP BY per target. @defaultValue 15000 */
  readonly conflictCacheMs?: number;
  /** A read taking longer fails (its series are left out). @defaultValue 3000 */
  readonly timeoutMs?: number;
}

/** BullMQ states that make a queue's depth (completed jobs are history, not depth). */
const QUEUE_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'waiting-children', 'failed'] as const;
/** States in which a dead letter still waits: parked (failed) or being retried. */
const DEAD_LETTER_STATES = ['failed', 'waiting', 'delayed', 'active'] as const;
/** Dead letters read for their pipeline and target labels; the exact total is in rowsync_queue_jobs. */
const DEAD_LETTERS_READ = 5000;
/** The outcomes `rowsync_scheduled_run_last_status` reports (one series each, the current one 1). */
export const SCHEDULED_RUN_STATUSES = ['running', 'completed', 'failed', 'stuck', 'missing'] as const;
export type ScheduledRunStatus = (typeof SCHEDULED_RUN_STATUSES)[number];
const READER_STATES: readonly ReaderStatus['state'][] = ['standby', 'streaming', 'recovering', 'stopped', 'failing'];

interface QueueFamilySnapshot {
  readonly queue: string;
  readonly counts: Readonly<Record<string, number>>;
  readonly workers: number;
}

interface ScheduledSnapshot {
  readonly pipeline: string;
  readonly startedAt: number | undefined;
  readonly nextDueAt: number | undefined;
  readonly status: ScheduledRunStatus | undefined;
}

interface RedisSnapshot {
  readonly queues: readonly QueueFamilySnapshot[];
  readonly deadLetters: ReadonlyMap<string, { pipeline: string; target: string; count: number }>;
  readonly cdc: readonly (ReaderStatus & { source?: string })[];
  readonly scheduled: readonly ScheduledSnapshot[];
}

interface ConflictSnapshot {
  readonly rows: readonly { pipeline: string; target: string; table: string; kind: string; status: string; count: number }[];
  /** Targets whose log could not be read (their series are left out). */
  readonly failed: number;
}

/** A registry of the cluster gauges of one runtime (merged with the process registry by the server). */
export function clusterRegistry(runtime: Runtime, options: ClusterMetricsOptions = {}): Registry {
  const timeoutMs = options.timeoutMs ?? 3000;
  const redisSnapshot = cached(options.redisCacheMs ?? 5000, () => withTimeout(readRedisSnapshot(runtime), timeoutMs, 'reading Redis'));
  const conflictSnapshot = cached(options.conflictCacheMs ?? 15_000, () => withTimeout(readConflictSnapshot(runtime), timeoutMs, 'reading the conflict logs'));
  const registry = new Registry();
  const fromRedis = async (fill: (snapshot: RedisSnapshot) => void) => {
    const snapshot = await redisSnapshot().catch(() => undefined);
    if (snapshot) fill(snapshot);
  };

  new Gauge({
    name: 'rowsync_queue_jobs',
    help: 'Jobs in each queue by BullMQ state (apply: all lanes together). failed: attempts exhausted, waiting for a retry.',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await fromRedis(({ queues }) => {
        for (const { queue, counts } of queues) for (const state of QUEUE_STATES) this.set({ queue, state }, counts[state] ?? 0);
      });
    },
  });

  new Gauge({
    name: 'rowsync_workers',
    help: 'Worker processes connected to each queue (BullMQ, by Redis CLIENT LIST); apply: the fewest on any lane.',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await fromRedis(({ queues }) => {
        for (const { queue, workers } of queues) this.set({ queue }, workers);
      });
    },
  });

  new Gauge({
    name: 'rowsync_cdc_dead_letters',
    help: 'Dead-lettered CDC batch parts waiting (parked or being retried), per pipeline and target.',
    labelNames: ['pipeline', 'target'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await fromRedis(({ deadLetters }) => {
        for (const { pipeline, target, count } of deadLetters.values()) this.set({ pipeline, target }, count);
      });
    },
  });

  const perTarget = (name: string, help: string, value: (status: ReaderStatus, target: ReaderStatus['targets'][number]) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['pipeline', 'source', 'target'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        await fromRedis(({ cdc }) => {
          for (const status of cdc) {
            for (const target of status.targets) {
              const number = value(status, target);
              if (number !== undefined) this.set({ pipeline: status.pipeline, source: status.source ?? '', target: target.target }, number);
            }
          }
        });
      },
    });
  perTarget(
    'rowsync_cdc_lag_seconds',
    "Source commit time to now of the oldest change not yet applied at the target (0: caught up), as the stream's reader last published it.",
    (_status, target) => target.lagMs / 1000,
  );
  perTarget('rowsync_cdc_queued_batches', 'CDC batch parts queued for the target and not yet applied.', (_status, target) => target.queuedJobs);
  perTarget(
    'rowsync_cdc_checkpoint_position',
    "The target's durable checkpoint as a number that grows with the stream (logical: LSN bytes; binlog: file number * 2^32 + offset; polling: change id or xid horizon).",
    (status, target) => positionOf(status, target.checkpoint),
  );
  perTarget(
    'rowsync_cdc_queued_position',
    'The stream position up to which batches were queued for the target (same scale as rowsync_cdc_checkpoint_position).',
    (status, target) => positionOf(status, target.queuedUpTo),
  );
  perTarget(
    'rowsync_cdc_target_detached',
    'The target fell behind, stopped receiving and catches up from its checkpoint (1), or receives with the stream (0).',
    (_status, target) => (target.detached ? 1 : 0),
  );

  new Gauge({
    name: 'rowsync_cdc_reader_state',
    help: "The state a stream's reader last published: 1 for the current state (streaming, recovering, failing, stopped), 0 for the others.",
    labelNames: ['pipeline', 'source', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await fromRedis(({ cdc }) => {
        for (const status of cdc) {
          for (const state of READER_STATES) this.set({ pipeline: status.pipeline, source: status.source ?? '', state }, status.state === state ? 1 : 0);
        }
      });
    },
  });

  new Gauge({
    name: 'rowsync_cdc_status_updated_timestamp_seconds',
    help: "When a stream's reader last published its status (a leading reader does so several times a second; an old value: it is gone).",
    labelNames: ['pipeline', 'source'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await fromRedis(({ cdc }) => {
        for (const status of cdc) this.set({ pipeline: status.pipeline, source: status.source ?? '' }, status.updatedAt / 1000);
      });
    },
  });

  new Gauge({
    name: 'rowsync_scheduled_run_last_start_timestamp_seconds',
    help: "The tick of a scheduled pipeline's last run (as its scheduler enqueued it).",
    labelNames: ['pipeline'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await fromRedis(({ scheduled }) => {
        for (const entry of scheduled) if (entry.startedAt !== undefined) this.set({ pipeline: entry.pipeline }, entry.startedAt / 1000);
      });
    },
  });

  new Gauge({
    name: 'rowsync_scheduled_run_next_due_timestamp_seconds',
    help: "When a scheduled pipeline's next tick is due (recorded by its schedulers); in the past: the tick was missed.",
    labelNames: ['pipeline'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await fromRedis(({ scheduled }) => {
        for (const entry of scheduled) if (entry.nextDueAt !== undefined) this.set({ pipeline: entry.pipeline }, entry.nextDueAt / 1000);
      });
    },
  });

  new Gauge({
    name: 'rowsync_scheduled_run_last_status',
    help:
      "The outcome of a scheduled pipeline's last run: 1 for the current one of running, completed, failed, stuck (a job of it " +
      'exhausted its attempts and waits for a retry) and missing (no longer kept), 0 for the others.',
    labelNames: ['pipeline', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await fromRedis(({ scheduled }) => {
        for (const entry of scheduled) {
          if (entry.status === undefined) continue;
          for (const status of SCHEDULED_RUN_STATUSES) this.set({ pipeline: entry.pipeline, status }, entry.status === status ? 1 : 0);
        }
      });
    },
  });

  new Gauge({
    name: 'rowsync_conflicts',
    help: "Conflicts in a target's conflict log (rowsync_conflicts table), by table, kind (insert-insert, update-update, update-delete) and status (pending, resolved).",
    labelNames: ['pipeline', 'target', 'table', 'kind', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const snapshot = await conflictSnapshot().catch(() => undefined);
      for (const row of snapshot?.rows ?? []) {
        const labels = { pipeline: row.pipeline, target: row.target, table: row.table, kind: row.kind, status: row.status };
        this.inc(labels, row.count);
      }
    },
  });

  new Gauge({
    name: 'rowsync_collector_up',
    help: 'Whether the last read behind the cluster gauges worked: redis (queues, workers, CDC status, schedules) and conflicts (every target log).',
    labelNames: ['collector'] as const,
    registers: [registry],
    async collect() {
      const [redis, conflicts] = await Promise.all([
        redisSnapshot().then(() => 1, () => 0),
        conflictSnapshot().then((snapshot) => (snapshot.failed === 0 ? 1 : 0), () => 0),
      ]);
      this.set({ collector: 'redis' }, redis);
      this.set({ collector: 'conflicts' }, conflicts);
    },
  });

  return registry;
}

function positionOf(status: ReaderStatus, position: string): number | undefined {
  return (CDC_MODES as readonly string[]).includes(status.mode) ? positionNumber(status.mode as CdcMode, position) : undefined;
}

async function readRedisSnapshot(runtime: Runtime): Promise<RedisSnapshot> {
  const [queues, deadLetters, cdc, scheduled] = await Promise.all([
    readQueues(runtime),
    readDeadLetters(runtime),
    readCdcStreams(runtime),
    readScheduled(runtime),
  ]);
  return { queues, deadLetters, cdc, scheduled };
}

async function readQueues(runtime: Runtime): Promise<QueueFamilySnapshot[]> {
  const perQueue = await Promise.all(
    runtime.queues.all().map(async (queue) => ({
      family: queueFamily(queue.name),
      counts: await queue.getJobCounts(...QUEUE_STATES),
      workers: (await queue.getWorkers()).length,
    })),
  );
  const families = new Map<string, { counts: Record<string, number>; workers: number }>();
  for (const { family, counts, workers } of perQueue) {
    const entry = families.get(family);
    if (!entry) {
      families.set(family, { counts: { ...counts }, workers });
      continue;
    }
    for (const [state, count] of Object.entries(counts)) entry.counts[state] = (entry.counts[state] ?? 0) + count;
    // One lane without a worker holds up its keys whatever the other lanes have.
    entry.workers = Math.min(entry.workers, workers);
  }
  return [...families].map(([queue, { counts, workers }]) => ({ queue, counts, workers }));
}

async function readDeadLetters(runtime: Runtime): Promise<Map<string, { pipeline: string; target: string; count: number }>> {
  const jobs = await runtime.queues.deadLetter.getJobs([...DEAD_LETTER_STATES], 0, DEAD_LETTERS_READ - 1);
  const counts = new Map<string, { pipeline: string; target: string; count: number }>();
  for (const job of jobs) {
    const data = job?.data as DeadLetterPayload | undefined;
    if (!data?.pipeline) continue;
    const key = `${data.pipeline}\u0000${data.target}`;
    const entry = counts.get(key) ?? { pipeline: data.pipeline, target: data.target, count: 0 };
    entry.count += 1;
    counts.set(key, entry);
  }
  return counts;
}

/** Published statuses of the configured CDC pipelines (a removed pipeline's last status is not reported). */
async function readCdcStreams(runtime: Runtime): Promise<(ReaderStatus & { source?: string })[]> {
  const streaming = new Set(runtime.config.pipelines.filter((pipeline) => pipeline.cdc).map((pipeline) => pipeline.name));
  if (streaming.size === 0) return [];
  return (await readCdcStatus(runtime.redis, runtime.config.redis.prefix)).filter((status) => streaming.has(status.pipeline));
}

async function readScheduled(runtime: Runtime): Promise<ScheduledSnapshot[]> {
  const pipelines = runtime.config.pipelines.filter((pipeline) => pipeline.reconcile.schedule).map((pipeline) => pipeline.name);
  const records = await readScheduledRuns(runtime, pipelines);
  return Promise.all(
    records.map(async (record) => ({
      pipeline: record.pipeline,
      startedAt: record.startedAt,
      nextDueAt: record.nextDueAt,
      status: record.runId ? await runStatus(runtime, record.runId) : undefined,
    })),
  );
}

/**
 * A run's outcome. A run whose chunk (or table, or apply batch) exhausted its attempts does not fail:
 * it waits for that job to be retried (ARCHITECTURE.md), so it is `stuck`, found by the job ids in the
 * failed sets (ZSCAN on the ids, which start with the run id: no job is read).
 */
async function runStatus(runtime: Runtime, runId: string): Promise<ScheduledRunStatus> {
  const state = await runtime.queues.run.getJobState(runId);
  if (state === 'completed') return 'completed';
  if (state === 'failed') return 'failed';
  if (state === 'unknown') return 'missing';
  const { queues } = runtime;
  for (const queue of [queues.table, queues.chunk, ...queues.apply]) {
    let cursor = '0';
    do {
      const [next, found] = await runtime.redis.zscan(queue.keys.failed!, cursor, 'MATCH', `${runId}.*`, 'COUNT', 1000);
      if (found.length > 0) return 'stuck';
      cursor = next;
    } while (cursor !== '0');
  }
  return 'running';
}

async function readConflictSnapshot(runtime: Runtime): Promise<ConflictSnapshot> {
  const logs = runtime.config.pipelines.flatMap((pipeline) => pipeline.targets.map((target) => ({ pipeline: pipeline.name, target })));
  let failed = 0;
  const rows = await Promise.all(
    logs.map(async ({ pipeline, target }) => {
      try {
        return (await conflictCounts(runtime.database(target), pipeline)).map((row) => ({ pipeline, target, ...row }));
      } catch {
        failed += 1;
        return [];
      }
    }),
  );
  return { rows: rows.flat(), failed };
}

/**
 * `load` at most once per `ttlMs` (and once at a time): callers within the period share the last
 * result, success or failure, so a Redis that is down is not asked again on every scrape either.
 */
function cached<T>(ttlMs: number, load: () => Promise<T>): () => Promise<T> {
  let current: { settledAt: number | undefined; value: Promise<T> } | undefined;
  return () => {
    // Counted from when the read ended: a read that took 3 s still serves the next ttl.
    const fresh = current && (current.settledAt === undefined || Date.now() - current.settledAt < ttlMs);
    if (!current || !fresh) {
      const entry: { settledAt: number | undefined; value: Promise<T> } = { settledAt: undefined, value: load() };
      const settled = () => {
        entry.settledAt = Date.now();
      };
      entry.value.then(settled, settled);
      current = entry;
    }
    return current.value;
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
