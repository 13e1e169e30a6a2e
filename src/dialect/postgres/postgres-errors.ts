import { DatabaseError, RowsyncError, type DatabaseErrorCode } from '../../errors/index.js';
import { redactSecrets } from '../../logging/redact.js';

export interface ErrorContext {
  readonly connectionName: string;
  readonly host: string;
  readonly port: number;
}

interface Classified {
  readonly code: DatabaseErrorCode;
  readonly retryable: boolean;
  /** Replaces the driver's message (system errors say little, AggregateError says nothing). */
  readonly message?: string;
}

/**
 * Translates a pg / Node error into a `DatabaseError` naming the connection. Our own errors
 * (`SchemaError`, already-translated `DatabaseError`) pass through unchanged.
 */
export function translatePostgresError(error: unknown, context: ErrorContext): Error {
  if (error instanceof RowsyncError) return error;
  const engineCode = errorCode(error);
  const driverMessage = error instanceof Error ? error.message : String(error);
  const classified = classify(engineCode, driverMessage, context);
  const message = redactSecrets(`connection ${context.connectionName} (postgres): ${classified.message ?? driverMessage}`);
  return new DatabaseError(classified.code, message, {
    connection: context.connectionName,
    retryable: classified.retryable,
    ...(engineCode === undefined ? {} : { engineCode }),
    cause: error,
  });
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code;
  // Node's happy-eyeballs connect (autoSelectFamily) reports an AggregateError of per-address errors.
  const inner = (error as { errors?: unknown }).errors;
  if (Array.isArray(inner)) {
    for (const item of inner) {
      const innerCode = errorCode(item);
      if (innerCode !== undefined) return innerCode;
    }
  }
  return undefined;
}

function classify(code: string | undefined, message: string, context: ErrorContext): Classified {
  const where = `${context.host}:${context.port}`;
  switch (code) {
    case 'ECONNREFUSED':
      return { code: 'DB_CONNECTION_REFUSED', retryable: true, message: `connection refused at ${where}` };
    case 'ENOTFOUND':
      return { code: 'DB_HOST_NOT_FOUND', retryable: false, message: `host not found: ${context.host}` };
    case 'EAI_AGAIN':
      return { code: 'DB_HOST_NOT_FOUND', retryable: true, message: `host lookup failed (temporary): ${context.host}` };
    case 'ETIMEDOUT':
      return { code: 'DB_TIMEOUT', retryable: true, message: `timed out connecting to ${where}` };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { code: 'DB_CONNECTION_LOST', retryable: true, message: `${code} (${where}): ${message}` };
    case '28000': // invalid_authorization_specification (no pg_hba entry, unknown role)
    case '28P01': // invalid_password
      return { code: 'DB_ACCESS_DENIED', retryable: false };
    case '3D000': // invalid_catalog_name
      return { code: 'DB_UNKNOWN_DATABASE', retryable: false };
    case '40P01': // deadlock_detected
    case '40001': // serialization_failure
      return { code: 'DB_DEADLOCK', retryable: true };
    case '57014': // query_canceled (statement_timeout)
    case '55P03': // lock_not_available (lock_timeout)
      return { code: 'DB_TIMEOUT', retryable: true };
    case '57P01': // admin_shutdown
    case '57P02': // crash_shutdown
    case '57P03': // cannot_connect_now (starting up / recovery)
    case '53300': // too_many_connections
      return { code: 'DB_CONNECTION_LOST', retryable: true };
    default:
      break;
  }
  if (code !== undefined && code.startsWith('08')) return { code: 'DB_CONNECTION_LOST', retryable: true };
  if (code !== undefined && code.startsWith('23')) return { code: 'DB_CONSTRAINT_VIOLATION', retryable: false };
  if (/timeout/i.test(message)) return { code: 'DB_TIMEOUT', retryable: true };
  if (/Connection terminated|connection closed|Client has encountered a connection error/i.test(message)) {
    return { code: 'DB_CONNECTION_LOST', retryable: true };
  }
  return { code: 'DB_QUERY_FAILED', retryable: false };
}
