"""biodecode.sharedwork: jobs shared between the caller and loky workers."""

from __future__ import annotations

import os
import threading
import time

import joblib
import pytest

from biodecode import sharedwork
from biodecode.sharedwork import share_work


def _job(i: int, sleep: float) -> tuple[int, int, str]:
    time.sleep(sleep)
    return i, os.getpid(), threading.current_thread().name


def _fails(i: int) -> int:
    if i == 3:
        raise ValueError(f"job {i} is bad")
    time.sleep(0.05)
    return i


def test_caller_and_a_worker_share_the_jobs(monkeypatch):
    monkeypatch.setattr(sharedwork, "WORKER_START_S", 0.0)  # start a worker whatever the jobs cost
    out = list(share_work(_job, [(i, 0.1) for i in range(16)], n_jobs=2))
    assert sorted(i for i, _, _ in out) == list(range(16))  # each job once
    pids = {pid for _, pid, _ in out}
    assert os.getpid() in pids and len(pids) == 2  # the caller built some, one worker the others
    assert [i for i, pid, _ in out if pid == os.getpid()][:2] == [0, 1]  # the caller starts from the left


def test_short_jobs_stay_in_the_caller():
    out = list(share_work(_job, [(i, 0.0) for i in range(6)], n_jobs=2))
    assert [i for i, _, _ in out] == list(range(6))
    assert {pid for _, pid, _ in out} == {os.getpid()}


def test_one_job_each_and_n_jobs_1_run_here():
    assert [r[1] for r in share_work(_job, [(0, 0.0)], n_jobs=4)] == [os.getpid()]
    assert {r[1] for r in share_work(_job, [(i, 0.0) for i in range(3)], n_jobs=1)} == {os.getpid()}


def test_a_workers_exception_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(sharedwork, "WORKER_START_S", 0.0)
    with pytest.raises(ValueError, match="job 3 is bad"):
        list(share_work(_fails, [(i,) for i in range(12)], n_jobs=2))


def test_a_backend_chosen_with_joblib_gets_every_job():
    with joblib.parallel_config(backend="threading"):
        out = list(share_work(_job, [(i, 0.0) for i in range(6)], n_jobs=2))
    assert sorted(i for i, _, _ in out) == list(range(6))
    assert all(name != threading.main_thread().name for _, _, name in out)  # joblib's threads ran them
