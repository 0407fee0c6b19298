"""Batches straight from (memory-mapped) window arrays: one fancy-index per batch, not one
Python call per window."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from ..lazyarray import ConcatRows, batch_buffer


class WindowDataset(Dataset):
    """``X (n, C, T)`` float32 and ``y (n,)`` int64; ``__getitems__`` serves whole batches."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None = None):
        self.X = X
        self.y = np.asarray(y, dtype=np.int64) if y is not None else np.zeros(len(X), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(self.X[i], dtype=np.float32)), torch.tensor(self.y[i])

    def __getitems__(self, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        order = np.asarray(idx)
        if isinstance(self.X, ConcatRows):  # the store's lazy windows gather a batch in one pass
            return torch.from_numpy(self.X[order]), torch.from_numpy(self.y[order])
        sort = np.argsort(order)  # sorted reads are faster on a memory map
        xs = batch_buffer((len(order),) + tuple(self.X.shape[1:]), np.float32)
        xs[sort] = self.X[order[sort]]
        return torch.from_numpy(xs), torch.from_numpy(self.y[order])


def _identity(batch):
    return batch


class WindowLoader(DataLoader):
    """A DataLoader whose in-process iteration (``num_workers=0``) asks the dataset for each batch
    directly: ``collate_fn(dataset.__getitems__(indices))`` for every index list of the batch sampler,
    the same batches as DataLoader's own iterator without its per-batch bookkeeping (a profiler
    range, fetcher and state checks: about a tenth of a warm epoch's time, ``benchmarks/loader_layers.py``).
    With workers or pinned memory, or a dataset without ``__getitems__``, it iterates as DataLoader
    does. Lightning rebuilds it with a DistributedSampler under DDP as it rebuilds any DataLoader.
    """

    def __iter__(self):
        if self.num_workers > 0 or self.pin_memory or self.batch_sampler is None \
                or not hasattr(self.dataset, "__getitems__"):
            return super().__iter__()
        batches = iter(self.batch_sampler)
        # DataLoader's iterator draws a worker base seed from the loader's generator before the
        # sampler draws its order; drawing it too keeps every epoch's batches the same as DataLoader's
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return self._batches(batches)

    def _batches(self, batches):
        fetch, collate = self.dataset.__getitems__, self.collate_fn
        for indices in batches:
            yield collate(fetch(indices))


def balanced_sample_weights(y: np.ndarray) -> np.ndarray:
    """Per-window sampling weights ``(n,)`` that draw every class present in ``y`` equally often:
    ``1 / count`` of the window's class."""
    y = np.asarray(y, dtype=np.int64)
    counts = np.bincount(y)
    return 1.0 / counts[y]


def make_loader(X: np.ndarray, y: np.ndarray | None, batch_size: int, shuffle: bool, seed: int = 0,
                num_workers: int = 0, drop_last: bool = False, balanced: bool = False) -> WindowLoader:
    """A DataLoader whose batches come from one ``__getitems__`` call (PyTorch's batched fetch).
    ``balanced``: class-balanced sampling with replacement (``len(X)`` draws per epoch, every class
    of ``y`` equally likely; needs ``y``). Under DDP, Lightning swaps in a DistributedSampler (around
    the balanced sampler where there is one) as usual."""
    ds = WindowDataset(X, y)
    g = torch.Generator().manual_seed(seed)
    sampler = None
    if balanced:
        if y is None:
            raise ValueError("make_loader: balanced sampling needs the labels y")
        sampler = WeightedRandomSampler(torch.from_numpy(balanced_sample_weights(y)), num_samples=len(ds),
                                        replacement=True, generator=g)
    return WindowLoader(ds, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler, generator=g,
                        drop_last=drop_last, collate_fn=_identity, num_workers=num_workers)
