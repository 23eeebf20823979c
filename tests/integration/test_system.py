"""The whole platform as real processes: supervisor, bus, engine slots, control plane."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest
from harness import Sandbox, clean_env, processes_using, running, wait_until

from app.client import QSuiteClient
from engine.bus.commands import SetLogLevel
from engine.errors import CommandError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ENGINES = {"bus", "feed", "analysis", "execution", "venue", "scheduler"}


def _all_up(client: QSuiteClient) -> dict[str, object]:
    report = client.health()
    states = {p.process: p for p in report.processes}
    return (
        states if set(states) >= ENGINES and all(states[n].state == "up" for n in ENGINES) else {}
    )


def test_run_headless_when_started_then_every_process_up_and_ctl_reports(sandbox: Sandbox) -> None:
    with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
        states = wait_until(lambda: _all_up(client), 60, "every process up")
        assert all(p.pid > 0 and p.version for p in states.values())  # type: ignore[attr-defined]

        out = subprocess.run(
            sandbox.command("ctl", "health", "--json"),
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report["overall"] == "up"
        assert {p["process"] for p in report["processes"]} >= ENGINES

        table = subprocess.run(
            sandbox.command("ctl", "health"),
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=30,
        )
        assert "feed" in table.stdout and "overall: UP" in table.stdout

        check = subprocess.run(
            sandbox.command("health"), capture_output=True, env=clean_env(), timeout=30
        )
        assert check.returncode == 0

        pong = client.ping("execution")
        assert pong.process == "execution" and pong.pid == states["execution"].pid  # type: ignore[attr-defined]
        status = client.status("feed")
        assert "Ping.v1" in status.commands and status.log_level == "INFO"
        assert status.counters.get("qsuite_bus_published_total{source=feed}", 0) > 0


def test_run_when_engine_process_killed_then_supervisor_restarts_it(sandbox: Sandbox) -> None:
    with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
        states = wait_until(lambda: _all_up(client), 60, "every process up")
        old_pid = states["venue"].pid  # type: ignore[attr-defined]
        killed_at = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)

        def healed() -> bool:
            venue = {p.process: p for p in client.health().processes}["venue"]
            return venue.state == "up" and venue.pid != old_pid and venue.restarts == 1

        wait_until(healed, 20, "venue restarted and up")
        assert time.monotonic() - killed_at < 15
        assert client.ping("venue").pid != old_pid


def test_run_when_engine_process_stops_beating_then_killed_and_restarted(sandbox: Sandbox) -> None:
    with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
        states = wait_until(lambda: _all_up(client), 60, "every process up")
        frozen = states["analysis"].pid  # type: ignore[attr-defined]
        os.kill(frozen, signal.SIGSTOP)  # alive but silent
        try:

            def replaced() -> bool:
                analysis = {p.process: p for p in client.health().processes}["analysis"]
                return analysis.state == "up" and analysis.pid != frozen

            wait_until(replaced, 25, "frozen analysis process replaced")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen, signal.SIGKILL)


def test_control_when_same_command_id_after_restart_then_first_reply_and_not_applied_again(
    sandbox: Sandbox,
) -> None:
    with (
        running(sandbox, "run", "--headless"),
        QSuiteClient(sandbox.settings, role="admin") as client,
    ):
        wait_until(lambda: _all_up(client), 60, "every process up")
        with (
            QSuiteClient(sandbox.settings, role="operator") as operator,
            pytest.raises(CommandError, match="forbidden"),
        ):
            operator.set_log_level("feed", "DEBUG")
        first = client.set_log_level("feed", "DEBUG", command_id="loglevel-once")
        assert (first.previous, first.current) == ("INFO", "DEBUG")
        assert client.status("feed").log_level == "DEBUG"

        restarted = client.restart("feed", command_id="restart-feed-1")
        assert restarted.new_pid != restarted.old_pid
        wait_until(lambda: client.ping("feed").pid == restarted.new_pid, 20, "feed back")
        assert client.status("feed").log_level == "INFO"  # a fresh process starts from settings

        again = client.send(SetLogLevel(level="DEBUG", command_id="loglevel-once"), "feed")
        assert again == first  # the journaled reply, byte for byte the same result
        assert client.status("feed").log_level == "INFO"  # and nothing was applied again

        same_restart = client.restart("feed", command_id="restart-feed-1")
        assert same_restart == restarted
        assert client.ping("feed").pid == restarted.new_pid


def test_run_when_sigint_then_everything_stops_and_nothing_is_left(sandbox: Sandbox) -> None:
    with running(sandbox, "run", "--headless") as proc, QSuiteClient(sandbox.settings) as client:
        wait_until(lambda: _all_up(client), 60, "every process up")
        children = processes_using(str(sandbox.config))
        assert len(children) >= 7  # supervisor + six engine processes
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert processes_using(str(sandbox.config)) == []
    assert sandbox.leftover_ipc() == []


def test_metrics_when_scraped_then_qsuite_series_exposed(sandbox: Sandbox) -> None:
    with running(sandbox, "run", "--headless"), QSuiteClient(sandbox.settings) as client:
        wait_until(lambda: _all_up(client), 60, "every process up")
        log = (sandbox.data_dir / "logs" / "feed.jsonl").read_text()
        port = int(log.split("Metrics on http://127.0.0.1:", 1)[1].split("/", 1)[0])
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "qsuite_bus_published_total" in body
        assert "qsuite_control_commands_total" in body or "qsuite_runtime_errors_total" in body


def test_cli_when_setting_is_bad_then_exit_2_naming_the_key(sandbox: Sandbox) -> None:
    env = {**clean_env(), "QSUITE__BUS__HWM": "-3"}
    out = subprocess.run(
        sandbox.command("run", "--headless"), capture_output=True, text=True, env=env, timeout=30
    )
    assert out.returncode == 2
    assert "`bus.hwm`" in out.stderr


def test_cli_when_engine_not_running_then_exit_3_unreachable(sandbox: Sandbox) -> None:
    out = subprocess.run(
        sandbox.command("ctl", "health"),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=30,
    )
    assert out.returncode == 3
    assert "Engine unreachable" in out.stderr
