import { describe, expect, it, vi } from 'vitest';
import type { KeyRange, KeyTuple, Row, TableShape } from '../../src/dialect/types.js';
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
    expect(stats).toEqual({ sourceRows: 3000, targetRows: 3000, checksums: 1, fetchedRows: 0, scanMs: expect.any(Number) });
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

describe('diffRange over a bounded single integer key (bucket checksums)', () => {
  const ids = (keys: readonly KeyTuple[]) => keys.map(([id]) => BigInt(String(id))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(String);
  const rowsOf = (keys: readonly (number | string)[], name = (key: number | string) => `row ${key}`): Row[] => keys.map((key) => [key, name(key)]);
  const spies = (side: { database: MemoryDatabase }) => ({
    checksumRange: vi.spyOn(side.database, 'checksumRange'),
    checksumBuckets: vi.spyOn(side.database, 'checksumBuckets'),
    rowHashes: vi.spyOn(side.database, 'rowHashes'),
  });

  it('checksums an equal bounded range once, without buckets', async () => {
    const keys = Array.from({ length: 3000 }, (_, index) => index + 1);
    const { source, target } = sides(rowsOf(keys), rowsOf(keys));
    const [sourceSpies] = [spies(source), spies(target)];
    const { differences, stats } = await diffRange(source, target, { lower: [1], upper: [3001] }, { mode: 'checksum' });
    expect(differences).toEqual({ missing: [], extra: [], changed: [] });
    expect(stats).toMatchObject({ checksums: 1, fetchedRows: 0, scanMs: expect.any(Number) });
    expect(sourceSpies.checksumRange).toHaveBeenCalledTimes(1);
    expect(sourceSpies.checksumBuckets).not.toHaveBeenCalled();
  });

  it.each([false, true])('checksums by bucket and downloads only the differing buckets (direct: %s)', async (direct) => {
    // Even keys 2..10000; the target changes every 500th row, lacks one and has two odd keys more.
    const keys = Array.from({ length: 5000 }, (_, index) => 2 * (index + 1));
    const targetRows = rowsOf(keys, (key) => (Number(key) % 1000 === 0 ? 'changed' : `row ${key}`))
      .filter(([id]) => id !== 4002)
      .concat(rowsOf([3001, 7777]));
    const { source, target } = sides(rowsOf(keys), targetRows);
    const [sourceSpies, targetSpies] = [spies(source), spies(target)];
    const { differences, stats } = await diffRange(source, target, { lower: [0], upper: [10_002] }, { mode: 'checksum', direct });
    expect(ids(differences.changed)).toEqual(Array.from({ length: 10 }, (_, index) => String((index + 1) * 1000)));
    expect(ids(differences.missing)).toEqual(['4002']);
    expect(ids(differences.extra)).toEqual(['3001', '7777']);
    // Not direct: a plain range checksum first (cheaper when the range is equal), then the buckets.
    expect(stats).toMatchObject({ sourceRows: 5000, targetRows: 5001, checksums: direct ? 1 : 2 });
    // 13 buckets of about 32 rows differ (keys are sparse: 10002 values for 5000 rows).
    expect(stats.fetchedRows).toBeLessThan(1000);
    for (const side of [sourceSpies, targetSpies]) {
      expect(side.checksumBuckets).toHaveBeenCalledTimes(1);
      expect(side.checksumRange).toHaveBeenCalledTimes(direct ? 0 : 1);
      // The differing buckets are read in one query per side, as bounded key intervals.
      expect(side.rowHashes).toHaveBeenCalledTimes(1);
      const ranges = side.rowHashes.mock.calls[0]![1] as readonly KeyRange[];
      expect(ranges.length).toBeGreaterThan(1);
      for (const range of ranges) expect(range.lower && range.upper).toBeTruthy();
    }
  });

  it('reports nothing after one bucket scan when the sides are equal', async () => {
    const keys = Array.from({ length: 3000 }, (_, index) => index + 1);
    const { source, target } = sides(rowsOf(keys), rowsOf(keys));
    const { differences, stats } = await diffRange(source, target, { lower: [1], upper: [3001] }, { mode: 'checksum' });
    expect(differences).toEqual({ missing: [], extra: [], changed: [] });
    expect(stats).toEqual({ sourceRows: 3000, targetRows: 3000, checksums: 1, fetchedRows: 0, scanMs: expect.any(Number) });
  });

  it('maps buckets back to exact key intervals around zero and at the range edges', async () => {
    // Width 64 here (6001 keys / 94 buckets): -64, -63, 63 and 64 sit on bucket edges, and bucket 0
    // spans -63..63 because buckets truncate toward zero.
    const keys = Array.from({ length: 6001 }, (_, index) => index - 3000);
    const edges = [-2990, -64, -63, -1, 1, 63, 64, 2994];
    const outside = [-2991, 2995];
    const targetRows = rowsOf(keys, (key) => ([...edges, ...outside].includes(Number(key)) ? 'changed' : `row ${key}`)).filter(([id]) => id !== 0);
    const { source, target } = sides(rowsOf(keys), targetRows);
    const { differences, stats } = await diffRange(source, target, { lower: [-2990], upper: [2995] }, { mode: 'checksum' });
    expect(ids(differences.changed)).toEqual(edges.map(String));
    expect(ids(differences.missing)).toEqual(['0']);
    expect(differences.extra).toEqual([]);
    expect(stats.fetchedRows).toBeLessThan(1000);
  });

  it('keeps keys beyond 2^53 exact', async () => {
    const base = 2n ** 60n;
    const keys = Array.from({ length: 3000 }, (_, index) => (base + BigInt(index)).toString());
    const changed = [keys[0]!, keys[1]!, keys[1500]!, keys[2999]!];
    const targetRows = rowsOf(keys, (key) => (changed.includes(String(key)) ? 'changed' : `row ${key}`)).filter(([id]) => id !== keys[700]);
    const { source, target } = sides(rowsOf(keys), targetRows);
    const range = { lower: [keys[0]!], upper: [(base + 3000n).toString()] };
    const { differences, stats } = await diffRange(source, target, range, { mode: 'checksum', direct: true });
    expect(ids(differences.changed)).toEqual(changed);
    expect(ids(differences.missing)).toEqual([keys[700]]);
    expect(stats).toMatchObject({ checksums: 1 });
    expect(stats.fetchedRows).toBeLessThan(1000);
  });

  it('downloads the whole range at once when most buckets differ', async () => {
    const keys = Array.from({ length: 2000 }, (_, index) => index + 1);
    const { source, target } = sides(rowsOf(keys), rowsOf(keys, () => 'all different'));
    const targetSpies = spies(target);
    const { differences, stats } = await diffRange(source, target, { lower: [1], upper: [2001] }, { mode: 'checksum', direct: true });
    expect(differences.changed).toHaveLength(2000);
    expect(stats).toEqual({ sourceRows: 2000, targetRows: 2000, checksums: 1, fetchedRows: 4000, scanMs: expect.any(Number) });
    expect(targetSpies.rowHashes).toHaveBeenCalledTimes(1);
  });

  it('bisects a differing bucket that holds more than leafRows rows instead of loading it', async () => {
    // Sparse span: 3000 keys packed at the start of a 1,000,000-key range, so a bucket holds ~977 rows.
    const keys = [...Array.from({ length: 3000 }, (_, index) => index + 1), 999_999];
    const { source, target } = sides(rowsOf(keys), rowsOf(keys, (key) => (key === 1200 ? 'changed' : `row ${key}`)));
    const { differences, stats } = await diffRange(source, target, { lower: [1], upper: [1_000_000] }, { mode: 'checksum', leafRows: 100 });
    expect(differences.changed).toEqual([[1200]]);
    expect(stats.checksums).toBeGreaterThan(1);
    expect(stats.fetchedRows).toBeLessThanOrEqual(200);
  });

  it('reads the differing buckets together, at most leafRows rows per query', async () => {
    // Dense keys: 47 buckets of 64 keys; ten changes in ten separate buckets, three buckets per query.
    const keys = Array.from({ length: 3000 }, (_, index) => index + 1);
    const changed = Array.from({ length: 10 }, (_, index) => 150 + index * 300);
    const { source, target } = sides(rowsOf(keys), rowsOf(keys, (key) => (changed.includes(Number(key)) ? 'changed' : `row ${key}`)));
    const sourceSpies = spies(source);
    const { differences, stats } = await diffRange(source, target, { lower: [1], upper: [3001] }, { mode: 'checksum', leafRows: 200 });
    expect(ids(differences.changed)).toEqual(changed.map(String));
    const rangesPerQuery = sourceSpies.rowHashes.mock.calls.map(([, ranges]) => (Array.isArray(ranges) ? ranges.length : 1));
    expect(rangesPerQuery).toEqual([3, 3, 3, 1]);
    expect(stats.fetchedRows).toBe(2 * 10 * 64);
  });

  it('checks again when rows appear between the bucket checksums and the download', async () => {
    // Keys every 10: buckets of 64 keys hold 6 or 7 rows, two of them differ; then the target gains
    // every key in between, so the download of those two buckets holds far more rows than their
    // checksums said and is checked again instead of being cut at its limit.
    const keys = Array.from({ length: 3000 }, (_, index) => (index + 1) * 10);
    const { source, target } = sides(rowsOf(keys), rowsOf(keys, (key) => (key === 5000 || key === 25000 ? 'changed' : `row ${key}`)));
    const checksumBuckets = target.database.checksumBuckets.bind(target.database);
    vi.spyOn(target.database, 'checksumBuckets').mockImplementationOnce(async (...args) => {
      const result = await checksumBuckets(...args);
      target.database.rows.push(...rowsOf(keys.flatMap((key) => Array.from({ length: 9 }, (_, gap) => key + gap + 1)), () => 'concurrent'));
      return result;
    });
    const { differences } = await diffRange(source, target, { lower: [10], upper: [30001] }, { mode: 'checksum', leafRows: 1000 });
    expect(ids(differences.changed)).toEqual(['5000', '25000']);
    // Every concurrent row of those two buckets (4992..5055 and 24960..25023) is seen; the other
    // buckets were compared before the rows appeared.
    expect(differences.extra).toHaveLength(58 + 57);
  });

  it('keeps the plain path for open ranges and for keys that are not one integer column', async () => {
    const keys = Array.from({ length: 3000 }, (_, index) => index + 1);
    const { source, target } = sides(rowsOf(keys), rowsOf(keys, (key) => (key === 2000 ? 'changed' : `row ${key}`)));
    const sourceSpies = spies(source);
    const { differences } = await diffRange(source, target, { lower: [1] }, { mode: 'checksum' });
    expect(differences.changed).toEqual([[2000]]);
    expect(sourceSpies.checksumBuckets).not.toHaveBeenCalled();
    const textShape: TableShape = { ...shape, columns: [{ ...shape.columns[0]!, kind: 'text' }, shape.columns[1]!] };
    await expect(source.database.checksumBuckets(textShape, {}, 10)).rejects.toThrow(/not a single integer column/);
  });
});

