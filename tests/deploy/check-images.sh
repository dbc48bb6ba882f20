#!/usr/bin/env bash
# Builds the four container images with deploy/images/build.sh (from the
# debug binaries the test run built: --no-build --profile debug) and checks
# them the way a container runtime would use them, without a daemon:
#   - each image's config: user 10001, a health check, its entrypoint;
#   - each image's files run as uid 10001 in a chroot of the image, with
#     only what the image holds (every shared library is there);
#   - the gorpd image serves, and its own HEALTHCHECK command (gorpctl
#     health) passes; the telegram image, given a gateway token made with
#     the image's gorpctl, connects to it and its HEALTHCHECK command
#     (gorp-gateway --health) passes; both stop on SIGTERM with exit 0.
# Every process it starts ends with it; the images and containers are removed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
IMAGES=(gorpd telegram slack matrix)
# A name of its own, so the check never touches images the machine had.
PREFIX=gorp-check-$$
WORK=$(mktemp -d)
CONTAINERS=()
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2> /dev/null || true; done
    for container in "${CONTAINERS[@]}"; do
        buildah umount "$container" > /dev/null 2>&1 || true
        buildah rm "$container" > /dev/null 2>&1 || true
    done
    local ids
    ids=$( (buildah images --noheading --format '{{.ID}}' --filter "reference=$PREFIX/*"
        buildah images --noheading --format '{{.ID}}' --filter "reference=$PREFIX-on-base/*") 2> /dev/null | sort -u)
    # shellcheck disable=SC2086
    [[ -z $ids ]] || buildah rmi -f $ids > /dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "check-images: FAIL: $*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# `inspect IMAGE FORMAT`: one field of the image's config.
inspect() { buildah inspect --type image --format "$2" "$PREFIX/$1:latest"; }

# `in_image ROOTFS ENV... -- COMMAND...`: runs COMMAND as uid 10001 in a
# chroot of ROOTFS, with /proc mounted in a private mount namespace and
# only the image's environment plus ENV.
in_image() {
    local rootfs=$1; shift
    local env=()
    while [[ $1 != -- ]]; do env+=("$1"); shift; done
    shift
    mkdir -p "$rootfs/proc" "$rootfs/dev"
    # GORP_TEST_RUN stays: the suite's leak check finds every process by it.
    env -i "GORP_TEST_RUN=${GORP_TEST_RUN:-}" "${env[@]}" unshare --mount --fork bash -c '
        mount --make-rprivate / && mount -t proc proc "$0/proc" && exec chroot --userspec=10001:10001 "$0" "$@"' \
        "$rootfs" "$@"
}

# The image's environment as NAME=value words.
image_env() { inspect "$1" '{{range .Docker.Config.Env}}{{.}} {{end}}'; }

# The image's HEALTHCHECK command (CMD form), as words.
health_command() { inspect "$1" '{{range $i, $w := .Docker.Config.Healthcheck.Test}}{{if $i}}{{$w}} {{end}}{{end}}'; }

# `start NAME ROOTFS ENV... -- COMMAND...`: in_image in the background, in its own process group.
start() {
    local name=$1; shift
    setsid bash -c "$(declare -f in_image); in_image \"\$@\"" _ "$@" > "$WORK/$name.log" 2>&1 &
    PIDS+=($!)
}

# `until_ok SECONDS COMMAND...`: retries COMMAND every 0.2 s until it succeeds.
until_ok() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" > "$WORK/last.out" 2>&1; do
        ((SECONDS < deadline)) || { cat "$WORK/last.out" >&2; return 1; }
        sleep 0.2
    done
}

# `stop_gracefully NAME`: SIGTERM to the process in the chroot; it must exit 0.
stop_gracefully() {
    local index=$1 name=$2 pid=${PIDS[$1]}
    pkill -TERM -g "$pid" -x "$name" || fail "$name is not running"
    local status=0
    wait "$pid" || status=$?
    ((status == 0)) || { cat "$WORK/$name.log" >&2; fail "$name exited $status on SIGTERM"; }
}

echo "check-images: building ${IMAGES[*]} from $CARGO_TARGET_DIR/debug"
"$ROOT/deploy/images/build.sh" --no-build --profile debug --prefix "$PREFIX" "${IMAGES[@]}"

declare -A ROOTFS
for image in "${IMAGES[@]}"; do
    [[ $(inspect "$image" '{{.Docker.Config.User}}') == 10001:10001 ]] || fail "$image does not run as 10001:10001"
    [[ -n $(health_command "$image") ]] || fail "$image has no HEALTHCHECK"
    binary=/usr/local/bin/gorp-gateway
    [[ $image == gorpd ]] && binary=/usr/local/bin/gorpd
    [[ $(inspect "$image" '{{index .Docker.Config.Entrypoint 0}}') == "$binary" ]] || fail "$image's entrypoint is not $binary"
    container=$(buildah from "$PREFIX/$image:latest")
    CONTAINERS+=("$container")
    ROOTFS[$image]=$(buildah mount "$container")
    # shellcheck disable=SC2046
    version=$(in_image "${ROOTFS[$image]}" $(image_env "$image") -- "$binary" --version) \
        || fail "$image: $binary does not run from the image's own files"
    echo "check-images: $image runs as uid 10001: $version"
done

# On a base of one's own (here the gorpd image just built, which has the
# libraries): only the binary is added, and it runs on the base's libraries.
"$ROOT/deploy/images/build.sh" --no-build --profile debug --prefix "$PREFIX-on-base" --base "$PREFIX/gorpd:latest" telegram
container=$(buildah from "$PREFIX-on-base/telegram:latest")
CONTAINERS+=("$container")
on_base=$(buildah mount "$container")
[[ -x $on_base/usr/local/bin/gorpd && -x $on_base/usr/local/bin/gorp-gateway ]] || fail "the image on a base lacks the base's or its own binary"
# shellcheck disable=SC2046
in_image "$on_base" $(image_env telegram) -- /usr/local/bin/gorp-gateway --version > /dev/null \
    || fail "the gateway does not run on the base's libraries"
echo "check-images: a gateway image on a base of its own runs on the base's libraries"

grpc=$(free_port) http=$(free_port) health=$(free_port)
# shellcheck disable=SC2046
start gorpd "${ROOTFS[gorpd]}" $(image_env gorpd) "GORP_GRPC_ADDR=127.0.0.1:$grpc" "GORP_HTTP_ADDR=127.0.0.1:$http" \
    -- /usr/local/bin/gorpd
# The image's own health check, pointed at the port gorpd got here.
# shellcheck disable=SC2046
until_ok 30 in_image "${ROOTFS[gorpd]}" $(image_env gorpd) "GORP_SERVER=http://127.0.0.1:$grpc" -- $(health_command gorpd) \
    || fail "the gorpd image's health check never passed"
echo "check-images: gorpd's HEALTHCHECK passes ($(tr -d '\n' < "$WORK/last.out"))"

# shellcheck disable=SC2046
token=$(in_image "${ROOTFS[gorpd]}" $(image_env gorpd) "GORP_SERVER=http://127.0.0.1:$grpc" \
    -- /usr/local/bin/gorpctl token create images-check --gateway telegram | grep -o 'gorp_[A-Za-z0-9_-]*' | head -1)
[[ -n $token ]] || fail "gorpctl in the gorpd image made no gateway token"

# shellcheck disable=SC2046
start gorp-gateway "${ROOTFS[telegram]}" $(image_env telegram) "GORP_GORPD=http://127.0.0.1:$grpc" "GORP_TOKEN=$token" \
    "GORP_TELEGRAM_TOKEN=123456:images-check" "GORP_TELEGRAM_API_URL=http://127.0.0.1:9" "GORP_HEALTH_ADDR=127.0.0.1:$health" \
    -- /usr/local/bin/gorp-gateway
# shellcheck disable=SC2046
until_ok 30 in_image "${ROOTFS[telegram]}" $(image_env telegram) "GORP_HEALTH_ADDR=127.0.0.1:$health" -- $(health_command telegram) \
    || { cat "$WORK/gorp-gateway.log" >&2; fail "the telegram image's health check never passed"; }
echo "check-images: the telegram image reached gorpd and its HEALTHCHECK passes"

stop_gracefully 1 gorp-gateway
stop_gracefully 0 gorpd
echo "check-images: OK (${IMAGES[*]})"
