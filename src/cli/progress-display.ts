import { SingleBar } from 'cli-progress';
import type { RunProgressCounts } from '../../jobs/run-progress.js';

/**
 * Progress of a run on stderr: a live bar on a terminal, a line every 10 s otherwise (logs, CI).
 * Shows tables, chunks, rows compared, differences and an ETA from the chunk rate.
 */
export class ProgressDisplay {
  private bar: SingleBar | undefined;
  private lastLine = 0;
  private readonly startedAt = Date.now();

  constructor(private readonly enabled: boolean) {}

  update(counts: RunProgressCounts): void {
    if (!this.enabled) return;
    const total = Math.max(counts.chunksPlanned, 1);
    const eta = this.eta(counts);
    const payload = {
      tables: `${counts.tablesDone}/${counts.tablesPlanned}`,
      rows: counts.rowsCompared.toLocaleString('en-US'),
      differences: counts.differences.toLocaleString('en-US'),
      remaining: eta === undefined ? '-' : `${eta}s`,
    };
    if (process.stderr.isTTY) {
      if (!this.bar) {
        this.bar = new SingleBar(
          {
            stream: process.stderr,
            format: 'reconcile [{bar}] chunks {value}/{total} | tables {tables} | rows {rows} | differences {differences} | ETA {remaining}',
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
    const now = Date.now();
    // Nothing to say before the first chunk is planned; then a line every 10 s.
    if (counts.chunksPlanned === 0 || now - this.lastLine < 10_000) return;
    this.lastLine = now;
    process.stderr.write(
      `reconcile: chunks ${counts.chunksDone}/${counts.chunksPlanned}, tables ${payload.tables}, rows ${payload.rows}, ` +
        `differences ${payload.differences}${eta === undefined ? '' : `, ETA ${eta}s`}\n`,
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
