#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests and the demo, run as the `postgres`
# system user (the server refuses to run as root) from Debian's packages.
#
# usage: tests/env/postgres.sh start DIR        initdb (if new) and start; prints the URL
#        tests/env/postgres.sh stop DIR         pg_ctl stop -m fast
#        tests/env/postgres.sh kill DIR         pg_ctl stop -m immediate (crash; WAL replay on start)
#        tests/env/postgres.sh restart DIR      stop, then start on the same port and data
#        tests/env/postgres.sh start-again DIR  start an existing, stopped cluster
#        tests/env/postgres.sh status DIR       exit 0 if running (prints the URL)
#
# DIR holds data/ (PGDATA), sock/ (unix socket), postgres.log, port, url
# (postgresql://postgres@127.0.0.1:PORT/backfill) and pid. It is chowned to
# `postgres`; every directory above it must be searchable by that user (for
# parents under /tmp that are not, o+x is added; elsewhere it is an error).
# Trust authentication, TCP on 127.0.0.1 only. Database `backfill` is created.
#
# Environment:
#   PG_BIN             directory with initdb/pg_ctl (default: newest /usr/lib/postgresql/*/bin)
#   PG_START_TIMEOUT   seconds (default 60)
#   PG_EXTRA_CONF      extra postgresql.conf lines, applied when the cluster is created
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
db=backfill
pguser=postgres

die() { echo "postgres.sh: $*" >&2; exit 1; }
say() { echo "postgres.sh: $*" >&2; }

usage() {
    sed -n '4,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

find_bin() {
    if [[ -n ${PG_BIN:-} ]]; then
        [[ -x $PG_BIN/pg_ctl ]] || die "no pg_ctl in PG_BIN=$PG_BIN"
        echo "$PG_BIN"
        return
    fi
    local d best
    # the highest major version (numerically; glob order is lexical)
    best=$(for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl ]] && echo "$d"
    done | sort -t/ -k5,5n | tail -n 1)
    [[ -n $best ]] || die "initdb/pg_ctl not found under /usr/lib/postgresql/*/bin: run scripts/install-deps.sh"
    echo "$best"
}

# Run a command as the postgres user from inside DIR (initdb and pg_ctl need a
# working directory they can read; root's cwd often is not).
as_pg() {
    local dir=$1
    shift
    if [[ $EUID -eq 0 ]]; then
        (cd "$dir" && runuser -u "$pguser" -- "$@")
    elif [[ $(id -un) == "$pguser" ]]; then
        (cd "$dir" && "$@")
    else
        die "run as root (or as $pguser)"
    fi
}

# Make sure the postgres user can reach DIR.
check_reachable() {
    local dir=$1 p=$1 parents=()
    [[ $EUID -eq 0 ]] || return 0
    while [[ $p != / ]]; do
        p=$(dirname "$p")
        parents=("$p" "${parents[@]}")
    done
    for p in "${parents[@]}"; do  # from / down, so the first blocker is named
        if ! runuser -u "$pguser" -- test -x "$p" 2>/dev/null; then
            case $p/ in
            /tmp/* | "${TMPDIR:-/tmp}"/*)
                say "granting search permission (o+x) on $p so $pguser can reach $dir"
                chmod o+x "$p"
                ;;
            *) die "user $pguser cannot reach $dir: $p is not searchable by it (use a directory under /tmp, or chmod o+x $p)" ;;
            esac
        fi
    done
}

pg_running() { # DIR -> prints postmaster pid if running
    local dir=$1 bin=$2 pid
    as_pg "$dir" "$bin/pg_ctl" status -D "$dir/data" >/dev/null 2>&1 || return 1
    pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null) || return 1
    echo "$pid"
}

init_cluster() {
    local dir=$1 bin=$2 port sockdir
    port=$(python3 "$here/freeport.py" 1)
    sockdir=$dir/sock
    # A unix socket path is limited to 107 bytes; TCP is what tests use.
    if ((${#sockdir} + 18 > 107)); then
        say "DIR path too long for a unix socket; TCP only"
        sockdir=
    else
        mkdir -p "$sockdir"
    fi
    chown -R "$pguser:" "$dir"
    if ! as_pg "$dir" "$bin/initdb" -D "$dir/data" -U "$pguser" -A trust \
        -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed in $dir/data"
    fi
    cat >>"$dir/data/postgresql.conf" <<EOF

# --- tests/env/postgres.sh: throwaway test cluster ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
# Durability against an OS crash is not needed here; a killed server still
# recovers from WAL (synchronous_commit stays on, so commits survive kill).
fsync = off
full_page_writes = off
max_connections = 200
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
log_connections = off
log_disconnections = off
EOF
    if [[ -n ${PG_EXTRA_CONF:-} ]]; then
        printf '%s\n' "$PG_EXTRA_CONF" >>"$dir/data/postgresql.conf"
    fi
    cat >"$dir/data/pg_hba.conf" <<EOF
# tests/env/postgres.sh: trust on loopback only
local   all   all                  trust
host    all   all   127.0.0.1/32   trust
EOF
    echo "$port" >"$dir/port"
}

cmd_start() {
    local dir=$1 bin port pid fresh=0 t0n url
    t0n=$(date +%s.%N)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    bin=$(find_bin)
    id "$pguser" >/dev/null 2>&1 || die "system user $pguser missing: run scripts/install-deps.sh"
    command -v psql >/dev/null || die "psql not found: run scripts/install-deps.sh"
    check_reachable "$dir"
    if pid=$(pg_running "$dir" "$bin"); then
        die "already running in $dir (pid $pid)"
    fi
    if [[ ! -f $dir/data/PG_VERSION ]]; then
        [[ -z $(ls -A "$dir/data" 2>/dev/null) ]] || die "$dir/data exists but is not a cluster"
        fresh=1
        init_cluster "$dir" "$bin"
    fi
    port=$(<"$dir/port")
    if ! as_pg "$dir" "$bin/pg_ctl" start -D "$dir/data" -l "$dir/postgres.log" \
        -w -t "${PG_START_TIMEOUT:-60}" >/dev/null 2>&1; then
        tail -n 20 "$dir/postgres.log" >&2 || true
        die "Postgres failed to start in $dir (port $port taken? see log above)"
    fi
    pid=$(head -n 1 "$dir/data/postmaster.pid")
    echo "$pid" >"$dir/pid"
    if ((fresh)); then
        psql -X -q -v ON_ERROR_STOP=1 "postgresql://$pguser@127.0.0.1:$port/postgres" \
            -c "CREATE DATABASE $db" >/dev/null || die "CREATE DATABASE $db failed"
    fi
    url="postgresql://$pguser@127.0.0.1:$port/$db"
    echo "$url" >"$dir/url"
    say "$( ((fresh)) && echo started || echo restarted) in $dir (pid $pid) in $(python3 -c "import sys;print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$t0n" "$(date +%s.%N)")s"
    echo "$url"
}

cmd_stop() {
    local dir=$1 mode=$2 bin
    [[ -d $dir ]] || die "no such directory: $dir"
    dir=$(cd "$dir" && pwd)
    bin=$(find_bin)
    if ! pg_running "$dir" "$bin" >/dev/null; then
        rm -f "$dir/pid"
        say "not running in $dir"
        return 0
    fi
    as_pg "$dir" "$bin/pg_ctl" stop -D "$dir/data" -m "$mode" -w -t 60 >/dev/null ||
        die "pg_ctl stop -m $mode failed in $dir"
    rm -f "$dir/pid"
    say "stopped ($mode) in $dir"
}

cmd_status() {
    local dir=$1 bin
    [[ -d $dir ]] || die "no such directory: $dir"
    dir=$(cd "$dir" && pwd)
    bin=$(find_bin)
    pg_running "$dir" "$bin" >/dev/null || { say "not running in $dir"; return 1; }
    cat "$dir/url"
}

[[ $# -eq 2 ]] || usage
case $1 in
start) cmd_start "$2" ;;
start-again)
    [[ -f $2/data/PG_VERSION ]] || die "no cluster in $2/data"
    cmd_start "$2"
    ;;
stop) cmd_stop "$2" fast ;;
kill) cmd_stop "$2" immediate ;;
restart)
    cmd_stop "$2" fast
    cmd_start "$2"
    ;;
status) cmd_status "$2" ;;
*) usage ;;
esac
