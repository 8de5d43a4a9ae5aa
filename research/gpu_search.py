"""Stage-1 lever search on a lent GPU: a PyTorch mirror of ``engine.training.recipe``'s still CNN.

Not part of the product (PyTorch is no dependency of classpulse). It trains the paper's frame
encoder — 3 × (Conv 3×3 → BatchNorm → ReLU → MaxPool 2×2), 32/64/128 filters, flatten 2,048 in
Keras's (H, W, C) order — with Dropout(0.5) → Dense(emotions) on augmented stills, many lever
settings at once, one process each. It reads only what ``engine.training.export_corpus`` writes
(training and validation faces: no test face), selects on the recipe's validation score (mean
macro-F1 over FER validation with FER's labels, with FER+'s, and the posed validation subjects)
and writes each run's best weights as numpy arrays that ``engine.training.torch_import`` turns
into a Keras frame encoder. Stage 2 (the LSTM head) and the prior correction then run on the
CPU with the recipe's own code.

    python research/gpu_search.py search --corpus corpus.npz --out OUT --minutes 6
"""

from __future__ import annotations

import argparse
import json
import lzma
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
from torch import nn

#: The recipe's r1 levers; every search row changes some of them.
BASE: dict[str, Any] = {
    "ferplus_weight": 0.7,
    "balancing_power": 1.0,
    "posed_repeat": 3,
    "schedule": "plateau",  # plateau: the recipe's ReduceLROnPlateau + early stopping
    "epochs": 40,
    "patience": 6,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "mixup": 0.0,
    "label_smoothing": 0.0,
    "degrade": True,  # camera degradations (gamma, blur, low resolution, noise, JPEG)
    "seed": 0,
    "limit": 0,  # >0: only the first LIMIT training faces (a smoke test)
}


def unpack(packed: np.ndarray, count: int) -> np.ndarray:
    diffs = np.frombuffer(lzma.decompress(packed.tobytes()), np.uint8).reshape(count, SIDE, SIDE)
    return (np.cumsum(np.cumsum(diffs.astype(np.int64), axis=-2), axis=-1) % 256).astype(np.uint8)


class StillClassifier(nn.Module):
    def __init__(self, num_labels: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 1
        for filters in (32, 64, 128):
            blocks += [
                nn.Conv2d(channels, filters, 3, bias=False),
                nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01),  # Keras's defaults
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels = filters
        self.encoder = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(0.5)
        self.dense = nn.Linear(4 * 4 * 128, num_labels)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).permute(0, 2, 3, 1).flatten(1)  # Keras flattens (H, W, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.dropout(self.embed(x)))


def standardise(x: torch.Tensor) -> torch.Tensor:
    """engine.preprocess.preprocess_faces: per-face zero mean, unit variance, std floor 8."""
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (x - mean) / std.clamp_min(8.0)


def macro_f1(truth: np.ndarray, pred: np.ndarray, k: int = 3) -> tuple[float, list[float]]:
    f1s, recalls = [], []
    for c in range(k):
        tp = np.sum((pred == c) & (truth == c))
        fp = np.sum((pred == c) & (truth != c))
        fn = np.sum((pred != c) & (truth == c))
        f1s.append(2 * tp / max(2 * tp + fp + fn, 1))
        recalls.append(float(tp / max(tp + fn, 1)))
    return float(np.mean(f1s)), recalls


class Validation:
    def __init__(self, data: Any, device: torch.device) -> None:
        fer = unpack(data["val_fer_faces"], int(data["val_fer_count"]))
        posed = unpack(data["val_posed_faces"], int(data["val_posed_count"]))
        self.inputs = {
            "fer": standardise(torch.tensor(fer, dtype=torch.float32, device=device)[:, None]),
            "posed": standardise(torch.tensor(posed, dtype=torch.float32, device=device)[:, None]),
        }
        self.truths = {
            "fer-val FER": (data["val_fer_own"], "fer"),
            "fer-val FER+": (data["val_fer_plus"], "fer"),
            "posed-val": (data["val_posed"], "posed"),
        }
        self.matrix = torch.tensor(data["state_matrix"], device=device)

    @torch.no_grad()
    def state_logs(self, model: nn.Module, mirror: bool = False) -> dict[str, np.ndarray]:
        model.eval()
        out = {}
        for key, x in self.inputs.items():
            p = torch.softmax(model(x), dim=1)
            if mirror:
                p = (p + torch.softmax(model(torch.flip(x, dims=[-1])), dim=1)) / 2
            out[key] = torch.log((p @ self.matrix).clamp_min(1e-7)).cpu().numpy()
        model.train()
        return out

    def score(
        self, logs: dict[str, np.ndarray], offset: np.ndarray | None = None
    ) -> dict[str, Any]:
        parts, recalls = {}, {}
        for name, (truth, key) in self.truths.items():
            pred = (logs[key] + (0 if offset is None else offset)).argmax(axis=1)
            parts[name], recalls[name] = macro_f1(truth, pred)
        return {
            "selection": float(np.mean(list(parts.values()))),
            "parts": parts,
            "recalls": recalls,
        }

    def scores(self, model: nn.Module) -> dict[str, Any]:
        """A run summary's three scores of ``model`` (the layout ``bundle`` reads): as is, with
        the prior correction, and with mirror averaging too."""
        logs = self.state_logs(model)
        return {
            "best": self.score(logs),
            "best_calibrated": self.calibrated(logs),
            "best_mirror_calibrated": self.calibrated(self.state_logs(model, mirror=True)),
        }

    def calibrated(self, logs: dict[str, np.ndarray]) -> dict[str, Any]:
        """The recipe's prior correction: log-offsets for bored/confused chosen on validation."""
        best, best_offset = self.score(logs), [0.0, 0.0, 0.0]
        grid = np.round(np.arange(-1.5, 2.51, 0.25), 2)
        for bored in grid:
            for confused in grid:
                offset = np.array([0.0, bored, confused], np.float32)
                result = self.score(logs, offset)
                if result["selection"] > best["selection"] + 1e-9:
                    best, best_offset = result, offset.tolist()
        return {**best, "offset": best_offset}


def train_one(config: dict[str, Any], corpus: Path, out: Path, deadline: float) -> None:
    cfg = {**BASE, **config}
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    data = np.load(corpus)
    limit = cfg["limit"] or int(data["train_count"])
    faces = unpack(data["train_faces"], int(data["train_count"]))[:limit]
    faces = torch.tensor(faces, device=device)
    w = cfg["ferplus_weight"]
    targets = (1 - w) * data["train_own"][:limit] + w * data["train_plus"][:limit]
    states = (targets @ data["state_matrix"]).argmax(axis=1)
    freq = np.bincount(states, minlength=3) / len(states)
    weights = np.power(np.maximum(freq[states], 1e-6), -cfg["balancing_power"])
    weights = torch.tensor(weights / weights.mean(), dtype=torch.float32, device=device)
    targets_t = torch.tensor(targets, dtype=torch.float32, device=device)
    if cfg["label_smoothing"]:
        targets_t = (
            targets_t * (1 - cfg["label_smoothing"]) + cfg["label_smoothing"] / targets_t.shape[1]
        )
    repeat = np.where(data["train_posed"][:limit], cfg["posed_repeat"], 1)
    order_base = np.repeat(np.arange(len(targets)), repeat)
    validation = Validation(data, device)
    model = StillClassifier(targets.shape[1]).to(device)
    fused = device.type == "cuda"
    if cfg["weight_decay"]:
        optimiser: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"], fused=fused
        )
    else:
        optimiser = torch.optim.Adam(model.parameters(), lr=cfg["lr"], fused=fused)
    steps_per_epoch = math.ceil(len(order_base) / 64)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg["seed"])
    history: list[dict[str, Any]] = []
    best_score, best_state, best_epoch, stale, lr = -1.0, None, 0, 0, cfg["lr"]
    plateau_best, plateau_stale = -1.0, 0
    started, truncated = time.monotonic(), False
    for epoch in range(cfg["epochs"]):
        if time.time() > deadline:
            truncated = True
            break
        if cfg["schedule"] == "cosine":
            lr = 0.5 * cfg["lr"] * (1 + math.cos(math.pi * epoch / cfg["epochs"]))
        for group in optimiser.param_groups:
            group["lr"] = lr
        order = torch.tensor(rng.permutation(order_base), device=device)
        with torch.no_grad():
            x_all = torch.empty((len(order), 1, SIDE, SIDE), device=device)
            for start in range(0, len(order), 8192):
                rows = order[start : start + 8192]
                x_all[start : start + len(rows)] = standardise(
                    augment(faces[rows].float()[:, None], cfg["degrade"], gen)
                )
        for step in range(steps_per_epoch):
            rows = slice(step * 64, (step + 1) * 64)
            x, idx = x_all[rows], order[rows]
            y, sw = targets_t[idx], weights[idx]
            if cfg["mixup"]:
                lam = float(rng.beta(cfg["mixup"], cfg["mixup"]))
                perm = torch.randperm(len(idx), device=device, generator=gen)
                x = lam * x + (1 - lam) * x[perm]
                y = lam * y + (1 - lam) * y[perm]
                sw = lam * sw + (1 - lam) * sw[perm]
            loss = (-(y * F.log_softmax(model(x), dim=1)).sum(dim=1) * sw).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        result = validation.score(validation.state_logs(model))
        history.append(
            {
                "epoch": epoch + 1,
                "lr": lr,
                "seconds": round(time.monotonic() - started, 1),
                **result,
            }
        )
        if result["selection"] > best_score:
            best_score, best_epoch, stale = result["selection"], epoch + 1, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if cfg["schedule"] == "plateau":
            if result["selection"] > plateau_best:
                plateau_best, plateau_stale = result["selection"], 0
            else:
                plateau_stale += 1
                if plateau_stale >= 2:
                    lr, plateau_stale = max(lr * 0.5, 1e-5), 0
            if stale >= cfg["patience"]:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    summary = {
        "name": config.get("name", "run"),
        "config": cfg,
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "truncated": truncated,
        "seconds": round(time.monotonic() - started, 1),
        **validation.scores(model),
        "history": history,
    }
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / f"{summary['name']}.npz", **{k: v.numpy() for k, v in best_state.items()})
    (out / f"{summary['name']}.json").write_text(json.dumps(summary))
    print(
        f"{summary['name']}: best {best_score:.3f} @ {best_epoch}, calibrated {summary['best_calibrated']['selection']:.3f}, {summary['seconds']} s",
        flush=True,
    )


#: The search: each row is one process, a change from BASE.
GRID: list[dict[str, Any]] = [
    {"name": "r1-mirror"},
    {"name": "cos60", "schedule": "cosine", "epochs": 60},
    {"name": "cos60-seed1", "schedule": "cosine", "epochs": 60, "seed": 1},
    {"name": "cos60-seed2", "schedule": "cosine", "epochs": 60, "seed": 2},
    {"name": "cos60-mixup", "schedule": "cosine", "epochs": 60, "mixup": 0.2},
    {"name": "cos60-bal05", "schedule": "cosine", "epochs": 60, "balancing_power": 0.5},
    {"name": "cos60-fp10", "schedule": "cosine", "epochs": 60, "ferplus_weight": 1.0},
    {"name": "cos60-fp05", "schedule": "cosine", "epochs": 60, "ferplus_weight": 0.5},
    {"name": "cos60-rep6", "schedule": "cosine", "epochs": 60, "posed_repeat": 6},
    {"name": "cos60-ls", "schedule": "cosine", "epochs": 60, "label_smoothing": 0.1},
    {"name": "cos60-wd", "schedule": "cosine", "epochs": 60, "weight_decay": 0.05},
    {"name": "cos60-lr2", "schedule": "cosine", "epochs": 60, "lr": 2e-3},
    {"name": "cos60-nodeg", "schedule": "cosine", "epochs": 60, "degrade": False},
    {"name": "cos100", "schedule": "cosine", "epochs": 100},
    {
        "name": "cos60-combo",
        "schedule": "cosine",
        "epochs": 60,
        "mixup": 0.2,
        "posed_repeat": 6,
        "label_smoothing": 0.1,
    },
    {"name": "cos30", "schedule": "cosine", "epochs": 30},
]


def search(corpus: Path, out: Path, minutes: float, smoke: bool) -> None:
    deadline = time.time() + minutes * 60
    grid = GRID
    if smoke:
        grid = [{**g, "epochs": 2, "limit": 3000, "name": "smoke-" + g["name"]} for g in GRID[:3]]
    procs = []
    (out / "logs").mkdir(parents=True, exist_ok=True)
    for config in grid:
        cmd = [
            sys.executable,
            __file__,
            "worker",
            "--corpus",
            str(corpus),
            "--out",
            str(out / "runs"),
            "--deadline",
            str(deadline),
            "--config",
            json.dumps(config),
        ]
        with open(out / "logs" / f"{config['name']}.log", "w") as log:
            procs.append(
                (config["name"], subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            )
    for name, proc in procs:
        proc.wait()
        print(f"{name}: exit {proc.returncode}", flush=True)


def bundle(out: Path, dest: Path) -> None:
    """All runs' summaries in one JSON and all weights in one npz (``NAME/param``)."""
    summaries, arrays = [], {}
    for path in sorted((out / "runs").glob("*.json")):
        summary = json.loads(path.read_text())
        summaries.append(summary)
        for key, value in np.load(path.with_suffix(".npz")).items():
            arrays[f"{summary['name']}/{key}"] = value
    summaries.sort(key=lambda s: -s["best_calibrated"]["selection"])
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "search.json").write_text(json.dumps(summaries, indent=1))
    np.savez_compressed(dest / "weights.npz", **arrays)
    for s in summaries:
        b, c, m = s["best"], s["best_calibrated"], s["best_mirror_calibrated"]
        print(
            f"{s['name']:>14} ep {s['best_epoch']:>3}/{s['epochs_run']:<3} {'T' if s['truncated'] else ' '} "
            f"sel {b['selection']:.3f} cal {c['selection']:.3f} mirror-cal {m['selection']:.3f} "
            + " ".join(f"{k}={v:.3f}" for k, v in c["parts"].items())
            + f" posed-conf-rec {c['recalls']['posed-val'][2]:.2f} {s['seconds']:.0f}s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("search", "worker", "bundle"))
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--deadline", type=float, default=0.0)
    parser.add_argument("--config", default="{}")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--dest", type=Path)
    args = parser.parse_args()
    if args.mode == "worker":
        torch.set_num_threads(1)
        train_one(json.loads(args.config), args.corpus, args.out, args.deadline)
    elif args.mode == "search":
        search(args.corpus, args.out, args.minutes, args.smoke)
    else:
        bundle(args.out, args.dest or args.out)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
