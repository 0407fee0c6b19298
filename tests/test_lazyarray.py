"""ConcatRows: the batch gather (threaded for big batches) and the recycled batch buffers."""

from __future__ import annotations

import numpy as np
import torch

from biodecode import lazyarray
from biodecode.lazyarray import ConcatRows, batch_buffer
from biodecode.training.data import make_loader


def _parts(rng, sizes=(7, 11, 5), shape=(16, 300)):
    return [rng.standard_normal((n, *shape)).astype(np.float32) for n in sizes]


def test_gather_equals_concatenate_serial_and_threaded(rng, monkeypatch):
    parts = _parts(rng)
    full = np.concatenate(parts)
    rows = rng.permutation(len(full))[:19]
    for threshold in (1 << 40, 0):  # never and always split between copy threads
        monkeypatch.setattr(lazyarray, "_PARALLEL_BYTES", threshold)
        X = ConcatRows(parts)
        np.testing.assert_array_equal(X[rows], full[rows])
        np.testing.assert_array_equal(X.take(rows[::-1])[np.arange(5)], full[rows[::-1][:5]])
        np.testing.assert_array_equal(X[3], full[3])


def test_a_held_batch_is_never_overwritten(rng):
    parts = _parts(rng)
    full = np.concatenate(parts)
    X = ConcatRows(parts)
    a = X[np.arange(8)]
    t = torch.from_numpy(X[np.arange(8, 16)])  # held only through a tensor
    v = X[np.arange(16, 20)][1:]  # held only through a view
    for _ in range(10):
        X[np.arange(8)[::-1]]
    np.testing.assert_array_equal(a, full[:8])
    np.testing.assert_array_equal(t.numpy(), full[8:16])
    np.testing.assert_array_equal(v, full[17:20])


def test_released_buffers_are_reused():
    first = batch_buffer((3, 4), np.float32)
    addr = first.ctypes.data
    del first
    again = batch_buffer((3, 4), np.float32)
    assert again.ctypes.data == addr
    other = batch_buffer((3, 4), np.float32)  # `again` is held: a new one
    assert other.ctypes.data != addr and batch_buffer((3, 5), np.float64).shape == (3, 5)


def test_loader_epoch_serves_every_window_once_with_its_label(rng):
    parts = _parts(rng, sizes=(40, 25, 35), shape=(64, 480))  # 123 KB windows: the threaded path
    full = np.concatenate(parts)
    y = np.arange(len(full))
    batches = list(make_loader(ConcatRows(parts), y, 16, shuffle=True, seed=1))  # all batches held at once
    got_y = np.concatenate([yb.numpy() for _, yb in batches])
    assert sorted(got_y.tolist()) == y.tolist()
    for xb, yb in batches:
        np.testing.assert_array_equal(xb.numpy(), full[yb.numpy()])
