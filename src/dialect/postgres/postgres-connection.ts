import pg from 'pg';
import { ConfigError } from '../../errors/index.js';

/** What rowsync takes from a `postgres://` URL. The password never leaves this object and the pool. */
export interface PostgresConnectionSettings {
  readonly host: string;
  readonly port: number;
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly database: string | undefined;
  /** `?schema=` of the URL: the schema whose tables this connection syncs. @defaultValue 'public' */
  readonly schema: string;
  /** `?sslmode=require|verify-ca|verify-full` turns TLS on. */
  readonly ssl: boolean | { rejectUnauthorized: boolean };
  /**
   * `?application_name=`: how the server (pg_stat_activity, logs) names these connections, so one
   * connection's sessions can be told apart from others on the same database. @defaultValue 'rowsync'
   */
  readonly applicationName: string;
}

export function parsePostgresUrl(url: string, connectionName: string): PostgresConnectionSettings {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`connections.${connectionName}: not a valid URL`, { subject: `connections.${connectionName}` });
  }
  const decode = (text: string) => (text === '' ? undefined : decodeURIComponent(text));
  const sslmode = parsed.searchParams.get('sslmode') ?? 'disable';
  const ssl =
    sslmode === 'verify-ca' || sslmode === 'verify-full'
      ? { rejectUnauthorized: true }
      : sslmode === 'require' || sslmode === 'prefer'
        ? { rejectUnauthorized: false }
        : false;
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port === '' ? 5432 : Number(parsed.port),
    user: decode(parsed.username),
    password: decode(parsed.password),
    database: decode(parsed.pathname.replace(/^\//, '')),
    schema: parsed.searchParams.get('schema') ?? 'public',
    ssl,
    applicationName: parsed.searchParams.get('application_name') || 'rowsync',
  };
}

/**
 * Session settings every connection starts with, in the startup packet (no extra round trip):
 * - TimeZone=UTC: timestamptz renders (and is read) as its UTC instant, and naive
 *   'YYYY-MM-DD HH:MM:SS' input for a timestamptz is taken as UTC.
 * - extra_float_digits=3: PostgreSQL 12+ then prints doubles shortest-exact, so parseFloat is lossless.
 * - DateStyle=ISO / IntervalStyle=postgres / bytea_output=hex: the `::text` renderings the canonical
 *   text relies on are fixed whatever the server or role defaults say.
 */
export const SESSION_OPTIONS =
  '-c TimeZone=UTC -c extra_float_digits=3 -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c bytea_output=hex';

const raw = (value: string): string => value;

/** libpq startup `options` split on spaces; a backslash escapes a space or a backslash. */
function escapeStartupOption(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/ /g, '\\ ');
}

/**
 * Types read as the server's text, per pool (never the process-global pg.types): int8 and numeric
 * keep every digit; date/time types keep microseconds and are normalised by the dialect instead of
 * going through a JS Date (millisecond precision, local time zone); json stays the stored text.
 */
const RAW_TEXT_OIDS = new Set<number>([
  20, // int8
  1700, // numeric
  1082, // date
  1083, // time
  1266, // timetz
  1114, // timestamp
  1184, // timestamptz
  1186, // interval
  114, // json
  3802, // jsonb
  1016, // int8[]
  1231, // numeric[]
  1182, // date[]
  1183, // time[]
  1270, // timetz[]
  1115, // timestamp[]
  1185, // timestamptz[]
  1187, // interval[]
  199, // json[]
  3807, // jsonb[]
]);

export const LOSSLESS_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if ((format ?? 'text') === 'text' && RAW_TEXT_OIDS.has(oid)) return raw;
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** Where and as whom every rowsync connection to this server connects (pool, replication, polling). */
export function serverOptions(settings: PostgresConnectionSettings) {
  return {
    host: settings.host,
    port: settings.port,
    user: settings.user,
    password: settings.password,
    database: settings.database,
    ssl: settings.ssl,
  };
}

export function createPool(settings: PostgresConnectionSettings, poolSize: number): pg.Pool {
  const pool = new pg.Pool({
    ...serverOptions(settings),
    max: poolSize,
    types: LOSSLESS_TYPES,
    // search_path makes the schema of the URL the default for `execute` (setup SQL, the conflicts
    // table); the dialect's own queries qualify every table anyway.
    options: `${SESSION_OPTIONS} -c search_path=${escapeStartupOption(`"${settings.schema.replace(/"/g, '""')}"`)}`,
    application_name: settings.applicationName,
    connectionTimeoutMillis: 20_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server connection dies emits 'error' on the pool; without a listener that
  // would crash the process. The pool already discards the client; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}
