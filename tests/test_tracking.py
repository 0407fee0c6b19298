"""Experiment tracking: Lightning's CSV and TensorBoard loggers, one run per fold, with the config
and the fold's final metrics; unknown or uninstalled loggers give messages."""

import importlib.util
import json

import pandas as pd
import pytest
import yaml

from biodecode.config import RunConfig
from biodecode.errors import ConfigError
from biodecode.experiment import run_experiment


def _config(loggers):
    return RunConfig.from_dict({
        "data": {"dataset": "synthetic-mi", "task": "left-right-imagery", "subjects": [1, 2],
                 "dataset_kwargs": {"n_channels": 6, "n_trials": 12}},
        "model": {"name": "eegnet"}, "protocol": {"name": "loso"},
        "train": {"max_epochs": 3, "loggers": loggers, "patience": 10}})


def test_csv_and_tensorboard_loggers_get_one_run_per_fold(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rep = run_experiment(_config(["csv", "tensorboard"]), tmp_path / "run")
    logs = tmp_path / "run" / "logs"
    for k, fold in enumerate(rep["folds"]):
        csv = pd.read_csv(logs / "csv" / f"fold-{k + 1}" / "metrics.csv")
        assert csv["train_loss"].notna().sum() == fold["epochs_run"] and csv["val_loss"].notna().sum() == fold["epochs_run"]
        assert csv["test_accuracy"].dropna().tolist() == pytest.approx([fold["metrics"]["accuracy"]])
        hp = yaml.safe_load((logs / "csv" / f"fold-{k + 1}" / "hparams.yaml").read_text())
        assert hp["model.name"] == "eegnet" and hp["train.max_epochs"] == 3 and hp["fold"] == fold["name"]
        acc = EventAccumulator(str(logs / "tensorboard" / f"fold-{k + 1}"))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert {"train_loss", "val_loss", "val_acc", "test_accuracy", "test_kappa"} <= tags
        assert acc.Scalars("test_accuracy")[-1].value == pytest.approx(fold["metrics"]["accuracy"], abs=1e-6)
    # an overwritten run starts its logs afresh
    run_experiment(_config(["csv"]), tmp_path / "run", overwrite=True)
    assert not (logs / "tensorboard").exists() and (logs / "csv" / "fold-1" / "metrics.csv").is_file()


def test_no_loggers_and_bad_logger_names(tmp_path):
    run_experiment(_config([]), tmp_path / "quiet")
    assert not (tmp_path / "quiet" / "logs").exists()
    with pytest.raises(ConfigError, match="unknown logger 'wandb'"):
        _config(["wandb"])
    if importlib.util.find_spec("mlflow") is None:
        with pytest.raises(ConfigError, match="'mlflow' needs the mlflow package"):
            run_experiment(_config(["mlflow"]), tmp_path / "ml")
        assert not (tmp_path / "ml").exists()  # refused before any work
