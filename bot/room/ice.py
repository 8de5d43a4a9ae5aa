"""Which local addresses aiortc offers as ICE host candidates, chosen per peer connection.

Why this exists: aioice (aiortc's ICE) gathers host candidates from every interface *except*
127.0.0.1 and ::1 (``aioice.ice.get_host_addresses``), and has no option to change that. A room
served on 127.0.0.1 (trying classpulse on one computer, the tests) must offer 127.0.0.1, or a
machine without a network interface has nothing to offer at all.

The smallest workaround: wrap ``aioice.ice.get_host_addresses`` once, and have the wrapper
consult a context variable that ``host_addresses(...)`` sets around ``setLocalDescription`` (the
only call that gathers). aiortc gathers inside tasks created from that call, which inherit the
context, so the override applies to that one peer connection; every other caller in the process
(the Janus connector, say) still gets aioice's own answer.

Browsers: Chromium drops loopback interfaces too; a headless Chromium started with
``--allow-loopback-in-peer-connection`` offers 127.0.0.1. An ordinary browser on the same computer
needs no flag: it sends its checks from its LAN address to the server's 127.0.0.1, and aioice
learns it as a peer-reflexive candidate.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

import aioice.ice

_override: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "classpulse_ice_host_addresses", default=None
)
_original: Callable[[bool, bool], list[str]] | None = None


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    addresses = _override.get()
    if addresses is None:
        assert _original is not None
        return _original(use_ipv4, use_ipv6)
    return [a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def _install() -> None:
    global _original
    if _original is None:
        _original = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = _get_host_addresses


@contextlib.contextmanager
def host_addresses(addresses: tuple[str, ...] | None) -> Iterator[None]:
    """Within this block, peer connections gather host candidates on ``addresses`` only
    (``None``: aioice's default). Wrap ``await pc.setLocalDescription(...)`` in it."""
    if addresses is None:
        yield
        return
    _install()
    token = _override.set(tuple(addresses))
    try:
        yield
    finally:
        _override.reset(token)
