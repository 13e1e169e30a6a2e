/**
 * GET /metrics and /healthz of a metrics server (port 0) beside real workers: a reconcile with known
 * drift moves the counters by exactly what its report says, histograms observe the chunks and syncs,
 * the queue and worker gauges are read from Redis, every name and label follows Prometheus
 * conventions (a strict parse of the exposition format), and /healthz answers 503 naming a database
 * on a closed port, or Redis when Redis is unreachable, within its timeout.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/logging/logger.js';
import type { RunReport } from '../../src/reconcile/report.js';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/metrics-server.js';
import { Runtime } from '../../jobs/runtime.js';
import { cdcStatusKey } from '../../workers/cdc-readers.js';
import { startScheduler } from '../../workers/scheduler.js';
import { createHarness, type Harness } from '../support/harness.js';
import { expectEqualTables, seedOrders, type Tables } from '../support/orders-fixture.js';
import { parsePrometheusText, sampleSum, samplesOf, type MetricFamily } from '../support/prometheus-text.js';
import { deleteRedisPrefix, scratchUrl } from '../support/scratch.js';
import { testServers } from '../support/servers.js';

let harness: Harness;
let tables: Tables;
let server: MetricsServer;

beforeAll(async () => {
  harness = await createHarness({ tag: 'metrics', sourceEngine: 'mysql', targetEngine: 'postgres', reconcile: { chunkSize: 500 } });
  tables = await seedOrders(harness.source, harness.target);
  await harness.startWorkers();
  server = await startMetricsServer(harness.runtime, { port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await server?.close();
  await harness?.close();
});

async function scrape(url: string): Promise<Map<string, MetricFamily>> {
  const response = await fetch(`${url}metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await response.text());
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

const FORBIDDEN_LABELS = new Set(['key', 'keys', 'id', 'run', 'run_id', 'runid', 'job', 'job_id', 'jobid', 'epoch', 'seq']);

/**
 * What breaks the naming conventions (https://prometheus.io/docs/practices/naming/) or keeps a label
 * unbounded: rowsync_ prefix (Node's own process_/nodejs_ metrics aside), counters and only counters
 * end in _total, durations, lags and timestamps in seconds, no label named or valued like a key or a
 * run id, histograms with cumulative buckets up to +Inf that match their _count.
 */
function conventionProblems(families: Map<string, MetricFamily>, unboundedValues: readonly string[]): string[] {
  const problems: string[] = [];
  for (const family of families.values()) {
    const { name, type } = family;
    if (!/^(rowsync|process|nodejs)_/.test(name)) problems.push(`${name}: no rowsync_ prefix`);
    if (!name.startsWith('rowsync_')) continue;
    if (!/^rowsync_[a-z0-9_]+$/.test(name)) problems.push(`${name}: not snake_case`);
    if (family.help.trim().length < 10) problems.push(`${name}: no help text`);
    if (type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: counter without _total`);
    if (type !== 'counter' && name.endsWith('_total')) problems.push(`${name}: ${type} ending in _total`);
    if (/(duration|lag|latency|age|timestamp)/.test(name) && !name.endsWith('_seconds')) problems.push(`${name}: a time not in seconds`);
    if (/_(ms|millis|milliseconds|minutes|hours|kb|mb|kilobytes|megabytes)(_|$)/.test(name)) problems.push(`${name}: not a base unit`);
    for (const sample of family.samples) {
      for (const [label, value] of Object.entries(sample.labels)) {
        if (FORBIDDEN_LABELS.has(label.toLowerCase())) problems.push(`${name}: unbounded label ${label}`);
        if (unboundedValues.some((forbidden) => value.includes(forbidden))) problems.push(`${name}: label ${label}="${value}" holds a run id or key`);
      }
    }
    if (type === 'histogram') {
      const series = new Map<string, { buckets: { le: number; value: number }[]; count?: number }>();
      for (const sample of family.samples) {
        const { le, ...rest } = sample.labels;
        const id = JSON.stringify(Object.entries(rest).sort());
        const entry = series.get(id) ?? { buckets: [] };
        series.set(id, entry);
        if (sample.name.endsWith('_bucket')) entry.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), value: sample.value });
        if (sample.name.endsWith('_count')) entry.count = sample.value;
      }
      for (const [id, { buckets, count }] of series) {
        const sorted = [...buckets].sort((a, b) => a.le - b.le);
        if (sorted.at(-1)?.le !== Infinity) problems.push(`${name}${id}: no +Inf bucket`);
        if (sorted.some((bucket, index) => index > 0 && bucket.value < sorted[index - 1]!.value)) problems.push(`${name}${id}: buckets not cumulative`);
        if (sorted.at(-1)?.value !== count) problems.push(`${name}${id}: +Inf bucket ${sorted.at(-1)?.value} != _count ${count}`);
      }
    }
  }
  return problems;
}

describe('GET /metrics', () => {
  let before: Map<string, MetricFamily>;
  let after: Map<string, MetricFamily>;
  let report: RunReport;
  let runId: string;

  beforeAll(async () => {
    before = await scrape(server.url);
    const outcome = await harness.run();
    if (outcome.kind !== 'completed') throw new Error(`run ended ${outcome.kind}: ${JSON.stringify(outcome)}`);
    report = outcome.report;
    runId = outcome.runId;
    after = await scrape(server.url);
  });

  const delta = (sample: string, labels: Record<string, string>) => sampleSum(after, sample, labels) - sampleSum(before, sample, labels);
  const reportSum = (pick: (table: RunReport['tables'][number]) => number, table?: string) =>
    report.tables.filter((entry) => !table || entry.table === table).reduce((total, entry) => total + pick(entry), 0);

  it('counts the rows compared, the differences by kind and the writes by kind of the run, per table', async () => {
    // The drift of orders-fixture.ts, so that a report and counters that agree on a wrong number fail too.
    expect(reportSum((table) => table.missing)).toBe(4);
    expect(reportSum((table) => table.extra)).toBe(4);
    expect(reportSum((table) => table.changed)).toBe(6);
    expect(await expectEqualTables(harness.source, harness.target, tables.orders)).toEqual([]);
    for (const table of ['orders', 'order_lines']) {
      const labels = { pipeline: 'p', table, target: 'dst' };
      expect(delta('rowsync_reconcile_rows_compared_total', { ...labels, side: 'source' }), table).toBe(reportSum((entry) => entry.sourceRows, table));
      expect(delta('rowsync_reconcile_rows_compared_total', { ...labels, side: 'target' }), table).toBe(reportSum((entry) => entry.targetRows, table));
      for (const kind of ['missing', 'extra', 'changed'] as const) {
        expect(delta('rowsync_reconcile_differences_total', { ...labels, kind }), `${table} ${kind}`).toBe(reportSum((entry) => entry[kind], table));
      }
      const written = { ...labels, trigger: 'reconcile' };
      expect(delta('rowsync_rows_written_total', { ...written, kind: 'insert' }), table).toBe(reportSum((entry) => entry.inserted, table));
      expect(delta('rowsync_rows_written_total', { ...written, kind: 'update' }), table).toBe(reportSum((entry) => entry.updated, table));
      expect(delta('rowsync_rows_written_total', { ...written, kind: 'delete' }), table).toBe(reportSum((entry) => entry.deleted, table));
      expect(delta('rowsync_reconcile_chunks_total', labels), table).toBe(reportSum((entry) => entry.chunks, table));
      expect(delta('rowsync_reconcile_chunks_total', { ...labels, outcome: 'differing' }), table).toBe(reportSum((entry) => entry.chunksDiffering, table));
    }
    expect(reportSum((table) => table.inserted + table.updated + table.deleted)).toBe(14);
  });

  it('observes every chunk and every sync in the duration histograms', () => {
    const chunks = reportSum((table) => table.chunks);
    expect(chunks).toBeGreaterThan(6);
    expect(delta('rowsync_reconcile_chunk_duration_seconds_count', { pipeline: 'p', target: 'dst' })).toBe(chunks);
    expect(delta('rowsync_reconcile_chunk_duration_seconds_sum', { pipeline: 'p', target: 'dst' })).toBeGreaterThan(0);
    // Each differing chunk synced its keys once, in the chunk job or in apply jobs.
    expect(delta('rowsync_sync_batch_duration_seconds_count', { pipeline: 'p', target: 'dst', trigger: 'reconcile' })).toBeGreaterThanOrEqual(
      reportSum((table) => table.chunksDiffering),
    );
    expect(delta('rowsync_reconcile_chunk_duration_seconds_bucket', { pipeline: 'p', target: 'dst', le: '+Inf' })).toBe(chunks);
  });

  it('reads queue depths, live workers and collector health from Redis', () => {
    const families = ['reconcile-run', 'reconcile-table', 'reconcile-chunk', 'apply', 'cdc-batch', 'cdc-dead-letter'];
    const depth = samplesOf(after, 'rowsync_queue_jobs');
    for (const queue of families) {
      for (const state of ['waiting', 'active', 'delayed', 'failed', 'waiting-children']) {
        expect(depth.some((sample) => sample.labels.queue === queue && sample.labels.state === state), `${queue} ${state}`).toBe(true);
      }
    }
    // Apply lanes are one family: no label per lane.
    expect(depth.some((sample) => /^apply-\d+$/.test(sample.labels.queue ?? ''))).toBe(false);
    expect(sampleSum(after, 'rowsync_queue_jobs', { queue: 'reconcile-chunk', state: 'failed' })).toBe(0);
    // The harness runs one set of workers: one per queue, and one on every apply lane.
    for (const queue of families) expect(sampleSum(after, 'rowsync_workers', { queue }), queue).toBe(1);
    expect(sampleSum(after, 'rowsync_collector_up', { collector: 'redis' })).toBe(1);
    expect(sampleSum(after, 'rowsync_collector_up', { collector: 'conflicts' })).toBe(1);
    expect(samplesOf(after, 'rowsync_database_queries_in_flight').map((sample) => sample.labels.database).sort()).toEqual(['dst', 'src']);
    expect(samplesOf(after, 'process_cpu_user_seconds_total')).toHaveLength(1);
  });

  it('names every metric and label by the conventions, with no run id or key in a label', () => {
    expect(conventionProblems(after, [runId, 'order_lines.', '5000'])).toEqual([]);
    const types = Object.fromEntries([...after.values()].filter((family) => family.name.startsWith('rowsync_')).map((family) => [family.name, family.type]));
    expect(types).toMatchObject({
      rowsync_reconcile_rows_compared_total: 'counter',
      rowsync_reconcile_differences_total: 'counter',
      rowsync_rows_written_total: 'counter',
      rowsync_reconcile_chunk_duration_seconds: 'histogram',
      rowsync_sync_batch_duration_seconds: 'histogram',
      rowsync_cdc_batch_duration_seconds: 'histogram',
      rowsync_queue_jobs: 'gauge',
      rowsync_workers: 'gauge',
      rowsync_database_queries_in_flight: 'gauge',
      rowsync_collector_up: 'gauge',
    });
  });

  it('the strict parser refuses what a scraper would', () => {
    expect(() => parsePrometheusText('x_total 1\n')).toThrow(/before any TYPE/);
    expect(() => parsePrometheusText('# HELP x h\n# TYPE x gauge\nx{a="1} 1\n')).toThrow(/unterminated/);
    expect(() => parsePrometheusText('# HELP x h\n# TYPE x gauge\ny 1\n')).toThrow(/not of family/);
    expect(parsePrometheusText('# HELP x h\n# TYPE x gauge\nx Nan\n').get('x')?.samples[0]?.value).toBeNaN();
    expect(() => parsePrometheusText('# HELP x h\n# TYPE x gauge\nx 1,5\n')).toThrow(/not a number/);
    expect(conventionProblems(parsePrometheusText('# HELP rowsync_lag_ms the lag in milliseconds\n# TYPE rowsync_lag_ms gauge\nrowsync_lag_ms{run_id="r1"} 1\n'), ['r1'])).toEqual([
      'rowsync_lag_ms: a time not in seconds',
      'rowsync_lag_ms: not a base unit',
      'rowsync_lag_ms: unbounded label run_id',
      'rowsync_lag_ms: label run_id="r1" holds a run id or key',
    ]);
  });
});

describe('cluster gauges of schedules, CDC streams and the conflict log', () => {
  it('report the last scheduled run and the next due tick, a stream as its reader published it, and logged conflicts', async () => {
    const logger = createLogger({ level: 'silent' });
    // The harness's workers run the scheduled runs: same Redis prefix, same pipeline `p`.
    const scheduled = new Runtime(
      parseConfig({
        redis: { url: testServers().redisUrl, prefix: harness.config.redis.prefix },
        connections: { src: scratchUrl('mysql', 'metrics_src'), dst: scratchUrl('postgres', 'metrics_dst') },
        pipelines: [{ name: 'p', source: 'src', targets: ['dst'], reconcile: { schedule: '*/2 * * * * *', chunkSize: 500 }, cdc: {} }],
        workers: { lanes: 4 },
      }),
      logger,
    );
    const metrics = await startMetricsServer(scheduled, { port: 0, cluster: { redisCacheMs: 0, conflictCacheMs: 0 } });
    const scheduler = startScheduler(scheduled);
    try {
      const deadline = Date.now() + 30_000;
      let families = await scrape(metrics.url);
      while (sampleSum(families, 'rowsync_scheduled_run_last_status', { pipeline: 'p', status: 'completed' }) !== 1) {
        if (Date.now() > deadline) throw new Error(`no scheduled run completed: ${JSON.stringify(samplesOf(families, 'rowsync_scheduled_run_last_status'))}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
        families = await scrape(metrics.url);
      }
      const statuses = samplesOf(families, 'rowsync_scheduled_run_last_status').map((sample) => sample.labels.status).sort();
      expect(statuses).toEqual(['completed', 'failed', 'missing', 'running', 'stuck']);
      expect(sampleSum(families, 'rowsync_scheduled_run_last_status', { pipeline: 'p' })).toBe(1);
      const startedAt = sampleSum(families, 'rowsync_scheduled_run_last_start_timestamp_seconds', { pipeline: 'p' });
      const nextDue = sampleSum(families, 'rowsync_scheduled_run_next_due_timestamp_seconds', { pipeline: 'p' });
      expect(Math.abs(startedAt - Date.now() / 1000)).toBeLessThan(30);
      expect(nextDue).toBeGreaterThan(startedAt);
      expect(nextDue - startedAt).toBeLessThanOrEqual(4);
      expect(sampleSum(families, 'rowsync_scheduler_ticks_total', { pipeline: 'p', outcome: 'enqueued' })).toBeGreaterThanOrEqual(1);

      // No scheduler left: the due tick passes and stays in the past (what RowsyncScheduledRunMissed sees).
      await scheduler.stop();
      const stoppedAt = Date.now() / 1000;
      await new Promise((resolve) => setTimeout(resolve, 2500));
      families = await scrape(metrics.url);
      expect(sampleSum(families, 'rowsync_scheduled_run_next_due_timestamp_seconds', { pipeline: 'p' })).toBeLessThan(stoppedAt + 2.1);
      expect(sampleSum(families, 'rowsync_scheduled_run_next_due_timestamp_seconds', { pipeline: 'p' })).toBeLessThan(Date.now() / 1000);

      // A stream's status as a binlog reader publishes it (workers/cdc-readers.ts writes this hash).
      const updatedAt = Date.now() - 1500;
      await scheduled.redis.hset(
        cdcStatusKey(scheduled.config.redis.prefix),
        'p',
        JSON.stringify({
          pipeline: 'p', stream: 'p', source: 'src', mode: 'binlog', state: 'streaming', epoch: 'e1', updatedAt,
          targets: [{ target: 'dst', checkpoint: 'mysql-bin.000003:1234', queuedUpTo: 'mysql-bin.000003:2000', lagMs: 2500, queuedJobs: 2, deadLettered: 0, detached: false }],
        }),
      );
      // And two logged conflicts: one pending (manual), one a bidirectional policy settled.
      await harness.target.recordConflicts([
        { pipeline: 'p', table: 'orders', key: { id: 7 }, sourceRow: { id: 7 }, targetRow: { id: 7 } },
        { pipeline: 'p', table: 'orders', key: { id: 8 }, sourceRow: null, targetRow: { id: 8 }, kind: 'update-delete', policy: 'timestamp', outcome: 'b_won' },
      ]);
      families = await scrape(metrics.url);
      const stream = { pipeline: 'p', source: 'src', target: 'dst' };
      expect(sampleSum(families, 'rowsync_cdc_lag_seconds', stream)).toBe(2.5);
      expect(sampleSum(families, 'rowsync_cdc_queued_batches', stream)).toBe(2);
      expect(sampleSum(families, 'rowsync_cdc_checkpoint_position', stream)).toBe(3 * 2 ** 32 + 1234);
      expect(sampleSum(families, 'rowsync_cdc_queued_position', stream)).toBe(3 * 2 ** 32 + 2000);
      expect(sampleSum(families, 'rowsync_cdc_reader_state', { pipeline: 'p', state: 'streaming' })).toBe(1);
      expect(sampleSum(families, 'rowsync_cdc_reader_state', { pipeline: 'p', state: 'failing' })).toBe(0);
      expect(sampleSum(families, 'rowsync_cdc_status_updated_timestamp_seconds', { pipeline: 'p', source: 'src' })).toBe(updatedAt / 1000);
      const logged = { pipeline: 'p', target: 'dst', table: 'orders' };
      expect(sampleSum(families, 'rowsync_conflicts', { ...logged, kind: 'update-update', status: 'pending' })).toBe(1);
      expect(sampleSum(families, 'rowsync_conflicts', { ...logged, kind: 'update-delete', status: 'resolved' })).toBe(1);
      expect(sampleSum(families, 'rowsync_cdc_dead_letters')).toBe(0);
    } finally {
      await scheduler.stop();
      await metrics.close();
      await scheduled.close();
    }
  });
});

describe('GET /healthz', () => {
  it('answers 200 when Redis and every configured database answer', async () => {
    const response = await fetch(`${server.url}healthz`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; unreachable: string[]; checks: { name: string; ok: boolean }[] };
    expect(body.status).toBe('ok');
    expect(body.unreachable).toEqual([]);
    expect(body.checks.map((check) => check.name).sort()).toEqual(['connections.dst', 'connections.src', 'redis']);
    expect(body.checks.every((check) => check.ok)).toBe(true);
  });

  it('answers 503 naming a database on a closed port, and Redis when Redis is unreachable, within its timeout', async () => {
    const port = await closedPort();
    const prefix = `t-metrics-health-${process.pid}`;
    const logger = createLogger({ level: 'silent' });
    const databaseDown = new Runtime(
      parseConfig({
        redis: { url: testServers().redisUrl, prefix },
        connections: { src: scratchUrl('mysql', 'metrics_src'), down: `postgres://rowsync:rowsync@127.0.0.1:${port}/rowsync` },
        pipelines: [{ name: 'p', source: 'src', targets: ['down'] }],
      }),
      logger,
    );
    const redisDown = new Runtime(
      parseConfig({
        redis: { url: `redis://127.0.0.1:${port}`, prefix },
        connections: { src: scratchUrl('mysql', 'metrics_src'), dst: scratchUrl('postgres', 'metrics_dst') },
        pipelines: [{ name: 'p', source: 'src', targets: ['dst'] }],
      }),
      logger,
    );
    // A queue without an error listener logs each failed reconnect to the console.
    for (const queue of redisDown.queues.all()) queue.on('error', () => undefined);
    const servers = [
      await startMetricsServer(databaseDown, { port: 0, health: { timeoutMs: 1500 } }),
      await startMetricsServer(redisDown, { port: 0, health: { timeoutMs: 1500 }, cluster: { timeoutMs: 1500 } }),
    ];
    try {
      const health = async (url: string) => {
        const startedAt = Date.now();
        const response = await fetch(`${url}healthz`);
        const body = (await response.json()) as { status: string; unreachable: string[]; checks: { name: string; ok: boolean; error?: string }[] };
        return { status: response.status, body, ms: Date.now() - startedAt };
      };
      const database = await health(servers[0]!.url);
      expect(database.status).toBe(503);
      expect(database.body.status).toBe('unavailable');
      expect(database.body.unreachable).toEqual(['connections.down']);
      expect(database.body.checks.find((check) => check.name === 'connections.down')?.error).toMatch(/./);
      expect(database.ms).toBeLessThan(5000);

      const redis = await health(servers[1]!.url);
      expect(redis.status).toBe(503);
      expect(redis.body.unreachable).toEqual(['redis']);
      expect(redis.ms).toBeLessThan(5000);

      // /metrics still answers without Redis: the process's own metrics, and the Redis collector down.
      const startedAt = Date.now();
      const families = await scrape(servers[1]!.url);
      expect(Date.now() - startedAt).toBeLessThan(5000);
      expect(sampleSum(families, 'rowsync_collector_up', { collector: 'redis' })).toBe(0);
      expect(samplesOf(families, 'rowsync_workers')).toEqual([]);
      expect(families.has('rowsync_reconcile_rows_compared_total')).toBe(true);
    } finally {
      for (const running of servers) await running.close();
      await databaseDown.close();
      redisDown.redis.disconnect();
      await Promise.race([redisDown.close(), new Promise((resolve) => setTimeout(resolve, 2000))]);
      await deleteRedisPrefix(prefix);
    }
  });
});
