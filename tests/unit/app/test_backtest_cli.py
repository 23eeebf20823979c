"""``qsuite backtest`` / ``qsuite report``: argument parsing, a run and a sweep on a CSV
file end to end, the database as the source, and exit code 2 with the reason on bad input."""

from __future__ import annotations

import argparse
import io
import json
import math
import random
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from app import cli, database
from app.backtest_cli import TextProgress, grid_axis, param
from app.settings import load_settings
from engine.persistence.bars import BarRow, upsert_bars

DAY = 86_400 * 10**9
T0 = 1_577_836_800 * 10**9  # 2020-01-01


def bars(symbol: str, seed: int, n: int = 200) -> list[BarRow]:
    rng, price, out = random.Random(seed), 100.0, []
    for i in range(n):
        open_ = price
        price *= math.exp(rng.gauss(0, 0.015))
        high, low = max(open_, price) * 1.003, min(open_, price) * 0.997
        out.append(BarRow(symbol, "1d", T0 + i * DAY, open_, high, low, price, 1e4, "replay", 0))
    return out


@pytest.fixture
def csv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QSUITE__APP__DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "two.csv"
    rows = pd.DataFrame(bars("AAA", 1) + bars("BBB", 2), columns=list(BarRow._fields))
    rows[["symbol", "ts", "open", "high", "low", "close", "volume"]].to_csv(path, index=False)
    return path


def qsuite(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse refusing an argument
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fast=10", ("fast", 10)),
        ("fraction=0.5", ("fraction", 0.5)),
        ("type=ema", ("type", "ema")),
        ('label="10"', ("label", "10")),
        ("on=true", ("on", True)),
        ("levels=[1, 2]", ("levels", [1, 2])),
        (" slow = 30 ", ("slow", 30)),
    ],
)
def test_param_when_value_parses_as_json_then_json_else_text(
    text: str, expected: tuple[str, object]
) -> None:
    assert param(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fast=5,10,20", ("fast", [5, 10, 20])),
        ("type=sma,ema", ("type", ["sma", "ema"])),
        ("fast=[5, 10]", ("fast", [5, 10])),
        ("lower=25.5, 30", ("lower", [25.5, 30])),
        ("slow=50", ("slow", [50])),
    ],
)
def test_grid_axis_when_values_then_each_parsed(text: str, expected: tuple[str, object]) -> None:
    assert grid_axis(text) == expected


@pytest.mark.parametrize("text", ["fast", "=5", "fast=", "fast=5,,10"])
def test_param_and_grid_axis_when_malformed_then_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        grid_axis(text)
    if "," not in text and text != "fast=":
        with pytest.raises(argparse.ArgumentTypeError):
            param(text)


def test_parser_when_full_command_then_every_option_read() -> None:
    args = cli.build_parser().parse_args(
        [
            "backtest",
            "--strategy",
            "ma_crossover",
            "--param",
            "fast=10",
            "--param",
            "type=ema",
            "--symbols",
            "A,B",
            "--data",
            "bars.csv",
            "--interval",
            "1h",
            "--start",
            "2024-01-01",
            "--cash",
            "5000.50",
            "--commission",
            "0.001",
            "--slippage-bps",
            "2",
            "--sizing",
            "fixed",
            "--qty",
            "10",
            "--allow-short",
            "--sweep",
            "slow=30,50",
            "--workers",
            "1",
            "--json",
        ]
    )

    assert args.cmd == "backtest" and args.strategy == "ma_crossover"
    assert args.param == [("fast", 10), ("type", "ema")]
    assert args.data == Path("bars.csv") and not args.from_db
    assert (args.interval, args.start, args.end) == ("1h", "2024-01-01", None)
    assert args.cash == Decimal("5000.50") and args.qty == Decimal(10)
    assert (args.commission, args.slippage_bps, args.sizing) == (0.001, 2.0, "fixed")
    assert args.allow_short and args.json and args.workers == 1
    assert args.sweep == [("slow", [30, 50])] and args.metric == "sharpe"


@pytest.mark.parametrize(
    "argv",
    [
        ["backtest", "--strategy", "ma_crossover"],  # no data source
        ["backtest", "--strategy", "x", "--data", "a.csv", "--from-db"],  # two sources
        ["backtest", "--data", "a.csv"],  # no strategy
        ["backtest", "--strategy", "x", "--data", "a.csv", "--param", "fast"],
        ["backtest", "--strategy", "x", "--data", "a.csv", "--workers", "0"],
        ["backtest", "--strategy", "x", "--data", "a.csv", "--interval", "7m"],
        ["backtest", "--strategy", "x", "--data", "a.csv", "--sizing", "half"],
        ["backtest", "--strategy", "x", "--data", "a.csv", "--cash", "lots"],
    ],
)
def test_parser_when_arguments_bad_then_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, _, err = qsuite(capsys, *argv)

    assert code == 2 and "usage: qsuite" in err


def test_text_progress_when_updated_then_one_line_redrawn() -> None:
    stream = io.StringIO()
    bar = TextProgress("ma_crossover", "bars", stream, width=10)

    bar(500, 1000)
    bar(1000, 1000)
    bar.close()

    assert stream.getvalue() == (
        "\rma_crossover [#####.....]  50% 500/1,000 bars"
        "\rma_crossover [##########] 100% 1,000/1,000 bars\n"
    )


# --- running ----------------------------------------------------------------------------------

RUN = ("backtest", "--strategy", "ma_crossover", "--param", "fast=5", "--param", "slow=20")


def test_backtest_when_csv_then_summary_on_stdout_and_report_written(
    capsys: pytest.CaptureFixture[str], csv_file: Path, tmp_path: Path
) -> None:
    html = tmp_path / "out" / "run.html"

    code, out, err = qsuite(
        capsys, *RUN, "--symbols", "AAA,BBB", "--data", str(csv_file), "--report", str(html)
    )

    assert (code, err) == (0, "")
    assert out.startswith("ma_crossover (fast=5 slow=20) on AAA, BBB, 1d\n")
    for label in ("Total return", "Sharpe ratio", "Max drawdown", "Trades (closed)", "Win rate"):
        assert label in out
    assert f"report: {html}" in out
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_backtest_when_json_then_metrics_as_json(
    capsys: pytest.CaptureFixture[str], csv_file: Path, tmp_path: Path
) -> None:
    code, out, _ = qsuite(
        capsys, *RUN, "--data", str(csv_file), "--json", "--report", str(tmp_path / "csv")
    )

    doc = json.loads(out)
    assert code == 0
    assert doc["symbols"] == ["AAA", "BBB"] and doc["params"] == {"fast": 5, "slow": 20}
    assert set(doc["metrics"]) >= {"total_return", "sharpe", "max_drawdown", "trades"}
    assert sorted(Path(p).name for p in doc["reports"]) == sorted(
        ["equity.csv", "trades.csv", "fills.csv", "metrics.csv", "monthly.csv"]
    )


def test_backtest_when_sweep_then_rows_best_first(
    capsys: pytest.CaptureFixture[str], csv_file: Path
) -> None:
    argv = ("backtest", "--strategy", "ma_crossover", "--data", str(csv_file))
    sweeps = ("--sweep", "fast=5,30", "--sweep", "slow=20,40", "--workers", "2")

    code, out, _ = qsuite(capsys, *argv, *sweeps, "--json")
    table_code, table, _ = qsuite(capsys, *argv, *sweeps, "--metric", "total_return")

    rows = json.loads(out)["rows"]
    assert code == table_code == 0
    assert len(rows) == 4 and rows[-1]["params"] == {"fast": 30, "slow": 20}
    assert "need 1 < fast < slow" in rows[-1]["error"]
    sharpes = [r["sharpe"] for r in rows[:-1]]
    assert sharpes == sorted(sharpes, reverse=True)
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["#", "FAST", "SLOW", "RETURN"]
    assert len(lines) == 5 and "need 1 < fast < slow" in lines[-1]


def test_backtest_when_from_db_then_stored_bars_run(
    capsys: pytest.CaptureFixture[str], csv_file: Path, tmp_path: Path
) -> None:
    settings = load_settings(environ={"QSUITE__APP__DATA_DIR": str(tmp_path / "data")})
    engine = database.open_database(settings)
    upsert_bars(engine, bars("AAA", 1))
    engine.dispose()

    code, out, _ = qsuite(capsys, *RUN, "--symbols", "AAA", "--from-db", "--json")
    _, from_file, _ = qsuite(capsys, *RUN, "--symbols", "AAA", "--data", str(csv_file), "--json")

    assert code == 0
    assert json.loads(out)["metrics"] == json.loads(from_file)["metrics"]


def test_report_when_formats_named_then_each_written(
    capsys: pytest.CaptureFixture[str], csv_file: Path, tmp_path: Path
) -> None:
    html, doc = tmp_path / "r.html", tmp_path / "r.json"
    argv = ["report", *RUN[1:], "--data", str(csv_file), "--html", str(html), "--json", str(doc)]

    code, out, _ = qsuite(capsys, *argv)

    assert code == 0 and out.splitlines() == [str(html), str(doc)]
    assert json.loads(doc.read_text())["symbols"] == ["AAA", "BBB"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "missing.csv"], "no data file missing.csv"),
        (["--symbols", "ZZZ"], "two.csv has no bars of ZZZ; it holds AAA, BBB"),
        (["--start", "2031-01-01"], "no 1d bars in"),
        (["--start", "someday"], "start 'someday' is not a date"),
        (["--commission", "1"], "commission must be at least 0 and below 1"),
        (["--cash", "-10"], "cash must be positive"),
        (["--param", "slow=3"], "need 1 < fast < slow"),
        (["--report", "out.txt"], "--report out.txt: use .html, .json, or a folder"),
        (["--sweep", "fast=2,3", "--report", "x.html"], "--report needs a single run"),
        (["--sweep", "fast=2", "--sweep", "fast=3"], "each --sweep parameter may be given once"),
        (["--sweep", "fast=2", "--metric", "luck"], "unknown metric 'luck'"),
        (["--symbols", "AAA", "--from-db"], "the database has no 1d bars of AAA"),
    ],
)
def test_backtest_when_input_bad_then_exit_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], csv_file: Path, extra: list[str], message: str
) -> None:
    data = [] if "--data" in extra or "--from-db" in extra else ["--data", str(csv_file)]

    code, out, err = qsuite(capsys, *RUN, *data, *extra)

    assert code == 2 and out == ""
    assert err.startswith("qsuite backtest: ") and message in err


def test_report_when_no_output_named_then_exit_2(
    capsys: pytest.CaptureFixture[str], csv_file: Path
) -> None:
    code, _, err = qsuite(capsys, "report", *RUN[1:], "--data", str(csv_file))

    assert code == 2 and "name at least one report" in err


def test_backtest_when_prints_then_run_through_the_matching_engine(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QSUITE__APP__DATA_DIR", str(tmp_path / "data"))
    prints = tmp_path / "prints.csv"
    rows = ["ts,symbol,price,size,aggressor"]
    price = 100.0
    for i in range(2000):
        price += 0.05 if (i // 40) % 2 == 0 else -0.05
        rows.append(f"{1_700_000_000 * 10**9 + i * 6 * 10**9},AAA,{price:.2f},10,buy")
    prints.write_text("\n".join(rows) + "\n")

    code, out, err = qsuite(
        capsys, "backtest", "--strategy", "ma_crossover", "--param", "fast=3",
        "--param", "slow=8", "--prints", str(prints), "--interval", "1m", "--json",
    )  # fmt: skip

    assert (code, err) == (0, "")
    assert json.loads(out)["metrics"]["trades"] > 0
    code, _, err = qsuite(
        capsys, "backtest", "--strategy", "ma_crossover", "--prints", str(prints),
        "--sweep", "fast=3,4",
    )  # fmt: skip
    assert code == 2 and "not --prints" in err
