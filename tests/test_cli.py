"""The command line, end to end: real EEG through train/evaluate, and clear errors."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from biodecode.cli import main

REPORT_FILES = {"config.yaml", "environment.json", "metrics.json", "metrics.md", "confusion_matrix.png",
                "learning_curves.png", "folds.json", "model.pt"}


def test_models_and_datasets_listings(capsys):
    assert main(["models", "--n-channels", "22", "--n-times", "1000", "--sfreq", "250"]) == 0
    out = capsys.readouterr().out
    assert "eegnet" in out and "conformer" in out and "params" in out
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "physionet-mi" in out and "mitdb" in out
    assert main(["datasets", "describe", "physionet-mi"]) == 0
    described = yaml.safe_load(capsys.readouterr().out)
    assert "left-right-imagery" in described["tasks"]
    assert described["recommended_settings"]["*"]["data"]["alignment"] == "euclidean"


@pytest.mark.realdata
@pytest.mark.parametrize("task,runs", [("left-right-real", ["3", "7", "11"]), ("left-right-imagery", ["4", "8", "12"])])
def test_train_eegnet_within_subject_on_physionet_subject1(tmp_path, data_dir, task, runs, capsys):
    out = tmp_path / task
    rc = main(["train", "--dataset", "physionet-mi", "--task", task, "--model", "eegnet", "--protocol",
               "within-subject", "--folds", "5", "--subjects", "1", "--epochs", "3", "--data-dir", str(data_dir),
               "--out", str(out)])
    assert rc == 0
    assert REPORT_FILES <= {p.name for p in out.iterdir()}
    report = json.loads((out / "metrics.json").read_text())
    assert len(report["folds"]) == 5 and report["synthetic"] is False
    assert sum(f["n_test"] for f in report["folds"]) == 45  # every window tested exactly once
    assert all(f["n_train"] + f["n_val"] + f["n_test"] == 45 for f in report["folds"])
    assert 0.0 <= report["summary"]["accuracy"]["mean"] <= 1.0
    cm = np.sum([f["metrics"]["confusion_matrix"] for f in report["folds"]], axis=0)
    assert cm.shape == (2, 2) and cm.sum() == 45
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["data"]["task"] == task and cfg["model"]["name"] == "eegnet" and cfg["data"]["preprocessing"]
    md = (out / "metrics.md").read_text()
    assert "within-subject" in md and "mean ± sd" in md and "SYNTHETIC" not in md
    # the folds' test trials come from the task's runs only
    folds = json.loads((out / "folds.json").read_text())
    tested = {g.split("@")[0][-2:].lstrip("R0") for f in folds for g in f["test_groups"]}
    assert tested <= set(runs)
    # the saved model was fitted on 36 of subject 1's 45 windows: evaluate refuses them...
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.pt"), "--subjects", "1", "--data-dir", str(data_dir)]) == 2
    assert "36 of these 45 windows were on the fitting side" in capsys.readouterr().err
    assert not (out / "evaluate").exists()
    # ...scores them only when asked, with the report flagged
    assert main(["evaluate", str(out / "model.pt"), "--subjects", "1", "--data-dir", str(data_dir), "--allow-fitted"]) == 0
    ev = json.loads((out / "evaluate" / "metrics.json").read_text())
    assert ev["metrics"]["n"] == 45 and ev["task"] == task and ev["n_fitted_windows"] == 36
    assert "OPTIMISTIC" in (out / "evaluate" / "metrics.md").read_text()
    # and a subject it never saw is scored plainly, with the same report files as train
    ev_dir = tmp_path / "ev2"
    assert main(["evaluate", str(out / "model.pt"), "--subjects", "2", "--data-dir", str(data_dir), "--out", str(ev_dir)]) == 0
    ev = json.loads((ev_dir / "metrics.json").read_text())
    assert ev["subjects"] == ["2"] and ev["n_fitted_windows"] == 0 and ev["warning"] is None
    assert {"metrics.json", "metrics.md", "confusion_matrix.png"} <= {p.name for p in ev_dir.iterdir()}
    assert "OPTIMISTIC" not in (ev_dir / "metrics.md").read_text()


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_train_other_families_and_rerun_from_written_config(tmp_path, model):
    out = tmp_path / model
    args = ["train", "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1", "2",
            "--model", model, "--protocol", "cross-subject", "--folds", "2", "--epochs", "2", "--out", str(out),
            "--set", "data.dataset_kwargs.n_channels=8", "--set", "train.batch_size=32"]
    assert main(args) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["synthetic"] is True and len(report["folds"]) == 2
    assert "SYNTHETIC DATA" in (out / "metrics.md").read_text()
    again = tmp_path / "again"
    assert main(["train", "--config", str(out / "config.yaml"), "--out", str(again)]) == 0
    a = json.loads((out / "metrics.json").read_text())["summary"]["accuracy"]["mean"]
    b = json.loads((again / "metrics.json").read_text())["summary"]["accuracy"]["mean"]
    assert a == pytest.approx(b)  # same config, same seed: same result


def test_train_with_mirror_augmentation(tmp_path, capsys):
    """The run hands its windows' channel and class names to the augmentations that read them."""
    base = ["train", "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1", "2",
            "--model", "shallow", "--protocol", "cross-subject", "--folds", "2", "--epochs", "1",
            "--set", 'train.augment=[{"name": "mirror", "p": 0.5}]']
    assert main(base + ["--out", str(tmp_path / "ok")]) == 0
    assert json.loads((tmp_path / "ok" / "metrics.json").read_text())["summary"]["accuracy"]["mean"] >= 0
    # 8 of the 22 synthetic electrodes: C5 and C3 without C6 and C4
    assert main(base + ["--set", "data.dataset_kwargs.n_channels=8", "--out", str(tmp_path / "bad")]) == 2
    assert "channel 'C5' has its mirror 'C6' missing" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["train", "--model", "eegnett", "--epochs", "1"], "unknown model 'eegnett'"),
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["train", "--protocol", "random", "--epochs", "1"], "unknown protocol 'random'"),
    (["train", "--set", "train.lr"], "expected KEY=VALUE"),
    (["train", "--set", "train.epochs=3"], r"unknown option\(s\) \['epochs'\]"),
    (["train", "--config", "/nonexistent/run.yaml"], "no such config file"),
    (["evaluate", "/nonexistent/model.pt"], "no such model file"),
    (["datasets", "describe"], "name a dataset"),
    (["train", "--dataset", "physionet-mi", "--epochs", "1"], "physionet-mi: name a task .--task, data.task.: 4-class-imagery"),
])
def test_cli_errors_are_clear(args, message, capsys, tmp_path):
    args = [a if a != "OUT" else str(tmp_path) for a in args]
    assert main(args + (["--out", str(tmp_path / "x")] if args[0] == "train" else [])) == 2
    err = capsys.readouterr().err
    assert "error:" in err
    import re

    assert re.search(message, err), err


def test_bad_yaml_config(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("data: [1, 2\n")
    assert main(["train", "--config", str(p)]) == 2
    assert "bad.yaml: not valid YAML" in capsys.readouterr().err
    p.write_text("data:\n  dataset: synthetic-mi\nmodle:\n  name: eegnet\n")
    assert main(["train", "--config", str(p)]) == 2
    assert "unknown section(s) ['modle']" in capsys.readouterr().err


def test_fixed_split_by_named_subjects_from_the_cli(tmp_path, data_dir, capsys):
    out = tmp_path / "fixed"
    # no --protocol and no --subjects: the named groups make a fixed split of exactly those subjects
    assert main(["-q", "train", "--dataset", "physionet-mi", "--task", "left-right-imagery", "--model", "csp-lda",
                 "--train-groups", "1-2", "--test-groups", "3", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    rep = json.loads((out / "metrics.json").read_text())
    (fold,) = rep["folds"]
    assert fold["train_groups"] == ["1", "2"] and fold["val_groups"] == [] and fold["test_groups"] == ["3"]
    assert "| fixed-split | subject | 1 2 | - | 3 |" in (out / "metrics.md").read_text()
    assert rep["header"]["subjects"] == "1, 2, 3"
    rc = main(["train", "--dataset", "physionet-mi", "--task", "left-right-imagery", "--model", "csp-lda",
               "--train-groups", "1-2", "--test-groups", "2-3", "--data-dir", str(data_dir), "--out", str(tmp_path / "x")])
    assert rc == 2 and "subjects ['2'] are in both the train and the test list" in capsys.readouterr().err


def test_train_on_real_and_imagined_score_imagined_from_the_cli(tmp_path, data_dir):
    """`left-right` with `protocol.score_where`: every fold trains on both conditions of its training
    subjects and tests the held-out subject's imagined trials only; the report says so."""
    out = tmp_path / "pooled"
    assert main(["-q", "train", "--dataset", "physionet-mi", "--task", "left-right", "--model", "csp-lda",
                 "--subjects", "1", "2", "3", "--protocol", "loso", "--set", "protocol.score_where.condition=imagined",
                 "--data-dir", str(data_dir), "--out", str(out)]) == 0
    rep = json.loads((out / "metrics.json").read_text())
    assert [f["n_test"] for f in rep["folds"]] == [45, 45, 45]  # 3 imagined runs of 15 cues each
    # a classical pipeline fits on its 2 training subjects' 45 real + 45 imagined windows each
    assert [(f["n_train"], f["n_val"]) for f in rep["folds"]] == [(180, 0)] * 3
    assert "scored on the windows with condition in ['imagined'] only" in rep["header"]["protocol"]
    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred) == 135
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["protocol"]["score_where"] == {"condition": ["imagined"]}
    # the model file carries the filter: evaluating it on a new subject scores that subject's imagery only
    assert main(["-q", "evaluate", str(out / "model.skops"), "--subjects", "4", "--data-dir", str(data_dir)]) == 0
    ev = json.loads((out / "evaluate" / "metrics.json").read_text())
    assert ev["metrics"]["n"] == 45 and ev["task"] == "left-right"
    assert "condition in ['imagined']" in (out / "evaluate" / "metrics.md").read_text()


def test_a_run_says_which_settings_the_dataset_recommended(tmp_path, data_dir, capsys):
    """Options the command line leaves unset come from the dataset's tuned settings; the command
    says so, the report and config.yaml record them, and `--set defaults=plain` turns them off."""
    out = tmp_path / "rec"
    assert main(["train", "--dataset", "physionet-mi", "--task", "left-right-imagery", "--model", "csp-lda",
                 "--subjects", "1", "--folds", "2", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "physionet-mi: recommended settings for what the config leaves unset: data.alignment = euclidean" in err
    assert "model.name" not in err  # the model was named
    rep = json.loads((out / "metrics.json").read_text())
    assert "data.alignment = euclidean" in rep["header"]["recommended settings"]
    assert "recommended settings" in (out / "metrics.md").read_text()
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["defaults"] == "dataset" and cfg["data"]["alignment"] == "euclidean"
    assert "data.alignment" in cfg["from_dataset"]
    plain = tmp_path / "plain"
    assert main(["-q", "train", "--dataset", "physionet-mi", "--task", "left-right-imagery", "--model", "csp-lda",
                 "--subjects", "1", "--folds", "2", "--set", "defaults=plain", "--data-dir", str(data_dir),
                 "--out", str(plain)]) == 0
    cfg = yaml.safe_load((plain / "config.yaml").read_text())
    assert cfg["data"]["alignment"] == "none" and cfg["from_dataset"] == []
    assert "recommended settings" not in json.loads((plain / "metrics.json").read_text())["header"]
    # a comparison says the same, and that no model was selected by early stopping (val_fraction 0)
    assert main(["-q", "compare", "--dataset", "physionet-mi", "--task", "left-right-imagery", "--subjects", "1", "2",
                 "--protocol", "loso", "--models", "csp-lda", "mdm", "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "cmp")]) == 0
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "**recommended settings** of physionet-mi (what the config left out): data.alignment = euclidean" in md
    assert "**model selection**: none: the networks train a fixed number of epochs" in md
