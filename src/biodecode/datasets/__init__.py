"""Public datasets: a registry of :class:`Dataset` classes by name.

>>> ds = get_dataset("physionet-mi")            # data root from BIODECODE_DATA_DIR or the cache
>>> recs = ds.load(subjects=[1], task="left-right-imagery")
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Dataset, Task
from .download import data_root, download_file
from .bids import BIDSDataset
from .cinc2017 import CinC2017
from .mitdb import MITBIH
from .myo_longterm import MyoLongTerm
from .physionet_mi import PhysionetMI
from .synthetic import SyntheticMI
from .uci_emg import UCIEMGGestures

_REGISTRY: dict[str, type[Dataset]] = {}


def register_dataset(cls: type[Dataset]) -> type[Dataset]:
    """Add a Dataset class to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


for _cls in (PhysionetMI, MITBIH, CinC2017, MyoLongTerm, UCIEMGGestures, SyntheticMI, BIDSDataset):
    register_dataset(_cls)


def list_datasets() -> list[str]:
    return sorted(_REGISTRY)


def dataset_class(name: str) -> type[Dataset]:
    """The registered class of ``name`` (its description and signal, without instantiating it)."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown dataset {name!r}; available: {list_datasets()}")
    return _REGISTRY[name]


def get_dataset(name: str, **kwargs: Any) -> Dataset:
    """Instantiate a registered dataset; kwargs go to its constructor (``path``, ``download``...).
    ``moabb:<Name>`` is any MOABB dataset (:mod:`biodecode.datasets.moabb_bridge`)."""
    if name.startswith("moabb:"):
        from .moabb_bridge import MOABBDataset

        return MOABBDataset(name.split(":", 1)[1], **kwargs)
    if name not in _REGISTRY:
        raise ConfigError(f"unknown dataset {name!r}; available: {list_datasets()}")
    return _REGISTRY[name](**kwargs)


__all__ = ["Dataset", "Task", "dataset_class", "get_dataset", "list_datasets", "register_dataset", "data_root", "download_file"]
