#!/usr/bin/env bash
# gorp's whole test suite, runnable on a fresh machine: installs what the
# tests need when it is missing, then builds and tests every crate.
# This is the README's test command and exactly what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build products live outside the clone so repeated runs are incremental.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gorp-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Dependencies are cached there; incremental data of the workspace's own
# crates would be kept per clone path and only grow the cache (by tens of GB
# over many runs), so it is off unless asked for.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

log() { printf '\n== %s\n' "$*"; }

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

command -v cargo >/dev/null || { echo "tests/run.sh: cargo is required (https://rustup.rs)" >&2; exit 1; }
# gcc builds the bundled SQLite and ring; the proto compiles without protoc (protox).
command -v cc >/dev/null || apt_install build-essential
command -v python3 >/dev/null || apt_install python3 python3-venv
# The TLS test makes a self-signed certificate with the openssl CLI.
command -v openssl >/dev/null || apt_install openssl
# The README's fleet script (run by the gorpctl tests) uses jq.
command -v jq >/dev/null || apt_install jq
# gorp-bench compares gorpd with NATS JetStream in the same run.
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
# The web adapter's end-to-end tests drive headless Chromium through chromedriver.
{ command -v chromium && command -v chromedriver; } >/dev/null || apt_install chromium chromium-driver

# The Python client package (clients/python, used by examples/python) needs grpcio, and its
# tests grpcio-tools (stub check, the old-proto client): keep them in a venv outside the clone.
venv="${GORP_VENV:-$HOME/.cache/gorp-venv}"
if ! "$venv/bin/python" -c 'import grpc, grpc_tools, setuptools' >/dev/null 2>&1; then
    log "creating the Python venv $venv"
    python3 -m venv "$venv" || { apt_install python3-venv && python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q -r examples/python/requirements.txt setuptools
fi
# This checkout's package, every run (it is small): the tests must see the code under test.
"$venv/bin/python" -c 'import jsonschema, yaml' >/dev/null 2>&1 || "$venv/bin/pip" install -q jsonschema pyyaml
"$venv/bin/pip" install -q --no-build-isolation --no-deps --force-reinstall ./clients/python
rm -rf clients/python/build clients/python/*.egg-info
export GORP_PYTHON="$venv/bin/python"

# The Matrix gateway's tests run a real Synapse homeserver (SQLite, 127.0.0.1):
# installed once into a venv outside the clone, started and stopped by the tests.
synapse_venv="${GORP_SYNAPSE_VENV:-$HOME/.cache/gorp-synapse-venv}"
if ! "$synapse_venv/bin/python" -c 'import synapse' >/dev/null 2>&1; then
    log "installing Synapse into $synapse_venv (once)"
    python3 -m venv "$synapse_venv" || { apt_install python3-venv && python3 -m venv "$synapse_venv"; }
    "$synapse_venv/bin/pip" install -q "matrix-synapse==1.163.2"
fi
export GORP_SYNAPSE_VENV="$synapse_venv"

# elizacp, an ACP agent from crates.io that the ACP tests drive; it builds for
# several minutes, so it is installed once into a cache folder outside the clone.
tools="${GORP_TOOLS:-$HOME/.cache/gorp-tools}"
if [ ! -x "$tools/bin/elizacp" ]; then
    log "installing elizacp into $tools (once)"
    cargo install elizacp --version 12.0.0 --locked --root "$tools"
fi
export GORP_ELIZACP="$tools/bin/elizacp"

# The deploy checks: buildah builds the container images without a daemon,
# systemd-analyze checks the units, and the Compose specification's JSON
# schema (shipped in the docker-compose 1.29.2 wheel) checks compose.yaml.
command -v buildah >/dev/null || apt_install buildah
command -v systemd-analyze >/dev/null || apt_install systemd
compose_spec="$tools/compose-spec/compose_spec.json"
if [ ! -s "$compose_spec" ]; then
    log "fetching the Compose specification's schema into $tools/compose-spec (once)"
    mkdir -p "$tools/compose-spec"
    "$venv/bin/pip" download -q --no-deps docker-compose==1.29.2 -d "$tools/compose-spec"
    "$venv/bin/python" -c 'import sys, zipfile, glob
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/docker_compose-*.whl")[0])
open(sys.argv[2], "wb").write(wheel.read("compose/config/compose_spec.json"))' "$tools/compose-spec" "$compose_spec"
fi

# The store's tests and gorpd's integration tests run a second time on
# Postgres: a throwaway server (tests/postgres.sh) started for that pass.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
source tests/postgres.sh

# Every process the suite starts inherits this id; at the end (or on failure)
# check_leaked_processes.py fails the run if one of them is still alive.
export GORP_TEST_RUN="run-$$-$(date +%s%N)"
trap 'code=$?; pg_stop; [ "$code" -eq 0 ] || python3 tests/check_leaked_processes.py || true' EXIT

log "building the workspace ($CARGO_TARGET_DIR)"
cargo build --workspace --all-targets --locked

log "checking formatting"
cargo fmt --all -- --check

log "running the tests"
cargo test --workspace --locked

# The test binaries the run above built whose artifact matches the jq
# condition $1, run directly: no second build with other features.
built_tests() {
    cargo test --workspace --locked --no-run --message-format=json 2>/dev/null \
        | jq -r "select(.reason == \"compiler-artifact\" and .executable != null and .profile.test
                        and ($1)) | .executable"
}

log "gorpd's unit and integration tests again, with the store on Postgres"
pg_start
built_tests '.package_id | test("/gorpd#")' | while read -r tests; do (cd gorpd && "$tests") || exit 1; done
log "the replica tests: several gorpd processes on one Postgres (the takeover time is in their output)"
built_tests '.target.name == "e2e"' \
    | while read -r tests; do (cd tests && "$tests" replicas:: --show-output) || exit 1; done
pg_stop

log "the Python client package: stubs match the protos, tests against a real gorpd"
"$GORP_PYTHON" clients/python/generate_stubs.py --check
"$GORP_PYTHON" -m unittest discover -s clients/python/tests

log "benchmark, short mode (checks that every workload works; asserts no speed)"
"$CARGO_TARGET_DIR/debug/gorp-bench" --short --start-nats "$(command -v nats-server || echo /usr/sbin/nats-server)"

log "deploy: systemd units, compose.yaml, and the container images built and run"
bash tests/deploy/check-units.sh
"$GORP_PYTHON" tests/deploy/check_compose.py "$compose_spec" "$CARGO_TARGET_DIR/debug"
"$GORP_PYTHON" tests/deploy/check_compose.py "$compose_spec" "$CARGO_TARGET_DIR/debug" \
    deploy/compose.yaml deploy/compose.postgres.yaml
bash tests/deploy/check-images.sh

log "linting (clippy, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "checking that no process started by the suite outlived it"
python3 tests/check_leaked_processes.py --self-test
python3 tests/check_leaked_processes.py

log "all tests passed"
