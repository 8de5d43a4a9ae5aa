"""``classpulse room open|list|close`` in-process against the app served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web

from bot.cli import main
from bot.live import LiveFeed
from bot.settings import Settings
from bot.web.app import create_app
from storage import Storage, Writer
from tests.web.conftest import TOKEN
from tests.web.fakes import FakeBotManager
from tests.web.served import ServedApp


@pytest.fixture
def served(settings: Settings, storage: Storage, writer: Writer) -> Iterator[ServedApp]:
    def make() -> web.Application:
        feed = LiveFeed()
        return create_app(settings, storage=storage, bots=FakeBotManager(writer, feed), feed=feed)

    with ServedApp(make) as app:
        yield app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_room_open_prints_the_links_list_shows_them_close_closes(
    served: ServedApp, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLASSPULSE_API_TOKEN", TOKEN)
    code, out, err = run(capsys, "room", "--server", served.url, "open", "Math 7b")
    assert code == 0, err
    lines = out.splitlines()
    name = lines[0].removeprefix("room: ").split()[0]
    assert lines[0] == f"room: {name} (Math 7b)" and name.startswith("math-7b-")
    assert lines[1].startswith(f"teacher link (keep it secret): {served.url}/rooms/{name}#teacher=")
    assert lines[2] == f"student link: {served.url}/rooms/{name}"
    assert f"builtin:{name}" in lines[3]

    code, listed, _ = run(capsys, "room", "--server", served.url, "list")
    assert code == 0 and listed == out
    code, out, _ = run(capsys, "room", "--server", served.url, "close", name)
    assert code == 0 and out == f"room {name} closed\n"
    assert run(capsys, "room", "--server", served.url, "list")[1] == "no room is open\n"


def test_room_errors_are_one_line_naming_what_was_expected(
    served: ServedApp, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLASSPULSE_API_TOKEN", raising=False)
    code, _, err = run(capsys, "room", "--server", served.url, "open", "Math")
    assert code == 2 and "Expected the API token in $CLASSPULSE_API_TOKEN" in err

    monkeypatch.setenv("CLASSPULSE_API_TOKEN", "wrong-token-0123456789")
    code, _, err = run(capsys, "room", "--server", served.url, "open", "Math")
    assert code == 2 and "Bearer" in err and err.count("\n") == 1

    monkeypatch.setenv("CLASSPULSE_API_TOKEN", TOKEN)
    code, _, err = run(capsys, "room", "--server", served.url, "open", " ")
    assert code == 2 and err.startswith("classpulse room: Expected title")
    code, _, err = run(capsys, "room", "--server", served.url, "close", "nope")
    assert code == 2 and "Expected the name of an open room" in err
    code, _, err = run(capsys, "room", "--server", "http://127.0.0.1:1", "list")
    assert code == 2 and "Expected classpulse serve at http://127.0.0.1:1" in err
