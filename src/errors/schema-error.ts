import { RowsyncError } from './rowsync-error.js';

export type SchemaErrorCode =
  | 'TABLE_NOT_FOUND'
  | 'NO_PRIMARY_KEY'
  | 'COLUMN_MISSING'
  | 'KEY_MISMATCH'
  | 'UNSUPPORTED_TYPE';

/**
 * A table that cannot be synchronised as it is: missing, without primary key, a target lacking a
 * source column, different key columns, or a column type rowsync cannot compare exactly.
 * `subject` is `connection.table` or `connection.table.column`.
 */
export class SchemaError extends RowsyncError {
  override readonly name = 'SchemaError';
  declare readonly code: SchemaErrorCode;
  constructor(code: SchemaErrorCode, message: string, options: { subject?: string; cause?: unknown } = {}) {
    super(code, message, options);
  }
}
