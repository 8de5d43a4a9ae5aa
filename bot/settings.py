"""Configuration, read once: CLI flags over environment over defaults, in one frozen value.

Factories take the ``Settings`` they need (``create_app(settings)``); nothing reads the
environment after this module built them, so a test's settings are the whole story.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.session.settings import check_mode
from storage import DATABASE_URL_ENV, parse_database_url

#: The environment variables ``Settings.from_env`` reads.
DATA_DIR_ENV = "CLASSPULSE_DATA_DIR"
API_TOKEN_ENV = "CLASSPULSE_API_TOKEN"
HOST_ENV = "CLASSPULSE_HOST"
PORT_ENV = "CLASSPULSE_PORT"
LOG_FORMAT_ENV = "CLASSPULSE_LOG_FORMAT"
LOG_LEVEL_ENV = "CLASSPULSE_LOG_LEVEL"
MODEL_REPORT_ENV = "CLASSPULSE_MODEL_REPORT"
MAX_BOTS_ENV = "CLASSPULSE_MAX_BOTS"
MEDIA_WORKERS_ENV = "CLASSPULSE_MEDIA_WORKERS"
ALLOWED_MEETING_HOSTS_ENV = "CLASSPULSE_ALLOWED_MEETING_HOSTS"
ALLOWED_HOSTS_ENV = "CLASSPULSE_ALLOWED_HOSTS"
MODE_ENV = "CLASSPULSE_MODE"
LAUNCHER_ENV = "CLASSPULSE_LAUNCHER"
RAY_ADDRESS_ENV = "CLASSPULSE_RAY_ADDRESS"
RAY_CPUS_ENV = "CLASSPULSE_RAY_CPUS_PER_CLASS"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Where bots run (``bot.launch``): in the server's processes, or as Ray actors on a cluster.
LAUNCHERS = ("local", "ray")
#: A token given by setting must be hard to guess: at least this many characters.
MIN_TOKEN_LENGTH = 16


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/classpulse`` (``~/.local/share/classpulse`` when unset): the same folder
    the storage layer puts its default SQLite file in."""
    environ = os.environ if environ is None else environ
    data_home = environ.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
    return Path(data_home).expanduser() / "classpulse"


def default_model_report_dir() -> Path:
    """Where ``classpulse evaluate`` output is looked for by the dashboard's "about the model"
    page when no setting says otherwise: ``engine/weights/report`` beside the shipped weights."""
    import engine

    return Path(engine.__file__).resolve().parent / "weights" / "report"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the web app, the CLI and the bot session are configured with."""

    #: SQLAlchemy URL of the history database (SQLite file or PostgreSQL).
    database_url: str
    #: Per-user folder for the SQLite file and the hashed API token.
    data_dir: Path
    #: The API token when given by setting (``$CLASSPULSE_API_TOKEN``); ``None``: the hashed
    #: token kept in ``data_dir`` (created on first start).
    api_token: str | None = field(default=None, repr=False)
    #: Address and port ``classpulse serve`` binds; 127.0.0.1 unless told otherwise.
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: ``"text"`` for people, ``"json"`` for one JSON object per log line.
    log_format: str = "text"
    log_level: str = "INFO"
    #: Folder with the model's evaluation report and plots (``classpulse evaluate --output``).
    model_report_dir: Path | None = None
    #: ``classpulse serve`` runs bots (and the inference process); off: history only.
    run_bots: bool = True
    #: Bots running at once (``POST /api/bots`` answers 503 beyond it).
    max_bots: int = 10
    #: Meeting servers bots may be sent to (lower-case host names); empty: any.
    allowed_meeting_hosts: tuple[str, ...] = ()
    #: ``Host`` header values the server answers (names, with or without port): a page on
    #: another name that resolves here (DNS rebinding) gets 421. Empty: the bound address,
    #: ``localhost`` and ``127.0.0.1``.
    allowed_hosts: tuple[str, ...] = ()
    #: Seconds a client has to send a complete request line and headers (slowloris guard).
    header_timeout_s: float = 10.0
    #: The mode of a bot whose options name none: ``engagement`` or ``attention`` (no emotion
    #: model; ``$CLASSPULSE_MODE``). See ``bot.session.settings.MODES``.
    mode: str = "engagement"
    #: Media worker processes of the bot runtime (``$CLASSPULSE_MEDIA_WORKERS``; ``None``: one
    #: per core; 1: decode in the server's own process). See README "Capacity".
    media_workers: int | None = None
    #: Where bots run: ``local`` (the server's processes) or ``ray`` (one Ray actor per class).
    launcher: str = "local"
    #: The Ray cluster to join (``host:port``); ``None``: start a local one (``--launcher ray``).
    ray_address: str | None = None
    #: CPUs Ray reserves for each class's actor (``$CLASSPULSE_RAY_CPUS_PER_CLASS``).
    ray_num_cpus: float = 1.0
    #: Times Ray restarts a class's actor that died (the meeting resumes, the gap recorded).
    ray_max_restarts: int = 3

    def __post_init__(self) -> None:
        parse_database_url(self.database_url)  # raises ValueError naming what was wrong
        if (
            not isinstance(self.port, int)
            or isinstance(self.port, bool)
            or not 0 <= self.port <= 65535
        ):
            raise ValueError(
                f"Expected a port from 0 to 65535 (0: any free port). Received: {self.port!r}"
            )
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError(f"Expected a host name or IP address to bind. Received: {self.host!r}")
        if self.log_format not in LOG_FORMATS:
            raise ValueError(
                f"Expected a log format in {list(LOG_FORMATS)}. Received: {self.log_format!r}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(
                f"Expected a log level in {list(LOG_LEVELS)}. Received: {self.log_level!r}"
            )
        object.__setattr__(self, "log_level", self.log_level.upper())
        if (
            not isinstance(self.max_bots, int)
            or isinstance(self.max_bots, bool)
            or not 1 <= self.max_bots <= 1000
        ):
            raise ValueError(f"Expected max_bots from 1 to 1000. Received: {self.max_bots!r}")
        for name in ("allowed_meeting_hosts", "allowed_hosts"):
            hosts = tuple(h.strip().lower() for h in getattr(self, name) if h.strip())
            object.__setattr__(self, name, hosts)
        if not 0 < self.header_timeout_s <= 300:
            raise ValueError(
                f"Expected header_timeout_s in (0, 300]. Received: {self.header_timeout_s!r}"
            )
        if self.media_workers is not None and not (
            isinstance(self.media_workers, int) and 1 <= self.media_workers <= 256
        ):
            raise ValueError(
                f"Expected media_workers from 1 to 256. Received: {self.media_workers!r}"
            )
        if self.launcher not in LAUNCHERS:
            raise ValueError(
                f"Expected a launcher in {list(LAUNCHERS)}. Received: {self.launcher!r}"
            )
        if not 0 < self.ray_num_cpus <= 256:
            raise ValueError(
                f"Expected ray_num_cpus in (0, 256] CPUs per class. Received: {self.ray_num_cpus!r}"
            )
        object.__setattr__(self, "mode", check_mode(self.mode))
        if self.api_token is not None and len(self.api_token.strip()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"Expected an API token of at least {MIN_TOKEN_LENGTH} characters. "
                f"Received: {len(self.api_token.strip())} characters"
            )

    @property
    def binds_loopback_only(self) -> bool:
        """True when ``host`` is a loopback address or ``localhost``."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def host_names(self) -> frozenset[str]:
        """The ``Host`` names this server answers (without port)."""
        if self.allowed_hosts:
            return frozenset(self.allowed_hosts)
        return frozenset({self.host.lower(), "localhost", "127.0.0.1", "::1"})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); ``overrides`` that are not ``None``
        (CLI flags) win over the environment."""
        environ = os.environ if environ is None else environ
        data_dir_text = environ.get(DATA_DIR_ENV, "").strip()
        data_dir = Path(data_dir_text).expanduser() if data_dir_text else default_data_dir(environ)
        if overrides.get("data_dir") is not None:
            data_dir = Path(overrides["data_dir"]).expanduser()
        database_url = (
            environ.get(DATABASE_URL_ENV, "").strip() or f"sqlite:///{data_dir / 'classpulse.db'}"
        )
        report_text = environ.get(MODEL_REPORT_ENV, "").strip()
        values: dict[str, Any] = {
            "database_url": database_url,
            "data_dir": data_dir,
            "api_token": environ.get(API_TOKEN_ENV, "").strip() or None,
            "host": environ.get(HOST_ENV, "").strip() or DEFAULT_HOST,
            "port": _port(environ.get(PORT_ENV, "").strip() or str(DEFAULT_PORT)),
            "log_format": environ.get(LOG_FORMAT_ENV, "").strip().lower() or "text",
            "log_level": environ.get(LOG_LEVEL_ENV, "").strip() or "INFO",
            "run_bots": True,
            "max_bots": _count(environ.get(MAX_BOTS_ENV, "").strip() or "10"),
            "allowed_meeting_hosts": _hosts(environ.get(ALLOWED_MEETING_HOSTS_ENV, "")),
            "allowed_hosts": _hosts(environ.get(ALLOWED_HOSTS_ENV, "")),
            "mode": mode_from_env(environ),
            "media_workers": num_media_workers_from_env(environ)
            if environ.get(MEDIA_WORKERS_ENV, "").strip()
            else None,
            "launcher": environ.get(LAUNCHER_ENV, "").strip().lower() or "local",
            "ray_address": environ.get(RAY_ADDRESS_ENV, "").strip() or None,
            "ray_num_cpus": _cpus(environ.get(RAY_CPUS_ENV, "").strip() or "1"),
            "ray_max_restarts": 3,
            "model_report_dir": Path(report_text).expanduser()
            if report_text
            else default_model_report_dir(),
        }
        unknown = sorted(set(overrides) - set(values))
        if unknown:
            raise TypeError(f"Expected overrides among {sorted(values)}. Received: {unknown}")
        values.update(
            {
                key: value
                for key, value in overrides.items()
                if value is not None and key != "data_dir"
            }
        )
        if isinstance(values["model_report_dir"], str):
            values["model_report_dir"] = Path(values["model_report_dir"]).expanduser()
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def mode_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``$CLASSPULSE_MODE`` (default ``engagement``); a bad value fails naming the variable."""
    environ = os.environ if environ is None else environ
    return check_mode(environ.get(MODE_ENV, "").strip() or "engagement", MODE_ENV)


def _port(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"Expected {PORT_ENV} to be a port number. Received: {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"Expected {MAX_BOTS_ENV} to be a whole number. Received: {text!r}")
    return int(text)


def _cpus(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f"Expected {RAY_CPUS_ENV} to be a number of CPUs. Received: {text!r}"
        ) from None


def _hosts(text: str) -> tuple[str, ...]:
    """A comma-separated list of host names."""
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def num_media_workers_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``$CLASSPULSE_MEDIA_WORKERS`` when set (1: decode in the bot's own process), else one
    worker per core."""
    environ = os.environ if environ is None else environ
    text = environ.get(MEDIA_WORKERS_ENV, "").strip()
    if not text:
        return default_num_media_workers()
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise ValueError(
            f"Expected {MEDIA_WORKERS_ENV} to be a whole number from 1 to 256. Received: {text!r}"
        )
    return int(text)


def default_num_media_workers() -> int:
    """One worker per core the process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
