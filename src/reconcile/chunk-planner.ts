import type { KeyRange, KeyTuple } from '../dialect/types.js';
import type { RangeSide } from './range-differ.js';

/**
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
