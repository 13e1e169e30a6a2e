/**
 * mysql2 / server errors -> DatabaseError, at the dialect boundary. Messages name the connection and
 * engine, never the URL or the password (the driver's own messages do not contain the password; a URL or
 * `password=` pair in one is redacted anyway, see redact.ts).
 */
import { DatabaseError, RowsyncError, type DatabaseErrorCode } from '../../errors/index.js';
import { redactSecrets } from '../../logging/redact.js';

interface DriverError {
  readonly code?: unknown;
  readonly errno?: unknown;
  readonly sqlMessage?: unknown;
  readonly message?: unknown;
  readonly fatal?: unknown;
}

interface Translation {
  readonly code: DatabaseErrorCode;
  readonly retryable: boolean;
  readonly summary: string;
}

/** By mysql2 `code` (server error names, Node socket errors, mysql2 protocol errors). */
const BY_CODE: Readonly<Record<string, Translation>> = {
  ECONNREFUSED: { code: 'DB_CONNECTION_REFUSED', retryable: true, summary: 'connection refused' },
  ENOTFOUND: { code: 'DB_HOST_NOT_FOUND', retryable: false, summary: 'host not found' },
  EAI_AGAIN: { code: 'DB_HOST_NOT_FOUND', retryable: true, summary: 'host lookup failed (temporary)' },
  ER_ACCESS_DENIED_ERROR: { code: 'DB_ACCESS_DENIED', retryable: false, summary: 'access denied' },
  ER_DBACCESS_DENIED_ERROR: { code: 'DB_ACCESS_DENIED', retryable: false, summary: 'access denied' },
  ER_TABLEACCESS_DENIED_ERROR: { code: 'DB_ACCESS_DENIED', retryable: false, summary: 'access denied' },
  ER_COLUMNACCESS_DENIED_ERROR: { code: 'DB_ACCESS_DENIED', retryable: false, summary: 'access denied' },
  ER_SPECIFIC_ACCESS_DENIED_ERROR: { code: 'DB_ACCESS_DENIED', retryable: false, summary: 'access denied' },
  ER_ACCESS_DENIED_NO_PASSWORD_ERROR: { code: 'DB_ACCESS_DENIED', retryable: false, summary: 'access denied' },
  ER_NOT_SUPPORTED_AUTH_MODE: { code: 'DB_ACCESS_DENIED', retryable: false, summary: 'authentication method not supported' },
  ER_BAD_DB_ERROR: { code: 'DB_UNKNOWN_DATABASE', retryable: false, summary: 'unknown database' },
  ER_LOCK_DEADLOCK: { code: 'DB_DEADLOCK', retryable: true, summary: 'deadlock' },
  ER_LOCK_WAIT_TIMEOUT: { code: 'DB_TIMEOUT', retryable: true, summary: 'lock wait timeout' },
  ER_STATEMENT_TIMEOUT: { code: 'DB_TIMEOUT', retryable: true, summary: 'statement timeout' }, // MariaDB max_statement_time
  ER_QUERY_TIMEOUT: { code: 'DB_TIMEOUT', retryable: true, summary: 'statement timeout' }, // MySQL 8 max_execution_time
  ER_QUERY_INTERRUPTED: { code: 'DB_CONNECTION_LOST', retryable: true, summary: 'query interrupted' },
  ETIMEDOUT: { code: 'DB_TIMEOUT', retryable: true, summary: 'timeout' },
  PROTOCOL_SEQUENCE_TIMEOUT: { code: 'DB_TIMEOUT', retryable: true, summary: 'timeout' },
  ECONNRESET: { code: 'DB_CONNECTION_LOST', retryable: true, summary: 'connection lost' },
  EPIPE: { code: 'DB_CONNECTION_LOST', retryable: true, summary: 'connection lost' },
  PROTOCOL_CONNECTION_LOST: { code: 'DB_CONNECTION_LOST', retryable: true, summary: 'connection lost' },
  PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR: { code: 'DB_CONNECTION_LOST', retryable: true, summary: 'connection lost' },
  ER_SERVER_SHUTDOWN: { code: 'DB_CONNECTION_LOST', retryable: true, summary: 'server shutting down' },
  ER_CONNECTION_KILLED: { code: 'DB_CONNECTION_LOST', retryable: true, summary: 'connection killed' },
  ER_CON_COUNT_ERROR: { code: 'DB_CONNECTION_REFUSED', retryable: true, summary: 'too many connections' },
  ER_TOO_MANY_USER_CONNECTIONS: { code: 'DB_CONNECTION_REFUSED', retryable: true, summary: 'too many connections' },
  ER_DUP_ENTRY: { code: 'DB_CONSTRAINT_VIOLATION', retryable: false, summary: 'duplicate key' },
  ER_NO_REFERENCED_ROW: { code: 'DB_CONSTRAINT_VIOLATION', retryable: false, summary: 'foreign key violation' },
  ER_NO_REFERENCED_ROW_2: { code: 'DB_CONSTRAINT_VIOLATION', retryable: false, summary: 'foreign key violation' },
  ER_ROW_IS_REFERENCED: { code: 'DB_CONSTRAINT_VIOLATION', retryable: false, summary: 'foreign key violation' },
  ER_ROW_IS_REFERENCED_2: { code: 'DB_CONSTRAINT_VIOLATION', retryable: false, summary: 'foreign key violation' },
  ER_BAD_NULL_ERROR: { code: 'DB_CONSTRAINT_VIOLATION', retryable: false, summary: 'NULL in a NOT NULL column' },
  ER_CHECK_CONSTRAINT_VIOLATED: { code: 'DB_CONSTRAINT_VIOLATION', retryable: false, summary: 'check constraint violated' },
  ER_CONSTRAINT_FAILED: { code: 'DB_CONSTRAINT_VIOLATION', retryable: false, summary: 'check constraint violated' }, // MariaDB 4025
};

/** By errno, for servers whose codes mysql2 does not name (MariaDB-only numbers). */
const BY_ERRNO: Readonly<Record<number, Translation>> = {
  1045: BY_CODE.ER_ACCESS_DENIED_ERROR!,
  1044: BY_CODE.ER_DBACCESS_DENIED_ERROR!,
  1049: BY_CODE.ER_BAD_DB_ERROR!,
  1213: BY_CODE.ER_LOCK_DEADLOCK!,
  1205: BY_CODE.ER_LOCK_WAIT_TIMEOUT!,
  1969: BY_CODE.ER_STATEMENT_TIMEOUT!,
  3024: BY_CODE.ER_QUERY_TIMEOUT!,
  4025: BY_CODE.ER_CONSTRAINT_FAILED!,
  3819: BY_CODE.ER_CHECK_CONSTRAINT_VIOLATED!,
  1927: BY_CODE.ER_CONNECTION_KILLED!,
  1053: BY_CODE.ER_SERVER_SHUTDOWN!,
};

export interface ErrorContext {
  readonly connectionName: string;
}

export function translateMysqlError(error: unknown, context: ErrorContext, action?: string): Error {
  if (error instanceof RowsyncError) return error;
  const driver = (typeof error === 'object' && error !== null ? error : {}) as DriverError;
  const code = typeof driver.code === 'string' ? driver.code : undefined;
  const errno = typeof driver.errno === 'number' ? driver.errno : undefined;
  const rawMessage = String(driver.sqlMessage ?? driver.message ?? error);
  const translation =
    (code !== undefined ? BY_CODE[code] : undefined) ??
    (errno !== undefined ? BY_ERRNO[errno] : undefined) ??
    (driver.fatal === true
      ? { code: 'DB_CONNECTION_LOST' as const, retryable: true, summary: 'connection lost' }
      : { code: 'DB_QUERY_FAILED' as const, retryable: false, summary: 'query failed' });
  const detail = redactSecrets(lowerFirst(rawMessage));
  const where = action ? ` (${action})` : '';
  return new DatabaseError(
    translation.code,
    `connection ${context.connectionName} (mysql): ${translation.summary}${where}: ${detail}`,
    { connection: context.connectionName, retryable: translation.retryable, engineCode: code ?? (errno !== undefined ? String(errno) : undefined), cause: error },
  );
}

function lowerFirst(text: string): string {
  return text.length > 0 ? text[0]!.toLowerCase() + text.slice(1) : text;
}
