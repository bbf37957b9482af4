#!/usr/bin/env bash
# Runs every check and test of HealSync: formatting, lints, the clinic web app's build
# (checked against what is committed), and the whole workspace's tests (unit, store,
# GraphQL over real HTTP and WebSocket, real node processes, the web app in headless
# Chromium).
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "cargo is required (https://rustup.rs)" >&2
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== PostgreSQL for the hub's tests"
tests/ensure-postgres.sh

echo "== the graphql-http conformance audit (npm)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "Node.js and npm are required (apt-get install nodejs npm)" >&2
        exit 1
    fi
fi
npm ci --prefix tests/graphql-http-audit --no-audit --no-fund --loglevel=error

echo "== the clinic web app: type-checked against the schema, built, same as committed"
npm ci --prefix node/web --no-audit --no-fund --loglevel=error
npm run --prefix node/web --silent build >/dev/null
if [ -n "$(git status --porcelain -- node/web/dist)" ]; then
    git status --short -- node/web/dist >&2
    echo "node/web/dist differs from a fresh build: run \`npm run build\` in node/web and commit dist/" >&2
    exit 1
fi

echo "== Chromium for the web app's browser tests (Debian's package)"
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        echo "Chromium is required for the browser tests (apt-get install chromium)" >&2
        exit 1
    fi
fi
CHROMIUM=$(command -v chromium)
export CHROMIUM

echo "== the stand-in mail relay and SMS gateway (Python, aiosmtpd)"
HEALSYNC_TEST_PYTHON=$(tests/ensure-message-sinks.sh)
export HEALSYNC_TEST_PYTHON

echo "== cargo test --workspace"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo's own last line is a per-crate one).
totals=$(grep -E '^test result: ' "$log" | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/' \
    | awk '{p += $1; f += $2} END {printf "%d passed, %d failed", p, f}')
echo
echo "$totals"
exit "$status"
