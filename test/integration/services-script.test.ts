/**
 * scripts/services.sh itself, run in a sandbox: its own ROWSYNC_SERVICES_DIR under a temp dir and
 * ports the OS reports free, so it never touches the shared instances (16379, 17001-17003, 13306,
 * 15432). Only the server under test runs: the others are named external (ROWSYNC_TEST_*), which the
 * script leaves alone. Every server pid seen is stopped in afterAll, even when its directory is gone.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { pollWithBackoff } from '../../src/coordination/poll.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SCRIPT = join(ROOT, 'scripts/services.sh');
// A `.services` folder is what marks another checkout's instance (as in a real checkout).
const SANDBOX = mkdtempSync(join(tmpdir(), 'rowsync-svc-'));
const EXTERNAL = {
  ROWSYNC_TEST_REDIS_URL: 'redis://127.0.0.1:9/external-not-started',
  ROWSYNC_TEST_REDIS_CLUSTER_NODES: 'redis://127.0.0.1:9',
  ROWSYNC_TEST_MYSQL_URL: 'mysql://x:x@127.0.0.1:9/external-not-started',
  ROWSYNC_TEST_POSTGRES_URL: 'postgres://x:x@127.0.0.1:9/external-not-started',
} as const;
type Server = 'redis' | 'mysql';
/** Server pids started by this file: killed in afterAll when still running. */
const startedPids = new Set<number>();
const usedPorts = new Set<number>();

function servicesDir(name: string): string {
  return join(SANDBOX, name, '.services');
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The script with a clean environment: none of the caller's ROWSYNC_* (global setup exported the
 * shared servers' URLs), the sandbox dir, and every server but `server` named external.
 */
function services(dir: string, command: string, server: Server, vars: Record<string, string> = {}): Run {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('ROWSYNC_')) env[key] = value;
  Object.assign(env, EXTERNAL, { ROWSYNC_SERVICES_DIR: dir, ROWSYNC_SERVICES_TIMEOUT: '20' }, vars);
  if (server === 'redis') delete env.ROWSYNC_TEST_REDIS_URL;
  else delete env.ROWSYNC_TEST_MYSQL_URL;
  const run = spawnSync('bash', [SCRIPT, command], { env, encoding: 'utf8', timeout: 150_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port > 0 && !usedPorts.has(port)) {
      usedPorts.add(port);
      return port;
    }
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolveListening) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolveListening(true);
    });
    socket.once('error', () => resolveListening(false));
    socket.connect(port, '127.0.0.1');
  });
}

function pidFrom(file: string): number {
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]?.trim());
  expect(pid).toBeGreaterThan(0);
  startedPids.add(pid);
  return pid;
}

/** Running and not a zombie (an exited daemon waits for a parent that is not us to reap it). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function isOurServer(pid: number): boolean {
  try {
    return /redis-server|mariadbd/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}

async function stopPid(pid: number): Promise<void> {
  if (!running(pid) || !isOurServer(pid)) return;
  process.kill(pid, 'SIGTERM');
  const gone = await pollWithBackoff(async () => (running(pid) ? undefined : true), {
    firstDelayMs: 50,
    maxDelayMs: 500,
    maxWaitMs: 30_000,
  });
  if (!gone && running(pid)) process.kill(pid, 'SIGKILL');
}

async function ping(port: number): Promise<string> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  try {
    await redis.connect();
    return await redis.ping();
  } finally {
    redis.disconnect();
  }
}

afterAll(async () => {
  // The script's own stop first (as a user would), then whatever is left, directory gone or not.
  for (const name of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'm', 'n']) {
    const dir = servicesDir(name);
    if (existsSync(dir)) services(dir, 'stop', 'redis');
  }
  for (const pid of startedPids) await stopPid(pid);
  rmSync(SANDBOX, { recursive: true, force: true });
}, 120_000);

describe('scripts/services.sh: Redis in a sandbox', () => {
  it('start twice: the second run reuses the running instance (same pid), status and env report it', async () => {
    const dir = servicesDir('a');
    const port = await freePort();
    const first = services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(first.stderr).toContain(`redis: started on ${port}`);
    expect(first.status).toBe(0);
    const pid = pidFrom(join(dir, 'redis/redis.pid'));

    const second = services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(second.status).toBe(0);
    expect(second.stderr).toContain(`redis: running on ${port} (reused)`);
    expect(pidFrom(join(dir, 'redis/redis.pid'))).toBe(pid);
    expect(running(pid)).toBe(true);
    expect(await ping(port)).toBe('PONG');

    const status = services(dir, 'status', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(status.stdout).toContain(`redis:    running  pid ${pid} port ${port}`);
    expect(status.status).toBe(0);
  });

  it('without ROWSYNC_REDIS_PORT, reuses ours where it runs and env prints that port; another port fails naming both, and ours keeps running', async () => {
    const dir = servicesDir('b');
    const port = await freePort();
    expect(services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) }).status).toBe(0);
    const pid = pidFrom(join(dir, 'redis/redis.pid'));

    const unset = services(dir, 'start', 'redis');
    expect(unset.stderr).toContain(`redis: running on ${port} (reused; ROWSYNC_REDIS_PORT is not set`);
    expect(unset.status).toBe(0);
    expect(services(dir, 'env', 'redis').stdout).toContain(`export ROWSYNC_TEST_REDIS_URL=redis://127.0.0.1:${port}\n`);
    const status = services(dir, 'status', 'redis');
    expect(status.stdout).toContain(`redis:    running  pid ${pid} port ${port}`);
    expect(status.status).toBe(0);
    expect(running(pid)).toBe(true);
    expect(pidFrom(join(dir, 'redis/redis.pid'))).toBe(pid);

    const other = await freePort();
    const moved = services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(other) });
    expect(moved.status).toBe(1);
    expect(moved.stderr).toContain(
      `redis: ours (pid ${pid}) runs on port ${port}, but ROWSYNC_REDIS_PORT=${other} asks for port ${other}`,
    );
    expect(moved.stderr).toContain(`unset ROWSYNC_REDIS_PORT to use it on port ${port}`);
    expect(moved.stderr).toContain(`ROWSYNC_SERVICES_DIR=${dir} bash ${SCRIPT} stop`);
    expect(running(pid)).toBe(true);
    expect(await ping(port)).toBe('PONG');
    expect(await listening(other)).toBe(false);
    const movedStatus = services(dir, 'status', 'redis', { ROWSYNC_REDIS_PORT: String(other) });
    expect(movedStatus.stdout).toContain(`redis:    ours runs on port ${port} (pid ${pid}), not on ROWSYNC_REDIS_PORT=${other}`);
    expect(movedStatus.status).toBe(1);
  });

  it('stop stops ours whatever port it runs on, and says which', async () => {
    const dir = servicesDir('c');
    const port = await freePort();
    expect(services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) }).status).toBe(0);
    const pid = pidFrom(join(dir, 'redis/redis.pid'));

    const stop = services(dir, 'stop', 'redis');
    expect(stop.status).toBe(0);
    expect(stop.stderr).toContain(`redis: stopped (pid ${pid}, port ${port})`);
    expect(running(pid)).toBe(false);
    expect(await listening(port)).toBe(false);
    const status = services(dir, 'status', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(status.stdout).toContain('redis:    stopped');
    expect(status.status).toBe(1);
  });

  it("refuses another checkout's instance whose directory was deleted, naming its pid and what to do", async () => {
    const deleted = servicesDir('d');
    const dir = servicesDir('e');
    const port = await freePort();
    expect(services(deleted, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) }).status).toBe(0);
    const pid = pidFrom(join(deleted, 'redis/redis.pid'));
    rmSync(join(SANDBOX, 'd'), { recursive: true, force: true });
    // It still answers PING: only its directory tells that its checkout is gone.
    expect(await ping(port)).toBe('PONG');

    const start = services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(start.status).toBe(1);
    expect(start.stderr).toContain(
      `redis: port ${port} is taken by pid ${pid} (another rowsync checkout's redis-server at ${deleted}/redis, deleted), which is not reused: its directory is gone.`,
    );
    expect(start.stderr).toContain(`stop it:  kill ${pid}  then start again`);
    expect(start.stderr).toMatch(new RegExp(`ROWSYNC_SERVICES_DIR=${dir} ROWSYNC_REDIS_PORT=\\d+ bash `));
    expect(start.stderr).not.toContain('(reused');
    expect(start.stderr).not.toContain('started on');
    const status = services(dir, 'status', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(status.stdout).toContain(
      `redis:    port ${port} taken by pid ${pid} (another rowsync checkout's redis-server at ${deleted}/redis, deleted); not reusable: its directory is gone`,
    );
    expect(status.status).toBe(1);

    // What the message says to do works: kill it, start again.
    await stopPid(pid);
    const again = services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(again.stderr).toContain(`redis: started on ${port}`);
    expect(again.status).toBe(0);
    expect(pidFrom(join(dir, 'redis/redis.pid'))).not.toBe(pid);
  });

  it('refuses its own instance once its services directory was removed (rm -rf .services) and says to kill it', async () => {
    const dir = servicesDir('i');
    const port = await freePort();
    expect(services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) }).status).toBe(0);
    const pid = pidFrom(join(dir, 'redis/redis.pid'));
    rmSync(dir, { recursive: true, force: true });

    const start = services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(start.status).toBe(1);
    expect(start.stderr).toContain(
      `redis: port ${port} is taken by pid ${pid} (redis-server at ${dir}/redis, deleted: this checkout's services directory, but no pidfile of ours names it), which is not reused: its directory is gone.`,
    );
    expect(start.stderr).toContain(`stop it:  kill ${pid}  then start again`);
    expect(running(pid)).toBe(true);
  });

  it("reuses another checkout's healthy instance after a probe write, and never stops it", async () => {
    const owner = servicesDir('f');
    const dir = servicesDir('g');
    const port = await freePort();
    expect(services(owner, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) }).status).toBe(0);
    const pid = pidFrom(join(owner, 'redis/redis.pid'));

    const start = services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(start.status).toBe(0);
    expect(start.stderr).toContain(`redis: another rowsync checkout's instance runs on ${port} (reused: pid ${pid} at ${owner}/redis)`);
    const status = services(dir, 'status', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
    expect(status.stdout).toContain(`redis:    reusable  port ${port}: pid ${pid}`);
    expect(status.status).toBe(0);

    expect(services(dir, 'stop', 'redis').status).toBe(0);
    expect(running(pid)).toBe(true);
    const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await redis.connect();
      expect(await redis.keys('rowsync:services-probe:*')).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('refuses an instance in a rowsync directory that does not answer the probe (here: it wants a password)', async () => {
    const dir = servicesDir('h');
    const foreignDir = join(SANDBOX, 'locked', '.services', 'redis');
    mkdirSync(foreignDir, { recursive: true });
    const port = await freePort();
    const server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', foreignDir, '--requirepass', 'not-rowsync'],
      { cwd: foreignDir, stdio: 'ignore' },
    );
    const pid = server.pid ?? 0;
    startedPids.add(pid);
    try {
      await pollWithBackoff(async () => ((await listening(port)) ? true : undefined), { firstDelayMs: 50, maxDelayMs: 500, maxWaitMs: 20_000 });
      const start = services(dir, 'start', 'redis', { ROWSYNC_REDIS_PORT: String(port) });
      expect(start.status).toBe(1);
      expect(start.stderr).toContain(
        `redis: port ${port} is taken by pid ${pid} (another rowsync checkout's redis-server at ${foreignDir}), which is not reused: it does not answer a probe query (SET/GET/DEL of a probe key: NOAUTH`,
      );
      expect(start.stderr).toContain(`kill ${pid}`);
    } finally {
      await stopPid(pid);
    }
  });
});

describe('scripts/services.sh: MariaDB in a sandbox', () => {
  it("refuses another checkout's MariaDB whose data directory was deleted (it still answers queries, but cannot create a database)", async () => {
    const deleted = servicesDir('m');
    const dir = servicesDir('n');
    const port = await freePort();
    const started = services(deleted, 'start', 'mysql', { ROWSYNC_MYSQL_PORT: String(port) });
    expect(started.stderr).toContain(`mariadb: started on ${port}`);
    expect(started.status).toBe(0);
    const pid = pidFrom(join(deleted, 'mariadb/mariadbd.pid'));
    rmSync(join(SANDBOX, 'm'), { recursive: true, force: true });

    // The failure the issue reported: the server answers, the demo's CREATE DATABASE does not (nor can
    // a client open the database rowsync: its directory went with the checkout).
    const conn = await mysql.createConnection(`mysql://rowsync:rowsync@127.0.0.1:${port}`);
    try {
      const [[row]] = await conn.query<mysql.RowDataPacket[]>('SELECT 1 AS one');
      expect(row?.one).toBe(1);
      await expect(conn.query('CREATE DATABASE services_script_probe_shop')).rejects.toThrow(/Can't create database/);
    } finally {
      await conn.end();
    }

    const start = services(dir, 'start', 'mysql', { ROWSYNC_MYSQL_PORT: String(port) });
    expect(start.status).toBe(1);
    expect(start.stderr).toContain(
      `mariadb: port ${port} is taken by pid ${pid} (another rowsync checkout's mariadbd at ${deleted}/mariadb/data, deleted), which is not reused: its directory is gone.`,
    );
    expect(start.stderr).toContain(`kill ${pid}`);
    expect(start.stderr).toMatch(new RegExp(`ROWSYNC_MYSQL_PORT=\\d+ bash `));
    expect(start.stderr).not.toContain('(reused');
    const status = services(dir, 'status', 'mysql', { ROWSYNC_MYSQL_PORT: String(port) });
    expect(status.stdout).toContain(`mariadb:  port ${port} taken by pid ${pid} (another rowsync checkout's mariadbd at ${deleted}/mariadb/data, deleted)`);
    expect(status.status).toBe(1);
    await stopPid(pid);
    expect(running(pid)).toBe(false);
  }, 150_000);
});
