"""Readers that turn files into :class:`~biodecode.recording.Recording`.

``read(path)`` picks the reader from the file: EDF/BDF/GDF through MNE, WFDB through wfdb,
CSV/TXT and NPY (which need ``sfreq=``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DataFormatError
from ..recording import Recording
from .arrays import read_csv, read_npy
from .edf import check_edf_header, read_edf
from .wfdb_io import read_annotations, read_wfdb

__all__ = ["read", "read_edf", "read_wfdb", "read_annotations", "read_csv", "read_npy", "check_edf_header"]

_BY_SUFFIX = {
    ".edf": read_edf,
    ".bdf": read_edf,
    ".gdf": read_edf,
    ".hea": read_wfdb,
    ".dat": read_wfdb,
    ".csv": read_csv,
    ".txt": read_csv,
    ".tsv": read_csv,
    ".npy": read_npy,
}


def read(path: str | Path, **kwargs: Any) -> Recording:
    """Read any supported file; keyword arguments go to the chosen reader.

    A path without extension is taken as a WFDB record when ``<path>.hea`` exists.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _BY_SUFFIX and path.with_name(path.name + ".hea").is_file():
        return read_wfdb(path, **kwargs)
    if suffix not in _BY_SUFFIX:
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        raise DataFormatError(
            f"{path}: unknown file type {suffix or '(no extension)'!r}; supported: "
            f"{', '.join(sorted(_BY_SUFFIX))} or a WFDB record name"
        )
    return _BY_SUFFIX[suffix](path, **kwargs)
