"""Bearer-token auth: every /api route refuses without the token; the token file holds a hash."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from bot.live import LiveFeed
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.auth import TOKEN_FILE, bearer_token, ensure_api_token
from bot.web.bots import UnavailableBotManager
from bot.web.keys import NEW_API_TOKEN
from bot.web.openapi import build_document
from storage import Storage
from tests.web.conftest import TOKEN


def _example_paths() -> list[tuple[str, str]]:
    paths = []
    for path, item in build_document()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        paths += [(method.upper(), concrete) for method in item]
    return [*paths, ("GET", "/api/no-such-route"), ("PUT", "/api/meetings")]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        f"Basic {TOKEN}",
        "Bearer",
        "Bearer wrong-token-0123456789",
        f"Bearer {TOKEN}x",
        TOKEN,
    ],
)
async def test_every_api_route_refuses_without_the_right_token(
    client: TestClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with ClientSession() as anonymous:
        for method, path in _example_paths():
            async with anonymous.request(
                method, client.make_url(path), headers=headers, json={}
            ) as response:
                assert response.status == 401, (method, path, authorization)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                body = await response.json()
                assert body["error"] == "unauthorized" and "Bearer" in body["message"]


async def test_pages_and_metrics_need_no_token_and_carry_security_headers(
    client: TestClient,
) -> None:
    async with ClientSession() as anonymous:
        for path in ("/", "/meetings/abc", "/students/Ana", "/bots", "/about"):
            async with anonymous.get(client.make_url(path)) as response:
                assert response.status == 200, path
                assert '<main id="view"' in await response.text()
                assert "script-src 'self'" in response.headers["Content-Security-Policy"]
                assert response.headers["X-Frame-Options"] == "DENY"
        async with anonymous.get(client.make_url("/static/app.js")) as response:
            assert response.status == 200
        async with anonymous.get(client.make_url("/metrics")) as response:
            assert response.status == 200


def test_token_is_created_once_shown_once_and_stored_hashed(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path / "data"
    )
    check, token = ensure_api_token(settings)
    assert token is not None and len(token) >= 40
    path = settings.data_dir / TOKEN_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    content = path.read_text()
    assert token not in content and json.loads(content)["algorithm"] == "sha256"
    assert check.accepts(token) and not check.accepts(token + "x")
    again, shown = ensure_api_token(settings)
    assert shown is None and again.accepts(token)
    rotated, new_token = ensure_api_token(settings, rotate=True)
    assert new_token is not None and new_token != token
    assert rotated.accepts(new_token) and not rotated.accepts(token)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="--new-token"):
        ensure_api_token(settings)


def test_token_from_the_environment_is_used_and_never_written(tmp_path: Path) -> None:
    environ = {"CLASSPULSE_API_TOKEN": TOKEN, "CLASSPULSE_DATA_DIR": str(tmp_path / "data")}
    settings = Settings.from_env(environ)
    assert TOKEN not in repr(settings)
    check, shown = ensure_api_token(settings)
    assert shown is None and check.accepts(TOKEN) and check.source == "setting"
    assert not (tmp_path / "data" / TOKEN_FILE).exists()
    with pytest.raises(ValueError, match="at least 16"):
        Settings.from_env({**environ, "CLASSPULSE_API_TOKEN": "short"})
    with pytest.raises(ValueError, match="--new-token"):
        ensure_api_token(settings, rotate=True)


async def test_app_made_without_a_token_creates_one_that_works(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path / "data"
    )
    with Storage.open(settings.database_url) as storage:
        app = create_app(
            settings, storage=storage, bots=UnavailableBotManager(LiveFeed(), "history only")
        )
        token = app[NEW_API_TOKEN]
        assert token
        async with TestClient(TestServer(app)) as client:
            ok = await client.get("/api/meetings", headers={"Authorization": f"Bearer {token}"})
            assert ok.status == 200 and (await ok.json()) == {"meetings": []}
            refused = await client.get("/api/meetings")
            assert refused.status == 401
        assert create_app(settings, storage=storage)[NEW_API_TOKEN] is None


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc  ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
