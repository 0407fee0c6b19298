"""A read-only, lazily indexed concatenation of arrays along the first axis.

A :class:`ConcatRows` stands in for ``np.concatenate(parts)`` without reading the parts: the store
hands one memory map per recording, and a window set over a dataset larger than memory indexes
them in place. Indexing with an integer, slice, integer array or boolean mask returns a NumPy array
of just those rows; :meth:`take` returns another lazy view (no rows read), which is how subsets and
folds stay lazy until a batch is drawn.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
from .errors import DataFormatError

_PARALLEL_BYTES = 4 << 20  # a batch at least this big is copied by several threads
_COPY_THREADS = min(3, (os.cpu_count() or 1) - 1)  # one per core beyond the caller's, at most 3
_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _copy_pool() -> ThreadPoolExecutor | None:
    """The process-wide pool of ``_COPY_THREADS`` copy threads, made again after a fork
    (DataLoader workers); ``None`` on one core."""
    global _pool
    if _COPY_THREADS < 1:
        return None
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(_COPY_THREADS, thread_name_prefix="biodecode-gather"))
        return _pool[1]


class _Recycler:
    """Batch-sized output arrays handed out again once no one holds them.

    A fresh multi-megabyte array per batch comes from ``mmap`` and costs a page fault per 4 KiB
    page, which takes as long as the copy that fills it; the loader's batches all have one shape,
    so a few buffers serve a whole epoch. A buffer is reused only when this list holds the last
    reference to it (a tensor made with ``torch.from_numpy``, or any view, holds one).
    """

    def __init__(self, keep: int = 4, max_bytes: int = 256 << 20):
        self.keep, self.max_bytes = keep, max_bytes
        self._bufs: list[np.ndarray] = []
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        if int(np.prod(shape)) * dtype.itemsize > self.max_bytes:
            return np.empty(shape, dtype)
        with self._lock:
            for i in range(len(self._bufs)):
                # references: the list, and getrefcount's own argument
                if sys.getrefcount(self._bufs[i]) == 2 and self._bufs[i].shape == shape and self._bufs[i].dtype == dtype:
                    return self._bufs[i]
            out = np.empty(shape, dtype)
            self._bufs.append(out)
            if len(self._bufs) > self.keep:
                self._bufs.pop(0)
            return out


_recycler = _Recycler()


def batch_buffer(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised array for one batch (``np.empty`` semantics), reusing a batch buffer of
    the same shape that nothing references any more."""
    return _recycler.empty(tuple(shape), dtype)


class ConcatRows:
    """Rows ``index`` of the virtual concatenation of ``parts`` (each ``(n_i, *shape)``, one dtype).

    ``shape``, ``dtype``, ``ndim``, ``len()`` and ``np.asarray()`` behave as for the concatenated
    array; ``x[key]`` reads only the rows asked for, in the order asked.
    """

    def __init__(self, parts: Sequence[np.ndarray], index: np.ndarray | None = None):
        parts = list(parts)
        if not parts:
            raise DataFormatError("ConcatRows: no parts")
        tail, dtype = parts[0].shape[1:], parts[0].dtype
        for p in parts[1:]:
            if p.shape[1:] != tail or p.dtype != dtype:
                raise DataFormatError(f"ConcatRows: part {p.shape} {p.dtype} does not match {parts[0].shape} {dtype}")
        self.parts = parts
        # plain ndarray views of the parts (no copy): indexing a np.memmap row builds a memmap
        # object each time, which costs as much as copying a small window
        self._views = [np.asarray(p) for p in parts]
        self._offsets = np.cumsum([0] + [len(p) for p in parts])
        total = int(self._offsets[-1])
        self.index = np.arange(total, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
        self.dtype = dtype
        self.shape = (len(self.index), *tail)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, key) -> np.ndarray:
        if isinstance(key, tuple):
            raise IndexError("ConcatRows.take: give rows only (an integer array, mask or slice)")
        return self.index[key]

    def take(self, key) -> "ConcatRows":
        """A lazy view of rows ``key`` (integer array, mask or slice): nothing is read."""
        return ConcatRows(self.parts, np.atleast_1d(self._rows(key)))

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        shape = (len(rows), *self.shape[1:])
        out = batch_buffer(shape, self.dtype) if len(rows) <= 4096 else np.empty(shape, self.dtype)
        if len(rows) == 0:
            return out
        which = np.searchsorted(self._offsets, rows, side="right") - 1
        local = rows - self._offsets[which]
        if len(rows) <= 4096:  # a batch: one copy per row straight from the map into the output
            self._copy_rows(out, which.tolist(), local.tolist())
            return out
        for part in np.unique(which):
            sel = np.flatnonzero(which == part)
            order = np.argsort(local[sel], kind="stable")  # ascending reads are fastest on a memory map
            out[sel[order]] = self._views[part][local[sel][order]]
        return out

    def _copy_rows(self, out: np.ndarray, which: list[int], local: list[int]) -> None:
        """``out[i] = part[which[i]][local[i]]``; a big batch is split between copy threads (NumPy
        releases the GIL while it copies, and one thread does not fill the memory bus)."""
        views = self._views

        def copy(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                out[i] = views[which[i]][local[i]]

        pool = _copy_pool() if out.nbytes >= _PARALLEL_BYTES and len(out) > 1 else None
        if pool is None:
            copy(0, len(out))
            return
        k = min(_COPY_THREADS + 1, len(out))
        bounds = [len(out) * j // k for j in range(k + 1)]
        jobs = [pool.submit(copy, bounds[j], bounds[j + 1]) for j in range(1, k)]
        copy(bounds[0], bounds[1])
        for j in jobs:
            j.result()

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):  # rows first, then the other axes on what was read
            if not key:
                return np.asarray(self)
            head, rest = key[0], key[1:]
            got = self[head]
            return got[rest] if np.ndim(self.index[head]) == 0 else got[(slice(None), *rest)]
        rows = self._rows(key)
        if np.ndim(rows) == 0:
            r = int(rows)
            part = int(np.searchsorted(self._offsets, r, side="right") - 1)
            return np.asarray(self._views[part][r - self._offsets[part]])
        return self._gather(np.asarray(rows))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._gather(self.index)
        return out.astype(dtype, copy=False) if dtype is not None else out

    def __repr__(self) -> str:
        return f"ConcatRows(shape={self.shape}, dtype={self.dtype}, parts={len(self.parts)})"


def take_rows(X, key):
    """``X[key]`` that stays lazy for lazy row views (:class:`ConcatRows`, or anything else with a
    row-wise ``take``) and is a plain index for arrays."""
    if isinstance(X, np.ndarray) or not hasattr(X, "take"):
        return X[key]
    return X.take(key)
