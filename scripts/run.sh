#!/usr/bin/env bash
# Install what is needed and start the whole system on its embedded default
# (SQLite in ./var, ZeroMQ on loopback, offline-capable market). Ctrl-C stops everything.
# Extra arguments go to `qsuite run` (e.g. --headless, --native, --config FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/qsuite run "$@"
