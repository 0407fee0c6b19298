"""Standard 10-05 electrode names and positions (from MNE's template montage)."""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
from .errors import ConfigError


@lru_cache(maxsize=1)
def _montage():
    import mne

    # MNE >= 1.13 renames the template; older versions only know the old name.
    for name in ("colin27_1005", "standard_1005"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                return mne.channels.make_standard_montage(name)
        except ValueError:
            continue
    raise ConfigError("MNE has no standard 10-05 montage")


@lru_cache(maxsize=1)
def standard_names() -> dict[str, str]:
    """Lower-case name -> canonical spelling, e.g. ``"fc5" -> "FC5"``."""
    return {n.lower(): n for n in _montage().ch_names}


def standard_positions() -> dict[str, np.ndarray]:
    """Canonical name -> 3-D head position in metres."""
    return _montage().get_positions()["ch_pos"]


def standardize_channel_name(name: str) -> str:
    """``'Fc5.'`` -> ``'FC5'``, ``'Cz..'`` -> ``'Cz'``: the 10-05 spelling, dots stripped."""
    bare = name.strip().rstrip(".")
    return standard_names().get(bare.lower(), bare)
