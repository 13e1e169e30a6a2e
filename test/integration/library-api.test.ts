/**
 * The library API (`import { createRowsync } from 'rowsync'`) on the real servers, MariaDB ->
 * PostgreSQL: a config from an object or a file, validated as the CLI validates the file (same
 * messages); `reconcile()` resolving to the report with exact counts, its per-call settings (chunk
 * size, conflict policy) validated the same way and carried by its jobs, its progress events in
 * order; conflict statistics and resolving after a manual-policy run; `startCdc()` streaming a change
 * that `syncStats()` then counts (total, last hour, last change time, position, lag); `close()`
 * leaving nothing open (a process that uses the package exits on its own); the package's type
 * declarations usable by a TypeScript consumer.
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRowsync, type Rowsync } from '../../src/api/rowsync.js';
import type { RowsyncEvents } from '../../src/api/events.js';
import { RunFailedError } from '../../src/api/run-failed-error.js';
import { loadConfigFile, type ConfigInput } from '../../src/config/index.js';
import { buildTablePair, type TablePair } from '../../src/dialect/table-pair.js';
import { ConfigError } from '../../src/errors/index.js';
import { until } from '../support/cdc-fixture.js';
import { ROOT, buildCli, createCliFixture, describeResult, runCli, type CliFixture } from '../support/cli.js';
import { DRIFT, ORDER_COUNT, expectEqualTables } from '../support/orders-fixture.js';
import { executeFor } from '../support/scratch.js';

const SHARED_DDL = {
  mysql: ['CREATE TABLE shared (id INT NOT NULL PRIMARY KEY, qty INT NOT NULL, updated_at DATETIME(6) NOT NULL)'],
  postgres: ['CREATE TABLE shared (id integer PRIMARY KEY, qty integer NOT NULL, updated_at timestamp(6) NOT NULL)'],
};
const ITEMS_DDL = {
  mysql: ['CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(50) NOT NULL, qty INT NOT NULL)'],
  postgres: ['CREATE TABLE items (id integer PRIMARY KEY, name varchar(50) NOT NULL, qty integer NOT NULL)'],
};

let fixture: CliFixture;
let items: TablePair;
let shared: TablePair;
/** The fixture's config plus pipelines `live` (table items, CDC by binlog) and `both` (table shared, bidirectional). */
let configInput: CliFixture['configInput'];
let configFile: string;
const opened: Rowsync[] = [];

function open(config: Parameters<typeof createRowsync>[0] = configInput as ConfigInput): Rowsync {
  const rowsync = createRowsync(config);
  opened.push(rowsync);
  return rowsync;
}

/** Every event of the kinds named, in the order emitted. */
function record<K extends keyof RowsyncEvents>(rowsync: Rowsync, kinds: readonly K[]): { kind: K; event: RowsyncEvents[K][0] }[] {
  const seen: { kind: K; event: RowsyncEvents[K][0] }[] = [];
  for (const kind of kinds) {
    (rowsync.on as (name: K, listener: (event: RowsyncEvents[K][0]) => void) => Rowsync)(kind, (event) => seen.push({ kind, event }));
  }
  return seen;
}

function errorOf(work: () => unknown): Error {
  try {
    work();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

beforeAll(async () => {
  await buildCli();
  fixture = await createCliFixture({ tag: 'libapi', sourceEngine: 'mysql', targetEngine: 'postgres', tables: ['orders'] });
  await executeFor(fixture.source, ITEMS_DDL);
  await executeFor(fixture.target, ITEMS_DDL);
  items = buildTablePair(fixture.source, await fixture.source.describeTable('items'), fixture.target, await fixture.target.describeTable('items'));
  const rows = Array.from({ length: 20 }, (_, index) => [index + 1, `item ${index + 1}`, index]);
  await fixture.source.applyChanges(items.source, { upserts: rows, deletes: [] });
  await fixture.target.applyChanges(items.target, { upserts: rows, deletes: [] });
  await executeFor(fixture.source, SHARED_DDL);
  await executeFor(fixture.target, SHARED_DDL);
  shared = buildTablePair(fixture.source, await fixture.source.describeTable('shared'), fixture.target, await fixture.target.describeTable('shared'));
  const sharedRows = Array.from({ length: 5 }, (_, index) => [index + 1, index + 1, '2026-12-01 10:00:00.000000']);
  await fixture.source.applyChanges(shared.source, { upserts: sharedRows, deletes: [] });
  await fixture.target.applyChanges(shared.target, { upserts: sharedRows, deletes: [] });
  configInput = structuredClone(fixture.configInput);
  configInput.pipelines.push({
    name: 'live',
    source: 'src',
    targets: ['dst'],
    tables: ['items'],
    cdc: { batchWindowMs: 20, heartbeatMs: 500, attempts: 2, backoffMs: 100 },
  });
  configInput.pipelines.push({ name: 'both', source: 'src', targets: ['dst'], mode: 'bidirectional', tables: ['shared'], reconcile: { chunkSize: 100 } });
  configFile = fixture.writeConfig('library.json', () => configInput);
});

afterAll(async () => {
  await Promise.all(opened.map((rowsync) => rowsync.close()));
  if (configFile) await runCli(['cdc', 'teardown', '--config', configFile, '--pipeline', 'live']);
  await fixture?.close();
});

describe('createRowsync', () => {
  it('takes a config object or a file path, and validates both as the CLI validates the file', async () => {
    const fromObject = open();
    const fromFile = open(configFile);
    expect(fromFile.config.file).toBe(configFile);
    expect(fromObject.config.file).toBeUndefined();
    expect({ ...fromObject.config, file: undefined }).toEqual({ ...fromFile.config, file: undefined });
    expect(fromObject.config.pipelines.map((pipeline) => pipeline.name)).toEqual(['p', 'live', 'both']);

    const broken = structuredClone(configInput);
    (broken.pipelines[0]!.reconcile as Record<string, unknown>).chunkSize = 'big';
    (broken.pipelines[1] as Record<string, unknown>).conflcit = 'manual';
    const brokenFile = fixture.writeConfig('broken.json', () => broken);
    const fromCli = await runCli(['status', '--config', brokenFile]);
    expect(fromCli.code, describeResult(fromCli)).toBe(2);
    // Typed as ConfigInput a broken object would not compile: a JavaScript caller's mistake.
    const objectError = errorOf(() => createRowsync(broken as never));
    expect(objectError).toBeInstanceOf(ConfigError);
    expect(objectError.message).toBe("pipelines[0].reconcile.chunkSize: expected a number\npipelines[1]: unknown option 'conflcit'");
    expect(`error: ${objectError.message}\n`).toBe(fromCli.stderr);
    expect(errorOf(() => createRowsync(brokenFile)).message).toBe(objectError.message);
    expect(errorOf(() => loadConfigFile(brokenFile)).message).toBe(objectError.message);
    expect(errorOf(() => createRowsync(join(fixture.dir, 'missing.json'))).message).toMatch(/^--config: cannot read .*missing\.json \(ENOENT\)$/);
  });

  it('per-call settings are validated by the same schema, naming the field; a bad one enqueues nothing', async () => {
    const rowsync = open();
    const refused = async (options: Parameters<Rowsync['reconcile']>[1]) => {
      const error = await rowsync.reconcile('p', options).then(() => undefined, (caught: unknown) => caught as Error);
      expect(error).toBeInstanceOf(ConfigError);
      return error!.message;
    };
    expect(await refused({ chunkSize: 0 })).toBe('pipelines[0].reconcile.chunkSize: expected at least 1');
    expect(await refused({ compare: 'fast' as never })).toBe('pipelines[0].reconcile.compare: expected one of "checksum", "field_by_field", "timestamp"');
    expect(await refused({ conflict: 'priority' })).toBe("pipelines[0].reconcile.conflict: 'priority' is for bidirectional pipelines; a one-way pipeline uses 'source_wins' or 'target_wins'");
    expect(await refused({ batchSize: 100 } as never)).toMatch(/^reconcile options: unknown option 'batchSize' \(known: tables, /);
    expect(await refused({ tables: ['invoices'] })).toBe('--table: invoices not in pipeline p (tables: orders)');
    expect(Object.values(await fixture.runtime.queues.run.getJobCounts()).reduce((total, count) => total + count, 0)).toBe(0);
  });
});

describe('reconcile', () => {
  it('resolves to the report with exact counts, runs with its own chunk size, and emits enqueued, progress and completed in order', async () => {
    const rowsync = open();
    const events = record(rowsync, ['run:enqueued', 'run:progress', 'run:completed', 'run:failed']);
    const before = await fixture.target.checksumRange(fixture.tables.orders.target, {});
    const report = await rowsync.reconcile('p', { dryRun: true, chunkSize: 1000, workers: 2 });
    expect(report).toMatchObject({ pipeline: 'p', status: 'completed', dryRun: true });
    expect(report.tables).toEqual([
      {
        table: 'orders', target: 'dst', sourceRows: ORDER_COUNT, targetRows: ORDER_COUNT,
        // The run's chunkSize (1000), not the pipeline's (400, 8 chunks): 3000 source keys in 3 chunks.
        chunks: 3, chunksDiffering: expect.any(Number),
        missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length,
        inserted: DRIFT.missing.length, updated: DRIFT.changed.length, deleted: DRIFT.extra.length, conflicts: 0, errors: [],
      },
    ]);
    expect(await fixture.target.checksumRange(fixture.tables.orders.target, {})).toEqual(before);

    const kinds = events.map((entry) => entry.kind);
    expect(kinds[0]).toBe('run:enqueued');
    expect(kinds.at(-1)).toBe('run:completed');
    expect(kinds.filter((kind) => kind === 'run:progress').length).toBeGreaterThanOrEqual(1);
    expect(kinds.slice(1, -1).every((kind) => kind === 'run:progress')).toBe(true);
    expect(events[0]!.event).toEqual({ runId: report.runId, pipeline: 'p', dryRun: true, added: true });
    expect(events.at(-1)!.event).toEqual({ runId: report.runId, report });
    const progress = events.filter((entry) => entry.kind === 'run:progress').map((entry) => (entry.event as RowsyncEvents['run:progress'][0]).counts);
    for (let index = 1; index < progress.length; index += 1) expect(progress[index]!.chunksDone).toBeGreaterThanOrEqual(progress[index - 1]!.chunksDone);
    expect(progress.at(-1)).toMatchObject({ tablesPlanned: 1, tablesDone: 1, chunksPlanned: 3, chunksDone: 3, rowsCompared: ORDER_COUNT });
  });

  it('a run with conflict: manual logs its conflicts; conflictStats counts them by kind and table; resolveConflicts settles them', async () => {
    const rowsync = open();
    const conflicts = record(rowsync, ['conflict']);
    const report = await rowsync.reconcile('p', { conflict: 'manual', workers: 2 });
    expect(report.tables[0]).toMatchObject({
      missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length,
      inserted: DRIFT.missing.length, updated: 0, deleted: DRIFT.extra.length, conflicts: DRIFT.changed.length,
    });
    // Reported by this instance's chunk workers, per chunk.
    expect(conflicts.reduce((total, { event }) => total + event.count, 0)).toBe(DRIFT.changed.length);
    expect(conflicts[0]!.event).toMatchObject({ pipeline: 'p', target: 'dst', table: 'orders', trigger: 'reconcile', runId: report.runId });

    const stats = await rowsync.conflictStats('p');
    expect(stats).toMatchObject({
      pipeline: 'p', total: DRIFT.changed.length, pending: DRIFT.changed.length,
      byKind: { 'update-update': DRIFT.changed.length }, byTable: { orders: DRIFT.changed.length },
    });
    expect(stats.recent.map((conflict) => Number(conflict.key.id)).sort((a, b) => a - b)).toEqual([...DRIFT.changed]);
    expect(stats.recent.every((conflict) => conflict.status === 'pending' && conflict.policy === 'manual')).toBe(true);
    expect((await rowsync.conflictStats()).map((entry) => [entry.pipeline, entry.total])).toEqual([['p', DRIFT.changed.length], ['live', 0], ['both', 0]]);

    // Manual: the changed rows were left as they were, for a human.
    const differing = (await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).filter((problem) => problem.startsWith('row '));
    expect(differing).toHaveLength(DRIFT.changed.length);
    expect(await rowsync.resolveConflicts('p', { keep: 'source', all: true })).toEqual({ resolved: DRIFT.changed.length, kept: 'source' });
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);
    expect(await rowsync.conflictStats('p')).toMatchObject({ total: DRIFT.changed.length, pending: 0, byOutcome: { a_won: DRIFT.changed.length } });
  });

  it('a run that waits for a failed job rejects with RunFailedError naming it, and emits run:failed', async () => {
    const rowsync = open();
    const failures = record(rowsync, ['run:failed']);
    await fixture.target.execute('ALTER TABLE orders ADD CONSTRAINT library_cap CHECK (amount < 100000)');
    try {
      await fixture.source.execute('UPDATE orders SET amount = 200000 WHERE id = 42');
      const error = await rowsync.reconcile('p', { workers: 1 }).then(() => undefined, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(RunFailedError);
      const failed = error as RunFailedError;
      expect(failed.outcome).toBe('stuck');
      expect(failed.failedJobs.length).toBeGreaterThanOrEqual(1);
      expect(failed.failedJobs[0]!.reason).toMatch(/library_cap|check/i);
      expect(failures).toEqual([{ kind: 'run:failed', event: { runId: failed.runId, outcome: 'stuck', reason: failed.message, failedJobs: failed.failedJobs } }]);

      await fixture.target.execute('ALTER TABLE orders DROP CONSTRAINT library_cap');
      expect(await rowsync.retryRun(failed.runId)).toBe(failed.failedJobs.length);
      const report = await rowsync.waitForRun(failed.runId, { workers: 1 });
      expect(report.tables[0]).toMatchObject({ changed: 1, updated: 1 });
    } finally {
      await fixture.target.execute('ALTER TABLE orders DROP CONSTRAINT IF EXISTS library_cap');
    }
  });
});

describe('waitForRun', () => {
  it('a signal ends the wait (rejecting with its reason); the run stays enqueued for any worker to finish', async () => {
    const rowsync = open();
    const controller = new AbortController();
    let runId = '';
    rowsync.once('run:enqueued', (event) => (runId = event.runId));
    const waiting = rowsync.reconcile('p', { dryRun: true, workers: 0, signal: controller.signal });
    await until(async () => runId !== '', 'the run enqueued');
    controller.abort(new Error('the caller stopped waiting'));
    await expect(waiting).rejects.toThrow('the caller stopped waiting');
    expect(await fixture.runtime.queues.run.getJobState(runId)).toBe('waiting');
    // Another instance (or a `rowsync worker`) picks it up.
    const report = await open().waitForRun(runId, { workers: 2 });
    expect(report).toMatchObject({ runId, status: 'completed', dryRun: true });
  });
});

describe('startCdc and syncStats', () => {
  it('a change reaches the target; syncStats counts it (total, last hour, last change time) with position and lag', async () => {
    const rowsync = open();
    const events = record(rowsync, ['cdc:status', 'cdc:lag', 'cdc:batch']);
    expect(await rowsync.syncStats('live')).toMatchObject({ pipeline: 'live', cdc: true, running: false, totalChanges: 0, changesLastHour: 0 });
    await rowsync.setupCdc('live');
    const cdc = await rowsync.startCdc({ pipeline: 'live', workers: 2 });
    expect(cdc.readers).toBe(1);
    await until(async () => events.some(({ kind, event }) => kind === 'cdc:status' && (event as { state: string }).state === 'streaming'), 'a streaming reader');
    // The first start reconciles the tables (the snapshot); the stream carries what follows. Waited
    // for: a snapshot that read row 7 after the change below would leave the stream nothing to write.
    await until(async () => (await rowsync.status()).runs.some((run) => run.pipeline === 'live' && run.runId.endsWith('.cdc-initial') && run.state === 'completed'), 'the initial reconcile');
    await until(async () => (await fixture.target.readCheckpoint('live', 'src')) !== undefined, 'a checkpoint');

    const changedAt = Date.now();
    await fixture.source.execute("UPDATE items SET name = 'changed by the test', qty = 99 WHERE id = 7");
    await until(async () => {
      const [row] = await fixture.target.fetchByKeys(items.target, [[7]]);
      return row?.[1] === 'changed by the test' ? row : undefined;
    }, 'the change at the target');
    const stats = await until(async () => {
      const current = await rowsync.syncStats('live');
      return current.totalChanges === 1 && current.queueLength === 0 ? current : undefined;
    }, 'the change counted');
    expect(stats).toMatchObject({ pipeline: 'live', mode: 'one-way', running: true, totalChanges: 1, changesLastHour: 1, queueLength: 0, deadLetters: 0 });
    expect(Date.parse(stats.lastChangeAt!)).toBeGreaterThanOrEqual(changedAt - 1000);
    expect(Date.parse(stats.lastChangeAt!)).toBeLessThanOrEqual(Date.now());
    expect(stats.lagMs).toEqual(expect.any(Number));
    const [stream] = stats.streams;
    expect(stream).toMatchObject({ stream: 'live', from: 'src', mode: 'binlog', state: 'streaming', running: true });
    expect(stream!.targets[0]).toMatchObject({ target: 'dst', changes: 1, changesLastHour: 1, rowsWritten: 1, deadLetters: 0 });
    // A binlog file and offset (the shared server's other writers move it on, so no exact value).
    expect(stream!.targets[0]!.position).toMatch(/^\S+:\d+$/);
    // All pipelines at once: the reconcile-only one has no stream and counts nothing.
    expect((await rowsync.syncStats()).map((entry) => [entry.pipeline, entry.cdc, entry.totalChanges])).toEqual([['p', false, 0], ['live', true, 1], ['both', false, 0]]);

    const batches = events.filter((entry) => entry.kind === 'cdc:batch').map((entry) => entry.event as RowsyncEvents['cdc:batch'][0]);
    expect(batches).toEqual([expect.objectContaining({ pipeline: 'live', from: 'src', target: 'dst', keys: 1, updated: 1, inserted: 0, deleted: 0, conflicts: 0 })]);
    expect(events.some(({ kind }) => kind === 'cdc:lag')).toBe(true);

    await cdc.stop();
    expect(await rowsync.syncStats('live')).toMatchObject({ running: false, totalChanges: 1, streams: [expect.objectContaining({ state: 'stopped' })] });
  });
});

describe('startBidirectional', () => {
  it('refuses a one-way pipeline, a too short interval and realTime without cdc, naming the option', async () => {
    const rowsync = open();
    const refused = (pipeline: string, options: Parameters<Rowsync['startBidirectional']>[1]) =>
      rowsync.startBidirectional(pipeline, options).then(() => '', (error: Error) => `${error.name}: ${error.message}`);
    expect(await refused('p', { intervalMs: 5000 })).toBe("ConfigError: pipelines.p.mode: pipeline 'p' is one-way; startBidirectional needs mode: bidirectional");
    expect(await refused('both', { intervalMs: 10 })).toBe("ConfigError: intervalMs: expected a whole number of ms, at least 1000, got '10'");
    expect(await refused('both', { intervalMs: 5000, realTime: true })).toBe(`ConfigError: realTime: pipeline 'both' has no cdc section (add "cdc": {} to stream it)`);
  });

  it('reconciles both ways every interval: a change on either side reaches the other', async () => {
    const rowsync = open();
    const completed = record(rowsync, ['run:completed']);
    const sync = await rowsync.startBidirectional('both', { intervalMs: 1000, workers: 2 });
    try {
      // The first run records the baseline (which rows were equal); the next ones tell each side's changes apart.
      await until(async () => sync.completedRuns >= 1, 'the first periodic run', 30_000);
      await fixture.target.execute("INSERT INTO shared VALUES (6, 60, '2026-12-01 11:00:00.000000')");
      await fixture.source.execute("UPDATE shared SET qty = 20, updated_at = '2026-12-01 11:00:00.000000' WHERE id = 2");
      await until(async () => {
        const [onA] = await fixture.source.fetchByKeys(shared.source, [[6]]);
        const [onB] = await fixture.target.fetchByKeys(shared.target, [[2]]);
        // Once across, the run that carried them is done when its promise has resolved.
        return Number(onA?.[1]) === 60 && Number(onB?.[1]) === 20 && sync.completedRuns >= 2;
      }, 'both changes across', 30_000);
      const runs = sync.completedRuns;
      expect(runs).toBeGreaterThanOrEqual(2);
      expect(completed.length).toBe(runs);
      expect(sync.lastReport).toMatchObject({ pipeline: 'both', status: 'completed' });
      expect(sync.lastReport!.tables[0]!.bidirectional).toBeDefined();
    } finally {
      await sync.stop();
    }
    const stoppedAt = sync.completedRuns;
    expect(await expectEqualTables(fixture.source, fixture.target, shared)).toEqual([]);
    expect(sync.completedRuns).toBe(stoppedAt);
  });
});

describe('close', () => {
  it('leaves nothing open: a process that used workers, CDC and a reconcile through the package exits on its own', async () => {
    const script = `
      import { createRowsync } from 'rowsync';
      const rowsync = createRowsync(process.env.LIBRARY_CONFIG);
      const workers = await rowsync.startWorkers({ concurrency: 1 });
      const cdc = await rowsync.startCdc({ pipeline: 'live' });
      const report = await rowsync.reconcile('p', { dryRun: true, workers: 0 });
      await rowsync.syncStats();
      await rowsync.conflictStats('p');
      await rowsync.close();
      process.stdout.write(JSON.stringify({ closedAt: Date.now(), chunks: report.tables[0].chunks, readers: cdc.readers }) + '\\n');
      void workers;
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, LIBRARY_CONFIG: configFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(killer);
    const exitedAt = Date.now();
    expect(code, `stdout: ${stdout}\nstderr: ${stderr}`).toBe(0);
    // Nothing on stderr: the library logs nowhere unless given a logger.
    expect(stderr).toBe('');
    const result = JSON.parse(stdout.trim()) as { closedAt: number; chunks: number; readers: number };
    expect(result).toMatchObject({ chunks: Math.ceil(ORDER_COUNT / 400), readers: 1 });
    expect(exitedAt - result.closedAt).toBeLessThan(5000);
  });
});

describe('type declarations', () => {
  it('a TypeScript consumer type-checks against the built package (dist/src/index.d.ts via exports)', async () => {
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const result = await promisify(execFile)(process.execPath, [tsc, '-p', 'test/types/tsconfig.json'], { cwd: ROOT }).then(
      () => ({ code: 0, output: '' }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, output: `${error.stdout ?? ''}${error.stderr ?? ''}` }),
    );
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });
});
