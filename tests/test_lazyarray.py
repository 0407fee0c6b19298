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


def test_rows_in_storage_order_are_copied_by_part_from_read_only_maps(rng, tmp_path, monkeypatch):
    """Ascending rows (duplicates, part boundaries, a lazy view) take the one-copy-per-part path and
    equal the concatenation; read-only memory maps are only read."""
    parts = []
    for k, p in enumerate(_parts(rng)):
        np.save(tmp_path / f"{k}.npy", p)
        parts.append(np.load(tmp_path / f"{k}.npy", mmap_mode="r"))
    full = np.concatenate(parts)
    X = ConcatRows(parts)

    def unordered(*a):
        raise AssertionError("ascending rows went through the row-by-row copy")

    monkeypatch.setattr(ConcatRows, "_copy_rows", unordered)
    rows = np.array([0, 3, 3, 6, 7, 8, 17, 18, 18, 22])  # crosses both boundaries (7, 18)
    np.testing.assert_array_equal(X[rows], full[rows])
    np.testing.assert_array_equal(np.asarray(X), full)
    view = X.take(np.array([2, 9, 20]))
    np.testing.assert_array_equal(view[np.array([0, 1, 2])], full[[2, 9, 20]])
    assert not parts[0].flags.writeable and np.array_equal(np.concatenate(parts), full)


def test_shuffled_batches_come_in_storage_order_and_prediction_keeps_the_asked_order(rng):
    """A shuffled training loader serves each batch's windows sorted by where they are stored
    (the same windows and labels, read faster); an unshuffled loader keeps the sampler's order,
    even over a view whose rows run backwards through storage."""
    parts = _parts(rng, sizes=(9, 12, 10), shape=(4, 50))
    full = np.concatenate(parts)
    y = np.arange(len(full))
    for xb, yb in make_loader(ConcatRows(parts), y, 8, shuffle=True, seed=3):
        assert np.all(np.diff(yb.numpy()) > 0)  # storage order (here y is the storage row)
        np.testing.assert_array_equal(xb.numpy(), full[yb.numpy()])
    back = np.arange(len(full))[::-1]
    view = ConcatRows(parts).take(back)
    got = np.concatenate([yb.numpy() for _, yb in make_loader(view, y[back], 8, shuffle=False)])
    np.testing.assert_array_equal(got, y[back])
    xs = np.concatenate([xb.numpy() for xb, _ in make_loader(view, y[back], 8, shuffle=False)])
    np.testing.assert_array_equal(xs, full[back])


def test_shuffled_aligned_batches_keep_each_window_with_its_label_and_matrix(rng):
    from biodecode.alignment import AlignedRows

    parts = _parts(rng, sizes=(9, 12), shape=(3, 40))
    full = np.concatenate(parts)
    group = np.repeat([0, 1], [9, 12])
    mats = rng.standard_normal((2, 3, 3)).astype(np.float32)
    X = AlignedRows(ConcatRows(parts).take(rng.permutation(len(full))), np.zeros(len(full), int), mats)
    perm = X.base.index
    X.group = group[perm]  # each row's own subject's matrix
    y = perm  # the label names the stored window
    seen = []
    for xb, yb in make_loader(X, y, 5, shuffle=True, seed=0):
        want = np.stack([mats[group[r]] @ full[r] for r in yb.numpy()])
        np.testing.assert_allclose(xb.numpy(), want, rtol=1e-5, atol=1e-5)
        assert np.all(np.diff(yb.numpy()) > 0)
        seen += yb.tolist()
    assert sorted(seen) == list(range(len(full)))


def test_a_dtype_torch_cannot_hold_is_read_row_by_row(rng):
    parts = [p.astype(">f4") for p in _parts(rng)]  # big-endian: no torch view
    full = np.concatenate(parts)
    X = ConcatRows(parts)
    np.testing.assert_array_equal(X[np.arange(3, 12)], full[3:12])
    np.testing.assert_array_equal(X[np.array([9, 1, 4])], full[[9, 1, 4]])
