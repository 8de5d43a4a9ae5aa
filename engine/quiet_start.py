"""TensorFlow's start-up chatter, filtered out of stderr where classpulse starts TensorFlow.

TensorFlow 2.21 writes its C++ start-up lines (oneDNN notes, CUDA probing, and on a machine
without an NVIDIA driver an ``E0000 … failed call to cuInit`` line that reads as a failure)
through absl *before* absl's logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` does not hold
them back. They are written by C++ straight to file descriptor 2, out of Python's reach: while
TensorFlow is imported and its devices probed, fd 2 is a pipe read by a thread that drops these
lines and passes every other line on. Python warnings, classpulse's own log lines and any other
TensorFlow message written meanwhile stay visible. ``TF_CPP_MIN_LOG_LEVEL`` stays at 2 (set by
the inference client and ``engine.model``), so TensorFlow's real errors later are shown too.

Nothing here hides the GPU: the devices are listed exactly as before; when an NVIDIA driver is
loaded, a cuInit failure is a real problem and is shown.

Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

#: absl's line before its logging is set up; always noise.
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
#: ``I0000 00:00:1795970390.880405    3750 port.cc:153] text`` (absl), or the older
#: ``2024-05-01 10:00:00.123456: I tensorflow/…/port.cc:113] text``.
_NATIVE_LINE = re.compile(
    r"^(?:(?P<absl>[IWEF])\d{4} [\d:.]+\s+\d+ |[\d-]+ [\d:.]+: (?P<old>[IWEF]) )\S+\] (?P<text>.*)$"
)
#: Warnings and errors TensorFlow prints on every start that say nothing about this run.
_ALWAYS_NOISE = (
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning: Could not find TensorRT",
    "oneDNN custom operations are on",
)
#: TensorFlow Lite's own info lines (``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``),
#: written when the 8-bit encoder loads; its warnings and errors use other prefixes and are kept.
_TFLITE_INFO = "INFO: "
#: Lines that only say "there is no usable NVIDIA driver": noise on a machine without one.
_NO_GPU_NOISE = ("failed call to cuInit", "Could not find cuda drivers", "CUDA error: Failed call")
_NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")


def nvidia_driver_loaded() -> bool:
    return _NVIDIA_DRIVER.exists()


def is_start_up_noise(line: str, *, gpu_driver: bool) -> bool:
    """Whether ``line`` (without its newline) is TensorFlow start-up chatter to drop.

    Kept: anything not in TensorFlow's native log format (Python warnings, classpulse's logs),
    and native warnings and errors that are not known noise. Dropped: the absl preamble, native
    and TensorFlow Lite info lines, known noise, and cuInit/driver lines when no NVIDIA driver is loaded.
    """
    if line.startswith((_ABSL_PREAMBLE, _TFLITE_INFO)):
        return True
    match = _NATIVE_LINE.match(line)
    if match is None:
        return False
    severity = match.group("absl") or match.group("old")
    text = match.group("text")
    if severity == "I":
        return True
    if any(noise in text for noise in _ALWAYS_NOISE):
        return True
    return not gpu_driver and any(noise in text for noise in _NO_GPU_NOISE)


def _forward(read_fd: int, write_fd: int, keep: Callable[[str], bool]) -> None:
    pending = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(read_fd, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            out = b"".join(line + b"\n" for line in lines if keep(line.decode("utf-8", "replace")))
            if out:
                os.write(write_fd, out)
        if pending and keep(pending.decode("utf-8", "replace")):
            os.write(write_fd, pending)
    os.close(read_fd)


@contextlib.contextmanager
def native_stderr_filtered(
    is_noise: Callable[[str], bool] | None = None, *, drain_timeout_s: float = 2.0
) -> Iterator[None]:
    """Within the block, lines written to fd 2 for which ``is_noise`` holds are dropped.

    Default: ``is_start_up_noise`` for this machine. Keep the block short (imports, device
    probing): everything written to stderr meanwhile passes through one thread. File descriptor
    2 belongs to the whole process, so blocks in different threads take turns (a second thread
    waits); a block nested in the same thread is fine.
    """
    with _FD2_LOCK:
        yield from _filtered(is_noise, drain_timeout_s)


#: Serialises redirections of fd 2: two threads swapping it at once would each restore the
#: other's pipe, leaving stderr on a pipe nobody reads.
_FD2_LOCK = threading.RLock()


def _filtered(is_noise: Callable[[str], bool] | None, drain_timeout_s: float) -> Iterator[None]:
    if is_noise is None:
        gpu_driver = nvidia_driver_loaded()

        def is_noise(line: str) -> bool:
            return is_start_up_noise(line, gpu_driver=gpu_driver)

    noise = is_noise
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    forwarder = threading.Thread(
        target=_forward,
        args=(read_fd, saved, lambda line: not noise(line)),
        name="stderr-filter",
        daemon=True,
    )
    forwarder.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last writer is gone: the forwarder reads to its end
        forwarder.join(drain_timeout_s)
        if not forwarder.is_alive():  # else a copy of the pipe lives on (a child): leave it
            os.close(saved)


def import_tensorflow() -> ModuleType:
    """``import tensorflow`` and probe its devices (where CUDA is initialised) without the
    start-up chatter; the GPU is found and used exactly as without this."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_filtered():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf
