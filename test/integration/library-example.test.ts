/**
 * The README's runnable example (examples/library.mjs), run as a user would run it (`node
 * examples/library.mjs CONFIG PIPELINE`, importing the package by its name) against the project's
 * own servers, MariaDB -> PostgreSQL with CDC by binlog: its dry run and repair print the seeded
 * drift exactly, a change made while it streams reaches the target and is counted by its sync
 * statistics, and the process ends on its own after `close()`.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { until } from '../support/cdc-fixture.js';
import { ROOT, buildCli, createCliFixture, runCli, type CliFixture } from '../support/cli.js';
import { DRIFT, expectEqualTables } from '../support/orders-fixture.js';

let fixture: CliFixture;
let configFile: string;

beforeAll(async () => {
  await buildCli();
  fixture = await createCliFixture({ tag: 'libex', sourceEngine: 'mysql', targetEngine: 'postgres', tables: ['orders'] });
  configFile = fixture.writeConfig('example.json', (input) => {
    input.pipelines[0]!.cdc = { batchWindowMs: 20, heartbeatMs: 500 };
    return input;
  });
});

afterAll(async () => {
  if (configFile) await runCli(['cdc', 'teardown', '--config', configFile, '--pipeline', 'p']);
  await fixture?.close();
});

it('examples/library.mjs reconciles, streams a change, prints its statistics and exits on its own', async () => {
  const child = spawn(process.execPath, [join(ROOT, 'examples/library.mjs'), configFile, 'p'], {
    cwd: ROOT,
    env: { ...process.env, STREAM_SECONDS: '3' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let lastOutputAt = Date.now();
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    lastOutputAt = Date.now();
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  try {
    await until(async () => /^cdc p: streaming$/m.test(stdout) || child.exitCode !== null, 'the example streaming', 60_000);
    // The stream's first start reconciles (the snapshot): a snapshot reading row 7 after the change
    // would leave the stream nothing to write.
    await until(async () => {
      const runs = await fixture.runtime.queues.run.getJobs(['completed']);
      return runs.some((job) => job.id?.endsWith('.cdc-initial')) || child.exitCode !== null;
    }, 'the initial reconcile', 30_000);
    await fixture.source.execute("UPDATE orders SET note = 'changed while the example streams' WHERE id = 7");
    const code = await exited;
    // Its last line comes right before close(): nothing may keep the process alive after that.
    const lingeredMs = Date.now() - lastOutputAt;
    const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
    expect(code, output).toBe(0);
    expect(stderr, output).toBe('');
    expect(stdout, output).toMatch(
      new RegExp(`^reconcile p \\(dry run\\): ${DRIFT.changed.length} changed, ${DRIFT.missing.length} missing, ${DRIFT.extra.length} extra in 3 chunk\\(s\\)$`, 'm'),
    );
    expect(stdout, output).toMatch(/^progress: 3\/3 chunks, 3,000 rows compared$/m);
    expect(stdout, output).toMatch(new RegExp(`^reconcile p: inserted ${DRIFT.missing.length}, updated ${DRIFT.changed.length}, deleted ${DRIFT.extra.length}, conflicts 0 \\(run p\\.\\S+\\)$`, 'm'));
    expect(stdout, output).toMatch(/^cdc p: applied 1 change\(s\) to dst \(inserted 0, updated 1, deleted 0\)$/m);
    expect(stdout, output).toMatch(/^sync stats p: 1 change\(s\) in total, 1 in the last hour, last at \d{4}-\d\d-\d\dT\S+Z, queue 0, lag \d+ ms, position \S+:\d+, dead letters 0, running true$/m);
    expect(stdout, output).toMatch(/^conflicts p: 0 in total, 0 pending$/m);
    expect(lingeredMs, output).toBeLessThan(5000);
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
