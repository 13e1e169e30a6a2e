/**
 * The board's overview page, served by a `rowsync board` process on real servers and read in headless
 * Chromium (Debian's, driven by playwright-core): a real reconcile with the orders drift under
 * `conflict: manual`, a real dead letter (a CDC batch whose table the target lacks, through the real
 * batch and dead-letter workers), a run left waiting, and lag samples written by the real writer.
 * The page must show those figures, the chart must have one point per sample, the links must lead to
 * the Bull Board queue pages (one followed in the browser), and the board's basic auth must guard the
 * page and its JSON. Also the lag history itself: throttled sampling and the one-hour trim.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cdcBatchPayload, cdcJobId } from '../../jobs/cdc-batch.job.js';
import { LAG_HISTORY_MS, LagSampler, cdcLagHistoryKey, readLagHistory, recordLagSamples } from '../../jobs/cdc-lag-history.js';
import { JOB_NAMES } from '../../jobs/queues.js';
import { pollWithBackoff } from '../../src/coordination/poll.js';
import { createRedisClient } from '../../src/coordination/redis-client.js';
import { conflictStats } from '../../src/dialect/conflict-log.js';
import type { RunReport } from '../../src/reconcile/report.js';
import type { OverviewData } from '../../workers/overview/overview-data.js';
import { startWorkers } from '../../workers/start-workers.js';
import {
  buildCli, createCliFixture, describeResult, killLeftoverProcesses, parseJsonOutput, runCli, startCli, type CliFixture, type CliProcess,
} from '../support/cli.js';
import { DRIFT, ORDER_COUNT, orderRow } from '../support/orders-fixture.js';
import { deleteRedisPrefix } from '../support/scratch.js';
import { testServers } from '../support/servers.js';

const CHROMIUM = process.env.ROWSYNC_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const IN_CI = process.env.CI === 'true';
const MISSING_CHROMIUM =
  `headless Chromium not found at ${CHROMIUM}: run \`bash scripts/install-test-tools.sh\` as root ` +
  '(installs Debian\'s chromium package), or point ROWSYNC_CHROMIUM at a Chromium binary';
if (!HAVE_CHROMIUM && !IN_CI) console.warn(`board-overview.test.ts skipped: ${MISSING_CHROMIUM}`);

const USER = 'ops';
const PASSWORD = 'overview-pw-517';
const authorization = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const LAG_SAMPLES = [4_000, 12_500, 2_000, 30_000, 800];

/** Report totals over all tables, as the page shows them. */
function totals(report: RunReport) {
  const sum = (field: 'sourceRows' | 'targetRows' | 'missing' | 'extra' | 'changed' | 'inserted' | 'updated' | 'deleted' | 'conflicts') =>
    report.tables.reduce((total, table) => total + table[field], 0);
  return {
    sourceRows: sum('sourceRows'), targetRows: sum('targetRows'), missing: sum('missing'), extra: sum('extra'), changed: sum('changed'),
    inserted: sum('inserted'), updated: sum('updated'), deleted: sum('deleted'), conflicts: sum('conflicts'),
  };
}

const en = (value: number) => value.toLocaleString('en-US');

// Outside CI a machine without Chromium skips (with the warning above); under CI=true it fails.
describe.skipIf(!HAVE_CHROMIUM && !IN_CI)('rowsync board: the overview page', () => {
  let fixture: CliFixture;
  let configFile: string;
  let report: RunReport;
  let waitingRunId: string;
  let deadLetterId: string;
  let board: CliProcess;
  let overviewUrl: string;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    if (!HAVE_CHROMIUM) throw new Error(MISSING_CHROMIUM);
    await buildCli();
    fixture = await createCliFixture({ tag: 'board_ov', sourceEngine: 'mysql', targetEngine: 'postgres' });
    // conflict: manual records each changed row as a conflict instead of overwriting it; cdc: {}
    // makes the pipeline's stream appear in the lag chart (no reader needs to run for that).
    configFile = fixture.writeConfig('overview.json', (input) => ({
      ...input,
      pipelines: [{ ...input.pipelines[0], conflict: 'manual', cdc: {} }],
    }));

    // One more row only the target has, so that missing, extra and changed all differ.
    await fixture.target.applyChanges(fixture.tables.orders.target, { upserts: [orderRow(ORDER_COUNT + 100)], deletes: [] });
    const reconciled = await runCli(['reconcile', '--config', configFile, '--pipeline', 'p', '--json']);
    expect(reconciled.code, describeResult(reconciled)).toBe(0);
    report = parseJsonOutput<RunReport>(reconciled);

    // A dead letter the way production makes one: a CDC batch exhausts its attempts in the batch
    // worker, which files it in the dead-letter queue, whose worker parks it in the failed set.
    const workers = await startWorkers(fixture.runtime);
    try {
      const payload = cdcBatchPayload('p', 'src', {
        target: 'dst', epoch: 'e1', seq: 1, part: 0, position: 'binlog.000001:4', committedAt: Date.now(),
        keys: new Map([['no_such_table', [[1], [2], [3]]]]),
      });
      await fixture.runtime.queues.cdc.add(JOB_NAMES.cdc, payload, { jobId: cdcJobId('p', 'dst', 'e1', 1, 0), attempts: 1 });
      const parked = await pollWithBackoff(
        async () => (await fixture.runtime.queues.deadLetter.getJobs(['failed']))[0],
        { firstDelayMs: 50, maxDelayMs: 500, maxWaitMs: 30_000 },
      );
      if (!parked) throw new Error('the poison batch never reached the dead-letter queue');
      deadLetterId = parked.id!;
    } finally {
      await workers.close();
    }

    // A run nobody processes (no worker runs now): a current run.
    const enqueued = await runCli(['reconcile', '--config', configFile, '--pipeline', 'p', '--workers', '0', '--no-wait', '--json']);
    expect(enqueued.code, describeResult(enqueued)).toBe(0);
    waitingRunId = parseJsonOutput<{ runId: string }>(enqueued).runId;

    const now = Date.now();
    for (const [index, lagMs] of LAG_SAMPLES.entries()) {
      await recordLagSamples(fixture.runtime.redis, fixture.prefix, 'p', [{ target: 'dst', lagMs }], now - (LAG_SAMPLES.length - index) * 60_000);
    }

    board = startCli(['board', '--config', configFile, '--port', '0'], { env: { ROWSYNC_BOARD_USER: USER, ROWSYNC_BOARD_PASSWORD: PASSWORD } });
    [, overviewUrl] = (await board.waitForOutput(/overview on (http:\/\/\S+)\n/)) as unknown as [string, string];
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD } });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    if (board) {
      const stopped = await board.stop('SIGTERM');
      expect(stopped.code, describeResult(stopped)).toBe(0);
    }
    await killLeftoverProcesses();
    await fixture?.close();
  });

  it('is guarded by the board\'s basic auth, page and JSON alike', async () => {
    for (const url of [overviewUrl, `${overviewUrl}.json`]) {
      expect((await fetch(url)).status).toBe(401);
      const wrong = await fetch(url, { headers: { authorization: `Basic ${Buffer.from(`${USER}:nope`).toString('base64')}` } });
      expect(wrong.status).toBe(401);
      expect((await fetch(url, { headers: { authorization } })).status).toBe(200);
    }
    const data = (await (await fetch(`${overviewUrl}.json`, { headers: { authorization } })).json()) as OverviewData;
    const run = data.runs.recent.find((entry) => entry.runId === report.runId);
    expect(run?.totals).toMatchObject(totals(report));
    expect(data.runs.current.map((entry) => entry.runId)).toEqual([waitingRunId]);
    expect(data.deadLetters).toMatchObject({ total: 1, parked: 1, retrying: 0, perTarget: [{ pipeline: 'p', target: 'dst', count: 1 }] });
    expect(data.cdc.lag.series).toEqual([{ stream: 'p', pipeline: 'p', target: 'dst', samples: expect.any(Array) }]);
    expect(data.cdc.lag.series[0]!.samples.map((sample) => sample.lagMs)).toEqual(LAG_SAMPLES);
  });

  it('renders the real run with its report counts, the pipelines, the lag chart, dead letters and conflicts', async () => {
    const page = await context.newPage();
    try {
      const response = await page.goto(overviewUrl);
      expect(response?.status()).toBe(200);
      await expect.poll(() => page.title()).toBe('rowsync overview');

      // The drift the fixture injected (orders 3 missing / 3 extra / 5 changed, order_lines one of
      // each) and the extra order added above.
      const expected = totals(report);
      expect(expected).toMatchObject({
        sourceRows: ORDER_COUNT + 800, missing: DRIFT.missing.length + 1, extra: DRIFT.extra.length + 2, changed: DRIFT.changed.length + 1,
      });
      expect(expected.conflicts).toBeGreaterThan(0);
      const run = page.locator(`#runs-recent tr[data-run="${report.runId}"]`);
      await expect.poll(() => run.count()).toBe(1);
      for (const [field, value] of Object.entries(expected)) {
        expect(await run.locator(`[data-field="${field}"]`).innerText(), field).toBe(en(value));
      }
      expect(await run.locator('[data-field="state"]').innerText()).toContain('completed');
      expect(await run.locator('[data-field="rowsCompared"]').innerText()).toBe(en(ORDER_COUNT + 800));

      const waiting = page.locator(`#runs-current tr[data-run="${waitingRunId}"]`);
      expect(await waiting.locator('[data-field="state"]').innerText()).toContain('waiting');
      expect(await waiting.locator('[data-field="missing"]').innerText()).toBe('–');

      const pipeline = page.locator('#pipelines tr[data-pipeline="p"]');
      expect(await pipeline.locator('[data-field="route"]').innerText()).toBe('src → dst');
      expect(await pipeline.locator('[data-field="tables"]').innerText()).toBe('orders, order_lines');
      expect(await pipeline.locator('[data-field="cdc"]').innerText()).toBe('binlog');
      expect(await pipeline.locator('[data-field="last-run"] a').innerText()).toBe(waitingRunId);

      // One point per sample, inside the plot, higher lag drawn higher.
      const series = page.locator('#cdc-lag-chart g.lag-series[data-stream="p"][data-target="dst"]');
      expect(await series.getAttribute('data-points')).toBe(String(LAG_SAMPLES.length));
      const points = series.locator('circle.lag-point');
      expect(await points.count()).toBe(LAG_SAMPLES.length);
      const ys = await points.evaluateAll((circles) => circles.map((circle) => Number(circle.getAttribute('cy'))));
      const xs = await points.evaluateAll((circles) => circles.map((circle) => Number(circle.getAttribute('cx'))));
      expect(xs).toEqual([...xs].sort((a, b) => a - b));
      expect(ys.indexOf(Math.min(...ys))).toBe(LAG_SAMPLES.indexOf(Math.max(...LAG_SAMPLES)));
      expect(await series.locator('polyline').count()).toBe(1);
      expect(await page.locator('#cdc-lag-chart').boundingBox()).toMatchObject({ width: expect.any(Number) });

      // The real dead letter, counted and listed with its keys and error.
      expect(await page.locator('[data-field="dead-letters-total"]').innerText()).toBe('1');
      expect(await page.locator('[data-field="dead-letters-parked"]').innerText()).toBe('1');
      const letter = page.locator(`#dead-letters-recent tr[data-dead-letter="${deadLetterId}"]`);
      expect(await letter.locator('[data-field="keys"]').innerText()).toBe('3');
      expect(await letter.locator('[data-field="error"]').innerText()).toContain('no_such_table');

      // Conflicts as the target's log holds them (what `rowsync status` reads).
      const stats = await conflictStats(fixture.target, 'p');
      expect(stats.total).toBe(expected.conflicts);
      expect(await page.locator('[data-field="conflicts-total"]').innerText()).toBe(en(stats.total));
      expect(await page.locator('[data-field="conflicts-pending"]').innerText()).toBe(en(stats.pending));
      const conflictRow = page.locator('#conflicts-per-target tr[data-pipeline="p"][data-target="dst"]');
      expect(await conflictRow.locator('[data-field="total"]').innerText()).toBe(en(stats.total));
      expect(await conflictRow.locator('[data-field="byKind"]').innerText()).toContain('update-update');
    } finally {
      await page.close();
    }
  });

  it('links to the Bull Board page of the queue that holds the jobs; Bull Board renders it and links back', async () => {
    const page = await context.newPage();
    try {
      await page.goto(overviewUrl);
      const href = (selector: string) => page.locator(selector).first().getAttribute('href');
      expect(await href('#runs .board-link')).toBe('queue/reconcile-run');
      expect(await href('#pipelines .board-link')).toBe('queue/reconcile-run');
      expect(await href(`#runs-recent tr[data-run="${report.runId}"] [data-field="run"] a`)).toBe(`queue/reconcile-run/${encodeURIComponent(report.runId)}`);
      expect(await href('#cdc .board-link')).toBe('queue/cdc-batch');
      expect(await href('#dead-letters .board-link')).toBe('queue/cdc-dead-letter?status=failed');
      expect(await href(`#dead-letters-recent [data-field="id"] a`)).toBe(`queue/cdc-dead-letter/${encodeURIComponent(deadLetterId)}`);
      expect(await page.locator('#conflicts .board-links a').evaluateAll((links) => links.map((link) => link.getAttribute('href')))).toEqual(
        ['queue/reconcile-chunk', 'queue/apply-0', 'queue/apply-1', 'queue/apply-2', 'queue/apply-3', 'queue/cdc-batch'],
      );

      // Followed in the browser: Bull Board's own UI shows the dead-letter queue with the parked job.
      await page.locator('#dead-letters .board-link').click();
      await page.waitForURL(/\/queue\/cdc-dead-letter\?status=failed$/);
      await page.getByText(deadLetterId, { exact: false }).first().waitFor({ timeout: 20_000 });
      expect(await page.locator('body').innerText()).toContain('cdc-dead-letter');

      // And back: Bull Board's header menu links to the overview.
      await page.locator('ul[class^="actions"] > li').last().click();
      await page.getByText('rowsync overview', { exact: true }).click();
      await page.waitForURL(/\/overview$/);
      expect(await page.locator('h1').innerText()).toBe('rowsync overview');
    } finally {
      await page.close();
    }
  });
});

describe('the CDC lag history', () => {
  const prefix = `t-board_lag-${randomBytes(3).toString('hex')}`;
  const redis = createRedisClient({ url: testServers().redisUrl }, { maxRetriesPerRequest: 3 });

  afterAll(async () => {
    await deleteRedisPrefix(prefix);
    await redis.quit();
  });

  it('samples a streaming reader at most once per interval, and keeps one hour', async () => {
    const sampler = new LagSampler(redis, prefix, 10_000);
    const now = Date.now();
    const status = (state: string, offsetMs: number, lagMs: number) => ({
      stream: 's', state, updatedAt: now - 60_000 + offsetMs, targets: [{ target: 'a', lagMs }, { target: 'b', lagMs: lagMs * 2 }],
    });
    await sampler.offer(status('streaming', 0, 100));
    await sampler.offer(status('streaming', 4_000, 200)); // too soon
    await sampler.offer(status('standby', 12_000, 300)); // not streaming: no measurement
    await sampler.offer(status('streaming', 12_000, 400));
    await sampler.offer(status('streaming', 21_999, 500)); // too soon after the last sample
    await sampler.offer(status('streaming', 22_000, 600));
    expect((await readLagHistory(redis, prefix, 's', 'a', now)).map((sample) => sample.lagMs)).toEqual([100, 400, 600]);
    expect((await readLagHistory(redis, prefix, 's', 'b', now)).map((sample) => sample.lagMs)).toEqual([200, 800, 1200]);

    // A sample from more than an hour before the newest is dropped on the next write.
    await recordLagSamples(redis, prefix, 't', [{ target: 'a', lagMs: 1 }], now - LAG_HISTORY_MS - 5_000);
    await recordLagSamples(redis, prefix, 't', [{ target: 'a', lagMs: 2 }], now);
    expect(await redis.zcard(cdcLagHistoryKey(prefix, 't', 'a'))).toBe(1);
    expect(await readLagHistory(redis, prefix, 't', 'a', now)).toEqual([{ at: now, lagMs: 2 }]);
    expect(await redis.pttl(cdcLagHistoryKey(prefix, 't', 'a'))).toBeGreaterThan(LAG_HISTORY_MS - 60_000);
  });
});
