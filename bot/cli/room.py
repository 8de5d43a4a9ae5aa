"""``classpulse room open TITLE`` (and ``list``, ``close``): class rooms of a running ``serve``.

A room is served by the ``classpulse serve`` process (its pages, its video relay, the bot joining
it), so this command asks that server through its API, with the API token, rather than writing
to the database behind its back: the room is open the moment the links are printed, and the
server stays the one owner of what is open.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from bot.settings import API_TOKEN_ENV, Settings

SubParsers = argparse._SubParsersAction  # argparse exposes no public name
SERVER_ENV = "CLASSPULSE_SERVER"


class RoomCommandError(Exception):
    """Printed as one line; exit code 2."""


def add_room(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "room",
        help="open, list or close class rooms of a running classpulse serve",
        description="Talks to a running `classpulse serve` through its API: set "
        f"${API_TOKEN_ENV} to the API token it showed on its first start. The server is "
        f"--server, else ${SERVER_ENV}, else http://$CLASSPULSE_HOST:$CLASSPULSE_PORT/ "
        "(default http://127.0.0.1:8080/).",
    )
    parser.add_argument("--server", help="the server's base URL (default: see above)")
    actions = parser.add_subparsers(dest="action", required=True)
    opened = actions.add_parser("open", help="open a room; prints its teacher and student links")
    opened.add_argument("title", help="the class's title, e.g. 'Math 7b'")
    actions.add_parser("list", help="the open rooms and their links")
    closed = actions.add_parser("close", help="close a room (everyone is disconnected)")
    closed.add_argument("room", help="the room's name as `room open` printed it")
    parser.set_defaults(handler=run_room)


def run_room(args: argparse.Namespace) -> int:
    try:
        server = _server(args.server)
        if args.action == "open":
            room = _call(server, "POST", "/api/rooms", {"title": args.title})
            _print_room(room)
        elif args.action == "list":
            rooms = _call(server, "GET", "/api/rooms")["rooms"]
            if not rooms:
                print("no room is open")
            for number, room in enumerate(rooms):
                if number:
                    print()
                _print_room(room)
        else:
            _call(server, "DELETE", f"/api/rooms/{urllib.parse.quote(args.room, safe='')}")
            print(f"room {args.room} closed")
    except RoomCommandError as error:
        print(f"classpulse room: {error}", file=sys.stderr)
        return 2
    return 0


def _print_room(room: dict[str, Any]) -> None:
    print(f"room: {room['room']} ({room['title']})")
    print(f"teacher link (keep it secret): {room['teacher_url']}")
    print(f"student link: {room['student_url']}")
    print(
        "invite the bot: the dashboard's Rooms page, or POST /api/bots "
        f'{{"meeting_url": "builtin:{room["room"]}", "teacher": NAME}}'
    )


def _server(given: str | None) -> str:
    if given or os.environ.get(SERVER_ENV, "").strip():
        url = (given or os.environ[SERVER_ENV]).strip()
    else:
        settings = Settings.from_env()
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        url = f"http://{host}:{settings.port or 8080}"
    if not url.startswith(("http://", "https://")):
        raise RoomCommandError(f"Expected an http:// or https:// server URL. Received: {url!r}")
    return url.rstrip("/")


def _call(server: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    token = os.environ.get(API_TOKEN_ENV, "").strip()
    if not token:
        raise RoomCommandError(
            f"Expected the API token in ${API_TOKEN_ENV} (classpulse serve showed it on its "
            "first start; `serve --new-token` makes a new one). Received: none"
        )
    request = urllib.request.Request(
        server + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as error:
        raise RoomCommandError(_message(error)) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RoomCommandError(
            f"Expected classpulse serve at {server}. Received: {reason}"
        ) from None
    return json.loads(raw) if raw else None


def _message(error: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(error.read())["message"]
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {error.code}"
    return str(message)
