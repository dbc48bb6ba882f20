#!/usr/bin/env bash
# A throwaway Postgres server for the tests: no system service, a fresh cluster
# in a temporary directory on a free port, removed again at the end.
#
#   source tests/postgres.sh
#   pg_start            # sets GORP_TEST_POSTGRES=postgres://gorp@127.0.0.1:PORT
#   ...
#   pg_stop
#
# or `bash tests/postgres.sh run COMMAND...` to run one command with a server.
# Postgres refuses to run as root: as root the server runs as the `postgres`
# user that Debian's package creates.

pg_bin() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$found" ] || { echo "tests/postgres.sh: Postgres is not installed (Debian: postgresql)" >&2; return 1; }
    echo "$found"
}

pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
    local bin
    bin=$(pg_bin) || return 1
    GORP_PG_DIR=$(mktemp -d /tmp/gorp-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$GORP_PG_DIR"
    local port
    port=$(pg_free_port)
    pg_as_owner "$bin/initdb" -D "$GORP_PG_DIR/data" -A trust -U gorp --no-sync >"$GORP_PG_DIR/initdb.log" 2>&1 \
        || { cat "$GORP_PG_DIR/initdb.log" >&2; return 1; }
    # fsync stays on: the durability tests mean what they say on Postgres too.
    pg_as_owner "$bin/pg_ctl" -D "$GORP_PG_DIR/data" -l "$GORP_PG_DIR/log" -w \
        -o "-p $port -k $GORP_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null \
        || { cat "$GORP_PG_DIR/log" >&2; return 1; }
    export GORP_PG_DIR
    export GORP_TEST_POSTGRES="postgres://gorp@127.0.0.1:$port"
}

pg_stop() {
    [ -n "${GORP_PG_DIR:-}" ] || return 0
    pg_as_owner "$(pg_bin)/pg_ctl" -D "$GORP_PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$GORP_PG_DIR"
    unset GORP_PG_DIR GORP_TEST_POSTGRES
}

if [ "${BASH_SOURCE[0]}" = "$0" ] && [ "${1:-}" = run ]; then
    set -euo pipefail
    shift
    pg_start
    trap pg_stop EXIT
    "$@"
fi
