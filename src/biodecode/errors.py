"""Exceptions raised by biodecode. Every message names the file, channel or field at fault."""

from __future__ import annotations


class BiodecodeError(Exception):
    """Base class for biodecode errors."""


class DataFormatError(BiodecodeError, ValueError):
    """A file or array is not what it claims to be (truncated, wrong header, NaNs, ...)."""


class DownloadError(BiodecodeError, OSError):
    """A download failed or its checksum did not match."""


class ConfigError(BiodecodeError, ValueError):
    """A configuration, argument or registry name is invalid."""
