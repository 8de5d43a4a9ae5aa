"""The post-class report as one self-contained, printable HTML page (inline CSS and SVG, no
external assets, no script): title, date, coverage, the class curve, a lane per student, time per
state, alerts with times, and the model's limits."""

from __future__ import annotations

from datetime import datetime
from html import escape

from bot.report.charts import class_curve, lanes, state_bar
from bot.report.data import ReportData
from bot.report.svg import ATTENTION_COLOURS, STATE_COLOURS, STATE_LABELS, clock

#: The page's Content-Security-Policy when served: its own inline style, nothing else at all.
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

LIMITS = (
    "What these states are, and are not: the model reads each student's face in the camera, "
    "not their learning. “Confused” means a face like the angry, disgusted or fearful faces it "
    "was trained on and “bored” a face like the sad ones; a neutral face counts as interested, "
    "so a quietly lost student often reads as interested, and a frown of concentration as "
    "confused. Where a head turned and whether the eyes were open are read from face landmarks "
    "once a second (the strips in the lanes); posture and cameras that are off are not seen "
    "(the coverage above says how much of the class it saw), and looking away is not the same "
    "as not listening. The emotion model was tested on posed "
    "expressions of few people and makes more errors on webcams, with children, glasses, masks "
    "or poor light. Use it as a prompt to check in with a student, never to grade or judge one."
)

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, sans-serif; color: #1d232b; margin: 24px auto; max-width: 760px;
  padding: 0 16px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; }
h2 { font-size: 1.1rem; margin: 22px 0 6px; border-bottom: 1px solid #dfe3e8; }
.meta, .note, footer { color: #5d6673; }
.coverage strong { font-size: 1.2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #dfe3e8; vertical-align: top; }
th { color: #5d6673; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
ul.legend { list-style: none; padding: 0; margin: 4px 0; display: flex; flex-wrap: wrap; gap: 14px; }
svg { max-width: 100%; height: auto; }
footer { margin-top: 24px; font-size: 0.85rem; }
@page { size: A4; margin: 14mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 11pt; }
  section, svg, tr { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
"""


def render_report(data: ReportData) -> str:
    """The whole page as a string (UTF-8 when written)."""
    meeting = data.meeting
    heading = meeting.title or f"Class in room {meeting.room}"
    body = [
        f"<h1>{escape(heading)}</h1>",
        f'<p class="meta">{escape(_meta_line(data))}</p>',
        _coverage_section(data),
        "<section><h2>The class over time</h2>",
        _legend(data, coverage=True),
        class_curve(data),
        "</section>",
        "<section><h2>Students</h2>",
        _legend(data, coverage=False),
        lanes(data),
        "</section>",
        _time_per_state(data),
        _alerts(data),
        f'<section><h2>The model’s limits</h2><p class="limits">{escape(_limits(data))}</p>'
        "</section>",
        f"<footer>Meeting {escape(meeting.meeting_id)} · buckets of {data.bucket_s:g} s · "
        f"report made {escape(_local(data.generated_at))} by classpulse</footer>",
    ]
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(heading)} · classpulse report</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _limits(data: ReportData) -> str:
    if "interested" in _states_in(data):
        return LIMITS
    return (
        "In this class no emotion was read: only whether a face was in view, where the head "
        "turned and whether the eyes were open (from face landmarks, once a second). "
        "Looking away is not the same as not listening, and a camera that is off is not seen. "
        "Use it as a prompt to check in with a student, never to grade or judge one."
    )


def _local(moment: datetime) -> str:
    local = moment.astimezone()
    return local.strftime("%Y-%m-%d %H:%M") + f" ({local.strftime('%Z') or 'local time'})"


def _meta_line(data: ReportData) -> str:
    meeting = data.meeting
    start = meeting.started_at.astimezone()
    if meeting.ended_at is not None:
        end = meeting.ended_at.astimezone().strftime("%H:%M")
        span = f"{start:%A %d %B %Y}, {start:%H:%M}–{end} ({start.strftime('%Z')})"
    else:
        span = f"{start:%A %d %B %Y}, from {start:%H:%M} ({start.strftime('%Z')}; not closed)"
    students = meeting.num_participants
    return (
        f"{span} · {clock(data.duration_s)} long · room {meeting.room} · teacher "
        f"{meeting.teacher or '–'} · {students} student{'s' if students != 1 else ''}"
    )


def _coverage_section(data: ReportData) -> str:
    cover = data.coverage
    share = cover.share_visible
    if share is None:
        figure = "<strong>no student</strong> was present while the bot watched"
    else:
        figure = (
            f"<strong>{cover.mean_visible:.1f} of {cover.mean_present:.1f}</strong> students "
            f"visible on average (<strong>{share:.0%}</strong>)"
        )
    return (
        '<section class="coverage" id="coverage"><h2>Coverage</h2>'
        f"<p>{figure}. A student is visible when the bot could read their face; a camera that "
        "is off or shows no face is not, and students who opted out are not counted. The "
        "dashed line in the chart below is this share over time: where it is low, the states "
        "describe few students.</p></section>"
    )


def _states_in(data: ReportData) -> list[str]:
    seen = {bucket.state for lane in data.lanes for bucket in lane.buckets}
    emotions = any(
        s.seconds_interested + s.seconds_bored + s.seconds_confused for s in data.summary.students
    )
    states = ["interested", "bored", "confused"] if emotions or "present" not in seen else []
    return (["present"] if "present" in seen else []) + states + ["no_face"]


def _has_attention(data: ReportData) -> bool:
    """Whether the face stage read head pose and eyes (the landmark stage; Haar reads none)."""
    return any(s.num_attention_samples for s in data.summary.students)


def _swatch(colour: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="12" height="12" aria-hidden="true">'
        f'<rect width="12" height="12" fill="{colour}"/></svg>'
    )


def _legend(data: ReportData, *, coverage: bool) -> str:
    items = [
        f"<li>{_swatch(STATE_COLOURS[s])} {escape(STATE_LABELS[s])}</li>" for s in _states_in(data)
    ]
    if coverage:
        items.append(
            '<li><svg xmlns="http://www.w3.org/2000/svg" width="22" height="12" aria-hidden="true">'
            '<line x1="0" y1="6" x2="22" y2="6" stroke="#1d232b" stroke-width="2" '
            'stroke-dasharray="5 3"/></svg> students visible (coverage)</li>'
        )
        items.append("<li>▼ an alert to the teacher</li>")
    if not coverage and _has_attention(data):
        for key, label in (("looking_away", "looking away"), ("eyes_closed", "eyes closed")):
            items.append(
                f"<li>{_swatch(ATTENTION_COLOURS[key])} {label} (a strip under the lane: at least "
                "half of that time)</li>"
            )
    return f'<ul class="legend">{"".join(items)}</ul>'


def _time_per_state(data: ReportData) -> str:
    attention = _has_attention(data)
    head = "".join(f'<th class="num">{escape(STATE_LABELS[s])}</th>' for s in _states_in(data))
    if attention:
        head += '<th class="num">looking away</th><th class="num">eyes closed</th>'
    rows = []
    for student in data.summary.students:
        seconds = {
            "interested": student.seconds_interested,
            "bored": student.seconds_bored,
            "confused": student.seconds_confused,
            "no_face": student.seconds_no_face,
            "present": student.seconds_present,
        }
        cells = "".join(f'<td class="num">{clock(seconds[s])}</td>' for s in _states_in(data))
        if attention:
            cells += (
                f'<td class="num">{clock(student.seconds_looking_away)}</td>'
                f'<td class="num">{clock(student.seconds_eyes_closed)}</td>'
            )
        note = " (opted out)" if student.opted_out else ""
        bar = state_bar((s, seconds[s]) for s in _states_in(data))
        rows.append(
            f"<tr><td>{escape(student.display_name)}{note}</td>{cells}"
            f'<td class="num">{student.num_alerts}</td><td>{bar}</td></tr>'
        )
    if not rows:
        return '<section><h2>Time per state</h2><p class="note">No students.</p></section>'
    return (
        '<section><h2>Time per state</h2><table id="time-per-state"><thead><tr><th>student</th>'
        f'{head}<th class="num">alerts</th><th></th></tr></thead><tbody>{"".join(rows)}'
        '</tbody></table><p class="note">Minutes:seconds of the time the bot followed each '
        "student’s camera.</p></section>"
    )


def _alerts(data: ReportData) -> str:
    if not data.alerts:
        return '<section><h2>Alerts</h2><p class="note">No alerts in this class.</p></section>'
    start = data.meeting.started_at.timestamp()
    rows = []
    for alert in data.alerts:
        at = alert.t.timestamp() - start
        who = escape(alert.display_name) if alert.display_name else "<em>the class</em>"
        delivered = "" if alert.delivered else " (not delivered)"
        rows.append(
            f'<tr><td class="num">{clock(at)}</td><td>{alert.t.astimezone():%H:%M:%S}</td>'
            f"<td>{who}</td><td>{escape(alert.text)}{delivered}</td></tr>"
        )
    return (
        '<section><h2>Alerts</h2><table id="alerts"><thead><tr><th class="num">after</th>'
        "<th>clock</th><th>about</th><th>what the teacher was told</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )
