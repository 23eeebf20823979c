"""Settings: ``config/default.toml`` < ``--config FILE`` < ``QSUITE__SECTION__KEY`` env vars.

The TOML file holds the values; the structs below hold the types, the allowed ranges and
the meaning of each key. A bad value stops start-up with a :class:`ConfigError` that
names the dotted key and what is allowed.
"""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from engine.errors import ConfigError
from engine.intervals import INTERVAL_SECONDS

CONFIG_DIR = Path(
    os.environ.get("QSUITE_CONFIG_DIR", Path(__file__).resolve().parents[1] / "config")
)
ENV_PREFIX = "QSUITE__"

Endpoint = Annotated[str, msgspec.Meta(pattern=r"^(tcp://[^\s:]+:\d{1,5}|ipc://\S+|inproc://\S+)$")]
OptionalEndpoint = Annotated[
    str, msgspec.Meta(pattern=r"^((tcp://[^\s:]+:\d{1,5}|ipc://\S+|inproc://\S+))?$")
]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]

#: The engine process slots. Each one is started by the supervisor and beats on
#: ``sys.heartbeat.<name>``. ``ui`` is managed separately (see :class:`UiSettings`).
ENGINE_PROCESSES = ("bus", "feed", "analysis", "execution", "venue", "scheduler")


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class AppSettings(_Section, frozen=True):
    data_dir: str
    """Directory of the database, caches, logs and journals."""


class BusSettings(_Section, frozen=True):
    xsub: Endpoint
    """Where publishers connect (the proxy binds it)."""
    xpub: Endpoint
    """Where subscribers connect (the proxy binds it)."""
    capture: OptionalEndpoint
    """Optional PUB endpoint that mirrors every message crossing the proxy."""
    hwm: Annotated[int, msgspec.Meta(ge=1)]
    """High-water mark of bus sockets, in messages."""


class ControlSettings(_Section, frozen=True):
    timeout_ms: Annotated[int, msgspec.Meta(ge=10, le=600_000)]
    retries: Annotated[int, msgspec.Meta(ge=1, le=100)]
    max_message_bytes: Annotated[int, msgspec.Meta(ge=1024)]


class DatabaseSettings(_Section, frozen=True):
    url: str
    """SQLAlchemy URL; empty means SQLite in the data dir."""
    auto_migrate: bool


class LogSettings(_Section, frozen=True):
    level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"]
    dir: str


class MetricsSettings(_Section, frozen=True):
    enabled: bool
    host: str


class SupervisorSettings(_Section, frozen=True):
    control: Endpoint
    metrics_port: Port
    heartbeat_interval_s: PositiveFloat
    heartbeat_timeout_s: PositiveFloat
    startup_grace_s: PositiveFloat
    restart_backoff_initial_s: PositiveFloat
    restart_backoff_max_s: PositiveFloat
    stop_timeout_s: PositiveFloat


class ProcessSettings(_Section, frozen=True):
    control: Endpoint
    """ROUTER endpoint this process serves control commands on."""
    metrics_port: Port
    """Port of this process's Prometheus endpoint (0 picks a free one)."""
    enabled: bool


Interval = Literal[
    "1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo"
]
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Ticker = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\-=^_]+$")]


class FeedSettings(_Section, frozen=True):
    watchlist: Annotated[list[Ticker], msgspec.Meta(min_length=1)]
    interval: str
    """One of :data:`engine.intervals.INTERVAL_SECONDS` (checked at load)."""
    source: Literal["yahoo", "replay", "synthetic"]
    fallback: Literal["synthetic", "cached", "none"]
    poll_interval_s: Annotated[float, msgspec.Meta(ge=1.0)]
    tick_interval_s: Annotated[float, msgspec.Meta(ge=0.05)]
    quote_refresh_s: Annotated[float, msgspec.Meta(ge=0)]
    """Simulated market: a symbol without a trade for this long has its prevailing quote
    published again (0: quotes only with trades)."""
    replay_file: str
    replay_speed: Annotated[float, msgspec.Meta(ge=0)]
    scenario: Literal[
        "calm", "volatile", "trending_up", "trending_down", "flash_crash", "illiquid", "gap_open"
    ]
    seed: int
    start_price: PositiveFloat
    request_timeout_s: PositiveFloat
    min_request_spacing_s: Annotated[float, msgspec.Meta(ge=0)]
    breaker_failure_threshold: Annotated[int, msgspec.Meta(ge=1)]
    breaker_cool_down_s: PositiveFloat
    breaker_max_cool_down_s: PositiveFloat
    cache_size_mb: Annotated[int, msgspec.Meta(ge=1)]


class SyncSettings(_Section, frozen=True):
    backfill_on_start: bool
    backfill_interval: str
    backfill_days: Annotated[int, msgspec.Meta(ge=1, le=36500)]
    daily_backfill_at: ClockTime
    fundamentals_at: ClockTime
    gap_repair_every_s: Annotated[float, msgspec.Meta(ge=10)]
    misfire_grace_s: Annotated[float, msgspec.Meta(ge=1)]
    snapshot_every_s: Annotated[float, msgspec.Meta(ge=0)]
    """How often the live account's performance is snapshotted; 0: never."""


class AnalysisSettings(_Section, frozen=True):
    intervals: list[str]
    indicators: list[str]
    rules: list[str]
    plugins: list[str]
    history_bars: Annotated[int, msgspec.Meta(ge=10, le=1_000_000)]
    snapshot_bars: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    flush_interval_s: PositiveFloat
    preview_interval_s: Annotated[float, msgspec.Meta(ge=0.0)]


class VenueSettings(_Section, frozen=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9_]{1,16}$")]
    order_entry: Endpoint
    self_match: Literal["cancel_newest", "cancel_oldest", "cancel_both"]
    tick_size: Decimal
    lot_size: Decimal
    base_liquidity: PositiveFloat
    volatility: PositiveFloat
    levels: Annotated[int, msgspec.Meta(ge=1, le=50)]
    level_spacing_ticks: Annotated[int, msgspec.Meta(ge=1)]
    refill_s: Annotated[float, msgspec.Meta(ge=0)]
    book_depth: Annotated[int, msgspec.Meta(ge=1, le=100)]
    snapshot_interval_s: PositiveFloat
    flow: bool
    day_end_utc: ClockTime
    seed_quote_max_age_s: Annotated[float, msgspec.Meta(ge=0)]
    """At start the market makers quote around the feed's cached quotes no older than
    this (0: wait for the feed's next quote)."""

    def __post_init__(self) -> None:
        for key in ("tick_size", "lot_size"):
            value = getattr(self, key)
            if not value.is_finite() or value <= 0:
                raise ValueError(f"venue.{key} must be a positive decimal, got {value}")


class ExecutionSettings(_Section, frozen=True):
    session: Annotated[str, msgspec.Meta(pattern=r"^\S{1,64}$")]
    """The order manager's session name at the venue (reports of its orders go to it)."""
    logon_retry_s: PositiveFloat
    """How often ``Logon`` is sent again until the venue answers ``LoggedOn``."""
    heartbeat_s: PositiveFloat
    """After this long without a word from the venue, ask it for an (empty) status."""
    timeout_s: PositiveFloat
    """Nothing heard from the venue for this long: not connected; log on again."""
    reconcile_interval_s: Annotated[float, msgspec.Meta(ge=0)]
    """Reconcile the open orders with the venue this often; 0: only after a logon, a
    venue restart, a sequence gap or a report that does not add up."""

    def __post_init__(self) -> None:
        if self.timeout_s <= self.heartbeat_s:
            raise ValueError("execution.timeout_s must be larger than execution.heartbeat_s")


class RiskSettings(_Section, frozen=True):
    default_accounts: list[Annotated[str, msgspec.Meta(min_length=1, max_length=32)]]
    """Accounts given QSuite's default limits (``engine.risk.profile.DEFAULT_PROFILE``)
    when they have no stored profile: stored and audited at the execution process's
    start. Any other account without a profile is denied (fail closed)."""
    engine_orders_per_s: PositiveFloat | None
    """Submits and modifies per second of the whole engine (cancels never count)."""
    participation_window_s: PositiveFloat
    """Window of market volume for the participation limit, seconds."""
    alert_interval_s: PositiveFloat
    """A repeating alert (same account and limit) goes out at most this often."""


class AlgoSettings(_Section, frozen=True):
    tick_s: PositiveFloat
    """How often the engine looks for algorithms whose wake-up time has come."""
    progress_interval_s: PositiveFloat
    """``AlgoProgress`` of every running algorithm at least this often."""
    save_interval_s: PositiveFloat
    """Market progress (volume, notional) of running algorithms saved this often."""
    retry_s: PositiveFloat
    """After a child the risk gate refused for a passing reason (throttle, no reference
    price …), ask the algorithm again after this long."""
    behind_threshold: Annotated[float, msgspec.Meta(gt=0, lt=1)]
    """Behind schedule by more than this share of the parent …"""
    behind_grace_s: PositiveFloat
    """… for this long raises an ``algo.behind_schedule`` alert."""
    stall_after_s: PositiveFloat
    """A running algorithm without a fill for this long raises ``algo.stalled``."""


class UiSettings(_Section, frozen=True):
    host: str
    port: Port
    native: bool
    storage_secret: str
    session_timeout_min: Annotated[int, msgspec.Meta(ge=1, le=10_080)]
    """A console login lasts this many minutes after the user's last page or action
    (sliding); then the tab goes back to the login page."""
    login_max_failures: Annotated[int, msgspec.Meta(ge=1, le=100)]
    """Failed logins in a row before a user name is locked out (see app.login_guard)."""
    login_lockout_s: Annotated[float, msgspec.Meta(ge=1, le=900)]
    """The first lock's length; each further failure doubles it, up to 15 minutes."""


class Settings(_Section, frozen=True):
    app: AppSettings
    bus: BusSettings
    control: ControlSettings
    database: DatabaseSettings
    log: LogSettings
    metrics: MetricsSettings
    supervisor: SupervisorSettings
    processes: dict[str, ProcessSettings]
    feed: FeedSettings
    sync: SyncSettings
    analysis: AnalysisSettings
    venue: VenueSettings
    execution: ExecutionSettings
    risk: RiskSettings
    algos: AlgoSettings
    ui: UiSettings

    @property
    def data_path(self) -> Path:
        return Path(self.app.data_dir).expanduser().resolve()

    @property
    def price_cache_path(self) -> Path:
        """The feed's price cache (latest quotes and bars), shared by every process."""
        return self.data_path / "price-cache"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_path / 'qsuite.db'}"

    @property
    def log_path(self) -> Path:
        return (
            Path(self.log.dir).expanduser().resolve() if self.log.dir else self.data_path / "logs"
        )

    def process(self, name: str) -> ProcessSettings:
        try:
            return self.processes[name]
        except KeyError:
            raise ConfigError(
                f"processes.{name}", f"no such process; known: {', '.join(sorted(self.processes))}"
            ) from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _parse_env_value(raw: str) -> Any:
    """Env values are TOML scalars when they parse as one (``7``, ``true``), else strings."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if len(path) < 2 or not all(path):
            raise ConfigError(name, "environment overrides look like QSUITE__SECTION__KEY")
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _parse_env_value(raw)
    return tree


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("--config", f"file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None


_PATH_RE = re.compile(r"at `\$\.?(.*)`$")


_UNKNOWN_RE = re.compile(r"unknown field `([^`]+)`")


def _key_of(error: msgspec.ValidationError, prefix: str = "") -> tuple[str, str]:
    text = str(error)
    match = _PATH_RE.search(text)
    parts = [prefix, match.group(1) if match else ""]
    unknown = _UNKNOWN_RE.search(text)
    if unknown:
        parts.append(unknown.group(1))
    key = ".".join(p for p in parts if p) or "<root>"
    message = _PATH_RE.sub("", text).strip(" -")
    if unknown:
        message = "unknown setting; check the spelling against config/default.toml"
    return key, message


def load_settings(
    config_file: str | Path | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build the settings of this process; raises :class:`ConfigError` naming a bad key."""
    data = _read_toml(CONFIG_DIR / "default.toml")
    if config_file:
        data = _merge(data, _read_toml(Path(config_file)))
    data = _merge(data, _env_overrides(dict(os.environ if environ is None else environ)))
    if overrides:
        data = _merge(data, overrides)
    processes = data.get("processes")
    if isinstance(processes, dict):
        for name, section in processes.items():
            if name not in ENGINE_PROCESSES:
                raise ConfigError(
                    f"processes.{name}", f"unknown process; allowed: {', '.join(ENGINE_PROCESSES)}"
                )  # validated one by one to name the process
            try:
                msgspec.convert(section, ProcessSettings)
            except msgspec.ValidationError as exc:
                key, message = _key_of(exc, f"processes.{name}")
                raise ConfigError(key, message) from None
    try:
        settings = msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        key, message = _key_of(exc)
        raise ConfigError(key, message) from None
    missing = sorted(set(ENGINE_PROCESSES) - set(settings.processes))
    if missing:
        raise ConfigError(f"processes.{missing[0]}", "every engine process needs a section")
    for key, interval in (
        ("feed.interval", settings.feed.interval),
        ("sync.backfill_interval", settings.sync.backfill_interval),
        *(("analysis.intervals", i) for i in settings.analysis.intervals),
    ):
        if interval not in INTERVAL_SECONDS:
            raise ConfigError(
                key, f"unknown interval {interval!r}; use one of {', '.join(INTERVAL_SECONDS)}"
            )
    if settings.feed.source == "replay" and not settings.feed.replay_file:
        raise ConfigError("feed.replay_file", "the replay source needs a CSV or Parquet file")
    if settings.supervisor.heartbeat_timeout_s <= settings.supervisor.heartbeat_interval_s:
        raise ConfigError(
            "supervisor.heartbeat_timeout_s", "must be larger than supervisor.heartbeat_interval_s"
        )
    return settings


def settings_to_toml_dict(settings: Settings) -> dict[str, Any]:
    """Plain nested dict of the settings (for writing a config file a child process reads)."""
    return msgspec.to_builtins(settings)
