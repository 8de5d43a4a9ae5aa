"""The capacity benchmark's verdict: a row meets the goal only with every part of it measured."""

from __future__ import annotations

from benchmarks.class_capacity import meets_goal, table
from benchmarks.decode_only import decode_figures


def row(fps: float, lag: float, ratio: float | None) -> dict:
    out: dict = {"students": 60, "media_workers": "default", "fps_per_student": fps}
    out.update(lag_p95_s=lag, cpu_pct=140.0, cpu_pct_by_process={}, rss_mb=1470)
    if ratio is not None:
        out["cpu_over_decode"] = ratio
        out["decode_cpu_pct"] = 140.0 / ratio
    return out


def test_every_part_of_the_goal_counts() -> None:
    assert meets_goal(row(5.0, 0.4, 1.4)) is True
    assert meets_goal(row(5.0, 0.4, 1.78)) is False  # too much CPU over decoding
    assert meets_goal(row(3.75, 0.4, 1.3)) is False  # behind
    assert meets_goal(row(5.0, 1.2, 1.3)) is False  # late


def test_a_row_without_decode_only_is_not_called_a_pass() -> None:
    unmeasured = row(5.0, 0.4, None)
    assert meets_goal(unmeasured) is None
    assert meets_goal(row(3.0, 0.4, None)) is False  # behind is behind, ratio or not
    assert (
        table([unmeasured]).splitlines()[-1].endswith("| fps and lag only (no decode-only run) |")
    )
    assert table([row(5.0, 0.4, 1.78)]).splitlines()[-1].endswith("| no |")


def test_the_ratio_is_taken_against_both_decode_only_phases() -> None:
    before = {"decode_cpu_pct": 60.7, "decode_fps_per_student": 15.0, "decode_rss_mb": 203}
    after = {"decode_cpu_pct": 71.0, "decode_fps_per_student": 14.2, "decode_rss_mb": 210}
    figures = decode_figures([before, after])
    assert figures["decode_cpu_pct"] == 65.8
    assert figures["decode_cpu_pct_runs"] == [60.7, 71.0]
    # The worse phase speaks for the pair: a phase that fell behind is not hidden by the mean.
    assert figures["decode_fps_per_student"] == 14.2
    assert figures["decode_rss_mb"] == 210
