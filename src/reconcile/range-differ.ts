import pLimit from 'p-limit';
import { keyIdentity, sameChecksum } from '../dialect/canonical.js';
import type { Database } from '../dialect/dialect.js';
import type { KeyHash, KeyRange, KeyTuple, Row, TableShape } from '../dialect/types.js';
import { keyOf, sameRow } from '../sync/sync-keys.js';

/** One side of a comparison: a database and its view of the table. */
export interface RangeSide {
  readonly database: Database;
  readonly shape: TableShape;
}

export interface DiffOptions {
  /**
   * `checksum`: compare count + checksum computed in the databases, bisect mismatching ranges.
   * `rows`: fetch every row and compare in Node (field by field).
   */
  readonly mode: 'checksum' | 'rows';
  /**
   * `rows` mode: a range whose larger side holds at most this many rows is fetched and diffed row by
   * row. `checksum` mode: such a range is diffed by downloading its row hashes (key + 16 bytes per
   * row) instead of being bisected further. @defaultValue 1000
   */
  readonly leafRows?: number;
  /**
   * Skip the checksums and diff the whole range by row hashes at once (one scan per side). Worth it
   * when most ranges are known to differ: bisection would then scan the same rows two or three times.
   * Falls back to bisection when the range is larger than `directLimit` rows.
   */
  readonly direct?: boolean;
  /** Largest range `direct` downloads in one query. @defaultValue 50000 */
  readonly directLimit?: number;
  /** Sub-ranges a mismatching range is split into. @defaultValue 16 */
  readonly fanout?: number;
  /** Range queries in flight at once per side. @defaultValue 4 */
  readonly concurrency?: number;
}

export interface KeyDifferences {
  /** Keys present on the source only. */
  readonly missing: KeyTuple[];
  /** Keys present on the target only. */
  readonly extra: KeyTuple[];
  /** Keys present on both sides with different values. */
  readonly changed: KeyTuple[];
}

export interface DiffStats {
  readonly sourceRows: number;
  readonly targetRows: number;
  /** Range pairs checksummed (bisection levels included). */
  readonly checksums: number;
  /** Rows (or row hashes, in checksum mode) downloaded from both sides for a diff by key. */
  readonly fetchedRows: number;
}

export interface RangeDiff {
  readonly differences: KeyDifferences;
  readonly stats: DiffStats;
}

/**
 * Finds the keys whose rows differ between two sides within a key range (data-diff's HashDiffer,
 * without SQL): checksum both sides; when they differ, split the range by the side that holds more
 * rows (so keys present only on the target are bisected too) and recurse into the mismatching
 * sub-ranges, until a range is small enough to fetch and diff by key. When most sub-ranges of a level
 * differ, bisecting further costs more than it saves, so the rest of that subtree is fetched directly.
 * Memory is bounded by `leafRows` rows per side per query in flight, plus the differing keys.
 */
export async function diffRange(source: RangeSide, target: RangeSide, range: KeyRange, options: DiffOptions): Promise<RangeDiff> {
  const leafRows = options.leafRows ?? 1000;
  const fanout = Math.max(2, options.fanout ?? 16);
  const limit = pLimit(options.concurrency ?? 4);
  const differences: KeyDifferences = { missing: [], extra: [], changed: [] };
  let checksums = 0;
  let fetchedRows = 0;

  const both = <T>(query: (side: RangeSide) => Promise<T>) =>
    Promise.all([limit(() => query(source)), limit(() => query(target))]);

  async function leaf(subrange: KeyRange, counts: readonly [number, number], mode: 'checksum' | 'rows'): Promise<void> {
    const fetchLimit = Math.max(counts[0], counts[1]) * 2 + 16;
    if (mode === 'checksum') {
      const [sourceHashes, targetHashes] = await both((side) => side.database.rowHashes(side.shape, subrange, fetchLimit));
      if (sourceHashes.length >= fetchLimit || targetHashes.length >= fetchLimit) {
        // The range grew while we looked (concurrent writes): split it again instead of loading it.
        await visit(subrange, 'checksum', [sourceHashes.length, targetHashes.length], true);
        return;
      }
      fetchedRows += sourceHashes.length + targetHashes.length;
      compareHashes(sourceHashes, targetHashes);
      return;
    }
    const [sourceRows, targetRows] = await both((side) => side.database.fetchRange(side.shape, subrange, fetchLimit));
    if (sourceRows.length >= fetchLimit || targetRows.length >= fetchLimit) {
      await visit(subrange, 'rows', [sourceRows.length, targetRows.length], true);
      return;
    }
    fetchedRows += sourceRows.length + targetRows.length;
    compareRows(sourceRows, targetRows);
  }

  function compareHashes(sourceHashes: readonly KeyHash[], targetHashes: readonly KeyHash[]): void {
    const targetByKey = new Map<string, KeyHash>();
    for (const entry of targetHashes) targetByKey.set(keyIdentity(target.shape, entry.key), entry);
    for (const entry of sourceHashes) {
      const identity = keyIdentity(source.shape, entry.key);
      const other = targetByKey.get(identity);
      if (!other) differences.missing.push(entry.key);
      else if (other.hash !== entry.hash) differences.changed.push(entry.key);
      targetByKey.delete(identity);
    }
    for (const entry of targetByKey.values()) differences.extra.push(entry.key);
  }

  function compareRows(sourceRows: readonly Row[], targetRows: readonly Row[]): void {
    const targetByKey = new Map<string, Row>();
    for (const row of targetRows) targetByKey.set(keyIdentity(target.shape, keyOf(target.shape, row)), row);
    for (const row of sourceRows) {
      const identity = keyIdentity(source.shape, keyOf(source.shape, row));
      const other = targetByKey.get(identity);
      if (!other) differences.missing.push(keyOf(source.shape, row));
      else if (!sameRow(source.shape, row, other)) differences.changed.push(keyOf(source.shape, row));
      targetByKey.delete(identity);
    }
    for (const row of targetByKey.values()) differences.extra.push(keyOf(target.shape, row));
  }

  /** Splits `subrange` into at most `parts` pieces of about equal size on the side with more rows. */
  async function split(subrange: KeyRange, counts: readonly [number, number], parts: number): Promise<KeyRange[]> {
    const side = counts[0] >= counts[1] ? source : target;
    const step = Math.ceil(Math.max(counts[0], counts[1]) / parts);
    const bounds: KeyTuple[] = [];
    let lower = subrange.lower;
    for (let part = 1; part < parts; part += 1) {
      const from: KeyRange = { ...(lower ? { lower } : {}), ...(subrange.upper ? { upper: subrange.upper } : {}) };
      const bound = await limit(() => side.database.keyAtOffset(side.shape, from, step));
      if (!bound) break;
      bounds.push(bound);
      lower = bound;
    }
    const pieces: KeyRange[] = [];
    let previous = subrange.lower;
    for (const bound of bounds) {
      pieces.push({ ...(previous ? { lower: previous } : {}), upper: bound });
      previous = bound;
    }
    pieces.push({ ...(previous ? { lower: previous } : {}), ...(subrange.upper ? { upper: subrange.upper } : {}) });
    return pieces;
  }

  /**
   * `counts` known and `knownDifferent` true: the caller already checksummed this range.
   * In `rows` mode nothing is checksummed: the range is split down to leaves and fetched.
   */
  async function visit(
    subrange: KeyRange,
    mode: 'checksum' | 'rows',
    knownCounts?: readonly [number, number],
    knownDifferent = false,
  ): Promise<void> {
    let counts = knownCounts;
    if (mode === 'checksum' && !knownDifferent) {
      const [a, b] = await both((side) => side.database.checksumRange(side.shape, subrange));
      checksums += 1;
      if (sameChecksum(a, b)) return;
      counts = [a.count, b.count];
    } else if (!counts) {
      counts = await both((side) => side.database.countRange(side.shape, subrange));
    }
    const larger = Math.max(counts[0], counts[1]);
    if (larger === 0) return;
    if (larger <= leafRows) {
      await leaf(subrange, counts, mode);
      return;
    }
    const pieces = await split(subrange, counts, Math.min(fanout, Math.ceil(larger / leafRows)));
    if (pieces.length === 1) {
      await leaf(subrange, counts, mode);
      return;
    }
    if (mode === 'rows') {
      for (const piece of pieces) await visit(piece, 'rows');
      return;
    }
    const sums = await Promise.all(pieces.map((piece) => both((side) => side.database.checksumRange(side.shape, piece))));
    checksums += pieces.length;
    const differing = pieces
      .map((piece, index) => ({ piece, sums: sums[index]! }))
      .filter(({ sums: [a, b] }) => !sameChecksum(a, b));
    // When most pieces differ, checksumming their sub-pieces would mostly confirm it: diff every
    // differing piece by row hashes straight away.
    const mostDiffer = differing.length * 2 > pieces.length;
    await Promise.all(
      differing.map(({ piece, sums: [a, b] }) =>
        mostDiffer ? directly(piece, [a.count, b.count]) : visit(piece, 'checksum', [a.count, b.count], true),
      ),
    );
  }

  /** Diffs a range by row hashes without checksumming it, splitting only to bound memory. */
  async function directly(subrange: KeyRange, counts: readonly [number, number]): Promise<void> {
    const larger = Math.max(counts[0], counts[1]);
    if (larger <= directLimit) {
      await leaf(subrange, counts, 'checksum');
      return;
    }
    const pieces = await split(subrange, counts, Math.ceil(larger / directLimit));
    for (const piece of pieces) {
      const pieceCounts = await both((side) => side.database.countRange(side.shape, piece));
      await directly(piece, pieceCounts);
    }
  }

  const directLimit = Math.max(1, options.directLimit ?? 50_000);
  if (options.mode === 'checksum' && options.direct) {
    // Read both sides' hashes with a limit: a range larger than directLimit is counted and split.
    const [sourceHashes, targetHashes] = await both((side) => side.database.rowHashes(side.shape, range, directLimit + 1));
    if (sourceHashes.length <= directLimit && targetHashes.length <= directLimit) {
      fetchedRows += sourceHashes.length + targetHashes.length;
      compareHashes(sourceHashes, targetHashes);
      return { differences, stats: { sourceRows: sourceHashes.length, targetRows: targetHashes.length, checksums, fetchedRows } };
    }
    const counts = await both((side) => side.database.countRange(side.shape, range));
    await directly(range, counts);
    return { differences, stats: { sourceRows: counts[0], targetRows: counts[1], checksums, fetchedRows } };
  }

  const top: [number, number] =
    options.mode === 'checksum'
      ? await (async () => {
          const [a, b] = await both((side) => side.database.checksumRange(side.shape, range));
          checksums += 1;
          if (!sameChecksum(a, b)) await visit(range, 'checksum', [a.count, b.count], true);
          return [a.count, b.count];
        })()
      : await (async () => {
          const counts = await both((side) => side.database.countRange(side.shape, range));
          await visit(range, 'rows', counts, true);
          return counts;
        })();

  return { differences, stats: { sourceRows: top[0], targetRows: top[1], checksums, fetchedRows } };
}
