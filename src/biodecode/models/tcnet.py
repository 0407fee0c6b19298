"""EEG-TCNet (Ingolfsson et al. 2020).

T. M. Ingolfsson, M. Hersche, X. Wang, N. Kobayashi, L. Cavigelli, L. Benini. "EEG-TCNet: an
accurate temporal convolutional network for embedded motor-imagery brain-machine interfaces".
IEEE SMC 2020, pp. 2958-2965.

An EEGNet front end (F1=8, D=2, F2=16, temporal kernel K_E=32 at 250 Hz, average pools of 8 and 8,
dropout 0.2) turns ``(C, T)`` into a sequence of ``T // 64`` steps with F2 features; a temporal
convolutional network (L=2 residual blocks of two causal dilated convs, K_T=4, F_T=12, dilations
1 and 2, BatchNorm, ELU, dropout 0.3) runs over it; the last step feeds a dense layer with
max-norm 0.25.

Speed: as in EEGNet, the first block runs spatial-first by default (``spatial_first=True``; the
exact batch statistics of the paper's order, :mod:`biodecode.models.first_block`): the same outputs,
running statistics and gradients within float32 rounding, ``state_dict`` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .first_block import first_block
from .base import WITH_C99, BiosignalModel, MaxNormConv2d, MaxNormLinear, ModelInfo, require_length, same_pad_conv


class _CausalConv1d(nn.Conv1d):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int):
        super().__init__(c_in, c_out, kernel, dilation=dilation)
        self.left = (kernel - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class _TCNBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            _CausalConv1d(c_in, c_out, kernel, dilation), nn.BatchNorm1d(c_out), nn.ELU(), nn.Dropout(dropout),
            _CausalConv1d(c_out, c_out, kernel, dilation), nn.BatchNorm1d(c_out), nn.ELU(), nn.Dropout(dropout),
        )
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.net(x) + self.skip(x))


class EEGTCNet(BiosignalModel):
    info = ModelInfo(
        name="eegtcnet",
        family="CNN+TCN",
        paper="Ingolfsson et al. 2020, IEEE SMC, pp. 2958-2965",
        deviations="none known; kernel sizes are in samples as in the paper (250 Hz)",
        export_notes=WITH_C99,
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = 250.0, *,
                 F1: int = 8, D: int = 2, kernel_length: int = 32, eeg_dropout: float = 0.2,
                 tcn_depth: int = 2, tcn_kernel: int = 4, tcn_filters: int = 12, tcn_dropout: float = 0.3,
                 spatial_first: bool = True):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        self.spatial_first = spatial_first
        F2 = F1 * D
        require_length("eegtcnet", "two average poolings of 8 (n_times must be >= 64)", n_times // 8 // 8)
        bn = dict(momentum=0.01, eps=1e-3)
        self.eegnet = nn.Sequential(
            same_pad_conv(1, F1, kernel_length), nn.BatchNorm2d(F1, **bn),
            MaxNormConv2d(F1, F2, (n_channels, 1), groups=F1, bias=False, max_norm=1.0), nn.BatchNorm2d(F2, **bn),
            nn.ELU(), nn.AvgPool2d((1, 8)), nn.Dropout(eeg_dropout),
            same_pad_conv(F2, F2, 16, groups=F2), nn.Conv2d(F2, F2, 1, bias=False),
            nn.BatchNorm2d(F2, **bn), nn.ELU(), nn.AvgPool2d((1, 8)), nn.Dropout(eeg_dropout),
        )
        blocks = [_TCNBlock(F2 if i == 0 else tcn_filters, tcn_filters, tcn_kernel, 2**i, tcn_dropout)
                  for i in range(tcn_depth)]
        self.tcn = nn.Sequential(*blocks)
        self.classifier = MaxNormLinear(tcn_filters, n_classes, max_norm=0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        e = self.eegnet
        z = first_block(x, e[0], e[1], e[2], self.spatial_first)
        for layer in list(e)[3:]:  # the installed layers one by one (a slice would be a new, untraceable module)
            z = layer(z)
        z = z.squeeze(2)  # (B, F2, T // 64)
        return self.classifier(self.tcn(z)[:, :, -1])
