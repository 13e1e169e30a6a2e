/**
 * `compare: timestamp` projects a pair onto the key and one column: the projection is still the same
 * table, so a table entry's schema and row filter must survive it.
 */
import { describe, expect, it } from 'vitest';
import type { TablePair } from '../../src/dialect/table-pair.js';
import type { ShapeColumn, TableShape } from '../../src/dialect/types.js';
import { compareShapes } from '../../src/reconcile/compare-shape.js';

const column = (name: string, kind: ShapeColumn['kind']): ShapeColumn => ({ name, nativeType: kind, kind, hashSite: 'sql', generated: false });

describe('compareShapes', () => {
  it('timestamp mode keeps the key and the timestamp column, and the shapes\' schema and filter', () => {
    const source: TableShape = {
      table: 'orders', columns: [column('id', 'integer'), column('note', 'text'), column('updated_at', 'datetime')], keyIndexes: [0], filter: "region = 'eu'",
    };
    const pair: TablePair = { source, target: { ...source, table: 'orders_2024', schema: 'archive' } };
    const projected = compareShapes(pair, 'timestamp', 'updated_at', 'src');
    expect(projected.source).toEqual({ table: 'orders', columns: [source.columns[0], source.columns[2]], keyIndexes: [0], filter: "region = 'eu'" });
    expect(projected.target).toMatchObject({ table: 'orders_2024', schema: 'archive', filter: "region = 'eu'", keyIndexes: [0] });
  });
});
