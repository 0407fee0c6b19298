"""ATCNet (Altaheri, Muhammad & Alsulaiman 2022).

H. Altaheri, G. Muhammad, M. Alsulaiman. "Physics-informed attention temporal convolutional network
for EEG-based motor imagery classification". IEEE Trans. Ind. Informatics 19(2):2249-2258 (2023,
online 2022), doi:10.1109/TII.2022.3197419; layer settings as in the authors' Keras code
(github.com/Altaheri/EEG-ATCNet, ``ATCNet_``).

1. Convolutional block (EEGNet-like): temporal conv, F1=16 filters of K_E=64 samples ('same', no
   bias) -> BatchNorm -> depthwise spatial conv over all electrodes, depth multiplier D=2 (max-norm
   1) -> BatchNorm -> ELU -> average pool 8 -> dropout 0.3 -> temporal conv, F1*D=32 filters of 16
   samples ('same', no bias) -> BatchNorm -> ELU -> average pool 7 -> dropout 0.3. ``T`` samples
   become ``T_c = T // 56`` steps of 32 features.
2. n=5 sliding windows over those steps, each ``T_w = T_c - n + 1`` long (window i starts at step i).
3. Per window, its own blocks (weights are not shared between windows):
   - attention: LayerNorm (eps 1e-6) -> multi-head self-attention over the window's steps (2 heads
     of key size 8, attention dropout 0.5, output projected back to 32) -> dropout 0.3 -> + input;
   - TCN: two residual blocks (causal convs of kernel 4, 32 filters, dilations 1 and 2, BatchNorm,
     ELU, dropout 0.3), the same blocks as EEG-TCNet's;
   - the last step -> dense layer to the classes (max-norm 0.25).
4. The windows' logits are averaged (the code's default ``fuse='average'``).

Kernel and pool sizes are in samples, as in the paper (BCI IV-2a at 250 Hz, 1125-sample windows);
the window needs at least ``56 * n_windows`` samples. BatchNorm uses Keras' defaults (momentum
0.99 there = 0.01 here, eps 1e-3). The first block runs spatial-first in training, as EEGNet's
(:mod:`biodecode.models.first_block`): the same function, fewer operations.
Deviation: the authors train with L2 weight decay on the conv (0.009) and dense (0.5) kernels;
the toolkit's trainer applies one weight decay to all parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import BiosignalModel, MaxNormConv2d, MaxNormLinear, ModelInfo, require_length, same_pad_conv
from .first_block import first_block
from .tcnet import _TCNBlock


class _MultiHeadSelfAttention(nn.Module):
    """Keras-style multi-head self-attention whose key size is independent of the model width:
    ``(B, L, E) -> (B, L, E)`` with ``heads`` heads of size ``key_dim``."""

    def __init__(self, width: int, heads: int, key_dim: int, dropout: float):
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        self.qkv = nn.Linear(width, 3 * heads * key_dim)
        self.out = nn.Linear(heads * key_dim, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, self.key_dim).permute(2, 0, 3, 1, 4)  # (B, H, L, d) each
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.key_dim), dim=-1)
        z = self.drop(weights) @ v  # (B, H, L, d)
        return self.out(z.transpose(1, 2).reshape(B, L, self.heads * self.key_dim))


class _AttentionBlock(nn.Module):
    """``x + dropout(MHA(LayerNorm(x)))`` over ``(B, features, steps)``."""

    def __init__(self, width: int, heads: int, key_dim: int, attention_dropout: float, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.mha = _MultiHeadSelfAttention(width, heads, key_dim, attention_dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.transpose(1, 2)  # (B, steps, features)
        z = z + self.drop(self.mha(self.norm(z)))
        return z.transpose(1, 2)


class ATCNet(BiosignalModel):
    info = ModelInfo(
        name="atcnet",
        family="CNN+attention+TCN",
        paper="Altaheri et al. 2022, IEEE Trans. Ind. Informatics 19(2):2249 (doi:10.1109/TII.2022.3197419)",
        deviations="one weight decay for all parameters instead of the authors' per-layer L2; kernel sizes in samples (250 Hz)",
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = 250.0, *,
                 F1: int = 16, D: int = 2, kernel_length: int = 64, kernel_length_2: int = 16, pool1: int = 8,
                 pool2: int = 7, conv_dropout: float = 0.3, n_windows: int = 5, heads: int = 2, key_dim: int = 8,
                 attention_dropout: float = 0.5, tcn_depth: int = 2, tcn_kernel: int = 4, tcn_dropout: float = 0.3,
                 spatial_first: bool = True):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        F2 = F1 * D
        steps = require_length("atcnet", f"the two average poolings ({pool1} and {pool2})", n_times // pool1 // pool2)
        self.window = require_length(
            "atcnet", f"{n_windows} sliding windows over {steps} pooled steps (n_times must be >= "
                      f"{pool1 * pool2 * n_windows})", steps - n_windows + 1)
        self.F1, self.D, self.n_windows, self.spatial_first = F1, D, n_windows, spatial_first
        bn = dict(momentum=0.01, eps=1e-3)
        self.temporal = same_pad_conv(1, F1, kernel_length)
        self.bn1 = nn.BatchNorm2d(F1, **bn)
        self.spatial = MaxNormConv2d(F1, F2, (n_channels, 1), groups=F1, bias=False, max_norm=1.0)
        self.conv_rest = nn.Sequential(
            nn.BatchNorm2d(F2, **bn), nn.ELU(), nn.AvgPool2d((1, pool1)), nn.Dropout(conv_dropout),
            same_pad_conv(F2, F2, kernel_length_2), nn.BatchNorm2d(F2, **bn), nn.ELU(), nn.AvgPool2d((1, pool2)),
            nn.Dropout(conv_dropout))
        self.attention = nn.ModuleList(_AttentionBlock(F2, heads, key_dim, attention_dropout, 0.3)
                                       for _ in range(n_windows))
        self.tcn = nn.ModuleList(nn.Sequential(*(_TCNBlock(F2, F2, tcn_kernel, 2 ** i, tcn_dropout) for i in range(tcn_depth)))
                                 for _ in range(n_windows))
        self.classifiers = nn.ModuleList(MaxNormLinear(F2, n_classes, max_norm=0.25) for _ in range(n_windows))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> ``(B, F1 * D, T // 56)``: the convolutional block's output."""
        return self.conv_rest(first_block(x, self.temporal, self.bn1, self.spatial, self.spatial_first)).squeeze(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        z = self.features(x)
        logits = [head(tcn(att(z[:, :, i:i + self.window]))[:, :, -1])
                  for i, (att, tcn, head) in enumerate(zip(self.attention, self.tcn, self.classifiers))]
        return torch.stack(logits).mean(dim=0)
