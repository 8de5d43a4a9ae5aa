"""What a person types for a meeting or a student, resolved to the stored id or display name.

A meeting id is 32 hex digits: nobody types that, so a unique prefix of at least
``MIN_MEETING_PREFIX`` hex digits is enough (as git does with commits). A display name is found
exactly, else case-insensitively (Unicode NFC and case folding: ``aiko`` finds ``Aiko``); when
nothing matches, the error suggests the closest stored names.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Meeting, Participant
from storage.results import UnknownMeetingError, UnknownStudentError

MIN_MEETING_PREFIX = 6
_HEX_PREFIX = re.compile(rf"[0-9a-f]{{{MIN_MEETING_PREFIX},32}}")
#: Suggestions in a "did you mean" (closest first).
_MAX_SUGGESTIONS = 3


def resolve_meeting_id(session: Session, text: str) -> str:
    """The stored meeting id ``text`` names: the id itself, or a unique hex prefix of one.

    Raises ``UnknownMeetingError`` (a ``LookupError``) for no match or several.
    """
    if session.get(Meeting, text) is not None:
        return text
    prefix = text.strip().lower()
    if not _HEX_PREFIX.fullmatch(prefix):
        raise UnknownMeetingError(
            "Expected a stored meeting id, or a unique prefix of one of at least "
            f"{MIN_MEETING_PREFIX} hex digits (see `classpulse history`). Received: {text!r}"
        )
    found = session.scalars(
        select(Meeting.id).where(Meeting.id.startswith(prefix, autoescape=True)).limit(10)
    ).all()
    if len(found) == 1:
        return found[0]
    if not found:
        raise UnknownMeetingError(
            f"Expected the id (or a unique prefix) of a stored meeting; none starts with "
            f"{prefix!r}. Received: {text!r}"
        )
    num_found = session.scalar(
        select(func.count()).select_from(Meeting).where(Meeting.id.startswith(prefix))
    )
    raise UnknownMeetingError(
        f"Expected a unique meeting id prefix; {num_found} meetings start with {prefix!r}: "
        f"type more digits. Received: {text!r}"
    )


def resolve_display_name(session: Session, name: str) -> str:
    """The stored display name ``name`` refers to: itself (NFC), else the one stored name equal
    to it case-insensitively.

    Raises ``UnknownStudentError`` (a ``LookupError``) when none matches, naming the closest
    stored names, or when several differ only in case, naming them.
    """
    wanted = unicodedata.normalize("NFC", name)
    exact = select(Participant.id).where(Participant.display_name == wanted).limit(1)
    if session.execute(exact).first() is not None:
        return wanted
    stored = session.scalars(select(Participant.display_name).distinct()).all()
    key = _fold(wanted)
    matches = sorted({s for s in stored if _fold(s) == key})
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(repr(m) for m in matches[:5])
        raise UnknownStudentError(
            f"Expected one student; {len(matches)} stored names differ from it only in case: "
            f"{listed}. Type the name exactly. Received: {name!r}"
        )
    by_fold: dict[str, str] = {}
    for stored_name in sorted(stored):
        by_fold.setdefault(_fold(stored_name), stored_name)
    close = difflib.get_close_matches(key, list(by_fold), n=_MAX_SUGGESTIONS, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(by_fold[c]) for c in close)}?" if close else ""
    raise UnknownStudentError(
        f"Expected the display name of a stored participant.{hint} Received: {name!r}"
    )


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
