"""Process figures from ``/proc`` for the benchmarks: CPU seconds, RSS, process trees, and a
summary of py-spy's collapsed stacks."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads); 0 when it is gone."""
    try:
        fields = _stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def name_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except FileNotFoundError:
        return ""


def descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def role(pid: int, root: int) -> str:
    """What a process of the server's tree is: server, media worker, inference, other."""
    if pid == root:
        return "server"
    command = name_of(pid)
    if "multiprocessing" not in command:
        return "other"
    if "resource_tracker" in command:
        return "other"
    try:  # both are spawned children; only the inference process maps TensorFlow
        maps = Path(f"/proc/{pid}/maps").read_text()
    except FileNotFoundError:
        return "other"
    return "inference" if "tensorflow" in maps else "media_worker"


def summarize_collapsed(path: Path, top: int = 12) -> dict[str, list[tuple[str, float]]]:
    """py-spy ``--format raw`` output → the functions with the most samples, by share: ``self``
    (leaf frames: where the CPU is) and ``total`` (on the stack: what it was for)."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    num_samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        num_samples += count
        frames = [frame.split(" (")[0] for frame in stack.split(";") if frame]
        if frames:
            leaf[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not num_samples:
        return {"self": [], "total": []}
    return {
        "self": [(f, round(100 * n / num_samples, 1)) for f, n in leaf.most_common(top)],
        "total": [(f, round(100 * n / num_samples, 1)) for f, n in inclusive.most_common(top)],
    }


def start_profiles(
    root: int, seconds: float, work: Path, py_spy: Path
) -> list[tuple[str, Path, subprocess.Popen[bytes]]]:
    """``py-spy record`` (50 Hz, every thread, raw collapsed stacks into ``work``) of each of the
    server's processes for ``seconds``; ``finish_profiles`` waits for them and summarises."""
    started = []
    for pid in descendants(root):
        kind = role(pid, root)
        if kind == "other":
            continue
        out = work / f"profile-{kind}-{pid}.txt"
        command = [str(py_spy), "record", "--format", "raw", "--nonblocking", "--threads"]
        command += ["-d", str(int(seconds)), "-r", "50", "-p", str(pid), "-o", str(out)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        started.append((f"{kind} {pid}", out, process))
    return started


def finish_profiles(profiles: list[tuple[str, Path, subprocess.Popen[bytes]]]) -> dict:
    summary = {}
    for name, out, process in profiles:
        process.wait(60)
        if out.exists():
            summary[name] = summarize_collapsed(out)
    return summary
