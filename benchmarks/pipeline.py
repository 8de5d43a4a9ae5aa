"""Pipeline benchmark: how many participants one machine follows live, and what each one costs.

N simulated participants each send a pre-encoded VP8 640×360 15 fps clip of JAFFE faces (neutral,
then angry, then happy, with motion and noise), looped. In one run this prints:

1. decode-only cost: CPU ms per participant-second to decode the clips (libvpx, as aiortc does);
2. full pipeline cost: decode → sample 5 fps → detect/track → crops → inference → states, CPU of
   the media process plus the inference process, per participant-second, and its ratio to (1);
3. capacity: real-time runs at growing N; the largest N where every participant keeps ≥ 5
   analysed frames/s and the p95 lag (frame arrival → its scores back) stays ≤ 1 s;
4. memory per participant (RSS of both processes, slope over N).

    .venv/bin/python benchmarks/pipeline.py [--max-n 120] [--phase-s 20] [--json out.json]

Clips are made once into a temporary folder (never into the repository).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from engine.faces import FaceDetector  # noqa: E402
from engine.inference import InferenceSettings  # noqa: E402
from engine.inference_client import InferenceClient  # noqa: E402
from engine.live import LivePipeline  # noqa: E402
from engine.settings_paths import datasets_dir  # noqa: E402
from tests.engine.clips import Appearance, jaffe_face, make_clip  # noqa: E402

FPS = 15
ANALYSIS_FPS = 5.0
SUBJECTS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int | None) -> float:
    """user + system CPU seconds of a process (all its threads)."""
    if pid is None:
        raise RuntimeError("Expected a running inference process. Received: none")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used since boot (from /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


def rss_mb(pid: int | None) -> float:
    if pid is None:
        raise RuntimeError("Expected a running inference process. Received: none")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_clips(cache: Path, duration_s: float) -> list[list[bytes]]:
    """One clip per JAFFE subject; returns each clip's VP8 packets."""
    jaffe = datasets_dir() / "jaffe"
    if not any(jaffe.glob("*.tiff")):
        sys.exit(f"benchmark: JAFFE faces missing in {jaffe} (set CLASSPULSE_DATASETS)")
    cache.mkdir(parents=True, exist_ok=True)
    clips = []
    for index, subject in enumerate(SUBJECTS):
        path = cache / f"{subject}-{duration_s:g}s.webm"
        if not path.is_file():
            third = duration_s / 3
            faces = [
                Appearance(
                    jaffe_face(jaffe, subject, emotion),
                    k * third,
                    (k + 1) * third,
                    cx=0.45 + 0.02 * index,
                    size=0.5 + 0.02 * (index % 4),
                )
                for k, emotion in enumerate(("NE", "AN", "HA"))
            ]
            make_clip(path, faces, duration_s, fps=FPS, seed=index)
        with av.open(str(path)) as container:
            clips.append([bytes(p) for p in container.demux(video=0) if p.size])
    return clips


class Participant:
    """One simulated camera: its own VP8 decoder over a looped clip."""

    def __init__(self, source_id: str, packets: list[bytes], start: float) -> None:
        self.source_id = source_id
        self.packets = packets
        self.codec = av.CodecContext.create("libvpx", "r")
        self.codec.thread_count = 1
        self.start = start
        self.index = 0
        self.num_analysed = 0

    def decode_next(self) -> tuple[float, av.VideoFrame | None]:
        t = self.index / FPS
        packet = av.Packet(self.packets[self.index % len(self.packets)])
        self.index += 1
        frames = self.codec.decode(packet)
        return t, (frames[-1] if frames else None)


def measure_cost(clips: list[list[bytes]], client: InferenceClient, num: int, seconds: float):
    """CPU per participant-second offline: decode only, then the full pipeline."""
    frames = int(seconds * FPS)
    participants = [Participant(f"d{i}", clips[i % len(clips)], 0.0) for i in range(num)]
    started = time.process_time()
    for _ in range(frames):
        for p in participants:  # interleaved as live: each decoder's state leaves the cache
            p.decode_next()
    decode_ms = (time.process_time() - started) / (num * seconds) * 1000

    pipeline = LivePipeline(FaceDetector(), client, fps=ANALYSIS_FPS)
    participants = [Participant(f"c{i}", clips[i % len(clips)], 0.0) for i in range(num)]
    child_before, started = process_cpu_s(client.pid), time.process_time()
    changes = 0
    for step in range(frames):
        for p in participants:  # interleaved, as live: every participant's frame k, then k + 1
            t, frame = p.decode_next()
            if frame is not None:
                pipeline.push_frame(p.source_id, frame, t)
        if step % FPS == 0:
            changes += len(pipeline.poll()[0])
    client.flush()
    changes += len(pipeline.poll()[0])
    media_s = time.process_time() - started
    inference_s = process_cpu_s(client.pid) - child_before
    for p in participants:
        pipeline.remove_source(p.source_id)
    full_ms = (media_s + inference_s) / (num * seconds) * 1000
    return {
        "participants": num,
        "video_s_each": seconds,
        "decode_only_ms_per_participant_s": round(decode_ms, 2),
        "full_ms_per_participant_s": round(full_ms, 2),
        "media_ms_per_participant_s": round(media_s / (num * seconds) * 1000, 2),
        "inference_ms_per_participant_s": round(inference_s / (num * seconds) * 1000, 2),
        "ratio_full_to_decode": round(full_ms / decode_ms, 3),
        "state_changes": changes,
    }


@dataclass
class Phase:
    num: int
    lags: list[float] = field(default_factory=list)
    scored: dict[str, int] = field(default_factory=dict)


def run_phase(clips, client: InferenceClient, num: int, seconds: float, workers: int, warmup_s=3.0):
    """Real time: every participant's frames arrive at 15 fps; newest frame wins when behind."""
    pipeline = LivePipeline(FaceDetector(), client, fps=ANALYSIS_FPS)
    t0 = time.monotonic() + 0.5
    participants = [
        Participant(f"n{num}-{i}", clips[i % len(clips)], t0 + (i / num) / FPS) for i in range(num)
    ]
    arrivals: dict[tuple[str, float], float] = {}
    stop = threading.Event()
    before = client.stats()

    def work(mine: list[Participant]) -> None:
        # A heap of next arrival times, as a real receiver is woken only by its own frames.
        heap = [(p.start, index) for index, p in enumerate(mine)]
        heapq.heapify(heap)
        while not stop.is_set():
            due_at, index = heap[0]
            now = time.monotonic()
            if due_at > now + 0.005:  # wake-ups within 5 ms are coalesced, as an event loop does
                time.sleep(min(due_at - now, 0.05))
                continue
            p = mine[index]
            due = math.floor((max(now, due_at) - p.start) * FPS + 1e-6)
            newest = None
            while p.index <= due:  # every frame must be decoded; only the newest is analysed
                t, frame = p.decode_next()
                newest = (t, frame) if frame is not None else newest
            if newest is not None:
                t, frame = newest
                arrivals[(p.source_id, round(t, 4))] = p.start + t
                if pipeline.push_frame(p.source_id, frame, t) and t >= warmup_s:
                    p.num_analysed += 1
            heapq.heapreplace(heap, (p.start + p.index / FPS, index))

    cpu0, child0, busy0 = time.process_time(), process_cpu_s(client.pid), machine_busy_s()
    wall0 = time.monotonic()
    threads = [
        threading.Thread(target=work, args=(participants[w::workers],), daemon=True)
        for w in range(workers)
    ]
    for thread in threads:
        thread.start()
    phase = Phase(num)
    end = t0 + warmup_s + seconds
    while time.monotonic() < end:
        time.sleep(0.02)
        _, scores = pipeline.poll()
        now = time.monotonic()
        for s in scores:
            source = s.person_id.rsplit("/", 1)[0]
            arrived = arrivals.pop((source, round(s.t, 4)), None)
            if arrived is not None and s.t >= warmup_s:
                phase.lags.append(now - arrived)
                phase.scored[s.person_id] = phase.scored.get(s.person_id, 0) + 1
    stop.set()
    for thread in threads:
        thread.join()
    cpu_s = time.process_time() - cpu0
    child_s = process_cpu_s(client.pid) - child0
    others_s = machine_busy_s() - busy0 - cpu_s - child_s
    wall = time.monotonic() - wall0
    after = client.stats()
    memory = rss_mb(os.getpid()) + rss_mb(client.pid)
    for p in participants:
        pipeline.remove_source(p.source_id)
    analysed = [p.num_analysed / seconds for p in participants]
    scored = [phase.scored.get(f"{p.source_id}/1", 0) / seconds for p in participants]
    lags = np.asarray(phase.lags) if phase.lags else np.array([np.inf])
    result = {
        "participants": num,
        "analysed_fps_min": round(min(analysed), 2),
        "analysed_fps_mean": round(float(np.mean(analysed)), 2),
        "scored_fps_mean": round(float(np.mean(scored)), 2),
        "lag_p50_s": round(float(np.percentile(lags, 50)), 3),
        "lag_p95_s": round(float(np.percentile(lags, 95)), 3),
        "dropped": after.dropped - before.dropped,
        "cpu_cores_media": round(cpu_s / wall, 2),
        "cpu_cores_inference": round(child_s / wall, 2),
        # Other processes' CPU meanwhile (the machine is shared: training, other jobs).
        "cpu_cores_others": round(max(0.0, others_s) / wall, 2),
        "rss_mb_both": round(memory, 1),
        "last_batch": after.last_batch,
    }
    result["ok"] = result["analysed_fps_min"] >= 4.9 and result["lag_p95_s"] <= 1.0
    return result


def random_model(folder: Path) -> Path:
    """Untrained weights (the cost does not depend on them), made in a subprocess: TensorFlow
    never enters this media-side process."""
    path = folder / "random.keras"
    if not path.is_file():
        code = (
            "import sys; from engine.model import EmotionModel, build_cnn_lstm; "
            "EmotionModel(build_cnn_lstm()).save(sys.argv[1])"
        )
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=env, cwd=ROOT)
    return path


def machine() -> dict[str, object]:
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in load],
        "nice": os.nice(0),
        "python": sys.version.split()[0],
        "av": av.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--ladder",
        default="10,20,30,40,50,60,70,80,100,120",
        help="participant counts tried in real time, in order",
    )
    parser.add_argument("--phase-s", type=float, default=20.0, help="seconds measured per N")
    parser.add_argument("--cost-n", type=int, default=20, help="participants in the cost runs")
    parser.add_argument("--cost-s", type=float, default=20.0, help="video seconds per participant")
    parser.add_argument("--workers", type=int, default=2, help="media threads (decode + detect)")
    parser.add_argument("--clip-s", type=float, default=12.0)
    parser.add_argument("--model", type=Path, default=None, help="default: shipped, else random")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "classpulse-bench"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    report: dict[str, object] = {"machine_start": machine()}
    clips = make_clips(args.cache, args.clip_s)
    shipped = ROOT / "engine" / "weights" / "emotion_cnn_lstm.keras"
    model = args.model or (shipped if shipped.is_file() else random_model(args.cache))
    report["model"] = str(model)
    settings = InferenceSettings(model_path=str(model), max_age_s=None)
    with InferenceClient(settings) as client:
        report["device"] = client.stats().device
        cost = measure_cost(clips, client, args.cost_n, args.cost_s)
        report["cost"] = cost
        print(json.dumps({"cost": cost}), flush=True)
    live = InferenceSettings(model_path=str(model))  # live defaults: drop frames older than 1 s
    phases = []
    with InferenceClient(live) as client:
        baseline = rss_mb(os.getpid()) + rss_mb(client.pid)
        for num in (int(n) for n in args.ladder.split(",")):
            result = run_phase(clips, client, num, args.phase_s, args.workers)
            phases.append(result)
            print(json.dumps(result), flush=True)
            if not result["ok"]:
                break
    passing = [p for p in phases if p["ok"]]
    report["phases"] = phases
    report["max_participants"] = max((p["participants"] for p in passing), default=0)
    if len(phases) >= 2:
        ns = np.array([p["participants"] for p in phases], float)
        rss = np.array([p["rss_mb_both"] for p in phases], float)
        report["memory_mb_per_participant"] = round(float(np.polyfit(ns, rss, 1)[0]), 2)
    report["rss_mb_baseline"] = round(baseline, 1)
    report["machine_end"] = machine()
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
