"""Accuracy of each model family on the real EEG available, with the protocol stated.

    python -m benchmarks.model_accuracy [--models eegnet shallow lstm transformer] [--epochs 100]
                                        [--tasks left-right-real left-right-imagery] [--out docs/accuracy.md]

Protocol: PhysioNet MI subject(s) given (default 1: the only subject in the development data),
within-subject stratified 5-fold cross-validation over trials, early stopping on 20% of each
training side, default preprocessing (4-38 Hz causal band-pass, microvolts), windows 0-3 s
after the cue. Test folds are never used for training or model selection.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from biodecode.config import RunConfig
from biodecode.experiment import run_experiment


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["eegnet", "shallow", "eegtcnet", "deep4", "lstm", "transformer",
                                                   "conformer"])
    ap.add_argument("--tasks", nargs="+", default=["left-right-real", "left-right-imagery"])
    ap.add_argument("--subjects", nargs="+", type=int, default=[1])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None, help="also write the Markdown table here")
    args = ap.parse_args(argv)
    rows = []
    for task in args.tasks:
        for model in args.models:
            cfg = RunConfig.from_dict({
                "data": {"dataset": "physionet-mi", "task": task, "subjects": args.subjects, "data_dir": args.data_dir},
                "model": {"name": model}, "protocol": {"name": "within-subject", "n_folds": args.folds},
                "train": {"max_epochs": args.epochs, "batch_size": 16, "patience": 20},
            })
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                rep = run_experiment(cfg, out)
            s = rep["summary"]
            rows.append((task, model, s["accuracy"], s["kappa"], time.perf_counter() - t0))
            print(f"{task:20s} {model:12s} accuracy {s['accuracy']['mean']:.3f} ± {s['accuracy']['std']:.3f}  "
                  f"kappa {s['kappa']['mean']:.3f}  ({rows[-1][-1]:.0f} s)", flush=True)
    lines = [f"Protocol: PhysioNet MI subjects {args.subjects}, within-subject {args.folds}-fold CV over trials, "
             f"up to {args.epochs} epochs with early stopping on 20% of each training side; chance = 0.5.", "",
             "| task | model | accuracy (mean ± sd over folds) | Cohen's kappa | time (s) |", "|---|---|---|---|---|"]
    for task, model, acc, kap, sec in rows:
        lines.append(f"| {task} | {model} | {acc['mean']:.3f} ± {acc['std']:.3f} | {kap['mean']:.3f} ± {kap['std']:.3f} | {sec:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return text


if __name__ == "__main__":
    main()
