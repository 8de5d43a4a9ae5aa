"""The post-class report: the API route (token, 404, attachment, strict policy), the CLI command,
what the page holds for a seeded meeting, and a meeting whose scores are all NULL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient

from bot.cli import main
from bot.report import load_report, render_report
from engine.types import EngagementState
from storage import MeetingClosed, MeetingOpened, ParticipantJoined, Sample, Storage, Writer
from tests.web.conftest import HOSTILE_NAME, Seeded

ATTENTION_ID = "attention-only-0001"


def seed_attention_meeting(writer: Writer, started_at: float) -> None:
    """A class in the attention-only mode: states ``present`` / ``no_face``, every score NULL;
    Ben looks away from 0:10 until his face goes at 0:30; Cleo joins with her camera off and
    never has a sample."""
    writer.submit(MeetingOpened(ATTENTION_ID, "builtin", "demo", started_at, title="Attention"))
    for name in ("Aiko", "Ben", "Cleo"):
        writer.submit(ParticipantJoined(ATTENTION_ID, name, started_at))
    for second in range(60):
        for name, face in (("Aiko", True), ("Ben", second < 30)):
            state = EngagementState.PRESENT if face else EngagementState.NO_FACE
            away = None if not face else name == "Ben" and second >= 10
            writer.submit(
                Sample(
                    ATTENTION_ID,
                    name,
                    started_at + second + 0.5,
                    state,
                    face,
                    yaw=(40.0 if away else 2.0) if face else None,
                    pitch=0.0 if face else None,
                    eyes_open=True if face else None,
                    looking_away=away,
                )
            )
    writer.submit(MeetingClosed(ATTENTION_ID, started_at + 60))


async def test_api_serves_the_seeded_meetings_report(client: TestClient, seeded: Seeded) -> None:
    meeting = seeded.algebra
    response = await client.get(f"/api/meetings/{meeting.meeting_id}/report")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    page = await response.text()
    assert "<h1>Algebra</h1>" in page
    assert 'id="class-curve"' in page and 'id="lanes"' in page
    # Every seeded student has a lane and a row; the hostile name is text, never markup.
    assert page.count('class="lane ') >= 3 * 1
    assert HOSTILE_NAME not in page and "&lt;img src=x" in page
    assert "<script" not in page.lower() and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    # Both alerts, with their times after the start and their texts.
    assert "1:30" in page and "Ana looks confused" in page and "Many look confused" in page
    # Coverage: Ben had no face for 10 of 120 s (one 10 s bucket in 12: 2 of 3 visible there).
    coverage = re.search(r"<strong>([\d.]+) of ([\d.]+)</strong> students visible", page)
    assert coverage is not None
    assert coverage.groups() == ("2.9", "3.0"), coverage.groups()
    assert "The model’s limits" in page and "never to grade" in page


async def test_api_report_needs_the_token_and_a_stored_meeting(
    client: TestClient, seeded: Seeded
) -> None:
    path = f"/api/meetings/{seeded.algebra.meeting_id}/report"
    async with ClientSession() as anonymous, anonymous.get(client.make_url(path)) as refused:
        assert refused.status == 401
    missing = await client.get("/api/meetings/no-such-meeting/report")
    assert missing.status == 404
    assert (await missing.json())["message"].startswith("Expected the id of a stored meeting")
    extra = await client.get(f"{path}?bucket=10s")
    assert extra.status == 400


def test_report_of_a_meeting_with_null_scores(storage: Storage, writer: Writer) -> None:
    seed_attention_meeting(writer, 1_770_000_000.0)
    assert writer.flush(timeout_s=30)
    data = load_report(storage, ATTENTION_ID)
    page = render_report(data)
    assert 'class="lane present' in page and "present (attention only)" in page
    # Aiko always visible, Ben half the time, Cleo (camera off) never: 1.5 of 3 on average.
    assert data.coverage.mean_present == 3.0
    assert data.coverage.mean_visible == pytest.approx(1.5)
    assert "<strong>1.5 of 3.0</strong>" in page
    assert "No alerts in this class." in page
    # Attention readings: Ben's looking-away span is marked in his lane and counted (0:20).
    assert 'class="attention looking_away"' in page
    assert 'class="attention eyes_closed"' not in page
    assert '<th class="num">looking away</th>' in page
    ben_row = page[page.index("<tr><td>Ben") :].split("</tr>")[0]
    assert '<td class="num">0:20</td>' in ben_row
    # No emotion was read: the table has no emotion columns.
    assert ">interested</th>" not in page


def test_cli_writes_the_report_by_prefix(
    storage: Storage,
    seeded: Seeded,
    settings: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = str(storage.url.render_as_string(hide_password=False))
    output = tmp_path / "algebra.html"
    # The seeded ids are not hex: the full id names it (prefixes are covered by the lookup tests).
    code = main(["report", seeded.algebra.meeting_id, "-o", str(output), "--database-url", url])
    assert code == 0
    assert f"wrote {output}" in capsys.readouterr().out
    assert output.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert main(["report", seeded.geometry.meeting_id, "-o", "-", "--database-url", url]) == 0
    assert "<h1>Geometry</h1>" in capsys.readouterr().out
    assert main(["report", "nope", "--database-url", url]) == 2
    assert "Expected" in capsys.readouterr().err
