"""``qsuite ctl algo …`` and ``qsuite ctl strategy …``: arguments → commands, and how
parents, their children, TCA, algorithm kinds and strategies are printed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from app import ctl
from app.cli import build_parser
from app.ctl import VERBS, render
from engine.bus.commands import Command, Result
from engine.bus.commands.algos import (
    AlgoDetail,
    AlgoKind,
    AlgoKinds,
    AlgoList,
    AlgoTca,
    AlgoView,
    CancelAlgo,
    ChildRow,
    DeleteStrategy,
    EnableStrategy,
    GetAlgoTca,
    ListAlgoKinds,
    ListAlgos,
    ListStrategies,
    ModifyAlgo,
    PauseAlgo,
    ResumeAlgo,
    SetStrategy,
    ShowAlgo,
    StartAlgo,
    StrategyList,
    StrategyView,
)

D = Decimal
NS = 1_700_000_000 * 10**9  # 2023-11-14 22:13:20 UTC
START = ["algo", "start", "twap", "desk1", "AAPL", "buy", "1000"]
STRATEGY = [
    "strategy", "set", "rsi_dip", "--rule", "rsi_cross", "--algo", "twap",
    "--account", "desk1", "--side", "buy", "--qty", "100",
]  # fmt: skip


def command(*argv: str) -> object:
    args = build_parser().parse_args(["ctl", *argv])
    built, process = VERBS[args.verb].build(args)
    assert process is None
    return built


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["ctl", *argv])
    assert info.value.code == 2
    return capsys.readouterr().err


def view(**changes: Any) -> AlgoView:
    fields: dict[str, Any] = {
        "algo_id": "twap-1",
        "algo_type": "twap",
        "account": "desk1",
        "symbol": "AAPL",
        "side": "buy",
        "qty": D(1000),
        "state": "running",
        "params": '{"duration_s":600}',
        "filled": D(400),
        "avg_price": D("100.25"),
        "working": D(100),
        "children": 3,
        "expected": D(450),
        "ts_created": NS,
        "ts_started": NS,
    }
    return AlgoView(**{**fields, **changes})


def strategy(**changes: Any) -> StrategyView:
    fields: dict[str, Any] = {
        "name": "rsi_dip",
        "signal_rule": "rsi_cross",
        "symbol": "AAPL",
        "condition": '{"indicator":"rsi_14","below":30}',
        "algo_type": "twap",
        "algo_params": '{"duration_s":600}',
        "account": "desk1",
        "side": "buy",
        "qty": D(100),
        "cooldown_s": 300,
        "max_triggers_per_day": 3,
        "enabled": True,
        "triggers_today": 1,
        "last_triggered_ns": NS,
    }
    return StrategyView(**{**fields, **changes})


# --- algo: arguments → commands ------------------------------------------------------------


def test_algo_start_when_no_options_then_empty_params_now() -> None:
    assert command(*START) == StartAlgo(
        algo_type="twap", account="desk1", symbol="AAPL", side="buy", qty=D(1000), params="{}"
    )


def test_algo_start_when_set_then_values_as_json_else_strings() -> None:
    built = command(
        *START, "--set", "duration_s=600", "--set", "aggressiveness=passive",
        "--set", "limit_price=101.50", "--set", "urgent=true", "--set", "end_at_ns=null",
        "--set", "weights=[1, 2]", "--set", 'tag="600"', "--set", "note = a b ",
        "--start-at", "2024-01-31T14:30", "--command-id", "k1",
    )  # fmt: skip

    assert built == StartAlgo(
        algo_type="twap",
        account="desk1",
        symbol="AAPL",
        side="buy",
        qty=D(1000),
        params='{"duration_s":600,"aggressiveness":"passive","limit_price":101.50,'
        '"urgent":true,"end_at_ns":null,"weights":[1,2],"tag":"600","note":"a b"}',
        start_at_ns=1_706_711_400 * 10**9,
        command_id="k1",
    )


def test_algo_start_when_params_and_set_then_merged_set_wins() -> None:
    built = command(
        *START, "--params", '{"duration_s": 300, "aggressiveness": "touch"}',
        "--set", "duration_s=600", "--set", "limit_price=99.5",
    )  # fmt: skip

    assert isinstance(built, StartAlgo)
    assert built.params == '{"duration_s":600,"aggressiveness":"touch","limit_price":99.5}'


def test_algo_start_when_start_at_has_offset_then_converted_to_utc() -> None:
    built = command(*START, "--start-at", "2024-01-31T15:30+01:00")

    assert isinstance(built, StartAlgo)
    assert built.start_at_ns == 1_706_711_400 * 10**9


@pytest.mark.parametrize("bad", ["duration_s", "=600", " =x"])
def test_algo_start_when_set_not_an_assignment_then_usage_error(
    capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    err = usage_error(capsys, *START, "--set", bad)

    assert "is not like duration_s=600" in err


@pytest.mark.parametrize(
    ("params", "message"),
    [("{duration_s: 600}", "is not JSON"), ("[600]", "is not a JSON object")],
)
def test_algo_start_when_params_not_a_json_object_then_usage_error(
    capsys: pytest.CaptureFixture[str], params: str, message: str
) -> None:
    assert message in usage_error(capsys, *START, "--params", params)


@pytest.mark.parametrize(
    "argv",
    [
        ["algo", "start", "twap", "desk1", "AAPL", "hold", "1"],
        ["algo", "start", "twap", "desk1", "AAPL", "buy", "ten"],
        [*START, "--start-at", "tomorrow"],
        ["algo", "pause"],
        ["algo", "list", "--state", "sleeping"],
        ["algo", "stop", "twap-1"],
        ["algo"],
    ],
)
def test_algo_when_arguments_bad_then_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    usage_error(capsys, *argv)


def test_algo_pause_resume_cancel_then_commands_with_reason_and_id() -> None:
    assert command("algo", "pause", "twap-1", "--reason", "news") == PauseAlgo(
        algo_id="twap-1", reason="news"
    )
    assert command("algo", "resume", "twap-1", "--command-id", "k2") == ResumeAlgo(
        algo_id="twap-1", command_id="k2"
    )
    assert command("algo", "cancel", "twap-1") == CancelAlgo(algo_id="twap-1", reason="")
    assert command("algo", "cancel", "twap-1", "--reason", "done", "--command-id", "k3") == (
        CancelAlgo(algo_id="twap-1", reason="done", command_id="k3")
    )


def test_algo_modify_when_qty_and_set_then_changes_only() -> None:
    built = command(
        "algo", "modify", "twap-1", "--qty", "1500", "--set", "limit_price=101.5",
        "--set", "end_at_ns=null", "--command-id", "k4",
    )  # fmt: skip

    assert built == ModifyAlgo(
        algo_id="twap-1",
        qty=D(1500),
        params='{"limit_price":101.5,"end_at_ns":null}',
        command_id="k4",
    )
    assert command("algo", "modify", "twap-1", "--qty", "5") == ModifyAlgo(
        algo_id="twap-1", qty=D(5), params="{}"
    )


def test_algo_modify_when_nothing_to_change_then_exits_with_hint() -> None:
    with pytest.raises(SystemExit, match="give --qty and/or --set"):
        command("algo", "modify", "twap-1")


def test_algo_list_show_tca_kinds_then_read_commands() -> None:
    assert command("algo", "list") == ListAlgos(state=None, active_only=False, limit=50)
    assert command("algo", "list", "--state", "paused", "--active", "--limit", "5") == ListAlgos(
        state="paused", active_only=True, limit=5
    )
    assert command("algo", "show", "twap-1") == ShowAlgo(algo_id="twap-1")
    assert command("algo", "tca", "twap-1", "--json") == GetAlgoTca(algo_id="twap-1")
    assert command("algo", "kinds") == ListAlgoKinds()


# --- strategy: arguments → commands --------------------------------------------------------


def test_strategy_set_when_only_required_then_defaults() -> None:
    assert command(*STRATEGY) == SetStrategy(
        name="rsi_dip",
        signal_rule="rsi_cross",
        algo_type="twap",
        account="desk1",
        side="buy",
        qty=D(100),
    )


def test_strategy_set_when_every_option_then_condition_and_algo_params_as_json() -> None:
    built = command(
        *STRATEGY, "--symbol", "AAPL", "--when", '{"indicator": "rsi_14", "below": 30.5}',
        "--params", '{"duration_s": 300}', "--set", "aggressiveness=passive",
        "--cooldown", "600", "--max-per-day", "2", "--disabled", "--command-id", "k5",
    )  # fmt: skip

    assert built == SetStrategy(
        name="rsi_dip",
        signal_rule="rsi_cross",
        symbol="AAPL",
        condition='{"indicator":"rsi_14","below":30.5}',
        algo_type="twap",
        algo_params='{"duration_s":300,"aggressiveness":"passive"}',
        account="desk1",
        side="buy",
        qty=D(100),
        cooldown_s=600,
        max_triggers_per_day=2,
        enabled=False,
        command_id="k5",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*STRATEGY, "--when", "below 30"], "is not JSON"),
        ([*STRATEGY, "--set", "duration_s"], "is not like duration_s=600"),
        ([*STRATEGY, "--side", "hold"], "invalid choice"),
        (["strategy", "set", "rsi_dip", "--rule", "rsi_cross"], "required"),
    ],
)
def test_strategy_set_when_arguments_bad_then_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in usage_error(capsys, *argv)


def test_strategy_enable_disable_delete_list_then_commands() -> None:
    assert command("strategy", "enable", "rsi_dip") == EnableStrategy(name="rsi_dip", enabled=True)
    assert command("strategy", "disable", "rsi_dip", "--command-id", "k6") == EnableStrategy(
        name="rsi_dip", enabled=False, command_id="k6"
    )
    assert command("strategy", "delete", "rsi_dip") == DeleteStrategy(name="rsi_dip")
    assert command("strategy", "list") == ListStrategies()


# --- --json ------------------------------------------------------------------------------


class FakeClient:
    """Stands in for ``QSuiteClient``: constructed like it, answers every command with
    ``reply``."""

    def __init__(self, reply: Result) -> None:
        self.reply = reply
        self.sent: list[Command] = []

    def __call__(self, *_: object, **__: object) -> FakeClient:
        return self

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def send(self, command: Command, process: str | None = None) -> Result:
        self.sent.append(command)
        return self.reply


def test_run_when_kinds_json_then_schemas_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = '{"type":"object","properties":{"duration_s":{"type":"number"}}}'
    kinds = AlgoKinds(
        kinds=[AlgoKind(kind="twap", version=1, description="even slices", params_schema=schema)]
    )
    client = FakeClient(kinds)
    monkeypatch.setattr(ctl, "QSuiteClient", client)
    args = build_parser().parse_args(["ctl", "algo", "kinds", "--json"])

    assert ctl.run(args, settings=None) == 0  # type: ignore[arg-type]

    assert client.sent == [ListAlgoKinds()]
    assert msgspec.json.decode(capsys.readouterr().out, type=AlgoKinds) == kinds


# --- rendering -----------------------------------------------------------------------------


def test_render_algo_list_then_one_row_per_parent(capsys: pytest.CaptureFixture[str]) -> None:
    failed = view(
        algo_id="pov-2",
        algo_type="pov",
        state="failed",
        reason="no_market",
        avg_price=None,
        filled=D(0),
        working=D(0),
        children=0,
    )

    render(AlgoList(algos=[view(), failed]))

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID", "TYPE", "SIDE", "QTY", "SYMBOL", "STATE", "FILLED", "AVG", "WORKING",
        "CHILDREN", "REASON",
    ]  # fmt: skip
    assert lines[1].split() == [
        "twap-1", "twap", "buy", "1000", "AAPL", "RUNNING", "400", "100.25", "100", "3", "-",
    ]  # fmt: skip
    assert lines[2].split() == [
        "pov-2", "pov", "buy", "1000", "AAPL", "FAILED", "0", "-", "0", "0", "no_market",
    ]  # fmt: skip


def test_render_algo_list_when_empty_then_none(capsys: pytest.CaptureFixture[str]) -> None:
    render(AlgoList(algos=[]))

    assert capsys.readouterr().out == "(none)\n"


def test_render_algo_view_then_short_block(capsys: pytest.CaptureFixture[str]) -> None:
    render(view())

    assert capsys.readouterr().out.splitlines() == [
        "twap-1: twap buy 1000 AAPL for desk1, RUNNING",
        "filled: 400 / 1000 (40%)  avg: 100.25  working: 100  children: 3  expected by now: 450",
        'params: {"duration_s":600}',
        "created: 2023-11-14 22:13  started: 2023-11-14 22:13  finished: -",
    ]


def test_render_algo_view_when_ended_by_strategy_then_reason_and_strategy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render(
        view(
            state="cancelled",
            reason="operator",
            expected=None,
            avg_price=None,
            filled=D(0),
            ts_started=None,
            ts_finished=NS + 60 * 10**9,
            strategy="rsi_dip",
        )
    )

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "twap-1: twap buy 1000 AAPL for desk1, CANCELLED (operator)"
    assert out[1] == "filled: 0 / 1000 (0%)  avg: -  working: 100  children: 3"
    assert out[3] == "created: 2023-11-14 22:13  started: -  finished: 2023-11-14 22:14"
    assert out[4] == "started by strategy: rsi_dip"


def test_render_algo_detail_then_block_and_children_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    child = ChildRow(
        client_order_id="twap-1-0",
        slice_index=0,
        qty=D(100),
        price=D("100.2"),
        status="partially_filled",
        filled_qty=D(40),
        avg_price=D("100.2"),
        ts_created=NS,
    )

    render(AlgoDetail(algo=view(), children=[child]))

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "twap-1: twap buy 1000 AAPL for desk1, RUNNING"
    assert lines[4] == ""
    assert lines[5].split() == [
        "SLICE", "ID", "QTY", "PRICE", "STATUS", "FILLED", "AVG", "CREATED",
    ]  # fmt: skip
    assert lines[6].split() == [
        "0", "twap-1-0", "100", "100.2", "PARTIALLY_FILLED", "40", "100.2", "2023-11-14", "22:13",
    ]  # fmt: skip


def test_render_algo_tca_then_bps_and_percentages(capsys: pytest.CaptureFixture[str]) -> None:
    render(
        AlgoTca(
            algo_id="twap-1",
            final=True,
            side="buy",
            qty=D(1000),
            filled=D(400),
            fill_rate=0.4,
            avg_price=D("100.25"),
            arrival_price=D("100.00"),
            shortfall_bps=25.0,
            interval_vwap=D("100.1"),
            slippage_vs_vwap_bps=14.98501,
            market_volume=D(8000),
            participation=0.05,
            duration_s=600.0,
            children=3,
        )
    )

    assert capsys.readouterr().out.splitlines() == [
        "algo: twap-1 (final)",
        "side: buy",
        "qty: 1000",
        "filled: 400",
        "fill rate: 40.0%",
        "avg price: 100.25",
        "arrival price: 100.00",
        "shortfall vs arrival: 25.00 bps",
        "interval vwap: 100.1",
        "slippage vs vwap: 14.99 bps",
        "market volume: 8000",
        "participation: 5.0%",
        "duration: 600.0s",
        "children: 3",
    ]


def test_render_algo_tca_when_live_and_no_market_then_dashes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    render(
        AlgoTca(
            algo_id="twap-1",
            final=False,
            side="sell",
            qty=D(10),
            filled=D(0),
            fill_rate=0.0,
            avg_price=None,
            arrival_price=None,
            shortfall_bps=None,
            interval_vwap=None,
            slippage_vs_vwap_bps=None,
            market_volume=D(0),
            participation=None,
            duration_s=1.25,
            children=0,
        )
    )

    out = capsys.readouterr().out
    assert "algo: twap-1 (live, still running)" in out
    assert "shortfall vs arrival: -\n" in out and "participation: -\n" in out
    assert "avg price: -\n" in out and "fill rate: 0.0%\n" in out


def test_render_algo_kinds_then_table_without_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    render(
        AlgoKinds(
            kinds=[
                AlgoKind(
                    kind="twap", version=1, description="even slices", params_schema='{"a":1}'
                ),
                AlgoKind(kind="pov", version=2, description="follow volume", params_schema="{}"),
            ]
        )
    )

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KIND", "VERSION", "DESCRIPTION"]
    assert lines[1].split() == ["twap", "1", "even", "slices"]
    assert lines[2].split() == ["pov", "2", "follow", "volume"]


def test_render_strategies_then_table_row_each(capsys: pytest.CaptureFixture[str]) -> None:
    idle = strategy(
        name="any_sym",
        symbol=None,
        condition="{}",
        enabled=False,
        triggers_today=0,
        last_triggered_ns=None,
    )

    render(StrategyList(strategies=[strategy(), idle]))
    render(idle)

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "NAME", "ENABLED", "RULE", "SYMBOL", "WHEN", "ALGO", "PARAMS", "ACCOUNT", "SIDE",
        "QTY", "COOLDOWN", "TODAY", "LAST",
    ]  # fmt: skip
    assert lines[1].split() == [
        "rsi_dip", "on", "rsi_cross", "AAPL", '{"indicator":"rsi_14","below":30}', "twap",
        '{"duration_s":600}', "desk1", "buy", "100", "300s", "1/3", "2023-11-14", "22:13",
    ]  # fmt: skip
    assert lines[2].split() == [
        "any_sym", "off", "rsi_cross", "any", "-", "twap", '{"duration_s":600}', "desk1",
        "buy", "100", "300s", "0/3", "-",
    ]  # fmt: skip
    assert lines[3].split() == lines[0].split()
    assert lines[4].split() == lines[2].split()
