#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the hub's tests:
# starts the machine's cluster if it is stopped, installs Debian's server if there is
# none. Tests use HEALSYNC_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
# and create a fresh database each.
set -euo pipefail

if [ -n "${HEALSYNC_TEST_DATABASE_URL:-}" ]; then
    exit 0
fi
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
ready && exit 0

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "== installing PostgreSQL (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
conf=/etc/postgresql/$version/main
# Local trust authentication on loopback, as the tests expect.
if ! grep -q "healsync-tests" "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust # healsync-tests' "$conf/pg_hba.conf"
fi
echo "== starting PostgreSQL $version"
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
for _ in $(seq 1 30); do
    ready && exit 0
    sleep 1
done
echo "PostgreSQL did not start on 127.0.0.1:5432" >&2
exit 1
