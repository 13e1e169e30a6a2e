import { ConfigError } from '../errors/index.js';
import type { Database } from './dialect.js';
import { MysqlDatabase } from './mysql/mysql-database.js';
import { PostgresDatabase } from './postgres/postgres-database.js';

export interface DatabaseOptions {
  /** The connection's name in the config; used in every message instead of the URL. */
  readonly connectionName: string;
  /** `mysql://` / `mariadb://` or `postgres://` / `postgresql://` URL. */
  readonly url: string;
  /**
   * Connections this process may open to the server.
   * @defaultValue 4
   */
  readonly poolSize?: number;
}

/** The one place that maps a connection URL to its engine. */
export function createDatabase(options: DatabaseOptions): Database {
  const protocol = protocolOf(options.url, options.connectionName);
  switch (protocol) {
    case 'mysql:':
    case 'mariadb:':
      return new MysqlDatabase(options);
    case 'postgres:':
    case 'postgresql:':
      return new PostgresDatabase(options);
    default:
      throw new ConfigError(
        `connections.${options.connectionName}: unsupported URL scheme '${protocol}' (expected mysql://, mariadb://, postgres:// or postgresql://)`,
        { subject: `connections.${options.connectionName}` },
      );
  }
}

function protocolOf(url: string, connectionName: string): string {
  try {
    return new URL(url).protocol;
  } catch {
    throw new ConfigError(`connections.${connectionName}: not a valid URL`, {
      subject: `connections.${connectionName}`,
    });
  }
}
