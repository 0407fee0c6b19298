"""First load (read EDF, preprocess, cut windows, write cache) vs second load (cache hit).

    python -m benchmarks.cache_speed [--data-dir DIR] [--subjects 1] [--repeats 5]

Uses PhysioNet MI left/right imagery (runs 4, 8, 12) with a 4-38 Hz band-pass. Prints the median
of each and the ratio. Each repeat starts from an empty cache folder.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

from biodecode.loading import load_windows


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="data root (default: $BIODECODE_DATA_DIR or the user cache)")
    ap.add_argument("--subjects", type=int, nargs="+", default=[1])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    pre = [{"name": "bandpass", "l_freq": 4.0, "h_freq": 38.0}]
    first, second = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            kw = dict(preprocessing=pre, data_dir=args.data_dir, cache_dir=cache)
            t0 = time.perf_counter()
            ws = load_windows("physionet-mi", args.subjects, "left-right-imagery", **kw)
            t1 = time.perf_counter()
            ws2 = load_windows("physionet-mi", args.subjects, "left-right-imagery", **kw)
            np.asarray(ws2.X).sum()  # touch every page of the memory map: a fair "delivered" time
            t2 = time.perf_counter()
            first.append(t1 - t0)
            second.append(t2 - t1)
    f, s = statistics.median(first), statistics.median(second)
    print(f"windows: {ws.X.shape} from subjects {args.subjects}")
    print(f"first load (EDF + preprocessing + windowing + cache write): {f * 1e3:8.1f} ms  (median of {args.repeats})")
    print(f"second load (cache hit, arrays fully read):                {s * 1e3:8.1f} ms")
    print(f"speed-up: {f / s:.1f}x")
    return {"first_s": f, "second_s": s, "ratio": f / s}


if __name__ == "__main__":
    main()
