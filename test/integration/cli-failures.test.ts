/**
 * Failures of `rowsync` processes on real servers (MariaDB -> PostgreSQL): a worker killed with -9
 * in the middle of a run (the other worker takes its chunks over and the run completes), and apply
 * jobs that fail on the target (the run waits; `rowsync retry` or Bull Board's retry completes it).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport, TableReport } from '../../src/reconcile/report.js';
import {
  buildCli, cliStatus, createCliFixture, describeResult, killLeftoverProcesses, parseJsonOutput, runCli, sleep, startCli, waitForStatus,
  type CliFixture,
} from '../support/cli.js';
import { DRIFT, ORDER_COUNT, expectEqualTables, injectDrift } from '../support/orders-fixture.js';
import { testServers } from '../support/servers.js';

const table = (report: RunReport, name: string): TableReport => {
  const found = report.tables.find((entry) => entry.table === name);
  if (!found) throw new Error(`no table ${name} in ${JSON.stringify(report)}`);
  return found;
};

const REPAIRED_ORDERS = {
  missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length,
  inserted: DRIFT.missing.length, updated: DRIFT.changed.length, deleted: DRIFT.extra.length, errors: [],
};

beforeAll(async () => {
  await buildCli();
});

afterAll(async () => {
  await killLeftoverProcesses();
});

describe('kill -9 of a worker mid-run', () => {
  let fixture: CliFixture;

  beforeAll(async () => {
    fixture = await createCliFixture({
      tag: 'clikill_mypo',
      sourceEngine: 'mysql',
      targetEngine: 'postgres',
      tables: ['orders'],
      reconcile: { chunkSize: 50 },
      // The defaults, spelled out: the takeover below depends on them.
      workers: { lockDurationMs: 5000, stalledIntervalMs: 2000 },
    });
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it('the other worker takes over the killed one’s chunks and the run completes with exact counts', async () => {
    // An ACCESS EXCLUSIVE lock on the target table holds every chunk's target checksum: chunk jobs
    // pile up active in both workers, so the kill lands mid-chunk without any timing guess.
    const locker = new pg.Client({ connectionString: testServers().postgresUrl });
    await locker.connect();
    let locked = false;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE "clikill_mypo_dst".orders IN ACCESS EXCLUSIVE MODE');
      locked = true;
      const workers = [0, 1].map(() => startCli(['worker', '--config', fixture.configFile, '--concurrency', '2']));
      const runId = 'p.kill-9';
      const reconcile = startCli(
        ['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--workers', '0', '--run-id', runId, '--json'],
        { timeoutMs: 45_000 },
      );

      // 4 active chunk jobs with 2 per worker: each worker holds 2, the one killed included.
      const deadline = Date.now() + 30_000;
      while ((await fixture.runtime.queues.chunk.getActiveCount()) < 4) {
        if (Date.now() > deadline) throw new Error(`chunk jobs never became active:\n${workers.map((w) => w.stderr).join('\n')}`);
        await sleep(100);
      }
      const killedAt = Date.now();
      workers[0]!.child.kill('SIGKILL');
      expect((await workers[0]!.exited).signal).toBe('SIGKILL');
      await locker.query('COMMIT');
      locked = false;

      const result = await reconcile.exited;
      expect(result.code, describeResult(result)).toBe(0);
      const report = parseJsonOutput<RunReport>(result);
      expect(report.status).toBe('completed');
      // Exact counts: the taken-over chunks are neither lost nor counted twice.
      expect(table(report, 'orders')).toMatchObject({
        sourceRows: ORDER_COUNT, targetRows: ORDER_COUNT, ...REPAIRED_ORDERS,
      });
      expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);

      // The killed worker's two chunks were moved back by the stalled check and run again.
      const chunks = await fixture.runtime.queues.chunk.getCompleted(0, -1);
      const stalled = chunks.filter((job) => job.stalledCounter > 0);
      expect(stalled).toHaveLength(2);
      const takeoverSeconds = (Math.max(...stalled.map((job) => job.processedOn ?? 0)) - killedAt) / 1000;
      console.log(`kill -9 takeover: the stalled chunks restarted ${takeoverSeconds.toFixed(1)} s after the kill (lockDuration 5 s, stalledInterval 2 s)`);

      const stopped = await workers[1]!.stop('SIGTERM');
      expect(stopped.code, describeResult(stopped)).toBe(0);
    } finally {
      if (locked) await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
  });
});

describe('apply jobs failing on the target', () => {
  let fixture: CliFixture;

  const blockWrites = () =>
    fixture.target.execute(
      'CREATE TRIGGER reject_writes BEFORE INSERT OR UPDATE OR DELETE ON orders FOR EACH ROW EXECUTE FUNCTION reject_writes()',
    );
  const allowWrites = () => fixture.target.execute('DROP TRIGGER reject_writes ON orders');

  /** Runs `rowsync reconcile` against the blocked target: exit 1, and the run id from stderr. */
  async function failingRun(): Promise<{ runId: string; stderr: string }> {
    const before = await fixture.target.checksumRange(fixture.tables.orders.target, {});
    const result = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p']);
    expect(result.code, describeResult(result)).toBe(1);
    expect(result.stdout).toBe('');
    const runId = /run (\S+) is waiting for \d+ failed job\(s\)/.exec(result.stderr)?.[1];
    expect(runId, result.stderr).toBeDefined();
    const failedLine = new RegExp(
      `^error: apply batch of \\d+ keys? of orders -> dst \\(queue apply-\\d+, job ${runId!.replace(/\./g, '\\.')}\\.\\S+\\) ` +
        'failed after \\d attempt\\(s\\): .*writes to orders are blocked$',
      'm',
    );
    expect(result.stderr).toMatch(failedLine);
    // Each failure once: the line naming the job, no JSON log of it beside (nor one per attempt).
    const failureLines = result.stderr.split('\n').filter((line) => line.includes('writes to orders are blocked'));
    expect(failureLines.length).toBeGreaterThan(0);
    for (const line of failureLines) expect(line).toMatch(/^error: /);
    expect(result.stderr).toContain('Bull Board');
    expect(result.stderr).toContain(`rowsync retry --config ${fixture.configFile} --run ${runId}`);
    // Every orders write was rejected: the target table is as it was.
    expect(await fixture.target.checksumRange(fixture.tables.orders.target, {})).toEqual(before);
    return { runId: runId!, stderr: result.stderr };
  }

  beforeAll(async () => {
    fixture = await createCliFixture({
      tag: 'clifail_mypo',
      sourceEngine: 'mysql',
      targetEngine: 'postgres',
      reconcile: { attempts: 2, backoffMs: 100 },
    });
    await fixture.target.execute(
      "CREATE FUNCTION reject_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'writes to orders are blocked'; END $$",
    );
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it('reconcile exits 1 naming the failed jobs; rowsync retry --run completes the run', async () => {
    await blockWrites();
    const { runId } = await failingRun();
    await allowWrites();
    // Until it is retried, status shows the run as failed (not waiting for its children forever).
    const failedRun = (await cliStatus(fixture.configFile)).runs.find((run) => run.runId === runId);
    expect(failedRun).toMatchObject({ state: 'failed' });
    expect((failedRun as { error?: string }).error).toMatch(new RegExp(`failed after their attempts .*writes to orders are blocked.*rowsync retry --run ${runId.replace(/\./g, '\\.')}`));

    const result = await runCli(['retry', '--config', fixture.configFile, '--run', runId, '--json']);
    expect(result.code, describeResult(result)).toBe(0);
    expect(result.stderr).toMatch(/retried [1-9]\d* failed job\(s\) of run/);
    const report = parseJsonOutput<RunReport>(result);
    expect(report).toMatchObject({ runId, status: 'completed', dryRun: false });
    expect(table(report, 'orders')).toMatchObject(REPAIRED_ORDERS);
    expect(table(report, 'order_lines')).toMatchObject({ inserted: 1, updated: 1, deleted: 1 });
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.lines)).toEqual([]);
  });

  it('retrying the failed jobs from Bull Board completes the run on a rowsync worker', async () => {
    await injectDrift(fixture.target, fixture.tables);
    await blockWrites();
    const { runId } = await failingRun();
    await allowWrites();

    const worker = startCli(['worker', '--config', fixture.configFile]);
    const board = startCli(['board', '--config', fixture.configFile, '--port', '0']);
    const [, url] = await board.waitForOutput(/Bull Board on (http:\/\/\S+\/)/);
    const listing = (await (await fetch(`${url}api/queues`)).json()) as { queues: { name: string; counts: Record<string, number> }[] };
    const failing = listing.queues.filter((queue) => (queue.counts.failed ?? 0) > 0).map((queue) => queue.name);
    expect(failing.length).toBeGreaterThan(0);
    expect(failing.every((name) => /^apply-\d+$/.test(name))).toBe(true);
    for (const name of failing) {
      const response = await fetch(`${url}api/queues/${encodeURIComponent(name)}/retry/failed`, { method: 'PUT' });
      expect(response.status, `${name}: ${await response.clone().text()}`).toBe(200);
    }

    await waitForStatus(fixture.configFile, (status) => status.runs.some((run) => run.runId === runId && run.state === 'completed'));
    const report = (await fixture.runtime.queues.run.getJob(runId))!.returnvalue as RunReport;
    expect(table(report, 'orders')).toMatchObject(REPAIRED_ORDERS);
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.lines)).toEqual([]);

    for (const process of [worker, board]) {
      const stopped = await process.stop('SIGTERM');
      expect(stopped.code, describeResult(stopped)).toBe(0);
    }
  });
});
