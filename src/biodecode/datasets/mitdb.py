"""MIT-BIH Arrhythmia Database (mitdb v1.0.0).

48 half-hour two-lead ambulatory ECG records, 360 Hz, WFDB format 212, with beat and rhythm
annotations (``.atr``). 47 subjects: records 201 and 202 are the same person.
Moody & Mark, IEEE EMB Mag 20(3) 2001; Goldberger et al., Circulation 101(23) 2000.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ecg import AAMI_CLASSES, RHYTHM_CLASSES, RHYTHM_MAP, aami_event_map, rhythm_segments, rr_intervals, rr_relative
from ..errors import ConfigError, DataFormatError
from ..io.wfdb_io import read_wfdb
from ..recording import Recording
from .base import Dataset, Task

RECORDS = (
    "100 101 102 103 104 105 106 107 108 109 111 112 113 114 115 116 117 118 119 121 122 123 124 "
    "200 201 202 203 205 207 208 209 210 212 213 214 215 217 219 220 221 222 223 228 230 231 232 233 234"
).split()
#: Paced records, excluded by the AAMI / de Chazal protocols.
PACED = ("102", "104", "107", "217")
#: de Chazal et al. (IEEE TBME 2004) inter-patient split.
DS1 = tuple("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split())
DS2 = tuple("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split())
#: Records from the same person share a subject id (for grouped splits).
SUBJECT_OF = {"202": "201"}


_TASKS = {
    "aami-beats": Task(
        "aami-beats", "heartbeats around each annotated R peak (0.25 s before, 0.45 s after), lead MLII, "
        "AAMI classes N/S/V/F/Q (ANSI/AAMI EC57)", AAMI_CLASSES, kind="events",
        defaults={"tmin": -0.25, "tmax": 0.45, "channels": ["MLII"]},
    ),
    "rhythm": Task(
        "rhythm", "10 s windows (5 s stride) inside one rhythm episode, lead MLII: normal sinus, AFIB/AFL, other",
        RHYTHM_CLASSES, kind="sliding", defaults={"window_s": 10.0, "stride_s": 5.0, "channels": ["MLII"]},
    ),
}


class MITBIH(Dataset):
    name = "mitdb"
    folder = "mitdb"
    base_url = "https://physionet.org/files/mitdb/1.0.0/"
    version = "1.0.0"
    signal = "ecg"
    description = "MIT-BIH Arrhythmia: 48 records, 2-lead ECG, 360 Hz, beat and rhythm annotations"
    citation = "Moody & Mark, IEEE Eng Med Biol 20(3):45-50, 2001; Goldberger et al., Circulation 2000"
    license = "ODC-By 1.0"
    default_preprocessing = [{"name": "bandpass", "l_freq": 0.5, "h_freq": 40.0, "causal": True}]
    tasks = _TASKS
    splits = {"inter-patient": (list(DS1), list(DS2))}
    selection_options = ("include_paced",)
    # chosen by nested validation on DS1 records held out of the training side (docs/accuracy.md): RR
    # intervals, absolute and relative to the record's mean, as constant channels; each beat minus its
    # record's median beat beside the raw lead; balanced class weights; 8 epochs on every training record
    recommended = {"aami-beats": {
        "data": {"metadata_channels": ["rr_pre_s", "rr_post_s", "rr_local_s", "rr_pre_rel", "rr_post_rel",
                                       "rr_local_rel"],
                 "alignment": "median-append", "alignment_by": ["subject"]},
        "model": {"name": "resnet1d", "kwargs": {"widths": [32, 32, 64, 64]}},
        "train": {"max_epochs": 8, "batch_size": 256, "val_fraction": 0.0, "class_weights": "balanced"},
    }}
    # the ResNet's S logit +2 once trained (a prior shift chosen by the same nested validation)
    recommended_for_model = {"aami-beats": {"resnet1d": {"train": {"logit_offsets": {"S": 2.0}}}}}

    def __init__(self, path=None, *, download: bool = True, base_url: str | None = None, include_paced: bool = False,
                 unknown_beats: str = "error", second_lead: bool = False):
        super().__init__(path, download=download, base_url=base_url)
        if unknown_beats not in {"error", "Q"}:
            raise ConfigError(f"mitdb: unknown_beats must be 'error' or 'Q', got {unknown_beats!r}")
        if not isinstance(second_lead, bool):
            raise ConfigError(f"mitdb: second_lead must be true or false, got {second_lead!r}")
        self.include_paced, self.unknown_beats, self.second_lead = include_paced, unknown_beats, second_lead

    def cache_identity(self) -> dict:
        """The options that change what a record's windows hold (labels of unknown beat symbols, the
        second lead) are part of the store's key; ``include_paced`` changes only which records."""
        return {**super().cache_identity(), "unknown_beats": self.unknown_beats, "second_lead": self.second_lead}

    def subjects(self) -> list[str]:
        """Record ids (paced records 102, 104, 107, 217 excluded unless ``include_paced``)."""
        return [r for r in RECORDS if self.include_paced or r not in PACED]

    def available(self) -> list[str]:
        """Records whose three files are present locally."""
        return [r for r in RECORDS if all((self.root / f).is_file() for f in self.files(r))]

    def _check_record(self, record: int | str) -> str:
        rec = str(record)
        if rec not in RECORDS:
            raise ConfigError(f"{self.name}: no record {rec!r}; records are {RECORDS[0]}..{RECORDS[-1]} ({len(RECORDS)})")
        return rec

    def files(self, subject: int | str, task: str | None = None) -> list[str]:
        rec = self._check_record(subject)
        return [f"{rec}.hea", f"{rec}.dat", f"{rec}.atr"]

    def load(self, subjects: Sequence[int | str] | None = None, task: str | None = None) -> list[Recording]:
        out = []
        for record in subjects if subjects is not None else self.subjects():
            rec_id = self._check_record(record)
            self.fetch(self.files(rec_id, task))
            rec = read_wfdb(self.root / rec_id, annotator="atr")
            rec = rec.replace(subject=SUBJECT_OF.get(rec_id, rec_id), session="1", run="1", record=rec_id,
                              meta=dict(rec.meta, dataset=self.name))
            t = self.task(task)
            if t is not None:
                rec = self._for_task(rec, t)
            out.append(rec)
        return out

    def _with_second_lead(self, rec: Recording, channels: list[str]) -> Recording:
        """``rec`` with ``channels`` and, after them, its one other lead (V1 in most records; V2, V4
        or V5 in a few) named ``lead2``, so that every record's windows share channel names; the
        lead's own name is kept in ``meta["lead2"]``. de Chazal et al. 2004 read both leads."""
        others = [c for c in rec.ch_names if c not in channels]
        if len(others) != 1:
            raise DataFormatError(f"{rec.source}: record {rec.record} has leads {rec.ch_names}; second_lead needs "
                                  f"exactly one lead beside {channels}")
        rec = rec.pick(list(channels) + others)
        return rec.replace(ch_names=list(channels) + ["lead2"], meta=dict(rec.meta, lead2=others[0]))

    def _for_task(self, rec: Recording, task: Task) -> Recording:
        channels = task.defaults.get("channels")
        if channels:
            missing = [c for c in channels if c not in rec.ch_names]
            if missing:
                raise DataFormatError(f"{rec.source}: record {rec.record} has no lead {missing} (leads {rec.ch_names}); "
                                      f"task {task.name!r} needs it")
            rec = self._with_second_lead(rec, channels) if self.second_lead else rec.pick(channels)
        if task.name == "aami-beats":
            mapping = aami_event_map(rec.events, rec.record, self.unknown_beats)
            beats = np.isin(rec.events.label.astype(str), list(mapping))
            pre, post, local = (np.full(len(rec.events), np.nan) for _ in range(3))
            pre[beats], post[beats], local[beats] = rr_intervals(rec.events.onset[beats])
            return rec.replace(meta=dict(rec.meta, event_map=mapping,
                                         event_columns={"rr_pre_s": pre, "rr_post_s": post, "rr_local_s": local,
                                                        **rr_relative(pre, post, local)}))
        segments = rhythm_segments(rec.events, rec.duration, RHYTHM_MAP)
        return rec.replace(events=segments, meta=dict(rec.meta, event_map={c: c for c in RHYTHM_CLASSES}))
