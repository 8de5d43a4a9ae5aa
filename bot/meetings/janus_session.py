"""The Janus API over its WebSocket transport: one session, plugin handles, transactions, keepalive.

Janus answers a plugin ``message`` either at once (``success`` with ``plugindata``) or with an
``ack`` followed later by an ``event`` carrying the same ``transaction``; anything else addressed to
a handle (offers Janus makes by itself, ``webrtcup``, ``hangup``, other participants' news) lands in
that handle's ``events`` queue. Everything Janus sends is untrusted: a message that is not JSON, not
an object or lacks the fields we need is logged and dropped, never raised into the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.meetings.connect_errors import describe_connection_error
from bot.meetings.protocol import MeetingError

logger = logging.getLogger(__name__)

#: Janus drops a session after 60 s of silence (its default ``session_timeout``).
MAX_KEEPALIVE_S = 25.0


class JanusError(MeetingError):
    """Janus refused a request (core ``error`` or a plugin's ``error_code``)."""

    def __init__(self, code: object, reason: object, request: str = "") -> None:
        self.code = code if isinstance(code, int) else None
        self.reason = str(reason)[:500]
        super().__init__(
            f"Janus refused {request or 'a request'}: {self.reason} (code {self.code})"
        )


class JanusConnectionLostError(MeetingError):
    """The WebSocket to Janus is gone (server down, network cut, session timed out)."""


@dataclass(frozen=True, slots=True)
class JanusEvent:
    """Something Janus said to one handle."""

    #: ``"event"`` for plugin events and replies, else Janus's own kind (``webrtcup``, ``hangup``,
    #: ``media``, ``slowlink``, ``detached``, …).
    kind: str
    #: The plugin's ``plugindata.data`` for ``event``/``success``; the whole message otherwise.
    data: dict[str, Any] = field(default_factory=dict)
    #: An SDP offer or answer (``{"type": ..., "sdp": ...}``) when one came along.
    jsep: dict[str, Any] | None = None


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[JanusEvent]
    #: ``keepalive``/``trickle`` end with ``ack``; plugin messages wait for the ``event`` after it.
    ack_is_final: bool


class JanusHandle:
    """One attached plugin handle. ``events`` holds what arrived without a pending request."""

    def __init__(self, session: JanusSession, handle_id: int, plugin: str) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.events: asyncio.Queue[JanusEvent] = asyncio.Queue()

    async def request(
        self,
        body: dict[str, Any],
        jsep: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> JanusEvent:
        """Send a plugin message; returns the plugin's reply. Raises ``JanusError`` on refusal."""
        message: dict[str, Any] = {"janus": "message", "handle_id": self.id, "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        name = f"{self.plugin} {body.get('request', '?')}"
        reply = await self.session._request(message, ack_is_final=False, timeout=timeout, name=name)
        if "error_code" in reply.data or "error" in reply.data:
            raise JanusError(reply.data.get("error_code"), reply.data.get("error", "?"), name)
        return reply

    async def detach(self) -> None:
        await self.session._request(
            {"janus": "detach", "handle_id": self.id}, ack_is_final=False, name="detach"
        )


class JanusSession:
    """A Janus session over one WebSocket. Create with :meth:`connect`, end with :meth:`close`."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        websocket: aiohttp.ClientWebSocketResponse,
        *,
        api_secret: str | None,
        token: str | None,
        request_timeout_s: float,
    ) -> None:
        self.id = 0
        self._http = http
        self._ws = websocket
        self._api_secret = api_secret
        self._token = token
        self._request_timeout_s = request_timeout_s
        self._pending: dict[str, _Pending] = {}
        self._handles: dict[int, JanusHandle] = {}
        self._transaction_ids = itertools.count(1)
        self._transaction_prefix = secrets.token_hex(4)
        self._lost = asyncio.Event()
        self.lost_reason = ""
        self._tasks: list[asyncio.Task[None]] = []
        self.num_dropped_messages = 0

    @classmethod
    async def connect(
        cls,
        websocket_url: str,
        *,
        api_secret: str | None = None,
        token: str | None = None,
        heartbeat_s: float = 10.0,
        keepalive_s: float = MAX_KEEPALIVE_S,
        request_timeout_s: float = 10.0,
    ) -> JanusSession:
        """Open the WebSocket and create a session; raises ``JanusConnectionLostError`` when Janus
        cannot be reached and ``JanusError`` when it refuses the session (wrong API secret)."""
        if not 0 < keepalive_s <= MAX_KEEPALIVE_S:
            raise ValueError(
                f"Expected keepalive_s in (0, {MAX_KEEPALIVE_S}]. Received: {keepalive_s}"
            )
        http = aiohttp.ClientSession()
        try:
            websocket = await http.ws_connect(
                websocket_url,
                protocols=("janus-protocol",),
                # aiohttp pings every heartbeat_s and closes when no pong comes within half of it:
                # a cut network or a frozen server is noticed in seconds, not at the next keepalive.
                heartbeat=heartbeat_s,
                max_msg_size=16 * 2**20,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            await http.close()
            raise JanusConnectionLostError(
                f"cannot reach Janus: expected a Janus WebSocket server at {websocket_url}. "
                f"Received: {describe_connection_error(error)}"
            ) from error
        session = cls(
            http, websocket, api_secret=api_secret, token=token, request_timeout_s=request_timeout_s
        )
        session._tasks.append(asyncio.create_task(session._read(), name="janus-reader"))
        try:
            reply = await session._request({"janus": "create"}, ack_is_final=False, name="create")
            session.id = _positive_int(reply.data.get("id"))
            if not session.id:
                raise JanusConnectionLostError(
                    f"Janus sent no session id. Received: {reply.data!r:.200}"
                )
        except BaseException:
            await session.close(destroy=False)
            raise
        session._tasks.append(
            asyncio.create_task(session._keepalive(keepalive_s), name="janus-keepalive")
        )
        return session

    @property
    def is_lost(self) -> bool:
        return self._lost.is_set()

    async def wait_lost(self) -> str:
        """Wait until the connection is gone; returns why."""
        await self._lost.wait()
        return self.lost_reason

    async def attach(self, plugin: str) -> JanusHandle:
        reply = await self._request(
            {"janus": "attach", "plugin": plugin}, ack_is_final=False, name=f"attach {plugin}"
        )
        handle_id = _positive_int(reply.data.get("id"))
        if not handle_id:
            raise JanusError(None, f"no handle id in {reply.data!r:.200}", f"attach {plugin}")
        handle = JanusHandle(self, handle_id, plugin)
        self._handles[handle_id] = handle
        return handle

    async def close(self, *, destroy: bool = True) -> None:
        """Destroy the session (best effort, short timeout), close the socket, stop the tasks."""
        if destroy and self.id and not self.is_lost:
            with contextlib.suppress(
                MeetingError, asyncio.TimeoutError, aiohttp.ClientError, OSError
            ):
                await self._request(
                    {"janus": "destroy"}, ack_is_final=False, timeout=2.0, name="destroy"
                )
        self._lose("closed by us")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._ws.close()
        await self._http.close()

    async def _request(
        self,
        message: dict[str, Any],
        *,
        ack_is_final: bool,
        timeout: float | None = None,
        name: str = "",
    ) -> JanusEvent:
        if self.is_lost:
            raise JanusConnectionLostError(f"Janus connection lost: {self.lost_reason}")
        transaction = f"{self._transaction_prefix}-{next(self._transaction_ids)}"
        message = {**message, "transaction": transaction}
        if self.id and message["janus"] != "create":
            message["session_id"] = self.id
        if self._api_secret:
            message["apisecret"] = self._api_secret
        if self._token:
            message["token"] = self._token
        future: asyncio.Future[JanusEvent] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = _Pending(future, ack_is_final)
        try:
            await self._ws.send_str(json.dumps(message))
            async with asyncio.timeout(timeout if timeout is not None else self._request_timeout_s):
                return await future
        except (ConnectionError, aiohttp.ClientError) as error:
            reason = describe_connection_error(error)
            self._lose(f"send failed: {reason}")
            raise JanusConnectionLostError(
                f"Janus connection lost during {name}: {reason}"
            ) from error
        except TimeoutError as error:
            raise JanusConnectionLostError(f"Janus did not answer {name} in time") from error
        finally:
            self._pending.pop(transaction, None)

    async def _read(self) -> None:
        reason = "Janus closed the WebSocket"
        try:
            async for frame in self._ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(frame.data)
                elif frame.type == aiohttp.WSMsgType.BINARY:
                    self._drop("binary frame", repr(frame.data[:80]))
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    reason = f"WebSocket error: {_describe(self._ws.exception())}"
                    break
            if self._ws.close_code not in (None, 1000):
                reason = f"WebSocket closed with code {self._ws.close_code}"
        except asyncio.CancelledError:
            raise
        except Exception as error:  # never let a reader bug hang every pending request
            logger.exception("Janus reader failed")
            reason = f"reader failed: {error!r}"
        self._lose(reason)

    def _dispatch(self, raw: str) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self._drop("not JSON", raw[:200])
            return
        if not isinstance(message, dict) or not isinstance(message.get("janus"), str):
            self._drop("not a Janus message", raw[:200])
            return
        kind: str = message["janus"]
        event = _event_of(kind, message)
        transaction = message.get("transaction")
        pending = self._pending.get(transaction) if isinstance(transaction, str) else None
        if pending is not None and not pending.future.done():
            if kind == "ack" and not pending.ack_is_final:
                return
            if kind == "error":
                error = message.get("error")
                error = error if isinstance(error, dict) else {}
                pending.future.set_exception(
                    JanusError(error.get("code"), error.get("reason", "?"))
                )
                return
            if kind in ("success", "ack", "event"):
                pending.future.set_result(event)
                return
        if kind == "timeout":
            self._lose("Janus timed the session out")
            return
        sender = message.get("sender")
        handle = self._handles.get(sender) if isinstance(sender, int) else None
        if handle is None:
            if kind not in ("ack", "success", "keepalive", "server_info"):
                logger.debug("Janus message for no handle of ours dropped: %.200s", raw)
            return
        if kind == "detached":
            self._handles.pop(handle.id, None)
        handle.events.put_nowait(event)

    def _drop(self, why: str, sample: str) -> None:
        self.num_dropped_messages += 1
        logger.warning("dropped a malformed Janus message (%s): %.200s", why, sample)

    def _lose(self, reason: str) -> None:
        if self._lost.is_set():
            return
        self.lost_reason = reason
        self._lost.set()
        if reason != "closed by us":
            logger.warning("Janus connection lost: %s", reason)
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(
                    JanusConnectionLostError(f"Janus connection lost: {reason}")
                )

    async def _keepalive(self, interval_s: float) -> None:
        while not self.is_lost:
            await asyncio.sleep(interval_s)
            try:
                await self._request({"janus": "keepalive"}, ack_is_final=True, name="keepalive")
            except MeetingError as error:
                self._lose(f"keepalive failed: {error}")
                return


def _event_of(kind: str, message: dict[str, Any]) -> JanusEvent:
    jsep = message.get("jsep")
    jsep = jsep if isinstance(jsep, dict) and isinstance(jsep.get("sdp"), str) else None
    if kind in ("event", "success"):
        plugindata = message.get("plugindata")
        if isinstance(plugindata, dict):
            data = plugindata.get("data")
            return JanusEvent("event", data if isinstance(data, dict) else {}, jsep)
        data = message.get("data")
        return JanusEvent(kind, data if isinstance(data, dict) else {}, jsep)
    return JanusEvent(kind, message, jsep)


def _describe(error: BaseException | None) -> str:
    return "unknown" if error is None else describe_connection_error(error)


def _positive_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
