import { SingleBar } from 'cli-progress';
import type { RunProgressCounts } from '../../jobs/run-progress.js';

/**
 * Progress of a run on stderr: a live bar on a terminal, a line every 10 s otherwise (logs, CI).
 * Shows tables, chunks, rows compared, differences and an ETA from the chunk rate, and why the run
 * waits while the load or lag gates hold its chunks back (a line at once when that starts or ends).
 */
export class ProgressDisplay {
  private bar: SingleBar | undefined;
  /** The first line comes 10 s after the start, like every next one. */
  private lastLine = Date.now();
  private lastWaiting: string | undefined;
  private readonly startedAt = Date.now();

  update(counts: RunProgressCounts): void {
    if (!process.stderr.isTTY) {
      // A line every 10 s from the start (also while nothing is planned yet), or when waiting starts
      // or ends; the run is polled every 50 ms, so nothing is formatted in between.
      const now = Date.now();
      const waitingChanged = counts.waiting !== this.lastWaiting;
      this.lastWaiting = counts.waiting;
      if (!waitingChanged && now - this.lastLine < 10_000) return;
      this.lastLine = now;
    }
    const total = Math.max(counts.chunksPlanned, 1);
    const eta = this.eta(counts);
    const payload = {
      tables: `${counts.tablesDone}/${counts.tablesPlanned}`,
      rows: counts.rowsCompared.toLocaleString('en-US'),
      differences: counts.differences.toLocaleString('en-US'),
      remaining: eta === undefined ? '-' : `${eta}s`,
      waiting: counts.waiting === undefined ? '' : ` | waiting: ${counts.waiting}`,
    };
    if (process.stderr.isTTY) {
      if (!this.bar) {
        this.bar = new SingleBar(
          {
            stream: process.stderr,
            format: 'reconcile [{bar}] chunks {value}/{total} | tables {tables} | rows {rows} | differences {differences} | ETA {remaining}{waiting}',
            hideCursor: true,
            etaBuffer: 50,
          },
        );
        this.bar.start(total, 0, payload);
      }
      this.bar.setTotal(total);
      this.bar.update(Math.min(counts.chunksDone, total), payload);
      return;
    }
    const planning = counts.chunksPlanned === 0 ? 'no chunk planned yet, ' : '';
    process.stderr.write(
      `reconcile: ${planning}chunks ${counts.chunksDone}/${counts.chunksPlanned}, tables ${payload.tables}, rows ${payload.rows}, ` +
        `differences ${payload.differences}${eta === undefined ? '' : `, ETA ${eta}s`}` +
        `${counts.waiting === undefined ? '' : `, waiting: ${counts.waiting}`}\n`,
    );
  }

  /** Seconds left at the chunk rate so far; unknown until a chunk has finished. */
  private eta(counts: RunProgressCounts): number | undefined {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    if (counts.chunksDone === 0 || elapsed <= 0) return undefined;
    return Math.max(0, Math.round((counts.chunksPlanned - counts.chunksDone) / (counts.chunksDone / elapsed)));
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
