"""EEGNet (Lawhern et al. 2018).

V. J. Lawhern, A. J. Solon, N. R. Waytowich, S. M. Gordon, C. P. Hung, B. J. Lance. "EEGNet: a compact
convolutional neural network for EEG-based brain-computer interfaces". J. Neural Eng. 15 056013 (2018).

Layer by layer (the paper's Table 2, input ``(1, C, T)``):

1. Conv2D, F1 filters of ``(1, kernel_length)``, 'same' padding, no bias; BatchNorm.
2. DepthwiseConv2D ``(C, 1)``, depth multiplier D, no bias, max-norm 1.0; BatchNorm; ELU;
   AveragePool ``(1, 4)``; Dropout.
3. SeparableConv2D: depthwise ``(1, 16)`` 'same' then pointwise ``(1, 1)`` to F2 filters, no bias;
   BatchNorm; ELU; AveragePool ``(1, 8)``; Dropout.
4. Flatten; Dense to N classes with max-norm 0.25 (softmax is left to the loss: logits out).

``kernel_length`` defaults to ``sfreq / 2`` (64 at the paper's 128 Hz). BatchNorm uses Keras'
defaults (momentum 0.99 there = 0.01 here, epsilon 1e-3). The classifier's input size is derived
from ``n_times`` (``F2 * (T // 4 // 8)``), so any length >= 32 and any channel count works.
Deviation: none in architecture; ``dropout`` defaults to 0.5 (the paper's within-subject value;
it uses 0.25 cross-subject).

Speed: with ``spatial_first=True`` (the default) the first block runs spatial projection first and
one temporal filter per output map, with BatchNorm's batch statistics of the standard order
computed exactly from the input's moments (:mod:`biodecode.models.first_block`): the same outputs,
running statistics and gradients within float32 rounding, ~20x fewer operations at 64 electrodes.
It is used where it pays (more electrodes than the depth multiplier D). ``spatial_first=False``
runs the layers in the paper's order (for comparison); parameters and
``state_dict`` are the same either way.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .first_block import first_block
from .base import WITH_C99, BiosignalModel, MaxNormConv2d, MaxNormLinear, ModelInfo, require_length, same_pad_conv


class EEGNet(BiosignalModel):
    info = ModelInfo(
        name="eegnet",
        family="CNN",
        paper="Lawhern et al. 2018, J. Neural Eng. 15:056013",
        export_notes=WITH_C99,
    )

    def __init__(
        self,
        n_channels: int,
        n_times: int,
        n_classes: int,
        sfreq: float | None = 128.0,
        *,
        F1: int = 8,
        D: int = 2,
        F2: int | None = None,
        kernel_length: int | None = None,
        separable_length: int = 16,
        pool1: int = 4,
        pool2: int = 8,
        dropout: float = 0.5,
        spatial_first: bool = True,
    ):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        F2 = F2 if F2 is not None else F1 * D
        if kernel_length is None:
            kernel_length = int(round((sfreq or 128.0) / 2))
        if kernel_length < 1:
            raise ConfigError(f"EEGNet: kernel_length must be >= 1, got {kernel_length}")
        self.F1, self.D, self.F2, self.kernel_length = F1, D, F2, kernel_length
        self.spatial_first = spatial_first
        t1 = require_length("EEGNet", f"the first average pooling ({pool1})", n_times // pool1)
        t2 = require_length("EEGNet", f"the second average pooling ({pool2}); n_times must be >= {pool1 * pool2}",
                            t1 // pool2)
        bn = dict(momentum=0.01, eps=1e-3)
        self.temporal = same_pad_conv(1, F1, kernel_length)
        self.bn1 = nn.BatchNorm2d(F1, **bn)
        self.spatial = MaxNormConv2d(F1, F1 * D, (n_channels, 1), groups=F1, bias=False, max_norm=1.0)
        self.bn2 = nn.BatchNorm2d(F1 * D, **bn)
        self.pool1 = nn.AvgPool2d((1, pool1))
        self.drop1 = nn.Dropout(dropout)
        self.separable_depthwise = same_pad_conv(F1 * D, F1 * D, separable_length, groups=F1 * D)
        self.separable_pointwise = nn.Conv2d(F1 * D, F2, (1, 1), bias=False)
        self.bn3 = nn.BatchNorm2d(F2, **bn)
        self.pool2 = nn.AvgPool2d((1, pool2))
        self.drop2 = nn.Dropout(dropout)
        self.n_features = F2 * t2
        self.classifier = MaxNormLinear(self.n_features, n_classes, max_norm=0.25)
        self.act = nn.ELU()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> ``(B, F2 * (T // 32))`` flattened features before the classifier."""
        x = first_block(x, self.temporal, self.bn1, self.spatial, self.spatial_first)
        x = self.drop1(self.pool1(self.act(self.bn2(x))))
        x = self.bn3(self.separable_pointwise(self.separable_depthwise(x)))
        x = self.drop2(self.pool2(self.act(x)))
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.classifier(self.features(x))


def eegnet_paper_param_count(n_channels: int, n_times: int, n_classes: int, F1: int = 8, D: int = 2,
                             F2: int | None = None, kernel_length: int = 64) -> int:
    """Trainable parameters from the paper's Table 2 (BatchNorm counted as 2 per feature map)."""
    F2 = F2 or F1 * D
    conv1 = F1 * kernel_length
    bn1 = 2 * F1
    depthwise = n_channels * D * F1
    bn2 = 2 * D * F1
    separable = 16 * D * F1 + D * F1 * F2
    bn3 = 2 * F2
    dense = n_classes * (F2 * (n_times // 32)) + n_classes
    return conv1 + bn1 + depthwise + bn2 + separable + bn3 + dense


def eegnet_paper_macs(n_channels: int, n_times: int, n_classes: int, F1: int = 8, D: int = 2,
                      F2: int | None = None, kernel_length: int = 64) -> int:
    """Multiply-accumulates of the convolutions and dense layer, derived from the same table
    ('same' padding keeps T samples in block 1; the separable conv runs on T // 4)."""
    F2 = F2 or F1 * D
    t1 = n_times // 4
    conv1 = F1 * kernel_length * n_channels * n_times
    depthwise = F1 * D * n_channels * n_times
    sep_depth = F1 * D * 16 * t1
    sep_point = F1 * D * F2 * t1
    dense = F2 * (t1 // 8) * n_classes
    return conv1 + depthwise + sep_depth + sep_point + dense
