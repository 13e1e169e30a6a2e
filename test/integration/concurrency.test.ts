/**
 * `rowsync concurrency show|set|reset`: an override set through the real CLI reaches running
 * workers of two runtimes (two machines) without a restart, and shows in what they do: chunk jobs
 * held by a lock on the target table stay one active per worker while the concurrency is 1, and
 * three per worker become active after `set chunk 3`, while the first ones are still blocked.
 * After `reset` the run completes with exact counts. Bad kinds and numbers exit 2 naming the
 * argument, and write nothing.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueRun } from '../../jobs/reconcile-run.job.js';
import { Runtime } from '../../jobs/runtime.js';
import { QUEUE_NAMES } from '../../jobs/queues.js';
import { watchRun } from '../../src/cli/run-monitor.js';
import { createLogger } from '../../src/logging/logger.js';
import { startWorkers, type RunningWorkers } from '../../workers/start-workers.js';
import { buildCli, createCliFixture, describeResult, parseJsonOutput, runCli, type CliFixture } from '../support/cli.js';
import { DRIFT, expectEqualTables } from '../support/orders-fixture.js';
import { testServers } from '../support/servers.js';

interface ShownKind {
  readonly kind: string;
  readonly config: number;
  readonly override: number | null;
  readonly effective: number;
}

/** Polls `check` until it returns true; fails naming `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('rowsync concurrency', () => {
  let fixture: CliFixture;
  let secondMachine: Runtime;
  const running: RunningWorkers[] = [];
  const cli = (...args: string[]) => runCli(['concurrency', ...args, '--config', fixture.configFile]);
  const overridesKey = () => `${fixture.prefix}:concurrency`;

  beforeAll(async () => {
    await buildCli();
    fixture = await createCliFixture({
      tag: 'concur',
      sourceEngine: 'mysql',
      targetEngine: 'postgres',
      tables: ['orders'],
      reconcile: { chunkSize: 300 },
      workers: { concurrency: { table: 1, chunk: 1, apply: 2, cdc: 1 } },
    });
    secondMachine = new Runtime(fixture.runtime.config, createLogger({ level: 'silent' }));
  });

  afterAll(async () => {
    for (const workers of running) await workers.close();
    await secondMachine?.close();
    await fixture?.close();
  });

  it('rejects an unknown kind or a bad number, naming the argument, and writes nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['set', 'chunks', '3'], /<kind>: unknown job kind 'chunks' \(kinds: table, chunk, apply, cdc\)/],
      [['set', 'chunk', '0'], /<n>: expected a whole number from 1 to 256, got '0'/],
      [['set', 'chunk', '257'], /<n>: expected a whole number from 1 to 256, got '257'/],
      [['set', 'chunk', '2.5'], /<n>: expected a whole number from 1 to 256, got '2.5'/],
      [['set', 'apply', 'many'], /<n>: expected a whole number from 1 to 256, got 'many'/],
      [['reset', 'lanes'], /<kind>: unknown job kind 'lanes'/],
    ];
    for (const [args, message] of cases) {
      const result = await cli(...args);
      expect(result.code, describeResult(result)).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    const missing = await cli('set', 'chunk');
    expect(missing.code, describeResult(missing)).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'n'/);
    expect(await fixture.runtime.redis.exists(overridesKey())).toBe(0);
  });

  it('an override set through the CLI changes the running workers of both machines, in what they do', async () => {
    running.push(await startWorkers(fixture.runtime), await startWorkers(secondMachine));
    const chunkWorkers = running.map((workers) => workers.workers.find((worker) => worker.name === QUEUE_NAMES.chunk)!);
    expect(running.map((workers) => workers.concurrency.current().chunk)).toEqual([1, 1]);

    // Chunk jobs compare the target table: holding it locked keeps them active, and waiting.
    const locker = new pg.Client({ connectionString: testServers().postgresUrl });
    await locker.connect();
    let locked = true;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE concur_dst.orders IN ACCESS EXCLUSIVE MODE');
      const chunkQueue = fixture.runtime.queues.chunk;
      let mostActive = 0;
      const active = async () => {
        const count = await chunkQueue.getActiveCount();
        mostActive = Math.max(mostActive, count);
        return count;
      };
      const runId = `concur-${randomBytes(3).toString('hex')}`;
      await enqueueRun(fixture.runtime, { runId, pipeline: 'p', dryRun: false, requestedAt: Date.now() });
      // 3000 orders in chunks of 300: one active per machine, the rest waiting behind them.
      await waitFor('two active chunk jobs and six waiting', async () => (await active()) === 2 && (await chunkQueue.getWaitingCount()) >= 6);
      // Observed over a while: never more than one per machine.
      const observeUntil = Date.now() + 1500;
      await waitFor('the observation window', async () => (await active()) >= 0 && Date.now() > observeUntil);
      expect(mostActive).toBe(2);

      const set = await cli('set', 'chunk', '3');
      expect(set.code, describeResult(set)).toBe(0);
      expect(set.stdout).toMatch(/chunk: 3 jobs at once per worker process, cluster-wide \(was 1, the config's\)/);
      await waitFor('both machines at chunk concurrency 3', () =>
        running.every((workers) => workers.concurrency.current().chunk === 3) && chunkWorkers.every((worker) => worker.concurrency === 3));
      // The first two are still blocked: the raise does not wait for them to finish.
      await waitFor('six active chunk jobs', async () => (await active()) === 6);

      const shown = await cli('show', '--json');
      expect(shown.code, describeResult(shown)).toBe(0);
      const kinds = parseJsonOutput<{ kinds: ShownKind[] }>(shown).kinds;
      expect(kinds).toEqual([
        { kind: 'table', config: 1, override: null, effective: 1 },
        { kind: 'chunk', config: 1, override: 3, effective: 3 },
        { kind: 'apply', config: 2, override: null, effective: 2 },
        { kind: 'cdc', config: 1, override: null, effective: 1 },
      ]);
      const table = await cli('show');
      expect(table.stdout).toMatch(/^chunk\s+1\s+3\s+3$/m);
      expect(table.stdout).toMatch(/^apply\s+2\s+-\s+2$/m);

      const apply = await cli('set', 'apply', '5');
      expect(apply.code, describeResult(apply)).toBe(0);
      await waitFor('apply concurrency 5 on both machines', () => running.every((workers) => workers.concurrency.current().apply === 5));

      const reset = await cli('reset', 'chunk');
      expect(reset.code, describeResult(reset)).toBe(0);
      expect(reset.stdout).toMatch(/chunk: back to the config's 1/);
      await waitFor('both machines back at chunk concurrency 1', () =>
        running.every((workers) => workers.concurrency.current().chunk === 1) && chunkWorkers.every((worker) => worker.concurrency === 1));
      expect(running.map((workers) => workers.concurrency.current().apply)).toEqual([5, 5]);

      await locker.query('COMMIT');
      locked = false;
      const outcome = await watchRun(fixture.runtime, runId, { intervalMs: 100 });
      if (outcome.kind !== 'completed') throw new Error(`run ended ${JSON.stringify(outcome)}`);
      expect(outcome.report.tables[0]).toMatchObject({
        table: 'orders', missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length,
        inserted: DRIFT.missing.length, updated: DRIFT.changed.length, deleted: DRIFT.extra.length, errors: [],
      });
      expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);
      // Back at one per machine once the blocked jobs drained: never more than six at once.
      expect(mostActive).toBe(6);
    } finally {
      if (locked) await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }

    const resetAll = await cli('reset');
    expect(resetAll.code, describeResult(resetAll)).toBe(0);
    expect(await fixture.runtime.redis.exists(overridesKey())).toBe(0);
    await waitFor('apply back to the config on both machines', () => running.every((workers) => workers.concurrency.current().apply === 2));
  });
});
