"""Training configuration: plain data, written next to every run's results."""

from __future__ import annotations

import math
import types
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

from ..errors import ConfigError


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_type(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the type hint ``tp`` (int, float, str, bool, Any, ``list[X]``,
    ``dict[K, V]``, ``X | None``); returns it, with ints widened to float where a float is wanted
    and numeric strings such as ``"1e-3"`` (how YAML 1.1 reads them) read as numbers. Anything else
    is a ConfigError naming ``where`` and the value."""
    if tp is Any:
        return value
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for alt in (a for a in args if a is not type(None)):
            try:
                return check_type(value, alt, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else ConfigError(
            f"{where}: {value!r} is not {' or '.join(_type_name(a) for a in args)}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [check_type(v, args[0], f"{where}[{i}]") if args else v for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {k: check_type(v, args[1], f"{where}.{k}") if args else v for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp in (int, float):
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected {'an integer' if tp is int else 'a number'}, got {value!r}") from None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise ConfigError(f"{where}: expected {'an integer' if tp is int else 'a finite number'}, got {value!r}")
        if tp is int:
            if float(number) != int(number):
                raise ConfigError(f"{where}: expected an integer, got {value!r}")
            return int(number)
        return float(number)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return value
    return value


def check_fields(obj: Any, section: str) -> None:
    """Check (and normalise, e.g. int -> float) every field of dataclass instance ``obj`` in place."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):
        object.__setattr__(obj, f.name, check_type(getattr(obj, f.name), hints[f.name], f"{section}.{f.name}"))


def dataclass_from_dict(cls, d: dict[str, Any] | None, section: str):
    """Build dataclass ``cls`` from a mapping; unknown keys are a ConfigError naming ``section``.
    The config dataclasses check their values' types themselves (:func:`check_fields` in
    ``__post_init__``), so a mistyped value is a ConfigError naming ``section.key`` and the value."""
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
    restored); class_weights: ``"balanced"`` (inverse frequency), ``"sqrt"`` (its square root)
    or ``"none"``, of the class frequencies the loader serves; sampler: ``"shuffle"`` (each
    training window once per epoch) or ``"balanced"`` (class-balanced sampling: each epoch draws as
    many windows as the training set holds, with replacement, every class equally often, so the
    class weights see balanced classes and are all equal); grad_clip: max gradient norm (0 = off);
    precision: ``"auto"`` (bf16/16 mixed on GPU, 32 on CPU) or a Lightning precision; val_fraction: share of the training side held out for early stopping;
    augment: list of augmentation steps (see :mod:`biodecode.training.augment`); accelerator,
    devices, strategy, num_nodes: passed to Lightning; seed: the one seed of the run;
    precise_bn: before each validation and at the end, set BatchNorm statistics to their exact
    average over the training windows (see ``recalibrate_batchnorm``); channels_last: store 4-D
    conv weights channels-last (NHWC), 10-20% faster training of EEGNet, EEG-TCNet and Deep4 on
    CPU (``benchmarks/``), same results up to float rounding; loggers: Lightning loggers a run
    writes per fold (``csv``, ``tensorboard``, ``mlflow``; :mod:`biodecode.training.tracking`);
    logit_offsets: ``{class name: offset}`` added to those classes' logits once training ends (networks
    only; folded into the output layer's bias, so the saved model and every export decide the same
    way): a prior shift that trades a rare class's precision for its sensitivity, to be chosen by
    nested validation (``benchmarks/tune_defaults.py``), never on a test fold.
    """

    max_epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    scheduler: str = "cosine"
    patience: int = 20
    class_weights: str = "balanced"
    sampler: str = "shuffle"
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
    loggers: list[str] = field(default_factory=lambda: ["csv"])
    logit_offsets: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self, "train")
        if self.scheduler not in {"cosine", "plateau", "none"}:
            raise ConfigError(f"train.scheduler must be 'cosine', 'plateau' or 'none', got {self.scheduler!r}")
        if self.class_weights not in {"balanced", "sqrt", "none"}:
            raise ConfigError(f"train.class_weights must be 'balanced', 'sqrt' or 'none', got {self.class_weights!r}")
        if self.sampler not in {"shuffle", "balanced"}:
            raise ConfigError(f"train.sampler must be 'shuffle' or 'balanced', got {self.sampler!r}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("max_epochs", "batch_size", "num_nodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("patience", "num_workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be positive, got {self.lr}")
        from .tracking import check_loggers

        check_loggers(self.loggers)
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError(f"train.weight_decay and train.grad_clip must be >= 0, got {self.weight_decay}, "
                              f"{self.grad_clip}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "TrainConfig":
        return dataclass_from_dict(cls, d, "train")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
