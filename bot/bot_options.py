"""What a caller asks of a new bot (``POST /api/bots``, ``classpulse join``) and why it may be refused.

Every value is checked for its type and range before a bot starts, and a refusal names the
option (``OptionError.field``): the API answers 400 with that field instead of starting a bot
that fails later, or failing with a 500.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.alerts import AlertSettings
from bot.meetings.protocol import MAX_DISPLAY_NAME_CHARS, normalize_display_name
from bot.session.settings import SessionSettings, check_mode
from bot.teacher import check_teacher_code

#: Longest title and teacher name (the storage columns hold 255).
MAX_TEXT_CHARS = 255


class OptionError(ValueError):
    """A refused bot option; ``field`` names it (``options.analysis_fps``, ``teacher``, …)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class DuplicateBotError(RuntimeError):
    """A bot is already in this meeting (answered 409 with its id)."""

    def __init__(self, bot_id: str, meeting_url: str) -> None:
        super().__init__(
            f"Expected one bot per meeting. Received: {meeting_url}, which bot {bot_id} is in"
        )
        self.bot_id = bot_id


class TooManyBotsError(RuntimeError):
    """The runtime's cap on running bots is reached (answered 503)."""


@dataclass(frozen=True, slots=True)
class _Number:
    low: float
    high: float
    low_inclusive: bool = True

    def __call__(self, name: str, value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise OptionError(
                f"options.{name}", f"Expected {name} to be a number. Received: {value!r:.80}"
            )
        below = value < self.low if self.low_inclusive else value <= self.low
        if below or value > self.high:
            opening = "" if self.low_inclusive else "above "
            raise OptionError(
                f"options.{name}",
                f"Expected {name} from {opening}{self.low:g} to {self.high:g}. Received: {value!r}",
            )
        return float(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise OptionError(
            f"options.{name}", f"Expected {name} to be true or false. Received: {value!r:.80}"
        )
    return value


def _mode(name: str, value: Any) -> str:
    try:
        return check_mode(value, name)
    except ValueError as error:
        raise OptionError(f"options.{name}", str(error)) from None


def _text(limit: int) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
            raise OptionError(
                f"options.{name}",
                f"Expected {name} as 1 to {limit} characters of text. Received: {value!r:.80}",
            )
        return value.strip()

    return check


#: Option → (checker, the settings field it sets, in ``alerts`` or the session itself).
OPTIONS: dict[str, tuple[Callable[[str, Any], Any], str, bool]] = {
    "alert_after_s": (_Number(0, 3600), "sustained_s", True),
    "alert_cooldown_s": (_Number(0, 86400), "cooldown_s", True),
    "alert_bored": (_flag, "alert_bored", True),
    "class_share": (_Number(0, 1, low_inclusive=False), "class_share", True),
    "title": (_text(MAX_TEXT_CHARS), "title", False),
    "bot_name": (_text(MAX_DISPLAY_NAME_CHARS), "bot_name", False),
    "analysis_fps": (_Number(0.2, 30), "analysis_fps", False),
    "empty_grace_s": (_Number(1, 86400), "empty_grace_s", False),
    "mode": (_mode, "mode", False),
}


def session_settings(
    teacher: Any, options: Mapping[str, Any], teacher_code: Any = None
) -> SessionSettings:
    """Validated per-bot settings; an unknown or bad option is refused by name."""
    if (
        not isinstance(teacher, str)
        or not teacher.strip()
        or len(teacher) > MAX_TEXT_CHARS
        or normalize_display_name(teacher, fallback="") == ""
    ):
        raise OptionError(
            "teacher", f"Expected the teacher's display name. Received: {teacher!r:.80}"
        )
    if not isinstance(options, Mapping):
        raise OptionError(
            "options", f"Expected options as an object. Received: {type(options).__name__}"
        )
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise OptionError(
            f"options.{unknown[0]}",
            f"Expected options among {sorted(OPTIONS)}. Received: {unknown}",
        )
    alerts: dict[str, Any] = {}
    session: dict[str, Any] = {}
    for name, value in options.items():
        check, field, in_alerts = OPTIONS[name]
        (alerts if in_alerts else session)[field] = check(name, value)
    if teacher_code is not None:
        try:
            session["teacher_code"] = check_teacher_code(teacher_code)
        except ValueError as error:
            raise OptionError("teacher_code", str(error)) from None
    settings = SessionSettings(teacher=teacher.strip(), alerts=AlertSettings(**alerts))
    return replace(settings, **session)
