#!/usr/bin/env bash
# Builds the container images of gorpd and the chat gateways from this
# repository, without a registry: each image is FROM scratch (or a base you
# name) and holds only its binaries, the shared libraries they load, a CA
# bundle, a passwd entry for the unprivileged user (uid 10001) and its state
# directory.
#
#   deploy/images/build.sh                       # all four images, `dist` profile
#   deploy/images/build.sh gorpd telegram        # only these
#   deploy/images/build.sh --profile release     # a faster build, bigger binaries
#   deploy/images/build.sh --no-build --profile debug   # binaries already built
#   deploy/images/build.sh --base localhost/my-agents:1 gorpd   # gorpd on a base with agent CLIs
#                          (only the binaries are added to a base: its glibc must be
#                          at least this host's, e.g. Debian bookworm or newer)
#
# Images: gorp/gorpd (gorpd and gorpctl), gorp/telegram, gorp/slack,
# gorp/matrix (`--prefix NAME` for NAME/... instead of gorp/...), tagged
# with the workspace version and `latest`. Uses buildah when it is
# installed (with its own storage settings), else docker (BuildKit not needed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROFILE=dist
BUILD=1
BASE=scratch
PREFIX=gorp
IMAGES=()
while (($#)); do
    case "$1" in
        --profile) PROFILE=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --base) BASE=$2; shift 2 ;;
        --prefix) PREFIX=$2; shift 2 ;;
        -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        gorpd|telegram|slack|matrix) IMAGES+=("$1"); shift ;;
        *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done
((${#IMAGES[@]})) || IMAGES=(gorpd telegram slack matrix)

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# Cargo puts the `dev` profile in `debug`; every other profile in its own name.
OUT="$TARGET_DIR/$([[ $PROFILE == dev || $PROFILE == debug ]] && echo debug || echo "$PROFILE")"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)

binaries_of() {
    case "$1" in
        gorpd) echo gorpd gorpctl ;;
        *) echo "gorp-$1" ;;
    esac
}

if ((BUILD)); then
    packages=()
    for image in "${IMAGES[@]}"; do
        for binary in $(binaries_of "$image"); do packages+=(-p "$binary"); done
    done
    cargo_profile=$PROFILE
    [[ $cargo_profile == debug ]] && cargo_profile=dev
    (cd "$ROOT" && cargo build --locked --profile "$cargo_profile" "${packages[@]}")
fi

if command -v buildah > /dev/null; then
    build_image() { buildah bud --quiet --format docker --isolation chroot "$@"; }
elif command -v docker > /dev/null; then
    build_image() { docker build --quiet "$@"; }
else
    echo "build.sh: neither buildah nor docker is installed" >&2
    exit 69
fi

# Copies `binary` into rootfs `dir`.
copy_binary() {
    local binary=$1 dir=$2
    install -D -m 0755 "$binary" "$dir/usr/local/bin/$(basename "$binary")"
    # Symbols stay (for backtraces); debug info does not belong in an image.
    strip --strip-debug "$dir/usr/local/bin/$(basename "$binary")"
}

# Copies every shared library `binary` loads into rootfs `dir`.
copy_libraries() {
    local binary=$1 dir=$2
    ldd "$binary" | grep -o '/[^ ]*' | while read -r library; do
        [[ -e $dir$library ]] || install -D -m 0755 "$(readlink -f "$library")" "$dir$library"
    done
}

# The files every image has: the user, name resolution, CA roots, /tmp.
write_base_files() {
    local dir=$1
    mkdir -p "$dir/etc/ssl/certs" "$dir/tmp"
    chmod 1777 "$dir/tmp"
    printf 'root:x:0:0:root:/root:/nonexistent\ngorp:x:10001:10001:gorp:%s:/nonexistent\n' "$2" > "$dir/etc/passwd"
    printf 'root:x:0:\ngorp:x:10001:\n' > "$dir/etc/group"
    printf 'hosts: files dns\n' > "$dir/etc/nsswitch.conf"
    cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
}

for image in "${IMAGES[@]}"; do
    context=$(mktemp -d)
    trap 'rm -rf "$context"' EXIT
    kind=gateway home=/state
    [[ $image == gorpd ]] && kind=gorpd home=/data
    # On scratch the image needs everything; a base of your own keeps its
    # libraries, users and CA roots (its glibc must be as new as this host's).
    mkdir -p "$context/rootfs"
    [[ $BASE == scratch ]] && write_base_files "$context/rootfs" "$home"
    for binary in $(binaries_of "$image"); do
        [[ -x $OUT/$binary ]] || { echo "build.sh: $OUT/$binary is missing (build it, or drop --no-build)" >&2; exit 66; }
        copy_binary "$OUT/$binary" "$context/rootfs"
        [[ $BASE == scratch ]] && copy_libraries "$OUT/$binary" "$context/rootfs"
    done
    [[ $kind == gateway ]] && mv "$context/rootfs/usr/local/bin/gorp-$image" "$context/rootfs/usr/local/bin/gorp-gateway"
    cp "$ROOT/deploy/images/Containerfile.$kind" "$context/Containerfile"
    # The state directory, copied with --chown (everything else is root's): mode 0700.
    install -d -m 0700 "$context/owned$home"
    echo "build.sh: $PREFIX/$image:$VERSION from $OUT ($(du -sh "$context/rootfs" | cut -f1) of files)"
    build_image --build-arg "BASE=$BASE" --build-arg "GATEWAY=$image" \
        -t "$PREFIX/$image:$VERSION" -t "$PREFIX/$image:latest" -f "$context/Containerfile" "$context" > /dev/null
    rm -rf "$context"
    trap - EXIT
done
