"""Engine fixtures. TensorFlow never enters the pytest process (bot tests import aiortc, which
segfaults beside it): models are made in a subprocess and run in the inference process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.inference import InferenceSettings
from engine.inference_client import InferenceClient

QUIET_TF = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_python(code: str, *args: str, timeout: float = 300) -> str:
    """Run ``code`` in a fresh interpreter (where TensorFlow may be imported); returns stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=QUIET_TF,
    )
    if done.returncode != 0:
        raise AssertionError(f"subprocess failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="session")
def random_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained CNN-LSTM saved as .keras: real shapes and real inference, meaningless scores."""
    path = tmp_path_factory.mktemp("model") / "random.keras"
    run_python(
        "import sys, keras\n"
        "from engine.model import EmotionModel, build_cnn_lstm\n"
        "keras.utils.set_random_seed(0)\n"
        "EmotionModel(build_cnn_lstm()).save(sys.argv[1])\n",
        str(path),
    )
    return path


@pytest.fixture(scope="module")
def offline_client(random_model_path: Path) -> Iterator[InferenceClient]:
    """One inference process per test module, configured as offline analysis uses it."""
    settings = InferenceSettings(model_path=str(random_model_path), max_age_s=None)
    with InferenceClient(settings) as client:
        yield client
