"""The first check of every reader: the path is an existing regular file."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataFormatError


def existing_file(path: str | Path) -> Path:
    """``path`` as a Path; FileNotFoundError when nothing is there, DataFormatError when it is a
    directory or another non-file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise DataFormatError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise DataFormatError(f"{path}: not a regular file")
    return path
