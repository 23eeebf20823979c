"""Start/stop soak of `qsuite run --headless`: no hang, no orphan, no leftover ipc file."""

from __future__ import annotations

import os
import signal
import time

import pytest
from harness import Sandbox, processes_using, running, wait_until

from app.client import QSuiteClient

CYCLES = int(os.environ.get("QSUITE_TEST_CYCLES", "50"))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(60 + CYCLES * 25)
def test_run_headless_when_started_and_stopped_repeatedly_then_no_orphans_and_no_hangs(
    sandbox: Sandbox,
) -> None:
    durations = []
    for cycle in range(CYCLES):
        started = time.monotonic()
        with (
            running(sandbox, "run", "--headless", log_name=f"cycle-{cycle}.log") as proc,
            QSuiteClient(sandbox.settings) as client,
        ):
            # every process must have come up (bus heartbeat seen, children launched)
            wait_until(
                lambda: client.ping("scheduler").process == "scheduler",
                30,
                f"cycle {cycle}: scheduler up",
            )
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0, (
                f"cycle {cycle}: supervisor exit code {proc.returncode}"
            )
        left = processes_using(str(sandbox.config))
        assert left == [], f"cycle {cycle}: orphans {left}"
        assert sandbox.leftover_ipc() == [], (
            f"cycle {cycle}: ipc files left {sandbox.leftover_ipc()}"
        )
        durations.append(time.monotonic() - started)
    assert len(durations) == CYCLES
