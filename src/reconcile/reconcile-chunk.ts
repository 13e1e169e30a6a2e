import type { TablePair } from '../dialect/table-pair.js';
import type { Database } from '../dialect/dialect.js';
import type { KeyRange, KeyTuple } from '../dialect/types.js';
import type { CompareMode } from '../config/config-schema.js';
import { diffRange, type DiffStats, type KeyDifferences } from './range-differ.js';

export interface ChunkDiff {
  readonly stats: DiffStats;
  readonly missing: number;
  readonly extra: number;
  readonly changed: number;
  /** Every differing key (missing, extra and changed), for the apply lanes. */
  readonly keys: KeyTuple[];
  /** The same keys by kind (`--print-keys`). */
  readonly differences: KeyDifferences;
}

/**
 * Compares one chunk of one table: `comparePair` holds the columns compared (see compare-shape.ts).
 * Returns the differing keys; writing them is the apply lanes' job (sync re-reads both sides).
 */
export async function diffChunk(options: {
  readonly source: Database;
  readonly target: Database;
  readonly comparePair: TablePair;
  readonly range: KeyRange;
  readonly compare: CompareMode;
  readonly leafRows?: number;
  /** Diff by row hashes without checksumming first (most chunks of this table differ). */
  readonly direct?: boolean;
}): Promise<ChunkDiff> {
  const { differences, stats } = await diffRange(
    { database: options.source, shape: options.comparePair.source },
    { database: options.target, shape: options.comparePair.target },
    options.range,
    {
      mode: options.compare === 'field_by_field' ? 'rows' : 'checksum',
      ...(options.leafRows ? { leafRows: options.leafRows } : {}),
      ...(options.direct ? { direct: true } : {}),
    },
  );
  // Keys are projected tuples in key order; the projection keeps key columns first, in key order,
  // so they are the full table's keys too.
  return {
    stats,
    missing: differences.missing.length,
    extra: differences.extra.length,
    changed: differences.changed.length,
    keys: [...differences.missing, ...differences.extra, ...differences.changed],
    differences,
  };
}
