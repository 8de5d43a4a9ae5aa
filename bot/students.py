"""The students of one session, keyed by platform identity (the connector's participant id).

A display name is only a label. Each present participant gets a label that is unique among the
present students — their name, or ``Ana #2`` while another "Ana" is here — and rows, alerts and
chat commands follow that participant, never whoever types the same name. Consent is bound the
same way: ``!optout`` and ``!optin`` change the sender's own record only.

One rule leans on names, on purpose and only towards *less* analysis: a name whose holder opted
out stays opted out for anyone who later joins under it (a rejoin after a network loss, a
reloaded page) until that participant says ``!optin`` themselves. So nobody can switch analysis
of an opted-out student back on by arriving under their name; and a second "Ana" (``Ana #2``)
opting out marks nothing, so she cannot end the real Ana's analysis after a rejoin either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from bot.analysis import ParticipantAnalysis, RemoteParticipantAnalysis
from bot.meetings.frames import FrameSource
from bot.meetings.protocol import Participant
from bot.meetings.remote_video import RemoteVideo
from bot.teacher import BoundedMap

#: Names remembered as opted out (a flood of opt-outs under fresh names forgets the oldest).
MAX_OPTED_OUT_NAMES = 2048


@dataclass
class Student:
    participant: Participant
    #: Unique among present students; the name the rows are stored under.
    label: str
    source: FrameSource | RemoteVideo | None = None
    analysis: ParticipantAnalysis | RemoteParticipantAnalysis | None = None
    opted_out: bool = False
    #: The name looks like the teacher's and nobody has claimed yet: neither analysed nor stored
    #: until a claim says who the teacher is.
    held: bool = False
    #: ``ParticipantJoined`` was stored for this student.
    stored: bool = False
    #: Every person label seen on this camera (``Ana``, ``Ana (2)``): all of it is theirs.
    labels: set[str] = field(default_factory=set)


class StudentRoster:
    def __init__(self, max_opted_out_names: int = MAX_OPTED_OUT_NAMES) -> None:
        self._by_id: dict[str, Student] = {}
        self._by_label: dict[str, Student] = {}
        self._opted_out_names: BoundedMap[bool] = BoundedMap(max_opted_out_names)

    def __iter__(self) -> Iterator[Student]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, participant: Participant) -> Student | None:
        return self._by_id.get(participant.id)

    def by_label(self, label: str) -> Student | None:
        return self._by_label.get(label)

    def add(self, participant: Participant, *, held: bool = False) -> Student:
        found = self._by_id.get(participant.id)
        if found is not None:
            return found
        name = participant.display_name
        label, number = name, 1
        while label in self._by_label:
            number += 1
            label = f"{name} #{number}"
        student = Student(participant, label, held=held, opted_out=name in self._opted_out_names)
        self._by_id[participant.id] = student
        self._by_label[label] = student
        return student

    def remove(self, participant: Participant) -> Student | None:
        student = self._by_id.pop(participant.id, None)
        if student is not None:
            self._by_label.pop(student.label, None)
        return student

    def set_opted_out(self, student: Student, opted_out: bool) -> None:
        """Only the holder of the plain name (``Ana``, not ``Ana #2``) marks the name: a second
        "Ana" who opts out must not opt out the real Ana when she rejoins. An opt-in never
        unmarks it: nobody can opt the name back in for whoever comes next."""
        student.opted_out = opted_out
        name = student.participant.display_name
        if opted_out and student.label == name:
            self._opted_out_names.put(name, True)
