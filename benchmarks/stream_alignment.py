"""Decision latency of an aligned streaming decoder, with NumPy's BLAS held to one thread (what
biodecode does) and left at its default of one thread per core, side by side in one run.

    python -m benchmarks.stream_alignment [--seconds 60] [--rounds 3]

EEGNet-8,2 (untrained: the weights do not change the time) on 64 channels x 480 samples at 160 Hz,
trained-on-aligned metadata, so the decoder is calibrated and multiplies every window by a 64 x 64
matrix before the model sees it; torch on the machine's cores as in a live decoder. Each round
measures both settings, alternating, through the full streaming path (``stream_latency``: causal
band-pass, ring buffer, alignment, model). The "default" setting swaps ``biodecode.threads``' limit
for a no-op context in the streaming module only; nothing else changes.
"""

from __future__ import annotations

import argparse
import contextlib
import os

import numpy as np


def _predictor():
    import torch

    from biodecode.deploy.predictor import TorchPredictor
    from biodecode.models import create_model

    torch.manual_seed(0)
    ch = [f"E{i}" for i in range(64)]
    model = create_model("eegnet", 64, 480, 2, sfreq=160.0)
    meta = {"sfreq": 160.0, "ch_names": ch, "n_times": 480, "classes": ["left", "right"],
            "preprocessing": [{"name": "bandpass", "l_freq": 8.0, "h_freq": 32.0, "causal": True}],
            "alignment": {"method": "euclidean", "by": ["subject"]}}
    return TorchPredictor(model, meta)


def measure(seconds: float = 60.0, rounds: int = 3) -> dict[str, list[dict[str, float]]]:
    """Per round and setting: p50 / p99 / mean decision latency in ms."""
    from biodecode.deploy import stream
    from biodecode.deploy.latency import stream_latency

    limited = stream.numpy_blas_single_thread
    pred = _predictor()
    out: dict[str, list[dict[str, float]]] = {"one BLAS thread (biodecode)": [], "BLAS default (a thread per core)": []}
    try:
        for r in range(rounds):
            for name, ctx in (("one BLAS thread (biodecode)", limited),
                              ("BLAS default (a thread per core)", contextlib.nullcontext)):
                stream.numpy_blas_single_thread = ctx
                out[name].append(stream_latency(pred, seconds=seconds, seed=r))
    finally:
        stream.numpy_blas_single_thread = limited
    return out


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_info

    blas = [f"{p['internal_api']} ({p['num_threads']} threads)" for p in threadpool_info() if p["user_api"] == "blas"]
    res = measure(args.seconds, args.rounds)
    lines = [f"Aligned EEGNet-8,2 decoder, 64 x 480 at 160 Hz, {os.cpu_count()} cores, NumPy BLAS: {', '.join(blas)}; "
             f"{args.rounds} rounds of {args.seconds:g} s each, alternating.", "",
             "| NumPy BLAS during the alignment | p50 (ms), per round | p99 (ms), per round | mean (ms) |", "|---|---|---|---|"]
    for name, rows in res.items():
        p50 = ", ".join(f"{r['p50_ms']:.2f}" for r in rows)
        p99 = ", ".join(f"{r['p99_ms']:.2f}" for r in rows)
        lines.append(f"| {name} | {p50} | {p99} | {np.mean([r['mean_ms'] for r in rows]):.2f} |")
    a, b = (np.median([r["p50_ms"] for r in rows]) for rows in res.values())
    lines += ["", f"Median p50, default / one thread: {b / a:.1f}x."]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
