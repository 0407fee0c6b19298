"""The benchmark scripts' own operations run (tiny sizes): `make bench` must not break unnoticed
when the toolkit tightens a check (it did once: an ONNX export without metadata)."""

from __future__ import annotations

import pytest


def test_our_side_of_the_latency_and_throughput_benchmarks_runs():
    pytest.importorskip("onnxruntime")
    from benchmarks import ours

    lat = ours.latency(model="eegnet", C=4, T=64, K=2, n=3)
    assert lat and all(v > 0 for v in lat.values() if isinstance(v, float))
    rate = ours.train_throughput(model="eegnet", C=4, T=64, K=2, batch=8, steps=2)
    assert rate["windows_per_s"] > 0


def test_the_aligned_stream_benchmark_measures_both_settings(monkeypatch):
    """benchmarks.stream_alignment swaps the BLAS limit for a no-op in the streaming module only,
    and puts it back."""
    from benchmarks import stream_alignment
    from biodecode.deploy import stream

    limited = stream.numpy_blas_single_thread
    res = stream_alignment.measure(seconds=4.0, rounds=1)
    assert stream.numpy_blas_single_thread is limited
    assert set(res) == {"one BLAS thread (biodecode)", "BLAS default (a thread per core)"}
    assert all(r[0]["aligned"] and r[0]["decisions"] > 0 for r in res.values())
