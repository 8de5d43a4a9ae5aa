"""The report's charts as inline SVG: the class curve with coverage, one lane per student, and a
bar of time per state. Pure functions of ``ReportData``."""

from __future__ import annotations

from collections.abc import Iterable

from bot.report.data import ReportData
from bot.report.svg import (
    ATTENTION_COLOURS,
    INK,
    LINE,
    MUTED,
    STATE_COLOURS,
    clock,
    line,
    rect,
    svg,
    text,
    time_ticks,
    title,
    titled_rect,
)

WIDTH = 720.0
LEFT = 150.0  # room for the lanes' names and the curve's axis labels
RIGHT = 12.0
PLOT = WIDTH - LEFT - RIGHT
#: A bucket is marked "looking away" / "eyes closed" in a lane when at least this share of its
#: samples was (one glance aside in a 10 s bucket is not worth a mark).
ATTENTION_SHARE = 0.5
#: Bottom-to-top order of the class curve's stacked shares.
CURVE_ORDER = ("interested", "present", "confused", "bored", "no_face")


def _x(seconds: float, duration_s: float) -> float:
    return LEFT + PLOT * min(max(seconds / duration_s, 0.0), 1.0) if duration_s > 0 else LEFT


def _time_axis(top: float, bottom: float, duration_s: float, label: str) -> list[str]:
    parts = [line(LEFT, bottom, LEFT + PLOT, bottom, INK)]
    for tick in time_ticks(duration_s):
        x = _x(tick, duration_s)
        parts.append(line(x, top, x, bottom, LINE))
        parts.append(text(x, bottom + 14, clock(tick), text_anchor="middle", fill=MUTED))
    parts.append(text(LEFT + PLOT / 2, bottom + 30, label, text_anchor="middle", fill=MUTED))
    return parts


def class_curve(data: ReportData) -> str:
    """Shares of the class's samples per state in each bucket (stacked columns), the coverage
    (students visible / present) as a line, and a ▼ per alert on the time axis."""
    top, height = 10.0, 180.0
    bottom = top + height
    duration = data.duration_s
    parts: list[str] = []
    for share in (0.0, 0.5, 1.0):
        y = bottom - height * share
        parts.append(line(LEFT, y, LEFT + PLOT, y, LINE))
        parts.append(text(LEFT - 6, y + 4, f"{share:.0%}", text_anchor="end", fill=MUTED))
    parts.append(
        text(
            14,
            top + height / 2,
            "share of the class",
            fill=MUTED,
            transform=f"rotate(-90 14 {top + height / 2:g})",
            text_anchor="middle",
        )
    )
    for bucket in data.timeline:
        shares = {
            "interested": bucket.share_interested,
            "bored": bucket.share_bored,
            "confused": bucket.share_confused,
            "no_face": bucket.share_no_face,
            "present": bucket.share_present,
        }
        x0 = _x(bucket.start_s, duration)
        width = _x(bucket.start_s + bucket.bucket_s, duration) - x0
        y = bottom
        for state in CURVE_ORDER:
            h = height * shares[state]
            if h <= 0:
                continue
            y -= h
            label = state.replace("_", " ")
            parts.append(
                titled_rect(
                    x0,
                    y,
                    width,
                    h,
                    STATE_COLOURS[state],
                    f"{clock(bucket.start_s)}: {shares[state]:.0%} {label}",
                    class_=f"share {state}",
                )
            )
    points = [
        f"{_x(b.start_s + b.bucket_s / 2, duration):.1f},{bottom - height * b.share_visible:.1f}"
        for b in data.coverage.buckets
        if b.share_visible is not None
    ]
    if points:
        parts.append(
            f'<polyline class="coverage" points="{" ".join(points)}" fill="none" '
            f'stroke="{INK}" stroke-width="2" stroke-dasharray="5 3"/>'
        )
    for alert in data.alerts:
        at = alert.t.timestamp() - data.meeting.started_at.timestamp()
        x = _x(at, duration)
        who = alert.display_name or "the class"
        parts.append(
            f'<path class="alert" d="M{x - 5:.1f},{bottom + 1} L{x + 5:.1f},{bottom + 1} '
            f'L{x:.1f},{bottom + 9} Z" fill="{INK}">{title(f"{clock(at)} alert: {who}")}</path>'
        )
    parts += _time_axis(top, bottom + 10, duration, "time since the start of the class (m:ss)")
    return svg(
        WIDTH, bottom + 44, parts, "The class over time: states and coverage", id="class-curve"
    )


def lanes(data: ReportData) -> str:
    """One row per student: each bucket coloured by the student's most frequent state, a mark at
    each of their alerts; an opted-out student's row stays empty and says so."""
    row, gap, top = 16.0, 6.0, 4.0
    duration = data.duration_s
    parts: list[str] = []
    alerts_by_name: dict[str, list[float]] = {}
    for alert in data.alerts:
        if alert.display_name is not None:
            at = alert.t.timestamp() - data.meeting.started_at.timestamp()
            alerts_by_name.setdefault(alert.display_name, []).append(at)
    y = top
    for lane in data.lanes:
        name = lane.display_name if len(lane.display_name) <= 22 else lane.display_name[:21] + "…"
        parts.append(text(LEFT - 8, y + row - 4, name, text_anchor="end"))
        parts.append(rect(LEFT, y, PLOT, row, "#f5f7fa"))
        if lane.opted_out:
            parts.append(text(LEFT + 6, y + row - 4, "opted out: nothing kept", fill=MUTED))
        for bucket in lane.buckets:
            x0 = _x(bucket.start_s, duration)
            width = _x(bucket.start_s + lane.bucket_s, duration) - x0
            colour = STATE_COLOURS.get(bucket.state, LINE)
            label = bucket.state.replace("_", " ")
            parts.append(
                titled_rect(
                    x0,
                    y,
                    width,
                    row,
                    colour,
                    f"{lane.display_name}, {clock(bucket.start_s)}: {label}",
                    class_=f"lane {bucket.state}",
                )
            )
        for bucket in lane.buckets:  # attention: a strip under the lane where it held
            x0 = _x(bucket.start_s, duration)
            width = _x(bucket.start_s + lane.bucket_s, duration) - x0
            for share, colour, what, offset in (
                (bucket.share_looking_away, ATTENTION_COLOURS["looking_away"], "looking away", 0),
                (bucket.share_eyes_closed, ATTENTION_COLOURS["eyes_closed"], "eyes closed", 3),
            ):
                if share >= ATTENTION_SHARE:
                    parts.append(
                        titled_rect(
                            x0,
                            y + row - 3 - offset,
                            width,
                            3,
                            colour,
                            f"{lane.display_name}, {clock(bucket.start_s)}: {what} "
                            f"{share:.0%} of the time",
                            class_=f"attention {what.replace(' ', '_')}",
                        )
                    )
        for at in alerts_by_name.get(lane.display_name, ()):
            x = _x(at, duration)
            parts.append(line(x, y - 2, x, y + row + 2, INK, stroke_width=2, class_="alert"))
        y += row + gap
    if not data.lanes:
        parts.append(text(LEFT, y + row - 4, "No students in this meeting.", fill=MUTED))
        y += row + gap
    parts += _time_axis(top, y, duration, "time since the start of the class (m:ss)")
    return svg(WIDTH, y + 36, parts, "One lane per student", id="lanes")


def state_bar(seconds: Iterable[tuple[str, float]], width: float = 160.0) -> str:
    """A small stacked bar of time per state (the table's last column)."""
    pairs = [(state, s) for state, s in seconds if s > 0]
    total = sum(s for _, s in pairs)
    parts: list[str] = [rect(0, 0, width, 10, "#f5f7fa")]
    x = 0.0
    for state, s in pairs:
        w = width * s / total
        parts.append(rect(x, 0, w, 10, STATE_COLOURS[state]))
        x += w
    return svg(width, 10, parts, "time per state")
