/**
 * Adaptive chunk sizes (`reconcile.chunkTimeMs`) on real servers, every engine pair: starting from
 * tiny chunks, the planner sizes later chunks by the measured checksum scans so that they take about
 * the target time, every row is still in exactly one chunk (the report's and the chunks' row counts
 * add up), and the drift is repaired. Behaviour, not speed: the assertion on times is a factor of
 * the target either way, on a shared machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableJobId } from '../../jobs/job-ids.js';
import type { ChunkPayload } from '../../jobs/reconcile-chunk.job.js';
import { enqueueRun } from '../../jobs/reconcile-run.job.js';
import type { TablePayload } from '../../jobs/reconcile-table.job.js';
import { watchRun } from '../../src/cli/run-monitor.js';
import { until } from '../support/cdc-fixture.js';
import { buildCli, killLeftoverProcesses, startCli, writeJson } from '../support/cli.js';
import type { ChunkReport } from '../../src/reconcile/report.js';
import type { Engine } from '../../src/dialect/types.js';
import { createHarness, type Harness } from '../support/harness.js';
import { ENGINE_PAIRS } from '../support/scratch.js';

const ROWS = 60_000;
const START = 500;
/**
 * Far above any scan of these chunks, even on a loaded machine: sizes must grow. How sizes settle on
 * the target time is the sizer's unit test's to show (test/unit/adaptive-chunks.test.ts, measured
 * times given); here, on real servers, the run's behaviour: sizes follow the scans, and every row
 * is in exactly one chunk. (A target near the scans' own times made the outcome depend on the load.)
 */
const TARGET_MS = 2000;

const DDL: Record<Engine, string> = {
  mysql: 'CREATE TABLE events (id INT NOT NULL PRIMARY KEY, kind VARCHAR(20) NOT NULL, amount DECIMAL(12,2) NOT NULL, note VARCHAR(60) NULL)',
  postgres: 'CREATE TABLE events (id integer PRIMARY KEY, kind varchar(20) NOT NULL, amount numeric(12,2) NOT NULL, note varchar(60) NULL)',
};

async function seed(harness: Harness): Promise<void> {
  for (let start = 1; start <= ROWS; start += 5000) {
    const rows = Array.from({ length: 5000 }, (_, index) => {
      const id = start + index;
      return `(${id}, 'kind-${id % 7}', ${id % 1000}.${String(id % 100).padStart(2, '0')}, ${id % 3 === 0 ? 'NULL' : `'note ${id}'`})`;
    }).join(', ');
    await harness.source.execute(`INSERT INTO events VALUES ${rows}`);
    await harness.target.execute(`INSERT INTO events VALUES ${rows}`);
  }
  await harness.target.execute("UPDATE events SET note = 'drift' WHERE id IN (10, 25000, 59999)");
  await harness.target.execute('DELETE FROM events WHERE id = 40000');
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

describe.each(ENGINE_PAIRS)('adaptive chunks %s -> %s', (sourceEngine, targetEngine) => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await createHarness({
      tag: `adapt_${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`,
      sourceEngine,
      targetEngine,
      tables: ['events'],
      reconcile: { chunkSize: START, chunkTimeMs: TARGET_MS },
    });
    await harness.source.execute(DDL[sourceEngine]);
    await harness.target.execute(DDL[targetEngine]);
    await seed(harness);
    await harness.startWorkers();
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('sizes chunks toward chunkTimeMs, covers every row once, repairs the drift', async () => {
    const outcome = await harness.run();
    if (outcome.kind !== 'completed') throw new Error(JSON.stringify(outcome));
    const report = outcome.report.tables[0]!;
    expect(report).toMatchObject({ table: 'events', sourceRows: ROWS, targetRows: ROWS - 1, missing: 1, changed: 3, inserted: 1, updated: 3, errors: [] });

    const jobs = (await harness.runtime.queues.chunk.getJobs(['completed'], 0, -1)) as Job<ChunkPayload, ChunkReport>[];
    const chunks = jobs
      .filter((job) => job.id!.startsWith(`${outcome.runId}.`))
      .map((job) => ({ index: job.data.index, rows: job.returnvalue.sourceRows, scanMs: job.returnvalue.scanMs! }))
      .sort((a, b) => a.index - b.index);
    // One job per planned chunk, indexes 0..n-1, and their rows add up to the table: none twice, none left out.
    expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, index) => index));
    expect(chunks).toHaveLength(report.chunks);
    expect(chunks.reduce((total, chunk) => total + chunk.rows, 0)).toBe(ROWS);

    // The first chunks have the starting size; later ones were sized by the scans: larger here (a
    // 500-row scan takes far less than the target).
    const described = JSON.stringify(chunks.map((chunk) => [chunk.rows, chunk.scanMs]));
    expect(chunks[0]!.rows).toBe(START);
    const later = chunks.slice(Math.ceil(chunks.length / 2), -1);
    expect(later.length, described).toBeGreaterThanOrEqual(2);
    expect(median(later.map((chunk) => chunk.rows)), described).toBeGreaterThan(3 * START);
    // Sizes never shrank below the start while every scan stayed under the target.
    expect(Math.min(...chunks.slice(0, -1).map((chunk) => chunk.rows)), described).toBeGreaterThanOrEqual(START);
    // Fewer chunks than fixed 500-row chunks would have made.
    expect(report.chunks, described).toBeLessThan(ROWS / START / 2);
  });
});

/**
 * The planner saves its position with every chunk it adds: a worker process killed with -9 while it
 * plans leaves a table job that another process resumes, and every row still lands in exactly one
 * chunk although sizes changed while it ran.
 */
describe('adaptive planning survives a kill -9 of the planning worker (mysql -> postgres)', () => {
  let harness: Harness;
  let dir: string;
  const rows = 120_000;

  beforeAll(async () => {
    await buildCli();
    harness = await createHarness({
      tag: 'adapt_kill',
      sourceEngine: 'mysql',
      targetEngine: 'postgres',
      tables: ['events'],
      reconcile: { chunkSize: START, chunkTimeMs: 40 },
      // One chunk at a time: the planner stays a few chunks ahead for the whole run.
      workers: { concurrency: { table: 1, chunk: 1, apply: 1, cdc: 1 } },
    });
    await harness.source.execute(DDL.mysql);
    await harness.target.execute(DDL.postgres);
    for (let start = 1; start <= rows; start += 5000) {
      const values = Array.from({ length: 5000 }, (_, index) => `(${start + index}, 'k', ${(start + index) % 1000}, NULL)`).join(', ');
      await harness.source.execute(`INSERT INTO events VALUES ${values}`);
      await harness.target.execute(`INSERT INTO events VALUES ${values}`);
    }
    dir = mkdtempSync(join(tmpdir(), 'rowsync-adapt-kill-'));
  });

  afterAll(async () => {
    await killLeftoverProcesses();
    await harness?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('resumes the plan from the saved cursor: indexes consecutive, rows covered once', async () => {
    const configFile = writeJson(dir, 'rowsync.json', {
      redis: harness.config.redis,
      connections: { src: harness.config.connections.src!.url, dst: harness.config.connections.dst!.url },
      pipelines: [{ name: 'p', source: 'src', targets: ['dst'], tables: ['events'], reconcile: { chunkSize: START, chunkTimeMs: 40, attempts: 3, backoffMs: 100 } }],
      workers: { lanes: 4, concurrency: { table: 1, chunk: 1, apply: 1, cdc: 1 } },
    });
    const runId = 'p.adapt-kill';
    await enqueueRun(harness.runtime, { runId, pipeline: 'p', dryRun: true, requestedAt: Date.now() });
    const first = startCli(['worker', '--config', configFile]);
    const tableJob = async () => (await harness.runtime.queues.table.getJob(tableJobId(runId, 'events', 'dst'))) as Job<TablePayload> | undefined;
    await until(async () => ((await tableJob())?.data.cursor?.chunks ?? 0) >= 12, 'a dozen chunks planned', 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    // What the dead planner saved is where the next one starts.
    const saved = (await tableJob())!.data.cursor!;
    expect(saved.done, 'the plan was finished before the kill: nothing to resume').toBe(false);

    const second = startCli(['worker', '--config', configFile]);
    const outcome = await watchRun(harness.runtime, runId, { intervalMs: 200 });
    await second.stop('SIGTERM');
    if (outcome.kind !== 'completed') throw new Error(JSON.stringify(outcome));
    const report = outcome.report.tables[0]!;
    expect(report).toMatchObject({ sourceRows: rows, targetRows: rows, missing: 0, extra: 0, changed: 0, errors: [] });
    const chunks = ((await harness.runtime.queues.chunk.getJobs(['completed'], 0, -1)) as Job<ChunkPayload, ChunkReport>[])
      .filter((job) => job.id!.startsWith(`${runId}.`))
      .map((job) => ({ index: job.data.index, rows: job.returnvalue.sourceRows }))
      .sort((a, b) => a.index - b.index);
    expect(chunks.map((chunk) => chunk.index)).toEqual(chunks.map((_, index) => index));
    expect(chunks.length).toBe(report.chunks);
    expect(chunks.length).toBeGreaterThan(saved.chunks);
    expect(chunks.reduce((total, chunk) => total + chunk.rows, 0)).toBe(rows);
  });
});
