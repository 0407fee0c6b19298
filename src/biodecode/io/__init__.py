"""Readers that turn files into :class:`~biodecode.recording.Recording`.

``read(path)`` picks the reader from the file: EDF/BDF/GDF through MNE, WFDB through wfdb,
CSV/TXT and NPY (which need ``sfreq=``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataFormatError
from ..recording import Recording
from .arrays import read_csv, read_npy
from .edf import check_edf_header, read_edf
from .paths import existing_file
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
        reader = read_wfdb
    else:
        existing_file(path)
        if suffix not in _BY_SUFFIX:
            raise DataFormatError(
                f"{path}: unknown file type {suffix or '(no extension)'!r}; supported: "
                f"{', '.join(sorted(_BY_SUFFIX))} or a WFDB record name"
            )
        reader = _BY_SUFFIX[suffix]
    takes = inspect.signature(reader).parameters
    unknown = sorted(k for k in kwargs if k not in takes)
    if unknown:
        raise ConfigError(f"{path}: the {reader.__name__} reader takes no {unknown} "
                          + ("(EDF/BDF/GDF and WFDB files carry their own sampling rate)" if "sfreq" in unknown else
                             f"(it takes {sorted(k for k in takes if k != 'path')})"))
    return reader(path, **kwargs)
