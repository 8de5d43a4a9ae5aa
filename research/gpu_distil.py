"""Distillation on a lent GPU: a large teacher CNN's soft labels for the paper-size still encoder.

Not part of the product (PyTorch is no dependency of classpulse). The issue's lever "an ensemble
distilled into one paper-size model", with a stronger ensemble than the paper-size runs of
``gpu_search.py``: a few ResNet-18-like teachers (~11 M parameters each, 48×48 input) trained on
the same faces, targets, balancing weights and augmentation, then students of the paper's
encoder (``gpu_search.StillClassifier``) trained on

    (1 − α) · cross-entropy with the recipe's soft targets + α · T² · KL(teachers_T ‖ student_T)

where teachers_T is the teachers' mean softmax at temperature T on the *same augmented faces*.
Both stages run to a wall-clock budget with the cosine rate annealed over that budget, so a run
cut by its deadline still ends at a low rate (the first search's cuts did not). Reads only
``engine.training.export_corpus``'s file (training and validation faces); students are selected
on the recipe's validation score and written in ``gpu_search.py``'s layout (``OUT/runs``: one
npz and one json each, ``gpu_search.py bundle`` gathers them), which
``engine.training.torch_import`` turns into the Keras frame encoder.

    python research/gpu_distil.py run --corpus corpus.npz --out OUT --teacher-s 120 --total-s 350
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gpu_augment import SIDE, augment
from gpu_search import StillClassifier, Validation, standardise, unpack
from torch import nn


class Block(nn.Module):
    """ResNet's basic block: two 3×3 convolutions with batch norm and a shortcut."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class Teacher(nn.Module):
    """ResNet-18's layout for 48×48 faces: a 3×3 stem, four stages of two blocks (64, 128, 256,
    512 filters; each halves the side: 48 → 24 → 12 → 6 → 3 pixels; ~0.34 G multiply-adds a
    face), global average pooling, dropout, dense."""

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(1, 64, 3, 1, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
        ]
        channels = 64
        for filters, stride in ((64, 2), (128, 2), (256, 2), (512, 2)):
            layers += [Block(channels, filters, stride), Block(filters, filters, 1)]
            channels = filters
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(channels, num_labels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


def _load(corpus: Path, device: torch.device, cfg: dict[str, Any]) -> dict[str, Any]:
    """Faces, targets and balancing weights exactly as ``gpu_search.train_one`` builds them."""
    data = np.load(corpus)
    limit = cfg["limit"] or int(data["train_count"])
    faces = unpack(data["train_faces"], int(data["train_count"]))[:limit]
    w = cfg["ferplus_weight"]
    targets = (1 - w) * data["train_own"][:limit] + w * data["train_plus"][:limit]
    states = (targets @ data["state_matrix"]).argmax(axis=1)
    freq = np.bincount(states, minlength=3) / len(states)
    weights = np.power(np.maximum(freq[states], 1e-6), -cfg["balancing_power"])
    repeat = np.where(data["train_posed"][:limit], cfg["posed_repeat"], 1)
    return {
        "faces": torch.tensor(faces, device=device),
        "targets": torch.tensor(targets, dtype=torch.float32, device=device),
        "weights": torch.tensor(weights / weights.mean(), dtype=torch.float32, device=device),
        "order": np.repeat(np.arange(len(targets)), repeat),
        "validation": Validation(data, device),
        "num_labels": targets.shape[1],
    }


BASE: dict[str, Any] = {
    "ferplus_weight": 0.7,
    "balancing_power": 1.0,
    "posed_repeat": 3,
    "seed": 0,
    "alpha": 0.0,  # 0: no teacher (the control)
    "temperature": 2.0,
    "lr": 1e-3,
    "batch": 64,
    "limit": 0,  # >0: only the first LIMIT training faces (a smoke test)
}


def _teachers(folder: Path, num_labels: int, device: torch.device) -> list[nn.Module]:
    found = []
    for path in sorted(folder.glob("*.pt")):
        model = Teacher(num_labels).to(device)
        model.load_state_dict(torch.load(path, map_location=device))
        found.append(model.eval())
    return found


def train(role: str, config: dict[str, Any], corpus: Path, out: Path, deadline: float) -> None:
    """One teacher or student, to ``deadline`` (epoch time), cosine over the time it has."""
    cfg = {**BASE, **config}
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    d = _load(corpus, device, cfg)
    validation: Validation = d["validation"]
    teachers: list[nn.Module] = []
    if role == "teacher":
        model: nn.Module = Teacher(d["num_labels"]).to(device)
        optimiser: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg["lr"], momentum=0.9, nesterov=True, weight_decay=5e-4
        )
    else:
        model = StillClassifier(d["num_labels"]).to(device)
        optimiser = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        if cfg["alpha"] > 0:
            teachers = _teachers(out / "teachers", d["num_labels"], device)
            if not teachers:
                raise SystemExit(f"Expected teacher weights in {out / 'teachers'}")
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg["seed"])
    started = time.time()
    budget = max(deadline - started, 1.0)
    history: list[dict[str, Any]] = []
    best_score, best_epoch, epoch, epoch_s = -1.0, 0, 0, 0.0
    batch, temp, alpha = cfg["batch"], cfg["temperature"], cfg["alpha"]
    while time.time() + epoch_s < deadline:  # stop before an epoch would overrun
        epoch_start = time.time()
        order = torch.tensor(rng.permutation(d["order"]), device=device)
        with torch.no_grad():
            x_all = torch.empty((len(order), 1, SIDE, SIDE), device=device)
            soft = torch.empty((len(order), d["num_labels"]), device=device)
            for start in range(0, len(order), 8192):
                rows = order[start : start + 8192]
                x = standardise(augment(d["faces"][rows].float()[:, None], True, gen))
                x_all[start : start + len(rows)] = x
                if teachers:
                    with torch.autocast(device.type, dtype=torch.bfloat16):
                        probs = [torch.softmax(t(x).float() / temp, dim=1) for t in teachers]
                    soft[start : start + len(rows)] = torch.stack(probs).mean(dim=0)
        model.train()
        for step in range(math.ceil(len(order) / batch)):
            progress = min(1.0, (time.time() - started) / budget)
            for group in optimiser.param_groups:
                group["lr"] = 0.5 * cfg["lr"] * (1 + math.cos(math.pi * progress))
            rows = slice(step * batch, (step + 1) * batch)
            x, idx = x_all[rows], order[rows]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=role == "teacher"):
                logits = model(x).float()
            hard = -(d["targets"][idx] * F.log_softmax(logits, dim=1)).sum(dim=1)
            loss = hard
            if teachers:
                kl = (
                    soft[rows]
                    * (soft[rows].clamp_min(1e-8).log() - F.log_softmax(logits / temp, dim=1))
                ).sum(dim=1)
                loss = (1 - alpha) * hard + alpha * temp * temp * kl
            loss = (loss * d["weights"][idx]).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        epoch += 1
        epoch_s = time.time() - epoch_start
        result = validation.score(validation.state_logs(model))
        history.append({"epoch": epoch, "seconds": round(time.time() - started, 1), **result})
        if result["selection"] > best_score:
            best_score, best_epoch = result["selection"], epoch
            _save(role, cfg, model, validation, history, best_epoch, started, out)
    print(f"{role} {cfg.get('name')}: best {best_score:.3f} @ {best_epoch}/{epoch}", flush=True)


def _save(
    role: str,
    cfg: dict[str, Any],
    model: nn.Module,
    validation: Validation,
    history: list[dict[str, Any]],
    best_epoch: int,
    started: float,
    out: Path,
) -> None:
    """The best epoch so far (a run killed later still leaves its best behind)."""
    name = cfg.get("name", role)
    summary = {
        "name": name,
        "role": role,
        "config": cfg,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "truncated": False,
        "seconds": round(time.time() - started, 1),
        **validation.scores(model),
        "history": history,
    }
    folder = out / ("teachers" if role == "teacher" else "runs")
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if role == "teacher":
        torch.save(state, folder / f"{name}.pt.tmp")
        os.replace(folder / f"{name}.pt.tmp", folder / f"{name}.pt")
        (out / "teacher-summaries").mkdir(exist_ok=True)
        (out / "teacher-summaries" / f"{name}.json").write_text(json.dumps(summary))
    else:
        np.savez(folder / f"{name}.npz", **{k: v.numpy() for k, v in state.items()})
        (folder / f"{name}.json").write_text(json.dumps(summary))


TEACHERS: list[dict[str, Any]] = [
    {"name": f"teacher-seed{seed}", "seed": seed, "lr": 0.05, "batch": 128} for seed in range(3)
]
STUDENTS: list[dict[str, Any]] = [
    {"name": "ctrl-seed0", "seed": 0},
    {"name": "ctrl-seed1", "seed": 1},
    {"name": "kd-a05-t2", "alpha": 0.5, "temperature": 2.0},
    {"name": "kd-a05-t4", "alpha": 0.5, "temperature": 4.0},
    {"name": "kd-a09-t2", "alpha": 0.9, "temperature": 2.0},
    {"name": "kd-a09-t4", "alpha": 0.9, "temperature": 4.0},
    {"name": "kd-a09-t4-seed1", "alpha": 0.9, "temperature": 4.0, "seed": 1},
    {"name": "kd-a07-t3", "alpha": 0.7, "temperature": 3.0},
]


def _spawn(role: str, configs: list[dict[str, Any]], corpus: Path, out: Path, deadline: float):
    procs = []
    (out / "logs").mkdir(parents=True, exist_ok=True)
    for config in configs:
        cmd = [sys.executable, __file__, role, "--corpus", str(corpus), "--out", str(out)]
        cmd += ["--deadline", str(deadline), "--config", json.dumps(config)]
        log = open(out / "logs" / f"{config['name']}.log", "w")  # noqa: SIM115 - closed by exit
        procs.append((config["name"], subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
    for name, proc in procs:
        proc.wait()
        print(f"{role} {name}: exit {proc.returncode}", flush=True)


def run(corpus: Path, out: Path, teacher_s: float, total_s: float, smoke: bool) -> None:
    start = time.time()
    teachers, students = TEACHERS, STUDENTS
    if smoke:
        teachers = [{**teachers[0], "limit": 1500}]
        students = [{**s, "limit": 1500} for s in (students[0], students[2])]
    _spawn("teacher", teachers, corpus, out, start + teacher_s)
    _spawn("student", students, corpus, out, start + total_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("run", "teacher", "student"))
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teacher-s", type=float, default=120.0)
    parser.add_argument("--total-s", type=float, default=350.0)
    parser.add_argument("--deadline", type=float, default=0.0)
    parser.add_argument("--config", default="{}")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.mode == "run":
        run(args.corpus, args.out, args.teacher_s, args.total_s, args.smoke)
    else:
        torch.set_num_threads(1 if torch.cuda.is_available() else 2)
        train(args.mode, json.loads(args.config), args.corpus, args.out, args.deadline)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
