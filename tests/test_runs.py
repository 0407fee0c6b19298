"""Run folders and what the command line says while it works: never overwritten silently, a
status that tells done from failed from killed, partial results kept, progress by default and
quiet on request, clear messages for data that is not there, readable report names and plots."""

import json
import os
import re

import numpy as np
import pandas as pd
import pytest

import biodecode.experiment as experiment
from biodecode.cli import build_parser, main
from biodecode.config import RunConfig
from biodecode.errors import ConfigError
from biodecode.evaluation import PROTOCOLS, make_folds
from biodecode.runs import read_status, set_status
from biodecode.windows import WindowSet

SYN = ["--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1", "2", "--model", "eegnet",
       "--protocol", "cross-subject", "--folds", "2", "--epochs", "2", "--set", "data.dataset_kwargs.n_channels=6",
       "--set", "data.dataset_kwargs.n_trials=8"]


def _config() -> RunConfig:
    return RunConfig.from_dict({"data": {"dataset": "synthetic-mi", "task": "left-right-imagery", "subjects": [1, 2],
                                         "dataset_kwargs": {"n_channels": 6, "n_trials": 8}},
                                "protocol": {"name": "cross-subject", "n_folds": 2}, "train": {"max_epochs": 2}})


def test_a_run_is_never_overwritten_silently(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SYN, "--out", str(out)]) == 0
    assert read_status(out)["status"] == "done"
    before = (out / "model.pt").read_bytes(), (out / "metrics.json").read_text()
    (out / "evaluate").mkdir()
    capsys.readouterr()
    assert main(["train", *SYN, "--seed", "3", "--out", str(out)]) == 2
    assert "already holds a run (status: done)" in capsys.readouterr().err
    assert ((out / "model.pt").read_bytes(), (out / "metrics.json").read_text()) == before
    assert main(["train", *SYN, "--seed", "3", "--out", str(out), "--overwrite"]) == 0
    assert (out / "model.pt").read_bytes() != before[0]
    assert not (out / "evaluate").exists()  # the old run's evaluation went with it
    assert json.loads((out / "environment.json").read_text())["seed"] == 3


def test_a_failed_run_says_so_and_keeps_the_folds_it_finished(tmp_path, monkeypatch):
    real_fit, calls = experiment.fit, []

    def failing_fit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory in fold 2")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(experiment, "fit", failing_fit)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        experiment.run_experiment(_config(), out)
    st = read_status(out)
    assert st["status"] == "failed" and "out of memory in fold 2" in st["message"] and st["folds_done"] == 1
    partial = json.loads((out / "metrics.json").read_text())
    assert partial["partial"] == "1 of 2 folds" and len(partial["folds"]) == 1
    assert not (out / "model.pt").exists()


def test_a_killed_run_reads_as_interrupted(tmp_path):
    set_status(tmp_path, "running")
    record = json.loads((tmp_path / "status.json").read_text())
    record["pid"] = 2 ** 22 + 12345  # no such process
    (tmp_path / "status.json").write_text(json.dumps(record))
    assert read_status(tmp_path)["status"] == "interrupted"
    with pytest.raises(ConfigError, match=r"already holds a run \(status: interrupted\)"):
        experiment.run_experiment(_config(), tmp_path)


def test_a_run_that_cannot_load_its_data_leaves_no_folder(tmp_path):
    cfg = _config()
    cfg.data.dataset, cfg.data.task, cfg.data.subjects = "physionet-mi", "left-right-imagery", [1]
    cfg.data.data_dir = str(tmp_path / "empty")
    cfg.data.dataset_kwargs = {"download": False}
    with pytest.raises(Exception, match="not in .*eegmmidb"):
        experiment.run_experiment(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_progress_by_default_and_quiet_on_request(tmp_path, capsys, monkeypatch):
    import biodecode.cli as cli

    monkeypatch.setattr(cli._Bars, "LOG_EVERY_S", 0.0)  # in a log: an epoch line at most this often
    assert main(["train", *SYN, "--out", str(tmp_path / "a")]) == 0
    cap = capsys.readouterr()
    assert re.search(r"fold 1/2 .*accuracy", cap.err) and "fold 2/2" in cap.err and "epoch 1" in cap.err
    assert "accuracy" in cap.out and "report:" in cap.out
    assert main(["--quiet", "train", *SYN, "--out", str(tmp_path / "b")]) == 0
    cap = capsys.readouterr()
    assert cap.err == "" and "report:" in cap.out
    assert main(["train", *SYN, "--out", str(tmp_path / "c"), "-q"]) == 0  # after the command too
    cap = capsys.readouterr()
    assert cap.err == "" and "report:" in cap.out


def test_library_logs_and_never_prints(tmp_path, capsys):
    experiment.run_experiment(_config(), tmp_path / "run")
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""


@pytest.mark.realdata
def test_records_missing_locally_are_named_with_a_way_forward(tmp_path, data_dir, capsys):
    from biodecode.datasets import get_dataset

    have = [r for r in get_dataset("mitdb", path=str(data_dir)).available() if r not in ("102", "104", "107", "217")][:3]
    assert len(have) == 3, have
    part = tmp_path / "data" / "mitdb"
    part.mkdir(parents=True)
    for rec in have:
        for ext in ("hea", "dat", "atr"):
            os.symlink(data_dir / "mitdb" / f"{rec}.{ext}", part / f"{rec}.{ext}")
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "mitdb", "--task", "aami-beats", "--model", "resnet1d", "--protocol",
               "inter-patient", "--data-dir", str(tmp_path / "data"), "--out", str(out),
               "--set", "data.dataset_kwargs.download=false"])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert "41 of the 44 requested subject(s)/record(s) are not in" in err
    assert f"use the 3 present ({' '.join(have)}): --subjects local" in err and ".part" not in err
    # --subjects local: the records present, written out in the run's config
    rc = main(["train", "--dataset", "mitdb", "--task", "aami-beats", "--model", "resnet1d", "--protocol",
               "intra-patient", "--folds", "2", "--epochs", "1", "--subjects", "local", "--data-dir", str(tmp_path / "data"),
               "--out", str(out), "--set", "model.kwargs.widths=[8,8,8,8]", "--set", "train.batch_size=512"])
    assert rc == 0
    import yaml

    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["subjects"] == have


def test_models_listing_with_a_window_too_short_for_some(capsys):
    assert main(["models", "--n-channels", "8", "--n-times", "40"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"eegnet\s+CNN\s+[\d,]+ params", out) and "does not fit" in out
    assert main(["models", "--n-channels", "8", "--n-times", "40", "--markdown"]) == 0
    assert "| `shallow` |" in capsys.readouterr().out


def test_train_help_lists_every_protocol():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = train.format_help()
    assert all(name in text for name in PROTOCOLS), text


def test_cross_session_folds_name_the_held_out_session():
    n = 24
    meta = pd.DataFrame({"subject": ["1"] * n, "session": [f"day{d}" for d in np.repeat([1, 2, 3], 8)],
                         "trial": [f"t{i}" for i in range(n)], "run": ["1"] * n})
    ws = WindowSet(np.zeros((n, 2, 10), np.float32), np.arange(n) % 2, meta, ["a", "b"], 100.0, ["c1", "c2"], {})
    names = [f.name for f in make_folds(ws, "cross-session")]
    assert names == ["subject 1, session day1 held out", "subject 1, session day2 held out",
                     "subject 1, session day3 held out"]


def test_learning_curves_have_whole_epoch_ticks(tmp_path, monkeypatch):
    from biodecode.evaluation import report

    figs = []
    monkeypatch.setattr(report, "_save", lambda fig, path: figs.append(fig))
    hist = [{"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1.1 / (e + 1), "val_acc": 0.5} for e in range(3)]
    report.plot_learning_curves(tmp_path / "lc.png", [hist], ["fold 1"], "t")
    for ax in figs[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert min(ax.lines[0].get_xdata()) == 1  # epochs are counted from 1


def test_the_report_counts_epochs_from_one_like_the_plot():
    from biodecode.evaluation.report import markdown_report

    fold = {"name": "f1", "best_epoch": 0, "metrics": {"n": 4, "accuracy": 0.5, "balanced_accuracy": 0.5, "kappa": 0.0,
                                                     "f1_macro": 0.5, "confusion_matrix": [[1, 1], [1, 1]]}}
    md = markdown_report("t", {}, [fold], {}, ["a", "b"], False)
    assert "| f1 | 4 | 0.500 | 0.500 | 0.000 | 0.500 | - | 1 |" in md


def test_a_run_without_a_named_task_is_scored_per_window(tmp_path):
    """Windows given by tmin/tmax alone (no task): no per-recording scoring to look up, no crash."""
    from biodecode.evaluation.saved import evaluate_model
    from biodecode.experiment import run_experiment

    cfg = RunConfig.from_dict({"data": {"dataset": "synthetic-mi", "subjects": [1, 2], "tmin": 0.0, "tmax": 3.0,
                                        "dataset_kwargs": {"n_channels": 4, "n_trials": 8}},
                               "model": {"name": "csp-lda"}, "protocol": {"name": "loso"}, "train": {"loggers": []}})
    rep = run_experiment(cfg, tmp_path / "run")
    assert len(rep["folds"]) == 2 and "per_record" not in rep["summary"]
    ev = evaluate_model(tmp_path / "run" / "model.skops", [2], out_dir=tmp_path / "ev", allow_fitted=True)
    assert "per_record" not in ev["metrics"]
