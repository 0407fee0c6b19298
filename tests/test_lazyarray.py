"""ConcatRows: the batch gather (threaded for big batches) and the recycled batch buffers."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from biodecode import lazyarray
from biodecode.lazyarray import ConcatRows, batch_buffer
from biodecode.training.data import WindowLoader, make_loader


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


@pytest.mark.parametrize("kw", [dict(shuffle=True), dict(shuffle=False, drop_last=True), dict(shuffle=True, balanced=True)])
def test_window_loader_serves_the_batches_dataloader_would(rng, kw):
    parts = _parts(rng, sizes=(40, 25, 35), shape=(4, 30))
    y = np.arange(100) % 3
    ours = make_loader(ConcatRows(parts), y, 16, seed=5, **kw)
    theirs = make_loader(ConcatRows(parts), y, 16, seed=5, **kw)
    assert isinstance(ours, WindowLoader)
    assert inspect.isgenerator(iter(make_loader(ConcatRows(parts), y, 16, **kw)))  # the lean path, in process
    for epoch in range(2):  # the sampler's generator advances the same way across epochs
        mine = [(xb.clone(), yb.clone()) for xb, yb in ours]
        reference = [(xb.clone(), yb.clone()) for xb, yb in DataLoader.__iter__(theirs)]
        assert len(mine) == len(reference) == len(ours)
        for (xa, ya), (xb, yb) in zip(mine, reference):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_window_loader_with_workers_iterates_as_dataloader_does(rng):
    parts = _parts(rng, sizes=(10, 6), shape=(2, 8))
    loader = make_loader(ConcatRows(parts), np.zeros(16, dtype=np.int64), 4, shuffle=False, num_workers=1)
    assert not inspect.isgenerator(iter(loader))
    assert sum(len(xb) for xb, _ in loader) == 16
