"""Attention in the stored samples: counts of samples with the head turned away or the eyes
closed (NULL readings, from a face stage without landmarks or older rows, count as neither)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, case, false, func, select, true

from storage.models import Sample


def looking_away_count(looking_away: Any = Sample.looking_away) -> Any:
    """Samples with the head turned away (an aggregate; NULL readings count as not);
    ``looking_away``: the column, when it is read from a subquery."""
    return func.sum(case((looking_away == true(), 1), else_=0))


def eyes_closed_count(eyes_open: Any = Sample.eyes_open) -> Any:
    """Samples with the eyes closed (an aggregate; NULL readings count as not);
    ``eyes_open``: the column, when it is read from a subquery."""
    return func.sum(case((eyes_open == false(), 1), else_=0))


def select_attention_counts(participant_ids: Any) -> Select:
    """(participant id, looking away, eyes closed, with a reading) samples of ``participant_ids``."""
    return (
        select(
            Sample.participant_id,
            looking_away_count().label("n_away"),
            eyes_closed_count().label("n_closed"),
            func.count(Sample.eyes_open).label("n_read"),
        )
        .where(Sample.participant_id.in_(participant_ids))
        .group_by(Sample.participant_id)
    )
