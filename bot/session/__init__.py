"""The bot in one class: ``MeetingSession`` (``meeting``) and its parts — the analysis half
(``analysis``), chat commands (``commands``), the notice (``notice``), the teacher's desk
(``teacher``), its settings (``settings``) and what the parts need of it (``ports``).

``MeetingSession`` and friends are loaded on first use: ``bot.settings`` and the cheap CLI
commands import ``bot.session.settings``, which must not pull in the media stack (aiortc, PyAV,
OpenCV: ~0.8 s) through this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.session.meeting import NOTICE, RECLAIM, MeetingSession, SessionSettings

__all__ = ["NOTICE", "RECLAIM", "MeetingSession", "SessionSettings"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bot.session import meeting

        return getattr(meeting, name)
    raise AttributeError(f"module 'bot.session' has no attribute {name!r}")
