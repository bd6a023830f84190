#!/usr/bin/env bash
# Throwaway PostgreSQL 15 clusters for tests and benchmarks. Sourced by ./dev, or run on its own:
#   ./dev-pg.sh start DIR              initdb into DIR, start, create the database; prints the connection string
#   ./dev-pg.sh env DIR                prints `export EVS_PG_URL=... PGHOST=...` lines for eval
#   ./dev-pg.sh restart-immediate DIR  pg_ctl stop -m immediate (a crash: no shutdown checkpoint), then start
#   ./dev-pg.sh stop DIR               pg_ctl stop -m fast, then removes DIR
#
# The cluster lives entirely in DIR (absolute or relative; created if missing, and must not be in use): DIR/data
# (PGDATA), DIR/server.log, DIR/cluster.env, and the server's Unix socket. It listens on that socket and on
# 127.0.0.1 only, on a free port (a port another cluster takes first is retried with another). fsync and
# synchronous_commit stay on, as in production. Authentication is `trust`: loopback and a socket in DIR only.
# As root, initdb and the server run as the `postgres` system user (initdb refuses root); otherwise as the
# caller. DIR's parent must be traversable by that user (e.g. /tmp or a build directory).
#
# The superuser is `evs`, the database `evs_test`; EVS_PG_DATABASE and EVS_PG_USER change them.

PG_VERSION=${EVS_PG_VERSION:-15}
PG_BIN=${EVS_PG_BIN:-/usr/lib/postgresql/$PG_VERSION/bin}
PG_DATABASE=${EVS_PG_DATABASE:-evs_test}
PG_USER=${EVS_PG_USER:-evs}
PG_PACKAGES=("postgresql-$PG_VERSION" libpq-dev)
PG_MARKER=.evs-pg-cluster  # only a directory holding this file is ever stopped and removed

pg_die() {
  echo "dev-pg: $*" >&2
  return 1
}

# ./dev's ensure_packages when sourced by it; on its own, the same apt-get steps.
pg_ensure_packages() {
  if declare -F ensure_packages >/dev/null; then
    ensure_packages "${PG_PACKAGES[@]}"
    return
  fi
  local missing=() p
  for p in "${PG_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "dev-pg: installing ${missing[*]}" >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Runs a server-side program (initdb, pg_ctl) as the cluster's owner.
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_abs() { realpath -m -- "$1"; }

pg_port_free() {  # pg_port_free PORT: nothing listens on it (TCP, loopback or any address)
  ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .
}

pg_pick_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 40000))
    if pg_port_free "$port"; then
      echo "$port"
      return 0
    fi
  done
  pg_die "no free port found in 20000-59999"
}

pg_url() {  # pg_url DIR PORT: the libpq connection URI over the Unix socket in DIR
  printf 'postgresql:///%s?host=%s&port=%s&user=%s\n' "$PG_DATABASE" "$1" "$2" "$PG_USER"
}

pg_load() {  # pg_load DIR: reads DIR/cluster.env into PG_PORT
  local dir=$1
  [ -f "$dir/$PG_MARKER" ] && [ -f "$dir/cluster.env" ] || pg_die "$dir is not a cluster made by dev-pg.sh" || return 1
  PG_PORT=$(sed -n 's/^port=//p' "$dir/cluster.env")
  [ -n "$PG_PORT" ] || pg_die "$dir/cluster.env names no port"
}

pg_ctl_start() {  # pg_ctl_start DIR: starts the server, waiting until it accepts connections
  local dir=$1
  pg_as_owner "$PG_BIN/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -t 60 >/dev/null 2>"$dir/pg_ctl.log"
}

pg_cluster_start() {
  local dir
  [ $# -eq 1 ] || pg_die "start takes one directory" || return 1
  dir=$(pg_abs "$1")
  pg_ensure_packages || return 1
  [ -x "$PG_BIN/initdb" ] || pg_die "no $PG_BIN/initdb (EVS_PG_BIN names the server's bin directory)" || return 1
  # The socket path ("DIR/.s.PGSQL.NNNNN") must fit sockaddr_un's 108 bytes.
  [ $((${#dir} + 16)) -le 107 ] || pg_die "$dir is too long for a Unix socket path; use a shorter one" || return 1
  if [ -e "$dir/data" ]; then
    pg_die "$dir already holds a cluster; stop it first"
    return 1
  fi
  mkdir -p "$dir"
  touch "$dir/$PG_MARKER"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
  chmod 0755 "$dir"  # the socket in it is for every local user; data/ stays private (0700)

  # --no-sync skips only initdb's one final sync of the new files (the cluster is throwaway); the server runs
  # with fsync on.
  pg_as_owner "$PG_BIN/initdb" -D "$dir/data" -U "$PG_USER" --auth=trust --encoding=UTF8 --locale=C \
    --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    pg_die "initdb failed in $dir"
    return 1
  }

  local port started=0
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$(pg_pick_port) || return 1
    # Rewritten each attempt: the last value wins in postgresql.conf, but a fresh file keeps it readable.
    pg_as_owner tee "$dir/data/postgresql.evs.conf" >/dev/null <<EOF
# Written by dev-pg.sh (throwaway test cluster).
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
unix_socket_permissions = 0777
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 300
log_line_prefix = '%m [%p] %q%a '
log_min_messages = warning
EOF
    grep -q "^include_if_exists = 'postgresql.evs.conf'" "$dir/data/postgresql.conf" ||
      echo "include_if_exists = 'postgresql.evs.conf'" | pg_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
    # shellcheck disable=SC2016 # $1 expands in the inner shell
    pg_as_owner sh -c ': >"$1"' sh "$dir/server.log"  # this attempt's messages only
    if pg_ctl_start "$dir"; then
      started=1
      break
    fi
    # Lost the port to someone else between the check and the bind: try another one.
    if grep -q "could not bind\|could not create any TCP/IP sockets\|could not create lock file" "$dir/server.log"; then
      echo "dev-pg: port $port was taken, retrying" >&2
      continue
    fi
    cat "$dir/pg_ctl.log" >&2
    tail -n 20 "$dir/server.log" >&2
    pg_die "the server in $dir did not start"
    return 1
  done
  [ "$started" -eq 1 ] || pg_die "no port worked after 10 attempts" || return 1
  printf 'port=%s\n' "$port" >"$dir/cluster.env"

  "$PG_BIN/createdb" -h "$dir" -p "$port" -U "$PG_USER" "$PG_DATABASE" || {
    pg_die "createdb $PG_DATABASE failed"
    return 1
  }
  pg_url "$dir" "$port"
}

pg_cluster_env() {
  local dir
  [ $# -eq 1 ] || pg_die "env takes one directory" || return 1
  dir=$(pg_abs "$1")
  pg_load "$dir" || return 1
  printf "export EVS_PG_URL='%s'\n" "$(pg_url "$dir" "$PG_PORT")"
  printf "export EVS_PG_TCP_URL='postgresql://%s@127.0.0.1:%s/%s'\n" "$PG_USER" "$PG_PORT" "$PG_DATABASE"
  printf "export PGHOST='%s' PGPORT='%s' PGUSER='%s' PGDATABASE='%s'\n" "$dir" "$PG_PORT" "$PG_USER" "$PG_DATABASE"
}

pg_cluster_restart_immediate() {
  local dir
  [ $# -eq 1 ] || pg_die "restart-immediate takes one directory" || return 1
  dir=$(pg_abs "$1")
  pg_load "$dir" || return 1
  pg_as_owner "$PG_BIN/pg_ctl" stop -D "$dir/data" -m immediate -w >/dev/null || pg_die "immediate stop failed" || return 1
  pg_ctl_start "$dir" || {
    cat "$dir/pg_ctl.log" >&2
    tail -n 20 "$dir/server.log" >&2
    pg_die "the server in $dir did not come back after the immediate stop"
  }
}

pg_cluster_stop() {
  local dir
  [ $# -eq 1 ] || pg_die "stop takes one directory" || return 1
  dir=$(pg_abs "$1")
  [ -f "$dir/$PG_MARKER" ] || pg_die "$dir is not a cluster made by dev-pg.sh; not touching it" || return 1
  if [ -f "$dir/data/postmaster.pid" ]; then
    pg_as_owner "$PG_BIN/pg_ctl" stop -D "$dir/data" -m fast -w -t 60 >/dev/null ||
      pg_die "pg_ctl stop failed in $dir; left in place" || return 1
  fi
  rm -rf -- "$dir"
}

pg_cluster_main() {
  local cmd=${1:-help}
  shift || true
  case "$cmd" in
    start) pg_cluster_start "$@" ;;
    stop) pg_cluster_stop "$@" ;;
    env) pg_cluster_env "$@" ;;
    restart-immediate) pg_cluster_restart_immediate "$@" ;;
    *)
      sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      [ "$cmd" = help ] || return 2
      ;;
  esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  pg_cluster_main "$@"
fi
