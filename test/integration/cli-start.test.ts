/**
 * `rowsync start`: scheduler, workers and board in one process. A scheduled tick starts a run that
 * the same process works off, a run enqueued elsewhere with `--workers 0` is processed by it, the
 * board answers, and SIGTERM stops all three with exit code 0.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/reconcile/report.js';
import {
  buildCli, createCliFixture, describeResult, killLeftoverProcesses, parseJsonOutput, runCli, startCli, waitForStatus,
  type CliFixture,
} from '../support/cli.js';
import { expectEqualTables } from '../support/orders-fixture.js';

let fixture: CliFixture;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

beforeAll(async () => {
  await buildCli();
  fixture = await createCliFixture({ tag: 'cli_start', sourceEngine: 'postgres', targetEngine: 'mysql' });
});

afterAll(async () => {
  await killLeftoverProcesses();
  await fixture?.close();
});

describe('rowsync start', () => {
  it('schedules, works off runs, serves the board, and stops on SIGTERM', async () => {
    const port = await freePort();
    const configFile = fixture.writeConfig('start.json', (input) => {
      input.pipelines[0]!.reconcile = { ...(input.pipelines[0]!.reconcile as object), schedule: '*/2 * * * * *' };
      return { ...input, board: { host: '127.0.0.1', port } };
    });
    const start = startCli(['start', '--config', configFile], { timeoutMs: 90_000 });
    await start.waitForOutput(new RegExp(`Bull Board on http://127\\.0\\.0\\.1:${port}/`));

    const queues = await fetch(`http://127.0.0.1:${port}/api/queues`);
    expect(queues.status).toBe(200);
    const body = (await queues.json()) as { queues: { name: string }[] };
    expect(body.queues.map((queue) => queue.name)).toContain('reconcile-chunk');

    // A scheduled tick's run is completed by the same process.
    const status = await waitForStatus(configFile, (current) =>
      current.runs.some((run) => run.runId.endsWith('.scheduled') && run.state === 'completed'),
    );
    expect(status.workers).toBeGreaterThan(0);

    // A run enqueued by another process without workers of its own is processed by `start`.
    const reconcile = await runCli(['reconcile', '--config', configFile, '--pipeline', 'p', '--workers', '0', '--json']);
    expect(reconcile.code, describeResult(reconcile)).toBe(0);
    const report = parseJsonOutput<RunReport>(reconcile);
    expect(report.status).toBe('completed');
    expect(report.tables.every((table) => table.missing + table.extra + table.changed === 0)).toBe(true);
    expect(await expectEqualTables(fixture.source, fixture.target, fixture.tables.orders)).toEqual([]);

    const stopped = await start.stop('SIGTERM');
    expect(stopped.code, describeResult(stopped)).toBe(0);
  });
});
