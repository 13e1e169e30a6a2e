/**
 * Where the test servers are. scripts/services.sh starts throwaway instances on these ports (or the
 * ROWSYNC_TEST_*_URL variables point at other servers, e.g. `docker compose up -d`).
 */
export interface TestServers {
  redisUrl: string;
  mysqlUrl: string;
  postgresUrl: string;
  /** Startup nodes of the three-master Redis Cluster (`scripts/services.sh start-cluster`). */
  redisClusterNodes: string[];
}

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw ? Number(raw) : fallback;
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

export function testServers(): TestServers {
  const env = process.env;
  return {
    redisUrl: env.ROWSYNC_TEST_REDIS_URL || `redis://127.0.0.1:${port('ROWSYNC_REDIS_PORT', 16379)}`,
    mysqlUrl:
      env.ROWSYNC_TEST_MYSQL_URL ||
      `mysql://rowsync:rowsync@127.0.0.1:${port('ROWSYNC_MYSQL_PORT', 13306)}/rowsync`,
    postgresUrl:
      env.ROWSYNC_TEST_POSTGRES_URL ||
      `postgres://rowsync:rowsync@127.0.0.1:${port('ROWSYNC_PG_PORT', 15432)}/rowsync`,
    redisClusterNodes: env.ROWSYNC_TEST_REDIS_CLUSTER_NODES
      ? env.ROWSYNC_TEST_REDIS_CLUSTER_NODES.split(',').map((node) => node.trim()).filter(Boolean)
      : [0, 1, 2].map((offset) => `redis://127.0.0.1:${port('ROWSYNC_REDIS_CLUSTER_PORT', 17001) + offset}`),
  };
}

/** Same server and credentials, other database: withDatabaseUrl('mysql://u:p@h:1/a?x=1', 'b') → 'mysql://u:p@h:1/b?x=1'. */
export function withDatabaseUrl(baseUrl: string, dbName: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${encodeURIComponent(dbName)}`;
  return url.toString();
}
