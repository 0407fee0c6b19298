"""Run configs and model settings: every mistyped or impossible value is a ConfigError naming the
key and the value, found before any data is read or any training library is imported."""

import subprocess
import sys

import pytest

from biodecode.config import DataConfig, ModelConfig, RunConfig
from biodecode.errors import ConfigError
from biodecode.models import create_model
from biodecode.training import TrainConfig


@pytest.mark.parametrize("config,message", [
    ({"train": {"max_epochs": "ten"}}, "train.max_epochs: expected an integer, got 'ten'"),
    ({"train": {"lr": "fast"}}, "train.lr: expected a number, got 'fast'"),
    ({"seed": "abc"}, "seed: expected an integer, got 'abc'"),
    ({"seed": -1}, "seed must be in 0..2"),
    ({"train": {"batch_size": 2.7}}, "train.batch_size: expected an integer, got 2.7"),
    ({"train": {"lr": 1e400}}, "train.lr: expected a finite number, got inf"),
    ({"train": {"progress_bar": "yes"}}, "train.progress_bar: expected true or false"),
    ({"train": {"patience": -3}}, "train.patience must be >= 0"),
    ({"data": {"subjects": 5}}, "data.subjects: expected a list, got 5"),
    ({"data": {"tmin": 2.0, "tmax": 1.0}}, r"data.tmax \(1.0\) must be after data.tmin \(2.0\)"),
    ({"data": {"window_s": 0}}, "data.window_s must be positive"),
    ({"model": {"kwargs": [1]}}, "model.kwargs: expected a mapping"),
    ({"protocol": {"n_folds": 1}}, "protocol.n_folds must be at least 2"),
    ({"protocol": {"score_where": "imagined"}}, "protocol.score_where: expected a mapping, got .imagined."),
    ({"protocol": {"score_where": {}}}, "protocol.score_where must map metadata columns to values"),
])
def test_mistyped_values_name_the_key_and_value(config, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(config)


def test_score_where_values_are_lists_of_text():
    p = RunConfig.from_dict({"protocol": {"score_where": {"condition": "imagined", "run": [4, 8]}}}).protocol
    assert p.score_where == {"condition": ["imagined"], "run": ["4", "8"]}


def test_yaml_number_strings_are_read_as_numbers():
    # YAML 1.1 (PyYAML) reads 1e-3 and 1e9 as text; they are numbers where a number is wanted
    cfg = RunConfig.from_dict({"train": {"lr": "1e-3", "max_epochs": "1e2"}, "seed": 7.0})
    assert cfg.train.lr == 0.001 and cfg.train.max_epochs == 100 and cfg.seed == 7 == cfg.train.seed
    assert isinstance(cfg.train.max_epochs, int) and isinstance(cfg.seed, int)


def test_train_config_checks_types_when_built_directly():
    with pytest.raises(ConfigError, match="train.lr"):
        TrainConfig(lr="fast")
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


@pytest.mark.parametrize("kwargs,message", [
    ({"F1": -4}, "F1=-4: must be a positive integer"),
    ({"F1": 2.5}, "F1=2.5: expected an integer"),
    ({"F1": "8"}, "F1='8': expected an integer"),
    ({"dropout": 1.5}, "dropout=1.5: a dropout rate must be in"),
    ({"spatial_first": 1}, "spatial_first=1: expected true or false"),
])
def test_bad_model_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        create_model("eegnet", 8, 320, 2, sfreq=160.0, **kwargs)


def test_list_settings_are_checked():
    with pytest.raises(ConfigError, match=r"widths=\[64, 0\]: expected a list of positive integers"):
        create_model("resnet1d", 8, 320, 2, widths=[64, 0])


def test_an_error_torch_raises_while_building_is_a_config_error(monkeypatch):
    import torch

    from biodecode.models import registry

    class Broken(registry.model_class("shallow")):
        def __init__(self, *args, **kwargs):
            torch.empty(-1)  # what torch says for an impossible layer size

    monkeypatch.setitem(registry._REGISTRY, "broken", registry._Entry(Broken))
    with pytest.raises(ConfigError, match="model 'broken' cannot be built with its defaults for 8 channels x 500"):
        create_model("broken", 8, 500, 2)


def test_bad_shapes_are_config_errors():
    with pytest.raises(ConfigError, match="n_channels must be a positive integer"):
        create_model("shallow", 0, 500, 2)


def test_a_typo_is_reported_before_the_training_libraries_are_imported(tmp_path):
    code = ("import sys\nfrom biodecode.cli import main\n"
            f"rc = main(['train', '--model', 'eegnett', '--out', {str(tmp_path / 'x')!r}])\n"
            "assert rc == 2, rc\nassert 'lightning' not in sys.modules, 'lightning was imported first'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "unknown model 'eegnett'" in proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("first", ["FitResult", "fit", "TrainConfig", "load_model"])
def test_training_names_resolve_to_the_functions_in_any_import_order(first):
    code = (f"from biodecode.training import {first}\n"
            "from biodecode.training import FitResult, fit, predict_proba, load_model, TrainConfig\n"
            "import inspect\nassert inspect.isfunction(fit) and inspect.isclass(FitResult), (fit, FitResult)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]


# ------------------------------------------------------------------ the datasets' recommended settings
def test_recommended_settings_fill_only_what_the_config_leaves_unset():
    cfg = RunConfig.from_dict({"data": {"dataset": "physionet-mi", "task": "left-right-imagery", "alignment": "none"},
                               "train": {"max_epochs": 7}})
    assert cfg.defaults == "dataset"
    assert cfg.data.alignment == "none" and cfg.train.max_epochs == 7  # given: kept
    assert cfg.train.val_fraction == 0.0 and cfg.model.name == "shallow"  # unset: the dataset's
    assert cfg.data.preprocessing[0]["l_freq"] == 8.0
    assert "train.max_epochs" not in cfg.from_dataset and "data.alignment" not in cfg.from_dataset
    assert {"train.val_fraction", "model.name", "data.preprocessing"} <= set(cfg.from_dataset)
    assert "train.val_fraction = 0.0" in cfg.describe_recommended()
    again = RunConfig.from_dict(cfg.to_dict())  # what a run writes reads back as the same run
    assert again == cfg


def test_plain_defaults_and_untuned_datasets_get_nothing():
    plain = RunConfig.from_dict({"data": {"dataset": "physionet-mi"}, "defaults": "plain"})
    assert plain.from_dataset == [] and plain.data.alignment == "none" and plain.model.name == "eegnet"
    assert plain.train.val_fraction == TrainConfig().val_fraction
    for d in ({"data": {"dataset": "synthetic-mi"}}, {"data": {"dataset": "mitdb", "task": "rhythm"}}, {}):
        assert RunConfig.from_dict(d).from_dataset == []
    assert RunConfig().defaults == "plain"  # the dataclasses themselves are the plain defaults
    with pytest.raises(ConfigError, match="defaults must be one of dataset, plain, got 'tuned'"):
        RunConfig.from_dict({"defaults": "tuned"})
    with pytest.raises(ConfigError, match="from_dataset: 'train.epochs' is not an option of the run config"):
        RunConfig.from_dict({"from_dataset": ["train.epochs"]})


def test_recommended_model_options_go_with_the_recommended_model_only():
    rec = RunConfig.from_dict({"data": {"dataset": "mitdb", "task": "aami-beats"}})
    assert rec.model.name == "resnet1d" and rec.model.kwargs == {"widths": [32, 32, 64, 64]}
    assert rec.data.alignment == "median-append" and len(rec.data.metadata_channels) == 6
    same = RunConfig.from_dict({"data": {"dataset": "mitdb", "task": "aami-beats"}, "model": {"name": "resnet1d"}})
    assert same.model.kwargs == {"widths": [32, 32, 64, 64]} and "model.kwargs" in same.from_dataset
    other = RunConfig.from_dict({"data": {"dataset": "mitdb", "task": "aami-beats"}, "model": {"name": "eegnet"}})
    assert other.model.kwargs == {} and not any(k.startswith("model.") for k in other.from_dataset)
    mine = RunConfig.from_dict({"data": {"dataset": "mitdb", "task": "aami-beats", "metadata_channels": []},
                                "model": {"name": "resnet1d", "kwargs": {"widths": [8]}}})
    assert mine.model.kwargs == {"widths": [8]} and mine.data.metadata_channels == []


def test_settings_recommended_for_one_model_go_with_that_model():
    """physionet-mi recommends 0-4 s windows and mirrored training windows for ShallowConvNet (its
    recommended model) only: the covariance baselines scored lower with 4 s windows."""
    mirror = [{"name": "mirror", "p": 0.5}]
    task = {"dataset": "physionet-mi", "task": "left-right"}
    rec = RunConfig.from_dict({"data": dict(task)})
    assert rec.model.name == "shallow" and rec.data.tmax == 4.0 and rec.train.augment == mirror
    assert {"data.tmax", "train.augment", "model.name"} <= set(rec.from_dataset)
    named = RunConfig.from_dict({"data": dict(task), "model": {"name": "shallow"}})
    assert named.data.tmax == 4.0 and named.train.augment == mirror and "model.name" not in named.from_dataset
    for other in ("ts-lr", "conformer"):
        cfg = RunConfig.from_dict({"data": dict(task), "model": {"name": other}})
        assert cfg.data.tmax is None and cfg.train.augment == [] and cfg.data.alignment == "euclidean"
        assert "data.tmax" not in cfg.from_dataset
    mine = RunConfig.from_dict({"data": {**task, "tmax": 2.0}, "train": {"augment": []}})
    assert mine.data.tmax == 2.0 and mine.train.augment == [] and mine.model.name == "shallow"
    # windows defined the other way (sliding) take no event window from the recommendation
    sliding = RunConfig.from_dict({"data": {**task, "window_s": 2.0}})
    assert sliding.data.window_s == 2.0 and sliding.data.tmax is None and "data.tmax" not in sliding.from_dataset
    from biodecode.datasets import dataset_class

    assert dataset_class("physionet-mi").recommended_settings("left-right", "ts-lr")["model"] == {"name": "shallow"}
    assert "tmax" not in dataset_class("physionet-mi").recommended_settings("left-right", "ts-lr")["data"]


@pytest.mark.parametrize("preset", ["eeg-mi-cross-subject.yaml", "ecg-inter-patient.yaml", "emg-cross-day.yaml",
                                    "ecg-af-rhythm.yaml"])
def test_presets_and_recommended_settings_agree(preset):
    """configs/ spells out the tuned settings the datasets recommend: the two must not drift apart."""
    from pathlib import Path

    from biodecode.datasets import dataset_class

    raw = RunConfig.read_yaml(Path(__file__).resolve().parent.parent / "configs" / preset)
    rec = dataset_class(raw["data"]["dataset"]).recommended_settings(raw["data"]["task"])
    assert rec
    plain = RunConfig.from_dict({**raw, "defaults": "plain"}).to_dict()
    for section, values in rec.items():
        for key, value in values.items():
            assert plain[section][key] == value, f"{preset}: {section}.{key}"


def test_a_written_config_reruns_as_it_ran_and_null_keeps_the_plain_default():
    """A config.yaml written before the recommendations existed (no `defaults`, every option spelled
    out, the dataset's preprocessing as null) must not change when read again."""
    old = RunConfig(data=DataConfig(dataset="mitdb", task="aami-beats"), model=ModelConfig(name="resnet1d")).to_dict()
    old.pop("defaults"), old.pop("from_dataset")
    again = RunConfig.from_dict(old)
    assert again.from_dataset == [] and again.model.kwargs == {} and again.data.preprocessing is None
    assert again.data.alignment == "none" and again.train.val_fraction == TrainConfig().val_fraction
    null = RunConfig.from_dict({"data": {"dataset": "physionet-mi", "preprocessing": None}})
    assert null.data.preprocessing is None and "data.preprocessing" not in null.from_dataset
    assert null.data.alignment == "euclidean"


@pytest.mark.parametrize("dataset", ["physionet-mi", "mitdb", "semg-longterm-myo"])
def test_recommended_preprocessing_streams_as_it_was_trained(dataset, caplog):
    """A model trained with a dataset's recommended (or default) preprocessing streams with the same
    filter: every step has a causal form and none warns that the offline step differed."""
    import logging

    from biodecode.datasets import dataset_class
    from biodecode.preprocessing import Pipeline

    cls = dataset_class(dataset)
    for task in cls.tasks:
        steps = cls.recommended_settings(task).get("data", {}).get("preprocessing", cls.default_preprocessing)
        with caplog.at_level(logging.WARNING):
            Pipeline.from_config(steps).stream(200.0, ["a", "b"])
        assert not caplog.records, (dataset, task, [r.getMessage() for r in caplog.records])


def test_every_preset_in_configs_validates():
    """Each file in configs/ is read and checked as `biodecode train --config` reads it."""
    from pathlib import Path

    presets = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
    assert len(presets) >= 4
    for path in presets:
        cfg = RunConfig.from_dict(RunConfig.read_yaml(path, check=True)).validate()
        assert cfg.data.dataset and cfg.model.name, path.name
