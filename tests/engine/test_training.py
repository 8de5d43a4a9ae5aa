"""``classpulse train`` and ``classpulse evaluate`` end to end on tiny datasets (real TensorFlow)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from engine import EmotionModel
from engine.training.metrics import classification_report
from tests.engine.fixtures import write_fer2013, write_jaffe


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("train")
    write_fer2013(root / "fer", num_train=96, num_test=30)
    run_dir = root / "run"
    code = main(
        [
            "train",
            "--data",
            str(root / "fer"),
            "--run-dir",
            str(run_dir),
            "--epochs",
            "2",
            "--patience",
            "1",
        ]
    )
    assert code == 0
    return root, run_dir


def test_train_writes_model_history_and_curves(trained: tuple[Path, Path]) -> None:
    _, run_dir = trained
    model = EmotionModel.load(run_dir / "model.keras")
    assert model.num_parameters == 1_339_267
    for stage in ("stills", "sequences"):
        with open(run_dir / f"history_{stage}.csv") as handle:
            rows = list(csv.DictReader(handle))
        assert 1 <= len(rows) <= 2
        assert {"loss", "val_loss", "val_macro_f1"} <= set(rows[0])
        assert (run_dir / f"{stage}_best.keras").is_file()
    assert (run_dir / "training_curves.png").stat().st_size > 10_000
    metadata = (run_dir / "model.json").read_text()
    assert '"num_parameters": 1339267' in metadata and ("CPU" in metadata or "GPU" in metadata)


def test_train_resumes_from_a_finished_stage(
    trained: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, run_dir = trained
    code = main(
        [
            "train",
            "--data",
            str(root / "fer"),
            "--run-dir",
            str(run_dir),
            "--epochs",
            "2",
            "--patience",
            "1",
            "--output",
            str(root / "again.keras"),
        ]
    )
    assert code == 0
    assert "stage 1 (CNN on stills): done earlier" in capsys.readouterr().out
    assert (root / "again.keras").is_file()


def test_evaluate_writes_report_and_figures(trained: tuple[Path, Path]) -> None:
    root, run_dir = trained
    jaffe = write_jaffe(root / "jaffe")
    output = root / "evaluation"
    code = main(
        [
            "evaluate",
            "--model",
            str(run_dir / "model.keras"),
            "--data",
            str(root / "fer"),
            "--data",
            str(jaffe),
            "--output",
            str(output),
            "--run-dir",
            str(run_dir),
        ]
    )
    assert code == 0
    report = (output / "report.md").read_text()
    assert "macro-F1" in report and "majority-class baseline" in report
    assert "fer2013+ferplus test rows (PublicTest, PrivateTest)" in report and "jaffe" in report
    for name in ("confusion_jaffe.png", "per_class_jaffe.png", "training_curves.png"):
        assert (output / name).stat().st_size > 5_000


def test_evaluate_unreadable_data_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trained: tuple[Path, Path]
) -> None:
    _, run_dir = trained
    code = main(
        ["evaluate", "--model", str(run_dir / "model.keras"), "--data", str(tmp_path / "x")]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not found" in err[0]


def test_classification_report_numbers() -> None:
    true = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    report = classification_report(true, predicted, ("a", "b", "c"))
    np.testing.assert_allclose(report.precision, [1.0, 0.5, 0.5])
    np.testing.assert_allclose(report.recall, [2 / 3, 0.5, 1.0])
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.confusion.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report.macro_f1 == pytest.approx(np.mean([0.8, 0.5, 2 / 3]))
