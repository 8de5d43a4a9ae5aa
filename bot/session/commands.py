"""Chat commands in a meeting: who may use which, and the answers the bot gives."""

from __future__ import annotations

import logging

from bot.commands import HELP_TEXT, Command, parse_command
from bot.meetings.protocol import ChatReceived
from bot.session.ports import CalibrationOutcome, CommandedSession

__all__ = ["CalibrationOutcome", "ChatCommands"]

logger = logging.getLogger(__name__)

OPTED_OUT = (
    "classpulse: you are opted out. Nothing about you is analysed, and what was stored about "
    "you in this class is deleted. !optin to undo."
)
OPTED_IN = "classpulse: you are opted in again. Thank you!"
FINE_USAGE = "classpulse: say !fine and the student's name as the alerts give it, e.g. !fine Ana."


def fine_reply(name: str, outcome: CalibrationOutcome) -> str:
    """The bot's whisper to the teacher after ``!fine NAME``."""
    shown = name if len(name) <= 64 else name[:63] + "…"
    if outcome is CalibrationOutcome.DONE:
        return (
            f"classpulse: noted — {shown}'s usual face is learnt from the last 30 s; "
            f"alerts about {shown} now compare with it."
        )
    if outcome is CalibrationOutcome.TOO_FEW:
        return f"classpulse: too little of {shown}'s face in the last 30 s; try again on camera."
    return f"classpulse: no student called {shown!r} in this class."


class ChatCommands:
    """Carries out ``!status``, ``!fine NAME``, ``!pause``, ``!resume``, ``!leave``, ``!help``
    (the claimed teacher only), ``!optout`` / ``!optin`` (anyone, about themselves: the sender's own
    participant, never a name) and ``!claim CODE`` (whispered). Others' commands are ignored
    silently: a student typing ``!leave`` gets no reply, the class no noise."""

    def __init__(self, session: CommandedSession) -> None:
        self.session = session

    async def handle(self, event: ChatReceived) -> None:
        session = self.session
        sender = event.sender
        parsed = parse_command(event.text, from_teacher=session.is_teacher(sender))
        if parsed is None:
            return
        command = parsed.command
        if command is Command.CLAIM:
            await session.teacher_desk.claim(sender, parsed.argument, whisper=event.whisper)
            return
        if not parsed.allowed:
            logger.info("ignored !%s from %s: teacher only", command, sender.id)
            return
        if command is Command.STATUS:
            await session.whisper_teacher(session.status_text())
        elif command is Command.HELP:
            await session.whisper_teacher(HELP_TEXT)
        elif command is Command.FINE:
            name = parsed.argument
            await session.whisper_teacher(
                fine_reply(name, session.calibrate(name)) if name else FINE_USAGE
            )
        elif command in (Command.PAUSE, Command.RESUME):
            session.set_paused(command is Command.PAUSE)
            await session.say(
                "classpulse: analysis paused by the teacher."
                if session.paused
                else "classpulse: analysis resumed."
            )
        elif command is Command.LEAVE:
            await session.say("classpulse is leaving the class. Goodbye!")
            await session.stop("the teacher said !leave")
        elif command in (Command.OPTOUT, Command.OPTIN):
            student = session.students.get(sender)
            if student is None:
                return  # the teacher (never analysed), or someone already gone
            if command is Command.OPTOUT:
                await session.opt_out(student)
                await session.say(OPTED_OUT, to=sender)
            elif await session.opt_in(student):
                await session.say(OPTED_IN, to=sender)
