"""MOABB, both ways.

1. Any MOABB dataset as a biodecode dataset: ``--dataset moabb:BNCI2014_001 --task LeftRightImagery``.
   MOABB itself downloads and caches the data and cuts the epochs (its paradigm: events, interval,
   band-pass, resampling); biodecode takes the epochs with MOABB's subject / session / run metadata,
   so every protocol (within-subject, LOSO, cross-session, fixed splits) and model runs on them. The
   task is a MOABB paradigm class name; ``data.dataset_kwargs``: ``moabb_kwargs`` for the dataset's
   constructor (e.g. ``FakeDataset``'s), ``paradigm_kwargs`` for the paradigm's (e.g. ``fmin``,
   ``fmax``, ``resample``). ``data.tmin``/``data.tmax`` go to the paradigm (seconds from the dataset's
   interval start; by default the whole interval, as MOABB cuts it). Preprocessing is MOABB's; biodecode's own steps are limited to ``scale`` (default x1e6:
   volts to microvolts, as for the other EEG datasets).
2. biodecode models inside MOABB's evaluations: :func:`moabb_pipeline` is a scikit-learn pipeline
   (:class:`~biodecode.classifier.BiosignalClassifier`, after an optional scale) for
   ``WithinSessionEvaluation``, ``CrossSessionEvaluation`` and ``CrossSubjectEvaluation``; the classical
   baselines go in the same way. MOABB hands its evaluations microvolts already, as biodecode's EEG
   models expect, so the default scale is 1.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..errors import ConfigError
from ..recording import Recording
from .base import Dataset, Task

#: MOABB paradigms offered as tasks (each only where ``paradigm.is_valid(dataset)``).
PARADIGMS = ("LeftRightImagery", "MotorImagery", "P300", "SSVEP")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MOABB and MNE talk a lot (montage and metadata notes, deprecations in their own code)."""
    import logging

    loggers = [logging.getLogger(n) for n in ("moabb", "mne")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class MOABBDataset(Dataset):
    """A MOABB dataset by class name (``moabb:<Name>``); see the module docstring."""

    signal = "eeg"
    default_preprocessing = [{"name": "scale", "factor": 1e6}]
    license = "as the MOABB dataset's"

    def __init__(self, moabb_name: str, path: str | Path | None = None, *, download: bool = True,
                 base_url: str | None = None, moabb_kwargs: dict[str, Any] | None = None,
                 paradigm_kwargs: dict[str, Any] | None = None):
        super().__init__(path, download=download)
        try:
            import moabb.datasets as mds
        except ImportError:
            raise ConfigError("moabb datasets need MOABB (pip install moabb)") from None
        cls = getattr(mds, moabb_name, None)
        if cls is None or not isinstance(cls, type):
            known = sorted(n for n in dir(mds) if n[:1].isupper() and isinstance(getattr(mds, n), type))
            raise ConfigError(f"moabb: no dataset {moabb_name!r}; e.g. {', '.join(known[:12])} ... (moabb.datasets)")
        self.name = f"moabb:{moabb_name}"
        self.description = f"MOABB dataset {moabb_name}"
        self.moabb_kwargs = dict(moabb_kwargs or {})
        with _quiet():
            self.moabb = cls(**self.moabb_kwargs)
            self.paradigm_kwargs = dict(paradigm_kwargs or {})
            self.tasks = {}
            for p in PARADIGMS:
                paradigm = self._paradigm(p)
                if paradigm.is_valid(self.moabb):
                    classes = sorted(paradigm.used_events(self.moabb))
                    start, stop = self.moabb.interval[:2]
                    self.tasks[p] = Task(p, f"MOABB paradigm {p} on {moabb_name}", tuple(classes),
                                         defaults={"tmin": 0.0, "tmax": float(stop - start)})
        if not self.tasks:
            raise ConfigError(f"{self.name}: none of the paradigms {PARADIGMS} is valid for this dataset")
        self.citation = str(getattr(self.moabb, "doi", "") or "")

    def _paradigm(self, name: str, **extra: Any) -> Any:
        import moabb.paradigms as mps

        try:
            return getattr(mps, name)(**{**self.paradigm_kwargs, **extra})
        except TypeError as exc:
            raise ConfigError(f"{self.name}: paradigm {name}: {exc}") from None

    def subjects(self) -> list[int]:
        return list(self.moabb.subject_list)

    def files(self, subject: int | str, task: str | None = None) -> list[str]:
        return []  # MOABB keeps its own files and cache

    def load(self, subjects: Sequence[int | str] | None = None, task: str | None = None) -> list[Recording]:
        raise ConfigError(f"{self.name}: MOABB datasets give epochs, not continuous recordings; use load_windows")

    def cache_identity(self) -> dict[str, Any]:
        return {"dataset": self.name, "moabb_kwargs": self.moabb_kwargs, "paradigm_kwargs": self.paradigm_kwargs}

    def direct_windows(self, subjects: Sequence[int | str], spec: Any) -> Any:
        """The WindowSet of ``subjects`` for ``spec`` (its task = a paradigm) through MOABB."""
        from ..io.mne_objects import windows_from_epochs

        t = self.task(spec.task or next(iter(self.tasks)))
        steps = spec.preprocessing or []
        if any(s.get("name") != "scale" for s in steps):
            raise ConfigError(f"{self.name}: MOABB's paradigm filters and resamples (data.dataset_kwargs.paradigm_kwargs: "
                              f"fmin, fmax, resample); biodecode preprocessing here can only scale, got {steps}")
        if spec.window_s is not None:
            raise ConfigError(f"{self.name}: MOABB cuts epochs around events; sliding windows (window_s) do not apply")
        extra = {k: v for k, v in (("tmin", spec.tmin), ("tmax", spec.tmax)) if v is not None}
        unknown = [s for s in subjects if int(s) not in self.moabb.subject_list]
        if unknown:
            raise ConfigError(f"{self.name}: no subject(s) {unknown}; subjects: {self.moabb.subject_list}")
        paradigm = self._paradigm(t.name, **extra)
        with _quiet():
            epochs, labels, _ = paradigm.get_data(self.moabb, subjects=[int(s) for s in subjects], return_epochs=True)
        classes = list(t.classes)
        unknown_labels = sorted(set(labels) - set(classes))
        if unknown_labels:
            raise ConfigError(f"{self.name}: MOABB labels {unknown_labels} are not among the task's classes {classes}")
        # MOABB's event names are codes; its labels and subject/session/run metadata come with the epochs
        ws = windows_from_epochs(epochs, classes=classes, labels=list(labels))
        for step in steps:
            ws.X *= np.float32(step.get("factor", 1.0))
        ws.info = {"moabb_paradigm": t.name, "moabb_paradigm_kwargs": {**self.paradigm_kwargs, **extra},
                   "synthetic": type(self.moabb).__name__ == "FakeDataset"}
        return ws


class Scale(BaseEstimator, TransformerMixin):
    """Multiply windows by ``factor`` (for arrays in volts; biodecode's EEG models see microvolts)."""

    def __init__(self, factor: float = 1e6):
        self.factor = factor

    def fit(self, X: Any, y: Any = None) -> "Scale":
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=np.float32) * np.float32(self.factor)


def moabb_pipeline(model: str = "eegnet", sfreq: float | None = None, factor: float = 1.0, **classifier_kwargs: Any):
    """A scikit-learn pipeline for MOABB's evaluations: ``Scale(factor)`` then ``BiosignalClassifier(model,
    sfreq=..., **classifier_kwargs)`` (networks and the classical baselines alike). ``sfreq``: the
    paradigm's sampling rate (kernel lengths of some networks depend on it)."""
    from sklearn.pipeline import make_pipeline

    from ..classifier import BiosignalClassifier

    return make_pipeline(Scale(factor), BiosignalClassifier(model=model, sfreq=sfreq, **classifier_kwargs))
