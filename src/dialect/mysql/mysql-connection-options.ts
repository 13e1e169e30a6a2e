/**
 * `mysql://user:password@host:port/database?ssl=true` -> mysql2 pool options. Parsed here (not handed
 * to mysql2 as a URI) so that the password stays out of every message and the lossless read settings
 * cannot be overridden by URL parameters.
 */
import type { PoolOptions } from 'mysql2/promise';
import { ConfigError } from '../../errors/index.js';

export interface MysqlConnectionSettings {
  readonly user: string;
  readonly password: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly pool: PoolOptions;
}

const DEFAULT_PORT = 3306;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * URL query parameters:
 * - `ssl`: `true`/`required`/`verify` (TLS, certificate verified), `no-verify` (TLS without
 *   verification), `false`/`disabled` (plain).  @defaultValue plain
 * - `connectTimeout`: milliseconds.  @defaultValue 10000
 */
export function mysqlConnectionSettings(connectionName: string, url: string, poolSize: number): MysqlConnectionSettings {
  const subject = `connections.${connectionName}`;
  const fail = (reason: string): never => {
    throw new ConfigError(`${subject}: ${reason}`, { subject });
  };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('not a valid URL');
  }
  if (parsed.protocol !== 'mysql:' && parsed.protocol !== 'mariadb:') {
    fail(`expected a mysql:// or mariadb:// URL, got '${parsed.protocol}'`);
  }
  if (!Number.isInteger(poolSize) || poolSize < 1) fail(`poolSize must be a positive integer, got ${poolSize}`);
  const decode = (text: string, what: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      return fail(`the URL's ${what} is not valid percent-encoding`);
    }
  };
  const user = decode(parsed.username, 'user name');
  const password = decode(parsed.password, 'password');
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORT;
  const database = decode(parsed.pathname.replace(/^\//, ''), 'database');
  if (!user) fail('the URL names no user');
  if (!database || database.includes('/')) fail('the URL must name one database as its path (mysql://user@host/database)');

  let ssl: PoolOptions['ssl'];
  let connectTimeout = DEFAULT_CONNECT_TIMEOUT_MS;
  for (const [key, value] of parsed.searchParams) {
    switch (key) {
      case 'ssl':
        switch (value.toLowerCase()) {
          case 'true': case '1': case 'required': case 'verify':
            ssl = { rejectUnauthorized: true };
            break;
          case 'no-verify':
            ssl = { rejectUnauthorized: false };
            break;
          case 'false': case '0': case 'disabled':
            ssl = undefined;
            break;
          default:
            fail(`URL parameter ssl must be true, no-verify or false, got '${value}'`);
        }
        break;
      case 'connectTimeout':
        connectTimeout = Number(value);
        if (!Number.isInteger(connectTimeout) || connectTimeout <= 0) fail(`URL parameter connectTimeout must be milliseconds, got '${value}'`);
        break;
      default:
        fail(`unknown URL parameter '${key}' (supported: ssl, connectTimeout)`);
    }
  }

  const pool: PoolOptions = {
    host,
    port,
    user,
    password,
    database,
    connectionLimit: poolSize,
    connectTimeout,
    ...(ssl ? { ssl } : {}),
    // Lossless reads: BIGINT/DECIMAL as strings, temporal values as the server's text (the session is
    // UTC, see MysqlDatabase), JSON as its text.
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    dateStrings: true,
    jsonStrings: true,
    timezone: 'Z',
    // utf8mb4 for the handshake; every rendered text is CONVERTed to utf8mb4 anyway, so the connection
    // collation never decides a comparison or a CONCAT.
    charset: 'UTF8MB4_BIN',
    multipleStatements: false,
    enableKeepAlive: true,
    waitForConnections: true,
  };
  return { user, password, host, port, database, pool };
}
