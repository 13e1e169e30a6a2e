#!/usr/bin/env bash
# System tools some test suites drive, from Debian's packages. Idempotent: a tool already present is
# left alone. Run by scripts/test.sh before vitest (and by hand: `bash scripts/install-test-tools.sh`).
#
# As root with apt-get it installs what is missing (`apt-get install -y --no-install-recommends`,
# `apt-get update` first when the package lists do not know the package yet). Otherwise it prints
# what to install and exits 0: the suites that need a missing tool say so themselves (and fail under
# CI=true instead of skipping).
#
# One function per tool: `need_<tool>` adds the Debian package(s) to MISSING_PACKAGES when the tool
# is absent. Add a tool by writing its function and calling it from main.
set -uo pipefail

MISSING_PACKAGES=()
MISSING_TOOLS=()

log() { echo "[test-tools] $*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }

# Headless Chromium for test/integration/board-overview.test.ts (driven by playwright-core, which
# brings no browser of its own here: it launches Debian's /usr/bin/chromium).
need_chromium() {
  local bin="${ROWSYNC_CHROMIUM:-/usr/bin/chromium}"
  if [ -x "$bin" ] || command -v chromium >/dev/null 2>&1; then return 0; fi
  MISSING_TOOLS+=("chromium (headless browser for the board overview test)")
  MISSING_PACKAGES+=(chromium)
}

# promtool for test/integration/alert-rules.test.ts (`promtool check rules` and `promtool test rules`
# on docker/prometheus/rowsync-alerts.yml). Debian ships it in the `prometheus` package.
need_promtool() {
  if command -v promtool >/dev/null 2>&1; then return 0; fi
  MISSING_TOOLS+=("promtool (Prometheus rule checker for the alert rules test)")
  MISSING_PACKAGES+=(prometheus)
}

# apt's progress goes to a log shown only when the install fails, so the test output stays readable.
install_missing() {
  export DEBIAN_FRONTEND=noninteractive
  local apt_log
  apt_log="$(mktemp "${TMPDIR:-/tmp}/rowsync-test-tools-XXXXXX.log")"
  log "installing Debian package(s): ${MISSING_PACKAGES[*]}"
  if apt-get install -y -qq --no-install-recommends "${MISSING_PACKAGES[@]}" >"$apt_log" 2>&1; then rm -f "$apt_log"; return 0; fi
  # A fresh machine's package lists may be empty or stale: refresh once and try again.
  apt-get update -qq >>"$apt_log" 2>&1 || true
  if apt-get install -y -qq --no-install-recommends "${MISSING_PACKAGES[@]}" >>"$apt_log" 2>&1; then rm -f "$apt_log"; return 0; fi
  cat "$apt_log" >&2
  rm -f "$apt_log"
  return 1
}

main() {
  need_chromium
  need_promtool
  if [ "${#MISSING_PACKAGES[@]}" -eq 0 ]; then return 0; fi
  if is_root && command -v apt-get >/dev/null 2>&1; then
    if install_missing; then return 0; fi
    log "apt-get install ${MISSING_PACKAGES[*]} failed; the suites that need them will say so"
    return 0
  fi
  local tool
  for tool in "${MISSING_TOOLS[@]}"; do log "missing: $tool"; done
  log "install with:  sudo apt-get install -y --no-install-recommends ${MISSING_PACKAGES[*]}"
  return 0
}

main "$@"
