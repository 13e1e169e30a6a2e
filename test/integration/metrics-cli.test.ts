/**
 * `rowsync worker --metrics-port 0` serves /metrics and /healthz, and stops serving on SIGTERM; a
 * port named on the command line that is taken fails the command naming the option (exit 2).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, describeResult, killLeftoverProcesses, runCli, startCli, writeJson } from '../support/cli.js';
import { deleteRedisPrefix } from '../support/scratch.js';
import { testServers } from '../support/servers.js';

const prefix = `t-metrics-cli-${randomBytes(3).toString('hex')}`;
let dir: string;
let configFile: string;

beforeAll(async () => {
  await buildCli();
  dir = mkdtempSync(join(tmpdir(), 'rowsync-metrics-cli-'));
  const servers = testServers();
  // The test servers' own databases: the worker only needs to reach them (for /healthz).
  configFile = writeJson(dir, 'rowsync.json', {
    redis: { url: servers.redisUrl, prefix },
    connections: { src: servers.mysqlUrl, dst: servers.postgresUrl },
    pipelines: [{ name: 'p', source: 'src', targets: ['dst'] }],
    workers: { lanes: 2 },
  });
});

afterAll(async () => {
  await killLeftoverProcesses();
  await deleteRedisPrefix(prefix);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('rowsync worker --metrics-port', () => {
  it('serves /metrics and /healthz on the port it reports, and refuses a taken port named by the flag', async () => {
    const worker = startCli(['worker', '--config', configFile, '--metrics-port', '0']);
    const [, url, port] = await worker.waitForOutput(/metrics on (http:\/\/127\.0\.0\.1:(\d+)\/)metrics/);

    // The server is up before the workers connect (a taken port fails the command first), and what
    // it reads from Redis is cached for 5 s: poll until this worker counts.
    const deadline = Date.now() + 15_000;
    let text = '';
    while (!/^rowsync_workers\{queue="reconcile-chunk"\} [1-9]/m.test(text)) {
      if (Date.now() > deadline) throw new Error(`the worker never counted in rowsync_workers:\n${text}`);
      if (text) await new Promise((resolve) => setTimeout(resolve, 250));
      const metrics = await fetch(`${url}metrics`);
      expect(metrics.status).toBe(200);
      text = await metrics.text();
    }
    expect(text).toMatch(/^# TYPE rowsync_workers gauge$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    const health = await fetch(`${url}healthz`);
    expect(health.status, await health.clone().text()).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');

    const taken = await runCli(['scheduler', '--config', configFile, '--metrics-port', port!]);
    expect(taken.code, describeResult(taken)).toBe(2);
    expect(taken.stderr).toMatch(new RegExp(`--metrics-port: cannot serve metrics on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`));

    const stopped = await worker.stop('SIGTERM');
    expect(stopped.code, describeResult(stopped)).toBe(0);
    await expect(fetch(`${url}metrics`)).rejects.toThrow();
  });
});
