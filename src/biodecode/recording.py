"""The continuous-recording type that every reader returns and every preprocessing step takes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import DataFormatError

#: Physical unit of each channel type. EEG and EMG are in volts, ECG in millivolts
#: (the unit WFDB headers and the cardiology literature use).
UNITS = {"eeg": "V", "emg": "V", "ecg": "mV", "eog": "V", "misc": "a.u."}


@dataclass(frozen=True)
class Events:
    """Point or interval events of a recording.

    onset: (n,) float64 seconds from the recording start; duration: (n,) float64 seconds;
    label: (n,) str (e.g. ``"T1"`` or a WFDB beat symbol ``"N"``); extra: (n,) str with any
    free text that came with the event (e.g. a WFDB aux note such as ``"(AFIB"``), else ``""``.
    """

    onset: np.ndarray
    duration: np.ndarray
    label: np.ndarray
    extra: np.ndarray

    @classmethod
    def empty(cls) -> "Events":
        return cls.from_lists([], [], [])

    @classmethod
    def from_lists(
        cls,
        onset: Sequence[float],
        duration: Sequence[float],
        label: Sequence[str],
        extra: Sequence[str] | None = None,
    ) -> "Events":
        onset_a = np.asarray(onset, dtype=np.float64).reshape(-1)
        n = onset_a.size
        dur_a = np.asarray(duration, dtype=np.float64).reshape(-1)
        lab_a = np.asarray([str(s) for s in label], dtype=object)
        ext_a = np.asarray([str(s) for s in extra] if extra is not None else [""] * n, dtype=object)
        if not (dur_a.size == lab_a.size == ext_a.size == n):
            raise DataFormatError(
                f"events: onset, duration, label and extra must have one entry each, got "
                f"{n}, {dur_a.size}, {lab_a.size}, {ext_a.size}"
            )
        return cls(onset_a, dur_a, lab_a, ext_a)

    def __len__(self) -> int:
        return int(self.onset.size)

    def select(self, mask: np.ndarray) -> "Events":
        return Events(self.onset[mask], self.duration[mask], self.label[mask], self.extra[mask])

    def counts(self) -> dict[str, int]:
        """Number of events per label."""
        labels, counts = np.unique(self.label.astype(str), return_counts=True)
        return {str(k): int(v) for k, v in zip(labels, counts)}


@dataclass
class Recording:
    """A continuous multichannel recording.

    data: float32 ``(n_channels, n_samples)`` in physical units (``units`` per channel: volts for
    EEG/EMG, millivolts for ECG, ``"a.u."`` where the source gives no unit).
    sfreq: sampling rate in Hz. ch_names/ch_types/units: one entry per channel.
    events: annotations with onsets in seconds from the first sample.
    subject/session/run/record: identifiers used for leakage-free grouping.
    source: the file it came from (or a description such as ``"synthetic"``).
    meta: anything else (dataset name, header fields, ``synthetic=True``...).
    """

    data: np.ndarray
    sfreq: float
    ch_names: list[str]
    ch_types: list[str]
    units: list[str]
    events: Events = field(default_factory=Events.empty)
    subject: str = ""
    session: str = ""
    run: str = ""
    record: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.source or "recording"
        data = np.asarray(self.data)
        if data.ndim != 2:
            raise DataFormatError(f"{where}: data must be 2-D (n_channels, n_samples), got shape {data.shape}")
        if data.dtype != np.float32:
            data = data.astype(np.float32)
        self.data = data
        n_ch = data.shape[0]
        for name, seq in (("ch_names", self.ch_names), ("ch_types", self.ch_types), ("units", self.units)):
            if len(seq) != n_ch:
                raise DataFormatError(f"{where}: {name} has {len(seq)} entries but data has {n_ch} channels")
        if not np.isfinite(self.sfreq) or self.sfreq <= 0:
            raise DataFormatError(f"{where}: sampling rate must be positive, got {self.sfreq}")
        self.sfreq = float(self.sfreq)
        self.ch_names = [str(c) for c in self.ch_names]
        if len(set(self.ch_names)) != n_ch:
            dup = sorted({c for c in self.ch_names if self.ch_names.count(c) > 1})
            raise DataFormatError(f"{where}: duplicate channel names {dup}")

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sfreq

    def replace(self, **changes: Any) -> "Recording":
        """A copy with some fields changed (data is not copied unless given)."""
        return replace(self, **changes)

    def check_finite(self) -> "Recording":
        """Raise DataFormatError naming the first channel that holds NaN or infinity."""
        check_finite(self.data, self.ch_names, self.source or "recording")
        return self

    def pick(self, channels: Sequence[str]) -> "Recording":
        """Keep ``channels`` in the given order; unknown names raise an error that lists them."""
        missing = [c for c in channels if c not in self.ch_names]
        if missing:
            raise DataFormatError(
                f"{self.source or 'recording'}: channels {missing} not found; available: {self.ch_names}"
            )
        idx = [self.ch_names.index(c) for c in channels]
        return self.replace(
            data=self.data[idx],
            ch_names=[self.ch_names[i] for i in idx],
            ch_types=[self.ch_types[i] for i in idx],
            units=[self.units[i] for i in idx],
        )


def check_finite(data: np.ndarray, ch_names: Sequence[str], where: str | Path) -> None:
    """Raise a DataFormatError that names the file, channel and sample of the first NaN/inf."""
    bad = ~np.isfinite(data)
    if bad.any():
        ch, sample = np.argwhere(bad)[0]
        n_nan, n_inf = int(np.isnan(data[ch]).sum()), int(np.isinf(data[ch]).sum())
        kinds = ([f"{n_nan} NaN (missing) value(s)"] if n_nan else []) + (
            [f"{n_inf} infinite value(s) (inf, or a number too large for the file's type)"] if n_inf else [])
        raise DataFormatError(f"{where}: channel {ch_names[ch]!r} has {' and '.join(kinds)}, first at sample {sample}")
