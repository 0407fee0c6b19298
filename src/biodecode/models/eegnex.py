"""EEGNeX-8,32 (Chen, Teng, Chen, Pan & Geyer, "Toward reliable signals decoding for
electroencephalogram: A benchmark study to EEGNeX", Biomed. Signal Process. Control 87:105475,
2024; arXiv:2207.12369), as in the authors' Keras code (github.com/chenxiachan/EEGNeX):

1. temporal conv, 8 filters of 32 samples ('same', no bias) -> LayerNorm -> ELU
2. temporal conv, 32 filters of 32 samples -> LayerNorm -> ELU
3. depthwise spatial conv over all channels, depth multiplier 2 (max-norm 1) -> LayerNorm -> ELU
   -> average pooling 4 -> dropout 0.5
4. temporal conv, 32 filters of 16 samples, dilation 2 -> LayerNorm -> ELU
5. temporal conv, 8 filters of 16 samples, dilation 4 -> LayerNorm -> ELU -> dropout 0.5
6. flatten -> dense (max-norm 0.25)

The authors' LayerNormalization uses Keras' default axis -1, which on their channels-first tensors
is the time axis: each (filter, electrode) row is normalised over time, with a gain and offset per
time step. That is kept here (so the model is tied to its window length, as its dense layer is
anyway). The pooling takes ``ceil(T / 4)`` steps like Keras' 'same' pooling; for ``T`` not a
multiple of 4 the last, partial window is placed at the end rather than split over both ends.

That normalisation makes the network blind to each electrode's amplitude within a window: block 1
filters every electrode alike and linearly, so scaling one electrode scales its rows, which the
norm over time undoes (``tests/test_models.py`` checks the invariance). Band power per electrode,
the cue of motor imagery (mu/beta desynchronisation over one hemisphere), never reaches the
spatial filter. ``norm="batch"`` (as braindecode's port) normalises each filter over the batch
instead and keeps it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import BiosignalModel, MaxNormConv2d, MaxNormLinear, ModelInfo, same_pad_conv


class EEGNeX(BiosignalModel):
    info = ModelInfo(
        name="eegnex",
        family="CNN",
        paper="Chen et al. 2024, Biomed. Signal Process. Control 87:105475 (EEGNeX-8,32)",
        deviations="LayerNorm over time as the authors' Keras code (norm='batch': BatchNorm per filter); pooling "
                   "windows end-aligned when T % 4 != 0",
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = None, *,
                 F1: int = 8, F2: int = 32, D: int = 2, kernel_length: int = 32, dilated_length: int = 16,
                 pool: int = 4, dropout: float = 0.5, norm: str = "layer"):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        if norm not in ("layer", "batch"):
            raise ValueError(f"eegnex: norm must be 'layer' (the authors' code) or 'batch', got {norm!r}")
        t = n_times
        tp = math.ceil(n_times / pool)

        def nrm(filters: int, steps: int) -> nn.Module:
            if norm == "batch":
                return nn.BatchNorm2d(filters)
            return nn.LayerNorm(steps, eps=1e-3)  # Keras LayerNormalization's epsilon

        self.block1 = nn.Sequential(same_pad_conv(1, F1, kernel_length), nrm(F1, t), nn.ELU())
        self.block2 = nn.Sequential(same_pad_conv(F1, F2, kernel_length), nrm(F2, t), nn.ELU())
        self.block3 = nn.Sequential(
            MaxNormConv2d(F2, F2 * D, (n_channels, 1), groups=F2, bias=False, max_norm=1.0), nrm(F2 * D, t),
            nn.ELU(), nn.AvgPool2d((1, pool), ceil_mode=True), nn.Dropout(dropout))
        self.block4 = nn.Sequential(same_pad_conv(F2 * D, F2, dilated_length, dilation=2), nrm(F2, tp), nn.ELU())
        self.block5 = nn.Sequential(same_pad_conv(F2, F1, dilated_length, dilation=4), nrm(F1, tp), nn.ELU(),
                                    nn.Dropout(dropout))
        self.n_features = F1 * tp
        self.classifier = MaxNormLinear(self.n_features, n_classes, max_norm=0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.block5(self.block4(self.block3(self.block2(self.block1(x.unsqueeze(1))))))
        return self.classifier(x.flatten(1))


def eegnex_keras_param_count(n_channels: int, n_times: int, n_classes: int) -> int:
    """Trainable parameters of the authors' Keras EEGNeX-8,32 (LayerNorm: a gain and an offset per
    time step), for checking this port layer by layer."""
    t, tp = n_times, math.ceil(n_times / 4)
    convs = 8 * 32 + 8 * 32 * 32 + n_channels * 32 * 2 + 64 * 32 * 16 + 32 * 8 * 16
    norms = 3 * 2 * t + 2 * 2 * tp
    return convs + norms + 8 * tp * n_classes + n_classes
