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
    const payload = {
      tables: `${counts.tablesDone}/${counts.tablesPlanned}`,
      rows: counts.rowsCompared.toLocaleString('en-US'),
      differences: counts.differences.toLocaleString('en-US'),
    };
    if (process.stderr.isTTY) {
      if (!this.bar) {
        this.bar = new SingleBar(
          {
            stream: process.stderr,
            format: 'reconcile [{bar}] chunks {value}/{total} | tables {tables} | rows {rows} | differences {differences} | ETA {eta_formatted}',
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
    if (now - this.lastLine < 10_000) return;
    this.lastLine = now;
    const elapsed = (now - this.startedAt) / 1000;
    const rate = counts.chunksDone / Math.max(elapsed, 0.001);
    const eta = rate > 0 ? Math.round((counts.chunksPlanned - counts.chunksDone) / rate) : undefined;
    process.stderr.write(
      `reconcile: chunks ${counts.chunksDone}/${counts.chunksPlanned}, tables ${payload.tables}, rows ${payload.rows}, ` +
        `differences ${payload.differences}${eta === undefined ? '' : `, ETA ${eta}s`}\n`,
    );
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
