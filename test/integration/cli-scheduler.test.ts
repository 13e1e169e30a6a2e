/**
 * Two `rowsync scheduler` processes on one schedule (every 2 s) start each tick's run exactly once:
 * the run id is derived from the tick, so the second scheduler's enqueue of the same tick is a no-op,
 * and consecutive ticks are separate runs.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunPayload } from '../../jobs/reconcile-run.job.js';
import { buildCli, createCliFixture, describeResult, killLeftoverProcesses, sleep, startCli, type CliFixture } from '../support/cli.js';

let fixture: CliFixture;

beforeAll(async () => {
  await buildCli();
  fixture = await createCliFixture({
    tag: 'clisched_mypo',
    sourceEngine: 'mysql',
    targetEngine: 'postgres',
    // node-cron's 6-field form: second 0, 2, 4, ...
    reconcile: { schedule: '*/2 * * * * *' },
  });
});

afterAll(async () => {
  await killLeftoverProcesses();
  await fixture?.close();
});

/** `p.20240301T100002Z.scheduled` -> the tick's time in ms. */
function tickOf(runId: string): number {
  const match = /^p\.(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z\.scheduled$/.exec(runId);
  if (!match) throw new Error(`not a scheduled run id: ${runId}`);
  const [, year, month, day, hour, minute, second] = match.map(Number) as number[];
  return Date.UTC(year!, month! - 1, day!, hour!, minute!, second!);
}

interface EnqueueLog {
  readonly runId: string;
}

/** The scheduler's `scheduled run enqueued` / `already enqueued` log lines (pino JSON on stderr). */
function enqueueLogs(stderr: string): EnqueueLog[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; runId?: string })
    .filter((entry) => entry.msg?.startsWith('scheduled run') && entry.runId !== undefined)
    .map((entry) => ({ runId: entry.runId! }));
}

it('two schedulers enqueue one run per tick, every tick; SIGTERM stops both with exit 0', async () => {
  const env = { ROWSYNC_LOG_LEVEL: 'info' };
  const schedulers = [0, 1].map(() => startCli(['scheduler', '--config', fixture.configFile], { env }));
  // Three ticks seen by both schedulers (each logs every tick, added or not), however slow start-up was.
  const deadline = Date.now() + 30_000;
  while (!schedulers.every((scheduler) => enqueueLogs(scheduler.stderr).length >= 3)) {
    if (Date.now() > deadline) throw new Error(`schedulers did not tick:\n${schedulers.map((s) => s.stderr).join('\n')}`);
    await sleep(200);
  }
  const results = await Promise.all(schedulers.map((scheduler) => scheduler.stop('SIGTERM')));
  for (const result of results) expect(result.code, describeResult(result)).toBe(0);

  // No workers ran: every enqueued run is still waiting in the run queue.
  const jobs = (await fixture.runtime.queues.run.getJobs(['waiting', 'active', 'completed', 'failed', 'waiting-children'])).filter(Boolean);
  const ids = jobs.map((job) => job.id!).sort();
  console.log(`scheduled runs with two schedulers: ${ids.join(', ')}`);
  expect(ids.length).toBeGreaterThanOrEqual(3);
  for (const job of jobs) expect(job.data as RunPayload).toMatchObject({ runId: job.id, pipeline: 'p', dryRun: false });

  // Each tick is one run: ticks on even seconds, 2 s apart, none between the first and last missing.
  const ticks = ids.map(tickOf);
  expect(new Set(ticks).size).toBe(ids.length);
  for (const tick of ticks) expect((tick / 1000) % 2).toBe(0);
  for (let index = 1; index < ticks.length; index += 1) expect(ticks[index]! - ticks[index - 1]!).toBe(2000);

  // Both schedulers fired the ticks they shared, and every tick they fired is one of the runs. (Each
  // may log `added` for a shared tick: enqueueRun's existence check races, BullMQ's id check does not.)
  const logs = results.flatMap((result) => enqueueLogs(result.stderr));
  expect([...new Set(logs.map((log) => log.runId))].sort()).toEqual(ids);
  const sharedTicks = ids.filter((id) => logs.filter((log) => log.runId === id).length === 2);
  expect(sharedTicks.length).toBeGreaterThanOrEqual(3);
});
