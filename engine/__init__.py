"""classpulse engine: faces, the CNN-LSTM emotion model, inference service and state smoothing.

Importing this package never imports TensorFlow. ``EmotionModel`` is resolved lazily so that the
media process (bot/) can use ``engine.faces``, ``engine.types`` and friends beside aiortc, which
segfaults when TensorFlow is loaded first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.types import CLASSES, EngagementState

if TYPE_CHECKING:
    from engine.model import EmotionModel

__all__ = ["CLASSES", "EmotionModel", "EngagementState"]


def __getattr__(name: str) -> Any:
    if name == "EmotionModel":
        from engine.model import EmotionModel

        return EmotionModel
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
