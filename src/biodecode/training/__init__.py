"""Training: a Lightning fit loop, augmentation, checkpoints, and the model file format.

Names are imported on first use (PEP 562), so reading a run config (``TrainConfig``) does not
import Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {"Augmenter": "augment", "load_model": "checkpoint", "save_model": "checkpoint", "TrainConfig": "config",
          "FitResult": "loop", "class_weights_for": "loop", "training_class_weights": "loop", "fit": "loop",
          "predict_proba": "loop", "seed_everything": "loop"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
