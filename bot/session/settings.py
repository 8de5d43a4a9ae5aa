"""What a meeting session is configured with, what it says on joining, and what it needs of scoring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from bot.alerts import AlertSettings
from bot.teacher import check_teacher_code, new_teacher_code
from engine.states import StateSettings
from engine.types import Scores


class ScoringHubLike(Protocol):
    """What the session needs of ``bot.scoring.ScoringHub`` (tests pass a fake of this shape)."""

    def register(self, key: str, handler: Callable[[str, Scores], None]) -> None: ...
    def unregister(self, key: str) -> None: ...
    def submit(self, key: str, label: str, t: float, crop: np.ndarray) -> None: ...
    def forget(self, key: str, label: str) -> None: ...


class MeetingScorer:
    """One meeting's view of the scoring hub: the engine's ``CropScorer`` for ``PersonStates``
    (persons are the meeting's labels; the hub keys them by meeting)."""

    def __init__(self, hub: ScoringHubLike, meeting_id: str) -> None:
        self.hub = hub
        self.meeting_id = meeting_id

    def submit(self, person_id: str, t: float, crop: np.ndarray) -> None:
        self.hub.submit(self.meeting_id, person_id, t, crop)

    def forget(self, person_id: str) -> None:
        self.hub.forget(self.meeting_id, person_id)


NOTICE = (
    "Hello, I am classpulse, the teacher's engagement assistant. I estimate from camera images "
    "whether the class looks interested, bored or confused, where heads are turned and whether "
    "eyes are open, and tell only the teacher. No video "
    "or image is stored, only these estimates. Type !optout to stop being analysed (your data "
    "from this class is deleted at once); !optin to join again."
)

#: The notice of the ``attention`` mode: what is analysed, and that emotions are not.
ATTENTION_NOTICE = (
    "Hello, I am classpulse, the teacher's attention assistant. From camera images I check only "
    "where each head is turned and whether the eyes are open, and tell only the teacher when "
    "someone has looked away or had their eyes closed for a while. I do not analyse emotions "
    "or facial expressions. No video or image is stored, only these signals. Type !optout to "
    "stop being analysed (your data from this class is deleted at once); !optin to join again."
)

#: What a bot analyses. ``engagement``: the emotion model (interested, bored, confused) plus
#: attention signals when the face stage reads them. ``attention``: head direction and eye
#: closure only — no emotion model is loaded or run (EU AI Act, Article 5(1)(f)).
MODES = ("engagement", "attention")
#: The face stage each mode runs (``engine.faces.DetectorSettings.stage``): the hybrid stage
#: (BlazeFace and Haar find faces, templates follow them, the face mesh reads each once a second:
#: head pose and eyes) for both. It also frames the crops more steadily than Haar alone (stage
#: stability 0.95 against ~0.89 in the model report). A face the mesh cannot read (a browser's
#: smallest simulcast layer) is still analysed, with its attention unknown.
FACE_STAGES = {"engagement": "hybrid", "attention": "hybrid"}


def check_mode(mode: object, name: str = "mode") -> str:
    if not isinstance(mode, str) or mode.strip().lower() not in MODES:
        raise ValueError(f"Expected {name} 'engagement' or 'attention'. Received: {mode!r:.80}")
    return mode.strip().lower()


@dataclass(frozen=True)
class SessionSettings:
    """What one bot does in one meeting; every threshold lives here or in the nested settings.

    ``face_timeout_s=2``: no crop for 2 s (10 analysed frames) reads as ``no_face`` on the
    timeline, before the tracker formally loses the face. ``empty_grace_s=30``: the bot leaves
    after being alone for 30 s, long enough to survive everyone's network hiccup.
    """

    #: The teacher's display name: what the class is stored under, and whose camera is held
    #: back until someone claims. It grants nothing: ``teacher_code`` does.
    teacher: str
    #: The secret the teacher whispers (``!claim CODE``) to be the teacher; made when not given.
    teacher_code: str = field(default_factory=new_teacher_code, repr=False)
    bot_name: str = "classpulse bot"
    platform: str = "janus"
    room: str = ""
    title: str | None = None
    analysis_fps: float = 5.0
    sample_period_s: float = 1.0
    face_timeout_s: float = 2.0
    empty_grace_s: float = 30.0
    chat_timeout_s: float = 5.0
    alerts: AlertSettings = field(default_factory=AlertSettings)
    states: StateSettings = field(default_factory=StateSettings)
    #: ``engagement`` or ``attention`` (see ``MODES``); in ``attention`` mode the alerts are
    #: attention-only whatever ``alerts`` says.
    mode: str = "engagement"

    def __post_init__(self) -> None:
        object.__setattr__(self, "teacher_code", check_teacher_code(self.teacher_code))
        object.__setattr__(self, "mode", check_mode(self.mode))
        if self.mode == "attention" and self.alerts.alert_emotions:
            object.__setattr__(self, "alerts", replace(self.alerts, alert_emotions=False))

    @property
    def reads_emotions(self) -> bool:
        return self.mode == "engagement"

    @property
    def face_stage(self) -> str:
        return FACE_STAGES[self.mode]

    @property
    def notice(self) -> str:
        return NOTICE if self.reads_emotions else ATTENTION_NOTICE
