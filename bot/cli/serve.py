"""``classpulse serve``: the REST API, the dashboard and ``/metrics`` in one aiohttp server.

Binds 127.0.0.1 unless ``--host`` says otherwise. On its first start it creates the API token and
prints it once, with a dashboard link that carries it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import TextIO

from aiohttp import web

from bot.cli.room import add_room
from bot.cli.worker import add_worker
from bot.launch import RAY_MISSING, ray_installed
from bot.logs import configure_logging
from bot.settings import LAUNCHERS, LOG_FORMATS, Settings
from bot.web.app import create_app
from bot.web.auth import ensure_api_token
from bot.web.keys import NEW_API_TOKEN
from bot.web.server import GuardedTCPSite, make_runner

logger = logging.getLogger(__name__)

SubParsers = argparse._SubParsersAction  # argparse exposes no public name


def add_serve(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="REST API, dashboard and /metrics (binds 127.0.0.1 unless --host)",
        description="Serves the API (/api, bearer token), the dashboard (/) and Prometheus metrics "
        "(/metrics). The token is created on the first start and shown once; "
        "$CLASSPULSE_API_TOKEN sets it instead.",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; $CLASSPULSE_HOST)")
    parser.add_argument(
        "--port", type=int, help="port (default 8080, 0 for any free; $CLASSPULSE_PORT)"
    )
    parser.add_argument("--database-url", help="SQLAlchemy URL (default $CLASSPULSE_DATABASE_URL)")
    parser.add_argument("--data-dir", help="per-user data folder (default $CLASSPULSE_DATA_DIR)")
    parser.add_argument(
        "--new-token", action="store_true", help="replace the API token; show the new one"
    )
    parser.add_argument(
        "--history-only",
        action="store_true",
        help="serve the history and dashboard without running bots (no inference process)",
    )
    parser.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        help="where bots run: local (default: this server's processes) or ray (one Ray actor "
        "per class on a cluster; pip install 'classpulse[ray]'; $CLASSPULSE_LAUNCHER)",
    )
    parser.add_argument(
        "--ray-address",
        help="Ray cluster to join, HOST:PORT (default: start a local one; $CLASSPULSE_RAY_ADDRESS)",
    )
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="text (default) or json lines")
    parser.add_argument("--log-level", help="DEBUG, INFO (default), WARNING or ERROR")
    parser.set_defaults(handler=run_serve)


#: Registered by ``bot.cli._subcommands``.
SERVE_SUBCOMMANDS: list[Callable[[SubParsers], None]] = [add_serve, add_room, add_worker]


def run_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        data_dir=args.data_dir,
        log_format=args.log_format,
        log_level=args.log_level,
        run_bots=False if args.history_only else None,
        launcher=args.launcher,
        ray_address=args.ray_address,
    )
    if settings.launcher == "ray" and settings.run_bots and not ray_installed():
        print(f"classpulse: {RAY_MISSING}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings, new_token=args.new_token))
    return 0


async def serve(settings: Settings, *, new_token: bool = False, out: TextIO | None = None) -> None:
    """Runs the server until SIGINT or SIGTERM, then stops the bots and closes the storage."""
    out = out or sys.stdout
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:  # before the "serving" line: whoever reads it may signal at once
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(number, stop.set)
    shown = ensure_api_token(settings, rotate=True)[1] if new_token else None
    app = create_app(settings)
    shown = shown or app[NEW_API_TOKEN]
    runner = make_runner(app, header_timeout_s=settings.header_timeout_s, handle_signals=False)
    try:
        await runner.setup()
        site = GuardedTCPSite(
            runner, settings.host, settings.port, header_timeout_s=settings.header_timeout_s
        )
        await site.start()
        port = site.port
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        base = f"http://{host}:{port}/"
        print(f"classpulse: serving {base} (dashboard), {base}api (API), {base}metrics", file=out)
        if shown:
            print(f"classpulse: API token (shown once, stored hashed): {shown}", file=out)
            print(f"classpulse: open {base}#token={shown}", file=out)
        out.flush()
        if not settings.binds_loopback_only:
            logger.warning(
                "listening on %s: anyone who reaches it can try the API; put HTTPS in front",
                settings.host,
            )
        await stop.wait()
    finally:
        await runner.cleanup()
        for number in signals:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(number)


def bound_port(site: web.BaseSite, wanted: int) -> int:
    """The port ``site`` listens on (``wanted`` 0 picks a free one)."""
    server = site._server  # aiohttp keeps the listening sockets here
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else wanted
