import { RowsyncError } from './rowsync-error.js';

/**
 * The source cannot stream as configured: a server setting (`binlog_format`, `wal_level`...), a
 * privilege, a missing slot or trigger, no free replication slot. `subject` names the setting or
 * privilege; the message says how to fix it. A retry cannot help: the reader reports it and stops.
 */
export class CdcSetupError extends RowsyncError {
  override readonly name = 'CdcSetupError';
  constructor(message: string, options: { subject: string; cause?: unknown }) {
    super('CDC_SETUP', message, options);
  }
}

/**
 * The source no longer has the position a reader would resume from (binlog file purged, replication
 * slot invalidated or dropped). The reader answers it with a full reconcile of the pipeline's tables
 * and streams on from a fresh position: the changes in between are never skipped silently.
 */
export class PositionLostError extends RowsyncError {
  override readonly name = 'PositionLostError';
  readonly position: string;
  constructor(message: string, options: { position: string; subject: string; cause?: unknown }) {
    super('CDC_POSITION_LOST', message, options);
    this.position = options.position;
  }
}
