"""Cut recordings into windows: around events (``tmin``/``tmax`` in seconds) or with a sliding
stride. The result is a :class:`WindowSet`; :func:`biodecode.loading.load_windows` adds the dataset,
preprocessing and the window store in one call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, DataFormatError
from .lazyarray import take_rows
from .recording import Recording

log = logging.getLogger(__name__)

GROUP_COLUMNS = ("subject", "session", "run", "record", "trial")


@dataclass
class WindowSet:
    """Windows ready for a model.

    X: float32 ``(n_windows, n_channels, n_times)``: an array, or from the store a lazy
    :class:`~biodecode.lazyarray.ConcatRows` over read-only memory maps (index it to read rows);
    y: int64 ``(n_windows,)`` indices into ``classes``;
    metadata: one row per window with ``subject, session, run, record, trial, onset_s, label``
    (strings for ids; ``trial`` is the smallest unit that must not be split across train and test:
    the cue for event windows, the whole recording for overlapping sliding windows; onset in
    seconds from the recording start; label = class name);
    sfreq in Hz; ch_names per channel; info: provenance (dataset, synthetic flag, preprocessing).
    """

    X: np.ndarray
    y: np.ndarray
    metadata: pd.DataFrame
    classes: list[str]
    sfreq: float
    ch_names: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.X.ndim != 3:
            raise DataFormatError(f"WindowSet: X must be (n_windows, n_channels, n_times), got {self.X.shape}")
        if not (len(self.X) == len(self.y) == len(self.metadata)):
            raise DataFormatError(
                f"WindowSet: X, y and metadata disagree in length ({len(self.X)}, {len(self.y)}, {len(self.metadata)})"
            )
        if self.X.shape[1] != len(self.ch_names):
            raise DataFormatError(f"WindowSet: {len(self.ch_names)} channel names for {self.X.shape[1]} channels")

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_times(self) -> int:
        return int(self.X.shape[2])

    @property
    def synthetic(self) -> bool:
        return bool(self.info.get("synthetic", False))

    @property
    def labels(self) -> np.ndarray:
        """Class name per window, ``(n,)`` (``y`` holds indices into ``classes``)."""
        return np.asarray(self.classes, dtype=object)[np.asarray(self.y)]

    def groups(self, by: str | Sequence[str] = "subject") -> np.ndarray:
        """Group id per window, e.g. ``by="subject"`` or ``by=("subject", "session")``."""
        cols = [by] if isinstance(by, str) else list(by)
        bad = [c for c in cols if c not in self.metadata.columns]
        if bad:
            raise ConfigError(f"WindowSet.groups: no metadata column(s) {bad}; have {list(self.metadata.columns)}")
        return self.metadata[cols].astype(str).agg("/".join, axis=1).to_numpy()

    def subset(self, index: np.ndarray | Sequence[int]) -> "WindowSet":
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return WindowSet(take_rows(self.X, idx), np.asarray(self.y)[idx], self.metadata.iloc[idx].reset_index(drop=True),
                         list(self.classes), self.sfreq, list(self.ch_names), dict(self.info))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(np.asarray(self.y), minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}


def with_metadata_channels(ws: WindowSet, columns: Sequence[str]) -> WindowSet:
    """Append numeric metadata columns (e.g. the RR intervals of beat windows) as constant channels,
    so every model, whatever its input, sees them: X becomes ``(n, C + len(columns), T)``."""
    missing = [c for c in columns if c not in ws.metadata.columns]
    if missing:
        raise ConfigError(f"metadata channels {missing} are not window metadata columns; have {list(ws.metadata.columns)}")
    values = ws.metadata[list(columns)].to_numpy(dtype=np.float32)  # (n, k)
    if not np.isfinite(values).all():
        bad = [c for c, ok in zip(columns, np.isfinite(values).all(axis=0)) if not ok]
        raise DataFormatError(f"metadata channels {bad} hold NaN or infinite values")
    extra = np.broadcast_to(values[:, :, None], (len(ws), len(columns), ws.n_times))
    X = np.concatenate([np.asarray(ws.X), extra], axis=1)
    info = dict(ws.info, metadata_channels=list(columns))
    return WindowSet(X, ws.y, ws.metadata, ws.classes, ws.sfreq, [*ws.ch_names, *columns], info)


def _check_compatible(recordings: Sequence[Recording]) -> None:
    if not recordings:
        raise ConfigError("no recordings to window")
    first = recordings[0]
    for rec in recordings[1:]:
        if rec.sfreq != first.sfreq:
            raise DataFormatError(
                f"{rec.source}: sampling rate {rec.sfreq} Hz differs from {first.source} ({first.sfreq} Hz); "
                f"add a resample step"
            )
        if rec.ch_names != first.ch_names:
            raise DataFormatError(
                f"{rec.source}: channels differ from {first.source} ({rec.n_channels} vs {first.n_channels}); "
                f"add a pick step with a common channel list"
            )


def _extra(value: Any) -> float | str:
    """A per-event metadata value: text stays text (e.g. a run's condition), numbers become floats."""
    return value if isinstance(value, str) else float(value)


def _meta_row(rec: Recording, onset: float, label: str, trial: str, **extra: Any) -> dict[str, Any]:
    return {"subject": rec.subject, "session": rec.session, "run": rec.run, "record": rec.record, "trial": trial,
            "onset_s": onset, "label": label, **extra}


def make_event_windows(
    recordings: Sequence[Recording],
    tmin: float,
    tmax: float,
    *,
    event_map: dict[str, str] | None = None,
    classes: Sequence[str] | None = None,
) -> WindowSet:
    """Windows from ``onset + tmin`` to ``onset + tmax`` seconds around each mapped event.

    ``event_map`` maps event labels to class names (default: each recording's
    ``meta["event_map"]``); other events are ignored. Each window has
    ``round((tmax - tmin) * sfreq)`` samples. Windows that would run past either end of the
    recording are dropped and counted in ``info["n_dropped"]`` (and logged).
    """
    if tmax <= tmin:
        raise ConfigError(f"windows: tmax ({tmax}) must be greater than tmin ({tmin})")
    _check_compatible(recordings)
    sfreq = recordings[0].sfreq
    n_times = int(round((tmax - tmin) * sfreq))
    if n_times < 1:
        raise ConfigError(f"windows: tmin={tmin}, tmax={tmax} give no samples at {sfreq} Hz")
    picks: list[tuple[Recording, int, float, str, dict[str, Any]]] = []
    dropped = 0
    for rec in recordings:
        mapping = event_map if event_map is not None else rec.meta.get("event_map", {})
        if not mapping:
            raise ConfigError(f"{rec.source}: no event_map given and the recording has none")
        columns = rec.meta.get("event_columns", {})  # per-event extras (e.g. RR intervals) for the metadata
        for i, (onset, lab) in enumerate(zip(rec.events.onset, rec.events.label)):
            if lab not in mapping:
                continue
            start = int(round((onset + tmin) * sfreq))
            if start < 0 or start + n_times > rec.n_samples:
                dropped += 1
                continue
            picks.append((rec, start, float(onset), mapping[lab], {k: _extra(v[i]) for k, v in columns.items()}))
    if dropped:
        log.warning("windows: %d event windows ran past the recording edges and were dropped", dropped)
    names = list(classes) if classes is not None else sorted({p[3] for p in picks})
    unknown = sorted({p[3] for p in picks} - set(names))
    if unknown:
        raise ConfigError(f"windows: events map to classes {unknown} not in classes {names}")
    X = np.empty((len(picks), recordings[0].n_channels, n_times), dtype=np.float32)
    for i, (rec, start, _, _, _) in enumerate(picks):
        X[i] = rec.data[:, start : start + n_times]
    y = np.array([names.index(p[3]) for p in picks], dtype=np.int64)
    extra_cols = sorted({k for p in picks for k in p[4]})
    meta = pd.DataFrame([_meta_row(p[0], p[2], p[3], f"{p[0].record}@{p[2]:.3f}", **p[4]) for p in picks],
                        columns=[*GROUP_COLUMNS, "onset_s", "label", *extra_cols])
    info = {"n_dropped": dropped, "tmin": tmin, "tmax": tmax,
            "synthetic": any(r.meta.get("synthetic", False) for r in recordings)}
    return WindowSet(X, y, meta, names, sfreq, list(recordings[0].ch_names), info)


def make_sliding_windows(
    recordings: Sequence[Recording],
    window_s: float,
    stride_s: float,
    *,
    classes: Sequence[str] | None = None,
    event_map: dict[str, str] | None = None,
    allow_empty: bool = False,
) -> WindowSet:
    """Windows of ``window_s`` seconds every ``stride_s`` seconds.

    Labels: with ``event_map`` (or a recording's ``meta["event_map"]``), a window takes the class of
    the mapped event (with a duration) that covers it entirely; windows across a transition or
    outside any mapped event are dropped. Otherwise every window takes the recording's
    ``meta["label"]``. With ``allow_empty`` a set of recordings all shorter than one window gives
    an empty WindowSet instead of an error (the store builds one unit at a time).
    """
    _check_compatible(recordings)
    sfreq = recordings[0].sfreq
    n_times, step = int(round(window_s * sfreq)), int(round(stride_s * sfreq))
    if n_times < 1 or step < 1:
        raise ConfigError(f"windows: window {window_s} s and stride {stride_s} s must each be at least one sample")
    chunks, rows = [], []
    for rec in recordings:
        if rec.n_samples < n_times:
            log.warning("%s: shorter (%d samples) than one window (%d); skipped", rec.source, rec.n_samples, n_times)
            continue
        starts = np.arange(0, rec.n_samples - n_times + 1, step)
        mapping = event_map if event_map is not None else rec.meta.get("event_map")
        if mapping is None:
            if "label" not in rec.meta:
                raise ConfigError(f"{rec.source}: no event_map given and the recording has no meta['label']")
            labels = [str(rec.meta["label"])] * len(starts)
            keep = np.ones(len(starts), bool)
        else:
            ev = rec.events
            mask = np.isin(ev.label.astype(str), list(mapping))
            on = np.round(ev.onset[mask] * sfreq).astype(int)
            off = np.round((ev.onset[mask] + ev.duration[mask]) * sfreq).astype(int)
            lab = ev.label[mask]
            labels, keep = [], np.zeros(len(starts), bool)
            for i, s in enumerate(starts):
                cover = np.flatnonzero((on <= s) & (off >= s + n_times))
                if cover.size:
                    keep[i] = True
                    labels.append(mapping[lab[cover[0]]])
                else:
                    labels.append("")
        view = np.lib.stride_tricks.sliding_window_view(rec.data, n_times, axis=1)[:, starts[keep]]
        chunks.append(np.ascontiguousarray(view.transpose(1, 0, 2)))
        # overlapping windows of one recording share its trial id, so splits never separate them
        rows += [_meta_row(rec, s / sfreq, lab, rec.record) for s, lab, k in zip(starts, labels, keep) if k]
    if not chunks:
        if not allow_empty:
            raise ConfigError("windows: no recording is long enough for one window")
        chunks = [np.zeros((0, recordings[0].n_channels, n_times), np.float32)]
    X = np.concatenate(chunks).astype(np.float32, copy=False)
    meta = pd.DataFrame(rows, columns=[*GROUP_COLUMNS, "onset_s", "label"])
    names = list(classes) if classes is not None else sorted(set(meta["label"]))
    unknown = sorted(set(meta["label"]) - set(names))
    if unknown:
        raise ConfigError(f"windows: labels {unknown} not in classes {names}")
    y = np.array([names.index(c) for c in meta["label"]], dtype=np.int64)
    info = {"window_s": window_s, "stride_s": stride_s, "synthetic": any(r.meta.get("synthetic", False) for r in recordings)}
    return WindowSet(X, y, meta, names, sfreq, list(recordings[0].ch_names), info)
