"""LiteRT interpreters for the face stage's networks and the 8-bit encoder, made quietly.

LiteRT writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to file descriptor 2 when a
process's first interpreter allocates its tensors. :func:`interpreter` makes that first one inside
``native_stderr_filtered`` (which drops the line) and every later one directly, so callers in any
thread need no filtering of their own.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ai_edge_litert.interpreter import Interpreter

from engine.quiet_start import native_stderr_filtered

_first = threading.Lock()
_made = False


def interpreter(
    *, num_threads: int, model_path: Path | None = None, model_content: bytes | None = None
) -> Any:
    """A LiteRT ``Interpreter`` of a ``.tflite`` file or flatbuffer, its tensors allocated (resize
    an input, then allocate again, for another batch size)."""
    global _made

    def make() -> Any:
        path = None if model_path is None else str(model_path)
        made = Interpreter(model_path=path, model_content=model_content, num_threads=num_threads)
        made.allocate_tensors()
        return made

    with _first:
        if not _made:
            with native_stderr_filtered():
                made = make()
            _made = True
            return made
    return make()
