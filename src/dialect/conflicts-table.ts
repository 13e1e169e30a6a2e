import { createHash } from 'node:crypto';
import type { ConflictRecord, PortableValue } from './types.js';

/** Tables rowsync creates start with this; they are never synced as user tables. */
export const ROWSYNC_TABLE_PREFIX = 'rowsync_';

/** Name of the table, in each target database, that holds `conflict: manual` pairs. */
export const CONFLICTS_TABLE = 'rowsync_conflicts';

/** Name of the table, in each target database, that holds CDC checkpoints (see `Database.readCheckpoint`). */
export const CHECKPOINTS_TABLE = 'rowsync_cdc_checkpoints';

/** The values both dialects store per conflict (their DDL differs; these columns do not). */
export interface ConflictRow {
  /** md5(pipeline, table, key): one row per key, refreshed while the conflict stays pending. */
  readonly id: string;
  readonly pipeline: string;
  readonly tableName: string;
  readonly rowKey: string;
  readonly sourceRow: string;
  readonly targetRow: string;
}

export function conflictRow(record: ConflictRecord): ConflictRow {
  const rowKey = toJson(record.key);
  return {
    id: createHash('md5').update(`${record.pipeline}\u0000${record.table}\u0000${rowKey}`).digest('hex'),
    pipeline: record.pipeline,
    tableName: record.table,
    rowKey,
    sourceRow: toJson(record.sourceRow),
    targetRow: toJson(record.targetRow),
  };
}

/** JSON text of a row object; binary values as `{ "$hex": "..." }`. */
function toJson(row: Readonly<Record<string, PortableValue>>): string {
  return JSON.stringify(row, (_key, value: unknown) => {
    if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer') {
      return { $hex: Buffer.from((value as { data: number[] }).data).toString('hex') };
    }
    return value;
  });
}
