"""`qsuite ui --native`: the console in its own desktop window (pywebview on WebKitGTK),
under a private Xvfb display.

The console process serves HTTP on ``ui.port`` as in a browser tab and starts the
window in a child process (NiceGUI's native mode); the test waits until the page is
served, the window is mapped on the display and has drawn the login page, checks that
both processes stay up for a few seconds, then stops the console with SIGINT and
expects every process it started (window, WebKit helpers) to be gone.

Skipped, with the reason, only when something native mode needs is not installed here:
pywebview, a GUI backend for it (GTK 3 + WebKit2 through PyGObject, or Qt WebEngine
through QtPy), Xvfb or xwininfo. ``scripts/install.sh --native`` installs them all.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from harness import REPO, Sandbox, clean_env, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

ARTIFACTS = REPO / "test-artifacts" / "e2e"
TITLE = "QSuite"
"""The window's title (``ui.run(title=...)`` in ui/main.py)."""
STAY_UP_S = 4.0
INSTALL = "scripts/install.sh --native"

# Run in a child interpreter, so GTK is never loaded into the test process.
GTK_CHECK = """
import gi
gi.require_version("Gtk", "3.0")
try:
    gi.require_version("WebKit2", "4.1")
except ValueError:
    gi.require_version("WebKit2", "4.0")
from gi.repository import Gtk, WebKit2
"""
QT_CHECK = "from qtpy import QtWebEngineWidgets"
# Grabs the window's area of the screen; prints how many distinct colours it has.
GRAB = """
import sys
import gi
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk
x, y, w, h = (int(v) for v in sys.argv[1:5])
path = sys.argv[5]
root = Gdk.get_default_root_window()
shot = Gdk.pixbuf_get_from_window(root, x, y, w, h)
shot.savev(path, "png", [], [])
pixels = shot.get_pixels()
step = shot.get_n_channels()
print(len({pixels[i:i + 3] for i in range(0, len(pixels) - 2, step * 7)}))
"""


def _runs(code: str) -> bool:
    return (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, timeout=60, env=clean_env()
        ).returncode
        == 0
    )


def _missing() -> str:
    """Why native mode cannot run here ("" when it can)."""
    if importlib.util.find_spec("webview") is None:
        return f"pywebview is not installed (the `native` extra; run {INSTALL})"
    if not _runs(GTK_CHECK) and not _runs(QT_CHECK):
        return (
            "pywebview has no GUI backend here: neither GTK 3 + WebKit2 through PyGObject "
            f"(Debian: gir1.2-webkit2-4.1, PyGObject in the venv) nor Qt WebEngine through "
            f"QtPy; run {INSTALL}"
        )
    for tool, package in (("Xvfb", "xvfb"), ("xwininfo", "x11-utils")):
        if shutil.which(tool) is None:
            return f"{tool} is missing (Debian package {package}; run {INSTALL})"
    return ""


@pytest.fixture(scope="module")
def native_ready() -> None:
    reason = _missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def display(native_ready: None, tmp_path: Path) -> Iterator[str]:
    """A private X display (Xvfb picks a free number and tells it on a pipe)."""
    read_end, write_end = os.pipe()
    log = (tmp_path / "xvfb.log").open("wb")
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            number = pipe.readline().decode().strip()  # EOF (b"") if Xvfb failed
        assert number.isdigit(), f"Xvfb did not start; see {tmp_path / 'xvfb.log'}"
        yield f":{number}"
    finally:
        _stop_group(xvfb)
        log.close()


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(") ", 1)[1].split()
        if fields[0] != "Z":
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _window(env: dict[str, str]) -> tuple[int, int, int, int] | None:
    """The mapped top-level window titled :data:`TITLE`: (x, y, width, height)."""
    out = subprocess.run(
        ["xwininfo", "-root", "-tree"], capture_output=True, text=True, env=env, timeout=10
    ).stdout
    for line in out.splitlines():
        if f'"{TITLE}"' in line:
            # 0x20000e "QSuite": ("__main__.py" "__main__.py")  800x600+240+100  +240+100
            geometry = line.split(")")[-1].split()[0]
            size, x, y = geometry.split("+")[:3]
            w, h = size.split("x")
            if int(w) > 10 and int(h) > 10:
                return int(x), int(y), int(w), int(h)
    return None


def test_native_window_when_started_under_xvfb_then_it_serves_draws_and_stops_cleanly(
    sandbox: Sandbox, display: str
) -> None:
    settings = sandbox.settings
    url = f"http://{settings.ui.host}:{settings.ui.port}/login"
    env = {k: v for k, v in clean_env().items() if k != "WAYLAND_DISPLAY"}
    env |= {"DISPLAY": display, "GDK_BACKEND": "x11", "QT_QPA_PLATFORM": "xcb", "NO_AT_BRIDGE": "1"}
    log = (sandbox.data_dir / "native.log").open("ab")
    proc = subprocess.Popen(
        sandbox.command("ui", "--native"),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        cwd=REPO,
    )
    started: list[int] = []
    try:

        def serving() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"qsuite ui --native exited with {proc.returncode}; see {log.name}")
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200

        wait_until(serving, 60, "the native console to serve its port", 0.2)
        geometry = wait_until(lambda: _window(env), 60, f"a window titled {TITLE!r}", 0.3)
        started = _descendants(proc.pid)
        windows = [pid for pid in started if "spawn_main" in _cmdline(pid)]
        assert windows, f"no window process among {[_cmdline(p) for p in started]}"

        if _runs(GTK_CHECK):  # the window drew the page, not just a blank rectangle
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "native-window.png"

            def drawn() -> bool:
                out = subprocess.run(
                    [sys.executable, "-c", GRAB, *map(str, geometry), str(shot)],
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=30,
                )
                return out.returncode == 0 and int(out.stdout.strip() or 0) > 2

            wait_until(drawn, 60, "the window to draw the login page", 0.5)

        time.sleep(STAY_UP_S)
        assert proc.poll() is None, f"the console exited with {proc.returncode}"
        assert all(_alive(pid) for pid in windows), "the window process died"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200

        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        log.flush()
        output = Path(log.name).read_text(errors="replace")
        assert code in (0, 130), f"exit {code} (SIGINT is 130): {output[-2000:]}"
        assert "Traceback" not in output, output[-4000:]
        wait_until(
            lambda: not [pid for pid in started if _alive(pid)],
            15,
            "the window and WebKit processes to end with the console",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for pid in started:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
