"""``qsuite ctl performance``: arguments → ``GetPerformance``, and how the reply prints."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.cli import build_parser
from app.ctl import VERBS, render
from engine.bus.commands.analytics import (
    AccountPerformance,
    GetPerformance,
    PerformanceFigures,
    SnapshotRow,
)

D = Decimal
NS = 1_704_067_200 * 10**9  # 2024-01-01 00:00 UTC
DAY = "2024-01-01"
FIVE_MIN = 300 * 10**9


def command(*argv: str) -> object:
    args = build_parser().parse_args(["ctl", *argv])
    built, process = VERBS[args.verb].build(args)
    assert process is None
    return built


def snapshot(i: int, total: str, missing: int = 0) -> SnapshotRow:
    return SnapshotRow(
        ts=NS + i * FIVE_MIN,
        account="acme",
        realized_pnl=D(total),
        unrealized_pnl=D(0),
        total_pnl=D(total),
        gross_exposure=D("1025.5"),
        net_exposure=D("-10"),
        positions=2,
        fills=7,
        marks_missing=missing,
    )


def test_performance_when_only_account_then_default_capital_from_the_start() -> None:
    assert command("performance", "acme") == GetPerformance(account="acme")
    assert GetPerformance(account="acme").capital == D(1_000_000)


def test_performance_when_since_and_capital_then_utc_ns_and_exact_decimal() -> None:
    built = command("performance", "acme", "--since", "2024-01-01", "--capital", "250000.50")

    assert built == GetPerformance(account="acme", since_ns=NS, capital=D("250000.50"))


def test_performance_when_capital_not_a_number_then_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        command("performance", "acme", "--capital", "lots")

    assert "is not a number" in capsys.readouterr().err


def test_render_performance_then_figures_and_the_newest_snapshots(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [snapshot(i, str(i), missing=1 if i == 24 else 0) for i in range(25)]
    render(
        AccountPerformance(
            account="acme",
            capital=D(1_000_000),
            snapshots=rows,
            truncated=True,
            performance=PerformanceFigures(
                start_ts=rows[0].ts,
                end_ts=rows[-1].ts,
                points=25,
                periods_per_year=105_192.0,
                initial_equity=1_000_000.0,
                final_equity=1_000_024.0,
                pnl=D(24),
                total_return=0.000024,
                annualized_return=None,
                annualized_volatility=0.1234,
                sharpe=1.5,
                sortino=None,
                calmar=None,
                max_drawdown=0.0125,
                max_drawdown_start_ts=rows[2].ts,
                max_drawdown_trough_ts=rows[3].ts,
                max_drawdown_end_ts=rows[-1].ts,
                max_drawdown_duration_s=6600.0,
                max_drawdown_recovered=False,
            ),
        )
    )

    lines = capsys.readouterr().out.splitlines()
    assert lines[:12] == [
        "acme (capital 1000000)",
        "window: 2024-01-01 00:00 to 2024-01-01 02:00 (25 snapshots)",
        "p&l: 24",
        "equity: 1,000,000.00 to 1,000,024.00",
        "total return: 0.00%",
        "annualized return: -",
        "annualized volatility: 12.34%",
        "sharpe: 1.50",
        "sortino: -",
        "calmar: -",
        f"max drawdown: 1.25% (peak {DAY} 00:10, trough {DAY} 00:15, 1.8h, not recovered)",
        "(the newest 20 of 25 snapshots and more before them; --json)",
    ]
    assert lines[12].split() == [
        "TIME", "REALIZED", "UNREALIZED", "TOTAL", "GROSS", "NET", "POSITIONS", "FILLS",
        "UNMARKED",
    ]  # fmt: skip
    assert len(lines) == 13 + 20
    assert lines[13].split() == [DAY, "00:25", "5", "0", "5", "1025.5", "-10", "2", "7", "-"]
    assert lines[-1].split()[-1] == "1"


def test_render_performance_when_no_snapshots_then_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render(AccountPerformance(account="acme", capital=D(1000), snapshots=[]))

    assert capsys.readouterr().out.splitlines() == [
        "acme (capital 1000)",
        "performance: - (fewer than two snapshots; see `qsuite ctl jobs`)",
        "(none)",
    ]
