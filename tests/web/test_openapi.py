"""The OpenAPI document matches what is served: same routes, and a fuzz run of a few hundred
schemathesis requests (valid and invalid) that must all get well-formed, documented answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.live import LiveFeed
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.openapi import build_document
from storage import Storage, Writer
from tests.conftest import require
from tests.web.conftest import AUTH, Seeded
from tests.web.fakes import FakeBotManager
from tests.web.served import ServedApp

try:
    import hypothesis
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
except ImportError:  # checked in the test, so the rest of the file still runs
    schemathesis = None  # type: ignore[assignment]

#: Requests per operation and generation mode; 18 operations × 2 modes × 14 ≈ 500 requests.
EXAMPLES = 14


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api") and route.method != "HEAD":
            routes.add((route.method, path))
    return routes


def documented_routes(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


async def test_document_lists_exactly_the_served_routes(client: TestClient) -> None:
    response = await client.get("/api/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    assert documented_routes(document) == served_routes(client.app)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "401" in operation["responses"], (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)


def test_document_is_valid_openapi() -> None:
    require(schemathesis is not None, "schemathesis is not installed (pip install -e .[dev])")
    schema = schemathesis.openapi.from_dict(build_document())
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) == len(documented_routes(build_document()))


@pytest.fixture
def served(
    settings: Settings, storage: Storage, writer: Writer, seeded: Seeded
) -> Iterator[ServedApp]:
    def make() -> web.Application:
        feed = LiveFeed()
        return create_app(settings, storage=storage, bots=FakeBotManager(writer, feed), feed=feed)

    with ServedApp(make) as app:
        yield app


def test_fuzzed_requests_all_get_documented_well_formed_answers(served: ServedApp) -> None:
    require(schemathesis is not None, "schemathesis is not installed (pip install -e .[dev])")
    document = requests.get(f"{served.url}/api/openapi.json", headers=AUTH, timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        negative_data_rejection,
    ]
    statuses: dict[int, int] = {}
    session = requests.Session()
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(hypothesis.HealthCheck),
                phases=[hypothesis.Phase.generate],
            )
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=served.url, session=session, headers=AUTH, timeout=10)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                case.validate_response(response, checks=checks, headers=AUTH)

            run()
    total = sum(statuses.values())
    print(f"fuzz: {total} requests, statuses {dict(sorted(statuses.items()))}")
    assert total >= 300, statuses
    assert not any(status >= 500 for status in statuses), statuses
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0 and statuses.get(404, 0) > 0, (
        statuses
    )
