"""A read-only, lazily indexed concatenation of arrays along the first axis.

A :class:`ConcatRows` stands in for ``np.concatenate(parts)`` without reading the parts: the store
hands one memory map per recording, and a window set over a dataset larger than memory indexes
them in place. Indexing with an integer, slice, integer array or boolean mask returns a NumPy array
of just those rows; :meth:`take` returns another lazy view (no rows read), which is how subsets and
folds stay lazy until a batch is drawn.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from .errors import DataFormatError


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
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        if len(rows) == 0:
            return out
        which = np.searchsorted(self._offsets, rows, side="right") - 1
        local = rows - self._offsets[which]
        if len(rows) <= 4096:  # a batch: one copy per row straight from the map into the output
            parts = self.parts
            for i, (p, r) in enumerate(zip(which.tolist(), local.tolist())):
                out[i] = parts[p][r]
            return out
        for part in np.unique(which):
            sel = np.flatnonzero(which == part)
            order = np.argsort(local[sel], kind="stable")  # ascending reads are fastest on a memory map
            out[sel[order]] = self.parts[part][local[sel][order]]
        return out

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
            return np.asarray(self.parts[part][r - self._offsets[part]])
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
