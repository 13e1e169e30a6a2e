import { SchemaError } from '../errors/index.js';
import type { TablePair } from '../dialect/table-pair.js';
import type { TableShape } from '../dialect/types.js';
import { columnIndex } from '../sync/sync-keys.js';

/**
 * The columns a reconcile compares. `checksum` and `field_by_field` compare every shared column;
 * `timestamp` compares only the key and one timestamp column (cheaper, and weaker: a change that
 * did not touch the timestamp goes unseen). Rows found different are still synced in full.
 */
export function compareShapes(
  pair: TablePair,
  mode: 'checksum' | 'field_by_field' | 'timestamp',
  timestampColumn: string,
  sourceConnection: string,
): TablePair {
  if (mode !== 'timestamp') return pair;
  const index = columnIndex(pair.source, timestampColumn);
  if (index === -1) {
    throw new SchemaError('COLUMN_MISSING', `compare 'timestamp' needs column ${timestampColumn} in ${sourceConnection}.${pair.source.table}`, {
      subject: `${sourceConnection}.${pair.source.table}.${timestampColumn}`,
    });
  }
  const keep = [...pair.source.keyIndexes, ...(pair.source.keyIndexes.includes(index) ? [] : [index])];
  // The same table (name, schema, row filter), fewer columns.
  const project = (shape: TableShape): TableShape => ({
    ...shape,
    columns: keep.map((position) => shape.columns[position]!),
    keyIndexes: shape.keyIndexes.map((_, position) => position),
  });
  return { source: project(pair.source), target: project(pair.target) };
}
