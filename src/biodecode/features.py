"""Classic hand-crafted features as baselines next to the networks.

EMG time-domain features (Hudgins et al., IEEE TBME 40(1) 1993; Phinyomark et al., Expert Syst.
Appl. 39(8) 2012), per channel of windows ``X (n, C, T)``:

- RMS: root mean square;  MAV: mean absolute value;  WL: waveform length, sum |x[t+1] - x[t]|;
- ZC: zero crossings, sign changes whose step is at least ``threshold``;
- SSC: slope sign changes, local extrema whose steps on both sides reach ``threshold``.

Returns ``(n, C * 5)`` float32 in the order RMS, MAV, WL, ZC, SSC for channel 0, then channel 1, ...
"""

from __future__ import annotations

import numpy as np
from .errors import DataFormatError

FEATURES = ("rms", "mav", "wl", "zc", "ssc")


def emg_features(X: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 3:
        raise DataFormatError(f"emg_features: expected (n_windows, n_channels, n_times), got {x.shape}")
    d = np.diff(x, axis=-1)
    rms = np.sqrt(np.mean(x**2, axis=-1))
    mav = np.mean(np.abs(x), axis=-1)
    wl = np.sum(np.abs(d), axis=-1)
    zc = np.sum((x[..., :-1] * x[..., 1:] < 0) & (np.abs(d) >= threshold), axis=-1)
    ssc = np.sum((d[..., :-1] * d[..., 1:] < 0) & (np.abs(d[..., :-1]) >= threshold) & (np.abs(d[..., 1:]) >= threshold),
                 axis=-1)
    feats = np.stack([rms, mav, wl, zc, ssc], axis=-1)  # (n, C, 5)
    return feats.reshape(len(x), -1).astype(np.float32)


def feature_names(ch_names: list[str]) -> list[str]:
    return [f"{ch}_{f}" for ch in ch_names for f in FEATURES]
