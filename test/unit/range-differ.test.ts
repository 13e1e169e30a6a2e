import { describe, expect, it } from 'vitest';
import type { Row, TableShape } from '../../src/dialect/types.js';
import { diffRange } from '../../src/reconcile/range-differ.js';
import { MemoryDatabase } from '../support/memory-database.js';

const shape: TableShape = {
  table: 'items',
  keyIndexes: [0],
  columns: [
    { name: 'id', nativeType: 'int', kind: 'integer', hashSite: 'sql', generated: false },
    { name: 'name', nativeType: 'text', kind: 'text', hashSite: 'sql', generated: false },
  ],
};

function sides(sourceRows: Row[], targetRows: Row[]) {
  const source = new MemoryDatabase('src', shape);
  const target = new MemoryDatabase('dst', shape);
  source.rows = sourceRows;
  target.rows = targetRows;
  return { source: { database: source, shape }, target: { database: target, shape } };
}

const table = (count: number, name = (id: number) => `row ${id}`): Row[] =>
  Array.from({ length: count }, (_, index) => [index + 1, name(index + 1)]);

describe('diffRange', () => {
  it.each(['checksum', 'rows'] as const)('finds exactly the missing, extra and changed keys (%s)', async (mode) => {
    const sourceRows = table(5000);
    const targetRows = table(5000, (id) => (id % 997 === 0 ? 'changed' : `row ${id}`))
      .filter(([id]) => (id as number) % 1201 !== 0)
      .concat([[-5, 'below'], [6000, 'above'], [2500.5, 'between']]);
    const { source, target } = sides(sourceRows, targetRows);
    const { differences, stats } = await diffRange(source, target, {}, { mode, leafRows: 64 });
    expect(differences.changed.map(([id]) => id).sort((a, b) => (a as number) - (b as number))).toEqual([997, 1994, 2991, 3988, 4985]);
    expect(differences.missing.map(([id]) => id).sort()).toEqual([1201, 2402, 3603, 4804]);
    expect(differences.extra.map(([id]) => id).sort((a, b) => (a as number) - (b as number))).toEqual([-5, 2500.5, 6000]);
    expect(stats.sourceRows).toBe(5000);
    expect(stats.targetRows).toBe(targetRows.length);
    if (mode === 'checksum') expect(stats.fetchedRows).toBeLessThan(5000);
    else expect(stats.fetchedRows).toBe(5000 + targetRows.length);
  });

  it('diffs directly by row hashes when told most ranges differ, splitting above the limit', async () => {
    const sourceRows = table(3000);
    const targetRows = table(3000, (id) => (id % 500 === 0 ? 'changed' : `row ${id}`)).filter(([id]) => id !== 42);
    for (const directLimit of [50_000, 700]) {
      const { source, target } = sides(sourceRows, targetRows);
      const { differences, stats } = await diffRange(source, target, {}, { mode: 'checksum', direct: true, directLimit });
      expect(differences.changed.map(([id]) => id)).toEqual([500, 1000, 1500, 2000, 2500, 3000]);
      expect(differences.missing).toEqual([[42]]);
      expect(stats).toMatchObject({ sourceRows: 3000, targetRows: 2999, checksums: 0, fetchedRows: 5999 });
    }
  });

  it('reports nothing and fetches nothing for equal sides', async () => {
    const { source, target } = sides(table(3000), table(3000));
    const { differences, stats } = await diffRange(source, target, {}, { mode: 'checksum' });
    expect(differences).toEqual({ missing: [], extra: [], changed: [] });
    expect(stats).toEqual({ sourceRows: 3000, targetRows: 3000, checksums: 1, fetchedRows: 0 });
  });

  it('bisects a target-only region by the target keys', async () => {
    const targetOnly = Array.from({ length: 2000 }, (_, index): Row => [10_000 + index, 'extra']);
    const { source, target } = sides(table(10), [...table(10), ...targetOnly]);
    const { differences } = await diffRange(source, target, { lower: [5] }, { mode: 'checksum', leafRows: 100 });
    expect(differences.extra).toHaveLength(2000);
    expect(differences.missing).toHaveLength(0);
  });

  it('limits itself to the range', async () => {
    const { source, target } = sides(table(100), table(100, () => 'all different'));
    const { differences } = await diffRange(source, target, { lower: [10], upper: [20] }, { mode: 'checksum', leafRows: 4 });
    expect(differences.changed.map(([id]) => id).sort((a, b) => (a as number) - (b as number))).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  it('catches two equal changes that an XOR aggregate would cancel', async () => {
    const { source, target } = sides(
      [[1, 'a'], [2, 'a']],
      [[1, 'b'], [2, 'b']],
    );
    const { differences } = await diffRange(source, target, {}, { mode: 'checksum' });
    expect(differences.changed).toHaveLength(2);
  });
});
