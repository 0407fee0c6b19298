"""Dataset -> recordings -> preprocessing -> windows, one recording unit at a time, in parallel,
through the window store.

A request is the union of its units' store entries (a unit is what :meth:`Dataset.units` yields: a
subject's recordings of the task, or one record). Each missing entry is built on its own, by this
process or a worker process (joblib/loky, :mod:`biodecode.sharedwork`; a user can point joblib at a
Dask or Ray cluster), and written straight to the store, so the peak memory of a build is that of
the units being built, not of the dataset. The
result is a :class:`WindowSet` whose ``X`` is a lazy concatenation of the entries' memory maps.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .datasets import Dataset, get_dataset
from .errors import ConfigError, DataFormatError, DownloadError
from .lazyarray import ConcatRows
from .preprocessing import Pipeline
from .sharedwork import share_work
from .spec import WindowSpec
from .store import WindowStore, entry_key
from .windows import GROUP_COLUMNS, WindowSet, make_event_windows, make_sliding_windows

log = logging.getLogger(__name__)

#: Version of the windowing code; part of every store key (bump when windows change for the same input).
WINDOWING_VERSION = 4  # 2: MIT-BIH beats carry per-record relative RR columns; 3: and RR / local RR;
#                        4: PhysioNet MI windows carry their run's condition (real / imagined)

Progress = Callable[[str, int, int], None]  # (unit id, units done, units in all)


def _build_windows(ds: Dataset, unit: str, spec: WindowSpec, classes: Sequence[str] | None) -> WindowSet:
    """Read, preprocess and window one unit (in whatever process runs it)."""
    pipeline = Pipeline.from_config(spec.preprocessing or [])
    recordings = [pipeline.apply(r) for r in ds.load_unit(unit, spec.task)]
    if not recordings:
        raise DataFormatError(f"{ds.name}: unit {unit} has no recordings for task {spec.task!r}")
    if spec.sliding:
        return make_sliding_windows(recordings, spec.window_s, spec.stride_s, classes=classes, allow_empty=True)
    return make_event_windows(recordings, spec.tmin, spec.tmax, classes=classes)


LOCAL = "local"


def _is_local(subjects: Any) -> bool:
    """``"local"`` (or ``["local"]``, as the command line passes it): the subjects present locally."""
    return subjects == LOCAL or (isinstance(subjects, (list, tuple)) and list(subjects) == [LOCAL])


def local_subjects(ds: Dataset, task: str | None) -> list[int | str]:
    """The dataset's subjects (records) whose files for ``task`` are all in its local folder."""
    return [s for s in ds.subjects() if _on_disk(ds, [*ds.files(s, task), *ds.shared_files(task)])]


def _on_disk(ds: Dataset, files: Sequence[str]) -> bool:
    """Whether every one of ``files`` (relative to the dataset's folder) is present locally."""
    return all((ds.root / f).is_file() for f in files)


def _fetch_or_explain(ds: Dataset, units: list[tuple[str, list[str]]]) -> None:
    """Make every unit's files present, downloading missing ones. When that is not possible
    (downloads off, no network), say which units are missing, which are present, and how to go on."""
    missing = [u for u, files in units if not _on_disk(ds, files)]
    if not missing:
        return
    try:
        ds.fetch(sorted({f for u, files in units if u in missing for f in files}))
    except (DownloadError, FileNotFoundError) as exc:
        present = [u for u, _ in units if u not in missing]
        names = lambda us: " ".join(us[:12]) + (f" ... ({len(us)} in all)" if len(us) > 12 else "")  # noqa: E731
        ways = [f"download them when online (`biodecode datasets download {ds.name}`)",
                "point BIODECODE_DATA_DIR (or --data-dir) at a folder that has them"]
        if present:
            ways.insert(0, f"use the {len(present)} present ({names(present)}): --subjects local on the command "
                           f"line, subjects=\"local\" in Python")
        raise DownloadError(
            f"{ds.name}: {len(missing)} of the {len(units)} requested subject(s)/record(s) are not in {ds.root} "
            f"({names(missing)}) and could not be fetched ({exc}). To go on: " + "; or ".join(ways) + ".") from None


def _build_entry(ds: Dataset, unit: str, spec: WindowSpec, classes: Sequence[str] | None, root: str, key: str,
                 about: dict[str, Any]) -> tuple[str, str, str]:
    """Worker: build one unit's windows and write them to the store; returns (unit, key, manifest digest)."""
    ws = _build_windows(ds, unit, spec, classes)
    return unit, key, WindowStore(root).put(key, ws, about)


def _union(parts: list[tuple[str, WindowSet]], classes: Sequence[str] | None, dataset: str) -> WindowSet:
    """Join per-unit window sets (checked compatible) into one lazy WindowSet."""
    ref_unit, ref = parts[0]
    for unit, ws in parts[1:]:
        if ws.sfreq != ref.sfreq:
            raise DataFormatError(f"{dataset}: unit {unit} is at {ws.sfreq} Hz, unit {ref_unit} at {ref.sfreq} Hz; "
                                  f"add a resample step")
        if list(ws.ch_names) != list(ref.ch_names):
            raise DataFormatError(f"{dataset}: unit {unit} has channels {ws.ch_names[:5]}... ({ws.n_channels}), unit "
                                  f"{ref_unit} {ref.ch_names[:5]}... ({ref.n_channels}); add a pick step with a common list")
        if ws.n_times != ref.n_times:
            raise DataFormatError(f"{dataset}: unit {unit} windows have {ws.n_times} samples, unit {ref_unit} {ref.n_times}")
    names = list(classes) if classes is not None else sorted({c for _, ws in parts for c in ws.classes})
    ys, metas, xs = [], [], []
    for unit, ws in parts:
        lookup = np.array([names.index(c) if c in names else -1 for c in ws.classes] or [-1], dtype=np.int64)
        y = lookup[np.asarray(ws.y)] if len(ws) else np.zeros(0, np.int64)
        if (y < 0).any():
            raise ConfigError(f"{dataset}: unit {unit} has classes {ws.classes} outside {names}")
        ys.append(y)
        metas.append(ws.metadata)
        if len(ws):
            xs.append(ws.X)
    if not xs:
        raise ConfigError(f"{dataset}: no windows in any of the {len(parts)} unit(s) requested")
    X = ConcatRows(xs)
    meta = pd.concat(metas, ignore_index=True) if len(metas) > 1 else metas[0].reset_index(drop=True)
    for c in GROUP_COLUMNS:
        meta[c] = meta[c].astype(str)
    info: dict[str, Any] = {}
    for _, ws in parts:
        for k, v in ws.info.items():
            if k == "n_dropped":
                info[k] = info.get(k, 0) + int(v)
            elif k == "synthetic":
                info[k] = bool(info.get(k, False) or v)
            else:
                info.setdefault(k, v)
    return WindowSet(X, np.concatenate(ys), meta, names, ref.sfreq, list(ref.ch_names), info)


def resolve_spec(spec: WindowSpec, data_dir: str | None = None) -> tuple[Dataset, WindowSpec]:
    """The dataset and the spec with the task's windows and the dataset's default pipeline filled in
    (the pipeline normalised through its config, so equal pipelines give equal keys)."""
    ds = get_dataset(spec.dataset, path=data_dir, **spec.dataset_kwargs)
    t = ds.task(spec.task)
    spec = spec.resolved(t.defaults if t else {}, ds.default_preprocessing)
    pipeline = Pipeline.from_config(spec.preprocessing or [])
    return ds, replace(spec, preprocessing=pipeline.to_config())


def load_windows(
    dataset: str | WindowSpec,
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
    n_jobs: int | None = None,
    verify: bool = False,
    progress: Progress | None = None,
) -> WindowSet:
    """Windows of ``subjects`` (default: all of the dataset's) for ``task``.

    ``dataset`` is a registered name (with the window parameters as keywords) or a
    :class:`WindowSpec`. ``preprocessing=None`` applies the dataset's default pipeline (``[]``
    none). Event windows by default (``tmin``/``tmax`` default to the task's); ``window_s`` and
    ``stride_s`` give sliding windows. ``n_jobs`` processes build missing entries, this one included
    (default all cores; 1 builds in this process only); ``progress(unit, done, total)`` is called per unit.
    With the store on (``use_cache``), entries already built are memory-mapped without opening any
    source file beyond a ``stat``; ``verify=True`` re-checks every entry's content checksums.
    """
    if isinstance(dataset, WindowSpec):
        spec = dataset
    else:
        spec = WindowSpec(dataset, task, tmin, tmax, window_s, stride_s,
                          None if preprocessing is None else list(preprocessing), dict(dataset_kwargs or {}))
    ds, spec = resolve_spec(spec, data_dir)
    t = ds.task(spec.task)
    classes = list(t.classes) if t else None
    subs = local_subjects(ds, spec.task) if _is_local(subjects) else (
        list(subjects) if subjects is not None else ds.subjects())
    if not subs:
        raise ConfigError(f"{ds.name}: no subjects requested" if not _is_local(subjects) else
                          f"{ds.name}: no subject has all its files for task {spec.task!r} in {ds.root}")
    direct = ds.direct_windows(subs, spec)
    if direct is not None:  # the dataset cuts its windows itself (MOABB), through its own cache
        return _finish(direct, spec, subs)
    units = ds.units(subs, spec.task)
    _fetch_or_explain(ds, units)  # downloads (or a clear error naming what is missing) up front
    n_jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
    if n_jobs < 1:
        raise ConfigError(f"load_windows: n_jobs must be at least 1, got {n_jobs}")

    if not use_cache:
        parts = []
        for i, (unit, _) in enumerate(units):
            parts.append((unit, _build_windows(ds, unit, spec, classes)))
            if progress:
                progress(unit, i + 1, len(units))
        ws = _union(parts, classes, ds.name)
        return _finish(ws, spec, subs)

    store = WindowStore(cache_dir, verify=verify)
    store.clean_stale()
    engines = Pipeline.from_config(spec.preprocessing or []).engine_versions()
    keys: dict[str, str] = {}
    abouts: dict[str, dict[str, Any]] = {}
    for unit, files in units:
        content = [(rel, (ds.root / rel).stat().st_size, store.hasher.digest(ds.root / rel)) for rel in files]
        about = {"dataset": ds.name, "identity": ds.cache_identity(), "unit": unit, "task": spec.task,
                 "files": content, "windowing": spec.windowing(), "windowing_version": WINDOWING_VERSION,
                 "preprocessing": spec.preprocessing, "classes": classes,
                 **({"engines": engines} if engines else {})}  # absent for most pipelines: their keys stay as they were
        keys[unit], abouts[unit] = entry_key(about), about
    found: dict[str, WindowSet] = {}
    for unit, _ in units:
        hit = store.get(keys[unit])
        if hit is not None:
            found[unit] = hit
    missing = [u for u, _ in units if u not in found]
    done = len(found)
    if progress and found:
        progress("(stored)", done, len(units))
    if missing:
        log.info("%s: building %d of %d unit(s) in up to %d process(es)", ds.name, len(missing), len(units),
                 min(n_jobs, len(missing)))
        jobs = [(ds, u, spec, classes, str(store.root), keys[u], abouts[u]) for u in missing]
        results = share_work(_build_entry, jobs, n_jobs)
        for unit, key, digest in results:
            if digest:
                store.mark_verified(key, digest)
            got = store.get(key)
            if got is None:  # removed between write and read (another process found it corrupt): once more here
                _build_entry(ds, unit, spec, classes, str(store.root), key, abouts[unit])
                got = store.get(key, verify=True)
            if got is None:
                raise DataFormatError(f"{ds.name}: unit {unit}: the store entry just written under {store.path(key)} "
                                      f"does not read back")
            found[unit] = got
            done += 1
            if progress:
                progress(unit, done, len(units))
    ws = _union([(u, found[u]) for u, _ in units], classes, ds.name)
    return _finish(ws, spec, subs)


def _finish(ws: WindowSet, spec: WindowSpec, subjects: Sequence[int | str]) -> WindowSet:
    ws.info.update({"dataset": spec.dataset, "task": spec.task, "preprocessing": spec.preprocessing,
                    "window_spec": spec.to_dict(), "n_units": len(subjects), "subjects": list(subjects)})
    return ws


def load_windows_for_model(
    meta: dict[str, Any],
    subjects: Sequence[int | str] | None = None,
    *,
    dataset: str | None = None,
    task: str | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    progress: Progress | None = None,
) -> WindowSet:
    """The windows a saved model expects (its file's window spec, preprocessing and metadata
    channels) for ``subjects``; ``dataset``/``task`` override the recorded ones. Raises ConfigError
    when the data's channels or classes differ from the model's."""
    from .windows import with_metadata_channels

    spec = WindowSpec.from_model_meta(meta)
    if dataset or task:
        spec = replace(spec, dataset=dataset or spec.dataset, task=task or spec.task)
    if spec.preprocessing is None:
        spec = replace(spec, preprocessing=[])
    ws = load_windows(spec, subjects, data_dir=data_dir, cache_dir=cache_dir, progress=progress)
    alignment = meta.get("alignment") or {}
    if alignment.get("method", "none") != "none":  # the model expects each subject's windows aligned
        from .alignment import align_windows

        ws = align_windows(ws, by=alignment.get("by") or "subject", method=alignment["method"])
    if meta.get("metadata_channels"):
        ws = with_metadata_channels(ws, meta["metadata_channels"])
    if list(ws.ch_names) != list(meta.get("ch_names", ws.ch_names)):
        raise ConfigError(f"the model was trained on channels {meta['ch_names']}, the data has {ws.ch_names}")
    if list(ws.classes) != list(meta.get("classes", ws.classes)):
        raise ConfigError(f"the model's classes {meta['classes']} differ from the data's {ws.classes}")
    return ws
