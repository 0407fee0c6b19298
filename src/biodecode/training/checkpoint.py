"""Model files: weights plus everything needed to rebuild the model and its input pipeline.

Written to a temporary file and renamed (never a half-written file under the real name); read
with ``torch.load(weights_only=True)`` (no arbitrary code runs when loading a file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from ..atomic import atomic_path
from ..errors import ConfigError, DataFormatError
from ..models import BiosignalModel, create_model

FORMAT = "biodecode-model/1"


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def save_model(path: str | os.PathLike, model: BiosignalModel, **meta: Any) -> Path:
    """Save weights and the constructor arguments (name, kwargs, shapes, sfreq) plus ``meta``
    (classes, channel names, preprocessing config...). Values must be plain data."""
    payload = {
        "format": FORMAT,
        "model_name": getattr(model, "registry_name", None),
        "model_kwargs": dict(getattr(model, "registry_kwargs", {})),
        "n_channels": model.n_channels, "n_times": model.n_times, "n_classes": model.n_classes, "sfreq": model.sfreq,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    if payload["model_name"] is None:
        raise ConfigError("save_model: the model was not built with create_model(); its name is unknown")
    return atomic_torch_save(payload, path)


def load_model(path: str | os.PathLike, map_location: str = "cpu") -> tuple[BiosignalModel, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns ``(model in eval mode, meta)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise DataFormatError(f"{path}: not a readable biodecode model file (truncated or not a checkpoint?): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataFormatError(f"{path}: not a biodecode model file (format {payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r})")
    missing = [k for k in ("model_name", "model_kwargs", "n_channels", "n_times", "n_classes", "sfreq", "state_dict",
                           "meta") if k not in payload]
    if missing:
        raise DataFormatError(f"{path}: model file lacks {missing} (damaged, or written by another tool)")
    if not isinstance(payload["model_kwargs"], dict) or not isinstance(payload["state_dict"], dict):
        raise DataFormatError(f"{path}: model_kwargs and state_dict must be mappings")
    try:
        model = create_model(payload["model_name"], payload["n_channels"], payload["n_times"], payload["n_classes"],
                             sfreq=payload["sfreq"], **payload["model_kwargs"])
    except ConfigError as exc:
        raise DataFormatError(f"{path}: the model it describes cannot be built: {exc}") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[1:4]) or first[0] if first else type(exc).__name__
        raise DataFormatError(f"{path}: its weights do not fit a {payload['model_name']} for {payload['n_channels']} "
                              f"channels x {payload['n_times']} samples, {payload['n_classes']} classes ({detail[:400]})") from None
    return model.eval(), payload["meta"]


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints: atomic writes (Lightning's own) and ``weights_only=True`` reads."""

    def load_checkpoint(self, path, map_location=lambda storage, loc: storage, weights_only=None):
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)
