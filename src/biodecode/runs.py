"""Run folders: never overwritten by accident, and always saying what state they are in.

A run folder holds the files :func:`biodecode.experiment.run_experiment` writes and a
``status.json``: ``running`` (with the process id and host), ``done``, or ``failed`` with the
error message. A run killed outright stays ``running``; :func:`read_status` reports it as
``interrupted`` once its process is gone.

Under ``torchrun`` or Lightning's DDP launcher every process runs the same command; only global
rank 0 writes the run folder (:func:`rank_out_dir`), the others train beside it (DDP needs every
rank) and keep their identical copy of the reports in a temporary folder that is removed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

from .errors import ConfigError
from .evaluation.report import write_json
from .store import pid_alive

#: What a run writes into its folder (``evaluate/`` is written later by ``biodecode evaluate``).
RUN_FILES = ("status.json", "config.yaml", "environment.json", "metrics.json", "metrics.md", "confusion_matrix.png",
             "learning_curves.png", "folds.json", "predictions.csv", "record_predictions.csv", "model.pt", "model.skops",
             "model.joblib", "evaluate")
STATUS = "status.json"


#: The variables Lightning reads for a process's global rank (torchrun sets RANK, Lightning's own
#: launcher LOCAL_RANK, SLURM SLURM_PROCID, LSF JSM_NAMESPACE_RANK), in its order.
_RANK_VARS = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
#: Inside a rank_out_dir of a rank other than 0 (per thread and task, so concurrent runs in one
#: process do not see each other's redirection).
_redirected: ContextVar[bool] = ContextVar("biodecode_rank_redirected", default=False)


def is_rank_zero() -> bool:
    """Whether this process writes run folders and prints results: rank 0 of a distributed launch,
    or any process started without one."""
    for key in _RANK_VARS:
        if os.environ.get(key) is not None:
            return int(os.environ[key]) == 0
    return True


@contextmanager
def rank_out_dir(out: str | os.PathLike) -> Iterator[Path]:
    """``out`` itself on rank 0; on another rank a path of the same name in a temporary folder,
    removed on leaving, so that ranks never race on one run folder. Nested uses (a comparison's
    runs) stay inside the outermost temporary folder."""
    out = Path(out)
    if _redirected.get() or is_rank_zero():
        yield out
        return
    tmp = Path(tempfile.mkdtemp(prefix="biodecode-rank-"))
    token = _redirected.set(True)
    try:
        yield tmp / out.name
    finally:
        _redirected.reset(token)
        shutil.rmtree(tmp, ignore_errors=True)


def read_status(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's status record, or None when the folder holds no run. A ``running`` run whose
    process (on this host) is gone is reported as ``interrupted``."""
    path = Path(run_dir) / STATUS
    if not path.is_file():
        return None
    try:
        st = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"status": "unknown", "message": f"{path} is unreadable"}
    if (st.get("status") == "running" and st.get("host") == socket.gethostname()
            and isinstance(st.get("pid"), int) and not pid_alive(st["pid"])):
        st = dict(st, status="interrupted", message="the process running it stopped before it finished")
    return st


def holds_run(run_dir: str | os.PathLike) -> list[str]:
    """The run files already in ``run_dir`` (empty when it is absent or holds none)."""
    d = Path(run_dir)
    return [name for name in RUN_FILES if (d / name).exists()] if d.is_dir() else []


def check_run_dir(run_dir: str | os.PathLike, overwrite: bool) -> None:
    """Refuse a folder that already holds a run unless ``overwrite``. Call before any work."""
    found = holds_run(run_dir)
    if found and not overwrite:
        st = read_status(run_dir) or {}
        state = f" (status: {st.get('status')})" if st else ""
        raise ConfigError(f"{run_dir}: already holds a run{state} ({', '.join(found[:4])}...); choose another "
                          f"output folder, or overwrite it (--overwrite, or overwrite=True)")


def start_run(run_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Create the run folder (removing an old run's files when ``overwrite``) and mark it running."""
    d = Path(run_dir)
    check_run_dir(d, overwrite)
    for name in holds_run(d):
        p = d / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    d.mkdir(parents=True, exist_ok=True)
    set_status(d, "running", started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return d


def set_status(run_dir: str | os.PathLike, status: str, **extra: Any) -> None:
    """Write ``status.json`` (atomically), keeping fields written before."""
    d = Path(run_dir)
    old = {}
    if (d / STATUS).is_file():
        try:
            old = json.loads((d / STATUS).read_text())
        except (OSError, ValueError):
            old = {}
    record = dict(old, status=status, pid=os.getpid(), host=socket.gethostname(),
                  updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra)
    write_json(d / STATUS, record)


def network_model_file(run_dir: str | os.PathLike, purpose: str) -> Path:
    """The ``model.pt`` of a finished run, for a step that needs a network (``purpose``, e.g. "only
    networks export to ONNX / pt2 / C"); a baseline's run (``model.skops``, ``model.joblib`` before)
    or a folder without a model gets a message saying which."""
    run = Path(run_dir)
    for name in ("model.skops", "model.joblib"):
        if (run / name).is_file() and not (run / "model.pt").is_file():
            raise ConfigError(f"{run}: a classical baseline's run ({name}); {purpose}")
    if not (run / "model.pt").is_file():
        raise FileNotFoundError(f"{run}: no model.pt (is this a biodecode run folder?)")
    return run / "model.pt"
