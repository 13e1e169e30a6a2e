import { Redis } from 'ioredis';
import { createDatabase } from '../../src/dialect/create-database.js';
import type { Engine } from '../../src/dialect/types.js';
import type { Harness } from './harness.js';
import { testServers } from './servers.js';

/**
 * Closes a harness and removes what it leaves behind: `close()` obliterates the queues, but the
 * scratch namespaces (`<tag>_src`, `<tag>_dst`) and the prefix's other keys (run progress, semaphore
 * slots) outlive it.
 */
export async function closeHarness(
  harness: Harness | undefined,
  options: { readonly tag: string; readonly sourceEngine: Engine; readonly targetEngine: Engine },
): Promise<void> {
  if (!harness) return;
  await harness.close();
  await dropScratch(options.sourceEngine, `${options.tag}_src`);
  await dropScratch(options.targetEngine, `${options.tag}_dst`);
  await deleteRedisPrefix(harness.config.redis.prefix);
}

export async function dropScratch(engine: Engine, namespace: string): Promise<void> {
  const servers = testServers();
  const admin = createDatabase({
    connectionName: `${engine}-admin`,
    url: engine === 'mysql' ? servers.mysqlUrl : servers.postgresUrl,
    poolSize: 1,
  });
  try {
    await admin.execute(engine === 'mysql' ? `DROP DATABASE IF EXISTS \`${namespace}\`` : `DROP SCHEMA IF EXISTS "${namespace}" CASCADE`);
  } finally {
    await admin.close();
  }
}

export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(testServers().redisUrl, { maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}
