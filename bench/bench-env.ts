/**
 * Where the benchmark runs: the repository root, the project's own servers (scripts/services.sh, or
 * the ROWSYNC_TEST_*_URL variables, as in test/support/servers.ts) and the drivers' connections.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPool, type Pool } from 'mysql2/promise';
import pg from 'pg';

/** The directory holding rowsync's package.json (the bench runs compiled from dist/bench). */
export const ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'rowsync') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('bench: cannot find the rowsync repository root');
    dir = parent;
  }
})();

export interface BenchServers {
  readonly redisUrl: string;
  readonly mysqlUrl: string;
  readonly postgresUrl: string;
  /** Our own server processes (pid files of scripts/services.sh), for CPU accounting; absent for external servers. */
  readonly pids: { readonly mariadb?: number; readonly postgres?: number; readonly redis?: number };
}

/** Starts (or reuses) the project's servers unless ROWSYNC_SKIP_SERVICES=1, then reads their URLs. */
export function benchServers(): BenchServers {
  const script = join(ROOT, 'scripts/services.sh');
  if (process.env.ROWSYNC_SKIP_SERVICES !== '1') {
    execFileSync('bash', [script, 'start'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const env: Record<string, string> = {};
  for (const line of execFileSync('bash', [script, 'env'], { cwd: ROOT, encoding: 'utf8' }).split('\n')) {
    const match = /^export (\w+)=(.*)$/.exec(line.trim());
    if (match?.[1] && match[2] !== undefined) env[match[1]] = match[2];
  }
  const services = process.env.ROWSYNC_SERVICES_DIR ?? join(ROOT, '.services');
  const pidFrom = (file: string, external: string | undefined): number | undefined => {
    if (external) return undefined;
    try {
      const pid = Number(readFileSync(file, 'utf8').split('\n')[0]?.trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    redisUrl: env.ROWSYNC_TEST_REDIS_URL ?? 'redis://127.0.0.1:16379',
    mysqlUrl: env.ROWSYNC_TEST_MYSQL_URL ?? 'mysql://rowsync:rowsync@127.0.0.1:13306/rowsync',
    postgresUrl: env.ROWSYNC_TEST_POSTGRES_URL ?? 'postgres://rowsync:rowsync@127.0.0.1:15432/rowsync',
    pids: {
      mariadb: pidFrom(join(services, 'mariadb/mariadbd.pid'), process.env.ROWSYNC_TEST_MYSQL_URL),
      postgres: pidFrom(join(services, 'postgres/data/postmaster.pid'), process.env.ROWSYNC_TEST_POSTGRES_URL),
      redis: pidFrom(join(services, 'redis/redis.pid'), process.env.ROWSYNC_TEST_REDIS_URL),
    },
  };
}

/** The same server as `url`, another database (MariaDB) or schema (PostgreSQL `?schema=`). */
export function mysqlUrlFor(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export function postgresUrlFor(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('schema', schema);
  return parsed.toString();
}

export function mysqlParts(url: string): { host: string; port: number; user: string; password: string } {
  const parsed = new URL(url);
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 3306,
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
}

/** Setup connections of the bench itself (not rowsync's): exact numbers, dates as text. */
export function openMysql(url: string, connections = 4): Pool {
  const { host, port, user, password } = mysqlParts(url);
  return createPool({
    host, port, user, password,
    database: new URL(url).pathname.replace(/^\//, '') || 'rowsync',
    connectionLimit: connections,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    charset: 'UTF8MB4_GENERAL_CI',
  });
}

export function openPostgres(url: string, connections = 4): pg.Pool {
  const parsed = new URL(url);
  parsed.search = '';
  const pool = new pg.Pool({ connectionString: parsed.toString(), max: connections, options: '-c TimeZone=UTC' });
  pool.on('error', () => undefined);
  return pool;
}

/** Rows as arrays. */
export async function mysqlRows(pool: Pool, sql: string): Promise<unknown[][]> {
  const [rows] = await pool.query({ sql, rowsAsArray: true });
  return rows as unknown as unknown[][];
}

export async function pgRows(pool: pg.Pool, sql: string, values: unknown[] = []): Promise<unknown[][]> {
  const result = await pool.query({ text: sql, values, rowMode: 'array' });
  return result.rows as unknown[][];
}
