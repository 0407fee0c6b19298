"""biodecode: train, evaluate and deploy deep networks that classify EEG, ECG and EMG."""

from __future__ import annotations

import logging

from .errors import BiodecodeError, ConfigError, DataFormatError, DownloadError
from .recording import Events, Recording

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["BiodecodeError", "ConfigError", "DataFormatError", "DownloadError", "Events", "Recording", "__version__"]
