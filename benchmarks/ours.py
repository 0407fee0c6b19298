"""biodecode's side of benchmarks/run.py: the same operations as benchmarks/peer_worker.py."""

from __future__ import annotations

import tempfile
import warnings

import numpy as np
import torch

from .timing import fold_accuracies, latency_ms, train_step_rate, wall

warnings.filterwarnings("ignore")


def to_channels_last(net):
    from biodecode.training.loop import to_channels_last as convert

    return convert(net)


def make_model(name: str, C: int, T: int, K: int):
    from biodecode.models import create_model

    if name in ("eegnet", "eegnet-paper"):  # "eegnet-paper": the paper's layer order, for comparison
        return create_model("eegnet", C, T, K, kernel_length=64, dropout=0.5, spatial_first=name == "eegnet")
    return create_model(name, C, T, K)


def train_throughput(model: str, C: int, T: int, K: int, batch: int, steps: int, **_):
    torch.manual_seed(0)
    net = to_channels_last(make_model(model, C, T, K))  # as fit() does by default
    # max-norm projection after each step, as biodecode's trainer does
    return {"windows_per_s": train_step_rate(net, C, T, K, batch, steps, after_step=net.apply_constraints)}


def latency(model: str, C: int, T: int, K: int, n: int, **_):
    """Our deployed path: the exported, optimised graph in ONNX Runtime, batch 1."""
    from biodecode.deploy import OnnxPredictor, export_onnx, optimize_for_inference

    torch.manual_seed(0)
    net = make_model(model, C, T, K).eval()
    with tempfile.TemporaryDirectory() as tmp:
        meta = {"classes": [str(k) for k in range(K)], "n_channels": C, "n_times": T}  # what OnnxPredictor checks
        path = export_onnx(optimize_for_inference(net), f"{tmp}/m.onnx", C, T, meta=meta)
        pred = OnnxPredictor(path, threads=torch.get_num_threads())
        x = np.random.default_rng(0).standard_normal((1, C, T)).astype(np.float32)
        return latency_ms(lambda: pred.logits(x), n)


def _epoch(X, y, batch):
    from biodecode.training.data import make_loader

    n = 0
    for xb, _ in make_loader(X, y, batch, shuffle=True):
        n += len(xb)
    return n


def data_pipeline(files, tmin, tmax, l_freq, h_freq, batch, data_dir, **_):
    """First load (EDF, filter, windows, cache write) + one epoch; then a warm epoch from the cache."""
    from biodecode.loading import load_windows

    # the same filter as the peer's (timing.causal_band): 4th-order Butterworth, causal, to microvolts
    pre = [{"name": "bandpass", "l_freq": l_freq, "h_freq": h_freq, "causal": True}, {"name": "scale", "factor": 1e6}]
    holder: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as cache:
        kw = dict(tmin=tmin, tmax=tmax, preprocessing=pre, data_dir=data_dir, cache_dir=cache)

        def load_and_epoch() -> None:
            ws = load_windows("physionet-mi", [1], "left-right-imagery", **kw)
            holder["n"] = _epoch(ws.X, ws.y, batch)

        first = wall(load_and_epoch)  # empty cache: reads the EDF files
        warm = wall(load_and_epoch)  # cache hit: memory-mapped arrays
    return {"windows": holder["n"], "first_s": first, "warm_s": warm}


def accuracy(data: str, epochs: int, batch: int, lr: float, seed: int, **_):
    from biodecode.training import TrainConfig, fit, predict_proba, seed_everything

    def fit_predict(X_tr, y_tr, X_te, k):
        seed_everything(seed + k)
        net = make_model("eegnet", X_tr.shape[1], X_tr.shape[2], 2)
        cfg = TrainConfig(max_epochs=epochs, batch_size=batch, lr=lr, val_fraction=0.0, class_weights="none",
                          scheduler="cosine", seed=seed + k, grad_clip=0.0)
        return predict_proba(fit(net, X_tr, y_tr, None, None, cfg).model, X_te).argmax(1)

    return {"fold_accuracy": fold_accuracies(data, fit_predict)}


def profile_step(model: str, C: int, T: int, K: int, batch: int, steps: int, top: int = 6, **_):
    """Where one training step's time goes: the ``top`` operators by self CPU time, as shares."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    net = to_channels_last(make_model(model, C, T, K))
    train_step_rate(net, C, T, K, batch, 2, after_step=net.apply_constraints)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_step_rate(net, C, T, K, batch, steps, after_step=net.apply_constraints)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return {"ms_per_step": total / 1e3 / steps,
            "top": [(e.key, e.self_cpu_time_total / total) for e in events[:top]]}


def versions(**_):
    import biodecode
    import mne

    return {"biodecode": biodecode.__version__, "torch": torch.__version__, "mne": mne.__version__}


OPS = {"train_throughput": train_throughput, "latency": latency, "data_pipeline": data_pipeline,
       "accuracy": accuracy, "versions": versions, "profile_step": profile_step}
