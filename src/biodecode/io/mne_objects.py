"""MNE objects in and out: a :class:`~biodecode.recording.Recording` from an ``mne.io.Raw`` and back,
and a :class:`~biodecode.windows.WindowSet` from ``mne.Epochs``.

Channel types: EEG, EMG, EOG and ECG are taken (MNE stores them in volts; biodecode keeps ECG in
millivolts, so ECG is scaled by 1e3 on the way in and back on the way out), ``misc`` stays in its
own unit; stimulus channels are left out (their events belong in annotations: ``mne.find_events``
then ``raw.set_annotations``); anything else (MEG, fNIRS, ...) is refused with the channel names, as
is a channel whose unit is not volts where volts are due.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DataFormatError
from ..recording import UNITS, Events, Recording, check_finite
from ..windows import WindowSet

log = logging.getLogger(__name__)

#: MNE's unit code for volts (FIFF_UNIT_V).
_FIFF_UNIT_V = 107
_TAKEN = ("eeg", "emg", "eog", "ecg", "misc")


def _picks(info: Any, where: str) -> tuple[list[int], list[str]]:
    """Indices and types of the channels taken; errors for types biodecode does not handle."""
    import mne

    kinds = [mne.channel_type(info, i) for i in range(info["nchan"])]
    unsupported = [(info["ch_names"][i], k) for i, k in enumerate(kinds) if k not in _TAKEN + ("stim",)]
    if unsupported:
        shown = ", ".join(f"{n} ({k})" for n, k in unsupported[:8])
        raise DataFormatError(f"{where}: channel type(s) biodecode does not decode: {shown}"
                              f"{' ...' if len(unsupported) > 8 else ''}; keep EEG/EMG/EOG/ECG/misc channels first, "
                              f"e.g. raw.pick(['eeg', 'ecg'])")
    stim = [info["ch_names"][i] for i, k in enumerate(kinds) if k == "stim"]
    if stim:
        log.info("%s: stimulus channel(s) %s left out (their events belong in annotations)", where, stim)
    picks = [i for i, k in enumerate(kinds) if k in _TAKEN]
    if not picks:
        raise DataFormatError(f"{where}: no EEG, EMG, EOG, ECG or misc channel")
    for i in picks:
        unit = int(info["chs"][i]["unit"])
        if kinds[i] != "misc" and unit != _FIFF_UNIT_V:
            raise DataFormatError(f"{where}: channel {info['ch_names'][i]!r} ({kinds[i]}) is not in volts (MNE unit "
                                  f"code {unit}); set its unit or type first")
    return picks, [kinds[i] for i in picks]


def _to_biodecode_units(data: np.ndarray, types: Sequence[str], axis: int) -> np.ndarray:
    data = np.asarray(data, dtype=np.float32)
    ecg = [i for i, t in enumerate(types) if t == "ecg"]
    if ecg:
        index = [slice(None)] * data.ndim
        index[axis] = ecg
        data[tuple(index)] *= 1e3  # volts -> millivolts
    return data


def recording_from_raw(raw: Any, *, subject: str = "", session: str = "", run: str = "", record: str = "",
                       allow_nan: bool = False) -> Recording:
    """A Recording of ``raw``'s EEG/EMG/EOG/ECG/misc channels: data in biodecode's units, the
    annotations as events (onsets from the first sample), the measurement date in ``meta``."""
    where = f"mne raw {raw.filenames[0] if getattr(raw, 'filenames', None) and raw.filenames[0] else ''}".strip()
    picks, types = _picks(raw.info, where)
    data = _to_biodecode_units(raw.get_data(picks=picks), types, axis=0)
    names = [raw.ch_names[i] for i in picks]
    if not allow_nan:
        check_finite(data, names, where)
    ann = raw.annotations
    first = raw.first_time if raw.first_time else 0.0
    events = Events.from_lists(np.asarray(ann.onset) - first, ann.duration, ann.description)
    meas_date = raw.info.get("meas_date")
    return Recording(data=data, sfreq=raw.info["sfreq"], ch_names=names, ch_types=types,
                     units=[UNITS[t] for t in types], events=events, subject=str(subject), session=str(session),
                     run=str(run), record=str(record), source=where,
                     meta={"format": "mne", "meas_date": str(meas_date) if meas_date else None})


def recording_to_raw(rec: Recording) -> Any:
    """An ``mne.io.RawArray`` of ``rec`` (ECG back to volts), its events as annotations."""
    import mne

    types = [t if t in _TAKEN else "misc" for t in rec.ch_types]
    data = rec.data.astype(np.float64)
    for i, t in enumerate(types):
        if t == "ecg":
            data[i] /= 1e3
    info = mne.create_info(list(rec.ch_names), rec.sfreq, types)
    raw = mne.io.RawArray(data, info, verbose="error")
    if len(rec.events):
        raw.set_annotations(mne.Annotations(rec.events.onset, rec.events.duration, rec.events.label.astype(str)))
    return raw


def windows_from_epochs(epochs: Any, *, classes: Sequence[str] | None = None, labels: Sequence[str] | None = None,
                        subject: str = "1", session: str = "1", run: str = "1") -> WindowSet:
    """A WindowSet of ``epochs``: one window per epoch (its EEG/EMG/EOG/ECG/misc channels, in
    biodecode's units), labels from the event codes through ``event_id`` (``classes`` orders and
    may restrict them) or given per epoch in ``labels`` (where the event names are not the class
    names, as in MOABB's epochs), onsets and ``tmin`` kept, and the epochs' metadata columns carried
    along (``subject``, ``session``, ``run`` and ``trial`` columns there name the groups; otherwise the
    arguments do, and every epoch is its own trial)."""
    where = "mne epochs"
    if len(epochs) == 0:
        raise DataFormatError(f"{where}: no epochs (all dropped?)")
    picks, types = _picks(epochs.info, where)
    if labels is not None:
        if len(labels) != len(epochs):
            raise DataFormatError(f"{where}: {len(labels)} labels for {len(epochs)} epochs")
        names = np.array([str(lab) for lab in labels], dtype=object)
        if classes is None:
            classes = sorted(set(names))
    else:
        code_to_name = {int(code): name for name, code in epochs.event_id.items()}
        codes = epochs.events[:, 2].astype(int)
        unknown = sorted(set(codes) - set(code_to_name))
        if unknown:
            raise DataFormatError(f"{where}: event codes {unknown} have no name in event_id {epochs.event_id}")
        names = np.array([code_to_name[c] for c in codes], dtype=object)
        if classes is None:
            classes = [code_to_name[c] for c in sorted(code_to_name)]
    classes = [str(c) for c in classes]
    missing = sorted(set(names) - set(classes))
    if missing:
        raise DataFormatError(f"{where}: epochs labelled {missing} are not among classes {classes}; select the epochs "
                              f"first (epochs[classes]) or add them to classes")
    X = _to_biodecode_units(epochs.get_data(picks=picks), types, axis=1)
    check_finite(X.transpose(1, 0, 2).reshape(X.shape[1], -1), [epochs.ch_names[i] for i in picks], where)
    sfreq = float(epochs.info["sfreq"])
    meta = epochs.metadata.reset_index(drop=True).copy() if epochs.metadata is not None else pd.DataFrame(index=range(len(X)))
    for col, default in (("subject", subject), ("session", session), ("run", run)):
        meta[col] = meta[col].astype(str) if col in meta else str(default)
    if "record" not in meta:
        meta["record"] = meta["subject"] + "/" + meta["session"] + "/" + meta["run"]
    meta["record"] = meta["record"].astype(str)
    meta["trial"] = meta["trial"].astype(str) if "trial" in meta else [f"epoch{i}" for i in range(len(X))]
    meta["onset_s"] = epochs.events[:, 0] / sfreq + float(epochs.tmin)
    meta["label"] = names
    y = np.array([classes.index(n) for n in names], dtype=np.int64)
    info = {"dataset": "mne.Epochs", "tmin": float(epochs.tmin), "tmax": float(epochs.tmax),
            "event_id": {str(k): int(v) for k, v in epochs.event_id.items()}, "synthetic": False}
    return WindowSet(X, y, meta, classes, sfreq, [epochs.ch_names[i] for i in picks], info)


def is_mne_epochs(obj: Any) -> bool:
    """True for ``mne.Epochs`` / ``EpochsArray`` (checked without importing MNE)."""
    return type(obj).__module__.startswith("mne") and hasattr(obj, "event_id") and hasattr(obj, "get_data")
