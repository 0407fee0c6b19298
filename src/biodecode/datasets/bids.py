"""Any EEG-BIDS folder as a dataset, read through mne-bids: its subjects, sessions and runs become
biodecode's groups (so every protocol works: within-subject, LOSO, cross-session, fixed splits), the
``trial_type`` column of each ``*_events.tsv`` the class labels.

>>> ds = get_dataset("bids", root="/data/my_bids", bids_task="motorimagery", classes=["left", "right"])

``root``: the BIDS root (with ``dataset_description.json``); ``bids_task``: the BIDS ``task`` entity
(also the biodecode task name; the only one when the folder has one); ``classes``: the trial types
to decode, in label order (default: every trial type in the task's events files); ``tmin``/``tmax``:
the window around each event onset in seconds (default 0 and the events' median duration); ``datatype``:
``eeg`` (default), or ``meg``/``ieeg`` folders with EEG-type channels. Nothing is downloaded.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, DataFormatError
from ..recording import Events, Recording
from .base import Dataset, Task


class BIDSDataset(Dataset):
    name = "bids"
    signal = "eeg"
    description = "an EEG-BIDS folder (dataset_kwargs: root, bids_task, classes), read with mne-bids"
    citation = "Pernet et al., EEG-BIDS, Sci. Data 6:103 (2019); Appelhoff et al., MNE-BIDS, JOSS 4:1896 (2019)"
    license = "as the dataset's own"
    default_preprocessing = [{"name": "bandpass", "l_freq": 4.0, "h_freq": 38.0, "causal": True},
                             {"name": "scale", "factor": 1e6}]

    def __init__(self, path: str | Path | None = None, *, root: str | Path | None = None, bids_task: str | None = None,
                 classes: Sequence[str] | None = None, tmin: float = 0.0, tmax: float | None = None,
                 datatype: str = "eeg", download: bool = False, base_url: str | None = None):
        super().__init__(path, download=False)
        if root is None:
            raise ConfigError("bids: give the BIDS root folder (dataset_kwargs root=..., CLI: --set "
                              "data.dataset_kwargs.root=/path/to/bids)")
        self.root = Path(root).expanduser()
        if not (self.root / "dataset_description.json").is_file():
            raise ConfigError(f"{self.root}: not a BIDS root (no dataset_description.json)")
        import mne_bids

        self.datatype = datatype
        found = sorted(mne_bids.get_entity_vals(self.root, "task"))
        if not found:
            raise ConfigError(f"{self.root}: no task entity in any file name")
        if bids_task is None:
            if len(found) > 1:
                raise ConfigError(f"{self.root}: several BIDS tasks {found}; choose one (dataset_kwargs bids_task=...)")
            bids_task = found[0]
        if bids_task not in found:
            raise ConfigError(f"{self.root}: no BIDS task {bids_task!r}; tasks: {found}")
        self.bids_task = bids_task
        events = self._events()  # every events.tsv row of the task, read once
        types = self.trial_types = sorted({r["trial_type"] for r in events if r["trial_type"] not in ("", "n/a")})
        classes = [str(c) for c in classes] if classes is not None else types
        unknown = [c for c in classes if c not in types]
        if unknown:
            raise ConfigError(f"{self.root}: trial types {unknown} are in no {bids_task} events.tsv; present: {types}")
        if len(classes) < 2:
            raise ConfigError(f"{self.root}: need at least two classes (trial types), got {classes}")
        if tmax is None:
            tmax = tmin + self._median_duration(events)
        if not tmax > tmin:
            raise ConfigError(f"bids: tmax ({tmax}) must be after tmin ({tmin})")
        self.classes = classes
        self.tasks = {bids_task: Task(bids_task, f"BIDS task {bids_task}: windows {tmin:g}-{tmax:g} s after the "
                                      f"onsets of {', '.join(classes)}", tuple(classes),
                                      event_maps=((None, {c: c for c in classes}),),
                                      defaults={"tmin": float(tmin), "tmax": float(tmax)})}

    # --- what is there ------------------------------------------------------------------------
    def _events(self) -> list[dict[str, str]]:
        """The rows of every ``*_events.tsv`` of the task (each must have a ``trial_type`` column)."""
        rows = []
        for path in sorted(self.root.glob(f"sub-*/**/{self.datatype}/*_task-{self.bids_task}_*events.tsv")):
            with open(path, newline="") as f:
                file_rows = list(csv.DictReader(f, delimiter="\t"))
            if file_rows and "trial_type" not in file_rows[0]:
                raise DataFormatError(f"{path}: no trial_type column (columns: {list(file_rows[0])})")
            rows += file_rows
        return rows

    def _median_duration(self, events: list[dict[str, str]]) -> float:
        durations = [float(r["duration"]) for r in events
                     if r.get("duration", "n/a") not in ("", "n/a") and r["trial_type"] in self.trial_types]
        durations = [d for d in durations if d > 0]
        if not durations:
            raise ConfigError(f"{self.root}: the events have no durations; give the window (dataset_kwargs tmax=...)")
        return float(np.median(durations))

    def subjects(self) -> list[str]:
        import mne_bids

        return sorted(mne_bids.get_entity_vals(self.root, "subject"))

    def label(self, subject: int | str) -> str:
        """The BIDS label of ``subject``: itself, or the one label equal to it as a number (1 -> "01")."""
        if (self.root / f"sub-{subject}").is_dir():
            return str(subject)
        if str(subject).isdigit():
            same = [s for s in self.subjects() if s.isdigit() and int(s) == int(subject)]
            if len(same) == 1:
                return same[0]
        raise ConfigError(f"{self.root}: no subject {subject!r}; subjects: {self.subjects()}")

    def _paths(self, subject: str) -> list[Any]:
        import mne_bids

        bp = mne_bids.BIDSPath(root=self.root, subject=str(subject), task=self.bids_task, datatype=self.datatype,
                               suffix=self.datatype)
        paths = [p for p in bp.match() if p.extension not in (".json", ".tsv")]
        if not paths:
            raise ConfigError(f"{self.root}: subject {subject!r} has no {self.datatype} recording of task {self.bids_task!r}")
        return paths

    def files(self, subject: int | str, task: str | None = None) -> list[str]:
        """Every file of the subject's folder for this task (data, sidecars, events): each one's bytes
        are part of the subject's window-store key."""
        sub = self.root / f"sub-{self.label(subject)}"
        return sorted(str(p.relative_to(self.root)) for p in sub.rglob(f"*_task-{self.bids_task}_*") if p.is_file())

    def shared_files(self, task: str | None = None) -> list[str]:
        return [p for p in ("dataset_description.json", "participants.tsv") if (self.root / p).is_file()]

    def fetch(self, relpaths: Sequence[str]) -> list[Path]:
        missing = [r for r in relpaths if not (self.root / r).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.root}: missing {missing[:5]} (a BIDS folder is read in place, never downloaded)")
        return [self.root / r for r in relpaths]

    def load(self, subjects: Sequence[int | str] | None = None, task: str | None = None) -> list[Recording]:
        import mne_bids

        from ..io.mne_objects import recording_from_raw

        t = self.task(task or self.bids_task)
        out = []
        for subject in subjects if subjects is not None else self.subjects():
            subject = self.label(subject)
            for bp in self._paths(subject):
                raw = mne_bids.read_raw_bids(bp, verbose="error")
                raw.load_data(verbose="error")
                record = bp.basename.rsplit("_", 1)[0]
                rec = recording_from_raw(raw, subject=str(subject), session=bp.session or "1", run=str(bp.run or "1"),
                                         record=record)
                rec = rec.replace(events=self._trial_type_labels(rec.events))
                out.append(rec.replace(source=str(bp.fpath), meta=dict(rec.meta, dataset=self.name,
                                                                          event_map=t.event_map(None))))
        return out

    def _trial_type_labels(self, events: Events) -> Events:
        """mne-bids names an event ``type/value`` when one trial type comes with several values; the
        trial type is the label here, so ``right/3`` is ``right`` again (``stim/left`` style names
        whose prefix is not itself a trial type are left alone)."""
        types = set(self.trial_types)

        def trial_type(label: str) -> str:
            head, _, value = label.rpartition("/")
            return head if value.isdigit() and head in types else label

        labels = [trial_type(str(lab)) for lab in events.label]
        return Events.from_lists(events.onset, events.duration, labels, events.extra)

    def cache_identity(self) -> dict[str, Any]:
        return {"dataset": self.name, "bids_task": self.bids_task, "classes": self.classes, "datatype": self.datatype}
