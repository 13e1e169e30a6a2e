import { createDatabase } from '../../src/dialect/create-database.js';
import type { Database } from '../../src/dialect/dialect.js';
import type { Engine } from '../../src/dialect/types.js';
import { testServers } from './servers.js';

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
  if (engine === 'mysql') {
    const url = new URL(servers.mysqlUrl);
    url.pathname = `/${namespace}`;
    return url.toString();
  }
  const url = new URL(servers.postgresUrl);
  url.searchParams.set('schema', namespace);
  return url.toString();
}

/**
 * Drops and recreates a scratch namespace and returns a Database connected to it. Namespaces are
 * named by the test file, so files running in parallel never share one.
 */
export async function openScratch(engine: Engine, namespace: string, connectionName = namespace): Promise<Database> {
  const servers = testServers();
  const admin = createDatabase({
    connectionName: `${engine}-admin`,
    url: engine === 'mysql' ? servers.mysqlUrl : servers.postgresUrl,
    poolSize: 1,
  });
  try {
    if (engine === 'mysql') {
      await admin.execute(`DROP DATABASE IF EXISTS \`${namespace}\``);
      await admin.execute(`CREATE DATABASE \`${namespace}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    } else {
      await admin.execute(`DROP SCHEMA IF EXISTS "${namespace}" CASCADE`);
      await admin.execute(`CREATE SCHEMA "${namespace}"`);
    }
  } finally {
    await admin.close();
  }
  return createDatabase({ connectionName, url: scratchUrl(engine, namespace), poolSize: 4 });
}

/** Runs DDL written for each engine (a `Record` so a test cannot forget one). */
export async function executeFor(database: Database, statements: Record<Engine, readonly string[]>): Promise<void> {
  for (const statement of statements[database.engine]) await database.execute(statement);
}
