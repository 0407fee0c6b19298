"""Per-subject alignment (biodecode.alignment) and the classical baselines, cross-subject.

Leave-one-subject-out on every PhysioNet MI subject in the data folder (imagined left vs right
fist, the toolkit's default windows and preprocessing), ts-lr and csp-lda without alignment, with
per-subject Euclidean alignment and with Riemannian re-centring; no setting is tuned. Prints one line per pipeline:
mean +- sd of the per-subject accuracies and the time it took.

    BIODECODE_DATA_DIR=../shared/data python -m benchmarks.alignment_accuracy
"""

from __future__ import annotations

import time

import numpy as np

from biodecode.alignment import align_windows
from biodecode.baselines import baseline_proba, fit_baseline, make_baseline
from biodecode.datasets import get_dataset
from biodecode.loading import load_windows, local_subjects


def main() -> None:
    subjects = local_subjects(get_dataset("physionet-mi"), "left-right-imagery")
    ws = load_windows("physionet-mi", subjects=subjects, task="left-right-imagery")
    print(f"PhysioNet MI imagined left/right, LOSO over {len(subjects)} subjects, {len(ws)} windows")
    for aligned in ("none", "euclidean", "riemannian"):
        w = align_windows(ws, method=aligned) if aligned != "none" else ws
        X, y, g = np.asarray(w.X), w.y, w.groups("subject")
        for name in ("ts-lr", "csp-lda"):
            t0, accs = time.perf_counter(), []
            for s in sorted(set(g), key=int):
                pipe = fit_baseline(make_baseline(name, w.sfreq), X[g != s], y[g != s])
                accs.append(float((baseline_proba(pipe, X[g == s], 2).argmax(1) == y[g == s]).mean()))
            print(f"{name:8s} alignment={aligned:10s} {np.mean(accs):.3f} +- "
                  f"{np.std(accs, ddof=1):.3f}  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
