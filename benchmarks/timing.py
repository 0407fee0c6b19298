"""Timing helpers shared by both sides of the benchmark (stdlib + numpy only, so the peer's
environment can import this file too)."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def per_call_seconds(fn: Callable[[], object], n: int, warmup: int = 3) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def wall(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def causal_band(x: np.ndarray, sfreq: float, l_freq: float, h_freq: float) -> np.ndarray:
    """The band-pass both sides apply: 4th-order Butterworth, one causal pass, volts -> microvolts."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [l_freq, h_freq], btype="bandpass", fs=sfreq, output="sos")
    return (sosfilt(sos, x, axis=-1) * 1e6).astype(np.float32)


def train_step_rate(net, C: int, T: int, K: int, batch: int, steps: int, after_step=None) -> float:
    """Windows per second of forward + backward + AdamW step on a fixed random batch."""
    import torch

    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x, y = torch.randn(batch, C, T), torch.randint(0, K, (batch,))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        if after_step is not None:
            after_step()

    return batch / float(np.median(per_call_seconds(step, steps)))


def latency_ms(fn: Callable[[], object], n: int) -> dict[str, float]:
    t = per_call_seconds(fn, n, warmup=20) * 1e3
    return {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99))}


def fold_accuracies(data: str, fit_predict: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]) -> list[float]:
    """Load ``X``, ``y`` and per-window fold ids from an ``.npz`` and return the test accuracy of
    ``fit_predict(X_train, y_train, X_test, fold) -> predicted labels`` for each fold."""
    d = np.load(data, allow_pickle=False)
    X, y, folds = d["X"], d["y"], d["folds"]
    accs = []
    for k in np.unique(folds):
        tr, te = folds != k, folds == k
        accs.append(float((fit_predict(X[tr], y[tr], X[te], int(k)) == y[te]).mean()))
    return accs
