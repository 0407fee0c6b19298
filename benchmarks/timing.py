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
