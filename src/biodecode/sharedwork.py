"""Run one function over many jobs in ``n_jobs`` processes, the caller being one of them.

A store build hands each missing recording unit to :func:`share_work`. With joblib's default
backend (loky), ``n_jobs - 1`` worker processes take jobs from one end of the list while the
calling process builds jobs from the other end, so the caller works while the workers start
(each worker imports NumPy, SciPy's signal module and the toolkit: about 1 s of CPU) instead of
waiting for them, and a build too short to pay for starting a worker stays in the caller. On 2
cores ``n_jobs=2`` is the caller plus one worker: one start-up fewer than two workers beside an
idle parent. A backend chosen with ``joblib.parallel_config`` (Dask, Ray, threads) gets every
job, as joblib runs them.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, Callable, Iterator, Sequence

from .threads import single_threaded

#: CPU seconds a loky worker takes to start and import the toolkit (about 1 s on the 2-core dev VM).
#: The caller builds the first two jobs alone and starts workers only when what is left, at the
#: second job's pace, is more than twice this: a small build stays in one process, where starting
#: workers would slow it down.
WORKER_START_S = 1.0

#: Jobs queued per worker beyond the one it runs, so it never waits for the caller to hand it more.
QUEUED_PER_WORKER = 1


def _default_backend() -> bool:
    """Whether joblib's active backend is its default process pool (loky)."""
    from joblib._parallel_backends import LokyBackend
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    return isinstance(backend, LokyBackend)


def _through_joblib(fn: Callable[..., Any], jobs: Sequence[tuple], n_jobs: int) -> Iterator[Any]:
    from joblib import Parallel, delayed

    try:  # results as each job finishes, where the backend can
        pool = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    except ValueError:
        pool = Parallel(n_jobs=n_jobs)
    yield from pool(delayed(fn)(*j) for j in jobs)


def share_work(fn: Callable[..., Any], jobs: Sequence[tuple], n_jobs: int) -> Iterator[Any]:
    """``fn(*job)`` for every job, in up to ``n_jobs`` processes including this one (fewer when the
    jobs are too short to pay for starting workers); results are yielded in the order they finish.
    The first exception (from any process) is raised after the jobs not yet started are cancelled."""
    todo = deque(jobs)  # workers take from the right end, this process from the left
    n_jobs = max(1, min(n_jobs, len(todo)))
    if n_jobs > 1 and not _default_backend():
        yield from _through_joblib(fn, list(todo), n_jobs)
        return
    took = 0.0
    for _ in range(min(2, len(todo)) if n_jobs > 1 else len(todo)):
        t0 = time.perf_counter()
        out = fn(*todo.popleft())
        took = time.perf_counter() - t0  # the second job's time: the first pays one-off costs
        yield out
    if len(todo) * took < 2 * WORKER_START_S:  # less left than starting a worker costs: finish here
        yield from (fn(*j) for j in todo)
        return
    yield from _with_workers(fn, todo, n_jobs - 1)


def _with_workers(fn: Callable[..., Any], todo: deque, workers: int) -> Iterator[Any]:
    """Jobs ``todo`` shared between ``workers`` loky processes (from the right) and this one (from
    the left). A worker is handed a second job only once it has returned one (it has started up),
    so the jobs this process could have done are never left queued behind a worker's start-up."""
    from joblib.externals.loky import get_reusable_executor

    one_thread = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    executor = get_reusable_executor(max_workers=workers, env=one_thread)
    running: set[Future] = set()
    started = False
    try:
        while todo or running:
            while todo and len(running) < workers * (1 + QUEUED_PER_WORKER if started else 1):
                running.add(executor.submit(fn, *todo.pop()))
            done = {f for f in running if f.done()}
            if not done and todo:
                with single_threaded():  # as in the workers: no BLAS threads spinning beside them
                    out = fn(*todo.popleft())
                yield out
                continue
            if not done:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                running.discard(f)
                started = True
                yield f.result()
    finally:
        for f in running:
            f.cancel()
