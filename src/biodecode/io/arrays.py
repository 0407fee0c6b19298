"""CSV/text and NumPy arrays with an explicit sampling rate."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .paths import existing_file
from ..errors import DataFormatError
from ..recording import UNITS, Recording, check_finite


def _finish(
    data: np.ndarray,
    path: Path,
    sfreq: float,
    ch_names: Sequence[str] | None,
    ch_type: str,
    unit: str | None,
    allow_nan: bool,
) -> Recording:
    if sfreq is None or not np.isfinite(sfreq) or sfreq <= 0:
        raise DataFormatError(f"{path}: an explicit positive sampling rate (sfreq, Hz) is required, got {sfreq}")
    n_ch = data.shape[0]
    names = list(ch_names) if ch_names is not None else [f"ch{i + 1}" for i in range(n_ch)]
    if len(names) != n_ch:
        raise DataFormatError(f"{path}: {len(names)} channel names given but the file has {n_ch} channels")
    data = data.astype(np.float32)
    if not allow_nan:
        check_finite(data, names, path)
    return Recording(
        data=data,
        sfreq=sfreq,
        ch_names=names,
        ch_types=[ch_type] * n_ch,
        units=[unit or UNITS.get(ch_type, "a.u.")] * n_ch,
        source=str(path),
        meta={"format": path.suffix.lstrip(".").upper()},
    )


def read_csv(
    path: str | Path,
    *,
    sfreq: float,
    ch_names: Sequence[str] | None = None,
    ch_type: str = "eeg",
    unit: str | None = None,
    channels_in_columns: bool = True,
    delimiter: str | None = None,
    usecols: Sequence[int | str] | None = None,
    allow_nan: bool = False,
) -> Recording:
    """Read a delimited text file of samples.

    By default rows are samples and columns channels (``channels_in_columns=False`` flips it). A
    first row that is not numeric is taken as channel names. ``usecols`` keeps some columns only
    (by index or header name), e.g. to drop a time column. Values are taken as already physical.
    """
    import pandas as pd

    path = existing_file(path)
    with open(path, "r", errors="replace") as f:
        skip, first = 0, f.readline()
        while first and not first.strip():  # blank lines before the first row
            skip, first = skip + 1, f.readline()
    if not first:
        raise DataFormatError(f"{path}: empty file" if skip == 0 else f"{path}: only blank lines, no samples")
    sep = delimiter or ("," if "," in first else ("\t" if "\t" in first else r"\s+"))
    tokens = [t for t in (first.split(sep) if sep != r"\s+" else first.split()) if t.strip()]
    try:
        [float(t) for t in tokens]
        header = None
    except ValueError:
        header = 0
    try:
        frame = pd.read_csv(path, sep=sep, header=header, usecols=usecols, skiprows=skip, skip_blank_lines=True,
                            engine="c" if sep != r"\s+" else "python")
    except Exception as exc:
        raise DataFormatError(f"{path}: could not be parsed as delimited numbers: {exc}") from exc
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        bad = [c for c in frame.columns if frame[c].dtype == object]
        raise DataFormatError(f"{path}: non-numeric values in column(s) {bad}: {exc}") from exc
    if values.size == 0:
        raise DataFormatError(f"{path}: no samples")
    data = values.T if channels_in_columns else values
    names = ch_names if ch_names is not None else ([str(c) for c in frame.columns] if header == 0 else None)
    return _finish(data, path, sfreq, names, ch_type, unit, allow_nan)


def read_npy(
    path: str | Path,
    *,
    sfreq: float,
    ch_names: Sequence[str] | None = None,
    ch_type: str = "eeg",
    unit: str | None = None,
    channels_first: bool = True,
    allow_nan: bool = False,
) -> Recording:
    """Read a 2-D ``.npy`` array, ``(n_channels, n_samples)`` unless ``channels_first=False``."""
    path = existing_file(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataFormatError(f"{path}: not a readable .npy file (truncated or corrupt?): {exc}") from exc
    if arr.ndim != 2:
        raise DataFormatError(f"{path}: expected a 2-D array (channels x samples), got shape {arr.shape}")
    if np.iscomplexobj(arr):
        raise DataFormatError(f"{path}: complex values (dtype {arr.dtype}); give real signals (e.g. np.real or "
                              f"np.abs of the array)")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataFormatError(f"{path}: expected numbers, got dtype {arr.dtype}")
    data = arr if channels_first else arr.T
    return _finish(data, path, sfreq, ch_names, ch_type, unit, allow_nan)
