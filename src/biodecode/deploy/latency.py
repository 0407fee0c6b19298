"""Decision latency, from the arrival of the chunk that completes a window to the prediction,
through the full streaming path (causal preprocessing, ring buffer, model), per backend."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from .predictor import OnnxPredictor, Predictor, load_predictor
from .stream import StreamDecoder, replay
from ..errors import ConfigError


CALIBRATE_S = 10.0  # seconds of replayed signal an aligned model is calibrated on before its latency is measured


def stream_latency(predictor: Predictor, *, seconds: float = 60.0, chunk_size: int = 8, hop_s: float = 0.25,
                   seed: int = 0, calibrate_s: float = CALIBRATE_S) -> dict[str, Any]:
    """Replay ``seconds`` of noise (as fast as possible) through a StreamDecoder; p50/p99 in ms. A
    model trained on aligned windows is first calibrated on ``calibrate_s`` seconds of other noise
    (at least one window), so its decisions include the alignment product, as a live user's do."""
    dec = StreamDecoder(predictor, hop_s=hop_s)
    rng = np.random.default_rng(seed)

    def noise(n: int) -> np.ndarray:  # (channels, n) of 20 uV white noise
        return rng.standard_normal((len(dec.ch_names), n)).astype(np.float32) * 20e-6

    aligned = dec.alignment != "none"
    if aligned:
        dec.calibrate(noise(max(dec.n_times, int(calibrate_s * dec.sfreq))))
    data = noise(int(seconds * dec.sfreq))
    for _ in replay(dec, data[:, : dec.n_times * 2], chunk_size):  # warm-up
        pass
    dec.reset()  # the measured replay starts a new stream (its clock restarts at 0)
    dec.stats.latencies_s.clear()
    for _ in replay(dec, data, chunk_size):
        pass
    lat = np.asarray(dec.stats.latencies_s) * 1e3
    if lat.size == 0:
        raise ConfigError(f"stream_latency: {seconds} s of signal gave no decision (window {dec.n_times} samples)")
    return {"decisions": int(lat.size), "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "mean_ms": float(lat.mean()), "aligned": aligned}


def bench_latency(target: str | Path, *, seconds: float = 60.0, chunk_size: int = 8, hop_s: float = 0.25,
                  threads: int = 1) -> list[dict[str, Any]]:
    """Backends: PyTorch eager (the run's ``model.pt``), ONNX Runtime float32 and int8 (``export/``).
    ``target`` is a run folder or a single model file."""
    import torch

    torch.set_num_threads(threads)
    target = Path(target)
    files = ([target / "model.pt", target / "export" / "model.onnx", target / "export" / "model.int8.onnx"]
             if target.is_dir() else [target])
    rows = []
    for f in files:
        if not f.is_file():
            continue
        pred = OnnxPredictor(f, threads=threads) if f.suffix == ".onnx" else load_predictor(f)
        name = {"pytorch": "PyTorch eager", "onnxruntime": "ONNX Runtime float32",
                "onnxruntime-int8": "ONNX Runtime int8"}.get(pred.name, pred.name)
        rows.append({"backend": name, "file": str(f), **stream_latency(pred, seconds=seconds, chunk_size=chunk_size,
                                                                        hop_s=hop_s)})
    return rows


def machine() -> str:
    import os

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
