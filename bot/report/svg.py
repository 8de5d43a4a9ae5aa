"""A few SVG primitives for the report: escaped text, rectangles, axes, all as strings.

Hand-written rather than a plotting library: the charts are a dozen rectangles and lines each,
rendered on the server into a page with no external assets, and matplotlib's SVG backend would
add fonts-as-paths and a heavy import to a CLI command that otherwise starts instantly.
Colours are presentation attributes, not ``style=``: they survive a strict style policy.
"""

from __future__ import annotations

from html import escape

#: The dashboard's colours (bot/web/static/style.css), one per stored state.
STATE_COLOURS = {
    "interested": "#2b7bb9",
    "present": "#5aa469",
    "bored": "#e69f00",
    "confused": "#c4407a",
    "no_face": "#b8bcc4",
}
STATE_LABELS = {
    "interested": "interested",
    "present": "present (attention only)",
    "bored": "bored",
    "confused": "confused",
    "no_face": "no face",
}
#: The lanes' attention strips (from the face stage's landmark readings; absent with Haar).
ATTENTION_COLOURS = {"looking_away": "#1d232b", "eyes_closed": "#7b3fa0"}
INK = "#1d232b"
MUTED = "#5d6673"
LINE = "#dfe3e8"


def attrs(**values: object) -> str:
    """``key="value"`` pairs, escaped; ``class_`` → ``class``, ``_`` → ``-``; None is left out."""
    parts = []
    for key, value in values.items():
        if value is None:
            continue
        name = "class" if key == "class_" else key.replace("_", "-")
        if isinstance(value, float):
            value = f"{value:.2f}".rstrip("0").rstrip(".")
        parts.append(f'{name}="{escape(str(value), quote=True)}"')
    return " ".join(parts)


def rect(x: float, y: float, width: float, height: float, fill: str, **extra: object) -> str:
    return f"<rect {attrs(x=x, y=y, width=max(width, 0.0), height=max(height, 0.0), fill=fill, **extra)}/>"


def titled_rect(
    x: float, y: float, width: float, height: float, fill: str, tooltip: str, **extra: object
) -> str:
    """A rectangle with a tooltip (its ``<title>``)."""
    box = attrs(x=x, y=y, width=max(width, 0.0), height=max(height, 0.0), fill=fill, **extra)
    return f"<rect {box}>{title(tooltip)}</rect>"


def line(x1: float, y1: float, x2: float, y2: float, stroke: str = LINE, **extra: object) -> str:
    return f"<line {attrs(x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, **extra)}/>"


def text(x: float, y: float, content: str, **extra: object) -> str:
    extra.setdefault("font_size", 11)
    extra.setdefault("fill", INK)
    return f"<text {attrs(x=x, y=y, **extra)}>{escape(content)}</text>"


def title(content: str) -> str:
    """A tooltip for the enclosing element (shown on hover, read by screen readers)."""
    return f"<title>{escape(content)}</title>"


def svg(width: float, height: float, body: list[str], label: str, **extra: object) -> str:
    head = attrs(
        xmlns="http://www.w3.org/2000/svg",
        width=width,
        height=height,
        viewBox=f"0 0 {width:g} {height:g}",
        role="img",
        aria_label=label,
        font_family="system-ui, sans-serif",
        **extra,
    )
    return f"<svg {head}>{''.join(body)}</svg>"


def clock(seconds: float) -> str:
    """Seconds since the start as ``m:ss`` or ``h:mm:ss``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def time_ticks(duration_s: float, max_ticks: int = 8) -> list[float]:
    """Round tick positions (seconds) from 0 to ``duration_s``, at most ``max_ticks`` + 1."""
    for step in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if duration_s / step <= max_ticks:
            break
    return [float(t) for t in range(0, int(duration_s) + 1, step)]
