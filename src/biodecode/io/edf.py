"""EDF, EDF+, BDF and GDF files through MNE, with the header checked against the file first."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from ..recording import UNITS, Events, Recording, check_finite

log = logging.getLogger(__name__)

_BYTES_PER_SAMPLE = {".edf": 2, ".bdf": 3}


def check_edf_header(path: str | Path) -> dict[str, int | float]:
    """Check that an EDF/BDF header is self-consistent and matches the file's length.

    Returns ``{"n_signals", "n_records", "record_duration", "header_bytes", "samples_per_record"}``.
    Raises DataFormatError naming the file and the field that disagrees.
    """
    path = Path(path)
    bps = _BYTES_PER_SAMPLE[path.suffix.lower()]
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        fixed = f.read(256)
        if len(fixed) < 256:
            raise DataFormatError(f"{path}: truncated header ({len(fixed)} of 256 fixed header bytes)")

        def field(raw: bytes, name: str, kind: type) -> int | float:
            text = raw.decode("ascii", errors="replace").strip()
            try:
                return kind(float(text)) if kind is int else kind(text)
            except ValueError:
                raise DataFormatError(f"{path}: header field {name!r} is not a number: {text!r}") from None

        header_bytes = int(field(fixed[184:192], "header bytes", int))
        n_records = int(field(fixed[236:244], "number of data records", int))
        duration = float(field(fixed[244:252], "duration of a data record", float))
        ns = int(field(fixed[252:256], "number of signals", int))
        if ns <= 0:
            raise DataFormatError(f"{path}: header says {ns} signals")
        if header_bytes != 256 * (ns + 1):
            raise DataFormatError(
                f"{path}: header field 'header bytes' is {header_bytes}, but {ns} signals need "
                f"{256 * (ns + 1)}"
            )
        rest = f.read(256 * ns)
        if len(rest) < 256 * ns:
            raise DataFormatError(f"{path}: truncated header ({256 + len(rest)} of {header_bytes} bytes)")
    off = ns * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
    samples = [int(field(rest[off + 8 * i : off + 8 * (i + 1)], f"samples of signal {i}", int)) for i in range(ns)]
    record_bytes = sum(samples) * bps
    info = {
        "n_signals": ns,
        "n_records": n_records,
        "record_duration": duration,
        "header_bytes": header_bytes,
        "samples_per_record": sum(samples),
    }
    if n_records < 0:  # -1: unknown, allowed while recording; derive from the size
        return info
    expected = header_bytes + n_records * record_bytes
    if size < expected:
        have = (size - header_bytes) / record_bytes if record_bytes else 0
        raise DataFormatError(
            f"{path}: truncated file: header says {n_records} data records ({expected} bytes) but the "
            f"file has {size} bytes ({have:.2f} records)"
        )
    if size > expected:
        raise DataFormatError(
            f"{path}: header says {n_records} data records ({expected} bytes) but the file has {size} "
            f"bytes: the header's record count does not match the data"
        )
    return info


def read_edf(
    path: str | Path,
    *,
    ch_types: dict[str, str] | None = None,
    allow_nan: bool = False,
) -> Recording:
    """Read an EDF/EDF+/BDF/GDF file.

    Signals come back as float32 ``(n_channels, n_samples)``: volts for EEG/EMG/EOG, millivolts
    for ECG. EDF+/BDF+/GDF annotations become ``Recording.events`` (onsets in seconds).
    ``ch_types`` maps channel names to types where the file does not say.
    """
    import mne

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in _BYTES_PER_SAMPLE:
        check_edf_header(path)
    readers = {".edf": mne.io.read_raw_edf, ".bdf": mne.io.read_raw_bdf, ".gdf": mne.io.read_raw_gdf}
    if suffix not in readers:
        raise DataFormatError(f"{path}: not an EDF/BDF/GDF file (extension {suffix!r})")
    try:
        raw = readers[suffix](path, preload=True, verbose="error")
    except Exception as exc:  # MNE raises many types for broken files
        raise DataFormatError(f"{path}: could not be read as {suffix[1:].upper()}: {exc}") from exc
    if ch_types:
        raw.set_channel_types({k: v for k, v in ch_types.items() if k in raw.ch_names}, verbose="error")
    types = [t if t in UNITS else "misc" for t in raw.get_channel_types()]
    data = raw.get_data().astype(np.float32)
    for i, t in enumerate(types):
        if t == "ecg":
            data[i] *= 1e3  # MNE gives volts; biodecode's ECG unit is mV
    if not allow_nan:
        check_finite(data, raw.ch_names, path)
    ann = raw.annotations
    first = raw.first_time if raw.first_time else 0.0
    events = Events.from_lists(np.asarray(ann.onset) - first, ann.duration, ann.description)
    meas_date = raw.info.get("meas_date")
    return Recording(
        data=data,
        sfreq=raw.info["sfreq"],
        ch_names=list(raw.ch_names),
        ch_types=types,
        units=[UNITS[t] for t in types],
        events=events,
        source=str(path),
        meta={"format": suffix[1:].upper(), "meas_date": str(meas_date) if meas_date else None},
    )
