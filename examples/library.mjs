#!/usr/bin/env node
/**
 * rowsync from code: a dry run, a repair, a few seconds of change-data-capture, then the statistics.
 *
 *   npm run build
 *   node examples/library.mjs rowsync.yml shop-to-pg        # config file, pipeline
 *   STREAM_SECONDS=30 node examples/library.mjs rowsync.yml shop-to-pg
 *
 * Inside this checkout `import ... from 'rowsync'` resolves to the package itself (its `exports`);
 * in your project it is the installed package. The library prints nothing: every line below is
 * this script's, from the values and events rowsync hands it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createRowsync, RunFailedError } from 'rowsync';

const [configFile = process.env.ROWSYNC_CONFIG, pipeline] = process.argv.slice(2);
const streamSeconds = Number(process.env.STREAM_SECONDS ?? 10);
if (!configFile || !pipeline) {
  console.error('usage: node examples/library.mjs CONFIG_FILE PIPELINE');
  process.exit(2);
}

// Validated like the CLI's config file; a config object (what the file holds) works as well.
const rowsync = createRowsync(configFile);

// Progress and results arrive as typed events: show them however you like.
let lastProgressLine = 0;
rowsync.on('run:progress', ({ counts }) => {
  const finished = counts.chunksPlanned > 0 && counts.chunksDone === counts.chunksPlanned;
  if (!finished && Date.now() - lastProgressLine < 1000) return;
  lastProgressLine = Date.now();
  console.log(`progress: ${counts.chunksDone}/${counts.chunksPlanned} chunks, ${counts.rowsCompared.toLocaleString('en-US')} rows compared`);
});
rowsync.on('cdc:status', ({ stream, state, error }) => console.log(`cdc ${stream}: ${state}${error ? ` (${error})` : ''}`));
rowsync.on('cdc:batch', ({ target, keys, inserted, updated, deleted }) =>
  console.log(`cdc ${pipeline}: applied ${keys} change(s) to ${target} (inserted ${inserted}, updated ${updated}, deleted ${deleted})`),
);

const sum = (report, field) => report.tables.reduce((total, table) => total + table[field], 0);

try {
  // The batch synchronizer: what a run would write (its own chunk size for this call), then the repair.
  const preview = await rowsync.reconcile(pipeline, { dryRun: true, chunkSize: 1000 });
  console.log(
    `reconcile ${pipeline} (dry run): ${sum(preview, 'changed')} changed, ${sum(preview, 'missing')} missing, ` +
      `${sum(preview, 'extra')} extra in ${sum(preview, 'chunks')} chunk(s)`,
  );
  const report = await rowsync.reconcile(pipeline);
  console.log(
    `reconcile ${pipeline}: inserted ${sum(report, 'inserted')}, updated ${sum(report, 'updated')}, deleted ${sum(report, 'deleted')}, ` +
      `conflicts ${sum(report, 'conflicts')} (run ${report.runId})`,
  );

  // The real-time synchronizer: stream the pipeline's changes for a while.
  if (rowsync.config.pipelines.find((entry) => entry.name === pipeline)?.cdc) {
    await rowsync.setupCdc(pipeline);
    const streaming = new Promise((resolve) => rowsync.on('cdc:status', ({ state }) => state === 'streaming' && resolve()));
    const cdc = await rowsync.startCdc({ pipeline, workers: 2 });
    // `ref: false`: a timer left running must not keep the process alive once rowsync is closed.
    await Promise.race([streaming, sleep(30_000, undefined, { ref: false })]);
    await sleep(streamSeconds * 1000);
    const stats = await rowsync.syncStats(pipeline);
    const target = stats.streams[0]?.targets[0];
    console.log(
      `sync stats ${pipeline}: ${stats.totalChanges} change(s) in total, ${stats.changesLastHour} in the last hour, ` +
        `last at ${stats.lastChangeAt ?? 'never'}, queue ${stats.queueLength}, lag ${stats.lagMs ?? '-'} ms, ` +
        `position ${target?.position ?? '-'}, dead letters ${stats.deadLetters}, running ${stats.running}`,
    );
    await cdc.stop();
  } else {
    console.log(`cdc ${pipeline}: no cdc section, not streamed`);
  }

  // The conflict resolver's statistics (`conflicts()` lists them, `resolveConflicts()` settles them).
  const conflicts = await rowsync.conflictStats(pipeline);
  console.log(`conflicts ${pipeline}: ${conflicts.total} in total, ${conflicts.pending} pending`);
} catch (error) {
  if (!(error instanceof RunFailedError)) throw error;
  console.error(`run failed: ${error.message}`);
  process.exitCode = 1;
} finally {
  // Closes Redis and the database pools: the process then ends on its own.
  await rowsync.close();
}
