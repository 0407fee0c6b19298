"""LSTM family: stacked (bi)LSTM over time with channels as features.

Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 9(8) (1997). Input
``(B, C, T)`` is read as ``T`` steps of ``C`` features. Dropout sits between LSTM layers only.
Pooling over time: ``"last"`` (final hidden state; both directions' final states when
bidirectional), ``"mean"``, or ``"attention"`` (a learned softmax weighting of the steps,
Raffel & Ellis 2015). An optional conv front end (two strided convs, 4x shorter) makes long
windows (480 to 3600 steps) affordable; ``frontend="auto"`` turns it on above 256 samples.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .base import BiosignalModel, ModelInfo, require_length


class ConvFrontEnd(nn.Sequential):
    """Two conv-BN-ELU layers of stride 2: ``(B, C, T) -> (B, channels, ~T/4)``."""

    def __init__(self, c_in: int, channels: int, kernel: int = 7):
        super().__init__(
            nn.Conv1d(c_in, channels, kernel, stride=2, padding=kernel // 2), nn.BatchNorm1d(channels), nn.ELU(),
            nn.Conv1d(channels, channels, kernel, stride=2, padding=kernel // 2), nn.BatchNorm1d(channels), nn.ELU(),
        )


class LSTMNet(BiosignalModel):
    info = ModelInfo(
        name="lstm",
        family="RNN",
        paper="Hochreiter & Schmidhuber 1997, Neural Comput. 9(8):1735",
        deviations="reference design, not a single paper's network",
    )

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = None, *,
                 hidden_size: int = 64, num_layers: int = 2, bidirectional: bool = True, dropout: float = 0.3,
                 pooling: str = "attention", frontend: bool | str = "auto", frontend_channels: int = 32):
        super().__init__(n_channels, n_times, n_classes, sfreq)
        if pooling not in {"last", "mean", "attention"}:
            raise ConfigError(f"lstm: pooling must be 'last', 'mean' or 'attention', got {pooling!r}")
        use_frontend = n_times > 256 if frontend == "auto" else bool(frontend)
        self.frontend = ConvFrontEnd(n_channels, frontend_channels) if use_frontend else None
        if use_frontend:
            require_length("lstm", "the conv front end (4x downsampling)", (n_times + 3) // 4)
        self.pooling = pooling
        self.lstm = nn.LSTM(frontend_channels if use_frontend else n_channels, hidden_size, num_layers,
                            batch_first=True, bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        width = hidden_size * (2 if bidirectional else 1)
        self.attention = nn.Linear(width, 1) if pooling == "attention" else None
        self.classifier = nn.Linear(width, n_classes)
        self.n_dirs = 2 if bidirectional else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        if self.frontend is not None:
            x = self.frontend(x)
        out, (h, _) = self.lstm(x.transpose(1, 2))  # out: (B, T', H * dirs)
        if self.pooling == "last":
            z = torch.cat([h[-self.n_dirs + i] for i in range(self.n_dirs)], dim=1)
        elif self.pooling == "mean":
            z = out.mean(dim=1)
        else:
            w = torch.softmax(self.attention(out), dim=1)  # (B, T', 1)
            z = (w * out).sum(dim=1)
        return self.classifier(z)
