"""One function to build any model by name: ``create_model(name, n_channels=, n_times=, n_classes=)``."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .atcnet import ATCNet
from .base import BiosignalModel
from .convnets import Deep4, ShallowConvNet
from .eegnet import EEGNet
from .eegnex import EEGNeX
from .emg import EMGFeatureNet
from .fbcnet import FBCNet
from .recurrent import LSTMNet
from .resnet1d import ResNet1d
from .tcnet import EEGTCNet
from .transformer import EEGConformer, TransformerNet


@dataclass(frozen=True)
class _Entry:
    cls: type[BiosignalModel]
    preset: dict[str, Any] = field(default_factory=dict)
    note: str = ""


_REGISTRY: dict[str, _Entry] = {}


def register_model(name: str, cls: type[BiosignalModel], note: str = "", **preset: Any) -> None:
    """Register ``cls`` (optionally with preset keyword arguments) under ``name``."""
    _REGISTRY[name] = _Entry(cls, dict(preset), note)


register_model("eegnet", EEGNet, "EEGNet-8,2 (F1=8, D=2, F2=16)")
register_model("eegnet-4,2", EEGNet, "EEGNet-4,2 (F1=4, D=2, F2=8)", F1=4, D=2)
register_model("eegnet-8,2", EEGNet, "EEGNet-8,2 (F1=8, D=2, F2=16)", F1=8, D=2)
register_model("eegnex", EEGNeX, "EEGNeX-8,32 (authors' Keras layout)")
register_model("shallow", ShallowConvNet, "ShallowConvNet")
register_model("deep4", Deep4, "Deep4 ConvNet")
register_model("eegtcnet", EEGTCNet, "EEG-TCNet")
register_model("atcnet", ATCNet, "ATCNet (attention + TCN over 5 sliding windows)")
register_model("lstm", LSTMNet, "biLSTM, attention pooling, conv front end for long windows")
register_model("transformer", TransformerNet, "pre-norm Transformer encoder, patch embedding, class token")
register_model("conformer", EEGConformer, "EEG Conformer")
register_model("fbcnet", FBCNet, "FBCNet (9 bands of 4 Hz, 32 spatial filters each, log-variance of 4 segments)")
register_model("emgnet", EMGFeatureNet, "learned time-domain features for short sEMG windows")
register_model("resnet1d", ResNet1d, "xresnet1d18-style 1-D ResNet")


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_class(name: str) -> type[BiosignalModel]:
    return _entry(name).cls


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name]


def model_defaults(name: str) -> dict[str, Any]:
    """The model's own keyword arguments and their defaults (presets applied)."""
    entry = _entry(name)
    params = inspect.signature(entry.cls.__init__).parameters
    out = {k: p.default for k, p in params.items()
           if k not in {"self", "n_channels", "n_times", "n_classes"} and p.kind == p.KEYWORD_ONLY or k == "sfreq"}
    out.update(entry.preset)
    return out


def describe_model(name: str) -> dict[str, Any]:
    entry = _entry(name)
    info = entry.cls.info
    return {"name": name, "class": entry.cls.__name__, "family": info.family, "paper": info.paper,
            "note": entry.note, "deviations": info.deviations, "export": dict(info.export_notes),
            "defaults": model_defaults(name)}


def _check_kwarg(model: str, key: str, value: Any, default: Any) -> None:
    """A keyword's value must have its default's type (an int may stand for a float), and sizes,
    counts and lengths (integer defaults) must be positive; rates (float defaults) non-negative."""
    where = f"model {model!r}: {key}={value!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer")
        if value < 1:
            raise ConfigError(f"{where}: must be a positive integer")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
            raise ConfigError(f"{where}: expected a finite number >= 0")
        if "dropout" in key and not value < 1:
            raise ConfigError(f"{where}: a dropout rate must be in [0, 1)")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{where}: expected text")
    elif isinstance(default, (tuple, list)) and all(isinstance(d, int) for d in default):
        if not isinstance(value, (tuple, list)) or not value or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
            raise ConfigError(f"{where}: expected a list of positive integers like {list(default)}")


def create_model(name: str, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = None,
                 **kwargs: Any) -> BiosignalModel:
    """Build a registered model for ``(batch, n_channels, n_times)`` inputs and ``n_classes`` logits.

    ``sfreq`` (Hz) is passed to models whose kernel lengths depend on it (EEGNet's default temporal
    kernel is ``sfreq / 2``). Unknown keyword arguments and impossible shapes raise ConfigError here.
    """
    entry = _entry(name)
    allowed = model_defaults(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(f"model {name!r} has no parameter(s) {unknown}; it takes {sorted(allowed)}")
    for k, v in kwargs.items():
        _check_kwarg(name, k, v, allowed[k])
    args = {**entry.preset, **kwargs}
    if sfreq is not None:
        args["sfreq"] = sfreq
    for what, v in (("n_channels", n_channels), ("n_times", n_times), ("n_classes", n_classes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"model {name!r}: {what} must be a positive integer, got {v!r}")
    try:
        model = entry.cls(n_channels, n_times, n_classes, **args)
    except ConfigError:
        raise
    except (ValueError, RuntimeError, TypeError) as exc:  # an impossible setting caught by torch
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "its defaults"
        raise ConfigError(f"model {name!r} cannot be built with {given} for {n_channels} channels x {n_times} "
                          f"samples, {n_classes} classes: {exc}") from None
    model.registry_name = name  # type: ignore[assignment]
    model.registry_kwargs = {k: v for k, v in args.items() if k != "sfreq"}  # type: ignore[assignment]
    return model
