"""Signed webhook delivery of a bot's lifecycle: ``bot.joining``, ``bot.in_meeting``,
``bot.alert``, ``bot.ended``, ``bot.failed`` POSTed as JSON to the ``webhook_url`` given to
``POST /api/bots``.

Signature: ``X-Classpulse-Signature: sha256=<hex>``, the HMAC-SHA256 of
``f"{timestamp}.".encode() + raw_body`` under the bot's webhook secret, with the Unix seconds in
``X-Classpulse-Timestamp``. A receiver recomputes it over the raw bytes it got, compares in
constant time, and refuses a timestamp more than 5 minutes from its clock (a replayed delivery).
The secret is made per bot and returned once, in the 201 of ``POST /api/bots``.

Delivery never makes the bot wait: ``send`` puts the event on a bounded queue read by one task
per bot (so events arrive in order); a full queue drops the oldest non-final event and counts it.
Each event is tried up to ``max_attempts`` times on network errors, 408, 429 and 5xx, with the
shared ``engine.backoff`` schedule; other answers are final.

The URL is the API caller's, so the server never POSTs to a link-local address (the cloud
metadata services at 169.254.169.254 and fd00:ec2::254 among them), an unspecified, multicast or
reserved one: refused with a 400 when written as an address, and skipped at connect time when a
host name resolves there (``PublicResolver``; a name that only resolves there fails like an
unreachable receiver). Loopback and private addresses stay allowed: a receiver beside the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from bot.web.bots import WebhookDeliveries
from engine.backoff import Backoff

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Classpulse-Signature"
TIMESTAMP_HEADER = "X-Classpulse-Timestamp"
EVENT_HEADER = "X-Classpulse-Event"
DELIVERY_HEADER = "X-Classpulse-Delivery"
#: A receiver should refuse deliveries signed further than this from its own clock.
TOLERANCE_S = 300
#: Events one bot may have waiting; beyond it the oldest non-final one is dropped.
MAX_QUEUED = 64
FINAL_EVENTS = ("bot.ended", "bot.failed")
MAX_URL_CHARS = 2000
#: Statuses worth another attempt; any other answer (2xx included) ends the event's delivery.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Metadata services outside the link-local ranges (AWS's IPv6 one is a unique local address).
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})


def forbidden_address(host: str) -> bool:
    """Whether ``host`` is an IP address webhooks must never reach (not a name: see
    ``PublicResolver``)."""
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or address in METADATA_ADDRESSES
    )


class PublicResolver(AbstractResolver):
    """aiohttp's resolver without the addresses ``forbidden_address`` refuses (a name pointing
    at the metadata service, or rebound to it after the URL was checked)."""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()  # getaddrinfo in a thread: nothing to close

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        allowed = [entry for entry in found if not forbidden_address(entry["host"])]
        if not allowed:
            raise OSError(
                f"Expected {host} to resolve to an address webhooks may reach. Received: "
                f"{', '.join(entry['host'] for entry in found)}"
            )
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


def check_webhook_url(value: object) -> str:
    """``value`` if it is an absolute http(s) URL with a host; ``ValueError`` otherwise."""
    if not isinstance(value, str):
        raise ValueError(
            f"Expected webhook_url to be an http(s) URL string. Received: {type(value).__name__}"
        )
    parts = urlsplit(value)
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or len(value) > MAX_URL_CHARS
        or any(not c.isprintable() or c.isspace() for c in value)
    ):
        raise ValueError(
            "Expected webhook_url to be an http:// or https:// URL with a host (at most "
            f"{MAX_URL_CHARS} characters, no spaces). Received: {_shown(value)!r}"
        )
    if forbidden_address(parts.hostname):
        raise ValueError(
            "Expected webhook_url to be an http:// or https:// URL whose host is not a "
            "link-local, metadata, unspecified, multicast or reserved address. Received: "
            f"{_shown(value)!r}"
        )
    return value


def _shown(value: str) -> str:
    return value if len(value) <= 80 else value[:79] + "…"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """What a receiver does: the signature matches ``body`` and the timestamp is recent."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


@dataclass(slots=True)
class DeliveryStats:
    delivered: int = 0
    #: Events given up on (final refusal, every attempt failed, or cut off by the drain time).
    failed: int = 0
    #: Events never sent: dropped from a full queue, or still queued when the drain time ran out.
    dropped: int = 0

    def frozen(self) -> WebhookDeliveries:
        """These counters now, as ``GET /api/bots/{id}`` and ``/metrics`` show them."""
        return WebhookDeliveries(self.delivered, self.failed, self.dropped)


class WebhookSender:
    """One bot's deliveries. ``send`` never waits; ``aclose`` delivers what is queued (bounded
    by ``drain_timeout_s``) and stops."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        max_queued: int = MAX_QUEUED,
        max_attempts: int = 5,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = check_webhook_url(url)
        self._secret = secret
        self.max_queued = max_queued
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff(initial_s=0.5, max_s=8.0)
        self.timeout_s = timeout_s
        self.stats = DeliveryStats()
        self._queue: deque[dict[str, Any]] = deque()
        self._ready = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def send(self, event: dict[str, Any]) -> None:
        """Queue ``event`` (a JSON-ready dict with ``type``) for delivery."""
        if len(self._queue) >= self.max_queued:
            victim = next(
                (e for e in self._queue if e.get("type") not in FINAL_EVENTS), self._queue[0]
            )
            self._queue.remove(victim)
            self.stats.dropped += 1
            logger.warning("webhook queue full: dropped a %s event", victim.get("type"))
        self._queue.append(event)
        self._ready.set()
        if self._task is None:
            self._task = asyncio.create_task(self._deliver_all(), name="webhook delivery")

    async def aclose(self, drain_timeout_s: float = 30.0) -> None:
        self._closing = True
        self._ready.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), drain_timeout_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self.stats.dropped += len(self._queue)
            self._queue.clear()

    async def _deliver_all(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        connector = aiohttp.TCPConnector(resolver=PublicResolver())
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                event = self._queue.popleft()
                try:
                    delivered = await self._deliver(session, event)
                except asyncio.CancelledError:  # cut off by the drain time: never confirmed
                    self.stats.failed += 1
                    raise
                if delivered:
                    self.stats.delivered += 1
                else:
                    self.stats.failed += 1

    async def _deliver(self, session: aiohttp.ClientSession, event: dict[str, Any]) -> bool:
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        delays = self.backoff.delays()
        for attempt in range(1, self.max_attempts + 1):
            timestamp = int(time.time())  # signed per attempt: a retry is not a stale replay
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "classpulse-webhooks",
                EVENT_HEADER: str(event.get("type", "")),
                DELIVERY_HEADER: str(event.get("id", "")),
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            }
            try:
                async with session.post(
                    self.url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    status: int = response.status
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                why = type(error).__name__
            else:
                if status not in RETRY_STATUSES:
                    if 200 <= status < 300:
                        return True
                    logger.warning("webhook %s refused with HTTP %d", event.get("type"), status)
                    return False
                why = f"HTTP {status}"
            if attempt < self.max_attempts:
                logger.info("webhook %s attempt %d failed (%s)", event.get("type"), attempt, why)
                await asyncio.sleep(next(delays))
        logger.warning("webhook %s not delivered after %d attempts", event.get("type"), attempt)
        return False


def lifecycle_event(
    kind: str, bot: dict[str, Any], code: str, message: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One event's JSON: its own id and time, the bot (id, meeting), a stable ``code``, one
    human sentence, and ``data`` for the alert."""
    return {
        "id": uuid.uuid4().hex,
        "type": kind,
        "created_at": time.time(),
        "bot_id": bot["bot_id"],
        "meeting_id": bot.get("meeting_id"),
        "meeting_url": bot.get("meeting_url"),
        "code": code,
        "message": message,
        "data": data or {},
    }
