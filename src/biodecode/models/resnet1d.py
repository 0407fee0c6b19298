"""1-D ResNet for ECG in the xresnet1d style used by the PTB-XL benchmarks.

He et al., "Deep residual learning for image recognition", CVPR 2016; the "bag of tricks" ResNet-D
stem and shortcut of He et al., CVPR 2019; as benchmarked for ECG by Strodthoff, Wagner, Schaeffter,
Samek, "Deep learning for ECG analysis: benchmarks and insights from PTB-XL", IEEE JBHI 25(5) 2021.

Stem: three conv-BN-ReLU (32, 32, 64 filters, the first with stride 2) and a max pool; then four
stages of basic residual blocks (kernel 5) with 64, 128, 256, 512 filters, stride 2 at the start of
stages 2-4, shortcut = average pool + 1x1 conv + BN when the shape changes, the last BN of each
block initialised to zero; head = concatenated global average and max pooling, dropout, linear.
Deviation: fastai's two-layer head is a single linear layer here; ``layers=(2, 2, 2, 2)`` is the
18-layer depth (PTB-XL's best was xresnet1d101, ``layers=(3, 4, 23, 3)`` with bottlenecks).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import WITH_C99, BiosignalModel, ModelInfo


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, relu: bool = True, zero_bn: bool = False) -> nn.Sequential:
    bn = nn.BatchNorm1d(c_out)
    if zero_bn:
        nn.init.zeros_(bn.weight)
    layers: list[nn.Module] = [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), bn]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(c_in, c_out, kernel, stride), _conv_bn(c_out, c_out, kernel, relu=False, zero_bn=True))
        short: list[nn.Module] = []
        if stride != 1:
            short.append(nn.AvgPool1d(stride, ceil_mode=True))
        if c_in != c_out:
            short.append(_conv_bn(c_in, c_out, 1, relu=False))
        self.shortcut = nn.Sequential(*short)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet1d(BiosignalModel):
    info = ModelInfo(
        name="resnet1d",
        family="CNN (residual)",
        paper="He et al. 2016/2019; Strodthoff et al. 2021, IEEE JBHI 25(5) (xresnet1d for ECG)",
        deviations="single linear head instead of fastai's two-layer head",
        export_notes=WITH_C99,
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = None, *,
                 layers: tuple[int, ...] = (2, 2, 2, 2), widths: tuple[int, ...] = (64, 128, 256, 512),
                 kernel_size: int = 5, dropout: float = 0.5):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"resnet1d: kernel_size must be odd (its 'same' padding keeps the length), got {kernel_size}")
        self.stem = nn.Sequential(_conv_bn(n_channels, 32, kernel_size, stride=2), _conv_bn(32, 32, kernel_size),
                                  _conv_bn(32, 64, kernel_size), nn.MaxPool1d(3, stride=2, padding=1))
        blocks: list[nn.Module] = []
        c_in = 64
        for i, (n, w) in enumerate(zip(layers, widths)):
            for j in range(n):
                blocks.append(_BasicBlock(c_in, w, 2 if (i > 0 and j == 0) else 1, kernel_size))
                c_in = w
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        z = self.blocks(self.stem(x))
        z = torch.cat([z.mean(dim=-1), z.amax(dim=-1)], dim=1)
        return self.classifier(self.drop(z))
