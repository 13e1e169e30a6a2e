/**
 * The bidirectional decision table and every conflict policy, on in-memory sides (the algorithm
 * layer only; test/integration/bidirectional.test.ts runs it on real servers): one-sided changes and
 * deletes go across, rows without history go by the policy, both-sided changes are conflicts, the
 * state follows what was written, a row changed under the write is decided again from fresh reads.
 */
import { describe, expect, it } from 'vitest';
import { rowHash } from '../../src/dialect/canonical.js';
import { syncStateKeyId, type SyncStateStore } from '../../src/dialect/sync-state.js';
import type { KeyTuple, Row, TableShape } from '../../src/dialect/types.js';
import { syncBidirectional, type BidirectionalConflict, type BidirectionalPolicy } from '../../src/sync/bidirectional-sync.js';
import { MemoryDatabase } from '../support/memory-database.js';

const shape: TableShape = {
  table: 'items',
  keyIndexes: [0],
  columns: [
    { name: 'id', nativeType: 'int', kind: 'integer', hashSite: 'sql', generated: false },
    { name: 'name', nativeType: 'text', kind: 'text', hashSite: 'sql', generated: false },
    { name: 'note', nativeType: 'text', kind: 'text', hashSite: 'sql', generated: false },
    { name: 'updated_at', nativeType: 'datetime', kind: 'datetime', hashSite: 'sql', generated: false },
  ],
};
const at = (day: number) => `2026-01-${String(day).padStart(2, '0')} 00:00:00.000000`;

class MemoryState implements SyncStateStore {
  readonly hashes = new Map<string, string>();
  async read(_pipeline: string, _table: string, ids: readonly string[]) {
    return new Map(ids.filter((id) => this.hashes.has(id)).map((id) => [id, this.hashes.get(id)!]));
  }
  async write(_pipeline: string, _table: string, entries: readonly { keyId: string; hash: string | null }[]) {
    for (const entry of entries) {
      if (entry.hash === null) this.hashes.delete(entry.keyId);
      else this.hashes.set(entry.keyId, entry.hash);
    }
  }
  async hasBaseline() {
    return true;
  }
  async markBaseline() {}
  async count() {
    return this.hashes.size;
  }
  async clear() {
    this.hashes.clear();
  }
  /** Records `row` as the state both sides last agreed on. */
  agree(row: Row) {
    this.hashes.set(syncStateKeyId(shape, [row[0]!]), rowHash(shape, row));
  }
}

async function sync(options: { a: Row[]; b: Row[]; agreed?: Row[]; policy?: Partial<BidirectionalPolicy>; keys?: KeyTuple[] }) {
  const a = new MemoryDatabase('a', shape);
  const b = new MemoryDatabase('b', shape);
  a.rows = [...options.a];
  b.rows = [...options.b];
  const state = new MemoryState();
  for (const row of options.agreed ?? []) state.agree(row);
  const conflicts: BidirectionalConflict[] = [];
  const keys = options.keys ?? [...new Set([...options.a, ...options.b].map((row) => row[0] as number))].map((id) => [id]);
  const result = await syncBidirectional(
    {
      pipeline: 'p', a, b, pair: { source: shape, target: shape }, dryRun: false, state,
      policy: { conflict: 'timestamp', conflictColumn: 'updated_at', ...options.policy },
      recordConflicts: async (records) => void conflicts.push(...records),
    },
    keys,
  );
  const byId = (rows: Row[]) => Object.fromEntries(rows.map((row) => [row[0] as number, row]));
  return { result, a: byId(a.rows), b: byId(b.rows), state, conflicts };
}

describe('syncBidirectional', () => {
  const base: Row = [1, 'base', null, at(1)];
  const onA: Row = [1, 'changed on A', null, at(3)];
  const onB: Row = [1, 'changed on B', 'b', at(2)];

  it('a change on one side goes to the other; the state follows', async () => {
    const { result, a, b, state } = await sync({ a: [onA], b: [base], agreed: [base] });
    expect(b[1]).toEqual(onA);
    expect(a[1]).toEqual(onA);
    expect(result).toMatchObject({ changedOnA: 1, changedOnB: 0, writtenToA: 0, writtenToB: 1, conflicts: {} });
    expect(state.hashes.get(syncStateKeyId(shape, [1]))).toBe(rowHash(shape, onA));
    const back = await sync({ a: [base], b: [onB], agreed: [base] });
    expect(back.a[1]).toEqual(onB);
    expect(back.result).toMatchObject({ changedOnB: 1, writtenToA: 1 });
  });

  it('a delete on one side is a delete on the other, not an insert back; the state goes', async () => {
    const { result, a, b, state } = await sync({ a: [], b: [base], agreed: [base] });
    expect([a[1], b[1]]).toEqual([undefined, undefined]);
    expect(result).toMatchObject({ deletedOnA: 1, writtenToB: 1 });
    expect(state.hashes.size).toBe(0);
    const other = await sync({ a: [base], b: [], agreed: [base] });
    expect(other.a[1]).toBeUndefined();
    expect(other.result).toMatchObject({ deletedOnB: 1, writtenToA: 1 });
  });

  it('without history a one-sided row is an insert there; both present and different is a conflict for the policy', async () => {
    const inserted = await sync({ a: [], b: [onB] });
    expect(inserted.a[1]).toEqual(onB);
    expect(inserted.result).toMatchObject({ changedOnB: 1 });
    const both = await sync({ a: [onA], b: [onB] });
    expect(both.conflicts).toMatchObject([{ kind: 'insert-insert', outcome: 'a_won', policy: 'timestamp' }]);
    expect(both.b[1]).toEqual(onA);
  });

  it('timestamp: the newer wins, a tie goes to side A, a value beats NULL; update against delete keeps the row', async () => {
    const newerB: Row = [1, 'B newer', null, at(9)];
    expect((await sync({ a: [onA], b: [newerB], agreed: [base] })).a[1]).toEqual(newerB);
    const tieA: Row = [1, 'A tie', null, at(5)];
    const tieB: Row = [1, 'B tie', null, at(5)];
    const tie = await sync({ a: [tieA], b: [tieB], agreed: [base] });
    expect([tie.a[1], tie.b[1]]).toEqual([tieA, tieA]);
    expect(tie.conflicts[0]).toMatchObject({ kind: 'update-update', outcome: 'a_won' });
    const nullB: Row = [1, 'B null', null, null];
    expect((await sync({ a: [tieA], b: [nullB], agreed: [base] })).b[1]).toEqual(tieA);
    const deleted = await sync({ a: [onA], b: [], agreed: [base] });
    expect([deleted.a[1], deleted.b[1]]).toEqual([onA, onA]);
    expect(deleted.conflicts[0]).toMatchObject({ kind: 'update-delete', outcome: 'a_won', rowB: null });
  });

  it('priority: the named side wins, its deletion included', async () => {
    const bWins = await sync({ a: [onA], b: [onB], agreed: [base], policy: { conflict: 'priority', priority: 'b' } });
    expect([bWins.a[1], bWins.b[1]]).toEqual([onB, onB]);
    expect(bWins.conflicts[0]).toMatchObject({ outcome: 'b_won', policy: 'priority' });
    const deletion = await sync({ a: [onA], b: [], agreed: [base], policy: { conflict: 'priority', priority: 'b' } });
    expect([deletion.a[1], deletion.b[1]]).toEqual([undefined, undefined]);
  });

  it('manual: nothing is written, the state stays, the conflict is recorded pending', async () => {
    const { a, b, state, conflicts, result } = await sync({ a: [onA], b: [onB], agreed: [base], policy: { conflict: 'manual' } });
    expect([a[1], b[1]]).toEqual([onA, onB]);
    expect(state.hashes.get(syncStateKeyId(shape, [1]))).toBe(rowHash(shape, base));
    expect(conflicts).toMatchObject([{ outcome: 'pending', rowA: { name: 'changed on A' }, rowB: { name: 'changed on B' } }]);
    expect(result.conflicts).toEqual({ pending: 1 });
  });

  it("merge: A's non-null values over B's, written to both; custom: the resolver's row, written to both", async () => {
    const merged = await sync({ a: [onA], b: [onB], agreed: [base], policy: { conflict: 'merge' } });
    expect([merged.a[1], merged.b[1]]).toEqual([[1, 'changed on A', 'b', at(3)], [1, 'changed on A', 'b', at(3)]]);
    const custom = await sync({
      a: [onA], b: [onB], agreed: [base],
      policy: { conflict: 'custom', resolver: ({ source, target }) => ({ name: `${String(source.name)} + ${String(target.name)}` }) },
    });
    expect(custom.b[1]).toEqual([1, 'changed on A + changed on B', null, at(3)]);
    expect(custom.conflicts[0]).toMatchObject({ outcome: 'resolver_row', policy: 'custom' });
  });

  it('a row changed by a user between the read and the write is not overwritten: it is decided again', async () => {
    const late: Row = [1, 'late user write on B', null, at(20)];
    const a = new MemoryDatabase('a', shape);
    const b = new MemoryDatabase('b', shape);
    a.rows = [onA];
    b.rows = [base];
    const state = new MemoryState();
    state.agree(base);
    // The user's write lands after rowsync read B and before it writes there (once).
    const apply = b.applyChangesIfUnchanged.bind(b);
    let raced = false;
    b.applyChangesIfUnchanged = async (...args) => {
      if (!raced) {
        raced = true;
        b.rows = [late];
      }
      return apply(...args);
    };
    await syncBidirectional(
      {
        pipeline: 'p', a, b, pair: { source: shape, target: shape }, dryRun: false, state,
        policy: { conflict: 'timestamp', conflictColumn: 'updated_at' }, recordConflicts: async () => undefined,
      },
      [[1]],
    );
    // Decided again from fresh reads: both changed, the user's later write is newer and wins on both sides.
    expect(b.rows).toEqual([late]);
    expect(a.rows).toEqual([late]);
    expect(state.hashes.get(syncStateKeyId(shape, [1]))).toBe(rowHash(shape, late));
  });
});
