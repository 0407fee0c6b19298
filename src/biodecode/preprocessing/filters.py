"""IIR filters as second-order sections: zero-phase (offline) and causal, stateful (online) forms.

All functions take arrays ``(..., n_samples)`` and filter along the last axis; frequencies in Hz.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal

from ..errors import ConfigError, DataFormatError


def design_bandpass(sfreq: float, l_freq: float | None, h_freq: float | None, order: int = 4) -> np.ndarray:
    """Butterworth SOS: band-pass, or high-pass (``h_freq=None``) or low-pass (``l_freq=None``)."""
    nyq = sfreq / 2.0
    if l_freq is None and h_freq is None:
        raise ConfigError("bandpass: give l_freq, h_freq or both")
    if l_freq is not None and not 0 < l_freq < nyq:
        raise ConfigError(f"bandpass: l_freq={l_freq} Hz must be in (0, Nyquist={nyq} Hz)")
    if h_freq is not None and not 0 < h_freq < nyq:
        raise ConfigError(f"bandpass: h_freq={h_freq} Hz must be in (0, Nyquist={nyq} Hz) at sfreq {sfreq} Hz")
    if l_freq is not None and h_freq is not None and l_freq >= h_freq:
        raise ConfigError(f"bandpass: l_freq={l_freq} must be below h_freq={h_freq}")
    if l_freq is None:
        return signal.butter(order, h_freq, btype="lowpass", fs=sfreq, output="sos")
    if h_freq is None:
        return signal.butter(order, l_freq, btype="highpass", fs=sfreq, output="sos")
    return signal.butter(order, [l_freq, h_freq], btype="bandpass", fs=sfreq, output="sos")


def design_notch(sfreq: float, freq: float = 50.0, quality: float = 30.0) -> np.ndarray:
    """Second-order IIR notch at ``freq`` Hz (bandwidth ``freq / quality``) as SOS."""
    if not 0 < freq < sfreq / 2:
        raise ConfigError(f"notch: freq={freq} Hz must be in (0, Nyquist={sfreq / 2} Hz)")
    b, a = signal.iirnotch(freq, quality, fs=sfreq)
    return signal.tf2sos(b, a)


def apply_sos(x: np.ndarray, sos: np.ndarray, causal: bool = False) -> np.ndarray:
    """Zero-phase forward-backward (``causal=False``) or one causal pass from rest."""
    x = np.asarray(x)
    if causal:
        return signal.sosfilt(sos, x, axis=-1).astype(x.dtype, copy=False)
    padlen = min(3 * (2 * len(sos) + 1), x.shape[-1] - 1)
    return signal.sosfiltfilt(sos, x, axis=-1, padlen=max(padlen, 0)).astype(x.dtype, copy=False)


def bandpass(x: np.ndarray, sfreq: float, l_freq: float | None, h_freq: float | None, order: int = 4,
             causal: bool = False) -> np.ndarray:
    """Butterworth band-pass of ``x (..., n_samples)``; zero-phase unless ``causal``."""
    return apply_sos(x, design_bandpass(sfreq, l_freq, h_freq, order), causal)


def notch(x: np.ndarray, sfreq: float, freq: float = 50.0, quality: float = 30.0, causal: bool = False) -> np.ndarray:
    """Remove line noise at ``freq`` Hz; zero-phase unless ``causal``."""
    return apply_sos(x, design_notch(sfreq, freq, quality), causal)


class CausalFilter:
    """Stateful causal SOS filter: feeding a signal in chunks of any size (one sample included)
    gives exactly the output of one causal pass over the whole signal.

    ``process(chunk)`` takes ``(n_channels, n)`` and returns the filtered ``(n_channels, n)``.
    """

    def __init__(self, sos: np.ndarray, n_channels: int):
        self.sos = np.asarray(sos, dtype=np.float64)
        self.n_channels = n_channels
        self.reset()

    def reset(self) -> None:
        self.zi = np.zeros((self.sos.shape[0], self.n_channels, 2))

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[0] != self.n_channels:
            raise DataFormatError(f"CausalFilter: expected chunk (n_channels={self.n_channels}, n), got {chunk.shape}")
        if chunk.shape[1] == 0:
            return chunk.astype(np.float32)
        y, self.zi = signal.sosfilt(self.sos, chunk.astype(np.float64), axis=-1, zi=self.zi)
        return y.astype(np.float32)


def resample(x: np.ndarray, sfreq: float, new_sfreq: float) -> np.ndarray:
    """Polyphase resampling of ``x (..., n_samples)`` from ``sfreq`` to ``new_sfreq`` Hz."""
    if new_sfreq <= 0:
        raise ConfigError(f"resample: new sampling rate must be positive, got {new_sfreq}")
    ratio = Fraction(new_sfreq / sfreq).limit_denominator(1000)
    if ratio == 1:
        return np.asarray(x)
    y = signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    return y.astype(np.asarray(x).dtype, copy=False)
