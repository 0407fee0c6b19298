"""Training configuration: plain data, written next to every run's results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import ConfigError


def dataclass_from_dict(cls, d: dict[str, Any] | None, section: str):
    """Build dataclass ``cls`` from a mapping; unknown keys are a ConfigError naming ``section``."""
    d = dict(d or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{section}: unknown option(s) {unknown}; known: {sorted(known)}")
    return cls(**d)


@dataclass
class TrainConfig:
    """How to fit one model.

    max_epochs/batch_size: the loop; lr/weight_decay: AdamW; scheduler: ``"cosine"``,
    ``"plateau"`` or ``"none"``; patience: early stopping on validation loss (best weights are
    restored); class_weights: ``"balanced"`` (inverse frequency) or ``"none"``; grad_clip: max
    gradient norm (0 = off); precision: ``"auto"`` (bf16/16 mixed on GPU, 32 on CPU) or a
    Lightning precision; val_fraction: share of the training side held out for early stopping;
    augment: list of augmentation steps (see :mod:`biodecode.training.augment`); accelerator,
    devices, strategy, num_nodes: passed to Lightning; seed: the one seed of the run;
    precise_bn: before each validation and at the end, set BatchNorm statistics to their exact
    average over the training windows (see ``recalibrate_batchnorm``); channels_last: store 4-D
    conv weights channels-last (NHWC), 10-20% faster training of EEGNet, EEG-TCNet and Deep4 on
    CPU (``benchmarks/``), same results up to float rounding.
    """

    max_epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    scheduler: str = "cosine"
    patience: int = 20
    class_weights: str = "balanced"
    grad_clip: float = 1.0
    precision: str = "auto"
    val_fraction: float = 0.2
    augment: list[dict[str, Any]] = field(default_factory=list)
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    num_workers: int = 0
    seed: int = 0
    progress_bar: bool = False
    precise_bn: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        if self.scheduler not in {"cosine", "plateau", "none"}:
            raise ConfigError(f"train.scheduler must be 'cosine', 'plateau' or 'none', got {self.scheduler!r}")
        if self.class_weights not in {"balanced", "none"}:
            raise ConfigError(f"train.class_weights must be 'balanced' or 'none', got {self.class_weights!r}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("max_epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be positive, got {self.lr}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "TrainConfig":
        return dataclass_from_dict(cls, d, "train")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
