"""Write the recipe's training and validation faces to one compressed file for a GPU search.

``python -m engine.training.export_corpus OUT.npz`` loads the corpus exactly as the recipe does
(FER2013 Training rows split by image, JAFFE and Taiwanese crops from the live face stage, split
by subject) and writes the **training and validation** faces with both label sets. No test face
is written, so a search run elsewhere (``research/gpu_search.py``) can only select on validation.
The file holds dataset images: keep it out of git (``runs/`` is ignored) and delete it after use.
"""

from __future__ import annotations

import argparse
import lzma
from pathlib import Path
from typing import Any

import numpy as np

from engine.datasets import load_mapping, read_fer2013_both, state_matrix, true_states
from engine.settings_paths import datasets_dir
from engine.training.corpus import FER_VAL_OWN, load_corpus


def _pack(faces: np.ndarray) -> np.ndarray:
    """uint8 faces → LZMA bytes of their second differences (rows, then columns), mod 256.

    ~30 % smaller than the raw pixels, lossless; undone by two cumulative sums mod 256.
    """
    pixels = faces.astype(np.int16)
    diffs = np.diff(np.diff(pixels, axis=-1, prepend=0), axis=-2, prepend=0).astype(np.uint8)
    return np.frombuffer(lzma.compress(diffs.tobytes()), np.uint8)


def unpack(packed: np.ndarray, count: int) -> np.ndarray:
    """The inverse of ``_pack`` (``research/gpu_search.py`` carries its own copy: it runs alone)."""
    diffs = np.frombuffer(lzma.decompress(packed.tobytes()), np.uint8).reshape(count, 48, 48)
    return (np.cumsum(np.cumsum(diffs.astype(np.int64), axis=-2), axis=-1) % 256).astype(np.uint8)


def export(datasets: Path, output: Path) -> dict[str, int]:
    mapping = load_mapping()
    corpus = load_corpus(datasets, posed=True, ferplus_weight=0.0)
    fer_own, fer_plus = read_fer2013_both(
        datasets / "fer2013" / "fer2013.csv.gz", datasets / "fer2013" / "fer2013new.csv"
    )
    train = corpus.train
    # ferplus_weight=0 leaves FER's own labels on the FER rows; their FER+ votes come from the
    # same file rows (load_corpus keeps file order), checked pixel for pixel below.
    is_fer = np.char.startswith(train.subjects.astype(str), "fer2013:")
    plus = train.labels.copy()
    fit_rows = np.flatnonzero(fer_own.splits == "train")
    val_faces = corpus.validation[FER_VAL_OWN].dataset.faces
    # The validation rows are the Training rows load_corpus held out; recover them by the seed.
    rng = np.random.default_rng(0)
    held = rng.random(len(fer_own)) < 0.1
    fit_mask = ~held[fit_rows]
    fer_fit = fit_rows[fit_mask]
    if is_fer.sum() != len(fer_fit) or not np.array_equal(
        train.faces[is_fer], fer_own.faces[fer_fit]
    ):
        raise RuntimeError("FER2013 rows of the corpus do not line up with the file's rows")
    plus[is_fer] = fer_plus.labels[fer_fit]
    groups = {
        "fer_own": corpus.validation[FER_VAL_OWN].dataset,
        "fer_plus": corpus.validation["fer-val (FER+ labels)"].dataset,
    }
    posed = [h.dataset for k, h in corpus.validation.items() if not k.startswith("fer")]
    arrays: dict[str, Any] = {
        "train_faces": _pack(train.faces),
        "train_count": np.array(len(train)),
        "train_own": train.labels.astype(np.float32),
        "train_plus": plus.astype(np.float32),
        "train_posed": ~is_fer,
        "label_names": np.array(train.label_names),
        "state_matrix": state_matrix(train.label_names, mapping),
        "val_fer_faces": _pack(val_faces),
        "val_fer_count": np.array(len(val_faces)),
        "val_fer_own": true_states(groups["fer_own"], mapping),
        "val_fer_plus": true_states(groups["fer_plus"], mapping),
        "val_posed_faces": _pack(np.concatenate([d.faces for d in posed])),
        "val_posed_count": np.array(sum(len(d) for d in posed)),
        "val_posed": np.concatenate([true_states(d, mapping) for d in posed]),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(output, **arrays)
    return {
        "train": len(train),
        "val_fer": len(val_faces),
        "val_posed": int(arrays["val_posed_count"]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--datasets", type=Path, default=None)
    args = parser.parse_args(argv)
    counts = export(args.datasets or datasets_dir(), args.output)
    size = args.output.stat().st_size / 2**20
    print(f"wrote {args.output} ({size:.1f} MiB): {counts}")


if __name__ == "__main__":
    main()
