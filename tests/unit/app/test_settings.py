from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import load_settings
from engine.errors import ConfigError


def test_load_settings_when_defaults_only_then_embedded_sqlite() -> None:
    settings = load_settings(environ={})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("/qsuite.db")
    assert set(settings.processes) == {"bus", "feed", "analysis", "execution", "venue", "scheduler"}


def test_load_settings_when_env_override_then_typed_value_wins() -> None:
    settings = load_settings(
        environ={
            "QSUITE__BUS__HWM": "42",
            "QSUITE__PROCESSES__FEED__CONTROL": "tcp://10.1.2.3:9000",
        }
    )
    assert settings.bus.hwm == 42
    assert settings.processes["feed"].control == "tcp://10.1.2.3:9000"


def test_load_settings_when_config_file_then_env_beats_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[database]\nurl = "postgresql+psycopg://db/x"\n[bus]\nhwm = 7\n')
    settings = load_settings(cfg, environ={"QSUITE__BUS__HWM": "9"})
    assert settings.database_url == "postgresql+psycopg://db/x"
    assert settings.bus.hwm == 9


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"QSUITE__BUS__HWM": "lots"}, "bus.hwm"),
        ({"QSUITE__BUS__HWM": "0"}, "bus.hwm"),
        ({"QSUITE__BUS__XPUB": "http://x:1"}, "bus.xpub"),
        ({"QSUITE__PROCESSES__FEED__METRICS_PORT": "70000"}, "processes.feed.metrics_port"),
        ({"QSUITE__PROCESSES__ROBOT__CONTROL": "tcp://a:1"}, "processes.robot"),
        ({"QSUITE__BUS__TYPO": "1"}, "bus.typo"),
        ({"QSUITE__LOG__LEVEL": "LOUD"}, "log.level"),
        ({"QSUITE__SUPERVISOR__HEARTBEAT_TIMEOUT_S": "0.5"}, "supervisor.heartbeat_timeout_s"),
        ({"QSUITE__NOSECTION": "1"}, "QSUITE__NOSECTION"),
    ],
)
def test_load_settings_when_bad_value_then_error_names_key(
    environ: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    assert info.value.key == key
    assert f"`{key}`" in str(info.value)


def test_load_settings_when_config_file_missing_or_broken_then_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[bus\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, environ={})
