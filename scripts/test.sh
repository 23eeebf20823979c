#!/usr/bin/env bash
# Install everything (test tools, Debian's chromium, the native-window backend) and run the
# whole test suite:
# lint, types, unit, integration (SQLite and PostgreSQL) and browser tests.
# Extra arguments go to pytest (e.g. -k health, -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test --browsers --native

# The storage tests run on PostgreSQL too; point them at a server with QSUITE_TEST_PG_URL.
export QSUITE_TEST_PG_URL=${QSUITE_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}

.venv/bin/ruff check app engine feeds ui tests scripts
.venv/bin/mypy
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
