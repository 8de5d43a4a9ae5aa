"""The operating-point criterion on made-up students (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.sustained import SustainedRule
from engine.training.alert_rule import FPS, StudentClip
from engine.training.operating_point import Scenarios, errors, table, with_offset
from engine.types import EngagementState as S

DESIGNED = (
    ("interested", 0.0, 60.0),
    ("confused", 60.0, 120.0),
    ("bored", 120.0, 180.0),
    ("interested", 180.0, 240.0),
)
REST = (("interested", 0.0, 300.0),)
FIRST = (("confused", 0.0, 60.0), ("interested", 60.0, 180.0))


def steady(probabilities: tuple[float, float, float], phases: tuple, name: str) -> StudentClip:
    """A scored clip whose every frame reads ``probabilities`` (no state change of its own)."""
    frames = int(phases[-1][2] * FPS)
    return StudentClip(name, phases, (), np.tile(np.array(probabilities), (frames, 1)))


def test_each_error_rate_counts_students() -> None:
    found = Scenarios(
        designed=[
            # found confused in its phase, never bored; a false confused alert while attentive
            StudentClip(
                "a",
                DESIGNED,
                (
                    (0.0, S.CONFUSED),
                    (40.0, S.INTERESTED),
                    (60.0, S.CONFUSED),
                    (120.0, S.INTERESTED),
                ),
            ),
            StudentClip(
                "b", DESIGNED, ((0.0, S.INTERESTED), (120.0, S.BORED), (180.0, S.INTERESTED))
            ),
        ],
        resting=[
            StudentClip("calm", REST, ((0.0, S.INTERESTED),)),
            StudentClip("frowning", REST, ((0.0, S.BORED),)),
            StudentClip("calm too", REST, ((0.0, S.INTERESTED),)),
            StudentClip("calm again", REST, ((0.0, S.INTERESTED),)),
        ],
        confused_first=[StudentClip("first", FIRST, ((0.0, S.CONFUSED), (60.0, S.INTERESTED)))],
    )
    rates = errors(found, SustainedRule(30.0))
    # Student a's 40 s of confusion at the start uses up the confused cooldown (5 min), so its
    # designed confusion is not alerted again.
    assert rates["confused_alerted"] == 0.0 and rates["bored_alerted"] == 0.5
    assert rates["attentive_false"] == 0.5
    assert rates["resting_false"] == 0.25
    assert rates["confused_first_missed"] == 0.0
    assert rates["E"] == pytest.approx((1 - 0.25) + 0.5 + 0.25 + 0.0)


def test_an_offset_turns_a_borderline_calm_face_into_a_false_alert() -> None:
    calm = steady((0.5, 0.1, 0.4), REST, "borderline")  # interested by 0.1
    found = Scenarios(designed=[], resting=[calm], confused_first=[])
    rows = table(found, rules=[SustainedRule(30.0)], offsets=[0.0, 0.5])
    by_offset = {row["offset"]: row["resting_false"] for row in rows}
    assert by_offset == {0.0: 0.0, 0.5: 1.0}  # 0.4·e^0.5 = 0.66 > 0.5: read confused
    shifted = with_offset([calm], 0.5)[0]
    assert shifted.states[0][1] is S.CONFUSED
    assert shifted.probabilities is not None
    assert np.allclose(shifted.probabilities.sum(axis=1), 1.0)


def test_an_unscored_clip_cannot_be_offset() -> None:
    with pytest.raises(ValueError, match="Expected a scored clip"):
        with_offset([StudentClip("x", REST, ((0.0, S.INTERESTED),))], 0.25)


def test_fine_silences_a_misread_calm_face_but_not_real_confusion_later() -> None:
    from engine.training.operating_point import fine_figures

    calm = (0.25, 0.1, 0.65)  # this student's calm face reads confused
    rest = steady(calm, (("interested", 0.0, 300.0),), "ana")
    phases = (
        ("interested", 0.0, 120.0),
        ("confused", 120.0, 180.0),
        ("bored", 180.0, 240.0),
        ("interested", 240.0, 300.0),
    )
    rows = [calm] * 600 + [(0.02, 0.03, 0.95)] * 300 + [(0.1, 0.8, 0.1)] * 300 + [calm] * 300
    designed = StudentClip("ana", phases, (), np.array(rows))
    figures = fine_figures(Scenarios(designed=[designed], resting=[rest], confused_first=[]))
    assert figures["alerts_without"] == 3  # every 5 minutes for 15 minutes
    assert figures["alerts_with"] == 1 and figures["alerted_again"] == 0
    assert figures["confused_fine"] == figures["bored_fine"] == 1.0  # real states still reported
