import type { CdcMode } from './change-source.js';
import { parseBinlogPosition } from './mysql/mysql-binlog-source.js';
import { mysqlPollingPositionNumber } from './mysql/mysql-polling-source.js';
import { parseLsn } from './postgres/postgres-logical-stream.js';
import { postgresPollingPositionNumber } from './postgres/postgres-polling-source.js';

/**
 * A CDC position (opaque text, see change-source.ts) as one number that grows with the stream, for
 * the `rowsync_cdc_*_position` gauges: whether a stream moves, and how fast, is then a PromQL
 * `rate()` or `changes()`. Comparable only within one stream and mode:
 * - logical: the LSN, in bytes of WAL;
 * - binlog: file sequence number × 2^32 + offset (a binlog file is at most 1 GiB, so the number
 *   only grows; it jumps at each rotation);
 * - polling: the change table's id (MySQL/MariaDB) or transaction id horizon (PostgreSQL).
 * Undefined when the text is not a position of that mode.
 */
export function positionNumber(mode: CdcMode, position: string): number | undefined {
  switch (mode) {
    case 'logical':
      try {
        return Number(parseLsn(position));
      } catch {
        return undefined;
      }
    case 'binlog': {
      const parsed = parseBinlogPosition(position);
      const sequence = parsed ? /\.(\d+)$/.exec(parsed.file)?.[1] : undefined;
      return parsed && sequence !== undefined ? Number(sequence) * 2 ** 32 + parsed.offset : undefined;
    }
    case 'polling':
      return mysqlPollingPositionNumber(position) ?? postgresPollingPositionNumber(position);
    default: {
      // A status published by another rowsync version may name a mode this one does not know.
      const unknown: never = mode;
      void unknown;
      return undefined;
    }
  }
}
