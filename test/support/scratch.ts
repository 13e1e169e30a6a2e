import { createRedisClient, redisMasters, type RedisClient, type RedisConnectionSettings } from '../../src/coordination/redis-client.js';
import { createDatabase } from '../../src/dialect/create-database.js';
import type { Database } from '../../src/dialect/dialect.js';
import type { Engine } from '../../src/dialect/types.js';
import { testServers, withDatabaseUrl } from './servers.js';

export const ENGINES: readonly Engine[] = ['mysql', 'postgres'];

/** Every (source, target) engine pair, same-engine pairs included. */
export const ENGINE_PAIRS: readonly (readonly [Engine, Engine])[] = [
  ['mysql', 'mysql'],
  ['mysql', 'postgres'],
  ['postgres', 'mysql'],
  ['postgres', 'postgres'],
];

/** URL of a scratch namespace: a MariaDB database, or a PostgreSQL schema in the test database. */
export function scratchUrl(engine: Engine, namespace: string): string {
  const servers = testServers();
  if (engine === 'mysql') return withDatabaseUrl(servers.mysqlUrl, namespace);
  const url = new URL(servers.postgresUrl);
  url.searchParams.set('schema', namespace);
  return url.toString();
}

/**
 * Drops and recreates a scratch namespace and returns a Database connected to it. Namespaces are
 * named by the test file, so files running in parallel never share one.
 */
export async function openScratch(engine: Engine, namespace: string, connectionName = namespace): Promise<Database> {
  await withAdmin(engine, async (admin) => {
    await admin.execute(dropStatement(engine, namespace));
    await admin.execute(
      engine === 'mysql'
        ? `CREATE DATABASE \`${namespace}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`
        : `CREATE SCHEMA "${namespace}"`,
    );
  });
  return createDatabase({ connectionName, url: scratchUrl(engine, namespace), poolSize: 4 });
}

/** Drops a namespace made by `openScratch` (a no-op when it is gone already). */
export async function dropScratch(engine: Engine, namespace: string): Promise<void> {
  await withAdmin(engine, (admin) => admin.execute(dropStatement(engine, namespace)));
}

function dropStatement(engine: Engine, namespace: string): string {
  return engine === 'mysql' ? `DROP DATABASE IF EXISTS \`${namespace}\`` : `DROP SCHEMA IF EXISTS "${namespace}" CASCADE`;
}

async function withAdmin<T>(engine: Engine, work: (admin: Database) => Promise<T>): Promise<T> {
  const servers = testServers();
  const admin = createDatabase({
    connectionName: `${engine}-admin`,
    url: engine === 'mysql' ? servers.mysqlUrl : servers.postgresUrl,
    poolSize: 1,
  });
  try {
    return await work(admin);
  } finally {
    await admin.close();
  }
}

/**
 * Deletes every key under a Redis prefix (SCAN, not KEYS: parallel test files share the server),
 * on the test Redis or on the server or cluster `settings` name.
 */
export async function deleteRedisPrefix(prefix: string, settings: RedisConnectionSettings = { url: testServers().redisUrl }): Promise<void> {
  const redis = createRedisClient(settings, { maxRetriesPerRequest: 3 });
  try {
    await deleteRedisKeys(redis, `${prefix}:*`);
  } finally {
    await redis.quit();
  }
}

/**
 * Keys matching a SCAN pattern, on the one server or on every master of a cluster (SCAN on a
 * cluster connection would ask one node, which only holds its own slots' keys).
 */
export async function scanRedisKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const perMaster = await Promise.all((await mastersOf(redis)).map((node) => scanNode(node, pattern)));
  return perMaster.flat();
}

/** Deletes the keys matching a SCAN pattern, each on its own master (a cluster's DEL takes keys of one slot only). */
export async function deleteRedisKeys(redis: RedisClient, pattern: string): Promise<void> {
  for (const node of await mastersOf(redis)) {
    const keys = await scanNode(node, pattern);
    for (let start = 0; start < keys.length; start += 500) {
      const pipeline = node.pipeline();
      for (const key of keys.slice(start, start + 500)) pipeline.del(key);
      await pipeline.exec();
    }
  }
}

async function mastersOf(redis: RedisClient) {
  await redis.ping(); // a cluster knows its masters once connected
  return redisMasters(redis);
}

async function scanNode(node: ReturnType<typeof redisMasters>[number], pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** Runs DDL written for each engine (a `Record` so a test cannot forget one). */
export async function executeFor(database: Database, statements: Record<Engine, readonly string[]>): Promise<void> {
  for (const statement of statements[database.engine]) await database.execute(statement);
}
