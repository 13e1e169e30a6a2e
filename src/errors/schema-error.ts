import { RowsyncError } from './rowsync-error.js';

export type SchemaErrorCode =
  | 'TABLE_NOT_FOUND'
  | 'NO_PRIMARY_KEY'
  | 'COLUMN_MISSING'
  | 'KEY_MISMATCH'
  | 'UNSUPPORTED_TYPE'
  | 'INVALID_FILTER'
  | 'COLUMN_EXCLUDED';

/**
 * A table that cannot be synchronised as it is: missing, without primary key, a target lacking a
 * source column, different key columns, a column type rowsync cannot compare exactly, a `where`
 * filter the server refuses, or an `excludeColumns` entry that names a key or no column at all.
 * `subject` is `connection.table` or `connection.table.column`.
 */
export class SchemaError extends RowsyncError {
  override readonly name = 'SchemaError';
  declare readonly code: SchemaErrorCode;
  constructor(code: SchemaErrorCode, message: string, options: { subject?: string; cause?: unknown } = {}) {
    super(code, message, options);
  }
}
