"""EDF readers side by side on every EDF file in the data folder: MNE, pyEDFlib and edfio (when
installed) and biodecode's NumPy memory-map reader. Each reader's physical values (float64, volts)
are compared with MNE's; the toolkit uses the fastest reader that agrees within 1e-9 relative.

    python -m benchmarks.edf_speed [--data-dir DIR] [--repeats 3]

Prints the median time per file of each reader, the ratio to MNE and the largest relative
difference from MNE over all files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np


def _mne(path: Path) -> np.ndarray:
    import mne

    return mne.io.read_raw_edf(path, preload=True, verbose="error").get_data()


def _ours(path: Path) -> np.ndarray:
    from biodecode.io.edf import edf_physical

    return edf_physical(path)[0]


def _pyedflib(path: Path) -> np.ndarray:
    import pyedflib

    with pyedflib.EdfReader(str(path)) as f:
        keep = [i for i in range(f.signals_in_file) if f.getLabel(i) != "EDF Annotations"]
        scale = {"uV": 1e-6, "mV": 1e-3, "V": 1.0}
        return np.stack([f.readSignal(i) * scale.get(f.getPhysicalDimension(i), 1.0) for i in keep])


def _edfio(path: Path) -> np.ndarray:
    import edfio

    edf = edfio.read_edf(path)
    scale = {"uV": 1e-6, "mV": 1e-3, "V": 1.0}
    return np.stack([s.data * scale.get(s.physical_dimension, 1.0) for s in edf.signals])


READERS: dict[str, Callable[[Path], np.ndarray]] = {"mne": _mne, "pyedflib": _pyedflib, "edfio": _edfio,
                                                     "biodecode (numpy memmap)": _ours}


def main(argv: list[str] | None = None, out=print) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("BIODECODE_DATA_DIR", "../shared/data"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    files = sorted(Path(args.data_dir).rglob("*.edf"))
    if not files:
        raise SystemExit(f"no EDF files under {args.data_dir}")
    results: dict[str, dict[str, float]] = {}
    for name, reader in READERS.items():
        try:
            reader(files[0])
        except ImportError:
            out(f"{name}: not installed, skipped")
            continue
        times, worst = [], 0.0
        for f in files:
            ref = _mne(f)
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                got = reader(f)
                best = min(best, time.perf_counter() - t0)
            times.append(best)
            worst = max(worst, float(np.max(np.abs(got - ref)) / np.max(np.abs(ref))))
        results[name] = {"median_ms": statistics.median(times) * 1e3, "max_rel_diff": worst}
    base = results["mne"]["median_ms"]
    out(f"{len(files)} EDF files under {args.data_dir}; best of {args.repeats} per file, median over files")
    out(f"{'reader':28s} {'ms/file':>9s} {'vs MNE':>8s} {'max rel diff vs MNE':>20s}")
    for name, r in results.items():
        out(f"{name:28s} {r['median_ms']:9.2f} {base / r['median_ms']:7.2f}x {r['max_rel_diff']:20.2e}")
    return results


if __name__ == "__main__":
    main()
