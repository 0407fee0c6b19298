"""Experiment tracking through Lightning's loggers: one logger run per fold, with the run config as
hyper-parameters, the training curves, and the fold's final test metrics.

``train.loggers`` names them: ``csv`` (the default; ``RUN/logs/csv/fold-K/metrics.csv`` and
``hparams.yaml``), ``tensorboard`` (``RUN/logs/tensorboard/fold-K/``; needs the tensorboard
package) and ``mlflow`` (a file store in ``RUN/logs/mlruns``, or ``MLFLOW_TRACKING_URI`` when set;
needs mlflow). An empty list logs nothing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError

LOGGERS = {"csv": None, "tensorboard": "tensorboard", "mlflow": "mlflow"}  # name -> package it needs


def check_loggers(names: list[str]) -> list[str]:
    """``names`` when each is a known logger; a clear error otherwise (the config's own check)."""
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"train.loggers: unknown logger {name!r}; choose from {sorted(LOGGERS)}")
    return names


def require_loggers(names: list[str]) -> None:
    """Each logger's package is installed (checked before a run starts)."""
    for name in check_loggers(names):
        _require(name)


def _require(name: str) -> None:
    package = LOGGERS[name]
    if package and importlib.util.find_spec(package) is None and not (
            name == "tensorboard" and importlib.util.find_spec("tensorboardX") is not None):
        raise ConfigError(f"train.loggers: {name!r} needs the {package} package (pip install {package}), or drop it "
                          f"from train.loggers")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
    return out


def make_loggers(names: list[str], run_dir: str | os.PathLike, fold: int, fold_name: str, title: str,
                 config: dict[str, Any]) -> list[Any]:
    """The Lightning loggers of fold ``fold`` (0-based), the run config already logged as hyper-parameters."""
    from lightning.pytorch import loggers as pl_loggers

    require_loggers(names)
    root = Path(run_dir) / "logs"
    version = f"fold-{fold + 1}"
    out: list[Any] = []
    for name in names:
        if name == "csv":
            out.append(pl_loggers.CSVLogger(str(root), name="csv", version=version))
        elif name == "tensorboard":
            out.append(pl_loggers.TensorBoardLogger(str(root), name="tensorboard", version=version,
                                                    default_hp_metric=False))
        else:
            uri = os.environ.get("MLFLOW_TRACKING_URI") or (root / "mlruns").resolve().as_uri()
            out.append(pl_loggers.MLFlowLogger(experiment_name=title, run_name=f"{version} {fold_name}",
                                               tracking_uri=uri))
    params = dict(_flat(config), fold=fold_name)
    for lg in out:
        lg.log_hyperparams(params)
    return out


def log_final(loggers: list[Any], metrics: dict[str, Any], step: int) -> None:
    """The fold's test scores (every scalar in ``metrics``, prefixed ``test_``), then close the loggers."""
    scalars = {f"test_{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for lg in loggers:
        lg.log_metrics(scalars, step=step)
        lg.save()
        lg.finalize("success")
