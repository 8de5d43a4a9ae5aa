"""TensorFlow's start-up chatter stays off stderr; real warnings and errors stay on it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.quiet_start import is_start_up_noise

#: What TensorFlow 2.21 printed on every start of the inference process (no NVIDIA driver).
NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795970390.880405    3750 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1795970390.880760    3750 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.",
    "E0000 00:00:1795970393.210581    3750 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "2024-05-01 10:00:00.123456: E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:9261] "
    "Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when one "
    "has already been registered",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
)
KEPT = (
    "WARNING:engine.inference_client:inference process restarted",
    "/work/main/engine/model.py:40: UserWarning: something a user should see",
    "W0000 00:00:1795970393.210581    3750 op_kernel.cc:1840] OP_REQUIRES failed: out of memory",
    "E0000 00:00:1795970393.210581    3750 gpu_device.cc:2344] Cannot dlopen some GPU libraries.",
    "Traceback (most recent call last):",
    "ERROR: Didn't find op for builtin opcode 'CONV_2D' version '7'",
)


def run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter with the user's environment (no TF_CPP_MIN_LOG_LEVEL)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )


def assert_quiet(stderr: str) -> None:
    for marker in ("cuInit", "E0000", "I0000", "absl::InitializeLog", "oneDNN", "XNNPACK"):
        assert marker not in stderr, f"{marker!r} on stderr:\n{stderr}"


@pytest.mark.parametrize("line", NOISE)
def test_start_up_noise_is_recognised(line: str) -> None:
    assert is_start_up_noise(line, gpu_driver=False)


@pytest.mark.parametrize("line", KEPT)
def test_real_messages_are_kept(line: str) -> None:
    assert not is_start_up_noise(line, gpu_driver=False)
    assert not is_start_up_noise(line, gpu_driver=True)


def test_a_cuinit_failure_is_shown_where_an_nvidia_driver_is_loaded() -> None:
    cuinit = NOISE[3]
    assert not is_start_up_noise(cuinit, gpu_driver=True)


def test_inference_process_starts_without_tensorflow_chatter(
    random_model_path: Path, tmp_path: Path
) -> None:
    done = run(
        "import logging\n"
        "from engine.inference import InferenceSettings\n"
        "from engine.inference_client import InferenceClient\n"
        f"settings = InferenceSettings(model_path={str(random_model_path)!r})\n"
        "with InferenceClient(settings) as client:\n"
        "    print(client.stats().device)\n"
        "logging.getLogger('classpulse').warning('a warning of ours')\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    expected = ("CPU (int8 encoder)", "/device:GPU:0 (float encoder)")
    assert done.stdout.strip() in expected, done.stdout
    assert_quiet(done.stderr)
    assert "a warning of ours" in done.stderr


def test_import_tensorflow_keeps_what_is_not_chatter(tmp_path: Path) -> None:
    """Python warnings and unknown native lines written while TensorFlow starts pass through."""
    done = run(
        "import os, sys, warnings\n"
        "from engine.quiet_start import import_tensorflow, native_stderr_filtered\n"
        "tf = import_tensorflow()\n"
        "with native_stderr_filtered():\n"
        "    warnings.warn('a python warning')\n"
        f"    os.write(2, {(KEPT[2] + chr(10)).encode()!r})\n"
        f"    os.write(2, {(NOISE[1] + chr(10)).encode()!r})\n"
        "    os.write(2, b'no newline at the end')\n"
        "print('after', file=sys.stderr)\n"
        "print(tf.config.list_physical_devices('CPU')[0].device_type)\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "CPU"
    assert_quiet(done.stderr)
    assert "UserWarning: a python warning" in done.stderr
    assert KEPT[2].split("] ")[1] in done.stderr
    assert "no newline at the endafter" in done.stderr


def test_threads_filtering_at_once_leave_stderr_where_it_was(tmp_path: Path) -> None:
    """fd 2 belongs to the process: threads that filter it at the same time (each media thread
    loads its face networks) must take turns, or stderr ends on a pipe nobody reads."""
    done = run(
        "import os, sys, threading, time\n"
        "from engine.quiet_start import native_stderr_filtered\n"
        "before = os.fstat(2)\n"
        "def work():\n"
        "    for _ in range(20):\n"
        "        with native_stderr_filtered():\n"
        "            os.write(2, b'I0000 00:00:1.0 1 x.cc:1] noise\\n')\n"
        "            time.sleep(0.002)\n"
        "threads = [threading.Thread(target=work) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "after = os.fstat(2)\n"
        "print((before.st_dev, before.st_ino) == (after.st_dev, after.st_ino))\n"
        "os.write(2, b'still heard\\n')\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert "still heard" in done.stderr and "noise" not in done.stderr
