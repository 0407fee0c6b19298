"""NumPy's BLAS threads, kept out of torch's way.

Code that calls BLAS through NumPy next to torch (the per-subject alignment of each batch, the
streaming decoder's alignment of each window) must not let OpenBLAS start its own threads: they
keep spinning after each call and take the cores from torch's (or onnxruntime's) threads. Measured
on 2 cores: an EEGNet training step 141 ms instead of 47 ms; a streaming decision (64 x 64 alignment
then EEGNet) 7.6 ms p50 / 91-98 ms p99 instead of 1.2 / 1.5-4.5 ms (``python -m benchmarks.stream_alignment``
measures both side by side).
"""

from __future__ import annotations

import functools
from typing import Any

from threadpoolctl import ThreadpoolController, threadpool_info


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded libraries once (about 0.2 ms)


def numpy_blas_single_thread() -> Any:
    """A context in which NumPy's BLAS (OpenBLAS, MKL) runs on one thread; about 10 us to enter and
    leave. One thread for a (64, 64) @ (64, 480) product costs nothing."""
    return _controller().limit(limits=1, user_api="blas")


def single_threaded() -> Any:
    """A context in which every thread pool threadpoolctl knows (BLAS, OpenMP) runs one thread: what
    a process doing CPU work beside other busy processes (a build's workers) should use."""
    return _controller().limit(limits=1)


def blas_threads() -> list[int]:
    """The thread count of each BLAS library loaded now (NumPy's, SciPy's), read afresh."""
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
