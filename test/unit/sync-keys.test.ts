import { describe, expect, it } from 'vitest';
import type { Row, TableShape } from '../../src/dialect/types.js';
import type { ConflictRecord } from '../../src/dialect/types.js';
import { syncKeys, type SyncPolicy } from '../../src/sync/sync-keys.js';
import { MemoryDatabase } from '../support/memory-database.js';

const shape: TableShape = {
  table: 'accounts',
  keyIndexes: [0],
  columns: [
    { name: 'id', nativeType: 'int', kind: 'integer', hashSite: 'sql', generated: false },
    { name: 'name', nativeType: 'text', kind: 'text', hashSite: 'sql', generated: false },
    { name: 'note', nativeType: 'text', kind: 'text', hashSite: 'sql', generated: false },
    { name: 'updated_at', nativeType: 'datetime', kind: 'datetime', hashSite: 'sql', generated: false },
  ],
};

const SOURCE: Row[] = [
  [1, 'same', null, '2024-01-01 00:00:00.000000'],
  [2, 'src newer', null, '2024-03-01 00:00:00.000000'],
  [3, 'src older', 'keep', '2024-01-01 00:00:00.000000'],
  [4, 'only source', null, '2024-01-01 00:00:00.000000'],
];
const TARGET: Row[] = [
  [1, 'same', null, '2024-01-01 00:00:00'],
  [2, 'dst older', 'dst note', '2024-02-01 00:00:00.000000'],
  [3, 'dst newer', null, '2024-02-01 00:00:00.000000'],
  [5, 'only target', null, '2024-01-01 00:00:00.000000'],
];
const KEYS = [[1], [2], [3], [4], [5], [6]];

async function run(policy: Partial<SyncPolicy>, dryRun = false) {
  const source = new MemoryDatabase('src', shape);
  const target = new MemoryDatabase('dst', shape);
  source.rows = [...SOURCE];
  target.rows = [...TARGET];
  const conflicts: ConflictRecord[] = [];
  const result = await syncKeys(
    {
      pipeline: 'p', source, target, pair: { source: shape, target: shape }, dryRun,
      policy: { conflict: 'source_wins', conflictColumn: 'updated_at', deleteExtra: true, ...policy },
      recordConflicts: async (records) => void conflicts.push(...records),
    },
    KEYS,
  );
  const rows = Object.fromEntries(target.rows.map((row) => [row[0] as number, row]));
  return { result, rows, conflicts, target };
}

describe('syncKeys', () => {
  it('source_wins converges the target to the source', async () => {
    const { result, rows } = await run({});
    expect(result).toEqual({ inserted: 1, updated: 2, deleted: 1, conflicts: 0, unchanged: 2, skipped: 0 });
    // Row 1 was equal by value ('...00' vs '...00.000000') and is left untouched.
    expect(Object.values(rows)).toEqual([TARGET[0], ...SOURCE.slice(1)]);
  });

  it('target_wins only inserts missing rows', async () => {
    const { result, rows } = await run({ conflict: 'target_wins', deleteExtra: false });
    expect(result).toMatchObject({ inserted: 1, updated: 0, deleted: 0, skipped: 3 });
    expect(rows[2]![1]).toBe('dst older');
    expect(rows[5]).toBeDefined();
  });

  it('timestamp lets the newer row win', async () => {
    const { result, rows } = await run({ conflict: 'timestamp' });
    expect(result).toMatchObject({ inserted: 1, updated: 1, deleted: 1, skipped: 1 });
    expect(rows[2]![1]).toBe('src newer');
    expect(rows[3]![1]).toBe('dst newer');
  });

  it('merge writes the source non-null columns over the target', async () => {
    const { rows } = await run({ conflict: 'merge' });
    expect(rows[2]).toEqual([2, 'src newer', 'dst note', '2024-03-01 00:00:00.000000']);
  });

  it('manual records the pair and writes nothing for it', async () => {
    const { result, rows, conflicts } = await run({ conflict: 'manual' });
    expect(result).toMatchObject({ inserted: 1, updated: 0, conflicts: 2 });
    expect(rows[2]![1]).toBe('dst older');
    expect(conflicts.map((conflict) => conflict.key)).toEqual([{ id: 2 }, { id: 3 }]);
    expect(conflicts[0]!.sourceRow!.name).toBe('src newer');
    expect(conflicts[0]!.targetRow!.name).toBe('dst older');
  });

  it('custom asks the resolver', async () => {
    const { rows } = await run({
      conflict: 'custom',
      resolver: ({ key, source, target }) => (key.id === 2 ? { name: `${String(source.name)}+${String(target.name)}` } : 'target'),
    });
    expect(rows[2]![1]).toBe('src newer+dst older');
    expect(rows[3]![1]).toBe('dst newer');
  });

  it('dry run writes nothing but reports the same counts', async () => {
    const { result, target, conflicts } = await run({ conflict: 'manual' }, true);
    expect(result).toMatchObject({ inserted: 1, deleted: 1, conflicts: 2 });
    expect(target.applied).toHaveLength(0);
    expect(conflicts).toHaveLength(0);
  });

  it('is idempotent: a second sync writes nothing', async () => {
    const source = new MemoryDatabase('src', shape);
    const target = new MemoryDatabase('dst', shape);
    source.rows = [...SOURCE];
    target.rows = [...TARGET];
    const request = {
      pipeline: 'p', source, target, pair: { source: shape, target: shape }, dryRun: false,
      policy: { conflict: 'source_wins', conflictColumn: 'updated_at', deleteExtra: true } as const,
      recordConflicts: async () => {},
    };
    await syncKeys(request, KEYS);
    const again = await syncKeys(request, KEYS);
    expect(again).toMatchObject({ inserted: 0, updated: 0, deleted: 0, unchanged: 6 });
    expect(target.applied).toHaveLength(1);
  });

  it('names a missing timestamp column', async () => {
    await expect(run({ conflict: 'timestamp', conflictColumn: 'modified' })).rejects.toThrow(/modified/);
  });
});
