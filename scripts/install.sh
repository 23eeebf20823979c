#!/usr/bin/env bash
# Install QSuite into ./.venv. Usage: scripts/install.sh [--test] [--browsers] [--native]
#   --test      also the test tools (pytest, playwright, hypothesis, ruff, mypy)
#   --browsers  also Debian's chromium for the browser tests (apt-get; needs root or sudo)
#   --native    also the desktop window (`qsuite ui --native`): the `native` extra
#               (pywebview, PyGObject built from source) and, from Debian (apt-get), GTK's
#               WebKit, what PyGObject compiles against, and Xvfb + x11-utils for headless
#               runs and tests/e2e/test_native.py
# Safe to run again: it only reinstalls when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
browsers=0
native=0
for arg in "$@"; do
  case "$arg" in
    --test) extras="${extras:+$extras,}test" ;;
    --browsers) browsers=1 ;;
    --native) extras="${extras:+$extras,}native"; native=1 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "install.sh: QSuite needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras="${extras:+[$extras]}"

if [ "$native" = 1 ]; then  # before pip: PyGObject compiles against these
  missing=""
  for pkg in gir1.2-gtk-3.0 gir1.2-webkit2-4.1 libgirepository1.0-dev libcairo2-dev \
      pkg-config gcc python3-dev xvfb xauth x11-utils; do
    case "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" in
      *"ok installed") ;;
      *) missing="$missing $pkg" ;;
    esac
  done
  if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

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
