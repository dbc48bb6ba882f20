#!/usr/bin/env bash
# Checks the systemd units in deploy/systemd offline, in a throwaway root
# holding the host's stock units, the gorp units and placeholder binaries:
# `systemd-analyze verify` must print nothing (an unknown or misspelt key is
# only a warning there, so any output fails the check), and
# `systemd-analyze security` must rate each unit's exposure at or below
# its bound (gorpd 4.0, whose agents need more room; the gateways 2.0).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FAKE_ROOT=$(mktemp -d)
trap 'rm -rf "$FAKE_ROOT"' EXIT

mkdir -p "$FAKE_ROOT/usr/lib/systemd" "$FAKE_ROOT/etc/systemd/system" "$FAKE_ROOT/usr/local/bin"
cp -r /usr/lib/systemd/system "$FAKE_ROOT/usr/lib/systemd/"
cp "$ROOT"/deploy/systemd/*.service "$FAKE_ROOT/etc/systemd/system/"
for binary in gorpd gorp-telegram gorp-slack gorp-matrix; do
    printf '#!/bin/sh\n' > "$FAKE_ROOT/usr/local/bin/$binary"
    chmod 0755 "$FAKE_ROOT/usr/local/bin/$binary"
done

failed=0
check() {
    local unit=$1 bound=$2 warnings exposure
    warnings=$(systemd-analyze verify --man=no --root="$FAKE_ROOT" "$unit" 2>&1) || true
    if [[ -n $warnings ]]; then
        echo "check-units: FAIL: $unit: $warnings" >&2
        failed=1
    fi
    exposure=$(systemd-analyze security --offline=true --root="$FAKE_ROOT" "$unit" 2>&1 |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [[ -z $exposure ]] || ! awk -v e="$exposure" -v b="$bound" 'BEGIN { exit !(e <= b) }'; then
        echo "check-units: FAIL: $unit: exposure ${exposure:-unknown} above $bound" >&2
        failed=1
    else
        echo "check-units: $unit verifies; exposure $exposure (bound $bound)"
    fi
}

check gorpd.service 4.0
for gateway in telegram slack matrix; do
    check "gorp-gateway@$gateway.service" 2.0
done
exit $failed
