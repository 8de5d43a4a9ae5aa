"""Why a bot failed or left, as a stable code and one human sentence (the API, the webhooks).

Codes are part of the API: operators branch on them, so they never change meaning. The sentence
is ours (``connect_errors`` keeps a peer's words out of it), never an exception's ``repr``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import aiohttp

logger = logging.getLogger(__name__)


class BotCode(StrEnum):
    """A bot's outcome. Failures (``bot.failed``) first, then ways a meeting ends
    (``bot.ended``)."""

    #: The meeting server did not answer: wrong host or port, down, a firewall, a TLS error.
    MEETING_UNREACHABLE = "meeting_unreachable"
    #: The server answered but has no such room (Janus 426/417; a built-in room not open).
    ROOM_NOT_FOUND = "room_not_found"
    #: The server or a proxy refused our credentials (room PIN, Janus token/secret, HTTP 401/403).
    AUTH_FAILED = "auth_failed"
    #: The server refused the join for another reason (its words are in the server's log).
    JOIN_REFUSED = "join_refused"
    #: Something in classpulse itself went wrong (details in the server's log).
    INTERNAL_ERROR = "internal_error"
    #: Asked to leave (``DELETE /api/bots/{id}``, a server shutdown).
    STOPPED = "stopped"
    #: Everyone else left the meeting.
    EVERYONE_LEFT = "everyone_left"
    #: The room was closed or destroyed.
    MEETING_ENDED = "meeting_ended"
    #: A moderator removed the bot from the meeting.
    KICKED = "kicked"


@dataclass(frozen=True, slots=True)
class Outcome:
    code: BotCode
    #: One sentence for people, ending with a full stop.
    message: str


#: Janus error codes (core and plugins) that name the failure precisely.
_JANUS_CODES = {
    426: BotCode.ROOM_NOT_FOUND,  # VideoRoom: no such room
    417: BotCode.ROOM_NOT_FOUND,  # TextRoom: no such room
    433: BotCode.AUTH_FAILED,  # VideoRoom: unauthorized (PIN)
    419: BotCode.AUTH_FAILED,  # TextRoom: unauthorized (PIN)
    403: BotCode.AUTH_FAILED,  # core: wrong or missing API secret / token
    405: BotCode.AUTH_FAILED,  # core: token not allowed to use the plugin
}
_SENTENCES = {
    BotCode.ROOM_NOT_FOUND: "The meeting server has no such room: check the room in the URL "
    "(a built-in room must be open, see GET /api/rooms).",
    BotCode.AUTH_FAILED: "The meeting server refused the bot's credentials: check the room's "
    "PIN or the server's token.",
    BotCode.JOIN_REFUSED: "The meeting server refused to let the bot join (its reason is in the "
    "classpulse server's log).",
    BotCode.INTERNAL_ERROR: "The bot stopped on an internal error (details in the classpulse "
    "server's log).",
}


def failure_outcome(error: BaseException) -> Outcome:
    """The code and sentence for an exception that ended a bot before or during its meeting."""
    # Imported here: the web app reads BotCode without loading bot.meetings (aiortc).
    from bot.meetings.connect_errors import describe_connection_error
    from bot.meetings.janus_session import JanusConnectionLostError, JanusError
    from bot.meetings.protocol import MeetingError

    chain = _causes(error)
    for item in chain:
        if isinstance(item, JanusError) and item.code in _JANUS_CODES:
            code = _JANUS_CODES[item.code]
            return Outcome(code, _SENTENCES[code])
        if isinstance(item, aiohttp.WSServerHandshakeError) and item.status in (401, 403):
            return Outcome(BotCode.AUTH_FAILED, _SENTENCES[BotCode.AUTH_FAILED])
    # The network error itself (deepest first): it says more than the wrapper that lost it.
    for item in reversed(chain):
        if isinstance(item, aiohttp.ClientError | OSError | TimeoutError):
            how = describe_connection_error(item)
            return Outcome(
                BotCode.MEETING_UNREACHABLE, f"The meeting server could not be reached: {how}."
            )
    if any(isinstance(item, JanusConnectionLostError) for item in chain):
        return Outcome(
            BotCode.MEETING_UNREACHABLE,
            "The meeting server could not be reached: the connection to it was lost.",
        )
    if isinstance(error, MeetingError) and "built-in room" in str(error):
        return Outcome(BotCode.ROOM_NOT_FOUND, _SENTENCES[BotCode.ROOM_NOT_FOUND])
    if isinstance(error, MeetingError):
        logger.info("join refused: %s", error)
        return Outcome(BotCode.JOIN_REFUSED, _SENTENCES[BotCode.JOIN_REFUSED])
    logger.error("bot failed", exc_info=error)
    return Outcome(BotCode.INTERNAL_ERROR, _SENTENCES[BotCode.INTERNAL_ERROR])


def end_outcome(stop_reason: str | None) -> Outcome:
    """The code and sentence for a bot that left after being in its meeting."""
    reason = (stop_reason or "").lower()
    if reason == "everyone left":
        return Outcome(BotCode.EVERYONE_LEFT, "Everyone else left the meeting, so the bot left.")
    if "kicked" in reason:
        return Outcome(BotCode.KICKED, "A moderator removed the bot from the meeting.")
    if reason.startswith("meeting ended") or "closed" in reason or "destroyed" in reason:
        return Outcome(BotCode.MEETING_ENDED, "The meeting ended (the room was closed).")
    return Outcome(BotCode.STOPPED, "The bot left the meeting because it was asked to.")


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what caused it, outermost first (a join wraps the network error)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
