"""Re-referencing and standardisation on arrays ``(n_channels, n_samples)``."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter
from ..errors import ConfigError, DataFormatError


def common_average(x: np.ndarray) -> np.ndarray:
    """Subtract the mean over channels at every sample (common-average reference)."""
    return x - x.mean(axis=-2, keepdims=True)


def standardize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Per-channel z-score over the whole signal (offline only: it looks at the future)."""
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    return ((x - mean) / np.maximum(std, eps)).astype(x.dtype, copy=False)


def _ema(x: np.ndarray, alpha: float, init: np.ndarray) -> np.ndarray:
    """m_t = (1 - alpha) m_{t-1} + alpha x_t along the last axis, with m_{-1} = ``init``."""
    zi = ((1 - alpha) * init)[..., None]
    y, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], x, axis=-1, zi=zi)
    return y


class ExponentialMovingStandardizer:
    """Causal per-channel standardisation with exponential moving mean and variance.

    m_t = (1-a) m_{t-1} + a x_t;  v_t = (1-a) v_{t-1} + a (x_t - m_t)^2;  y_t = (x_t - m_t) / max(sqrt(v_t), eps)
    with ``a = factor_new`` and the moving mean started at the first sample (variance at 0), as in
    Schirrmeister et al. (2017). Chunked calls equal one call over the whole signal.
    """

    def __init__(self, n_channels: int, factor_new: float = 1e-3, eps: float = 1e-4):
        if not 0 < factor_new <= 1:
            raise ConfigError(f"factor_new must be in (0, 1], got {factor_new}")
        self.n_channels, self.factor_new, self.eps = n_channels, factor_new, eps
        self.reset()

    def reset(self) -> None:
        self.mean: np.ndarray | None = None
        self.var = np.zeros(self.n_channels)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise DataFormatError(f"ExponentialMovingStandardizer: expected ({self.n_channels}, n), got {x.shape}")
        if x.shape[1] == 0:
            return x.astype(np.float32)
        a = self.factor_new
        if self.mean is None:
            self.mean = x[:, 0].copy()
        m = _ema(x, a, self.mean)
        v = _ema((x - m) ** 2, a, self.var)
        self.mean, self.var = m[:, -1].copy(), v[:, -1].copy()
        return ((x - m) / np.maximum(np.sqrt(v), self.eps)).astype(np.float32)


def exponential_moving_standardize(x: np.ndarray, factor_new: float = 1e-3, eps: float = 1e-4) -> np.ndarray:
    """Offline call of :class:`ExponentialMovingStandardizer` over a whole ``(n_channels, n)`` signal."""
    return ExponentialMovingStandardizer(x.shape[0], factor_new, eps).process(x)
