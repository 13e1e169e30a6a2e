/**
 * Redis unreachable: one-shot commands print one line naming Redis and its address and exit 1
 * within seconds (instead of waiting forever and printing a stack per reconnect); a long-running
 * `rowsync worker` waits, logs the failure once per interval, and starts working when Redis
 * comes up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, describeResult, killLeftoverProcesses, runCli, sleep, startCli, writeJson } from '../support/cli.js';
import { scratchUrl } from '../support/scratch.js';

/** A loopback port nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let dir: string;
let port: number;
let configFile: string;
let redis: ChildProcess | undefined;

beforeAll(async () => {
  await buildCli();
  dir = mkdtempSync(join(tmpdir(), 'rowsync-noredis-'));
  port = await freePort();
  configFile = writeJson(dir, 'rowsync.json', {
    // The password must not show in the error line.
    redis: { url: `redis://:Sup3r-S3cret-pw-7731@127.0.0.1:${port}`, prefix: 'noredis' },
    connections: { src: scratchUrl('mysql', 'noredis_src'), dst: scratchUrl('postgres', 'noredis_dst') },
    pipelines: [{ name: 'p', source: 'src', targets: ['dst'], tables: ['orders'] }],
  });
});

afterAll(async () => {
  await killLeftoverProcesses();
  redis?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('one-shot commands without Redis', () => {
  it.each([
    ['status'],
    ['reconcile', '--pipeline', 'p'],
    ['retry', '--run', 'p.nothing'],
  ])('rowsync %s exits 1 with one line naming Redis and its address', async (...args) => {
    const result = await runCli([...args, '--config', configFile], { timeoutMs: 30_000 });
    expect(result.code, describeResult(result)).toBe(1);
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
    expect(lines, result.stderr).toEqual([
      `error: cannot reach Redis at redis://:***@127.0.0.1:${port} (redis.url) after 5 s: connect ECONNREFUSED 127.0.0.1:${port}`,
    ]);
    expect(result.stdout).toBe('');
  });
});

describe('rowsync worker without Redis', () => {
  it('waits, logs once per interval, and starts working when Redis comes up', async () => {
    const worker = startCli(['worker', '--config', configFile], { env: { ROWSYNC_LOG_LEVEL: 'info' }, timeoutMs: 90_000 });
    const warnings = () => worker.stderr.split('\n').filter((line) => line.includes('redis connection error'));
    // Two warnings are at least one interval (10 s) apart; ioredis reconnects many times meanwhile.
    const deadline = Date.now() + 40_000;
    while (warnings().length < 2) {
      if (Date.now() > deadline) throw new Error(`fewer than two warnings:\n${worker.stderr}`);
      await sleep(200);
    }
    expect(worker.child.exitCode).toBeNull();
    const second = JSON.parse(warnings()[1]!) as { repeated?: number };
    expect(second.repeated, 'the reconnect attempts folded into the second line').toBeGreaterThan(1);
    expect(worker.stderr).not.toMatch(/\n\s+at /);
    expect(worker.stderr).not.toContain('Sup3r-S3cret-pw-7731');

    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', 'Sup3r-S3cret-pw-7731'], { stdio: 'ignore' });
    await worker.waitForOutput(/worker ready/, 40_000);
    const stopped = await worker.stop('SIGTERM');
    expect(stopped.code, describeResult(stopped)).toBe(0);
  });
});
