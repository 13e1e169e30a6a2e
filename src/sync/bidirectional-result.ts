/**
 * What a bidirectional sync did (bidirectional-sync.ts), in a module of its own: sync results and
 * reports sum it without depending on the algorithm.
 */

/** How a conflict ended: a side won, rows were merged, a resolver wrote its own row, or a human decides. */
export type ConflictOutcome = 'a_won' | 'b_won' | 'merged' | 'resolver_row' | 'skipped' | 'pending';

export interface BidirectionalResult {
  /** Keys changed (or inserted) on A since the last sync, whose change went to B; likewise for B. */
  readonly changedOnA: number;
  readonly changedOnB: number;
  /** Keys deleted on A (B) since the last sync, deleted on the other side too. */
  readonly deletedOnA: number;
  readonly deletedOnB: number;
  /** Rows written to each side (inserted + updated + deleted). */
  readonly writtenToA: number;
  readonly writtenToB: number;
  /** Conflicts by outcome. */
  readonly conflicts: Readonly<Partial<Record<ConflictOutcome, number>>>;
  /** Keys equal on both sides when read (their state brought up to date if needed). */
  readonly unchanged: number;
}

export const EMPTY_BIDIRECTIONAL_RESULT: BidirectionalResult = {
  changedOnA: 0, changedOnB: 0, deletedOnA: 0, deletedOnB: 0, writtenToA: 0, writtenToB: 0, conflicts: {}, unchanged: 0,
};

export function addBidirectionalResults(x: BidirectionalResult, y: BidirectionalResult): BidirectionalResult {
  const conflicts: Partial<Record<ConflictOutcome, number>> = { ...x.conflicts };
  for (const [outcome, count] of Object.entries(y.conflicts) as [ConflictOutcome, number][]) conflicts[outcome] = (conflicts[outcome] ?? 0) + count;
  return {
    changedOnA: x.changedOnA + y.changedOnA,
    changedOnB: x.changedOnB + y.changedOnB,
    deletedOnA: x.deletedOnA + y.deletedOnA,
    deletedOnB: x.deletedOnB + y.deletedOnB,
    writtenToA: x.writtenToA + y.writtenToA,
    writtenToB: x.writtenToB + y.writtenToB,
    conflicts,
    unchanged: x.unchanged + y.unchanged,
  };
}

