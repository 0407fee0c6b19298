"""The data layer at scale: cold build time (1 and 2 workers), peak memory of the build, and a warm
epoch, for synthetic-mi with 8, 32 and 100 subjects and for the real eegmmidb subjects present;
braindecode on the same EDF files (its ``preprocess(..., n_jobs, save_dir)`` and windowing, loaded
back lazily) in its own environment, side by side in the same run.

    python -m benchmarks.data_scale [--data-dir DIR] [--sizes 8 32 100] [--no-peer] [--quick]

Each measurement runs in a fresh process from an empty store; peak RSS is sampled over that
process and all its children (the build's workers) every 20 ms. "Workers" is ``n_jobs``: the
processes that build, the calling one included (``biodecode.sharedwork``). The warm epoch draws shuffled
batches of 64 windows from the stored windows into tensors, as a training loop does (best of 5
epochs on both sides).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BATCH = 64
EPOCHS = 5  # the warm rate is the best of 5 epochs (a training loop runs many), on both sides


# ------------------------------------------------------------------ memory of a process tree
def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class TreePeak:
    """Peak of the summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, every_s: float = 0.02):
        self.every_s, self.peak, self._stop = every_s, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            todo, total, seen = [os.getpid()], 0, set()
            while todo:
                p = todo.pop()
                if p in seen:
                    continue
                seen.add(p)
                total += _rss_bytes(p)
                todo += _children(p)
            self.peak = max(self.peak, total)
            time.sleep(self.every_s)

    def __enter__(self) -> "TreePeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------ one measurement (child process)
def _warm_epoch_ours(ws) -> float:
    import numpy as np

    from biodecode.training.data import make_loader

    rates = []
    for epoch in range(EPOCHS):
        loader = make_loader(ws.X, ws.y, BATCH, shuffle=True, seed=epoch)
        t0 = time.perf_counter()
        n = sum(len(xb) for xb, _ in loader)
        rates.append(n / (time.perf_counter() - t0) if n else float(np.nan))
    return max(rates)


def _copy_ceiling(ws) -> float:
    """Windows/s of the bare copy a warm epoch cannot avoid: the same shuffled batches of 64 copied
    row by row from an in-memory array into one reused buffer, split between two threads as the
    store's gather is, with no loader (best of ``EPOCHS`` epochs): the machine's memory bandwidth."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    src = np.ascontiguousarray(np.asarray(ws.X))
    out = np.empty((BATCH, *src.shape[1:]), src.dtype)

    def copy(rows, lo: int, hi: int) -> None:
        for i in range(lo, hi):
            out[i] = src[rows[i]]

    best = 0.0
    with ThreadPoolExecutor(1) as pool:
        for epoch in range(EPOCHS):
            perm = np.random.default_rng(epoch).permutation(len(src)).tolist()
            t0 = time.perf_counter()
            for b in range(0, len(perm), BATCH):
                rows = perm[b:b + BATCH]
                half = len(rows) // 2
                job = pool.submit(copy, rows, half, len(rows))
                copy(rows, 0, half)
                job.result()
            best = max(best, len(perm) / (time.perf_counter() - t0))
    return best


def measure_ours(dataset: str, subjects: list, n_jobs: int, data_dir: str | None, kwargs: dict) -> dict[str, Any]:
    from biodecode.loading import load_windows

    pre = [{"name": "bandpass", "l_freq": 4.0, "h_freq": 38.0, "causal": True}, {"name": "scale", "factor": 1e6}]
    with tempfile.TemporaryDirectory() as store:
        kw = dict(preprocessing=pre, data_dir=data_dir, cache_dir=store, n_jobs=n_jobs, dataset_kwargs=kwargs)
        with TreePeak() as peak:
            t0 = time.perf_counter()
            ws = load_windows(dataset, subjects, "left-right-imagery", **kw)
            build = time.perf_counter() - t0
        ws = load_windows(dataset, subjects, "left-right-imagery", **kw)  # a hit: memory maps
        rate = _warm_epoch_ours(ws)
        ceiling = _copy_ceiling(ws)
    return {"build_s": build, "peak_rss_mb": peak.peak / 2**20, "windows": len(ws), "warm_windows_per_s": rate,
            "copy_ceiling_per_s": ceiling}


def _child(args: argparse.Namespace) -> None:
    cmd = json.loads(args.child)
    sys.stdout.write(json.dumps(measure_ours(**cmd)) + "\n")


def run_child(**cmd: Any) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.data_scale", "--child", json.dumps(cmd)], cwd=ROOT,
                          capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"measurement {cmd} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ the peer
PEER_SCRIPT = r"""
import json, sys, tempfile, time, os, threading, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, sys.argv[2])
from data_scale import TreePeak
import mne, numpy as np, torch
from braindecode.datasets import BaseConcatDataset, RawDataset
from braindecode.datautil.serialization import load_concat_dataset
from braindecode.preprocessing import Preprocessor, create_windows_from_events, preprocess
from timing import causal_band
cmd = json.loads(sys.argv[1])
files, n_jobs = cmd["files"], cmd["n_jobs"]
with tempfile.TemporaryDirectory() as save_dir:
    with TreePeak() as peak:
        t0 = time.perf_counter()
        raws = [mne.io.read_raw_edf(f, preload=False, verbose="error") for f in files]
        ds = BaseConcatDataset([RawDataset(r, {"file": f}) for r, f in zip(raws, files)])
        sfreq = raws[0].info["sfreq"]
        preprocess(ds, [Preprocessor(causal_band, apply_on_array=True, sfreq=sfreq, l_freq=4.0, h_freq=38.0)],
                   n_jobs=n_jobs, save_dir=save_dir, overwrite=True)
        ds = load_concat_dataset(save_dir, preload=False)
        n = int(round(3.0 * sfreq))
        win = create_windows_from_events(ds, trial_start_offset_samples=0, trial_stop_offset_samples=0,
                                         window_size_samples=n, window_stride_samples=n, drop_last_window=True,
                                         mapping={"T1": 0, "T2": 1}, preload=False, n_jobs=n_jobs)
        build = time.perf_counter() - t0
    rate = 0.0
    for epoch in range(cmd["epochs"]):
        t0 = time.perf_counter()
        k = sum(len(x) for x, *_ in torch.utils.data.DataLoader(win, batch_size=64, shuffle=True))
        rate = max(rate, k / (time.perf_counter() - t0))
print(json.dumps({"build_s": build, "peak_rss_mb": peak.peak / 2**20, "windows": k, "warm_windows_per_s": rate}))
"""


def run_peer(python: Path, files: list[str], n_jobs: int) -> dict[str, Any]:
    proc = subprocess.run([str(python), "-c", PEER_SCRIPT, json.dumps({"files": files, "n_jobs": n_jobs, "epochs": EPOCHS}), str(HERE)],
                          capture_output=True, text=True, cwd=HERE)
    if proc.returncode:
        raise RuntimeError(f"braindecode measurement failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("BIODECODE_DATA_DIR", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 100])
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--quick", action="store_true", help="sizes 8 and 32 only")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args)
        return ""
    sizes = [s for s in args.sizes if not args.quick or s <= 32]
    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    say(f"Cold build, peak memory and warm epoch ({os.cpu_count()} cores; each row a fresh process, empty store).\n")
    say("| data | workers | windows | cold build (s) | peak RSS (MB) | warm epoch (windows/s) |")
    say("|---|---|---|---|---|---|")
    syn: dict[tuple[int, int], dict] = {}
    for n in sizes:
        for jobs in (1, 2):
            r = run_child(dataset="synthetic-mi", subjects=list(range(1, n + 1)), n_jobs=jobs, data_dir=None,
                          kwargs={"n_subjects": n})
            syn[(n, jobs)] = r
            say(f"| synthetic-mi, {n} subjects | {jobs} | {r['windows']} | {r['build_s']:.1f} | {r['peak_rss_mb']:.0f} "
                f"| {r['warm_windows_per_s']:.0f} |")
    say()
    for small, big in ((8, 32), (32, 100)):
        if (small, 1) in syn and (big, 1) in syn:
            say(f"Peak RSS {big} / {small} subjects (1 worker): "
                f"{syn[(big, 1)]['peak_rss_mb'] / syn[(small, 1)]['peak_rss_mb']:.2f}x; (2 workers): "
                f"{syn[(big, 2)]['peak_rss_mb'] / syn[(small, 2)]['peak_rss_mb']:.2f}x")
    say("(With 2 workers a build starts its second process only when the work left pays for its start-up, "
        "about 1 s: 8 synthetic subjects and the 14 real ones build in the calling process alone.)")
    for n in sizes:
        if (n, 2) in syn:
            say(f"Speed-up of 2 workers over 1, {n} subjects: {syn[(n, 1)]['build_s'] / syn[(n, 2)]['build_s']:.2f}x")
    eeg = Path(args.data_dir) / "eegmmidb"
    subjects = sorted(int(p.name[1:]) for p in eeg.glob("S[0-9][0-9][0-9]") if p.is_dir())
    if not subjects:
        say(f"\nNo eegmmidb subjects under {args.data_dir}; the real-data rows are skipped.")
        return "\n".join(lines)
    files = [str(eeg / f"S{s:03d}" / f"S{s:03d}R{r:02d}.edf") for s in subjects for r in (4, 8, 12)]
    peer_py = HERE / ".peer-venv" / "bin" / "python"
    peer = None
    if not args.no_peer:
        subprocess.run(["bash", str(HERE / "setup_peer.sh")], check=True)
        peer = peer_py
    say(f"\nReal EEG: PhysioNet MI, {len(subjects)} subjects, runs 4/8/12 ({len(files)} EDF files), "
        f"4-38 Hz causal band-pass, 3 s windows.\n")
    say("| workers | biodecode build (s) | braindecode build (s) | ratio | biodecode warm (win/s) | "
        "braindecode warm (win/s) | ratio | peak RSS ours / peer (MB) |")
    say("|---|---|---|---|---|---|---|---|")
    for jobs in (1, 2):
        a = run_child(dataset="physionet-mi", subjects=subjects, n_jobs=jobs, data_dir=args.data_dir, kwargs={})
        b = run_peer(peer, files, jobs) if peer else None
        if b:
            say(f"| {jobs} | {a['build_s']:.2f} | {b['build_s']:.2f} | {b['build_s'] / a['build_s']:.2f}x | "
                f"{a['warm_windows_per_s']:.0f} | {b['warm_windows_per_s']:.0f} | "
                f"{a['warm_windows_per_s'] / b['warm_windows_per_s']:.1f}x | {a['peak_rss_mb']:.0f} / {b['peak_rss_mb']:.0f} |")
        else:
            say(f"| {jobs} | {a['build_s']:.2f} | (not run) | | {a['warm_windows_per_s']:.0f} | | | {a['peak_rss_mb']:.0f} |")
    say("\nRatios: peer time / our time for the build, our rate / peer rate for the warm epoch (above 1: we are faster).")
    say(f"Copy ceiling of this machine (the same batches copied from memory by two threads, no loader): "
        f"{a['copy_ceiling_per_s']:.0f} windows/s; our warm epoch is {a['warm_windows_per_s'] / a['copy_ceiling_per_s']:.0%} of it.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
