#!/usr/bin/env bash
# Install QSuite into ./.venv. Usage: scripts/install.sh [--test] [--browsers]
#   --test      also the test tools (pytest, playwright, hypothesis, ruff, mypy)
#   --browsers  also Debian's chromium for the browser tests (apt-get; needs root or sudo)
# Safe to run again: it only reinstalls when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
browsers=0
for arg in "$@"; do
  case "$arg" in
    --test) extras="[test]" ;;
    --browsers) browsers=1 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install.sh: QSuite needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

stamp=".venv/.qsuite-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)$extras"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".$extras"
  echo "$want" > "$stamp"
fi

if [ "$browsers" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
