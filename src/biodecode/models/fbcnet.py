"""FBCNet (Mane et al. 2021): filter-bank CSP learned end to end.

Motor imagery shows as band power changes (ERD/ERS) over sensorimotor cortex; filter-bank CSP
finds, per frequency band, the spatial filters whose output variance separates the classes. FBCNet
keeps that structure and learns it: the EEG is split into narrow bands (the paper's "multi-view"
input: 9 bands of 4 Hz from 4 to 40 Hz), each band gets its own depthwise spatial convolution
(``m`` spatial filters per band, max-norm 2, BatchNorm, swish), the log-variance of each spatial
filter's output is taken over ``n_segments`` non-overlapping stretches of the window, and one
max-norm (0.5) linear layer classifies. About 20k parameters for 64 channels: few enough to train
from hundreds of trials, which is what the authors designed it for.

Reference: R. Mane, E. Chew, K. Chua, K. K. Ang, N. Robinson, A. P. Vinod, S.-W. Lee, C. Guan,
"FBCNet: A Multi-view Convolutional Neural Network for Brain-Computer Interface", arXiv:2104.01233
(2021).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from .base import BiosignalModel, MaxNormConv2d, MaxNormLinear, ModelInfo


def fir_bank(bands: list[tuple[float, float]], sfreq: float, filter_s: float) -> np.ndarray:
    """``(n_bands, n_taps)`` linear-phase band-pass FIR filters (Hamming window, ``n_taps`` odd,
    about ``filter_s`` seconds) for ``bands`` in Hz."""
    from scipy.signal import firwin

    n_taps = int(round(filter_s * sfreq)) | 1
    return np.stack([firwin(n_taps, [lo, hi], pass_zero=False, fs=sfreq) for lo, hi in bands]).astype(np.float32)


class FBCNet(BiosignalModel):
    """Fixed FIR filter bank (its outputs kept at every ``stride``-th sample, the most that keeps
    the top band below Nyquist: 2 at 160 Hz) -> per-band depthwise spatial conv (``m`` filters,
    max-norm 2) -> BN -> swish -> log-variance over ``n_segments`` stretches -> Linear (max-norm 0.5).

    Input ``(batch, channels, samples)``; needs ``sfreq`` (Hz) to design the bands. Bands reaching
    the Nyquist frequency are dropped."""

    info = ModelInfo(
        name="fbcnet",
        family="CNN",
        paper="Mane et al. 2021, arXiv:2104.01233 (FBCNet)",
        signals=("eeg",),
        deviations="the filter bank is part of the network (fixed zero-phase FIR filters of about 1 s, Hamming "
                   "window) instead of Chebyshev type II filtering before it, so a saved model takes the same "
                   "windows as every other model; the variances are taken on every k-th sample of the band "
                   "signals (k = 2 at 160 Hz: their top edge stays below the new Nyquist frequency), which halves "
                   "the cost; the output is logits (the paper's LogSoftmax is in the loss)",
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = 160.0, *,
                 bands: list[tuple[float, float]] | None = None, m: int = 32, n_segments: int = 4,
                 filter_s: float = 1.0):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        sf = sfreq or 160.0
        wanted = [tuple(b) for b in (bands or [(f, f + 4.0) for f in range(4, 40, 4)])]
        kept = [(float(lo), float(hi)) for lo, hi in wanted if 0 < lo < hi < sf / 2]
        if not kept:
            raise ConfigError(f"fbcnet: no band of {wanted} lies below the Nyquist frequency {sf / 2:g} Hz")
        if not 1 <= n_segments <= n_times:
            raise ConfigError(f"fbcnet: n_segments must be between 1 and the window's {n_times} samples, got {n_segments}")
        self.bands, self.m, self.n_segments = kept, m, n_segments
        taps = torch.from_numpy(fir_bank(kept, sf, filter_s))
        self.register_buffer("fir", taps[:, None, :])  # (n_bands, 1, n_taps): not trained
        # the band outputs hold nothing above the top band's edge: every `stride`-th sample keeps them
        # (the new Nyquist frequency is at or above it), and the variances are taken on those samples
        self.stride = max(1, int(sf // (2 * max(hi for _, hi in kept))))
        n_out = (n_times - 1) // self.stride + 1
        if n_out < n_segments:
            raise ConfigError(f"fbcnet: the window's {n_times} samples give {n_out} after the filter bank's decimation "
                              f"by {self.stride}, fewer than n_segments={n_segments}")
        nb = len(kept)
        self.spatial = MaxNormConv2d(nb, m * nb, (n_channels, 1), groups=nb, bias=True, max_norm=2.0)
        self.bn = nn.BatchNorm2d(m * nb)
        self.act = nn.SiLU()  # swish
        self.seg_len = n_out // n_segments
        self.classifier = MaxNormLinear(m * nb * n_segments, n_classes, max_norm=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        b, c, t = x.shape
        pad = self.fir.shape[-1] // 2
        z = nn.functional.conv1d(x.reshape(b * c, 1, t), self.fir, padding=pad, stride=self.stride)  # (B*C, bands, T')
        z = z.reshape(b, c, z.shape[1], z.shape[2]).transpose(1, 2)  # (B, bands, C, T')
        z = self.act(self.bn(self.spatial(z)))  # (B, m*bands, 1, T)
        z = z[..., : self.seg_len * self.n_segments].reshape(b, z.shape[1], self.n_segments, self.seg_len)
        centred = z - z.mean(dim=-1, keepdim=True)
        var = (centred * centred).mean(dim=-1)  # (B, m*bands, segments)
        feats = torch.log(torch.clamp(var, min=1e-6, max=1e6))
        return self.classifier(feats.flatten(1))
