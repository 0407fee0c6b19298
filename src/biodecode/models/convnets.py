"""ShallowConvNet and Deep4 (Schirrmeister et al. 2017).

R. T. Schirrmeister, J. T. Springenberg, L. D. J. Fiederer, M. Glasstetter, K. Eggensperger,
M. Tangermann, F. Hutter, W. Burgard, T. Ball. "Deep learning with convolutional neural networks
for EEG decoding and visualization". Human Brain Mapping 38(11):5391-5420 (2017).

Kernel, pooling and stride sizes are in samples, as in the paper (whose data were at 250 Hz);
pass other sizes for other rates. The final dense layer is a convolution over the remaining time
steps in the paper; here it is the equivalent Linear on the flattened features. The split first
layer (temporal then spatial conv, nothing in between) runs as one combined convolution
(:class:`~biodecode.models.base.CombinedConv`): same parameters, same function, less memory traffic.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import WITH_C99, BiosignalModel, CombinedConv, ModelInfo, out_len, require_length


class ShallowConvNet(BiosignalModel):
    """Shallow ConvNet: temporal conv (40 x 25) -> spatial conv (40 x C, no bias) -> BatchNorm ->
    square -> mean pool (75, stride 15) -> log -> dropout -> dense. A learned FBCSP analogue."""

    info = ModelInfo(
        name="shallow",
        family="CNN",
        paper="Schirrmeister et al. 2017, Hum. Brain Mapp. 38:5391",
        deviations="classifier as Linear instead of an equivalent full-length conv; log clamps at 1e-6",
        export_notes=WITH_C99,
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = 250.0, *,
                 n_filters: int = 40, filter_length: int = 25, pool_length: int = 75, pool_stride: int = 15,
                 dropout: float = 0.5):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        t = require_length("shallow", f"the temporal conv ({filter_length})", out_len(n_times, filter_length))
        t = require_length("shallow", f"the pooling ({pool_length})", out_len(t, pool_length, pool_stride))
        self.conv = CombinedConv(nn.Conv2d(1, n_filters, (1, filter_length)),
                                 nn.Conv2d(n_filters, n_filters, (n_channels, 1), bias=False))
        self.bn = nn.BatchNorm2d(n_filters, momentum=0.1)
        self.pool = nn.AvgPool2d((1, pool_length), stride=(1, pool_stride))
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(n_filters * t, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.bn(self.conv(x.unsqueeze(1)))
        x = torch.log(torch.clamp(self.pool(x * x), min=1e-6))
        return self.classifier(self.drop(x).flatten(1))


class Deep4(BiosignalModel):
    """Deep ConvNet: four conv-pool blocks (25, 50, 100, 200 filters of length 10; max pool 3/3;
    BatchNorm, ELU; dropout 0.5 before blocks 2-4), the first split into temporal and spatial convs."""

    info = ModelInfo(
        name="deep4",
        family="CNN",
        paper="Schirrmeister et al. 2017, Hum. Brain Mapp. 38:5391",
        deviations="classifier as Linear instead of an equivalent full-length conv",
        export_notes=WITH_C99,
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = 250.0, *,
                 filters: tuple[int, ...] = (25, 50, 100, 200), filter_length: int = 10, pool: int = 3,
                 dropout: float = 0.5):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        t = n_times
        blocks: list[nn.Module] = [
            CombinedConv(nn.Conv2d(1, filters[0], (1, filter_length)),
                         nn.Conv2d(filters[0], filters[0], (n_channels, 1), bias=False)),
            nn.BatchNorm2d(filters[0]), nn.ELU(), nn.MaxPool2d((1, pool), stride=(1, pool)),
        ]
        t = require_length("deep4", "block 1", out_len(out_len(t, filter_length), pool, pool))
        for i, (f_in, f_out) in enumerate(zip(filters[:-1], filters[1:]), start=2):
            blocks += [nn.Dropout(dropout), nn.Conv2d(f_in, f_out, (1, filter_length), bias=False),
                       nn.BatchNorm2d(f_out), nn.ELU(), nn.MaxPool2d((1, pool), stride=(1, pool))]
            t = require_length("deep4", f"block {i} (needs about {3 ** 4 * filter_length} samples)",
                               out_len(out_len(t, filter_length), pool, pool))
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(filters[-1] * t, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.classifier(self.features(x.unsqueeze(1)).flatten(1))
