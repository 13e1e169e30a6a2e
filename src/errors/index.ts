export { RowsyncError } from './rowsync-error.js';
export { ConfigError } from './config-error.js';
export { SchemaError, type SchemaErrorCode } from './schema-error.js';
export { DatabaseError, type DatabaseErrorCode } from './database-error.js';
export { CdcSetupError, PositionLostError } from './cdc-error.js';
