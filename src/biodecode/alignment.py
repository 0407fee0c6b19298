"""Per-subject (or per-session) alignment: whiten each group's windows by ``M^(-1/2)`` with M a mean
of their spatial covariances, so that every group's mean covariance becomes the identity and a model
trained on some subjects meets the next one on the same footing. It uses no labels: the test
subject's own unlabelled windows (offline) or a calibration segment (streaming) give its matrix.

- ``"euclidean"``: M the arithmetic mean (He & Wu, IEEE TBME 67(2):399, 2020).
- ``"riemannian"``: M the Riemannian (geometric) mean of the covariances (pyRiemann's
  ``mean_riemann``), i.e. Riemannian re-centring (Zanini et al., IEEE TBME 65(5):1107, 2018): each
  group's covariances are moved so their Riemannian mean is the identity. Applied to the signals
  (``x -> M^(-1/2) x`` transforms every covariance ``C -> M^(-1/2) C M^(-1/2)``), so it serves the
  networks and the covariance pipelines (ts-lr, mdm, csp) alike.

- ``"median"``: each group's median window (per channel and time sample, over its windows) is
  subtracted: a first-moment alignment for event-locked windows whose shape, not power, carries the
  class. For ECG beats it leaves each beat's deviation from the patient's typical beat, the way the
  inter-patient literature normalises RR intervals per patient: a patient whose normal beats are
  wide (bundle branch block) or odd-shaped no longer looks like another patient's ectopic beats.
  The median is taken over up to :data:`MEDIAN_ROWS` windows per group (a seeded subsample, fewer
  for long multichannel windows: :data:`MEDIAN_BYTES`), so a few ectopic beats or artefacts do not
  move it and memory stays bounded.
- ``"median-append"``: the raw windows and, as further channels named ``<channel>-median``, the
  same centred on the group's median window ``(n, 2C, T)``: the model sees the shape and its
  deviation from the patient's own typical beat.

``align_windows(ws, by="subject")`` returns a WindowSet whose ``X`` applies the matrices as rows
are read (a lazy view over the store's memory maps; nothing is copied up front).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from .errors import ConfigError, DataFormatError
from .lazyarray import take_rows
from .threads import numpy_blas_single_thread
from .windows import WindowSet

#: The methods that subtract a group's median window: for event-locked windows, not a sliding stream.
MEDIAN_METHODS = ("median", "median-append")

#: At most this many windows per group (a fixed-seed subsample) give its median window, and at most
#: :data:`MEDIAN_BYTES` of them (long multichannel windows: fewer rows, never fewer than 100).
MEDIAN_ROWS = 2000
MEDIAN_BYTES = 64 << 20

#: Added to the mean covariance's diagonal, relative to its mean eigenvalue, before inverting.
SHRINK = 1e-6


def _covariances(X: Any, batch: int) -> Iterator[np.ndarray]:
    """Each window's covariance ``x x^T / T`` (centred per channel), float64, ``batch`` windows at a
    time ``(b, C, C)``: the rows are read once, never all at once."""
    for i in range(0, len(X), batch):
        x = np.asarray(X[i:i + batch], dtype=np.float64)
        x = x - x.mean(axis=-1, keepdims=True)
        yield np.einsum("nct,ndt->ncd", x, x) / x.shape[-1]


def alignment_matrix(X: Any, method: str = "euclidean", batch: int = 256) -> np.ndarray:
    """``M^(-1/2)`` for windows ``X (n, C, T)``, M the arithmetic (``"euclidean"``) or Riemannian
    (``"riemannian"``) mean of the windows' covariances ``x x^T / T`` (each window centred per
    channel), computed in float64 over batches of rows."""
    n = len(X)
    if n == 0:
        raise DataFormatError("alignment: no windows to compute a reference covariance from")
    if method not in ("euclidean", "riemannian"):
        raise ConfigError(f"alignment: method must be euclidean or riemannian, got {method!r}")
    C = X.shape[1]
    if method == "euclidean":  # a running sum: memory does not grow with the number of windows
        R = sum(c.sum(axis=0) for c in _covariances(X, batch)) / n
    else:
        covs = np.concatenate(list(_covariances(X, batch)))
        if not np.isfinite(covs).all():
            raise DataFormatError("alignment: the windows contain NaN or inf")
        # a window of a flat or duplicated channel is singular: a touch of shrinkage keeps every one SPD
        ridge = SHRINK * np.trace(covs, axis1=1, axis2=2) / C
        covs = covs + ridge[:, None, None] * np.eye(C)
        try:
            from pyriemann.geometry.mean import mean_riemann
        except ImportError:  # pyRiemann < 0.9
            from pyriemann.utils.mean import mean_riemann

        R = mean_riemann(covs)
    if not np.isfinite(R).all():
        raise DataFormatError("alignment: the windows contain NaN or inf")
    w, V = np.linalg.eigh((R + R.T) / 2)
    w = np.maximum(w, SHRINK * max(w.mean(), np.finfo(float).tiny))
    return (V / np.sqrt(w)) @ V.T


def median_window(X: Any, max_rows: int = MEDIAN_ROWS, seed: int = 0, max_bytes: int = MEDIAN_BYTES) -> np.ndarray:
    """The median ``(C, T)`` over the windows ``X (n, C, T)`` (per channel and sample), float32, from
    at most ``max_rows`` of them (and at most ``max_bytes`` of float32 rows, but at least 100) drawn
    without replacement with ``seed`` (all of them when fewer): memory stays bounded whatever the
    group's size."""
    n = len(X)
    if n == 0:
        raise DataFormatError("alignment: no windows to compute a median window from")
    row_bytes = 4 * int(np.prod(X.shape[1:]))
    max_rows = min(max_rows, max(100, max_bytes // max(row_bytes, 1)))
    rows = np.arange(n) if n <= max_rows else np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))
    x = np.asarray(X[rows], dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataFormatError("alignment: the windows contain NaN or inf")
    return np.median(x, axis=0).astype(np.float32)


class _GroupRows:
    """A lazy row view over ``base`` ``(n, C, T)`` whose rows are transformed by their group's
    parameters when read (:meth:`_read`); ``take`` stays lazy, as
    :class:`~biodecode.lazyarray.ConcatRows` does."""

    base: Any
    group: np.ndarray
    shape: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, x: np.ndarray, g) -> np.ndarray:
        raise NotImplementedError

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, tuple):
            return self[key[0]][(slice(None), *key[1:]) if np.ndim(self.group[key[0]]) else key[1:]]
        return self._read(np.asarray(self.base[key], dtype=np.float32), self.group[key])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[np.arange(len(self))]
        return out.astype(dtype, copy=False) if dtype is not None else out


class CentredRows(_GroupRows):
    """Rows of ``base`` ``(n, C, T)`` minus their group's offset ``offsets[group[i]]`` ``(C, T)`` when
    read; with ``keep_raw`` the raw rows come first and the centred ones after them ``(n, 2C, T)``."""

    def __init__(self, base: Any, group: np.ndarray, offsets: np.ndarray, keep_raw: bool = False):
        self.base, self.group, self.offsets = base, np.asarray(group, dtype=np.int64), np.asarray(offsets, np.float32)
        self.keep_raw = keep_raw
        n, c, *rest = base.shape
        self.shape, self.dtype = (n, 2 * c if keep_raw else c, *rest), np.dtype(np.float32)

    def take(self, key) -> "CentredRows":
        return CentredRows(take_rows(self.base, key), self.group[key], self.offsets, self.keep_raw)

    def _read(self, x: np.ndarray, g) -> np.ndarray:
        centred = x - self.offsets[g]
        return np.concatenate([x, centred], axis=-2) if self.keep_raw else centred


class AlignedRows(_GroupRows):
    """Rows of ``base`` (an array or lazy view ``(n, C, T)``), each multiplied by its group's matrix
    ``mats[group[i]]`` when read."""

    def __init__(self, base: Any, group: np.ndarray, mats: np.ndarray):
        self.base, self.group, self.mats = base, np.asarray(group, dtype=np.int64), np.asarray(mats, np.float32)
        self.shape, self.dtype = tuple(base.shape), np.dtype(np.float32)

    def take(self, key) -> "AlignedRows":
        return AlignedRows(take_rows(self.base, key), self.group[key], self.mats)

    def _read(self, x: np.ndarray, g) -> np.ndarray:
        # OpenBLAS threads started here would keep spinning against torch's (3x slower training
        # steps on 2 cores): any loop that reads aligned batches next to torch, not only fit's
        with numpy_blas_single_thread():
            if np.ndim(g) == 0:
                return self.mats[int(g)] @ x
            return np.einsum("ncd,ndt->nct", self.mats[g], x, optimize=True)


def align_windows(ws: WindowSet, by: str | Sequence[str] = "subject", method: str = "euclidean") -> WindowSet:
    """``ws`` with each group of windows (``by``: a metadata column or columns, e.g. subject or
    (subject, session)) aligned by its own mean covariance (``method``: euclidean or riemannian) or
    centred on its own median window (``method="median"``; ``"median-append"`` keeps the raw channels
    and adds the centred ones after them). Labels are not used."""
    if len(ws) == 0:
        raise DataFormatError("align_windows: the window set is empty")
    check_alignment(method)
    groups = ws.groups(by)
    names, inverse = np.unique(groups, return_inverse=True)
    info = dict(ws.info, alignment={"method": method, "by": [by] if isinstance(by, str) else list(by)})
    ch_names = list(ws.ch_names)
    if method in MEDIAN_METHODS:
        offsets = np.stack([median_window(take_rows(ws.X, np.flatnonzero(inverse == g))) for g in range(len(names))])
        X: Any = CentredRows(ws.X, inverse, offsets, keep_raw=method == "median-append")
        if method == "median-append":
            ch_names += [f"{c}-median" for c in ws.ch_names]
    else:
        mats = np.stack([alignment_matrix(take_rows(ws.X, np.flatnonzero(inverse == g)), method)
                         for g in range(len(names))])
        X = AlignedRows(ws.X, inverse, mats)
    return WindowSet(X, ws.y, ws.metadata, list(ws.classes), ws.sfreq, ch_names, info)


ALIGNMENTS = ("none", "euclidean", "riemannian", *MEDIAN_METHODS)


def check_alignment(name: str) -> str:
    if name not in ALIGNMENTS:
        raise ConfigError(f"data.alignment must be one of {list(ALIGNMENTS)}, got {name!r}")
    return name
