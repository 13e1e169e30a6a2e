// Usage: node scripts/test-summary.mjs <vitest-json-report> <vitest-exit-code> [passed|failed (type check)]
// Prints "N passed, N failed" as the last line and exits 1 when anything failed or no test ran.
// A test file that crashed before its tests ran (import error, failing beforeAll…) counts as one
// failure, as does a non-zero vitest exit that the report does not explain (unhandled errors, crash).
import { readFileSync } from 'node:fs';

const [reportPath, rcArg = '0', typecheck] = process.argv.slice(2);
const vitestRc = Number(rcArg) || 0;

let passed = 0;
let failed = 0;
let report;
try {
  const text = reportPath ? readFileSync(reportPath, 'utf8') : '';
  report = text.trim() ? JSON.parse(text) : undefined;
} catch (err) {
  console.error(`test-summary: cannot read vitest report ${reportPath}: ${err.message}`);
}

if (report) {
  passed = report.numPassedTests ?? 0;
  failed = report.numFailedTests ?? 0;
  for (const file of report.testResults ?? []) {
    const assertions = file.assertionResults ?? [];
    const failedInside = assertions.some((a) => a.status === 'failed');
    if (file.status === 'failed' && !failedInside) {
      failed += 1;
      const msg = (file.message || 'failed without a failing test').split('\n')[0];
      console.error(`test-summary: ${file.name}: ${msg}`);
    }
  }
}
if (vitestRc !== 0 && failed === 0) {
  failed = 1;
  console.error(`test-summary: vitest exited with code ${vitestRc}${report ? '' : ' and wrote no report'}`);
}
if (passed + failed === 0) console.error('test-summary: no test ran');
// The type check counts as one test, but only next to tests that ran: alone it is not a test run.
if (typecheck === 'failed') failed += 1;
else if (typecheck === 'passed' && passed + failed > 0) passed += 1;

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
