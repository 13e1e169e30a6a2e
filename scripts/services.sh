#!/usr/bin/env bash
# Throwaway Redis, MariaDB and PostgreSQL instances for rowsync's tests and demo.
#
#   bash scripts/services.sh start|stop|status|env
#
# Starts the project's OWN servers from the locally installed binaries, on their own ports and with
# their own data directories under .services/ (never the machine's default instances):
#   Redis 16379, MariaDB 13306 (binlog ROW/FULL, server_id=1), PostgreSQL 15432 (wal_level=logical).
# Ports: ROWSYNC_REDIS_PORT / ROWSYNC_MYSQL_PORT / ROWSYNC_PG_PORT.
# A server named by ROWSYNC_TEST_REDIS_URL / ROWSYNC_TEST_MYSQL_URL / ROWSYNC_TEST_POSTGRES_URL is
# used as is and not started. Credentials everywhere: user rowsync, password rowsync, database rowsync.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES="${ROWSYNC_SERVICES_DIR:-$ROOT/.services}"
REDIS_PORT="${ROWSYNC_REDIS_PORT:-16379}"
MYSQL_PORT="${ROWSYNC_MYSQL_PORT:-13306}"
PG_PORT="${ROWSYNC_PG_PORT:-15432}"
READY_TIMEOUT="${ROWSYNC_SERVICES_TIMEOUT:-90}"

log() { echo "[services] $*" >&2; }
die() { echo "[services] ERROR: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

# Unix socket paths are limited to ~107 bytes; deep checkouts get a short per-checkout dir in /tmp.
HASH="$(printf '%s' "$SERVICES" | cksum | cut -d' ' -f1)"
SHORT_TMP="${TMPDIR:-/tmp}/rowsync-$HASH"
sock_dir() { # $1 = preferred dir
  if [ "${#1}" -le 80 ]; then echo "$1"; else echo "$SHORT_TMP/$(basename "$1")"; fi
}

# ---------------------------------------------------------------------------------------------
# binaries
find_bin() { # name, extra dirs...
  local name="$1"; shift
  local d
  for d in "$@" /usr/sbin /usr/local/sbin /usr/bin /usr/local/bin; do
    [ -x "$d/$name" ] && { echo "$d/$name"; return 0; }
  done
  command -v "$name" 2>/dev/null || return 1
}

pg_bindir() {
  if [ -n "${ROWSYNC_PG_BIN:-}" ]; then echo "$ROWSYNC_PG_BIN"; return; fi
  local d
  for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -Vr) \
           /usr/pgsql-15/bin /usr/local/pgsql/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir)"; [ -x "$d/initdb" ] && { echo "$d"; return; }
  fi
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)"
}

APT_UPDATED=0
ensure_pkg() { # package, description
  local pkg="$1"
  if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
    die "$2 is not installed. Install it with:  sudo apt-get install -y $pkg
  (or point the tests at another server with the ROWSYNC_TEST_*_URL variables, or run 'docker compose up -d')"
  fi
  log "$2 not found: installing Debian package $pkg"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq >&2 || true; APT_UPDATED=1; fi
  apt-get install -y -qq --no-install-recommends "$pkg" >&2 || die "apt-get install $pkg failed"
}

# ---------------------------------------------------------------------------------------------
# helpers
pid_alive() { # pidfile, process-name-substring
  local f="$1" pid
  [ -s "$f" ] || return 1
  pid="$(pid_of "$f")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}
pid_of() { head -n1 "$1" | tr -dc 0-9; }

same_port() { # dir, port: the port our server in dir was started on
  [ "$(cat "$1/port" 2>/dev/null)" = "$2" ]
}

port_busy() { # port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True when the server listening on the port is a throwaway instance of another rowsync checkout (its
# working directory or command line is under a `.services/` or `/tmp/rowsync-<hash>/` folder): a
# second clone on the same machine reuses it (same settings, same users) instead of failing.
other_checkout_instance() { # port
  command -v ss >/dev/null 2>&1 || return 1
  local pid; pid="$(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  local where; where="$(readlink "/proc/$pid/cwd" 2>/dev/null; tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
  [[ "$where" =~ /\.services/|/rowsync-[0-9a-f]+/ ]]
}

wait_for() { # description, logfile, command...
  local what="$1" logf="$2"; shift 2
  local deadline=$(( $(date +%s) + READY_TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "[services] ERROR: $what did not become ready within ${READY_TIMEOUT}s. Last lines of $logf:" >&2
      tail -n 40 "$logf" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

wait_gone() { # pid
  local i
  for i in $(seq 1 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Redis
REDIS_DIR="$SERVICES/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
redis_cli() { "$(find_bin redis-cli)" -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
redis_ping() { [ "$(redis_cli ping 2>/dev/null)" = PONG ]; }

redis_start() {
  if [ -n "${ROWSYNC_TEST_REDIS_URL:-}" ]; then log "redis: using ROWSYNC_TEST_REDIS_URL"; return; fi
  local bin; bin="$(find_bin redis-server)" || { ensure_pkg redis-server "redis-server"; bin="$(find_bin redis-server)"; }
  mkdir -p "$REDIS_DIR"
  if pid_alive "$REDIS_PID" redis-server; then
    if same_port "$REDIS_DIR" "$REDIS_PORT" && redis_ping; then log "redis: running on $REDIS_PORT (reused)"; return; fi
    log "redis: ours runs on another port, restarting it on $REDIS_PORT"; redis_stop
  fi
  if port_busy "$REDIS_PORT" && other_checkout_instance "$REDIS_PORT"; then log "redis: another rowsync checkout's instance runs on $REDIS_PORT (reused)"; return; fi
  port_busy "$REDIS_PORT" && die "port $REDIS_PORT is in use by a server this script did not start (set ROWSYNC_REDIS_PORT, or ROWSYNC_TEST_REDIS_URL to use it, e.g. eval \"\$(bash scripts/services.sh env)\")"
  : > "$REDIS_LOG"
  "$bin" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$REDIS_DIR" --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --unixsocket "" \
    --maxclients 10000 </dev/null >>"$REDIS_LOG" 2>&1 9>&- || { tail -n 40 "$REDIS_LOG" >&2; die "redis-server failed to start"; }
  wait_for "redis on port $REDIS_PORT" "$REDIS_LOG" redis_ping
  echo "$REDIS_PORT" > "$REDIS_DIR/port"
  log "redis: started on $REDIS_PORT"
}

redis_stop() {
  if pid_alive "$REDIS_PID" redis-server; then
    local pid; pid="$(pid_of "$REDIS_PID")"
    kill "$pid"; wait_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
    log "redis: stopped"
  fi
  rm -f "$REDIS_PID"
}

redis_status() {
  if [ -n "${ROWSYNC_TEST_REDIS_URL:-}" ]; then echo "redis:    external ($ROWSYNC_TEST_REDIS_URL)"
  elif pid_alive "$REDIS_PID" redis-server && same_port "$REDIS_DIR" "$REDIS_PORT" && redis_ping; then echo "redis:    running  pid $(pid_of "$REDIS_PID") port $REDIS_PORT"
  else echo "redis:    stopped"; return 1; fi
}

# ---------------------------------------------------------------------------------------------
# MariaDB
MY_DIR="$SERVICES/mariadb"
MY_DATA="$MY_DIR/data"
MY_CNF="$MY_DIR/my.cnf"
MY_PID="$MY_DIR/mariadbd.pid"
MY_LOG="$MY_DIR/mariadbd.log"
MY_SOCK="$(sock_dir "$MY_DIR/run")/mariadbd.sock"

my_client() { "$(find_bin mariadb || find_bin mysql)" --no-defaults --socket="$MY_SOCK" -uroot "$@"; }
my_ping() { "$(find_bin mariadb-admin || find_bin mysqladmin)" --no-defaults --socket="$MY_SOCK" -uroot --connect-timeout=2 ping; }

my_alive() { pid_alive "$MY_PID" mariadbd || pid_alive "$MY_PID" mysqld; }

my_write_cnf() {
  local user; user="$(id -un)"
  cat > "$MY_CNF" <<EOF
# generated by scripts/services.sh (rewritten on every start)
[mariadbd]
user = $user
datadir = $MY_DATA
socket = $MY_SOCK
pid-file = $MY_PID
log-error = $MY_LOG
tmpdir = $MY_DIR/tmp
port = $MYSQL_PORT
bind-address = 127.0.0.1
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
server_id = 1
log-bin = $MY_DIR/binlog/mysql-bin
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
binlog_expire_logs_seconds = 86400
max_connections = 500
innodb_buffer_pool_size = 128M
innodb_flush_log_at_trx_commit = 2
sync_binlog = 0
EOF
}

my_start() {
  if [ -n "${ROWSYNC_TEST_MYSQL_URL:-}" ]; then log "mariadb: using ROWSYNC_TEST_MYSQL_URL"; return; fi
  local bin; bin="$(find_bin mariadbd || find_bin mysqld)" || { ensure_pkg mariadb-server "MariaDB server (mariadbd)"; bin="$(find_bin mariadbd || find_bin mysqld)"; }
  mkdir -p "$MY_DIR/binlog" "$MY_DIR/tmp" "$(dirname "$MY_SOCK")"
  if my_alive; then
    if same_port "$MY_DIR" "$MYSQL_PORT" && my_ping >/dev/null 2>&1; then log "mariadb: running on $MYSQL_PORT (reused)"; return; fi
    log "mariadb: ours runs on another port, restarting it on $MYSQL_PORT"; my_stop
  fi
  if port_busy "$MYSQL_PORT" && other_checkout_instance "$MYSQL_PORT"; then log "mariadb: another rowsync checkout's instance runs on $MYSQL_PORT (reused)"; return; fi
  port_busy "$MYSQL_PORT" && die "port $MYSQL_PORT is in use by a server this script did not start (set ROWSYNC_MYSQL_PORT, or ROWSYNC_TEST_MYSQL_URL to use it, e.g. eval \"\$(bash scripts/services.sh env)\")"
  my_write_cnf
  if [ ! -d "$MY_DATA/mysql" ]; then
    log "mariadb: initialising $MY_DATA"
    rm -rf "$MY_DATA" "$MY_DIR/binlog"; mkdir -p "$MY_DIR/binlog"
    local inst; inst="$(find_bin mariadb-install-db || find_bin mysql_install_db)" || die "mariadb-install-db not found"
    "$inst" --defaults-file="$MY_CNF" --auth-root-authentication-method=normal --skip-test-db \
      --user="$(id -un)" >"$MY_DIR/install-db.log" 2>&1 \
      || { tail -n 40 "$MY_DIR/install-db.log" >&2; rm -rf "$MY_DATA"; die "mariadb-install-db failed"; }
  fi
  : > "$MY_LOG"
  setsid "$bin" --defaults-file="$MY_CNF" </dev/null >>"$MY_LOG" 2>&1 9>&- &
  wait_for "mariadb on port $MYSQL_PORT" "$MY_LOG" my_ping
  echo "$MYSQL_PORT" > "$MY_DIR/port"
  my_client <<'SQL' || die "mariadb: creating user rowsync failed"
CREATE USER IF NOT EXISTS 'rowsync'@'%' IDENTIFIED BY 'rowsync';
CREATE USER IF NOT EXISTS 'rowsync'@'localhost' IDENTIFIED BY 'rowsync';
CREATE USER IF NOT EXISTS 'rowsync'@'127.0.0.1' IDENTIFIED BY 'rowsync';
GRANT ALL PRIVILEGES ON *.* TO 'rowsync'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'rowsync'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'rowsync'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS rowsync CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
FLUSH PRIVILEGES;
SQL
  log "mariadb: started on $MYSQL_PORT"
}

my_stop() {
  if my_alive; then
    local pid; pid="$(pid_of "$MY_PID")"
    kill "$pid"; wait_gone "$pid" || kill -9 "$pid" 2>/dev/null || true
    log "mariadb: stopped"
  fi
}

my_status() {
  if [ -n "${ROWSYNC_TEST_MYSQL_URL:-}" ]; then echo "mariadb:  external (${ROWSYNC_TEST_MYSQL_URL%%@*}@…)"
  elif my_alive && same_port "$MY_DIR" "$MYSQL_PORT" && my_ping >/dev/null 2>&1; then
    echo "mariadb:  running  pid $(pid_of "$MY_PID") port $MYSQL_PORT"
  else echo "mariadb:  stopped"; return 1; fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# Runs as the 'postgres' OS user when we are root (initdb/postgres refuse root). Its directory lives in
# .services/postgres when that user can reach it, else in a per-checkout dir under /tmp (e.g. when the
# checkout is below /root); .services/postgres-location records which one.
as_pg() {
  # from / : the postgres user may not be allowed into the caller's working directory
  if is_root; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_base() {
  local want="$SERVICES/postgres"
  if [ -s "$SERVICES/postgres-location" ]; then cat "$SERVICES/postgres-location"; return; fi
  if ! is_root; then echo "$want"; return; fi
  mkdir -p "$want"
  chmod 755 "$SERVICES"
  chown postgres: "$want"; chmod 700 "$want"
  if runuser -u postgres -- test -w "$want" 2>/dev/null; then echo "$want"; return; fi
  rmdir "$want" 2>/dev/null || true
  echo "$SHORT_TMP/postgres"
}

pg_setup_paths() {
  PG_BIN="$(pg_bindir || true)"
  PG_BASE="$(pg_base)"
  PG_DATA="$PG_BASE/data"
  PG_LOG="$PG_BASE/postgres.log"
  PG_SOCK="$(sock_dir "$PG_BASE/run")"
  [ "${#PG_SOCK}" -le 80 ] || PG_SOCK="$SHORT_TMP/pgrun"
}

pg_ready() { as_pg "$PG_BIN/pg_isready" -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres; }
pg_psql() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres "$@"; }
pg_alive() { [ -n "$PG_BIN" ] && [ -s "$PG_DATA/postmaster.pid" ] && pid_alive "$PG_DATA/postmaster.pid" postgres; }
pg_running() { pg_alive && [ "$(sed -n 4p "$PG_DATA/postmaster.pid")" = "$PG_PORT" ] && pg_ready; }

pg_start() {
  if [ -n "${ROWSYNC_TEST_POSTGRES_URL:-}" ]; then log "postgres: using ROWSYNC_TEST_POSTGRES_URL"; return; fi
  if is_root && ! id postgres >/dev/null 2>&1; then ensure_pkg postgresql-15 "PostgreSQL 15"; fi
  pg_setup_paths
  if [ -z "$PG_BIN" ]; then ensure_pkg postgresql-15 "PostgreSQL 15 (initdb, pg_ctl)"; pg_setup_paths; fi
  [ -n "$PG_BIN" ] || die "PostgreSQL binaries (initdb, pg_ctl) not found"
  if pg_alive 2>/dev/null; then
    if pg_running 2>/dev/null; then log "postgres: running on $PG_PORT (reused)"; return; fi
    log "postgres: ours runs on another port or is not ready, restarting it on $PG_PORT"; pg_stop
  fi
  if port_busy "$PG_PORT" && other_checkout_instance "$PG_PORT"; then log "postgres: another rowsync checkout's instance runs on $PG_PORT (reused)"; return; fi
  port_busy "$PG_PORT" && die "port $PG_PORT is in use by a server this script did not start (set ROWSYNC_PG_PORT, or ROWSYNC_TEST_POSTGRES_URL to use it, e.g. eval \"\$(bash scripts/services.sh env)\")"
  mkdir -p "$PG_BASE" "$PG_SOCK"
  if is_root; then
    chown postgres: "$PG_BASE" "$PG_SOCK"; chmod 700 "$PG_BASE"
    [ "$PG_BASE" = "$SERVICES/postgres" ] || echo "$PG_BASE" > "$SERVICES/postgres-location"
  fi
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    log "postgres: initialising $PG_DATA"
    rm -rf "$PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C --auth=trust >"$PG_BASE/initdb.log" 2>&1 \
      || { tail -n 40 "$PG_BASE/initdb.log" >&2; die "initdb failed"; }
    as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null <<'EOF'

# ---- rowsync throwaway test instance (scripts/services.sh) ----
listen_addresses = '127.0.0.1'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
EOF
    # initdb --auth=trust already trusts local and 127.0.0.1/::1, including replication connections
  fi
  as_pg touch "$PG_LOG"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$READY_TIMEOUT" \
    -o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1" start </dev/null >/dev/null 2>&1 9>&- \
    || { tail -n 40 "$PG_LOG" >&2; die "postgres failed to start on port $PG_PORT"; }
  wait_for "postgres on port $PG_PORT" "$PG_LOG" pg_ready
  pg_psql -d postgres <<'SQL' || die "postgres: creating role rowsync failed"
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rowsync') THEN
    CREATE ROLE rowsync SUPERUSER REPLICATION LOGIN PASSWORD 'rowsync';
  END IF;
END $$;
SELECT 'CREATE DATABASE rowsync OWNER rowsync' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'rowsync')
\gexec
SQL
  log "postgres: started on $PG_PORT"
}

pg_stop() {
  pg_setup_paths
  [ -n "$PG_BIN" ] || return 0
  if [ -s "$PG_DATA/postmaster.pid" ] && pid_alive "$PG_DATA/postmaster.pid" postgres; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || kill -9 "$(pid_of "$PG_DATA/postmaster.pid")" 2>/dev/null || true
    log "postgres: stopped"
  fi
}

pg_status() {
  if [ -n "${ROWSYNC_TEST_POSTGRES_URL:-}" ]; then echo "postgres: external (${ROWSYNC_TEST_POSTGRES_URL%%@*}@…)"; return; fi
  pg_setup_paths
  if pg_running 2>/dev/null; then echo "postgres: running  pid $(pid_of "$PG_DATA/postmaster.pid") port $PG_PORT ($PG_DATA)"
  else echo "postgres: stopped"; return 1; fi
}

# ---------------------------------------------------------------------------------------------
print_env() {
  echo "export ROWSYNC_TEST_REDIS_URL=${ROWSYNC_TEST_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
  echo "export ROWSYNC_TEST_MYSQL_URL=${ROWSYNC_TEST_MYSQL_URL:-mysql://rowsync:rowsync@127.0.0.1:$MYSQL_PORT/rowsync}"
  echo "export ROWSYNC_TEST_POSTGRES_URL=${ROWSYNC_TEST_POSTGRES_URL:-postgres://rowsync:rowsync@127.0.0.1:$PG_PORT/rowsync}"
}

with_lock() {
  mkdir -p "$SERVICES"
  exec 9>"$SERVICES/.lock"
  flock -w 300 9 || die "could not lock $SERVICES/.lock"
}

cmd="${1:-}"
case "$cmd" in
  start)
    with_lock
    start_ts=$(date +%s)
    redis_start; my_start; pg_start
    log "ready in $(( $(date +%s) - start_ts ))s"
    ;;
  stop)
    with_lock
    pg_stop; my_stop; redis_stop
    ;;
  status)
    rc=0
    redis_status || rc=1; my_status || rc=1; pg_status || rc=1
    exit $rc
    ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
