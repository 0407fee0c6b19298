"""Export a trained model to ONNX (the ``torch.export``-based exporter) or a ``torch.export``
program (``.pt2``), with the metadata a deployment needs and a parity check against PyTorch."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from ..errors import BiodecodeError
from .predictor import load_predictor

OPSET = 18  # the dynamo exporter's lowest well-supported opset
INPUT_NAME, OUTPUT_NAME = "x", "logits"


class ParityError(BiodecodeError):
    """An exported model's outputs differ from PyTorch's beyond the tolerance."""


@contextlib.contextmanager
def _exporting() -> Iterator[None]:
    """Run torch.export / the ONNX exporter without their progress lines on standard output and
    without deprecation notices raised inside torch itself (none comes from biodecode's code)."""
    quiet = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed" notes
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        for pattern in (r".*isinstance\(treespec, LeafSpec\).*", r".*_check_is_size will be removed.*",
                        r"The tensor attributes self\.lstm\._flat_weights.*"):  # nn.LSTM's own cache, inside torch
            warnings.filterwarnings("ignore", message=pattern)
        try:
            with torch.no_grad():
                yield
        finally:
            quiet.setLevel(level)


def _batch_dynamic(n_channels: int, n_times: int) -> tuple[tuple[torch.Tensor], dict[str, dict[int, Any]]]:
    """An example input of two windows and the dynamic-shape spec: any batch size, fixed window."""
    return (torch.zeros(2, n_channels, n_times),), {INPUT_NAME: {0: torch.export.Dim("batch", min=1, max=1 << 20)}}


def export_onnx(model: nn.Module, path: str | os.PathLike, n_channels: int, n_times: int,
                meta: dict[str, Any] | None = None, opset: int = OPSET) -> Path:
    """ONNX through the ``torch.export``-based exporter, with input ``x`` float32 ``(batch,
    n_channels, n_times)`` and output ``logits`` ``(batch, n_classes)``, dynamic batch; ``meta`` is
    stored as JSON in the model's ``metadata_props["biodecode"]``. Written to a temporary file,
    then renamed."""
    import onnx

    model = model.eval()
    args, dynamic = _batch_dynamic(n_channels, n_times)
    with atomic_path(path) as tmp:
        with _exporting():
            program = torch.onnx.export(model, args, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=dynamic, opset_version=opset, dynamo=True, optimize=True)
        proto = program.model_proto
        entry = proto.metadata_props.add()
        entry.key, entry.value = "biodecode", json.dumps(meta or {}, default=str)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return Path(path)


def export_pt2(model: nn.Module, path: str | os.PathLike, n_channels: int, n_times: int,
               meta: dict[str, Any] | None = None) -> Path:
    """A ``torch.export`` program (``.pt2``; ``torch.export.load(path).module()`` runs it without
    biodecode installed), dynamic batch; ``meta`` goes into the archive as
    ``extra_files["biodecode.json"]``."""
    args, dynamic = _batch_dynamic(n_channels, n_times)
    with atomic_path(path) as tmp:
        with _exporting():
            program = torch.export.export(model.eval(), args, dynamic_shapes=dynamic)
        torch.export.save(program, str(tmp), extra_files={"biodecode.json": json.dumps(meta or {}, default=str)})
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
