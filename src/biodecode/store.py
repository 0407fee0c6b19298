"""The window store: one entry per recording unit (a subject's recordings of a task, or one record),
keyed by what the source files hold and every parameter that made the windows, verified on read.

Layout of an entry ``<root>/<key>/``: ``X.npy`` (float32 ``(n, C, T)``, memory-mapped on read),
``y.npy`` (int64 codes into the entry's ``classes``), ``meta.npz`` (one array per metadata column)
and ``manifest.json`` (shapes, classes, sfreq, channel names, info, the SHA-256 of each array file
and a digest of the manifest itself). An entry is written into a temporary folder and renamed into
place; a reader never sees a half-written entry. Temporary folders left by killed writers are
removed. Every hit checks the manifest against the arrays; content checksums are verified the first
time an entry is used in a process (or on every read with ``verify=True``). A corrupt entry is
logged by name, removed and reported as a miss, so the caller rebuilds it: never served. Every hit
marks its entry used (the folder's modification time); :meth:`WindowStore.prune` removes entries
no request has used lately (``biodecode cache prune``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import uuid
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .windows import GROUP_COLUMNS, WindowSet

log = logging.getLogger(__name__)

#: Bumped whenever the windowing code or the entry layout changes what an entry holds.
STORE_FORMAT = 3
ENV_CACHE_DIR = "BIODECODE_CACHE_DIR"
#: A temporary folder older than this is taken as abandoned even if its writer cannot be checked.
STALE_AFTER_S = 6 * 3600
_TMP_PREFIX = ".tmp-"
_ARRAYS = ("X.npy", "y.npy", "meta.npz")
_VERIFIED: set[tuple[str, str]] = set()  # (entry path, manifest digest) checked in this process


@dataclass(frozen=True)
class EntryInfo:
    """One stored entry as :meth:`WindowStore.entries` lists it: its size on disk (bytes) and when a
    request last used it (seconds since the epoch: the entry folder's modification time, which
    every hit sets)."""

    key: str
    dataset: str
    unit: str
    n_windows: int
    bytes: int
    last_used: float


class CorruptEntry(Exception):
    """An entry failed a check; the message says which and why."""


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("biodecode")) / "windows"


def _sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def entry_key(parts: dict[str, Any]) -> str:
    """Stable hash of everything that determines an entry (sorted JSON) and the store format."""
    return hashlib.sha256(_canonical({"store_format": STORE_FORMAT, **parts}).encode()).hexdigest()[:32]


def _manifest_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in manifest.items() if k != "digest"}).encode()).hexdigest()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FileHasher:
    """SHA-256 of source files, with a fast path: a file whose size and modification time match
    the last hash recorded (under ``<root>/.filehash/``) is not read again."""

    def __init__(self, root: Path):
        self.dir = root / ".filehash"

    def digest(self, path: Path) -> str:
        st = path.stat()
        rec_path = self.dir / (hashlib.sha1(str(path.resolve()).encode()).hexdigest() + ".json")
        try:
            rec = json.loads(rec_path.read_text())
            if rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns and rec["path"] == str(path.resolve()):
                return rec["sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        sha = _sha256_file(path)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".h-")
            with os.fdopen(fd, "w") as f:
                json.dump({"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}, f)
            os.replace(tmp, rec_path)
        except OSError as exc:  # a read-only store still works, it just rehashes
            log.debug("could not record the hash of %s: %s", path, exc)
        return sha


def _metadata_arrays(meta: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for c in meta.columns:
        col = meta[c]
        if c in GROUP_COLUMNS or c == "label" or not pd.api.types.is_numeric_dtype(col):
            out[c] = np.asarray(col.astype(str).to_numpy(), dtype=str)
        else:
            out[c] = col.to_numpy(dtype=np.float64)
    return out


class WindowStore:
    """Entries on disk: ``get(key)`` -> WindowSet (memory-mapped) or None; ``put(key, ws, about)``."""

    def __init__(self, root: str | os.PathLike | None = None, *, verify: bool = False):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.verify = verify
        self.hasher = FileHasher(self.root)

    def path(self, key: str) -> Path:
        return self.root / key

    # --- maintenance -------------------------------------------------------------------------
    def clean_stale(self) -> list[Path]:
        """Remove temporary folders of writers that died (this host: the process is gone; any
        host: older than :data:`STALE_AFTER_S`). Returns what was removed."""
        removed = []
        if not self.root.is_dir():
            return removed
        host = socket.gethostname()
        for p in self.root.iterdir():
            if not p.name.startswith(_TMP_PREFIX):
                continue
            bits = p.name[len(_TMP_PREFIX):].split("~")
            try:
                age = time.time() - p.stat().st_mtime
            except OSError:
                continue
            dead = len(bits) >= 3 and bits[1] == host and bits[2].isdigit() and not pid_alive(int(bits[2]))
            if dead or age > STALE_AFTER_S:
                shutil.rmtree(p, ignore_errors=True)
                log.info("window store: removed %s, left by a writer that stopped", p.name)
                removed.append(p)
        return removed

    def entries(self) -> list[EntryInfo]:
        """Every complete entry (temporary folders and the file-hash records left out), least
        recently used first. An entry whose manifest cannot be read is listed with dataset '?'."""
        out = []
        if not self.root.is_dir():
            return out
        for p in self.root.iterdir():
            if p.name.startswith(".") or not p.is_dir():
                continue
            try:
                size = sum(f.stat().st_size for f in p.iterdir() if f.is_file())
                used = p.stat().st_mtime
            except OSError:  # removed meanwhile
                continue
            try:
                man = json.loads((p / "manifest.json").read_text())
                about, n = man.get("about", {}), int(man["shape"][0])
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                about, n = {}, 0
            out.append(EntryInfo(p.name, str(about.get("dataset", "?")), str(about.get("unit", "?")), n, size, used))
        return sorted(out, key=lambda e: e.last_used)

    def prune(self, *, older_than_s: float | None = None, max_bytes: int | None = None,
              dry_run: bool = False, entries: list[EntryInfo] | None = None) -> list[EntryInfo]:
        """Remove entries no request has used for ``older_than_s`` seconds, then the least recently
        used ones until the store holds at most ``max_bytes``; stale temporary folders go too.
        Returns the entries removed (or that would be, with ``dry_run``); ``entries``: a listing from
        :meth:`entries` just taken, so a caller that also reports what is left reads every manifest
        once. Safe beside readers and writers in other processes: an entry is renamed away in one
        step (see :meth:`remove`), a process that has it mapped keeps reading its files, and a later
        request rebuilds it."""
        if older_than_s is None and max_bytes is None:
            raise ValueError("prune: give older_than_s, max_bytes or both")
        if not dry_run:
            self.clean_stale()
        entries, now = (self.entries() if entries is None else sorted(entries, key=lambda e: e.last_used)), time.time()
        gone = [e for e in entries if older_than_s is not None and now - e.last_used > older_than_s]
        if max_bytes is not None:
            marked = {e.key for e in gone}  # a set: a store of many thousand entries stays linear
            total = sum(e.bytes for e in entries if e.key not in marked)
            for e in entries:  # least recently used first
                if total <= max_bytes:
                    break
                if e.key not in marked:
                    gone.append(e)
                    marked.add(e.key)
                    total -= e.bytes
        if not dry_run:
            for e in gone:
                self.remove(e.key)
        return gone

    def _touch(self, entry: Path) -> None:
        """Mark ``entry`` used now (its folder's modification time), for :meth:`prune`."""
        try:
            os.utime(entry)
        except OSError:  # a read-only store still serves its entries
            pass

    def remove(self, key: str) -> None:
        """Delete the entry ``key``. It is first renamed away in one step, so a reader in another
        process sees either the whole entry or none, never a half-deleted folder."""
        entry = self.path(key)
        trash = self.root / f"{_TMP_PREFIX}{key}~{socket.gethostname()}~{os.getpid()}~gone{uuid.uuid4().hex[:8]}"
        try:
            os.rename(entry, trash)
        except OSError:  # absent, or removed by another process first
            return
        shutil.rmtree(trash, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # --- read --------------------------------------------------------------------------------
    def _check(self, entry: Path, verify: bool) -> tuple[dict[str, Any], np.ndarray, np.ndarray, pd.DataFrame]:
        try:
            man = json.loads((entry / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise CorruptEntry(f"manifest unreadable ({exc})") from None
        if not isinstance(man, dict) or man.get("digest") != _manifest_digest(man):
            raise CorruptEntry("manifest does not match its digest (edited or damaged)")
        if man.get("store_format") != STORE_FORMAT or man.get("key") != entry.name:
            raise CorruptEntry(f"manifest is for key {man.get('key')} format {man.get('store_format')}")
        n, C, T = man["shape"]
        for name in _ARRAYS:
            f = entry / name
            if not f.is_file():
                raise CorruptEntry(f"{name} is missing")
            if f.stat().st_size != man["sizes"][name]:
                raise CorruptEntry(f"{name} has {f.stat().st_size} bytes, the manifest says {man['sizes'][name]}")
        first_use = (str(entry), man["digest"]) not in _VERIFIED
        if verify or first_use:
            for name in _ARRAYS:
                got = _sha256_file(entry / name)
                if got != man["sha256"][name]:
                    raise CorruptEntry(f"{name} content checksum differs from the one written with it")
        try:
            X = np.load(entry / "X.npy", mmap_mode="r") if n else np.load(entry / "X.npy")
            y = np.load(entry / "y.npy")
            with np.load(entry / "meta.npz", allow_pickle=False) as z:
                cols = {c: z[c] for c in man["columns"]}
        except Exception as exc:
            raise CorruptEntry(f"arrays unreadable ({exc})") from None
        if X.dtype != np.float32 or list(X.shape) != [n, C, T]:
            raise CorruptEntry(f"X.npy is {X.dtype} {list(X.shape)}, the manifest says float32 {[n, C, T]}")
        if y.dtype != np.int64 or y.shape != (n,):
            raise CorruptEntry(f"y.npy is {y.dtype} {y.shape}, expected int64 ({n},)")
        if n and (y.min() < 0 or y.max() >= len(man["classes"])):
            raise CorruptEntry(f"labels out of range 0..{len(man['classes']) - 1} (min {y.min()}, max {y.max()})")
        if len(man["ch_names"]) != C:
            raise CorruptEntry(f"{len(man['ch_names'])} channel names for {C} channels")
        if not (isinstance(man["sfreq"], (int, float)) and man["sfreq"] > 0):
            raise CorruptEntry(f"sampling rate {man['sfreq']!r} is not positive")
        if any(len(v) != n for v in cols.values()):
            raise CorruptEntry("metadata columns disagree with the number of windows")
        meta = pd.DataFrame({c: (v.astype(object) if v.dtype.kind == "U" else v) for c, v in cols.items()},
                            columns=man["columns"])
        if "label" in meta and n and not (meta["label"].to_numpy() == np.asarray(man["classes"], dtype=object)[y]).all():
            raise CorruptEntry("labels disagree with the metadata's class names")
        _VERIFIED.add((str(entry), man["digest"]))
        return man, X, y, meta

    def get(self, key: str, *, verify: bool | None = None) -> WindowSet | None:
        """The entry as a WindowSet, or None when absent or corrupt (a corrupt one is removed)."""
        entry = self.path(key)
        if not (entry / "manifest.json").is_file():
            if entry.exists():  # a folder with no manifest is a damaged entry
                log.warning("window store: entry %s has no manifest; removing it", key)
                self.remove(key)
            return None
        try:
            man, X, y, meta = self._check(entry, self.verify if verify is None else verify)
        except CorruptEntry as exc:
            log.warning("window store: entry %s (%s) is corrupt: %s; removing it and rebuilding",
                        key, man_label(entry), exc)
            self.remove(key)
            return None
        self._touch(entry)
        return WindowSet(X, y, meta, list(man["classes"]), float(man["sfreq"]), list(man["ch_names"]), dict(man["info"]))

    # --- write -------------------------------------------------------------------------------
    def mark_verified(self, key: str, digest: str) -> None:
        """Record that the entry ``key`` with manifest ``digest`` was just written and checksummed by
        a worker of this process, so its first read here need not hash it again."""
        _VERIFIED.add((str(self.path(key)), digest))

    def put(self, key: str, ws: WindowSet, about: dict[str, Any]) -> str:
        """Write ``ws`` under ``key`` atomically; ``about`` (what made it) goes into the manifest.
        Returns the manifest's digest."""
        entry = self.path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        tag = "~".join([key, socket.gethostname(), str(os.getpid())])
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{tag}~", dir=self.root))
        try:
            np.save(tmp / "X.npy", np.ascontiguousarray(np.asarray(ws.X), dtype=np.float32))
            np.save(tmp / "y.npy", np.asarray(ws.y, dtype=np.int64))
            cols = _metadata_arrays(ws.metadata)
            np.savez(tmp / "meta.npz", **cols)
            manifest = {"store_format": STORE_FORMAT, "key": key, "about": about, "shape": list(ws.X.shape),
                        "classes": list(ws.classes), "sfreq": float(ws.sfreq), "ch_names": list(ws.ch_names),
                        "columns": list(cols), "info": ws.info,
                        "sizes": {n: (tmp / n).stat().st_size for n in _ARRAYS},
                        "sha256": {n: _sha256_file(tmp / n) for n in _ARRAYS}}
            manifest = json.loads(_canonical(manifest))  # plain JSON types, as it will be read back
            manifest["digest"] = _manifest_digest(manifest)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
            if entry.exists():
                try:  # another writer (e.g. another DDP rank) put the same entry first: keep it
                    kept = self._check(entry, verify=False)[0]
                    shutil.rmtree(tmp, ignore_errors=True)
                    return str(kept["digest"])
                except CorruptEntry:  # a stale entry that failed its checks: replace it
                    self.remove(key)
            os.rename(tmp, entry)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if (entry / "manifest.json").is_file():  # another writer renamed its copy in first
                return ""
            raise
        return manifest["digest"]


def man_label(entry: Path) -> str:
    """A human name for an entry (its dataset and unit), read leniently for log messages."""
    try:
        about = json.loads((entry / "manifest.json").read_text()).get("about", {})
        return f"{about.get('dataset')} unit {about.get('unit')}"
    except Exception:
        return "unreadable manifest"
