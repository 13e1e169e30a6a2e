/**
 * CDC through the `rowsync` binary, with real processes: `cdc setup`, a reader killed with -9
 * mid-stream and started again loses nothing; two readers never both stream and the standby takes
 * over when the leader dies; a checkpoint the source no longer has (purged binlog, dropped slot) is
 * answered with a reconcile and streaming goes on; `dlq list|retry|purge` work on a poison batch;
 * `status` speaks of all of it. One engine
 * pair per log-based mode: MariaDB binlog -> PostgreSQL, PostgreSQL logical -> MariaDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/dialect/types.js';
import { readCdcStatus } from '../../workers/cdc-readers.js';
import { openSession, random, until, waitForEqual, type Session } from '../support/cdc-fixture.js';
import {
  buildCli, createCliFixture, describeResult, killLeftoverProcesses, parseJsonOutput, runCli, startCli, type CliFixture, type CliProcess,
} from '../support/cli.js';

const CASES: [Engine, Engine][] = [
  ['mysql', 'postgres'],
  ['postgres', 'mysql'],
];

beforeAll(async () => {
  await buildCli();
});

describe.each(CASES)('rowsync cdc %s -> %s', (sourceEngine, targetEngine) => {
  let fixture: CliFixture;
  let configFile: string;
  let session: Session;
  const tag = `cdccli_${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;
  let version = 0;

  /** Updates `count` random orders in small transactions (every update changes the row). */
  async function workload(count: number, seed: number): Promise<void> {
    const next = random(seed);
    for (let index = 0; index < count; index += 1) {
      version += 1;
      const first = 1 + Math.floor(next() * 2999);
      await session.run('BEGIN');
      await session.run(`UPDATE orders SET note = 'v${version}', amount = amount + 1 WHERE id = ${first}`);
      await session.run(`UPDATE orders SET status = 'edited ${version % 7}' WHERE id = ${1 + ((first + 17) % 2999)}`);
      await session.run('COMMIT');
    }
  }

  async function streamingReader(): Promise<string> {
    const status = await until(async () => {
      const [entry] = await readCdcStatus(fixture.runtime.redis, fixture.prefix);
      return entry?.state === 'streaming' && Date.now() - entry.updatedAt < 3000 ? entry : undefined;
    }, 'a streaming reader', 40_000);
    return (status as { reader?: string }).reader ?? '';
  }

  beforeAll(async () => {
    fixture = await createCliFixture({ tag, sourceEngine, targetEngine, tables: ['orders'] });
    configFile = fixture.writeConfig('cdc.json', (input) => {
      input.pipelines[0]!.cdc = { batchWindowMs: 20, heartbeatMs: 500, attempts: 2, backoffMs: 100 };
      return input;
    });
    session = await openSession(sourceEngine, `${tag}_src`);
  });

  afterAll(async () => {
    await killLeftoverProcesses();
    await session?.close();
    await runCli(['cdc', 'teardown', '--config', configFile, '--pipeline', 'p']);
    await fixture?.close();
  });

  it('cdc setup prepares the source; a reader killed with -9 mid-stream and started again loses nothing', async () => {
    const setup = await runCli(['cdc', 'setup', '--config', configFile, '--pipeline', 'p']);
    expect(setup.code, describeResult(setup)).toBe(0);
    expect(setup.stderr).toMatch(/ready to stream/);

    const first = startCli(['cdc', '--config', configFile, '--workers', '2'], { timeoutMs: 120_000 });
    await streamingReader();
    // The initial reconcile repairs the seeded drift; the stream carries what follows.
    const running = workload(80, 1);
    await until(async () => (await fixture.target.readCheckpoint('p', 'src')) !== undefined, 'a checkpoint');
    await new Promise((resolve) => setTimeout(resolve, 300));
    first.child.kill('SIGKILL');
    await first.exited;
    await running;
    await workload(20, 2);

    const second = startCli(['cdc', '--config', configFile, '--workers', '2'], { timeoutMs: 120_000 });
    await waitForEqual(fixture.source, fixture.target, fixture.tables.orders, 60_000);
    const stopped = await second.stop('SIGTERM');
    expect(stopped.code, describeResult(stopped)).toBe(0);
  });

  it('two readers never both stream; the standby takes over within seconds when the leader dies', async () => {
    const a = startCli(['cdc', '--config', configFile, '--workers', '1'], { timeoutMs: 120_000 });
    const leader = await streamingReader();
    const b = startCli(['cdc', '--config', configFile, '--workers', '1'], { timeoutMs: 120_000 });
    await b.waitForOutput(/reader\(s\) started/);
    await workload(10, 3);
    await waitForEqual(fixture.source, fixture.target, fixture.tables.orders, 30_000);
    // Only the leader ever published: the status names it, and it is the one we started first.
    expect(leader).toContain(String(a.pid));
    expect((await readCdcStatus(fixture.runtime.redis, fixture.prefix))[0]).toMatchObject({ reader: expect.stringContaining(String(a.pid)) });

    a.child.kill('SIGKILL');
    await a.exited;
    const takeover = await until(async () => {
      const [entry] = await readCdcStatus(fixture.runtime.redis, fixture.prefix);
      return entry?.state === 'streaming' && (entry as { reader?: string }).reader?.includes(String(b.pid)) ? entry : undefined;
    }, 'the standby streaming', 20_000);
    expect(takeover).toBeDefined();
    await workload(10, 4);
    await waitForEqual(fixture.source, fixture.target, fixture.tables.orders, 30_000);
    await (b as CliProcess).stop('SIGTERM');
  });

  it('a checkpoint the source no longer has is answered with a reconcile, then streaming goes on', async () => {
    await fixture.target.writeCheckpoint('p', 'src', await lostPosition(sourceEngine, fixture));
    await workload(10, 5);
    const reader = startCli(['cdc', '--config', configFile, '--workers', '2'], { timeoutMs: 120_000 });
    await reader.waitForOutput(/no longer has the checkpoint position/, 30_000);
    await until(async () => {
      const runs = await fixture.runtime.queues.run.getJobs(['completed']);
      return runs.some((job) => job.id?.endsWith('.cdc-position-lost'));
    }, 'the reconcile run of the lost position', 60_000);
    await workload(10, 6);
    await waitForEqual(fixture.source, fixture.target, fixture.tables.orders, 60_000);

    const status = await runCli(['status', '--config', configFile, '--json']);
    expect(status.code, describeResult(status)).toBe(0);
    const cdc = parseJsonOutput<{ cdc: { pipeline: string; mode: string; targets: { target: string; checkpoint: string; lagMs: number; deadLetters: number }[] }[] }>(status).cdc;
    expect(cdc[0]).toMatchObject({ pipeline: 'p', mode: sourceEngine === 'mysql' ? 'binlog' : 'logical' });
    expect(cdc[0]!.targets[0]).toMatchObject({ target: 'dst', deadLetters: 0 });
    const list = await runCli(['dlq', 'list', '--config', configFile]);
    expect(list.stdout).toMatch(/no dead letters/);
    await reader.stop('SIGTERM');
  });
  it('dlq list shows a poison batch; dlq retry fails again before the fix and applies after it; dlq purge drops one', async () => {
    await fixture.target.execute('ALTER TABLE orders ADD CONSTRAINT amount_cap CHECK (amount < 100000)');
    const reader = startCli(['cdc', '--config', configFile, '--workers', '2'], { timeoutMs: 120_000 });
    await streamingReader();
    const deadLetters = async () => {
      const listed = await runCli(['dlq', 'list', '--config', configFile, '--json']);
      expect(listed.code, describeResult(listed)).toBe(0);
      return JSON.parse(listed.stdout) as { id: string; pipeline: string; target: string; keys: Record<string, number>; firstKeys: Record<string, unknown[][]>; error: string }[];
    };
    await session.run('UPDATE orders SET amount = 200000 WHERE id = 42');
    const [letter] = await until(async () => {
      const letters = await deadLetters();
      return letters.length > 0 ? letters : undefined;
    }, 'the dead letter', 30_000);
    expect(letter).toMatchObject({ pipeline: 'p', target: 'dst', keys: { orders: 1 } });
    expect(letter!.firstKeys.orders).toEqual([[42]]);
    expect(letter!.error).toMatch(/amount_cap|constraint|check/i);

    const tooEarly = await runCli(['dlq', 'retry', '--config', configFile]);
    expect(tooEarly.code, describeResult(tooEarly)).toBe(1);
    expect(tooEarly.stderr).toMatch(/failed again/);
    await fixture.target.execute('ALTER TABLE orders DROP CONSTRAINT amount_cap');
    const retried = await runCli(['dlq', 'retry', '--config', configFile, '--id', letter!.id]);
    expect(retried.code, describeResult(retried)).toBe(0);
    expect(await deadLetters()).toEqual([]);
    await waitForEqual(fixture.source, fixture.target, fixture.tables.orders, 30_000);

    // Purged: the key stays different until a reconcile repairs it, and the checkpoint moves on.
    // (order 42 now holds 200000 on both sides)
    await fixture.target.execute('ALTER TABLE orders ADD CONSTRAINT amount_cap CHECK (amount < 250000)');
    await session.run('UPDATE orders SET amount = 300000 WHERE id = 43');
    await until(async () => ((await deadLetters()).length === 1 ? true : undefined), 'the second dead letter', 30_000);
    const purged = await runCli(['dlq', 'purge', '--config', configFile]);
    expect(purged.code, describeResult(purged)).toBe(0);
    expect(await deadLetters()).toEqual([]);
    await fixture.target.execute('ALTER TABLE orders DROP CONSTRAINT amount_cap');
    await workload(5, 9);
    await until(async () => {
      const [entry] = await readCdcStatus(fixture.runtime.redis, fixture.prefix);
      return entry?.targets[0]?.lagMs === 0 && entry.targets[0].queuedJobs === 0 ? entry : undefined;
    }, 'the stream caught up past the purged batch', 30_000);
    const reconcile = await runCli(['reconcile', '--config', configFile, '--pipeline', 'p', '--workers', '2', '--json']);
    expect(reconcile.code, describeResult(reconcile)).toBe(0);
    await waitForEqual(fixture.source, fixture.target, fixture.tables.orders, 30_000);
    await reader.stop('SIGTERM');
  });
});

/**
 * A position the source cannot serve: on MariaDB a binlog file it does not list (as after PURGE
 * BINARY LOGS, which the shared test server cannot afford); on PostgreSQL the slot dropped under
 * the pipeline (the checkpoint then points into WAL no slot holds).
 */
async function lostPosition(engine: Engine, fixture: CliFixture): Promise<string> {
  if (engine === 'mysql') return 'mysql-bin.999999:4';
  const [slot] = await fixture.source.execute("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'rowsync_p%' AND database = current_database()");
  await fixture.source.execute('SELECT pg_drop_replication_slot($1)', [String(slot!.slot_name)]);
  return (await fixture.target.readCheckpoint('p', 'src'))!;
}
