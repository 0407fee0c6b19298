"""One inference interface over PyTorch model files, ONNX (float32 or int8) and TorchScript."""

from __future__ import annotations

import json
import warnings
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import ConfigError, DataFormatError


class Predictor:
    """``logits(X (B, C, T)) -> (B, K)``, ``predict_proba``; ``meta`` holds classes, channels,
    sfreq, preprocessing and window length from training."""

    meta: dict[str, Any]
    name: str = ""

    def logits(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = self.logits(X).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class TorchPredictor(Predictor):
    def __init__(self, model: torch.nn.Module, meta: dict[str, Any] | None = None, name: str = "pytorch",
                 set_eval: bool = True):
        """``set_eval=False`` for modules fixed in inference mode when exported (torch.export
        programs refuse ``.eval()``)."""
        self.model, self.meta, self.name = model.eval() if set_eval else model, dict(meta or {}), name

    @torch.no_grad()
    def logits(self, X: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).numpy()


def onnx_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``biodecode`` metadata an export stored in an ONNX file's ``metadata_props`` ({} if none)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for prop in proto.metadata_props:
        if prop.key == "biodecode":
            return json.loads(prop.value)
    return {}


class OnnxPredictor(Predictor):
    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            self.meta = onnx_metadata(path)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise DataFormatError(f"{path}: not a readable ONNX model (truncated or not ONNX?): "
                                  f"{str(exc).splitlines()[0][:300]}") from None
        self.input = self.session.get_inputs()[0].name
        missing = [k for k in ("classes", "n_channels", "n_times") if k not in self.meta]
        if missing:
            raise DataFormatError(f"{path}: an ONNX model without biodecode's metadata (lacks {missing}); export it "
                                  f"with `biodecode export`")
        self.name = "onnxruntime-int8" if ".int8" in Path(path).name else "onnxruntime"

    def logits(self, X: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: np.ascontiguousarray(X, dtype=np.float32)})[0]


def _archive(path: Path, what: str, hint: str, load: Callable[[dict[str, str]], Any], how: str) -> tuple[Any, dict]:
    """``load(extra_files)`` a torch archive that carries biodecode's metadata as the extra file
    ``biodecode.json``; returns ``(loaded object, meta)``. Unreadable archives and archives without
    the metadata are DataFormatErrors naming the file."""
    files = {"biodecode.json": ""}
    try:
        obj = load(files)
        meta = json.loads(files["biodecode.json"] or "{}")
    except Exception as exc:  # torch raises several types, with long internal messages
        raise DataFormatError(f"{path}: not a readable {what} {hint}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}") from None
    if not meta:
        raise DataFormatError(f"{path}: a {what} without biodecode's metadata{how}")
    return obj, meta


def load_predictor(path: str | os.PathLike) -> Predictor:
    """``.onnx`` -> ONNX Runtime; ``.pt2`` -> a torch.export program; ``.pt`` -> a biodecode model
    file; ``.ts`` -> TorchScript (files written by earlier versions)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix == ".onnx":
        return OnnxPredictor(path)
    if path.suffix == ".pt2":
        program, meta = _archive(path, "torch.export program", "(truncated or not .pt2?)",
                                 lambda files: torch.export.load(str(path), extra_files=files),
                                 "; export it with `biodecode export --format pt2`")
        return TorchPredictor(program.module(), meta, name="torch.export", set_eval=False)
    if path.suffix == ".ts":  # files from earlier versions (TorchScript, deprecated in torch 2.13)
        def load_ts(files):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                return torch.jit.load(str(path), _extra_files=files)

        module, meta = _archive(path, "TorchScript model", "(truncated or not TorchScript?)", load_ts, "")
        return TorchPredictor(module, meta, name="torchscript")
    if path.suffix == ".pt":
        from ..training import load_model

        model, meta = load_model(path)
        meta = dict(meta, n_channels=model.n_channels, n_times=model.n_times)
        return TorchPredictor(model, meta)
    raise ConfigError(f"{path}: unknown model file type {path.suffix!r}; expected .pt, .onnx, .pt2 or .ts")
