/**
 * Preloaded into the rowsync CLI process the bench spawns (`node --import`): at exit it writes the
 * process's peak RSS and CPU time to $ROWSYNC_BENCH_PROBE, measured by the process itself, so no
 * sampling can miss a short peak.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.ROWSYNC_BENCH_PROBE;
if (file) {
  process.on('exit', () => {
    const usage = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ maxRssKb: usage.maxRSS, userCpuMs: usage.userCPUTime / 1000, systemCpuMs: usage.systemCPUTime / 1000 }));
  });
}
