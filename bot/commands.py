"""Chat commands: parsing and who may use which. Pure: the session carries them out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Command(StrEnum):
    STATUS = "status"
    PAUSE = "pause"
    RESUME = "resume"
    LEAVE = "leave"
    HELP = "help"
    OPTOUT = "optout"
    OPTIN = "optin"
    CLAIM = "claim"
    FINE = "fine"


#: Commands anyone may use; every other command is honoured from the teacher only.
EVERYONE = frozenset({Command.OPTOUT, Command.OPTIN, Command.CLAIM})
#: Longest chat text read as a command; anything longer is ordinary chat (room for
#: ``!claim`` and a 64-character teacher code).
MAX_COMMAND_CHARS = 96

HELP_TEXT = (
    "classpulse commands — teacher: !status (class summary), !fine NAME (NAME looks fine as they "
    "are: learn their usual face), !pause, !resume, !leave, !help; "
    "everyone: !optout (stop analysing me and delete my data from this class), !optin; "
    "the teacher whispers !claim CODE to the bot once."
)


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    command: Command
    from_teacher: bool
    #: What followed the command word (``!claim k7mq-x2pa`` → ``"k7mq-x2pa"``), stripped.
    argument: str = ""

    @property
    def allowed(self) -> bool:
        return self.from_teacher or self.command in EVERYONE


def parse_command(text: str, *, from_teacher: bool) -> ParsedCommand | None:
    """``"!status"`` → STATUS; ordinary chat and unknown commands → ``None``.

    Only the first word counts (``"!optout please"`` is an opt-out); case is ignored.
    """
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if not stripped.startswith("!") or len(stripped) < 2 or len(stripped) > MAX_COMMAND_CHARS:
        return None
    if stripped[1].isspace():  # "! status" is someone's exclamation, not a command
        return None
    words = stripped[1:].split(maxsplit=1)
    try:
        command = Command(words[0].lower())
    except ValueError:
        return None
    return ParsedCommand(command, from_teacher, words[1].strip() if len(words) > 1 else "")
