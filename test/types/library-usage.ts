/**
 * A consumer of the built package, type-checked against its declarations (dist/src/index.d.ts,
 * reached by the package's own name through `exports`): `npm run typecheck` checks it, and
 * library-api.test.ts checks it alone right after a build. Never run; the `@ts-expect-error` lines
 * fail the check if the declarations lose their types (an `any` accepts anything).
 */
import {
  ConfigError, createRowsync, RunFailedError, type ConfigInput, type PipelineConflictStats, type PipelineSyncStats, type Rowsync, type RunReport,
} from 'rowsync';

export async function useRowsync(config: ConfigInput | string): Promise<void> {
  const rowsync: Rowsync = createRowsync(config);
  rowsync.on('run:progress', ({ runId, counts }) => {
    const done: number = counts.chunksDone;
    void [runId.length, done];
  });
  rowsync.on('cdc:batch', (batch) => void batch.keys.toFixed());
  // @ts-expect-error a progress event has no `report`
  rowsync.on('run:progress', ({ report }) => void report);
  // @ts-expect-error no such event
  rowsync.on('run:finished', () => undefined);

  try {
    const report: RunReport = await rowsync.reconcile('p', { dryRun: true, chunkSize: 1000, compare: 'checksum', conflict: 'manual', workers: 2 });
    const missing: number = report.tables[0]!.missing;
    void missing;
  } catch (error) {
    if (error instanceof RunFailedError) void error.failedJobs.map((job) => job.description);
    if (error instanceof ConfigError) void error.subject;
  }
  // @ts-expect-error compare is one of the configured modes
  await rowsync.reconcile('p', { compare: 'fast' });

  const cdc = await rowsync.startCdc({ pipeline: 'p', workers: 2 });
  const stats: PipelineSyncStats = await rowsync.syncStats('p');
  const all: PipelineSyncStats[] = await rowsync.syncStats();
  const changes: number = stats.totalChanges + stats.changesLastHour + stats.queueLength;
  const position: string | undefined = stats.streams[0]?.targets[0]?.position;
  void [all, changes, position, stats.running, stats.lastChangeAt, stats.lagMs, stats.deadLetters];
  await cdc.stop();

  const both = await rowsync.startBidirectional('p', { intervalMs: 60_000, realTime: true });
  await both.stop();
  const workers = await rowsync.startWorkers({ concurrency: 4 });
  await workers.stop();

  const conflicts: PipelineConflictStats = await rowsync.conflictStats('p');
  const byKind: Readonly<Record<string, number>> = conflicts.byKind;
  void [byKind, conflicts.byTable, conflicts.recent[0]?.detectedAt];
  await rowsync.resolveConflicts('p', { keep: 'source', all: true });
  await rowsync.close();
}
