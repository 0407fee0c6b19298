"""The window parameters, spelled once: what turns a dataset's recordings into windows.

One frozen :class:`WindowSpec` is used by the run config (``DataConfig.window_spec()``), the window
store's keys and the model file (``meta["window_spec"]``), so training, evaluation, export and
streaming all rebuild windows the same way.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from .errors import ConfigError


@dataclass(frozen=True)
class WindowSpec:
    """dataset/task: where windows come from; tmin/tmax (s, around each event) for event windows or
    window_s/stride_s (s) for sliding windows; preprocessing: pipeline steps (``None`` = the
    dataset's default, ``[]`` = none); dataset_kwargs: the dataset's constructor options."""

    dataset: str
    task: str | None = None
    tmin: float | None = None
    tmax: float | None = None
    window_s: float | None = None
    stride_s: float | None = None
    preprocessing: list[dict[str, Any]] | None = None
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # frozen: take private copies so a caller's later edits cannot change the spec
        object.__setattr__(self, "preprocessing",
                           None if self.preprocessing is None else copy.deepcopy(list(self.preprocessing)))
        object.__setattr__(self, "dataset_kwargs", copy.deepcopy(dict(self.dataset_kwargs or {})))
        for name in ("tmin", "tmax", "window_s", "stride_s"):
            v = getattr(self, name)
            if v is not None:
                try:
                    object.__setattr__(self, name, float(v))
                except (TypeError, ValueError):
                    raise ConfigError(f"window spec: {name} must be a number of seconds, got {v!r}") from None

    @property
    def sliding(self) -> bool:
        return self.window_s is not None

    def resolved(self, task_defaults: Mapping[str, Any], default_preprocessing: list[dict[str, Any]]) -> "WindowSpec":
        """The spec with the task's default window and the dataset's default pipeline filled in;
        raises ConfigError when neither event nor sliding windows are defined."""
        spec = self
        if spec.window_s is None and spec.tmin is None and spec.tmax is None and "window_s" in task_defaults:
            spec = replace(spec, window_s=task_defaults.get("window_s"), stride_s=task_defaults.get("stride_s"))
        if spec.sliding:
            if spec.stride_s is None:
                spec = replace(spec, stride_s=spec.window_s)
        else:
            tmin = spec.tmin if spec.tmin is not None else task_defaults.get("tmin")
            tmax = spec.tmax if spec.tmax is not None else task_defaults.get("tmax")
            if tmin is None or tmax is None:
                raise ConfigError(f"{spec.dataset}: give tmin/tmax (event windows) or window_s/stride_s (sliding windows)")
            spec = replace(spec, tmin=tmin, tmax=tmax)
        if spec.preprocessing is None:
            spec = replace(spec, preprocessing=list(default_preprocessing))
        return spec

    def windowing(self) -> dict[str, Any]:
        """The parameters that cut windows (part of every store key)."""
        return {"tmin": self.tmin, "tmax": self.tmax, "window_s": self.window_s, "stride_s": self.stride_s}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WindowSpec":
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"window spec: unknown key(s) {unknown}; known: {sorted(known)}")
        if not d.get("dataset"):
            raise ConfigError("window spec: 'dataset' is missing")
        return cls(**dict(d))

    @classmethod
    def from_model_meta(cls, meta: Mapping[str, Any]) -> "WindowSpec":
        """The spec stored in a model file (``meta["window_spec"]``; older files spelled the fields
        at the top level of ``meta``)."""
        if "window_spec" in meta:
            return cls.from_dict(meta["window_spec"])
        if not meta.get("dataset"):
            raise ConfigError("model file: no window spec and no dataset recorded")
        return cls(meta["dataset"], meta.get("task"), meta.get("tmin"), meta.get("tmax"), meta.get("window_s"),
                   meta.get("stride_s"), meta.get("preprocessing"), meta.get("dataset_kwargs") or {})
