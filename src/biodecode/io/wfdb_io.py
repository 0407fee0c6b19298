"""WFDB records (``.hea`` + signal files) and their annotation files, through wfdb-python."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from ..recording import UNITS, Events, Recording, check_finite

log = logging.getLogger(__name__)

# Bits per sample of the WFDB storage formats whose size we can check from the header.
_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12, "310": 32 / 3, "311": 32 / 3}
_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3, "nv": 1e-6}


def _record_base(path: str | Path) -> Path:
    """``x/100``, ``x/100.hea`` or ``x/100.dat`` -> ``x/100``."""
    path = Path(path)
    if path.suffix.lower() in {".hea", ".dat", ".mat", ".atr"}:
        return path.with_suffix("")
    return path


def _check_signal_files(base: Path, header) -> None:
    """Compare each signal file's size with what the header's sample count implies."""
    n_samp = header.sig_len
    if not n_samp:
        return
    by_file: dict[str, list[str]] = {}
    for fname, fmt in zip(header.file_name, header.fmt):
        by_file.setdefault(fname, []).append(str(fmt))
    for fname, fmts in by_file.items():
        fpath = base.parent / fname
        if not fpath.is_file():
            raise DataFormatError(f"{base}.hea: signal file {fpath} is missing")
        if fname.endswith(".mat") or any(f not in _BITS for f in fmts):
            continue
        expected = int(np.ceil(n_samp * sum(_BITS[f] for f in fmts) / 8))
        size = os.path.getsize(fpath)
        if size < expected:
            raise DataFormatError(
                f"{fpath}: truncated or header disagrees with data: header {base}.hea says {n_samp} samples "
                f"x {len(fmts)} signals (format {fmts[0]}, {expected} bytes) but the file has {size} bytes"
            )
        if size > expected:
            raise DataFormatError(
                f"{fpath}: {size - expected} bytes more than header {base}.hea implies ({n_samp} samples x "
                f"{len(fmts)} signals, format {fmts[0]}, {expected} bytes): the header's sample count is too "
                f"small or the file has trailing bytes"
            )


def _read_header_by_hand(base: Path) -> tuple[np.ndarray, float, list[str], list[str]]:
    """Fallback for headers wfdb-python refuses (e.g. CinC 2017 writes the date before the time).

    Reads the record and signal lines of the ``.hea`` and the MATLAB v4 / format-16 signal file.
    Returns physical signals ``(n_samples, n_signals)``, fs, names, units.
    """
    from scipy.io import loadmat

    lines = [ln for ln in base.with_suffix(".hea").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    rec = lines[0].split()
    try:
        n_sig, fs, n_samp = int(rec[1]), float(rec[2].split("/")[0]), int(rec[3])
    except (IndexError, ValueError):
        raise DataFormatError(f"{base}.hea: record line {lines[0]!r} is not 'name n_sig fs n_samples ...'") from None
    if len(lines) < 1 + n_sig:
        raise DataFormatError(f"{base}.hea: header names {n_sig} signals but has {len(lines) - 1} signal lines")
    sigs, names, units = [], [], []
    for i, line in enumerate(lines[1 : 1 + n_sig]):
        tok = line.split()
        fname, fmt = tok[0], tok[1].split("+")[0]
        m = re.match(r"([-\d.eE]+)(?:\(([-\d]+)\))?(?:/(\S+))?", tok[2] if len(tok) > 2 else "200")
        gain = float(m.group(1)) if m else 200.0
        unit = (m.group(3) if m and m.group(3) else "mV")
        adc_zero = int(tok[4]) if len(tok) > 4 else 0
        baseline = int(m.group(2)) if m and m.group(2) else adc_zero
        fpath = base.parent / fname
        if not fpath.is_file():
            raise DataFormatError(f"{base}.hea: signal file {fpath} is missing")
        if fname.endswith(".mat"):
            try:
                val = np.asarray(loadmat(fpath)["val"], dtype=np.float64)
            except Exception as exc:
                raise DataFormatError(f"{fpath}: not a readable MATLAB file with variable 'val': {exc}") from exc
            digital = val[i] if val.shape[0] == n_sig else val[:, i]
        elif fmt == "16":
            raw = np.fromfile(fpath, dtype="<i2")
            digital = raw[i::n_sig].astype(np.float64)
        else:
            raise DataFormatError(f"{base}.hea: format {fmt} is not supported by the fallback reader")
        if digital.size != n_samp:
            raise DataFormatError(
                f"{fpath}: header {base}.hea says {n_samp} samples but the file holds {digital.size}"
            )
        sigs.append((digital - baseline) / gain)
        names.append(tok[8] if len(tok) > 8 else f"sig{i}")
        units.append(unit)
    return np.stack(sigs, axis=1), fs, names, units


def read_annotations(base: str | Path, annotator: str = "atr", fs: float | None = None) -> Events:
    """Read a WFDB annotation file. Labels are the beat symbols; ``extra`` holds aux notes."""
    import wfdb

    base = _record_base(base)
    apath = Path(f"{base}.{annotator}")
    if not apath.is_file():
        raise DataFormatError(f"{apath}: annotation file is missing (annotator {annotator!r} of record {base.name})")
    raw = apath.read_bytes()
    if len(raw) % 2 or raw[-2:] != b"\x00\x00":
        raise DataFormatError(f"{apath}: truncated annotation file ({len(raw)} bytes, no end-of-file marker): "
                              f"its annotations after the cut would be silently missing")
    try:
        ann = wfdb.rdann(str(base), annotator)
    except Exception as exc:
        raise DataFormatError(f"{apath}: could not be read as WFDB annotations: {exc}") from exc
    from wfdb.io.annotation import ann_label_table

    known = set(ann_label_table.symbol.tolist())
    if getattr(ann, "custom_labels", None) is not None and len(ann.custom_labels):
        known |= set(ann.custom_labels.symbol.tolist())
    bad = [i for i, s in enumerate(ann.symbol) if not isinstance(s, str) or s not in known]
    if bad:
        raise DataFormatError(f"{apath}: {len(bad)} annotation(s) with an unknown code, first at sample "
                              f"{ann.sample[bad[0]]} (symbol {ann.symbol[bad[0]]!r}); not a standard WFDB beat or "
                              f"rhythm label")
    rate = fs or ann.fs
    if not rate:
        raise DataFormatError(f"{apath}: no sampling rate to convert annotation samples to seconds")
    aux = [(a or "").rstrip("\x00").strip() for a in (ann.aux_note or [""] * len(ann.sample))]
    return Events.from_lists(np.asarray(ann.sample) / rate, np.zeros(len(ann.sample)), ann.symbol, aux)


def read_wfdb(
    path: str | Path,
    *,
    annotator: str | None = "auto",
    ch_type: str = "ecg",
    allow_nan: bool = False,
) -> Recording:
    """Read a WFDB record (``path`` with or without ``.hea``) and optionally its annotations.

    Returns float32 ``(n_signals, n_samples)``; ECG in millivolts. ``annotator="auto"`` reads
    ``<record>.atr`` when present; a named annotator must exist. Annotation onsets are seconds and
    labels are WFDB symbols (``"N"``, ``"V"``, ``"+"``...), with aux notes (``"(AFIB"``) in ``extra``.
    """
    import wfdb

    base = _record_base(path)
    hea = base.with_suffix(".hea")
    if not hea.is_file():
        raise FileNotFoundError(f"{hea}: no such WFDB header file")
    try:
        header = wfdb.rdheader(str(base))
        _check_signal_files(base, header)
        rec = wfdb.rdrecord(str(base))
        signals, fs, names, units = rec.p_signal, float(rec.fs), list(rec.sig_name), list(rec.units)
        comments = list(rec.comments)
    except DataFormatError:
        raise
    except ValueError as exc:
        log.debug("%s: wfdb refused the header (%s); reading it by hand", hea, exc)
        signals, fs, names, units = _read_header_by_hand(base)
        comments = []
    except Exception as exc:
        raise DataFormatError(f"{hea}: could not be read as a WFDB record: {exc}") from exc
    if not (fs and np.isfinite(fs) and fs > 0):
        raise DataFormatError(f"{hea}: sampling frequency is {fs!r} in the record line; it must be positive")
    data = np.asarray(signals, dtype=np.float64).T
    out_units = []
    for i, u in enumerate(units):
        scale = _TO_MV.get(str(u).strip().lower())
        if ch_type == "ecg" and scale is not None:
            data[i] *= scale
            out_units.append("mV")
        else:
            out_units.append(UNITS.get(ch_type, str(u)) if scale is not None else str(u))
    data = data.astype(np.float32)
    if not allow_nan:
        check_finite(data, names, hea)
    events = Events.empty()
    if annotator == "auto":
        annotator = "atr" if base.with_suffix(".atr").is_file() else None
    if annotator:
        events = read_annotations(base, annotator, fs)
    return Recording(
        data=data,
        sfreq=fs,
        ch_names=names,
        ch_types=[ch_type] * len(names),
        units=out_units,
        events=events,
        record=base.name,
        source=str(hea),
        meta={"format": "WFDB", "comments": comments},
    )
