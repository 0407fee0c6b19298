"""Export a trained model to ONNX or TorchScript, with the metadata a deployment needs and a
parity check against PyTorch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from ..errors import BiodecodeError
from .predictor import load_predictor

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "x", "logits"


class ParityError(BiodecodeError):
    """An exported model's outputs differ from PyTorch's beyond the tolerance."""


def export_onnx(model: nn.Module, path: str | os.PathLike, n_channels: int, n_times: int,
                meta: dict[str, Any] | None = None, opset: int = OPSET) -> Path:
    """ONNX with input ``x`` float32 ``(batch, n_channels, n_times)`` and output ``logits``
    ``(batch, n_classes)``, dynamic batch; ``meta`` is stored as JSON in the model's
    ``metadata_props["biodecode"]``. Written to a temporary file, then renamed."""
    import onnx

    model = model.eval()
    with atomic_path(path) as tmp:
        with torch.no_grad():
            torch.onnx.export(model, (torch.zeros(1, n_channels, n_times),), str(tmp), input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "biodecode", json.dumps(meta or {}, default=str)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return Path(path)


def export_torchscript(model: nn.Module, path: str | os.PathLike, n_channels: int, n_times: int,
                       meta: dict[str, Any] | None = None) -> Path:
    """A traced TorchScript module (``torch.jit.load`` runs it without biodecode installed);
    ``meta`` goes into the archive as ``extra_files["biodecode.json"]``."""
    with atomic_path(path) as tmp:
        with torch.no_grad():
            traced = torch.jit.trace(model.eval(), torch.zeros(2, n_channels, n_times))
        torch.jit.save(traced, str(tmp), _extra_files={"biodecode.json": json.dumps(meta or {}, default=str)})
    return Path(path)


def parity(reference: nn.Module, exported: str | os.PathLike, X: np.ndarray, atol: float = 1e-4) -> dict[str, float]:
    """Run PyTorch and the exported file on the same windows; raise ParityError if the largest
    absolute logit difference exceeds ``atol``. Returns ``{"max_abs_diff", "n_windows", "atol"}``."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    with torch.no_grad():
        ref = reference.eval()(torch.from_numpy(X)).numpy()
    out = load_predictor(exported).logits(X)
    diff = float(np.max(np.abs(out - ref))) if len(X) else 0.0
    if diff > atol:
        raise ParityError(f"{exported}: outputs differ from PyTorch by up to {diff:.2e} (> {atol:g}) on {len(X)} windows")
    return {"max_abs_diff": diff, "n_windows": int(len(X)), "atol": atol}
