#!/usr/bin/env bash
# Installs what the messaging tests' stand-in relay needs: a Python virtual environment
# under target/ with aiosmtpd (a real SMTP server). Idempotent; prints the Python to use.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/test-python
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6' >&2
fi
echo "$PWD/$venv/bin/python"
