#!/usr/bin/env bash
# The test command (`npm test`): starts (or reuses) the throwaway servers, runs vitest with any extra
# arguments passed through, and ends with one line "N passed, N failed". Exits non-zero when anything
# failed (tests, whole files that crashed, unhandled errors) or when no test ran.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! bash scripts/services.sh start; then
  echo "test servers could not be started (see above)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
eval "$(bash scripts/services.sh env)"
export ROWSYNC_SKIP_SERVICES=1   # global-setup need not start them again

# System tools some suites drive (headless Chromium, promtool): installed when missing and we are root,
# otherwise named with the command to install them (those suites then fail saying so under CI).
bash scripts/install-test-tools.sh

REPORT="$(mktemp "${TMPDIR:-/tmp}/rowsync-vitest-XXXXXX.json")"
trap 'rm -f "$REPORT"' EXIT

# vitest strips types without checking them: the type check of src/ and test/ counts as one test.
# dist/ first: test/types checks the package's own .d.ts files as a user of `rowsync` sees them.
if npx tsc -p tsconfig.json && npx tsc -p tsconfig.test.json; then TYPECHECK=passed; else TYPECHECK=failed; echo "type check failed (see above)" >&2; fi

npx vitest run --reporter=default --reporter=json --outputFile.json="$REPORT" "$@" </dev/null
VITEST_RC=$?

node scripts/test-summary.mjs "$REPORT" "$VITEST_RC" "$TYPECHECK"
