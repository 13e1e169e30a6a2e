import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Starts (or reuses) the throwaway Redis/MariaDB/PostgreSQL servers before any test file runs, so that
 * `npx vitest` alone works. ROWSYNC_SKIP_SERVICES=1 skips it (scripts/test.sh has already started them,
 * or the ROWSYNC_TEST_*_URL variables point elsewhere). Servers are left running for the next run;
 * `npm run services:stop` stops them.
 */
export default function setup(): void {
  if (process.env.ROWSYNC_SKIP_SERVICES === '1') return;
  const script = resolve(root, 'scripts/services.sh');
  execFileSync('bash', [script, 'start'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  const env = execFileSync('bash', [script, 'env'], { cwd: root, encoding: 'utf8' });
  for (const line of env.split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line.trim());
    if (m && m[1] && m[2] !== undefined) process.env[m[1]] = m[2];
  }
}
