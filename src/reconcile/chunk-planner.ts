import type { KeyRange, KeyTuple } from '../dialect/types.js';
import type { ChunkSizer } from './chunk-sizer.js';
import type { RangeSide } from './range-differ.js';

/**
 * Fixed-size chunks (`reconcile.chunkTimeMs: 0`), planned up front; adaptive sizes: `planAdaptiveChunks` below.
 *
 * Chunk bounds by keyset pagination on the source: each bound is the key `chunkSize` rows after the
 * previous one (an index walk of `chunkSize` entries, never an OFFSET over the whole table). The
 * first chunk has no lower bound and the last no upper bound, so keys that exist only on the target,
 * below the first or above the last source key, belong to a chunk too. An empty source yields one
 * unbounded chunk (the target may still hold rows to delete).
 */
export async function* planChunks(source: RangeSide, chunkSize: number): AsyncGenerator<KeyRange> {
  let lower: KeyTuple | undefined;
  for (;;) {
    const from: KeyRange = lower ? { lower } : {};
    // The first chunk starts at the first source key; later chunks at the previous bound.
    const upper = await source.database.keyAtOffset(source.shape, from, chunkSize);
    if (!upper) {
      yield from;
      return;
    }
    yield { ...from, upper };
    lower = upper;
  }
}

/** Where an adaptive plan stands: saved with every batch, so a plan cut short resumes exactly there. */
export interface AdaptivePlanPosition {
  /** The upper bound of the last chunk planned (the next chunk's lower bound); absent: none yet. */
  readonly lower?: KeyTuple;
  /** Chunks planned so far. */
  readonly chunks: number;
  /** Size of the last chunks planned. */
  readonly size: number;
  /** The last chunk (unbounded above) is planned. */
  readonly done: boolean;
}

export interface AdaptivePlanPorts {
  /** Chunks of the table compared so far, and the sums of their scans (rows, ms). */
  scans(): Promise<{ readonly checked: number; readonly rows: number; readonly ms: number }>;
  /**
   * Keeps `batch` (the next chunks, in key order, the first with index `from.chunks`) and the
   * position after it. Must save the position before it adds the chunks, so that a crash in between
   * re-adds the same batch instead of planning other bounds over the same rows.
   */
  commit(batch: readonly KeyRange[], position: AdaptivePlanPosition): Promise<void>;
  /** Waits a little before `scans` is asked again (the planner is `lookahead` chunks ahead). */
  pause(): Promise<void>;
}

/**
 * Adaptive planning (`reconcile.chunkTimeMs`): chunk bounds by keyset pagination as `planChunks`,
 * but each chunk sized by the scans of the chunks compared so far (`sizer`), so the planner stays at
 * most `lookahead` chunks ahead of the comparisons instead of planning the whole table first. Bounds
 * chain (each chunk starts at the previous one's upper bound, the first is unbounded below, the last
 * unbounded above), so every row is in exactly one chunk whatever the sizes, also across a resume
 * from a saved `position`. Returns the number of chunks.
 */
export async function planAdaptiveChunks(
  source: RangeSide,
  sizer: ChunkSizer,
  position: Omit<AdaptivePlanPosition, 'size'> | undefined,
  lookahead: number,
  ports: AdaptivePlanPorts,
): Promise<number> {
  let lower = position?.lower;
  let chunks = position?.chunks ?? 0;
  let done = position?.done ?? false;
  while (!done) {
    let scans = await ports.scans();
    while (chunks - scans.checked >= lookahead) {
      await ports.pause();
      scans = await ports.scans();
    }
    const size = sizer.next(scans);
    const batch: KeyRange[] = [];
    for (let free = lookahead - (chunks - scans.checked); free > 0 && !done; free -= 1) {
      const from: KeyRange = lower ? { lower } : {};
      const upper = await source.database.keyAtOffset(source.shape, from, size);
      batch.push(upper ? { ...from, upper } : from);
      if (upper) lower = upper;
      else done = true;
    }
    chunks += batch.length;
    await ports.commit(batch, { ...(lower ? { lower } : {}), chunks, size, done });
  }
  return chunks;
}
