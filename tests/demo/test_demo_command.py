"""The README's main job: ``classpulse demo`` end to end, as a subprocess, stopped with SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from storage import Storage

#: Join, model start (~10 s), 20 s neutral, 40 s angry (designed: confused), 40 s sad (designed:
#: bored): the last designed alert is due ~90 s after start; the bound leaves room for a busy CI box.
ALERT_BOUND_S = 240.0
STUDENTS = ("Aiko", "Ben", "Chen")


def test_demo_shows_alerts_and_prints_the_summary(tmp_path: Path, jaffe_dir: Path) -> None:
    env = {**os.environ, "CLASSPULSE_DATASETS": str(jaffe_dir.parent), "PYTHONUNBUFFERED": "1"}
    env.pop("CLASSPULSE_DATABASE_URL", None)  # the data folder's own database: the normal one
    env.pop("CLASSPULSE_API_TOKEN", None)
    command = [
        sys.executable,
        "-m",
        "bot.cli",
        "demo",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        "--alert-after",
        "8",
        "--faces",
        str(jaffe_dir),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + ALERT_BOUND_S
        while not all(
            any(f"[to the teacher] {name} has looked bored" in line for line in lines)
            for name in STUDENTS
        ):
            assert process.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, (
                "no bored alert for everyone in time:\n" + "".join(lines)[-3000:]
            )
            time.sleep(0.5)
        assert any("teacher view:  http://127.0.0.1:" in line for line in lines)
        assert any("dashboard:     http://127.0.0.1:" in line for line in lines)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, "".join(lines)[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=10)
    output = "".join(lines)
    assert "Traceback" not in output, output[-3000:]
    summary_lines = [line for line in lines if line.startswith("class summary (")]
    assert summary_lines, output[-3000:]
    meeting_id = summary_lines[0].split("(")[1].split(")")[0]
    # Kept in the data folder's normal database, under the demo's title, so that history,
    # report and serve show it; the summary says how much of the class was visible.
    assert any(line.startswith("  coverage: ") and "students visible" in line for line in lines)
    assert any(f"classpulse report {meeting_id[:8]}" in line for line in lines)
    assert not (tmp_path / "api_token.json").exists()  # the user's token file is not touched
    with Storage.open(f"sqlite:///{tmp_path / 'classpulse.db'}") as storage:
        summary = storage.meeting_summary(meeting_id)
        alerts = storage.alerts(meeting_id)
    assert summary.meeting.title == "classpulse demo"
    assert summary.meeting.ended_at is not None  # shut down cleanly: the meeting is closed
    assert len(summary.students) == 3 and all(s.num_samples > 5 for s in summary.students)
    # Every student was alerted in each designed phase, in the designed order: confused (their
    # posed anger) before bored (their posed sadness).
    whispers = [
        line.split("[to the teacher] ", 1)[1] for line in lines if "[to the teacher]" in line
    ]
    for name in STUDENTS:
        kinds = [
            w.split(" has looked ")[1].split()[0]
            for w in whispers
            if w.startswith(f"{name} has looked")
        ]
        assert "confused" in kinds and "bored" in kinds, (name, whispers)
        assert kinds.index("confused") < kinds.index("bored"), (name, whispers)
    # Every alert the console teacher was whispered (the privacy notice is whispered too) is
    # stored as delivered.
    printed = {
        line.split("[to the teacher] ", 1)[1].strip()
        for line in lines
        if "[to the teacher]" in line
        and not line.split("[to the teacher] ", 1)[1].startswith("Hello")
    }
    delivered = {a.text for a in alerts if a.delivered}
    assert printed and printed <= delivered, (printed, alerts)
