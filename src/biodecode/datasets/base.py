"""The dataset interface: where files live, how to fetch and verify them, how events map to labels."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, DownloadError
from ..recording import Recording
from .download import data_root, download_file, fetch_text, parse_checksums

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """A classification task of a dataset.

    classes: class names in label order (label i is ``classes[i]``).
    event_maps: for each group of runs (or ``None`` = all), which event label means which class.
    kind: ``"events"`` (windows around events) or ``"sliding"`` (windows over labelled stretches).
    score_per_record / challenge_score: see below.
    """

    name: str
    description: str
    classes: tuple[str, ...]
    runs: tuple[int, ...] = ()
    event_maps: tuple[tuple[tuple[int, ...] | None, dict[str, str]], ...] = ()
    kind: str = "events"
    defaults: dict[str, Any] = field(default_factory=dict)
    #: Where the labels belong to a whole recording: reports also score one decision per ``record``
    #: (the mean of its windows' probabilities), with ``challenge_score`` (a name in
    #: ``biodecode.evaluation.metrics.CHALLENGE_SCORES``) when the field has one.
    score_per_record: bool = False
    challenge_score: str | None = None

    def event_map(self, run: int | None) -> dict[str, str]:
        for runs, mapping in self.event_maps:
            if runs is None or (run is not None and run in runs):
                return mapping
        return {}


class Dataset(ABC):
    """A public dataset with a download-and-cache path.

    ``path`` is the data root (default ``$BIODECODE_DATA_DIR`` or the user cache); files live in
    ``<root>/<folder>/`` in the source's own layout. With ``download=False`` a missing file is an
    error instead of a download. Files already present are never re-fetched.
    """

    name: str = ""
    folder: str = ""
    base_url: str = ""
    version: str = "1"
    signal: str = "eeg"
    description: str = ""
    citation: str = ""
    license: str = ""
    tasks: dict[str, Task] = {}
    #: Preprocessing used when a run's config names none.
    default_preprocessing: list[dict[str, Any]] = []
    #: Fixed splits by protocol name, e.g. ``{"inter-patient": (train_records, test_records)}``.
    splits: dict[str, tuple[list[str], list[str]]] = {}
    #: Settings chosen for this dataset by nested validation (``benchmarks/tune_defaults.py``, measured
    #: in docs/accuracy.md), by task name (``"*"``: every task): a partial run config (``data``,
    #: ``model``, ``train`` sections) that fills the options a run's config leaves unset
    #: (:func:`biodecode.config.apply_recommended`; ``defaults: plain`` turns it off).
    recommended: dict[str, dict[str, Any]] = {}
    #: Settings chosen for one model on top of ``recommended`` (e.g. a longer window that helps a
    #: network and not the covariance baselines), by task name (``"*"``: every task), then model
    #: name: partial ``data`` / ``train`` sections.
    recommended_for_model: dict[str, dict[str, dict[str, Any]]] = {}
    #: Constructor options that only choose which subjects or records the dataset offers, not what a
    #: recording holds; every other option must be in :meth:`cache_identity` (a test checks).
    selection_options: tuple[str, ...] = ()

    @classmethod
    def recommended_settings(cls, task: str | None, model: str | None = None) -> dict[str, Any]:
        """The recommended settings for ``task`` (those for every task, then the task's own on top)
        and for ``model`` (default: the recommended model; ``recommended_for_model`` on top), as a
        partial run config; empty where nothing was tuned."""
        import copy

        out: dict[str, Any] = {}
        for key in ("*", task):
            for section, values in copy.deepcopy(cls.recommended.get(key, {})).items():
                out.setdefault(section, {}).update(values)
        model = model or out.get("model", {}).get("name")
        for key in ("*", task):
            for section, values in copy.deepcopy(cls.recommended_for_model.get(key, {}).get(model, {})).items():
                out.setdefault(section, {}).update(values)
        return out

    def __init__(self, path: str | Path | None = None, *, download: bool = True, base_url: str | None = None):
        self.root = data_root(path) / self.folder
        self.download_enabled = download
        if base_url is not None:
            self.base_url = base_url.rstrip("/") + "/"
        self._checksums: dict[str, str] | None = None

    # --- files -------------------------------------------------------------------------------
    def checksums(self) -> dict[str, str]:
        """The source's published SHA-256 sums (``SHA256SUMS.txt``), fetched once into the cache."""
        if self._checksums is None:
            local = self.root / "SHA256SUMS.txt"
            if local.is_file():
                text = local.read_text()
            elif self.download_enabled and self.base_url:
                try:
                    text = fetch_text(self.base_url + "SHA256SUMS.txt", local)
                except DownloadError as exc:
                    log.warning("%s: no published checksums (%s); downloads are not verified", self.name, exc)
                    text = ""
            else:
                text = ""
            self._checksums = parse_checksums(text)
        return self._checksums

    def fetch(self, relpaths: Sequence[str]) -> list[Path]:
        """Make sure each file is present locally, downloading (and verifying) missing ones."""
        out = []
        for rel in relpaths:
            dest = self.root / rel
            if not dest.is_file():
                if not self.download_enabled:
                    raise FileNotFoundError(
                        f"{dest}: missing and downloads are off (dataset {self.name!r}, data root {self.root.parent})"
                    )
                download_file(self.base_url + rel, dest, self.checksums().get(rel))
            out.append(dest)
        return out

    def verify(self, relpaths: Sequence[str] | None = None) -> dict[str, bool]:
        """Re-hash local files against the published sums; ``{relpath: ok}``."""
        from .download import sha256_of

        sums = self.checksums()
        rels = relpaths if relpaths is not None else [r for r in sums if (self.root / r).is_file()]
        return {r: (self.root / r).is_file() and sha256_of(self.root / r) == sums.get(r) for r in rels}

    # --- content -----------------------------------------------------------------------------
    def task(self, name: str | None) -> Task | None:
        if name is None:
            return None
        if name not in self.tasks:
            raise ConfigError(f"dataset {self.name!r} has no task {name!r}; tasks: {sorted(self.tasks)}")
        return self.tasks[name]

    @abstractmethod
    def subjects(self) -> list[int | str]:
        """All subject (or record) ids of the dataset, excluding ones excluded by default."""

    @abstractmethod
    def files(self, subject: int | str, task: str | None = None) -> list[str]:
        """Relative paths of the files a subject needs for a task."""

    @abstractmethod
    def load(self, subjects: Sequence[int | str] | None = None, task: str | None = None) -> list[Recording]:
        """Recordings for the subjects and task, fetched first if missing."""

    def shared_files(self, task: str | None = None) -> list[str]:
        """Relative paths of files every unit depends on (e.g. a label table); part of each unit's key."""
        return []

    def units(self, subjects: Sequence[int | str], task: str | None = None) -> list[tuple[str, list[str]]]:
        """The request cut into units that are loaded, windowed and stored on their own:
        ``[(unit id, relative paths of the files it is read from)]``. One unit per subject by
        default (for record-based datasets a subject is a record)."""
        shared = self.shared_files(task)
        return [(str(s), [*self.files(s, task), *shared]) for s in subjects]

    def load_unit(self, unit: str, task: str | None = None) -> list[Recording]:
        """The recordings of one unit from :meth:`units`."""
        return self.load([unit], task)

    def download(self, subjects: Sequence[int | str] | None = None, task: str | None = None) -> list[Path]:
        subs = list(subjects) if subjects is not None else self.subjects()
        return self.fetch([f for s in subs for f in self.files(s, task)])

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "signal": self.signal,
            "description": self.description,
            "source": self.base_url,
            "license": self.license,
            "citation": self.citation,
            "n_subjects": len(self.subjects()),
            "tasks": {k: {"classes": list(t.classes), "description": t.description} for k, t in self.tasks.items()},
            # what a run leaves out comes from here (docs/protocols.md), by task ("*": every task)
            "recommended_settings": dict(self.recommended),
            "recommended_for_model": dict(self.recommended_for_model),  # by task, then model, on top
            "local_folder": str(self.root),
        }

    def direct_windows(self, subjects: Sequence[int | str], spec: Any) -> Any:
        """Windows a dataset cuts itself (e.g. MOABB's epochs), or None for the usual read, preprocess,
        window and store path."""
        return None

    def cache_identity(self) -> dict[str, Any]:
        """What identifies this dataset's content in a cache key: its name, version and every
        constructor option that changes what a recording's windows hold (a subclass with such
        options adds them)."""
        return {"dataset": self.name, "version": self.version}
