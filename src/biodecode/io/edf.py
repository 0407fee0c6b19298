"""EDF, EDF+, BDF and GDF files: the header checked against the file first, then a NumPy memory map
for plain continuous EDF and MNE for everything else."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .paths import existing_file
from ..errors import DataFormatError
from ..recording import UNITS, Events, Recording, check_finite

log = logging.getLogger(__name__)

_BYTES_PER_SAMPLE = {".edf": 2, ".bdf": 3}


@dataclass(frozen=True)
class EdfHeader:
    """The EDF/BDF header fields biodecode uses (one entry per signal in the per-signal lists)."""

    n_signals: int
    n_records: int  # -1 in the file is resolved from the file size
    record_duration: float  # seconds
    header_bytes: int
    labels: list[str]
    units: list[str]
    phys_min: np.ndarray
    phys_max: np.ndarray
    dig_min: np.ndarray
    dig_max: np.ndarray
    samples: np.ndarray  # samples per data record, per signal
    reserved: str  # "EDF+C", "EDF+D", "BDF+C" or ""
    startdate: str
    starttime: str

    @property
    def samples_per_record(self) -> int:
        return int(self.samples.sum())

    def annotation_signals(self) -> list[int]:
        return [i for i, lab in enumerate(self.labels) if lab in ("EDF Annotations", "BDF Annotations")]

    def data_signals(self) -> list[int]:
        """Indices of the signals that are not annotation channels."""
        ann = set(self.annotation_signals())
        return [i for i in range(self.n_signals) if i not in ann]

    def record_offsets(self) -> np.ndarray:
        """Sample offset of each signal inside a data record, plus the record length at the end."""
        return np.concatenate([[0], np.cumsum(self.samples)])

    def as_dict(self) -> dict[str, int | float]:
        return {"n_signals": self.n_signals, "n_records": self.n_records, "record_duration": self.record_duration,
                "header_bytes": self.header_bytes, "samples_per_record": self.samples_per_record}


def read_edf_header(path: str | Path) -> EdfHeader:
    """Parse an EDF/BDF header and check it against itself and the file's length.

    Raises DataFormatError naming the file and the field at fault: a truncated header or file, a
    record count that disagrees with the data (or, for -1, a file that is not a whole number of
    records), a record duration of 0, equal physical or equal digital min/max on a data signal.
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

    def column(offset: int, width: int) -> list[str]:
        return [rest[offset + width * i: offset + width * (i + 1)].decode("latin-1").strip() for i in range(ns)]

    def numbers(offset: int, width: int, name: str, kind: type) -> np.ndarray:
        texts = column(offset, width)
        return np.array([field(t.encode("latin-1"), f"{name} of signal {i} ({labels[i]!r})", kind)
                         for i, t in enumerate(texts)], dtype=np.float64 if kind is float else np.int64)

    labels = column(0, 16)
    off = ns * (16 + 80)
    units = column(off, 8)
    phys_min = numbers(off + ns * 8, 8, "physical minimum", float)
    phys_max = numbers(off + ns * 16, 8, "physical maximum", float)
    dig_min = numbers(off + ns * 24, 8, "digital minimum", float)
    dig_max = numbers(off + ns * 32, 8, "digital maximum", float)
    samples = numbers(off + ns * 40 + ns * 80, 8, "samples per record", int)
    reserved = fixed[192:236].decode("ascii", errors="replace").strip()
    hdr = EdfHeader(ns, n_records, duration, header_bytes, labels, units, phys_min, phys_max, dig_min, dig_max,
                    samples, reserved, fixed[168:176].decode("ascii", "replace"), fixed[176:184].decode("ascii", "replace"))
    if (samples <= 0).any():
        i = int(np.flatnonzero(samples <= 0)[0])
        raise DataFormatError(f"{path}: signal {i} ({labels[i]!r}) has {samples[i]} samples per data record")
    data_idx = hdr.data_signals()
    if not duration > 0 and data_idx:
        raise DataFormatError(f"{path}: header field 'duration of a data record' is {duration}: no sampling rate "
                              f"can be derived")
    for i in data_idx:
        if phys_min[i] == phys_max[i]:
            raise DataFormatError(f"{path}: signal {i} ({labels[i]!r}) has equal physical minimum and maximum "
                                  f"({phys_min[i]:g}): its values cannot be scaled")
        if dig_min[i] == dig_max[i]:
            raise DataFormatError(f"{path}: signal {i} ({labels[i]!r}) has equal digital minimum and maximum "
                                  f"({dig_min[i]:g}): its values cannot be scaled")
    record_bytes = int(samples.sum()) * bps
    if n_records < 0:  # -1: unknown (written while recording); derive it from the size
        data_bytes = size - header_bytes
        if n_records != -1 or data_bytes % record_bytes:
            raise DataFormatError(
                f"{path}: header says {n_records} data records (unknown) and the file's {data_bytes} data bytes are "
                f"not a whole number of {record_bytes}-byte records: the file is cut"
            )
        return replace(hdr, n_records=data_bytes // record_bytes)
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
    return hdr


def check_edf_header(path: str | Path) -> dict[str, int | float]:
    """Check an EDF/BDF header (see :func:`read_edf_header`); returns its main fields as a dict."""
    return read_edf_header(path).as_dict()


#: Unit prefixes the NumPy reader scales to volts, as MNE does.
_TO_VOLT = {"uv": 1e-6, "µv": 1e-6, "mv": 1e-3, "v": 1.0, "nv": 1e-9}
_STIM_NAMES = ("status", "trigger", "sti")


def _parse_tals(raw: bytes, path: Path) -> tuple[list[float], list[float], list[str], float | None]:
    """EDF+ time-stamped annotation lists of one data record: (onsets, durations, texts, record start)."""
    onsets, durations, texts, start = [], [], [], None
    for tal in raw.split(b"\x00"):
        if not tal.strip(b"\x00"):
            continue
        parts = tal.split(b"\x14")
        timing = parts[0].split(b"\x15")
        try:
            onset = float(timing[0])
            duration = float(timing[1]) if len(timing) > 1 and timing[1] else 0.0
        except ValueError:
            raise DataFormatError(f"{path}: malformed EDF+ annotation {tal[:40]!r}") from None
        names = [p.decode("utf-8", errors="replace") for p in parts[1:] if p]
        if not names and start is None:
            start = onset  # the record's time-keeping annotation
        for name in names:
            onsets.append(onset)
            durations.append(duration)
            texts.append(name)
    return onsets, durations, texts, start


def _meas_date(hdr: EdfHeader) -> str | None:
    import datetime

    try:
        d, m, y = (int(x) for x in hdr.startdate.split("."))
        hh, mm, ss = (int(x) for x in hdr.starttime.split("."))
        year = 1900 + y if y >= 85 else 2000 + y
        return str(datetime.datetime(year, m, d, hh, mm, ss, tzinfo=datetime.timezone.utc))
    except ValueError:
        return None


def _fast_path_ok(path: Path, hdr: EdfHeader, ch_types: dict[str, str] | None) -> bool:
    """Whether the NumPy reader reads this file exactly as MNE would (else MNE reads it)."""
    data = hdr.data_signals()
    labels = [hdr.labels[i] for i in data]
    return (path.suffix.lower() == ".edf" and hdr.reserved != "EDF+D" and bool(data)
            and len({int(hdr.samples[i]) for i in data}) == 1 and len(set(labels)) == len(labels)
            and all(hdr.units[i].lower() in _TO_VOLT for i in data)
            and not any(lab.lower().startswith(_STIM_NAMES) for lab in labels)
            and not ch_types)


def edf_physical(path: str | Path, hdr: EdfHeader | None = None) -> tuple[np.ndarray, list[str], np.memmap]:
    """Physical values in volts, float64 ``(n_signals, n_samples)``, of a file the NumPy reader
    takes (see :func:`read_edf`), its data signal names and the memory map of its records."""
    path = Path(path)
    hdr = hdr or read_edf_header(path)
    rec = np.memmap(path, dtype="<i2", mode="r", offset=hdr.header_bytes,
                    shape=(hdr.n_records, hdr.samples_per_record))
    starts = hdr.record_offsets()
    data_idx = hdr.data_signals()
    n = int(hdr.samples[data_idx[0]])
    out = np.empty((len(data_idx), hdr.n_records * n), dtype=np.float64)
    for row, i in enumerate(data_idx):
        digital = rec[:, starts[i]: starts[i + 1]].reshape(-1)
        cal = (hdr.phys_max[i] - hdr.phys_min[i]) / (hdr.dig_max[i] - hdr.dig_min[i])
        offset = hdr.phys_min[i] - hdr.dig_min[i] * cal
        scale = _TO_VOLT[hdr.units[i].lower()]
        np.multiply(digital, cal * scale, out=out[row])
        out[row] += offset * scale
    return out, [hdr.labels[i] for i in data_idx], rec


def _read_edf_numpy(path: Path, hdr: EdfHeader, allow_nan: bool) -> Recording:
    """Read a continuous EDF/EDF+ file with one rate for all data signals through a memory map."""
    out, names, rec = edf_physical(path, hdr)
    starts = hdr.record_offsets()
    n = out.shape[1] // hdr.n_records
    data = out.astype(np.float32)
    if not allow_nan:
        check_finite(data, names, path)
    onsets, durations, texts, first = [], [], [], None
    for i in hdr.annotation_signals():
        raw = np.asarray(rec[:, starts[i]: starts[i + 1]]).view(np.uint8)
        for r in range(hdr.n_records):
            o, d, t, start = _parse_tals(raw[r].tobytes(), path)
            if first is None and start is not None:
                first = start
            onsets += o
            durations += d
            texts += t
    first = first or 0.0
    events = Events.from_lists(np.asarray(onsets, dtype=np.float64) - first, durations, texts)
    return Recording(
        data=data, sfreq=n / hdr.record_duration, ch_names=names, ch_types=["eeg"] * len(names),
        units=[UNITS["eeg"]] * len(names), events=events, source=str(path),
        meta={"format": "EDF", "meas_date": _meas_date(hdr)},
    )


def read_edf(
    path: str | Path,
    *,
    ch_types: dict[str, str] | None = None,
    allow_nan: bool = False,
    engine: str = "auto",
) -> Recording:
    """Read an EDF/EDF+/BDF/GDF file.

    Signals come back as float32 ``(n_channels, n_samples)``: volts for EEG/EMG/EOG, millivolts
    for ECG. EDF+/BDF+/GDF annotations become ``Recording.events`` (onsets in seconds).
    ``ch_types`` maps channel names to types where the file does not say.

    ``engine="auto"`` reads continuous EDF/EDF+ files whose data signals share one rate through a
    NumPy memory map (the same physical values and annotations as MNE, several times faster; see
    ``benchmarks/edf_speed.py``) and everything else (BDF, GDF, EDF+D, mixed rates, stim channels)
    through MNE; ``engine="mne"`` always uses MNE.
    """
    import mne

    path = existing_file(path)
    suffix = path.suffix.lower()
    if suffix in _BYTES_PER_SAMPLE:
        hdr = read_edf_header(path)
        if engine != "mne" and _fast_path_ok(path, hdr, ch_types):
            return _read_edf_numpy(path, hdr, allow_nan)
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
