import { RowsyncError } from './rowsync-error.js';

export type DatabaseErrorCode =
  | 'DB_CONNECTION_REFUSED'
  | 'DB_HOST_NOT_FOUND'
  | 'DB_ACCESS_DENIED'
  | 'DB_UNKNOWN_DATABASE'
  | 'DB_TIMEOUT'
  | 'DB_CONNECTION_LOST'
  | 'DB_DEADLOCK'
  | 'DB_CONSTRAINT_VIOLATION'
  | 'DB_QUERY_FAILED';

/**
 * A driver error translated at the dialect boundary. `connection` is the configured connection name
 * (never its URL); `retryable` tells job code whether another attempt can help (deadlocks, lost
 * connections, timeouts) or not (access denied, constraint violations).
 */
export class DatabaseError extends RowsyncError {
  override readonly name = 'DatabaseError';
  declare readonly code: DatabaseErrorCode;
  readonly connection: string;
  readonly retryable: boolean;
  /** The engine's own error code (e.g. `ER_ACCESS_DENIED_ERROR`, `28P01`), when there is one. */
  readonly engineCode: string | undefined;

  constructor(
    code: DatabaseErrorCode,
    message: string,
    options: { connection: string; retryable: boolean; engineCode?: string; subject?: string; cause?: unknown },
  ) {
    super(code, message, { subject: options.subject ?? options.connection, cause: options.cause });
    this.connection = options.connection;
    this.retryable = options.retryable;
    this.engineCode = options.engineCode;
  }
}
