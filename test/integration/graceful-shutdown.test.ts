/**
 * SIGTERM on real `rowsync` processes (MariaDB -> PostgreSQL): a worker whose jobs cannot finish
 * hands them back to the queue when `workers.shutdownTimeoutMs` passes and exits 0 (another worker
 * then completes the run with exact counts); a second signal exits at once (130); a CDC reader
 * gives up its leader lock as it stops, so a standby need not wait for the lock to expire.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/reconcile/report.js';
import { cdcLeaderKey } from '../../workers/cdc-readers.js';
import {
  buildCli, createCliFixture, describeResult, killLeftoverProcesses, parseJsonOutput, scanKeys, sleep, startCli,
  type CliFixture, type CliProcess,
} from '../support/cli.js';
import { DRIFT, ORDER_COUNT, expectEqualTables } from '../support/orders-fixture.js';
import { testServers } from '../support/servers.js';

/** Long enough that only a hand-back (not lock expiry plus a stalled check) can free a job in this test. */
const LOCK_DURATION_MS = 60_000;

beforeAll(async () => {
  await buildCli();
});

afterAll(async () => {
  await killLeftoverProcesses();
});

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('SIGTERM of a worker whose jobs cannot finish', () => {
  let fixture: CliFixture;
  let locker: pg.Client;
  let locked = false;

  beforeAll(async () => {
    fixture = await createCliFixture({
      tag: 'shutdown_mypo',
      sourceEngine: 'mysql',
      targetEngine: 'postgres',
      tables: ['orders'],
      reconcile: { chunkSize: 100 },
      workers: { lockDurationMs: LOCK_DURATION_MS, stalledIntervalMs: 30_000, shutdownTimeoutMs: 1500 },
    });
    locker = new pg.Client({ connectionString: testServers().postgresUrl });
    await locker.connect();
  });

  afterAll(async () => {
    if (locked) await locker.query('ROLLBACK').catch(() => undefined);
    await locker?.end();
    await fixture?.close();
  });

  /** Every chunk's target checksum waits on an ACCESS EXCLUSIVE lock: chunk jobs stay active. */
  async function lockTarget(): Promise<void> {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE "shutdown_mypo_dst".orders IN ACCESS EXCLUSIVE MODE');
    locked = true;
  }

  async function unlockTarget(): Promise<void> {
    await locker.query('COMMIT');
    locked = false;
  }

  async function workerWithActiveChunks(): Promise<CliProcess> {
    const worker = startCli(['worker', '--config', fixture.configFile, '--concurrency', '2'], { env: { ROWSYNC_LOG_LEVEL: 'info' } });
    await worker.waitForOutput(/worker ready/);
    await waitFor('two active chunk jobs', async () => (await fixture.runtime.queues.chunk.getActiveCount()) >= 2 || undefined);
    return worker;
  }

  it('hands the active jobs back when the bound passes, exits 0, and another worker completes the run', async () => {
    await lockTarget();
    const runId = 'p.graceful';
    const reconcile = startCli(
      ['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--workers', '0', '--run-id', runId, '--json'],
      { timeoutMs: 90_000 },
    );
    const worker = await workerWithActiveChunks();

    const stopped = await worker.stop('SIGTERM');
    expect(stopped.code, describeResult(stopped)).toBe(0);
    // The chunks could not have finished (the lock is still held), and their locks last a minute:
    // they are waiting again only because the worker handed them back.
    expect(locked).toBe(true);
    expect(await fixture.runtime.queues.chunk.getActiveCount()).toBe(0);
    expect(await fixture.runtime.queues.chunk.getWaitingCount()).toBeGreaterThanOrEqual(2);
    expect(stopped.stderr).toMatch(/handed back/);

    await unlockTarget();
    const second = startCli(['worker', '--config', fixture.configFile, '--concurrency', '2']);
    const result = await reconcile.exited;
    expect(result.code, describeResult(result)).toBe(0);
    const report = parseJsonOutput<RunReport>(result);
    expect(report.tables.find((entry) => entry.table === 'orders')).toMatchObject({
      sourceRows: ORDER_COUNT, targetRows: ORDER_COUNT,
      missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length,
      inserted: DRIFT.missing.length, updated: DRIFT.changed.length, deleted: DRIFT.extra.length, errors: [],
    });
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);
    const secondStopped = await second.stop('SIGTERM');
    expect(secondStopped.code, describeResult(secondStopped)).toBe(0);
    // Its jobs all finished: nothing was handed back, and no key lease is left behind.
    expect(secondStopped.stderr).not.toMatch(/handed back/);
    expect(await scanKeys(fixture.runtime, `${fixture.prefix}:key-lease:*`)).toEqual([]);
  });

  it('a second signal while stopping exits at once with 130', async () => {
    const patient = fixture.writeConfig('patient.json', (input) => ({
      ...input, workers: { ...(input.workers as object), shutdownTimeoutMs: 600_000 },
    }));
    await lockTarget();
    try {
      const reconcile = startCli(['reconcile', '--config', patient, '--pipeline', 'p', '--workers', '0', '--run-id', 'p.twice', '--no-wait']);
      expect((await reconcile.exited).code).toBe(0);
      const worker = startCli(['worker', '--config', patient, '--concurrency', '2'], { env: { ROWSYNC_LOG_LEVEL: 'info' } });
      // Signals before the handlers are installed would simply kill it.
      await worker.waitForOutput(/worker ready/);
      await waitFor('two active chunk jobs', async () => (await fixture.runtime.queues.chunk.getActiveCount()) >= 2 || undefined);
      worker.child.kill('SIGTERM');
      await waitFor('the stopping line', async () => /stopping/.test(worker.stderr) || undefined);
      worker.child.kill('SIGTERM');
      const result = await worker.exited;
      // Ten minutes of bound and a held lock: only the second signal can have ended it.
      expect(result.code, describeResult(result)).toBe(130);
      expect(locked).toBe(true);
    } finally {
      await unlockTarget();
    }
  });
});

describe('SIGTERM of a CDC reader', () => {
  let fixture: CliFixture;

  beforeAll(async () => {
    fixture = await createCliFixture({ tag: 'shutdown_cdc', sourceEngine: 'mysql', targetEngine: 'postgres', tables: ['orders'] });
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it('releases its leader lock as it stops', async () => {
    const configFile = fixture.writeConfig('cdc.json', (input) => ({
      ...input,
      pipelines: input.pipelines.map((pipeline) => ({ ...pipeline, cdc: { initialReconcile: false } })),
    }));
    const leaderKey = cdcLeaderKey(fixture.prefix, 'p');
    const reader = startCli(['cdc', '--config', configFile]);
    await waitFor('the reader to take its lock', async () => (await fixture.runtime.redis.exists(leaderKey)) === 1 || undefined);
    const stopped = await reader.stop('SIGTERM');
    expect(stopped.code, describeResult(stopped)).toBe(0);
    // Gone at once, not after the lock's time to live.
    expect(await fixture.runtime.redis.exists(leaderKey)).toBe(0);
  });
});
