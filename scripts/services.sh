#!/usr/bin/env bash
# Throwaway Redis, MariaDB and PostgreSQL instances for rowsync's tests and demo.
#
#   bash scripts/services.sh start|start-cluster|stop|status|env
#
# Starts the project's OWN servers from the locally installed binaries, on their own ports and with
# their own data directories under .services/ (never the machine's default instances):
#   Redis 16379, a Redis Cluster of three masters on 17001-17003, MariaDB 13306 (binlog ROW/FULL,
#   server_id=1), PostgreSQL 15432 (wal_level=logical). `start-cluster` starts only the cluster.
# Ports: ROWSYNC_REDIS_PORT / ROWSYNC_REDIS_CLUSTER_PORT (the first of three) / ROWSYNC_MYSQL_PORT /
# ROWSYNC_PG_PORT; data directories: ROWSYNC_SERVICES_DIR (default .services/). A server named by
# ROWSYNC_TEST_REDIS_URL / ROWSYNC_TEST_REDIS_CLUSTER_NODES (comma-separated redis:// URLs) /
# ROWSYNC_TEST_MYSQL_URL / ROWSYNC_TEST_POSTGRES_URL is used as is and not started. Credentials
# everywhere: user rowsync, password rowsync, database rowsync.
#
# What `start` reuses (it is idempotent, and never stops a server that other test runs may be using):
#   - Ours (its pidfile under the services directory names a live process) is reused on the port it
#     runs on, once it answers a real query (the probes below). Without the server's ROWSYNC_*_PORT
#     variable that may be another port than the default: `env` and `status` then report the port it
#     runs on, so `eval "$(bash scripts/services.sh env)"` points the tests at it. With the variable
#     naming another port, start fails naming both ports: a running server is never moved implicitly.
#     Ours alive but not answering within ROWSYNC_SERVICES_TIMEOUT seconds is restarted on its port.
#   - A port held by another rowsync checkout's instance (its working directory, the data directory
#     for MariaDB and PostgreSQL, under a `.services/` or `/tmp/rowsync-<n>/` folder) is reused only
#     when that directory still exists AND the server answers a query that needs it: Redis SET/GET/DEL
#     of a probe key; the cluster: state ok on all three nodes and a write; MariaDB CREATE and DROP
#     DATABASE as rowsync over TCP (with sql_log_bin=0: CDC readers see nothing); PostgreSQL CREATE
#     and DROP of a temporary table as rowsync over TCP. Otherwise start fails, naming the pid, its
#     directory ("deleted" when gone) and what to do: `kill PID`, or a free port for ROWSYNC_*_PORT.
#   - Anything else on the port: start fails, naming it, a free port and the ROWSYNC_TEST_* variable.
# Free ports are suggested, not taken automatically: the demo's config and anything else using the
# default ports would still reach the broken server, and the next run would pick yet another port.
# `status` exits 0 only when every server is usable (ours, or one start would reuse) and otherwise
# says what holds the port; `stop` stops ours whatever port it runs on.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES="${ROWSYNC_SERVICES_DIR:-$ROOT/.services}"
DEFAULT_REDIS_PORT=16379 DEFAULT_CLUSTER_PORT=17001 DEFAULT_MYSQL_PORT=13306 DEFAULT_PG_PORT=15432
REDIS_PORT="${ROWSYNC_REDIS_PORT:-$DEFAULT_REDIS_PORT}"
MYSQL_PORT="${ROWSYNC_MYSQL_PORT:-$DEFAULT_MYSQL_PORT}"
PG_PORT="${ROWSYNC_PG_PORT:-$DEFAULT_PG_PORT}"
CLUSTER_PORT="${ROWSYNC_REDIS_CLUSTER_PORT:-$DEFAULT_CLUSTER_PORT}"
READY_TIMEOUT="${ROWSYNC_SERVICES_TIMEOUT:-90}"
SELF="bash ${BASH_SOURCE[0]}"
# Probe names carry our pid: two checkouts probing one server at once never collide.
PROBE="rowsync_services_probe_$$"

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

port_busy() { # port
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

port_pid() { # port: the pid listening on it (nothing when none, or when ss cannot tell)
  command -v ss >/dev/null 2>&1 || return 0
  ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

# The port ours runs on: the one recorded in <dir>/port (written before each launch), else the lowest
# port the process listens on, else $3.
recorded_port() { # dir, pid, fallback
  local p; p="$(tr -dc 0-9 < "$1/port" 2>/dev/null || true)"
  if [ -z "$p" ] && command -v ss >/dev/null 2>&1; then
    p="$(ss -ltnpH 2>/dev/null | grep "pid=$2," | awk '{print $4}' | sed 's/.*://' | sort -n | head -n1 || true)"
  fi
  echo "${p:-$3}"
}

# The first port above $1 where $2 ports in a row are free (a cluster also needs their bus ports, +10000).
free_port_after() { # port, count
  local p=$(( $1 + 1 )) i ok
  while [ "$p" -le 55000 ]; do
    ok=1
    for ((i = 0; i < $2; i++)); do
      if port_busy $((p + i)) || { [ "$2" -gt 1 ] && port_busy $((p + i + 10000)); }; then ok=0; break; fi
    done
    [ "$ok" = 1 ] && { echo "$p"; return; }
    p=$((p + 1))
  done
  echo "<a free port>"
}

# A command line to copy: this script with the caller's ROWSYNC_SERVICES_DIR, for start also the
# caller's other port variables, and the given settings.
hint() { # subcommand, VAR=value...
  local sub="$1"; shift
  local words=() var
  [ -z "${ROWSYNC_SERVICES_DIR:-}" ] || words+=("ROWSYNC_SERVICES_DIR=$ROWSYNC_SERVICES_DIR")
  if [ "$sub" = start ]; then
    for var in ROWSYNC_REDIS_PORT ROWSYNC_REDIS_CLUSTER_PORT ROWSYNC_MYSQL_PORT ROWSYNC_PG_PORT; do
      if [ -n "${!var:-}" ] && [[ " $* " != *" $var="* ]]; then words+=("$var=${!var}"); fi
    done
  fi
  words+=("$@" "$SELF" "$sub")
  echo "${words[*]}"
}

first_line() { local l; l="$(grep -v '^[[:space:]]*$' <<<"$1" | grep -v '^-> Redirected' | head -n1 | cut -c1-200 || true)"; echo "${l:-no answer}"; }

# What listens on a port, for the reuse decision and the messages. Sets OWNER_PID, OWNER_NAME,
# OWNER_DIR (its working directory: the --dir of Redis, the data directory of mariadbd and postgres),
# OWNER_DELETED (1 when that directory is gone: /proc shows "<dir> (deleted)"), and OWNER_KIND:
# rowsync (another checkout's instance of this script), foreign, or unknown (ss cannot tell).
inspect_port() { # port
  OWNER_PID="$(port_pid "$1")" OWNER_NAME="" OWNER_DIR="" OWNER_DELETED=0 OWNER_KIND=unknown
  [ -n "$OWNER_PID" ] || return 0
  OWNER_NAME="$(cat "/proc/$OWNER_PID/comm" 2>/dev/null || echo "?")"
  local cwd cmdline
  cwd="$(readlink "/proc/$OWNER_PID/cwd" 2>/dev/null || true)"
  if [[ "$cwd" == *" (deleted)" ]]; then OWNER_DIR="${cwd% (deleted)}"; OWNER_DELETED=1
  elif [ -n "$cwd" ]; then OWNER_DIR="$cwd"; [ -d "$cwd" ] || OWNER_DELETED=1
  fi
  cmdline="$(tr '\0' ' ' < "/proc/$OWNER_PID/cmdline" 2>/dev/null || true)"
  if [[ "$OWNER_DIR $cmdline" =~ /\.services/|/rowsync-[0-9]+/ ]]; then OWNER_KIND=rowsync; else OWNER_KIND=foreign; fi
}

owner_text() { # what inspect_port found
  if [ "$OWNER_KIND" = unknown ]; then
    echo "a process this script cannot identify (ss -ltnp, run as root, names it)"; return
  fi
  local where="${OWNER_DIR:-a directory this user cannot read}"
  [ "$OWNER_DELETED" = 0 ] || where="$where, deleted"
  if [ "$OWNER_KIND" = rowsync ] && [[ "$OWNER_DIR/" == "$SERVICES/"* ]]; then
    echo "pid $OWNER_PID ($OWNER_NAME at $where: this checkout's services directory, but no pidfile of ours names it)"
  elif [ "$OWNER_KIND" = rowsync ]; then echo "pid $OWNER_PID (another rowsync checkout's $OWNER_NAME at $where)"
  else echo "pid $OWNER_PID ($OWNER_NAME at $where), a server this script did not start"; fi
}

# Ours is not on the port but something is: may we use it? Only another checkout's instance of this
# script whose directory still exists and that answers the probe. Sets OWNER_* and WHY_NOT.
judge_port() { # port, probe (a function: port → success when it answers, else prints why)
  inspect_port "$1"
  WHY_NOT=""
  case "$OWNER_KIND" in
    unknown) WHY_NOT="this script cannot tell which process it is" ;;
    foreign) WHY_NOT="this script did not start it" ;;
    rowsync)
      if [ "$OWNER_DELETED" = 1 ]; then WHY_NOT="its directory is gone"
      elif [ -z "$OWNER_DIR" ]; then WHY_NOT="its directory cannot be read"
      else
        local err; err="$("$2" "$1" 2>&1)" || WHY_NOT="it does not answer a probe query ($(first_line "$err"))"
      fi ;;
  esac
  [ -z "$WHY_NOT" ]
}

# Dies naming what holds the port (after judge_port) and exactly what to do instead.
die_taken() { # label, port, port variable, URL variable, stop command for another checkout's instance
  local free; free="$(free_port_after "$2" 1)"
  local todo="or run on a free port: $(hint start "$3=$free")  (and the same $3=$free for env, status and stop)"
  if [ "$OWNER_KIND" = rowsync ]; then todo="stop it:  $5  then start again; $todo"
  else todo="${todo#or }; or use that server as is: $4=<its URL>"; fi
  local what="$(owner_text)"
  [ "$OWNER_KIND" = foreign ] || what="$what, which is not reused: $WHY_NOT"
  die "$1: port $2 is taken by $what.
  What to do: $todo"
}

# Ours runs on port $3; a port variable set to another port fails: moving it would pull a running
# server from under the test runs using it. Without the variable, ours is used where it runs.
keep_ours_port() { # label, port variable, port ours runs on, pid(s)
  local asked="${!2:-}"
  local pids="pid $4"; [[ "$4" != *" "* ]] || pids="pids $4"
  [ -z "$asked" ] || [ "$asked" = "$3" ] || die "$1: ours ($pids) runs on port $3, but $2=$asked asks for port $asked; a running server is not moved.
  What to do: unset $2 to use it on port $3 (env then prints $3); or stop it first with:  $(hint stop)  (stops this checkout's servers whatever their ports), then start again with $2=$asked"
}
moved_note() { # port, default port, port variable: says so when ours runs off the default unasked
  [ "$1" = "$2" ] || [ -n "${!3:-}" ] || echo "; $3 is not set and this is not the default $2: env prints $1"
}

retry_until() { # seconds, command...: true as soon as the command succeeds
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# Ours (pid $1) listens on port $2 and answers the probe within READY_TIMEOUT.
ours_answers() { # pid, port, probe
  local owner; owner="$(port_pid "$2")"
  [ -z "$owner" ] || [ "$owner" = "$1" ] || return 1
  retry_until "$READY_TIMEOUT" "$3" "$2"
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

# SIGTERM (a suspended process gets it once continued), then SIGKILL after 30 s.
stop_pid() { # pid
  kill "$1" 2>/dev/null || true; kill -CONT "$1" 2>/dev/null || true
  wait_gone "$1" || kill -9 "$1" 2>/dev/null || true
}

wait_gone() { # pid
  local i
  for i in $(seq 1 300); do
    kill -0 "$1" 2>/dev/null || return 0
    # a zombie has exited; its parent (maybe not us) reaps it
    [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ] || return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Redis
REDIS_DIR="$SERVICES/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
redis_cli() { "$(find_bin redis-cli)" -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
redis_ping() { [ "$(redis_cli ping 2>/dev/null)" = PONG ]; }
redis_ours() { pid_alive "$REDIS_PID" redis-server && pid_of "$REDIS_PID"; }

redis_probe() { # port: SET, GET and DEL of a probe key (extra args: redis-cli options, e.g. -c)
  local port="$1" key="rowsync:services-probe:$$" out; shift
  out="$(printf 'SET %s 1 EX 60\nGET %s\nDEL %s\n' "$key" "$key" "$key" \
    | timeout 10 "$(find_bin redis-cli)" -h 127.0.0.1 -p "$port" "$@" 2>&1 | grep -v '^-> Redirected' || true)"
  [ "$out" = $'OK\n1\n1' ] || { echo "SET/GET/DEL of a probe key: $(first_line "$out")"; return 1; }
}

redis_start() {
  if [ -n "${ROWSYNC_TEST_REDIS_URL:-}" ]; then log "redis: using ROWSYNC_TEST_REDIS_URL"; return; fi
  local bin; bin="$(find_bin redis-server)" || { ensure_pkg redis-server "redis-server"; bin="$(find_bin redis-server)"; }
  mkdir -p "$REDIS_DIR"
  local pid
  if pid="$(redis_ours)"; then
    REDIS_PORT="$(recorded_port "$REDIS_DIR" "$pid" "$REDIS_PORT")"
    keep_ours_port redis ROWSYNC_REDIS_PORT "$REDIS_PORT" "$pid"
    if ours_answers "$pid" "$REDIS_PORT" redis_probe; then
      log "redis: running on $REDIS_PORT (reused$(moved_note "$REDIS_PORT" "$DEFAULT_REDIS_PORT" ROWSYNC_REDIS_PORT))"; return
    fi
    log "redis: ours (pid $pid) on port $REDIS_PORT did not answer within ${READY_TIMEOUT}s: restarting it on $REDIS_PORT"
    redis_stop
  fi
  if port_busy "$REDIS_PORT"; then
    judge_port "$REDIS_PORT" redis_probe \
      || die_taken redis "$REDIS_PORT" ROWSYNC_REDIS_PORT ROWSYNC_TEST_REDIS_URL "kill $OWNER_PID"
    log "redis: another rowsync checkout's instance runs on $REDIS_PORT (reused: pid $OWNER_PID at $OWNER_DIR)"; return
  fi
  : > "$REDIS_LOG"
  echo "$REDIS_PORT" > "$REDIS_DIR/port"
  "$bin" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$REDIS_DIR" --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --unixsocket "" \
    --maxclients 10000 </dev/null >>"$REDIS_LOG" 2>&1 9>&- || { tail -n 40 "$REDIS_LOG" >&2; die "redis-server failed to start"; }
  wait_for "redis on port $REDIS_PORT" "$REDIS_LOG" redis_ping
  log "redis: started on $REDIS_PORT"
}

redis_stop() {
  local pid
  if pid="$(redis_ours)"; then
    local at; at="$(recorded_port "$REDIS_DIR" "$pid" "?")"
    stop_pid "$pid"
    log "redis: stopped (pid $pid, port $at)"
  fi
  rm -f "$REDIS_PID"
}

# Prints the state of the port when ours is not running; true when start would reuse what is there.
port_status() { # label (padded), port, probe
  if ! port_busy "$2"; then echo "$1stopped"; return 1; fi
  if judge_port "$2" "$3"; then echo "$1reusable  port $2: $(owner_text), answers (start reuses it)"; return 0; fi
  if [ "$OWNER_KIND" = foreign ]; then echo "$1port $2 taken by $(owner_text)"
  else echo "$1port $2 taken by $(owner_text); not reusable: $WHY_NOT"; fi
  return 1
}

redis_status() {
  if [ -n "${ROWSYNC_TEST_REDIS_URL:-}" ]; then echo "redis:    external ($ROWSYNC_TEST_REDIS_URL)"; return; fi
  local pid at
  if pid="$(redis_ours)"; then
    at="$(recorded_port "$REDIS_DIR" "$pid" "$REDIS_PORT")"
    if [ "$at" != "$REDIS_PORT" ]; then echo "redis:    ours runs on port $at (pid $pid), not on ROWSYNC_REDIS_PORT=$REDIS_PORT"; return 1; fi
    local err; if err="$(redis_probe "$at" 2>&1)"; then echo "redis:    running  pid $pid port $at"
    else echo "redis:    not answering  pid $pid port $at: $(first_line "$err")"; return 1; fi
  else port_status "redis:    " "$REDIS_PORT" redis_probe; fi
}

# ---------------------------------------------------------------------------------------------
# Redis Cluster: three masters, no replicas, on loopback (rowsync's scale-out tests). Ports
# ROWSYNC_REDIS_CLUSTER_PORT and the next two (default 17001-17003; cluster bus ports +10000).
# Nothing is persisted: every start of ours wipes the nodes' cluster config and creates the cluster
# afresh, so a moved port or a half-created cluster never survives into the next start.
CLUSTER_DIR="$SERVICES/redis-cluster"
cluster_ports() { local first="${1:-$CLUSTER_PORT}"; echo "$first $((first + 1)) $((first + 2))"; }
cluster_cli() { local port="$1"; shift; "$(find_bin redis-cli)" -h 127.0.0.1 -p "$port" "$@"; }
cluster_node_alive() { # port: our node runs on it
  pid_alive "$CLUSTER_DIR/$1/redis.pid" redis-server && [ "$(cluster_cli "$1" ping 2>/dev/null)" = PONG ]
}
cluster_ours() { # "port pid" of each live node of ours, lowest port first
  local f
  for f in "$CLUSTER_DIR"/*/redis.pid; do
    if [ -e "$f" ] && pid_alive "$f" redis-server; then echo "$(basename "$(dirname "$f")") $(pid_of "$f")"; fi
  done | sort -n
}
cluster_ready() { # first port: every node answers, sees three masters and all 16384 slots served
  local port info
  for port in $(cluster_ports "${1:-}"); do
    info="$(timeout 10 "$(find_bin redis-cli)" -h 127.0.0.1 -p "$port" cluster info 2>&1)" || { echo "port $port: $(first_line "$info")"; return 1; }
    grep -q '^cluster_state:ok' <<<"$info" && grep -q '^cluster_known_nodes:3' <<<"$info" \
      && grep -q '^cluster_slots_ok:16384' <<<"$info" || { echo "port $port: cluster state not ok"; return 1; }
  done
}
cluster_probe() { # first port: ready, and a write through the cluster
  cluster_ready "$1" && redis_probe "$1" -c
}

# Ours is not running and $1 of the three ports are taken: reuse them only when all three are another
# checkout's nodes whose directories exist and the cluster answers. Sets CLUSTER_OWNERS, KILL_PIDS, WHY_NOT.
cluster_judge() {
  local port why=""
  CLUSTER_OWNERS="" KILL_PIDS=""
  for port in $(cluster_ports); do
    port_busy "$port" || { why="${why:-port $port is free (not a whole cluster)}"; continue; }
    inspect_port "$port"
    CLUSTER_OWNERS="$CLUSTER_OWNERS
    port $port: $(owner_text)"
    case "$OWNER_KIND" in
      rowsync) KILL_PIDS="$KILL_PIDS $OWNER_PID"
               if [ "$OWNER_DELETED" = 1 ]; then why="${why:-the directory of the node on $port is gone}"; fi ;;
      foreign) why="${why:-this script did not start the server on $port}" ;;
      *) why="${why:-this script cannot tell which process listens on $port}" ;;
    esac
  done
  if [ -z "$why" ]; then local err; err="$(cluster_probe "$CLUSTER_PORT" 2>&1)" || why="it does not answer a probe ($(first_line "$err"))"; fi
  WHY_NOT="$why"
  [ -z "$WHY_NOT" ]
}

cluster_start() {
  if [ -n "${ROWSYNC_TEST_REDIS_CLUSTER_NODES:-}" ]; then log "redis cluster: using ROWSYNC_TEST_REDIS_CLUSTER_NODES"; return; fi
  local bin; bin="$(find_bin redis-server)" || { ensure_pkg redis-server "redis-server"; bin="$(find_bin redis-server)"; }
  local port nodes pids
  nodes="$(cluster_ours)"
  if [ -n "$nodes" ]; then
    pids="$(cut -d' ' -f2 <<<"$nodes" | paste -sd' ')"
    CLUSTER_PORT="$(recorded_port "$CLUSTER_DIR" "" "$(head -n1 <<<"$nodes" | cut -d' ' -f1)")"
    keep_ours_port "redis cluster" ROWSYNC_REDIS_CLUSTER_PORT "$CLUSTER_PORT" "$pids"
    if [ "$(cut -d' ' -f1 <<<"$nodes" | paste -sd' ')" = "$(cluster_ports)" ] \
       && retry_until "$READY_TIMEOUT" cluster_probe "$CLUSTER_PORT"; then
      log "redis cluster: running on $(cluster_ports | tr ' ' ',') (reused$(moved_note "$CLUSTER_PORT" "$DEFAULT_CLUSTER_PORT" ROWSYNC_REDIS_CLUSTER_PORT))"; return
    fi
    log "redis cluster: ours (pids $pids) on $(cluster_ports | tr ' ' ',') is not whole or not ready: recreating it there"
    cluster_stop
  fi
  local busy=0
  for port in $(cluster_ports); do port_busy "$port" && busy=$((busy + 1)); done
  if [ "$busy" -gt 0 ]; then
    if cluster_judge; then
      log "redis cluster: another rowsync checkout's cluster runs on $(cluster_ports | tr ' ' ',') (reused)"; return
    fi
    local free; free="$(free_port_after "$CLUSTER_PORT" 3)"
    local todo="run on free ports: $(hint start "ROWSYNC_REDIS_CLUSTER_PORT=$free")  (the first of three; the same variable for env, status and stop)"
    if [ -n "$KILL_PIDS" ]; then todo="stop them:  kill${KILL_PIDS}  then start again; or $todo"
    else todo="$todo; or use another cluster as is: ROWSYNC_TEST_REDIS_CLUSTER_NODES=<its redis:// URLs>"; fi
    die "redis cluster: ports $(cluster_ports | tr ' ' ',') are taken, not reused: $WHY_NOT.$CLUSTER_OWNERS
  What to do: $todo"
  fi
  rm -rf "$CLUSTER_DIR"; mkdir -p "$CLUSTER_DIR"
  echo "$CLUSTER_PORT" > "$CLUSTER_DIR/port"
  for port in $(cluster_ports); do
    local dir="$CLUSTER_DIR/$port"
    mkdir -p "$dir"
    "$bin" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
      --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --unixsocket "" \
      --maxclients 10000 </dev/null >>"$dir/redis.log" 2>&1 9>&- || { tail -n 40 "$dir/redis.log" >&2; die "redis-server (cluster node $port) failed to start"; }
  done
  for port in $(cluster_ports); do wait_for "redis cluster node on port $port" "$CLUSTER_DIR/$port/redis.log" cluster_node_alive "$port"; done
  local addrs=(); for port in $(cluster_ports); do addrs+=("127.0.0.1:$port"); done
  "$(find_bin redis-cli)" --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 \
    || { tail -n 40 "$CLUSTER_DIR/create.log" >&2; die "redis-cli --cluster create failed"; }
  wait_for "redis cluster on ports $(cluster_ports | tr ' ' ',')" "$CLUSTER_DIR/create.log" cluster_ready
  log "redis cluster: started on $(cluster_ports | tr ' ' ',') (3 masters)"
}

cluster_stop() {
  local pidfile pid stopped=""
  for pidfile in "$CLUSTER_DIR"/*/redis.pid; do
    [ -e "$pidfile" ] || continue
    if pid_alive "$pidfile" redis-server; then
      pid="$(pid_of "$pidfile")"
      stop_pid "$pid"
      stopped="$stopped,$(basename "$(dirname "$pidfile")")"
    fi
    rm -f "$pidfile"
  done
  [ -z "$stopped" ] || log "redis cluster: stopped (ports ${stopped#,})"
}

cluster_status() {
  if [ -n "${ROWSYNC_TEST_REDIS_CLUSTER_NODES:-}" ]; then echo "cluster:  external ($ROWSYNC_TEST_REDIS_CLUSTER_NODES)"; return; fi
  local nodes first pids
  nodes="$(cluster_ours)"
  if [ -z "$nodes" ]; then
    if ! port_busy "$CLUSTER_PORT" && ! port_busy $((CLUSTER_PORT + 1)) && ! port_busy $((CLUSTER_PORT + 2)); then echo "cluster:  stopped"; return 1; fi
    if cluster_judge; then echo "cluster:  reusable  ports $(cluster_ports | tr ' ' ','): another rowsync checkout's cluster, answers (start reuses it)$CLUSTER_OWNERS"; return 0; fi
    echo "cluster:  ports $(cluster_ports | tr ' ' ',') taken; not reusable: $WHY_NOT$CLUSTER_OWNERS"; return 1
  fi
  pids="$(cut -d' ' -f2 <<<"$nodes" | paste -sd' ')"
  first="$(recorded_port "$CLUSTER_DIR" "" "$(head -n1 <<<"$nodes" | cut -d' ' -f1)")"
  if [ "$first" != "$CLUSTER_PORT" ]; then echo "cluster:  ours runs on $(cluster_ports "$first" | tr ' ' ',') (pids $pids), not on ROWSYNC_REDIS_CLUSTER_PORT=$CLUSTER_PORT"; return 1; fi
  if [ "$(cut -d' ' -f1 <<<"$nodes" | paste -sd' ')" = "$(cluster_ports)" ] && cluster_probe "$CLUSTER_PORT" >/dev/null 2>&1; then
    echo "cluster:  running  pids $pids ports $(cluster_ports | tr ' ' ',') (3 masters, state ok)"
  else echo "cluster:  not ready (pids $pids; nodes missing or cluster state not ok; 'start' recreates it)"; return 1; fi
}

cluster_nodes_env() {
  local port nodes=()
  for port in $(cluster_ports); do nodes+=("redis://127.0.0.1:$port"); done
  (IFS=,; echo "${nodes[*]}")
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
my_ours() { my_alive && pid_of "$MY_PID"; }

# CREATE DATABASE needs the data directory: a server whose directory was deleted answers pings but
# fails here ("Can't create database"). sql_log_bin=0 keeps the probe out of the binlog CDC reads.
my_probe() { # port
  local err
  err="$(MYSQL_PWD=rowsync timeout 20 "$(find_bin mariadb || find_bin mysql)" --no-defaults --protocol=TCP \
    -h 127.0.0.1 -P "$1" -u rowsync --connect-timeout=5 -e \
    "SET SESSION sql_log_bin = 0; DROP DATABASE IF EXISTS $PROBE; CREATE DATABASE $PROBE; DROP DATABASE $PROBE" 2>&1 >/dev/null)" \
    || { echo "CREATE/DROP DATABASE as rowsync: $(first_line "$err")"; return 1; }
}

my_setup_users() {
  my_client <<'SQL'
CREATE USER IF NOT EXISTS 'rowsync'@'%' IDENTIFIED BY 'rowsync';
CREATE USER IF NOT EXISTS 'rowsync'@'localhost' IDENTIFIED BY 'rowsync';
CREATE USER IF NOT EXISTS 'rowsync'@'127.0.0.1' IDENTIFIED BY 'rowsync';
GRANT ALL PRIVILEGES ON *.* TO 'rowsync'@'%' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'rowsync'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'rowsync'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS rowsync CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
FLUSH PRIVILEGES;
SQL
}

my_ours_answers() { # pid
  my_probe "$MYSQL_PORT" >/dev/null 2>&1 && return 0
  # A start interrupted between launching the server and creating user rowsync left it without one.
  if my_ping >/dev/null 2>&1; then my_setup_users >/dev/null 2>&1 || true; fi
  ours_answers "$1" "$MYSQL_PORT" my_probe
}

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
  local pid
  if pid="$(my_ours)"; then
    MYSQL_PORT="$(recorded_port "$MY_DIR" "$pid" "$MYSQL_PORT")"
    keep_ours_port mariadb ROWSYNC_MYSQL_PORT "$MYSQL_PORT" "$pid"
    if my_ours_answers "$pid"; then
      log "mariadb: running on $MYSQL_PORT (reused$(moved_note "$MYSQL_PORT" "$DEFAULT_MYSQL_PORT" ROWSYNC_MYSQL_PORT))"; return
    fi
    log "mariadb: ours (pid $pid) on port $MYSQL_PORT did not answer within ${READY_TIMEOUT}s: restarting it on $MYSQL_PORT"
    my_stop
  fi
  if port_busy "$MYSQL_PORT"; then
    judge_port "$MYSQL_PORT" my_probe \
      || die_taken mariadb "$MYSQL_PORT" ROWSYNC_MYSQL_PORT ROWSYNC_TEST_MYSQL_URL "kill $OWNER_PID"
    log "mariadb: another rowsync checkout's instance runs on $MYSQL_PORT (reused: pid $OWNER_PID at $OWNER_DIR)"; return
  fi
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
  echo "$MYSQL_PORT" > "$MY_DIR/port"
  setsid "$bin" --defaults-file="$MY_CNF" </dev/null >>"$MY_LOG" 2>&1 9>&- &
  wait_for "mariadb on port $MYSQL_PORT" "$MY_LOG" my_ping
  my_setup_users || die "mariadb: creating user rowsync failed"
  log "mariadb: started on $MYSQL_PORT"
}

my_stop() {
  local pid
  if pid="$(my_ours)"; then
    local at; at="$(recorded_port "$MY_DIR" "$pid" "?")"
    stop_pid "$pid"
    log "mariadb: stopped (pid $pid, port $at)"
  fi
}

my_status() {
  if [ -n "${ROWSYNC_TEST_MYSQL_URL:-}" ]; then echo "mariadb:  external (${ROWSYNC_TEST_MYSQL_URL%%@*}@…)"; return; fi
  local pid at
  if pid="$(my_ours)"; then
    at="$(recorded_port "$MY_DIR" "$pid" "$MYSQL_PORT")"
    if [ "$at" != "$MYSQL_PORT" ]; then echo "mariadb:  ours runs on port $at (pid $pid), not on ROWSYNC_MYSQL_PORT=$MYSQL_PORT"; return 1; fi
    local err; if err="$(my_probe "$at" 2>&1)"; then echo "mariadb:  running  pid $pid port $at"
    else echo "mariadb:  not answering  pid $pid port $at: $(first_line "$err")"; return 1; fi
  else port_status "mariadb:  " "$MYSQL_PORT" my_probe; fi
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

pg_base() { # "create" (start): decide, creating the directory; otherwise only read the decision
  local want="$SERVICES/postgres"
  if [ -s "$SERVICES/postgres-location" ]; then cat "$SERVICES/postgres-location"; return; fi
  if ! is_root || [ "${1:-}" != create ]; then echo "$want"; return; fi
  mkdir -p "$want"
  chmod 755 "$SERVICES"
  chown postgres: "$want"; chmod 700 "$want"
  if runuser -u postgres -- test -w "$want" 2>/dev/null; then echo "$want"; return; fi
  rmdir "$want" 2>/dev/null || true
  echo "$SHORT_TMP/postgres"
}

pg_setup_paths() { # "create" from start
  PG_BIN="$(pg_bindir || true)"
  PG_BASE="$(pg_base "${1:-}")"
  PG_DATA="$PG_BASE/data"
  PG_LOG="$PG_BASE/postgres.log"
  PG_SOCK="$(sock_dir "$PG_BASE/run")"
  [ "${#PG_SOCK}" -le 80 ] || PG_SOCK="$SHORT_TMP/pgrun"
}

pg_ready() { as_pg "$PG_BIN/pg_isready" -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres; }
pg_psql() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres "$@"; }
pg_alive() { [ -n "$PG_BIN" ] && [ -s "$PG_DATA/postmaster.pid" ] && pid_alive "$PG_DATA/postmaster.pid" postgres; }
pg_ours() { pg_alive && pid_of "$PG_DATA/postmaster.pid"; }
pg_ours_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc 0-9; }

# A temporary table's file is created in the data directory at CREATE: a server whose directory was
# deleted fails here. Temporary: nothing is WAL-logged for it, and no other session sees it.
pg_probe() { # port
  local psql err
  psql="${PG_BIN:-$(pg_bindir || true)}/psql"; [ -x "$psql" ] || psql="$(command -v psql || echo psql)"
  err="$(PGPASSWORD=rowsync PGCONNECT_TIMEOUT=5 timeout 20 "$psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" \
    -U rowsync -d rowsync -c "CREATE TEMP TABLE $PROBE (x int); INSERT INTO $PROBE VALUES (1); DROP TABLE $PROBE" 2>&1 >/dev/null)" \
    || { echo "CREATE/DROP TEMP TABLE as rowsync: $(first_line "$err")"; return 1; }
}

pg_setup_role() {
  pg_psql -d postgres <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rowsync') THEN
    CREATE ROLE rowsync SUPERUSER REPLICATION LOGIN PASSWORD 'rowsync';
  END IF;
END $$;
SELECT 'CREATE DATABASE rowsync OWNER rowsync' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'rowsync')
\gexec
SQL
}

pg_ours_answers() { # pid
  pg_probe "$PG_PORT" >/dev/null 2>&1 && return 0
  # A start interrupted between launching the server and creating role rowsync left it without one.
  if pg_ready >/dev/null 2>&1; then pg_setup_role >/dev/null 2>&1 || true; fi
  ours_answers "$1" "$PG_PORT" pg_probe
}

pg_start() {
  if [ -n "${ROWSYNC_TEST_POSTGRES_URL:-}" ]; then log "postgres: using ROWSYNC_TEST_POSTGRES_URL"; return; fi
  if is_root && ! id postgres >/dev/null 2>&1; then ensure_pkg postgresql-15 "PostgreSQL 15"; fi
  pg_setup_paths create
  if [ -z "$PG_BIN" ]; then ensure_pkg postgresql-15 "PostgreSQL 15 (initdb, pg_ctl)"; pg_setup_paths create; fi
  [ -n "$PG_BIN" ] || die "PostgreSQL binaries (initdb, pg_ctl) not found"
  local pid
  if pid="$(pg_ours)"; then
    PG_PORT="$(pg_ours_port)"; PG_PORT="${PG_PORT:-${ROWSYNC_PG_PORT:-$DEFAULT_PG_PORT}}"
    keep_ours_port postgres ROWSYNC_PG_PORT "$PG_PORT" "$pid"
    if pg_ours_answers "$pid"; then
      log "postgres: running on $PG_PORT (reused$(moved_note "$PG_PORT" "$DEFAULT_PG_PORT" ROWSYNC_PG_PORT))"; return
    fi
    log "postgres: ours (pid $pid) on port $PG_PORT did not answer within ${READY_TIMEOUT}s: restarting it on $PG_PORT"
    pg_stop
  fi
  if port_busy "$PG_PORT"; then
    judge_port "$PG_PORT" pg_probe \
      || die_taken postgres "$PG_PORT" ROWSYNC_PG_PORT ROWSYNC_TEST_POSTGRES_URL "kill -INT $OWNER_PID  (fast shutdown)"
    log "postgres: another rowsync checkout's instance runs on $PG_PORT (reused: pid $OWNER_PID at $OWNER_DIR)"; return
  fi
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
  pg_setup_role || die "postgres: creating role rowsync failed"
  log "postgres: started on $PG_PORT"
}

pg_stop() {
  pg_setup_paths
  local pid
  if pid="$(pg_ours)"; then
    local at; at="$(pg_ours_port)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || kill -9 "$pid" 2>/dev/null || true
    log "postgres: stopped (pid $pid, port ${at:-?})"
  fi
}

pg_status() {
  if [ -n "${ROWSYNC_TEST_POSTGRES_URL:-}" ]; then echo "postgres: external (${ROWSYNC_TEST_POSTGRES_URL%%@*}@…)"; return; fi
  pg_setup_paths
  local pid at
  if pid="$(pg_ours)"; then
    at="$(pg_ours_port)"
    if [ "$at" != "$PG_PORT" ]; then echo "postgres: ours runs on port $at (pid $pid), not on ROWSYNC_PG_PORT=$PG_PORT"; return 1; fi
    local err; if err="$(pg_probe "$at" 2>&1)"; then echo "postgres: running  pid $pid port $at ($PG_DATA)"
    else echo "postgres: not answering  pid $pid port $at ($PG_DATA): $(first_line "$err")"; return 1; fi
  else port_status "postgres: " "$PG_PORT" pg_probe; fi
}

# ---------------------------------------------------------------------------------------------
# Without its port variable, a server of ours that runs is reported on the port it runs on (start
# reuses it there), so `env` and `status` agree with what `start` did.
adopt_running_ports() {
  local pid nodes
  if [ -z "${ROWSYNC_REDIS_PORT:-}" ] && pid="$(redis_ours)"; then REDIS_PORT="$(recorded_port "$REDIS_DIR" "$pid" "$REDIS_PORT")"; fi
  nodes="$(cluster_ours)"
  if [ -z "${ROWSYNC_REDIS_CLUSTER_PORT:-}" ] && [ -n "$nodes" ]; then
    CLUSTER_PORT="$(recorded_port "$CLUSTER_DIR" "" "$(head -n1 <<<"$nodes" | cut -d' ' -f1)")"
  fi
  if [ -z "${ROWSYNC_MYSQL_PORT:-}" ] && pid="$(my_ours)"; then MYSQL_PORT="$(recorded_port "$MY_DIR" "$pid" "$MYSQL_PORT")"; fi
  pg_setup_paths
  if [ -z "${ROWSYNC_PG_PORT:-}" ] && pg_ours >/dev/null; then PG_PORT="$(pg_ours_port)"; PG_PORT="${PG_PORT:-$DEFAULT_PG_PORT}"; fi
}

print_env() {
  echo "export ROWSYNC_TEST_REDIS_URL=${ROWSYNC_TEST_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
  echo "export ROWSYNC_TEST_MYSQL_URL=${ROWSYNC_TEST_MYSQL_URL:-mysql://rowsync:rowsync@127.0.0.1:$MYSQL_PORT/rowsync}"
  echo "export ROWSYNC_TEST_POSTGRES_URL=${ROWSYNC_TEST_POSTGRES_URL:-postgres://rowsync:rowsync@127.0.0.1:$PG_PORT/rowsync}"
  echo "export ROWSYNC_TEST_REDIS_CLUSTER_NODES=${ROWSYNC_TEST_REDIS_CLUSTER_NODES:-$(cluster_nodes_env)}"
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
    redis_start; cluster_start; my_start; pg_start
    log "ready in $(( $(date +%s) - start_ts ))s"
    ;;
  start-cluster)
    with_lock
    cluster_start
    ;;
  stop)
    with_lock
    pg_stop; my_stop; cluster_stop; redis_stop
    ;;
  status)
    adopt_running_ports
    rc=0
    redis_status || rc=1; cluster_status || rc=1; my_status || rc=1; pg_status || rc=1
    exit $rc
    ;;
  env) adopt_running_ports; print_env ;;
  *) echo "usage: $0 start|start-cluster|stop|status|env" >&2; exit 2 ;;
esac
