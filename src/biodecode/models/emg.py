"""A network for short sEMG windows from electrode arrays: learned time-domain features.

The classical sEMG pipeline (Hudgins et al. 1993; Englehart & Hudgins 2003) computes, per electrode
and window, amplitude features (mean absolute value, RMS) and frequency proxies (waveform length,
zero crossings), then a linear classifier. This network learns that pipeline end to end: a bank of
short temporal filters per electrode (a depthwise convolution, so each band stays attached to its
electrode), the log of each filtered signal's mean power over the window (a learned RMS per band
and electrode, the quantity amplitude features estimate), then a small classifier that mixes
electrodes and bands. It is built for the windows EMG decoders use (100-300 ms, 8-16 electrodes,
200-2000 Hz), where EEG models' sfreq/2-long kernels do not fit: EEGNet's 100-sample kernel at
200 Hz is longer than a 40-sample window.

For armbands put on anew each day, pair it with per-day alignment (``data.alignment: euclidean``,
``alignment_by: [subject, session]``: a per-session normalisation from unlabelled calibration data)
and the ``electrode_shift`` augmentation (:mod:`biodecode.training.augment`), which rotates the
ring of electrodes by a fraction of an electrode, as a re-placed armband does.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import BiosignalModel, ModelInfo, require_length


class EMGFeatureNet(BiosignalModel):
    """Depthwise temporal filter bank (``n_bands`` filters of ``filter_ms`` per electrode, 'valid')
    -> log mean power over the window -> BatchNorm -> Linear(hidden) -> ELU -> dropout -> Linear.
    Input ``(batch, electrodes, samples)``; needs ``sfreq`` (Hz) to size the filters."""

    info = ModelInfo(
        name="emgnet",
        family="CNN",
        paper="learned time-domain sEMG features (after Hudgins et al. 1993, IEEE TBME 40(1):82)",
        signals=("emg",),
        deviations="a biodecode design, not a published network: Hudgins' features made learnable",
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = 200.0, *,
                 n_bands: int = 8, filter_ms: float = 40.0, hidden: int = 64, dropout: float = 0.3):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        k = max(2, int(round(filter_ms / 1000.0 * (sfreq or 200.0))))
        require_length("emgnet", f"the temporal filters ({k} samples)", n_times - k + 1)
        self.filters = nn.Conv1d(n_channels, n_channels * n_bands, k, groups=n_channels, bias=False)
        self.bn = nn.BatchNorm1d(n_channels * n_bands)
        self.mix = nn.Sequential(nn.Linear(n_channels * n_bands, hidden), nn.ELU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        z = self.filters(x)  # (B, C * bands, T - k + 1)
        power = torch.log(torch.clamp((z * z).mean(dim=-1), min=1e-10))  # (B, C * bands)
        return self.classifier(self.mix(self.bn(power)))
