/**
 * The `rowsync` binary end to end, as separate processes on real servers (MariaDB -> PostgreSQL;
 * data correctness for every engine pair is reconcile.test.ts's job): the `--json` report and exit
 * codes of `reconcile`, usage and config errors that write nothing and leak no password, a run
 * enqueued with `--no-wait` and processed by a `rowsync worker` process, and the board's auth.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport, TableReport } from '../../src/reconcile/report.js';
import {
  ROOT, buildCli, cliStatus, createCliFixture, describeResult, killLeftoverProcesses, parseJsonOutput, runCli, scanKeys,
  startCli, waitForStatus, type CliFixture,
} from '../support/cli.js';
import { DRIFT, ORDER_COUNT, expectEqualTables, injectDrift } from '../support/orders-fixture.js';

const table = (report: RunReport, name: string): TableReport => {
  const found = report.tables.find((entry) => entry.table === name);
  if (!found) throw new Error(`no table ${name} in ${JSON.stringify(report)}`);
  return found;
};

const TABLE_REPORT_KEYS = [
  'table', 'target', 'sourceRows', 'targetRows', 'chunks', 'chunksDiffering', 'missing', 'extra', 'changed',
  'inserted', 'updated', 'deleted', 'conflicts', 'errors',
].sort();

let fixture: CliFixture;

beforeAll(async () => {
  await buildCli();
  fixture = await createCliFixture({ tag: 'cli_mypo', sourceEngine: 'mysql', targetEngine: 'postgres' });
});

afterAll(async () => {
  await killLeftoverProcesses();
  await fixture?.close();
});

describe('rowsync reconcile --json', () => {
  it('--dry-run reports the drift and writes nothing', async () => {
    const before = await fixture.target.checksumRange(fixture.tables.orders.target, {});
    const result = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--json', '--dry-run']);
    expect(result.code, describeResult(result)).toBe(0);
    const report = parseJsonOutput<RunReport>(result);
    expect(report).toMatchObject({ pipeline: 'p', status: 'completed', dryRun: true });
    expect(table(report, 'orders')).toMatchObject({
      missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length,
      inserted: DRIFT.missing.length, updated: DRIFT.changed.length, deleted: DRIFT.extra.length,
    });
    expect(await fixture.target.checksumRange(fixture.tables.orders.target, {})).toEqual(before);
  });

  it('prints exactly one report object with the documented shape, repairs the drift, exits 0', async () => {
    const result = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--json']);
    expect(result.code, describeResult(result)).toBe(0);
    const report = parseJsonOutput<RunReport>(result);
    expect(Object.keys(report).sort()).toEqual(['dryRun', 'durationMs', 'pipeline', 'runId', 'status', 'tables']);
    expect(report).toMatchObject({ pipeline: 'p', status: 'completed', dryRun: false });
    expect(report.runId).toMatch(/^p\./);
    expect(report.durationMs).toEqual(expect.any(Number));
    expect(report.tables.map((entry) => entry.table)).toEqual(['orders', 'order_lines']);
    for (const entry of report.tables) expect(Object.keys(entry).sort()).toEqual(TABLE_REPORT_KEYS);
    expect(table(report, 'orders')).toEqual({
      table: 'orders', target: 'dst', sourceRows: ORDER_COUNT, targetRows: ORDER_COUNT,
      chunks: Math.ceil(ORDER_COUNT / 400) + (ORDER_COUNT % 400 === 0 ? 1 : 0), chunksDiffering: expect.any(Number),
      missing: 3, extra: 3, changed: 5, inserted: 3, updated: 5, deleted: 3, conflicts: 0, errors: [],
    });
    expect(table(report, 'order_lines')).toMatchObject({ missing: 1, extra: 1, changed: 1, inserted: 1, updated: 1, deleted: 1, errors: [] });
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.lines)).toEqual([]);
  });

  it('a second run reports zero differences; the human report names the run', async () => {
    const json = parseJsonOutput<RunReport>(await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--json']));
    for (const entry of json.tables) {
      expect(entry).toMatchObject({ chunksDiffering: 0, missing: 0, extra: 0, changed: 0, inserted: 0, updated: 0, deleted: 0 });
    }
    const human = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--table', 'orders']);
    expect(human.code, describeResult(human)).toBe(0);
    expect(human.stdout).toMatch(/^run p\.\S+ \(pipeline p\): completed/);
    expect(human.stdout).toMatch(/^orders\s+dst\s+3000\s+3000\s/m);
    expect(human.stdout).not.toMatch(/order_lines/);
  });
});

describe('rowsync reconcile with a table that cannot be reconciled', () => {
  it('does the other tables, reports completed_with_errors naming the side that lacks it, and exits 1', async () => {
    const file = fixture.writeConfig('missing-table.json', (input) => ({
      ...input, pipelines: input.pipelines.map((pipeline) => ({ ...pipeline, tables: ['orders', 'not_here'] })),
    }));
    const result = await runCli(['reconcile', '--config', file, '--pipeline', 'p', '--dry-run', '--json']);
    expect(result.code, describeResult(result)).toBe(1);
    const report = parseJsonOutput<RunReport>(result);
    expect(report.status).toBe('completed_with_errors');
    expect(table(report, 'orders').errors).toEqual([]);
    expect(table(report, 'not_here').errors.join()).toMatch(/^missing on both sides: source: /);
    expect(result.stderr).toMatch(/^error: not_here -> dst: missing on both sides/m);
    expect(result.stderr).toMatch(/completed with errors: 1 table\(s\) could not be reconciled/);
  });
});

describe('rowsync reconcile --dry-run --print-keys', () => {
  it('lists every differing key with its kind as JSON lines, bounded by --print-limit, and writes nothing', async () => {
    await injectDrift(fixture.target, fixture.tables);
    const before = await fixture.target.checksumRange(fixture.tables.orders.target, {});
    const file = join(fixture.dir, 'keys.jsonl');
    const result = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--dry-run', '--json', '--print-keys', file]);
    expect(result.code, describeResult(result)).toBe(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { table: string; target: string; kind: string; key: Record<string, unknown> });
    const ids = (kind: string) => lines.filter((line) => line.table === 'orders' && line.kind === kind).map((line) => Number(line.key.id)).sort((a, b) => a - b);
    expect(ids('missing')).toEqual([...DRIFT.missing].sort((a, b) => a - b));
    expect(ids('extra')).toEqual([...DRIFT.extra].sort((a, b) => a - b));
    expect(ids('changed')).toEqual([...DRIFT.changed].sort((a, b) => a - b));
    expect(lines.filter((line) => line.table === 'order_lines').map((line) => line.kind).sort()).toEqual(['changed', 'extra', 'missing']);
    expect(lines.every((line) => line.target === 'dst')).toBe(true);
    expect(result.stderr).toContain(`listed ${lines.length} differing key(s) in ${file}`);
    expect(await fixture.target.checksumRange(fixture.tables.orders.target, {})).toEqual(before);

    // To stdout, at most 4 (the readable report then goes to stderr).
    const limited = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--dry-run', '--print-keys', '-', '--print-limit', '4']);
    expect(limited.code, describeResult(limited)).toBe(0);
    const stdoutLines = limited.stdout.trim().split('\n');
    expect(stdoutLines).toHaveLength(4);
    for (const line of stdoutLines) expect(JSON.parse(line)).toMatchObject({ target: 'dst', kind: expect.stringMatching(/^(missing|extra|changed)$/) });
    expect(limited.stderr).toContain(`listed 4 of ${lines.length} differing keys in stdout (--print-limit 4)`);
    await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p']);
  });
});

describe('rowsync reconcile --fail-on-diff', () => {
  it('a monitoring run (--dry-run) that finds drift exits 3, prints the report and writes nothing', async () => {
    await injectDrift(fixture.target, fixture.tables);
    const before = await fixture.target.checksumRange(fixture.tables.orders.target, {});
    const result = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--json', '--dry-run', '--fail-on-diff']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stderr).toMatch(/run p\.\S+ found 14 differing row\(s\) \(--fail-on-diff: exit 3\)/);
    const report = parseJsonOutput<RunReport>(result);
    expect(table(report, 'orders')).toMatchObject({ missing: 3, extra: 3, changed: 5, inserted: 3, updated: 5, deleted: 3 });
    expect(await fixture.target.checksumRange(fixture.tables.orders.target, {})).toEqual(before);
  });

  it('without --dry-run it repairs and still exits 3 (it found drift); the next run finds none and exits 0', async () => {
    const repair = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--fail-on-diff']);
    expect(repair.code, describeResult(repair)).toBe(3);
    expect(repair.stdout).toMatch(/^run p\.\S+ \(pipeline p\): completed/);
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);
    const clean = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--dry-run', '--fail-on-diff', '--json']);
    expect(clean.code, describeResult(clean)).toBe(0);
    expect(clean.stderr).not.toMatch(/fail-on-diff/);
  });

  it('without --fail-on-diff, drift found is not an error (exit 0)', async () => {
    await injectDrift(fixture.target, fixture.tables);
    const result = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--json', '--dry-run']);
    expect(result.code, describeResult(result)).toBe(0);
    const repair = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--json']);
    expect(repair.code, describeResult(repair)).toBe(0);
  });
});

describe('usage and configuration errors exit 2 and write nothing', () => {
  // A prefix of their own, so "nothing written to Redis" means no key under it at all.
  const usagePrefix = () => `${fixture.prefix}-usage`;
  const usageConfig = (name: string, change: (input: CliFixture['configInput']) => void = () => undefined) =>
    fixture.writeConfig(name, (input) => {
      change(input);
      return { ...input, redis: { ...(input.redis as object), prefix: usagePrefix() } };
    });
  const goodConfig = () => usageConfig('usage.json');

  it.each([
    {
      name: 'unknown pipeline',
      args: (file: string) => ['reconcile', '--config', file, '--pipeline', 'nope'],
      message: /--pipeline: unknown pipeline 'nope'/,
    },
    {
      name: '--table not in the pipeline',
      args: (file: string) => ['reconcile', '--config', file, '--pipeline', 'p', '--table', 'orders', '--table', 'invoices'],
      message: /--table: invoices not in pipeline p/,
    },
    {
      name: 'bad chunkSize type',
      args: () => ['reconcile', '--config', usageConfig('bad-chunk.json', (input) => {
        (input.pipelines[0]!.reconcile as Record<string, unknown>).chunkSize = 'fifty';
      }), '--pipeline', 'p'],
      message: /pipelines\[0\]\.reconcile\.chunkSize: expected a number/,
    },
    {
      name: 'unknown connection',
      args: () => ['reconcile', '--config', usageConfig('bad-target.json', (input) => {
        input.pipelines[0]!.targets = ['replica'];
      }), '--pipeline', 'p'],
      message: /pipelines\[0\]\.targets\[0\]: unknown connection 'replica'/,
    },
    {
      name: 'missing --config and no ROWSYNC_CONFIG',
      args: () => ['reconcile', '--pipeline', 'p'],
      message: /--config: no config file given.*ROWSYNC_CONFIG/,
    },
    {
      name: 'missing --pipeline',
      args: (file: string) => ['reconcile', '--config', file],
      message: /--pipeline/,
    },
    {
      name: '--fail-on-diff with --no-wait',
      args: (file: string) => ['reconcile', '--config', file, '--pipeline', 'p', '--fail-on-diff', '--no-wait'],
      message: /--fail-on-diff: needs the run to finish here \(drop --no-wait\)/,
    },
    {
      name: 'a negative --workers',
      args: (file: string) => ['reconcile', '--config', file, '--pipeline', 'p', '--workers', '-1'],
      message: /--workers/,
    },
  ])('$name', async ({ args, message }) => {
    const before = await fixture.target.checksumRange(fixture.tables.orders.target, {});
    const result = await runCli(args(goodConfig()));
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stdout).toBe('');
    expect(await scanKeys(fixture.runtime, `${usagePrefix()}*`)).toEqual([]);
    expect(await fixture.target.checksumRange(fixture.tables.orders.target, {})).toEqual(before);
  });

  it('ROWSYNC_CONFIG stands in for --config', async () => {
    const result = await runCli(['reconcile', '--pipeline', 'nope'], { env: { ROWSYNC_CONFIG: goodConfig() } });
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toMatch(/unknown pipeline 'nope' \(configured: p\)/);
  });

  it('--version prints the version of package.json and exits 0', async () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const result = await runCli([flag]);
      expect(result.code, describeResult(result)).toBe(0);
      expect(result.stdout.trim()).toBe(manifest.version);
    }
  });

  it('never prints a connection password', async () => {
    const password = 'Sup3r-S3cret-pw-7731';
    const file = fixture.writeConfig('secret.json', (input) => ({
      ...input,
      redis: { ...(input.redis as object), prefix: `${fixture.prefix}-secret` },
      // Port 1 is closed: the table job fails to connect and the run is held by a failed job.
      connections: { ...(input.connections as object), src: `mysql://rowsync:${password}@127.0.0.1:1/nowhere` },
      pipelines: [{ ...input.pipelines[0], reconcile: { attempts: 1, backoffMs: 10 } }],
    }));
    const result = await runCli(['reconcile', '--config', file, '--pipeline', 'p', '--json'], { env: { ROWSYNC_LOG_LEVEL: 'debug' } });
    expect(result.code, describeResult(result)).toBe(1);
    expect(result.stderr).toMatch(/connection refused/i);
    expect(result.stderr).toMatch(/rowsync retry --config \S+ --run p\./);
    expect(`${result.stdout}\n${result.stderr}`).not.toContain(password);
    const config = await runCli(['status', '--config', file]);
    expect(`${config.stdout}\n${config.stderr}`).not.toContain(password);
  });
});

describe('rowsync reconcile --workers 0 --no-wait, then a rowsync worker process', () => {
  it('enqueues, the worker processes the run, status shows it, SIGTERM stops the worker with exit 0', async () => {
    await injectDrift(fixture.target, fixture.tables);
    const enqueued = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--workers', '0', '--no-wait', '--json']);
    expect(enqueued.code, describeResult(enqueued)).toBe(0);
    const { runId, status } = parseJsonOutput<{ runId: string; status: string }>(enqueued);
    expect(status).toBe('waiting');

    // Nothing processes it yet: it is still waiting a moment later.
    const waiting = await cliStatus(fixture.configFile);
    expect(waiting.runs.find((run) => run.runId === runId)?.state).toBe('waiting');
    expect(waiting.workers).toBe(0);

    const worker = startCli(['worker', '--config', fixture.configFile], { env: { ROWSYNC_LOG_LEVEL: 'info', ROWSYNC_LOG_FORMAT: 'json' } });
    const done = await waitForStatus(fixture.configFile, (current) => current.runs.some((run) => run.runId === runId && run.state === 'completed'));
    const run = done.runs.find((entry) => entry.runId === runId)!;
    expect(run).toMatchObject({ pipeline: 'p', dryRun: false, tables: 2 });
    expect(run.progress).toMatchObject({ tablesPlanned: 2, tablesDone: 2, rowsCompared: ORDER_COUNT + 800 });
    expect(done.workers).toBeGreaterThanOrEqual(1);
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.lines)).toEqual([]);

    // The worker's log has one line for the finished run, with its counts.
    const finishedLine = await worker.waitForOutput(/^.*"msg":"run finished".*$/m);
    expect(JSON.parse(finishedLine[0])).toMatchObject({
      level: 'info', runId, pipeline: 'p', status: 'completed', tables: 2, sourceRows: ORDER_COUNT + 800,
      missing: DRIFT.missing.length + 1, extra: DRIFT.extra.length + 1, changed: DRIFT.changed.length + 1,
    });

    const stopped = await worker.stop('SIGTERM');
    expect(stopped.code, describeResult(stopped)).toBe(0);
  });
});

describe('rowsync reconcile --workers 0 while no worker is connected', () => {
  it('says so, prints progress lines before anything is planned, and finishes once a worker comes', async () => {
    const reconcile = startCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--dry-run', '--workers', '0', '--json'], { timeoutMs: 90_000 });
    await reconcile.waitForOutput(/^no rowsync worker is connected \(Redis prefix [^)]+\): the run waits until one is; start one with: rowsync worker --config \S+$/m);
    // Not a terminal: a line every 10 s, the first one while no chunk is planned yet.
    await reconcile.waitForOutput(/^reconcile: no chunk planned yet, chunks 0\/0, tables 0\/0/m, 20_000);
    const worker = startCli(['worker', '--config', fixture.configFile]);
    const result = await reconcile.exited;
    expect(result.code, describeResult(result)).toBe(0);
    expect(parseJsonOutput<RunReport>(result).status).toBe('completed');
    expect((await worker.stop('SIGTERM')).code).toBe(0);
  });
});

describe('rowsync board', () => {
  it('refuses a non-loopback address without basic auth credentials', async () => {
    const result = await runCli(['board', '--config', fixture.configFile, '--host', '0.0.0.0', '--port', '0']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toMatch(/--host: refusing .*0\.0\.0\.0.*ROWSYNC_BOARD_USER.*ROWSYNC_BOARD_PASSWORD/);
  });

  it('with credentials: 401 without auth, the rowsync queues with auth; SIGTERM exits 0', async () => {
    const board = startCli(['board', '--config', fixture.configFile, '--host', '0.0.0.0', '--port', '0'], {
      env: { ROWSYNC_BOARD_USER: 'ops', ROWSYNC_BOARD_PASSWORD: 'board-pw-123' },
    });
    const [, port] = await board.waitForOutput(/Bull Board on http:\/\/0\.0\.0\.0:(\d+)\//);
    const url = `http://127.0.0.1:${port}/api/queues`;
    expect((await fetch(url)).status).toBe(401);
    const wrong = await fetch(url, { headers: { authorization: `Basic ${Buffer.from('ops:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    const response = await fetch(url, { headers: { authorization: `Basic ${Buffer.from('ops:board-pw-123').toString('base64')}` } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { queues: { name: string }[] };
    expect(body.queues.map((queue) => queue.name).sort()).toEqual(
      ['apply-0', 'apply-1', 'apply-2', 'apply-3', 'cdc-batch', 'cdc-dead-letter', 'reconcile-chunk', 'reconcile-run', 'reconcile-table'],
    );
    const stopped = await board.stop('SIGTERM');
    expect(stopped.code, describeResult(stopped)).toBe(0);
    expect(`${stopped.stdout}${stopped.stderr}`).not.toContain('board-pw-123');
  });
});
