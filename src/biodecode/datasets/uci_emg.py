"""UCI "EMG data for gestures" (Lobov et al. 2018).

36 subjects, Myo armband (8 channels), two recording sessions per subject as text files with a
header ``time channel1 ... channel8 class``: time in milliseconds, EMG values, and the gesture
held at each sample (0 unmarked, 1 hand at rest, 2 fist, 3 wrist flexion, 4 wrist extension,
5 radial deviation, 6 ulnar deviation, 7 extended palm - not performed by every subject).
S. Lobov, N. Krilova, I. Kastalskiy, V. Kazantsev, V. Makarov, "Latent factors limiting the
performance of sEMG-interfaces", Sensors 18(4):1122 (2018). UCI ML Repository, dataset 481.

The archive comes as one zip (no published checksum); it is downloaded, unpacked into a temporary
folder and moved into place. The sampling rate is read from the time column of each file.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, DataFormatError
from ..recording import Events, Recording, check_finite
from .base import Dataset, Task
from .download import download_file

GESTURES = {1: "rest", 2: "fist", 3: "wrist_flexion", 4: "wrist_extension", 5: "radial_deviation",
            6: "ulnar_deviation", 7: "extended_palm"}


def read_uci_emg_file(path: str | Path) -> Recording:
    """One session file -> Recording (8 EMG channels; events = stretches of constant class > 0)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, sep=r"\s+")
    except Exception as exc:
        raise DataFormatError(f"{path}: could not be parsed as a UCI EMG gestures file: {exc}") from exc
    need = ["time"] + [f"channel{i}" for i in range(1, 9)] + ["class"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{path}: missing column(s) {missing}; expected {need}")
    t = frame["time"].to_numpy(dtype=np.float64) / 1000.0
    dt = np.diff(t)
    if len(t) < 2 or np.any(dt <= 0):
        raise DataFormatError(f"{path}: time column must increase strictly (ms)")
    sfreq = float(round(1.0 / np.median(dt)))
    data = frame[need[1:9]].to_numpy(dtype=np.float32).T
    check_finite(data, need[1:9], path)
    cls = frame["class"].to_numpy()
    unknown = sorted(set(np.unique(cls).tolist()) - set(GESTURES) - {0})
    if unknown:
        raise DataFormatError(f"{path}: class values {unknown} are not gestures 0..7")
    change = np.flatnonzero(np.diff(cls)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(cls)]])
    keep = cls[starts] > 0
    events = Events.from_lists(starts[keep] / sfreq, (ends[keep] - starts[keep]) / sfreq,
                               [GESTURES[int(c)] for c in cls[starts][keep]])
    return Recording(data, sfreq, [f"emg{i}" for i in range(1, 9)], ["emg"] * 8, ["a.u."] * 8, events=events,
                     source=str(path), meta={"format": "UCI-EMG", "event_map": {g: g for g in GESTURES.values()}})


class UCIEMGGestures(Dataset):
    name = "uci-emg-gestures"
    folder = "uci-emg-gestures"
    base_url = "https://archive.ics.uci.edu/static/public/481/"
    archive = "emg+data+for+gestures.zip"
    version = "2018"
    signal = "emg"
    description = "UCI EMG data for gestures (Lobov et al. 2018): 36 subjects, Myo 8 ch, 7 gestures"
    citation = "Lobov et al., Sensors 18(4):1122, 2018"
    license = "CC BY 4.0"
    default_preprocessing = [{"name": "notch", "freq": 50.0, "causal": True}]
    tasks = {
        "gestures-6": Task("gestures-6", "rest, fist, wrist flexion/extension, radial/ulnar deviation; 200 ms windows "
                           "every 50 ms inside each held gesture", tuple(list(GESTURES.values())[:6]), kind="sliding",
                           defaults={"window_s": 0.2, "stride_s": 0.05}),
    }

    def subjects(self) -> list[int]:
        return list(range(1, 37))

    def _subject_dir(self, subject: int) -> Path:
        return self.root / "EMG_data_for_gestures-master" / f"{subject:02d}"

    def _ensure(self) -> None:
        if (self.root / "EMG_data_for_gestures-master").is_dir():
            return
        if not self.download_enabled:
            raise FileNotFoundError(f"{self.root}: EMG_data_for_gestures-master missing and downloads are off")
        zpath = download_file(self.base_url + self.archive, self.root / self.archive)
        tmp = Path(tempfile.mkdtemp(prefix=".unpack.", dir=self.root))
        try:
            with zipfile.ZipFile(zpath) as z:
                z.extractall(tmp)
            found = next(tmp.rglob("EMG_data_for_gestures-master"), None)
            if found is None:
                raise DataFormatError(f"{zpath}: archive has no EMG_data_for_gestures-master folder")
            found.rename(self.root / "EMG_data_for_gestures-master")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def units(self, subjects, task=None) -> list[tuple[str, list[str]]]:
        self._ensure()  # the per-subject files are known once the archive is unpacked
        return super().units(subjects, task)

    def files(self, subject, task=None) -> list[str]:
        s = int(subject)
        d = self._subject_dir(s)
        return sorted(str(p.relative_to(self.root)) for p in d.glob("*.txt")) if d.is_dir() else []

    def load(self, subjects: Sequence[int] | None = None, task: str | None = None) -> list[Recording]:
        t = self.task(task)
        self._ensure()
        out = []
        for s in subjects if subjects is not None else self.subjects():
            if int(s) not in self.subjects():
                raise ConfigError(f"{self.name}: subject {s} out of range 1..36")
            files = self.files(s)
            if not files:
                raise FileNotFoundError(f"{self._subject_dir(int(s))}: no session files for subject {s}")
            for k, rel in enumerate(files, start=1):
                rec = read_uci_emg_file(self.root / rel)
                classes = set(t.classes) if t else set(GESTURES.values())
                out.append(rec.replace(subject=str(int(s)), session=str(k), run="1", record=Path(rel).stem,
                                       meta=dict(rec.meta, dataset=self.name,
                                                 event_map={g: g for g in GESTURES.values() if g in classes})))
        return out
