"""On-disk cache of WindowSets: memory-mapped ``.npy`` arrays plus a JSON manifest, one folder
per key (a hash of the dataset, subjects and every preprocessing and windowing parameter).
Entries are written into a temporary folder and renamed into place, so a reader never sees a
half-written entry and an interrupted write leaves nothing behind under the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .windows import GROUP_COLUMNS, WindowSet

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
ENV_CACHE_DIR = "BIODECODE_CACHE_DIR"


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("biodecode")) / "windows"


def cache_key(spec: dict[str, Any]) -> str:
    """Stable hash of a window spec (sorted JSON) and the cache format."""
    text = json.dumps({"format": CACHE_FORMAT, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class WindowCache:
    """``get(spec)`` -> WindowSet or None; ``put(spec, ws)`` -> the stored WindowSet (memory-mapped)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, spec: dict[str, Any]) -> Path:
        return self.root / cache_key(spec)

    def get(self, spec: dict[str, Any]) -> WindowSet | None:
        entry = self.path(spec)
        manifest = entry / "manifest.json"
        if not manifest.is_file():
            return None
        try:
            man = json.loads(manifest.read_text())
            X = np.load(entry / "X.npy", mmap_mode="r")
            y = np.load(entry / "y.npy")
            meta = pd.read_csv(entry / "metadata.csv", dtype={c: str for c in GROUP_COLUMNS},
                               keep_default_na=False)
            ws = WindowSet(X, y, meta, man["classes"], man["sfreq"], man["ch_names"], man["info"])
        except Exception as exc:  # a damaged entry is a miss, never a wrong answer
            log.warning("cache entry %s is unreadable (%s); rebuilding it", entry, exc)
            return None
        if list(X.shape) != man["shape"]:
            log.warning("cache entry %s has shape %s, manifest says %s; rebuilding it", entry, X.shape, man["shape"])
            return None
        log.info("window cache hit %s", entry.name)
        return ws

    def put(self, spec: dict[str, Any], ws: WindowSet) -> WindowSet:
        entry = self.path(spec)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=self.root))
        try:
            np.save(tmp / "X.npy", np.ascontiguousarray(ws.X, dtype=np.float32))
            np.save(tmp / "y.npy", np.asarray(ws.y, dtype=np.int64))
            ws.metadata.to_csv(tmp / "metadata.csv", index=False)
            manifest = {"format": CACHE_FORMAT, "key": entry.name, "spec": spec, "shape": list(ws.X.shape),
                        "classes": list(ws.classes), "sfreq": ws.sfreq, "ch_names": list(ws.ch_names),
                        "info": ws.info}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
            if entry.exists():  # stale or concurrent entry: replace it
                shutil.rmtree(entry, ignore_errors=True)
            os.rename(tmp, entry)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if (entry / "manifest.json").is_file():  # another process won the race
                return self.get(spec) or ws
            raise
        return self.get(spec) or ws

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
