/**
 * Runs belong to their configuration: a `rowsync worker` whose config gives pipeline `p` other
 * databases than the config that enqueued a run (same Redis prefix, by mistake or during a
 * migration) leaves the run's jobs alone — not failed, no attempt spent — and a worker with the
 * right config then completes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCli, createCliFixture, describeResult, killLeftoverProcesses, parseJsonOutput, runCli, startCli, waitForStatus,
  type CliFixture,
} from '../support/cli.js';
import { DRIFT, expectEqualTables } from '../support/orders-fixture.js';
import { scratchUrl } from '../support/scratch.js';

let fixture: CliFixture;

beforeAll(async () => {
  await buildCli();
  fixture = await createCliFixture({ tag: 'foreign_mypo', sourceEngine: 'mysql', targetEngine: 'postgres', tables: ['orders'] });
});

afterAll(async () => {
  await killLeftoverProcesses();
  await fixture?.close();
});

describe('a worker with another config for the same pipeline', () => {
  it('leaves the run alone; a worker with the enqueuing config completes it', async () => {
    // Same prefix and pipeline name, another target database: running the jobs with this config
    // would compare against (and write to) the wrong database.
    const otherConfig = fixture.writeConfig('other.json', (input) => ({
      ...input, connections: { ...(input.connections as Record<string, unknown>), dst: scratchUrl('postgres', 'foreign_elsewhere') },
    }));
    const enqueued = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--workers', '0', '--no-wait', '--json', '--run-id', 'p.mine']);
    expect(enqueued.code, describeResult(enqueued)).toBe(0);
    expect(parseJsonOutput<{ status: string }>(enqueued).status).toBe('waiting');

    const stranger = startCli(['worker', '--config', otherConfig]);
    await stranger.waitForOutput(/leaving the job to another worker: pipeline p has other databases or tables/);
    const runJob = await fixture.runtime.queues.run.getJob('p.mine');
    expect(['waiting', 'delayed']).toContain(await runJob!.getState());
    expect(runJob!.attemptsMade).toBe(0);
    expect(await fixture.runtime.queues.run.getFailedCount()).toBe(0);
    expect(stranger.child.exitCode).toBeNull();
    // Stopped before the owner starts: each job it bounced waits 5 s, which would only slow the owner down.
    const strangerStopped = await stranger.stop('SIGTERM');
    expect(strangerStopped.code, describeResult(strangerStopped)).toBe(0);

    const owner = startCli(['worker', '--config', fixture.configFile]);
    await waitForStatus(fixture.configFile, (status) => status.runs.some((run) => run.runId === 'p.mine' && run.state === 'completed'), 60_000);
    const report = (await fixture.runtime.queues.run.getJob('p.mine'))!.returnvalue as { tables: { table: string; missing: number; extra: number; changed: number }[] };
    expect(report.tables[0]).toMatchObject({ table: 'orders', missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length });
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);

    const ownerStopped = await owner.stop('SIGTERM');
    expect(ownerStopped.code, describeResult(ownerStopped)).toBe(0);
  });
});

describe('the in-process workers of rowsync reconcile', () => {
  it("work on their own run only: a stranded run of the same prefix is left waiting, not taken or failed", async () => {
    const stranded = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--dry-run', '--workers', '0', '--no-wait', '--run-id', 'p.stranded']);
    expect(stranded.code, describeResult(stranded)).toBe(0);
    const own = await runCli(['reconcile', '--config', fixture.configFile, '--pipeline', 'p', '--dry-run', '--run-id', 'p.own', '--json']);
    expect(own.code, describeResult(own)).toBe(0);
    expect(parseJsonOutput<{ runId: string; status: string }>(own)).toMatchObject({ runId: 'p.own', status: 'completed' });
    const strandedJob = await fixture.runtime.queues.run.getJob('p.stranded');
    expect(['waiting', 'delayed']).toContain(await strandedJob!.getState());
    expect(strandedJob!.attemptsMade).toBe(0);
    // A worker (any process with this config) takes it.
    const worker = startCli(['worker', '--config', fixture.configFile]);
    await waitForStatus(fixture.configFile, (status) => status.runs.some((run) => run.runId === 'p.stranded' && run.state === 'completed'), 60_000);
    expect((await worker.stop('SIGTERM')).code).toBe(0);
  });
});
