"""Composable preprocessing steps on Recordings, each with an offline form and (where possible) a
causal, stateful streaming form. A pipeline is data: ``to_config()`` gives a list of dicts that
``Pipeline.from_config`` turns back into the same pipeline.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol, Sequence

import numpy as np

from ..errors import ConfigError
from ..recording import Recording
from .filters import CausalFilter, apply_sos, design_bandpass, design_notch, resample
from .normalize import ExponentialMovingStandardizer, common_average, standardize

log = logging.getLogger(__name__)


class StreamStep(Protocol):
    """Online form of a step: ``process(chunk (n_channels, n)) -> (n_channels', n)``."""

    def process(self, chunk: np.ndarray) -> np.ndarray: ...


class _Func:
    def __init__(self, fn):
        self.fn = fn

    def process(self, chunk: np.ndarray) -> np.ndarray:
        return self.fn(chunk)


_STEPS: dict[str, type["Step"]] = {}


def describe_step(step: dict[str, Any]) -> str:
    """One pipeline step's config in words for reports: ``bandpass(l_freq=8.0, h_freq=32.0, causal=True)``."""
    return str(step.get("name", "?")) + "(" + ", ".join(f"{k}={v}" for k, v in step.items() if k != "name") + ")"


@dataclass
class Step:
    """Base class: subclasses set ``name`` and implement ``apply`` and, if they can, ``stream``."""

    name: ClassVar[str] = ""
    #: Libraries whose version can change this step's output (e.g. a detector's); the window store's
    #: key holds their versions, so an upgrade rebuilds what it would change instead of serving it stale.
    engines: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.name:
            _STEPS[cls.name] = cls

    def apply(self, rec: Recording) -> Recording:
        raise NotImplementedError

    def stream(self, sfreq: float, ch_names: list[str]) -> tuple[StreamStep, float, list[str]]:
        """Return the online processor and the sampling rate and channels after this step."""
        raise ConfigError(f"preprocessing step {self.name!r} has no streaming (causal) form")

    def config(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self)}


@dataclass
class Pick(Step):
    """Keep these channels, in this order."""

    name: ClassVar[str] = "pick"
    channels: list[str] = field(default_factory=list)

    def apply(self, rec: Recording) -> Recording:
        return rec.pick(self.channels)

    def stream(self, sfreq, ch_names):
        missing = [c for c in self.channels if c not in ch_names]
        if missing:
            raise ConfigError(f"pick: channels {missing} not in the stream's channels {ch_names}")
        idx = [ch_names.index(c) for c in self.channels]
        return _Func(lambda x: x[idx]), sfreq, list(self.channels)


@dataclass
class BandPass(Step):
    """Butterworth band-pass (or high/low-pass with one edge ``None``), in Hz."""

    name: ClassVar[str] = "bandpass"
    l_freq: float | None = None
    h_freq: float | None = None
    order: int = 4
    causal: bool = False

    def apply(self, rec: Recording) -> Recording:
        sos = design_bandpass(rec.sfreq, self.l_freq, self.h_freq, self.order)
        return rec.replace(data=apply_sos(rec.data, sos, self.causal))

    def stream(self, sfreq, ch_names):
        if not self.causal:
            log.warning("bandpass: streaming runs causally but the offline step was zero-phase")
        return CausalFilter(design_bandpass(sfreq, self.l_freq, self.h_freq, self.order), len(ch_names)), sfreq, ch_names


@dataclass
class Notch(Step):
    """IIR notch at ``freq`` Hz (e.g. 50 or 60 line noise)."""

    name: ClassVar[str] = "notch"
    freq: float = 50.0
    quality: float = 30.0
    causal: bool = False

    def apply(self, rec: Recording) -> Recording:
        return rec.replace(data=apply_sos(rec.data, design_notch(rec.sfreq, self.freq, self.quality), self.causal))

    def stream(self, sfreq, ch_names):
        if not self.causal:
            log.warning("notch: streaming runs causally but the offline step was zero-phase")
        return CausalFilter(design_notch(sfreq, self.freq, self.quality), len(ch_names)), sfreq, ch_names


@dataclass
class Resample(Step):
    """Polyphase resampling to ``sfreq`` Hz; event onsets (seconds) are unchanged."""

    name: ClassVar[str] = "resample"
    sfreq: float = 128.0

    def apply(self, rec: Recording) -> Recording:
        return rec.replace(data=resample(rec.data, rec.sfreq, self.sfreq), sfreq=float(self.sfreq))


@dataclass
class CommonAverage(Step):
    """Common-average re-reference over the channels present."""

    name: ClassVar[str] = "car"

    def apply(self, rec: Recording) -> Recording:
        return rec.replace(data=common_average(rec.data))

    def stream(self, sfreq, ch_names):
        return _Func(common_average), sfreq, ch_names


@dataclass
class Scale(Step):
    """Multiply by ``factor`` (e.g. 1e6 for volts to microvolts)."""

    name: ClassVar[str] = "scale"
    factor: float = 1e6

    def apply(self, rec: Recording) -> Recording:
        return rec.replace(data=(rec.data * self.factor).astype(np.float32))

    def stream(self, sfreq, ch_names):
        return _Func(lambda x: (x * self.factor).astype(np.float32)), sfreq, ch_names


@dataclass
class Standardize(Step):
    """Per-channel z-score over each whole recording (offline; use ``ems`` for streaming)."""

    name: ClassVar[str] = "standardize"

    def apply(self, rec: Recording) -> Recording:
        return rec.replace(data=standardize(rec.data))


@dataclass
class ExponentialMovingStandardize(Step):
    """Causal exponential moving standardisation (Schirrmeister et al. 2017)."""

    name: ClassVar[str] = "ems"
    factor_new: float = 1e-3
    eps: float = 1e-4

    def apply(self, rec: Recording) -> Recording:
        return rec.replace(data=ExponentialMovingStandardizer(rec.n_channels, self.factor_new, self.eps).process(rec.data))

    def stream(self, sfreq, ch_names):
        return ExponentialMovingStandardizer(len(ch_names), self.factor_new, self.eps), sfreq, ch_names


@dataclass
class Rectify(Step):
    """Full-wave rectification (absolute value), e.g. for EMG envelopes."""

    name: ClassVar[str] = "rectify"

    def apply(self, rec: Recording) -> Recording:
        return rec.replace(data=np.abs(rec.data))

    def stream(self, sfreq, ch_names):
        return _Func(np.abs), sfreq, ch_names


@dataclass
class Envelope(Step):
    """Linear envelope: rectification then a Butterworth low-pass at ``cutoff`` Hz (EMG)."""

    name: ClassVar[str] = "envelope"
    cutoff: float = 5.0
    order: int = 2
    causal: bool = True

    def apply(self, rec: Recording) -> Recording:
        sos = design_bandpass(rec.sfreq, None, self.cutoff, self.order)
        return rec.replace(data=apply_sos(np.abs(rec.data), sos, self.causal))

    def stream(self, sfreq, ch_names):
        filt = CausalFilter(design_bandpass(sfreq, None, self.cutoff, self.order), len(ch_names))
        return _Func(lambda x: filt.process(np.abs(x))), sfreq, ch_names


@dataclass
class RRChannel(Step):
    """Append an ``RR`` channel (seconds) to an ECG: at each sample the last complete R-R interval,
    from R peaks detected (XQRS) on channel ``lead`` over the whole recording
    (:func:`biodecode.ecg.rr_tachogram`), so a network reads the rhythm beside the waveform. Offline
    only: the detector reads the whole recording."""

    name: ClassVar[str] = "rr-channel"
    engines: ClassVar[tuple[str, ...]] = ("wfdb",)  # XQRS finds the peaks
    lead: int | str = 0

    def apply(self, rec: Recording) -> Recording:
        from ..ecg import rr_tachogram

        if isinstance(self.lead, str) and self.lead not in rec.ch_names:
            raise ConfigError(f"rr-channel: {rec.source or 'recording'} has no channel {self.lead!r} ({rec.ch_names})")
        idx = rec.ch_names.index(self.lead) if isinstance(self.lead, str) else int(self.lead)
        if not 0 <= idx < rec.n_channels:
            raise ConfigError(f"rr-channel: lead {self.lead} is outside the {rec.n_channels} channels of "
                              f"{rec.source or 'recording'}")
        if "RR" in rec.ch_names:
            raise ConfigError(f"rr-channel: {rec.source or 'recording'} already has a channel named 'RR'")
        rr = rr_tachogram(rec.data[idx], rec.sfreq)
        return rec.replace(data=np.vstack([rec.data, rr[None]]).astype(np.float32), ch_names=[*rec.ch_names, "RR"],
                           ch_types=[*rec.ch_types, "misc"], units=[*rec.units, "s"])

    def stream(self, sfreq, ch_names):
        raise ConfigError("preprocessing step 'rr-channel' has no streaming form: it detects the R peaks over the "
                          "whole recording; a model trained with it decodes recordings (biodecode evaluate), not "
                          "streams; train without it to stream")


class StreamPipeline:
    """The online form of a pipeline: chunks in, processed chunks out, state kept between calls."""

    def __init__(self, steps: Sequence[StreamStep], sfreq: float, ch_names: list[str]):
        self.steps, self.sfreq, self.ch_names = list(steps), sfreq, ch_names

    def process(self, chunk: np.ndarray) -> np.ndarray:
        x = np.asarray(chunk, dtype=np.float32)
        for s in self.steps:
            x = s.process(x)
        return x


class Pipeline:
    """An ordered list of steps. ``Pipeline.from_config([{"name": "bandpass", "l_freq": 4, ...}])``."""

    def __init__(self, steps: Sequence[Step] = ()):
        self.steps = list(steps)

    @staticmethod
    def available_steps() -> list[str]:
        return sorted(_STEPS)

    def engine_versions(self) -> dict[str, str]:
        """``{library: version}`` of every library the steps' output depends on (``Step.engines``)."""
        from importlib.metadata import version

        return {lib: version(lib) for step in self.steps for lib in step.engines}

    @classmethod
    def from_config(cls, config: Sequence[dict[str, Any]] | None) -> "Pipeline":
        steps = []
        for i, item in enumerate(config or []):
            if not isinstance(item, dict) or "name" not in item:
                raise ConfigError(f"preprocessing[{i}]: each step must be a mapping with a 'name', got {item!r}")
            kwargs = {k: v for k, v in item.items() if k != "name"}
            if item["name"] not in _STEPS:
                raise ConfigError(f"preprocessing[{i}]: unknown step {item['name']!r}; known: {sorted(_STEPS)}")
            try:
                steps.append(_STEPS[item["name"]](**kwargs))
            except TypeError as exc:
                raise ConfigError(f"preprocessing[{i}] ({item['name']}): {exc}") from None
        return cls(steps)

    def to_config(self) -> list[dict[str, Any]]:
        return [s.config() for s in self.steps]

    def apply(self, rec: Recording) -> Recording:
        for s in self.steps:
            rec = s.apply(rec)
        return rec

    def stream(self, sfreq: float, ch_names: Sequence[str]) -> StreamPipeline:
        """Build the causal online form for a stream at ``sfreq`` with ``ch_names``."""
        procs, ch = [], list(ch_names)
        for s in self.steps:
            proc, sfreq, ch = s.stream(sfreq, ch)
            procs.append(proc)
        return StreamPipeline(procs, sfreq, ch)

    def __repr__(self) -> str:
        return f"Pipeline({self.to_config()})"
