"""Attention models: a configurable Transformer encoder and EEG Conformer.

TransformerNet follows Vaswani et al. 2017 ("Attention is all you need", NeurIPS) with pre-norm
layers (Xiong et al. 2020) and a conv/patch embedding (as in ViT, Dosovitskiy et al. 2021) that
turns ``(B, C, T)`` into ``T / patch`` tokens; sinusoidal or learned positions; class token or
mean pooling.

EEGConformer follows Song, Zheng, Liu, Gao, "EEG Conformer: convolutional transformer for EEG
decoding and visualization", IEEE TNSRE 31:710-719 (2023; preprint 2022): a ShallowConvNet-like
patch embedding (40 temporal filters of 25, 40 spatial filters, BatchNorm, ELU, average pool 75
stride 15, dropout 0.5, 1x1 projection), 6 pre-norm self-attention blocks with 10 heads and
dropout 0.5, and a 256-32-N fully connected head. As in the authors' code, attention logits are
scaled by 1/sqrt(embedding size), not 1/sqrt(head size).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from .base import BiosignalModel, CombinedConv, ModelInfo, out_len, require_length


def sinusoidal_positions(n: int, d: int) -> torch.Tensor:
    """``(n, d)`` sine/cosine position table of Vaswani et al. 2017."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div[: d // 2])
    return table


class TransformerNet(BiosignalModel):
    info = ModelInfo(
        name="transformer",
        family="Transformer",
        paper="Vaswani et al. 2017, NeurIPS; pre-norm: Xiong et al. 2020, ICML",
        deviations="reference design, not a single paper's network",
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = None, *,
                 d_model: int = 64, n_heads: int = 4, n_layers: int = 2, dim_feedforward: int = 128,
                 dropout: float = 0.1, patch_size: int | None = None, max_tokens: int = 64,
                 positional: str = "sinusoidal", pooling: str = "cls"):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        if positional not in {"sinusoidal", "learned"}:
            raise ConfigError(f"transformer: positional must be 'sinusoidal' or 'learned', got {positional!r}")
        if pooling not in {"cls", "mean"}:
            raise ConfigError(f"transformer: pooling must be 'cls' or 'mean', got {pooling!r}")
        if d_model % n_heads:
            raise ConfigError(f"transformer: d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        patch = patch_size or max(1, math.ceil(n_times / max_tokens))
        n_tokens = require_length("transformer", f"patching by {patch}", n_times // patch)
        self.patch_size, self.n_tokens, self.pooling = patch, n_tokens, pooling
        self.embed = nn.Conv1d(n_channels, d_model, kernel_size=patch, stride=patch)
        n_pos = n_tokens + (1 if pooling == "cls" else 0)
        if positional == "learned":
            self.pos = nn.Parameter(torch.randn(1, n_pos, d_model) * 0.02)
        else:
            self.register_buffer("pos", sinusoidal_positions(n_pos, d_model)[None], persistent=False)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        tokens = self.embed(x).transpose(1, 2)  # (B, L, d)
        if self.cls is not None:
            tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        z = self.norm(self.encoder(self.drop(tokens + self.pos)))
        return self.classifier(z[:, 0] if self.cls is not None else z.mean(dim=1))


class _ConformerAttention(nn.Module):
    def __init__(self, emb: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.scale = heads, emb ** -0.5
        self.qkv = nn.Linear(emb, 3 * emb)
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(emb, emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, e = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4)
        att = self.drop(torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1))
        return self.proj((att @ v).transpose(1, 2).reshape(b, n, e))


class _ConformerBlock(nn.Module):
    def __init__(self, emb: int, heads: int, dropout: float, expansion: int = 4):
        super().__init__()
        self.norm1, self.att, self.drop1 = nn.LayerNorm(emb), _ConformerAttention(emb, heads, dropout), nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(emb)
        self.ff = nn.Sequential(nn.Linear(emb, expansion * emb), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(expansion * emb, emb))
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop1(self.att(self.norm1(x)))
        return x + self.drop2(self.ff(self.norm2(x)))


class EEGConformer(BiosignalModel):
    info = ModelInfo(
        name="conformer",
        family="Transformer",
        paper="Song et al. 2023, IEEE TNSRE 31:710 (EEG Conformer)",
        deviations="kernel sizes in samples as in the paper (250 Hz); none otherwise known",
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = 250.0, *,
                 n_filters: int = 40, filter_length: int = 25, pool_length: int = 75, pool_stride: int = 15,
                 depth: int = 6, heads: int = 10, dropout: float = 0.5):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        if n_filters % heads:
            raise ConfigError(f"conformer: n_filters ({n_filters}) must be divisible by heads ({heads})")
        t = require_length("conformer", f"the temporal conv ({filter_length})", out_len(n_times, filter_length))
        t = require_length("conformer", f"the pooling ({pool_length}, stride {pool_stride})",
                           out_len(t, pool_length, pool_stride))
        self.patch = nn.Sequential(
            CombinedConv(nn.Conv2d(1, n_filters, (1, filter_length)), nn.Conv2d(n_filters, n_filters, (n_channels, 1))),
            nn.BatchNorm2d(n_filters), nn.ELU(), nn.AvgPool2d((1, pool_length), (1, pool_stride)), nn.Dropout(dropout),
            nn.Conv2d(n_filters, n_filters, 1),
        )
        self.blocks = nn.Sequential(*[_ConformerBlock(n_filters, heads, dropout) for _ in range(depth)])
        self.head = nn.Sequential(
            nn.Linear(n_filters * t, 256), nn.ELU(), nn.Dropout(0.5), nn.Linear(256, 32), nn.ELU(), nn.Dropout(0.3),
            nn.Linear(32, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        z = self.patch(x.unsqueeze(1)).squeeze(2).transpose(1, 2)  # (B, tokens, emb)
        return self.head(self.blocks(z).flatten(1))
