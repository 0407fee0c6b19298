"""Where a warm epoch's time goes: the store's windows of the real eegmmidb subjects read as shuffled
batches of 64 through each layer of the training loader in turn, interleaved (the order reversed
every other repeat, so drift of the VM's memory bandwidth falls on every layer alike).

    python -m benchmarks.loader_layers [--data-dir DIR] [--repeats 15]

Layers, each on top of the one before: the bare row copy from the memory maps into two reused
buffers by two threads (no loader); the store's gather (``ConcatRows[rows]``); the dataset's
``__getitems__`` (labels, tensors); the batch sampler; and the whole loader, both DataLoader's own
iterator and ``WindowLoader``'s (what ``make_loader`` returns). Prints the median and range of each
layer's windows/s (best of 5 epochs per repeat) and the median ratio of WindowLoader to DataLoader's
iterator over the interleaved pairs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

BATCH, EPOCHS = 64, 5


def _best(epoch: Callable[[int], int]) -> float:
    """Windows/s of the fastest of ``EPOCHS`` epochs; ``epoch(seed)`` returns the windows served."""
    best = 0.0
    for seed in range(EPOCHS):
        t0 = time.perf_counter()
        n = epoch(seed)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def layers(ws) -> dict[str, Callable[[int], int]]:
    """One epoch function per layer over the window set ``ws`` (its ``X`` a ``ConcatRows``)."""
    from torch.utils.data import DataLoader

    from biodecode.training.data import make_loader

    X = ws.X
    part = np.searchsorted(X._offsets, X.index, side="right") - 1
    rows = [X._views[p][r - X._offsets[p]] for p, r in zip(part, X.index)]  # one view per window
    bufs = [np.empty((BATCH, *X.shape[1:]), X.dtype) for _ in range(2)]
    pool = ThreadPoolExecutor(1)

    def order(seed: int) -> np.ndarray:
        return np.random.default_rng(seed).permutation(len(X))

    def bare(seed: int) -> int:
        perm = order(seed).tolist()
        for k, b in enumerate(range(0, len(perm), BATCH)):
            out, batch = bufs[k % 2], perm[b:b + BATCH]

            def copy(lo: int, hi: int) -> None:
                for i in range(lo, hi):
                    out[i] = rows[batch[i]]

            half = len(batch) // 2
            job = pool.submit(copy, half, len(batch))
            copy(0, half)
            job.result()
        return len(perm)

    def gather(seed: int) -> int:
        perm = order(seed)
        return sum(len(X[perm[b:b + BATCH]]) for b in range(0, len(perm), BATCH))

    def dataset(seed: int) -> int:
        perm, ds = order(seed), make_loader(X, ws.y, BATCH, shuffle=True).dataset
        return sum(len(ds.__getitems__(perm[b:b + BATCH].tolist())[0]) for b in range(0, len(perm), BATCH))

    def sampler(seed: int) -> int:
        loader = make_loader(X, ws.y, BATCH, shuffle=True, seed=seed)
        return sum(len(loader.dataset.__getitems__(idx)[0]) for idx in loader.batch_sampler)

    def dataloader_iterator(seed: int) -> int:
        return sum(len(xb) for xb, _ in DataLoader.__iter__(make_loader(X, ws.y, BATCH, shuffle=True, seed=seed)))

    def window_loader(seed: int) -> int:
        return sum(len(xb) for xb, _ in make_loader(X, ws.y, BATCH, shuffle=True, seed=seed))

    return {"bare copy from the maps": bare, "+ gather (ConcatRows)": gather, "+ dataset (labels, tensors)": dataset,
            "+ batch sampler": sampler, "+ DataLoader's iterator": dataloader_iterator, "WindowLoader": window_loader}


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("BIODECODE_DATA_DIR",
                                                         str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    from biodecode.loading import load_windows

    subjects = sorted(int(p.name[1:]) for p in (Path(args.data_dir) / "eegmmidb").glob("S[0-9][0-9][0-9]"))
    pre = [{"name": "bandpass", "l_freq": 4.0, "h_freq": 38.0, "causal": True}, {"name": "scale", "factor": 1e6}]
    with tempfile.TemporaryDirectory() as store:
        kw = dict(preprocessing=pre, data_dir=args.data_dir, cache_dir=store)
        load_windows("physionet-mi", subjects, "left-right-imagery", **kw)
        ws = load_windows("physionet-mi", subjects, "left-right-imagery", **kw)  # a hit: memory maps
        fns = layers(ws)
        rates: dict[str, list[float]] = {name: [] for name in fns}
        for rep in range(args.repeats):
            for name in (list(fns) if rep % 2 == 0 else list(fns)[::-1]):
                rates[name].append(_best(fns[name]))
    lines = [f"{len(ws)} windows of {ws.X.shape[1]} x {ws.X.shape[2]} float32 ({len(subjects)} eegmmidb subjects), "
             f"batches of {BATCH}, {args.repeats} interleaved repeats, best of {EPOCHS} epochs each (windows/s):", ""]
    lines += [f"{name:30s} median {np.median(v):8.0f}  ({min(v):.0f}-{max(v):.0f})" for name, v in rates.items()]
    ratio = np.median(np.array(rates["WindowLoader"]) / np.array(rates["+ DataLoader's iterator"]))
    lines += ["", f"WindowLoader / DataLoader's iterator, median over the pairs: {ratio:.3f}"]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
