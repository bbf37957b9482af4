#!/bin/sh
# Starts healsync-hub: the container's entrypoint, and what the tests run as a plain
# process (cli/tests/it/packaging.rs), so the two cannot drift apart.
#
# It runs `healsync-hub serve` (arguments to this script go to serve, after the ones
# below). For the docker compose quick start it can also register clinic sites on first
# start and leave each a one-time enrollment token for its node to pick up:
#
#   DATABASE_URL            the hub's PostgreSQL database (required)
#   HEALSYNC_HUB_DATA_DIR   CA and session keys (default /var/lib/healsync-hub)
#   HEALSYNC_HUB_LISTEN     HTTP: GraphQL for central admins (default 0.0.0.0:9443)
#   HEALSYNC_HUB_SYNC_LISTEN QUIC sync with the nodes, UDP (default 0.0.0.0:4433)
#   HEALSYNC_SITES          "CODE=Name,CODE=Name": sites to register (optional)
#   HEALSYNC_TOKEN_DIR      where CODE.token files are written (with HEALSYNC_SITES)
#
# A site whose token file exists is left alone: tokens are written once, and a node
# enrolls once. Only `serve` makes the certificate authority, so tokens are made after
# it has started and pin the CA it serves with.
set -eu

: "${DATABASE_URL:?DATABASE_URL must name the hub's PostgreSQL database}"
export DATABASE_URL
data=${HEALSYNC_HUB_DATA_DIR:-/var/lib/healsync-hub}
listen=${HEALSYNC_HUB_LISTEN:-0.0.0.0:9443}
sync_listen=${HEALSYNC_HUB_SYNC_LISTEN:-0.0.0.0:4433}

healsync-hub serve --data-dir "$data" --listen "$listen" --sync-listen "$sync_listen" "$@" &
hub=$!
trap 'kill -TERM "$hub" 2>/dev/null || true' TERM INT

provision() {
    tokens=$1
    mkdir -p "$tokens"
    # serve migrates the database, then creates (or loads) the CA: once the CA's
    # certificate exists, sites can be added and tokens signed.
    waited=0
    while [ ! -s "$data/ca-cert.pem" ]; do
        kill -0 "$hub" 2>/dev/null || return 1
        [ "$waited" -lt 120 ] || { echo "hub-entrypoint: the hub made no CA in 120 s" >&2; return 1; }
        sleep 1
        waited=$((waited + 1))
    done
    old_ifs=$IFS
    IFS=,
    set -- $HEALSYNC_SITES
    IFS=$old_ifs
    for entry in "$@"; do
        code=${entry%%=*}
        name=${entry#*=}
        [ -n "$code" ] && [ "$name" != "$entry" ] || {
            echo "hub-entrypoint: HEALSYNC_SITES entry \"$entry\" is not CODE=Name" >&2
            return 1
        }
        [ -s "$tokens/$code.token" ] && continue
        if ! out=$(healsync-hub sites add "$code" --name "$name" 2>&1); then
            case $out in
            *CONFLICT* | *"already"*) ;;
            *) echo "hub-entrypoint: $out" >&2; return 1 ;;
            esac
        fi
        healsync-hub nodes token --site "$code" --data-dir "$data" >"$tokens/.$code.token.tmp"
        mv "$tokens/.$code.token.tmp" "$tokens/$code.token"
        echo "hub-entrypoint: site $code ($name) registered; its enrollment token is in $tokens/$code.token"
    done
}

if [ -n "${HEALSYNC_SITES:-}" ]; then
    : "${HEALSYNC_TOKEN_DIR:?HEALSYNC_TOKEN_DIR must say where to leave the sites' tokens}"
    if ! provision "$HEALSYNC_TOKEN_DIR"; then
        kill -TERM "$hub" 2>/dev/null || true
        wait "$hub" || true
        exit 1
    fi
fi

status=0
wait "$hub" || status=$?
# A signal interrupts `wait`: wait again for the hub to finish stopping.
if kill -0 "$hub" 2>/dev/null; then
    status=0
    wait "$hub" || status=$?
fi
exit "$status"
