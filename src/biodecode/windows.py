"""Cut recordings into windows: around events (``tmin``/``tmax`` in seconds) or with a sliding
stride. The result is a :class:`WindowSet`; :func:`load_windows` adds the dataset, preprocessing
and the on-disk cache in one call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, DataFormatError
from .recording import Recording

log = logging.getLogger(__name__)

GROUP_COLUMNS = ("subject", "session", "run", "record", "trial")


@dataclass
class WindowSet:
    """Windows ready for a model.

    X: float32 ``(n_windows, n_channels, n_times)`` (possibly a read-only memory map);
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
        return WindowSet(self.X[idx], self.y[idx], self.metadata.iloc[idx].reset_index(drop=True),
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
            picks.append((rec, start, float(onset), mapping[lab], {k: float(v[i]) for k, v in columns.items()}))
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
) -> WindowSet:
    """Windows of ``window_s`` seconds every ``stride_s`` seconds.

    Labels: with ``event_map`` (or a recording's ``meta["event_map"]``), a window takes the class of
    the mapped event (with a duration) that covers it entirely; windows across a transition or
    outside any mapped event are dropped. Otherwise every window takes the recording's
    ``meta["label"]``.
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
        raise ConfigError("windows: no recording is long enough for one window")
    X = np.concatenate(chunks).astype(np.float32, copy=False)
    meta = pd.DataFrame(rows, columns=[*GROUP_COLUMNS, "onset_s", "label"])
    names = list(classes) if classes is not None else sorted(set(meta["label"]))
    unknown = sorted(set(meta["label"]) - set(names))
    if unknown:
        raise ConfigError(f"windows: labels {unknown} not in classes {names}")
    y = np.array([names.index(c) for c in meta["label"]], dtype=np.int64)
    info = {"window_s": window_s, "stride_s": stride_s, "synthetic": any(r.meta.get("synthetic", False) for r in recordings)}
    return WindowSet(X, y, meta, names, sfreq, list(recordings[0].ch_names), info)


def window_spec(
    dataset: str,
    subjects: Sequence[int | str] | None,
    task: str | None,
    *,
    tmin: float | None = None,
    tmax: float | None = None,
    window_s: float | None = None,
    stride_s: float | None = None,
    preprocessing: Sequence[dict[str, Any]] | None = None,
    dataset_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything that determines a WindowSet, as plain data (the cache key is its hash)."""
    return {
        "dataset": dataset,
        "subjects": [str(s) for s in subjects] if subjects is not None else None,
        "task": task,
        "tmin": tmin, "tmax": tmax, "window_s": window_s, "stride_s": stride_s,
        "preprocessing": list(preprocessing or []),
        "dataset_kwargs": dict(dataset_kwargs or {}),
    }


def load_windows(
    dataset: str,
    subjects: Sequence[int | str] | None = None,
    task: str | None = None,
    *,
    tmin: float | None = None,
    tmax: float | None = None,
    window_s: float | None = None,
    stride_s: float | None = None,
    preprocessing: Sequence[dict[str, Any]] | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    use_cache: bool = True,
    dataset_kwargs: dict[str, Any] | None = None,
) -> WindowSet:
    """Dataset -> recordings -> preprocessing -> windows, through the on-disk cache.

    ``preprocessing=None`` applies the dataset's default pipeline (``[]`` applies none).
    Event windows by default (``tmin``/``tmax`` default to the task's); pass ``window_s`` and
    ``stride_s`` for sliding windows. With the cache on, a second call with the same parameters
    memory-maps the stored arrays without opening any source file.
    """
    from .cache import WindowCache
    from .datasets import get_dataset
    from .preprocessing import Pipeline

    ds = get_dataset(dataset, path=data_dir, **(dataset_kwargs or {}))
    t = ds.task(task)
    if window_s is None and tmin is None and tmax is None and t is not None and t.kind == "sliding":
        window_s, stride_s = t.defaults.get("window_s"), t.defaults.get("stride_s")
    sliding = window_s is not None
    if not sliding:
        tmin = tmin if tmin is not None else (t.defaults.get("tmin") if t else None)
        tmax = tmax if tmax is not None else (t.defaults.get("tmax") if t else None)
        if tmin is None or tmax is None:
            raise ConfigError(f"{dataset}: give tmin/tmax (event windows) or window_s/stride_s (sliding windows)")
    elif stride_s is None:
        stride_s = window_s
    pipeline = Pipeline.from_config(preprocessing if preprocessing is not None else ds.default_preprocessing)
    subs = list(subjects) if subjects is not None else ds.subjects()
    spec = window_spec(dataset, subs, task, tmin=tmin, tmax=tmax, window_s=window_s, stride_s=stride_s,
                       preprocessing=pipeline.to_config(), dataset_kwargs=dataset_kwargs)
    spec["identity"] = ds.cache_identity()
    cache = WindowCache(cache_dir) if use_cache else None
    if cache is not None:
        hit = cache.get(spec)
        if hit is not None:
            return hit
    recordings = [pipeline.apply(r) for r in ds.load(subs, task)]
    classes = list(t.classes) if t else None
    if sliding:
        ws = make_sliding_windows(recordings, window_s, stride_s, classes=classes)
    else:
        ws = make_event_windows(recordings, tmin, tmax, classes=classes)
    ws.info.update({"dataset": dataset, "task": task, "preprocessing": pipeline.to_config()})
    return cache.put(spec, ws) if cache is not None else ws
