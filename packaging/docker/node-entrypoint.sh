#!/bin/sh
# Starts healsync-node: the container's entrypoint, and what the tests run as a plain
# process (cli/tests/it/packaging.rs), so the two cannot drift apart.
#
# On first start, if HEALSYNC_HUB is set, it enrolls the node with the hub using the
# one-time token the hub's entrypoint left for this site, waiting for it to appear; then
# it runs `healsync-node serve` (arguments to this script go to serve, after the ones
# below). A node that cannot reach the hub still serves its clinic; it syncs when it can.
#
#   HEALSYNC_DATA_DIR     the node's data directory (default /var/lib/healsync)
#   HEALSYNC_LISTEN       the clinic's HTTP(S) address (default 0.0.0.0:8443)
#   HEALSYNC_SITE         this clinic's site code (required with HEALSYNC_HUB)
#   HEALSYNC_HUB          the hub's sync address HOST:PORT; unset: a standalone clinic
#   HEALSYNC_TOKEN_DIR    where the hub leaves SITE.token (default /run/healsync-tokens)
#   HEALSYNC_TOKEN_WAIT   seconds to wait for the token (default 300)
set -eu

data=${HEALSYNC_DATA_DIR:-/var/lib/healsync}
listen=${HEALSYNC_LISTEN:-0.0.0.0:8443}
site=${HEALSYNC_SITE:-}

# `enroll` keeps the node's credentials in DATA/sync (CREDENTIALS_DIR in node/sync).
if [ -n "${HEALSYNC_HUB:-}" ] && [ ! -d "$data/sync" ]; then
    : "${HEALSYNC_SITE:?HEALSYNC_SITE must name this clinic's site to enroll with the hub}"
    token_file=${HEALSYNC_TOKEN_DIR:-/run/healsync-tokens}/$site.token
    limit=${HEALSYNC_TOKEN_WAIT:-300}
    waited=0
    while [ ! -s "$token_file" ]; do
        if [ "$waited" -ge "$limit" ]; then
            echo "node-entrypoint: no enrollment token at $token_file after ${limit} s" >&2
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    mkdir -p "$data"
    chmod 700 "$data"
    healsync-node enroll --hub "$HEALSYNC_HUB" --token "$(cat "$token_file")" --data-dir "$data"
fi

set -- serve --data-dir "$data" --listen "$listen" "$@"
if [ -n "$site" ]; then
    set -- "$@" --site "$site"
fi
exec healsync-node "$@"
