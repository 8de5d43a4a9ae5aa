"""Error answers of the API: always JSON ``{"error", "message", "status"}``, never an HTML page or
a traceback, so a script (or the dashboard) can show the teacher what was wrong."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

API_PREFIX = "/api"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Short machine-readable codes by HTTP status.
ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    421: "misdirected_request",
    500: "internal_error",
    503: "unavailable",
}


def is_api_path(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def json_error(
    status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    body = {
        "error": ERROR_CODES.get(status, "error"),
        "message": message,
        "status": status,
        **extra,
    }
    return web.json_response(body, status=status, headers=headers)


class ApiError(Exception):
    """Raised by handlers: answered as ``json_error(status, message)``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(400, message, **extra)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turns every failure under ``/api`` into a JSON answer with the right status."""
    try:
        return await handler(request)
    except ApiError as error:
        return json_error(error.status, error.message, **error.extra)
    except web.HTTPException as error:
        if not is_api_path(request.path) or error.status < 400:
            raise
        headers = {key: value for key, value in error.headers.items() if key.lower() == "allow"}
        message = {
            404: "Expected a path the API serves (see /api/openapi.json). "
            f"Received: {request.path!r}",
            405: f"Expected one of the methods {headers.get('Allow', '')} for {request.path}. "
            f"Received: {request.method}",
        }.get(error.status, error.reason or "error")
        return json_error(error.status, message, headers=headers or None)
    except Exception:
        if not is_api_path(request.path):
            raise
        logger.exception("API request %s %s failed", request.method, request.path)
        return json_error(500, "The server failed to answer this request; its log says why.")
