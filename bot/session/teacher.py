"""The teacher's side of a session: the claim, the whispers, and alerts kept until someone claims.

An alert is stored once its fate is known: delivered (whispered to the bound teacher), or not
delivered (dropped from the bounded queue, or still waiting when the bot left). While nobody has
claimed, or the teacher's chat is away, alerts wait in that queue and go out on the next claim.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from bot.alerts import Alert
from bot.meetings.protocol import Participant
from bot.session.ports import SessionVoice
from bot.teacher import ClaimOutcome, ClaimSettings, TeacherBinding
from storage import AlertRaised

logger = logging.getLogger(__name__)

CLAIMED = (
    "classpulse: you are the teacher of this class now. Alerts come to you here, privately; "
    "!help lists your commands."
)
WRONG_CODE = "classpulse: that is not this class's teacher code."
LIMITED = "classpulse: too many wrong codes; wait a minute before trying again."
PUBLIC_HINT = (
    "classpulse: send !claim CODE to the bot privately (a whisper), never in the public chat. "
    "If that was the code, it no longer works: ask whoever invited the bot for the new one."
)
#: An alert delivered this much later than raised says how old it is.
LATE_AFTER_S = 5.0


class TeacherDesk:
    """Owns the ``TeacherBinding`` of one session and everything that is said to the teacher."""

    def __init__(
        self,
        session: SessionVoice,
        code: str,
        on_claimed: Callable[[Participant], Awaitable[None]],
        settings: ClaimSettings | None = None,
    ) -> None:
        self.session = session
        self.binding: TeacherBinding[Alert] = TeacherBinding(code, settings)
        self._on_claimed = on_claimed

    @property
    def teacher(self) -> Participant | None:
        return self.binding.teacher

    @property
    def code(self) -> str:
        return self.binding.code

    def is_teacher(self, participant: Participant) -> bool:
        return self.binding.is_teacher(participant)

    async def whisper(self, text: str) -> bool:
        teacher = self.binding.teacher
        if teacher is None:
            return False
        return await self.session.say(text, to=teacher)

    async def bind(self, participant: Participant) -> None:
        """The platform vouches for ``participant`` (the built-in room's teacher link)."""
        self.binding.bind(participant)
        await self._on_claimed(participant)
        await self._deliver_pending()

    def left(self, participant: Participant) -> None:
        if self.binding.release(participant):
            logger.info("meeting %s: the teacher left; a rejoin claims again", self._meeting)

    async def claim(self, sender: Participant, argument: str, *, whisper: bool) -> None:
        outcome = self.binding.claim(sender, argument, whisper=whisper)
        logger.info("meeting %s: !claim from %s: %s", self._meeting, sender.id, outcome.value)
        if outcome is ClaimOutcome.CLAIMED:
            await self._on_claimed(sender)
            await self.session.say(CLAIMED, to=sender)
            await self._deliver_pending()
        elif outcome in (ClaimOutcome.PUBLIC, ClaimOutcome.PUBLIC_LEAKED):
            if outcome is ClaimOutcome.PUBLIC_LEAKED:
                # The inviter reads the new code here, on the bot page and in the API.
                logger.warning(
                    "meeting %s: the teacher code was typed in the public chat and is replaced; "
                    "teacher code: %s",
                    self._meeting,
                    self.binding.code,
                )
            await self.session.say(PUBLIC_HINT, to=sender)
        elif outcome is ClaimOutcome.WRONG:
            await self.session.say(WRONG_CODE, to=sender)
        else:
            await self.session.say(LIMITED, to=sender)

    async def send_alert(self, alert: Alert) -> None:
        """Whisper now when someone claimed and can hear; else keep it for the next claim."""
        if self.binding.pending or not await self.whisper(alert.text):
            dropped = self.binding.keep(alert)
            if dropped is not None:
                self._record(dropped, delivered=False)
            await self._deliver_pending()
            return
        self._record(alert, delivered=True)

    def close(self) -> None:
        """The bot leaves: whatever still waits was never delivered."""
        for alert in self.binding.take_pending():
            self._record(alert, delivered=False)

    async def _deliver_pending(self) -> None:
        if self.binding.teacher is None:
            return
        while self.binding.pending:
            alert = self.binding.pending[0]
            late = time.time() - alert.t
            text = alert.text if late < LATE_AFTER_S else f"{alert.text} ({late:.0f} s ago)"
            if not await self.whisper(text):
                return  # the teacher's chat is away: keep the rest for later
            self.binding.pending.popleft()
            self._record(alert, delivered=True)

    def _record(self, alert: Alert, *, delivered: bool) -> None:
        self.record(
            alert.t, alert.kind.value, alert.text, delivered=delivered, student=alert.student
        )

    def record(
        self, t: float, kind: str, text: str, *, delivered: bool, student: str | None
    ) -> None:
        """Stores one entry of the teacher's alert list (an alert, or a mark such as ``!fine``'s)
        and shows it on the live dashboard."""
        session = self.session
        session.writer.submit(
            AlertRaised(session.meeting_id, t, kind, text, delivered, display_name=student)
        )
        session.publish(
            {
                "type": "alert",
                "kind": kind,
                "student": student,
                "text": text,
                "t": t,
                "delivered": delivered,
            }
        )

    @property
    def _meeting(self) -> str:
        return self.session.meeting_id
