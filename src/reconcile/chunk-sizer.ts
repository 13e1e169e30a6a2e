/**
 * Adaptive chunk sizes (pt-table-checksum's `--chunk-time`): the next chunk holds as many rows as the
 * table's recent chunks scanned in `targetMs`, so that a chunk's checksum scan takes about that long
 * whatever the row width, the indexes and the server's load.
 */

/** Bounds of adaptive sizes, widened to include the configured starting size when it lies outside. */
export const ADAPTIVE_MIN_ROWS = 1_000;
/**
 * Larger chunks save little (a 100k-row scan is already ~100x its fixed query cost) and cost
 * parallelism at the end of a table, a longer retry after a failure, and bigger bucket plans when a
 * chunk differs (range-differ.ts: at most 1,024 buckets a chunk).
 */
export const ADAPTIVE_MAX_ROWS = 100_000;
/** Most a size changes from one chunk to the next (up or down): one odd scan cannot swing it far. */
const MAX_STEP = 4;

export interface ChunkSizing {
  /** Rows of the first chunks (`reconcile.chunkSize`). */
  readonly start: number;
  readonly min: number;
  readonly max: number;
  /** `reconcile.chunkTimeMs`. */
  readonly targetMs: number;
}

export function chunkSizing(chunkSize: number, chunkTimeMs: number): ChunkSizing {
  return {
    start: chunkSize,
    min: Math.min(ADAPTIVE_MIN_ROWS, chunkSize),
    max: Math.max(ADAPTIVE_MAX_ROWS, chunkSize),
    targetMs: chunkTimeMs,
  };
}

/** Sums over every chunk of the table compared so far (RunProgress.tableScans). */
export interface ScanTotals {
  readonly rows: number;
  readonly ms: number;
}

/**
 * Turns the growing scan totals of a table into the size of its next chunk. The rate (rows per ms of
 * scan) of the chunks finished since the last call is averaged with the previous estimate (weight
 * 1/2 each), so the size follows a change of load within a few chunks without jumping on one.
 */
export class ChunkSizer {
  private current: number;
  private rate: number | undefined;
  private seen: ScanTotals = { rows: 0, ms: 0 };

  constructor(
    private readonly sizing: ChunkSizing,
    /** A size planned before (a resumed plan): start from it. */
    resumeAt?: number,
  ) {
    this.current = resumeAt ?? sizing.start;
  }

  get size(): number {
    return this.current;
  }

  /** The size of the next chunk, given the table's scan totals now. */
  next(totals: ScanTotals): number {
    const rows = totals.rows - this.seen.rows;
    const ms = totals.ms - this.seen.ms;
    if (rows > 0 && ms > 0) {
      const windowRate = rows / ms;
      this.rate = this.rate === undefined ? windowRate : (this.rate + windowRate) / 2;
      this.seen = totals;
    }
    if (this.rate === undefined) return this.current;
    const ideal = this.rate * this.sizing.targetMs;
    const stepped = Math.min(this.current * MAX_STEP, Math.max(this.current / MAX_STEP, ideal));
    this.current = Math.round(Math.min(this.sizing.max, Math.max(this.sizing.min, stepped)));
    return this.current;
  }
}
