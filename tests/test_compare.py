"""biodecode compare: several models and seeds under one protocol, per-subject scores, paired tests."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from biodecode.cli import main
from biodecode.config import RunConfig
from biodecode.errors import ConfigError
from biodecode.evaluation.compare import compare_models, merge_reports, paired_test, per_subject_accuracy, write_comparison


def test_paired_test_matches_scipy_and_signs_the_effect():
    a = np.array([0.9, 0.8, 0.85, 0.7, 0.95, 0.6, 0.75])
    b = np.array([0.7, 0.75, 0.8, 0.72, 0.6, 0.55, 0.5])
    t = paired_test(a, b)
    ref = wilcoxon(a, b)
    assert t["p"] == pytest.approx(ref.pvalue) and t["W"] == pytest.approx(ref.statistic)
    assert 0 < t["r"] <= 1 and t["mean_diff"] == pytest.approx(np.mean(a - b))
    assert paired_test(b, a)["r"] == pytest.approx(-t["r"])
    assert paired_test(a, a + 0.1)["r"] == -1.0  # b higher on every subject
    assert paired_test(np.ones(3), np.ones(3))["p"] is None  # nothing differs: no test


def _config(**data) -> RunConfig:
    return RunConfig.from_dict({"data": {"dataset": "synthetic-mi", "task": "left-right-imagery", "subjects": [1, 2, 3],
                                         "dataset_kwargs": {"n_channels": 6, "n_trials": 12}, **data},
                                "protocol": {"name": "loso"}, "train": {"max_epochs": 2}})


def test_compare_runs_every_model_and_seed_and_tests_them_per_subject(tmp_path):
    out = tmp_path / "cmp"
    rep = compare_models(_config(), ["eegnet", "ts-lr"], out, seeds=[0, 1])
    assert {"compare.md", "compare.json", "scores.png", "paired.png"} <= {p.name for p in out.iterdir()}
    for name in ("eegnet-seed0", "eegnet-seed1", "ts-lr-seed0", "ts-lr-seed1"):
        assert json.loads((out / name / "status.json").read_text())["status"] == "done"
    assert rep["subjects"] == ["1", "2", "3"] and rep["runs"]["ts-lr"] == ["ts-lr-seed0", "ts-lr-seed1"]
    # per-subject scores are the runs' test accuracies (LOSO: one subject per fold), averaged over seeds
    for model in ("eegnet", "ts-lr"):
        folds = [json.loads((out / f"{model}-seed{s}" / "metrics.json").read_text())["folds"] for s in (0, 1)]
        for k, subject in enumerate(["1", "2", "3"]):
            expected = np.mean([f[k]["metrics"]["accuracy"] for f in folds])
            assert rep["per_subject"][model][subject] == pytest.approx(expected)
        assert rep["summary"][model]["mean"] == pytest.approx(np.mean(list(rep["per_subject"][model].values())))
    (t,) = rep["tests"]
    assert (t["a"], t["b"], t["n"]) == ("eegnet", "ts-lr", 3)
    md = (out / "compare.md").read_text()
    assert "SYNTHETIC" in md and "no two-sided Wilcoxon p-value can fall below 0.05" in md
    with pytest.raises(ConfigError, match="already holds a comparison"):
        compare_models(_config(), ["eegnet", "ts-lr"], out)


def test_a_model_joins_a_comparison_without_re_running_the_others(tmp_path):
    old = compare_models(_config(), ["ts-lr", "csp-lda"], tmp_path / "a")
    new = compare_models(_config(), ["mdm", "ts-lr"], tmp_path / "b")
    merged = merge_reports(old, new)
    assert merged["models"] == ["ts-lr", "csp-lda", "mdm"]
    assert merged["per_subject"]["csp-lda"] == old["per_subject"]["csp-lda"]
    assert merged["per_subject"]["mdm"] == new["per_subject"]["mdm"] and merged["runs"]["mdm"] == ["mdm-seed0"]
    assert merged["per_subject"]["ts-lr"] == old["per_subject"]["ts-lr"]  # a deterministic pipeline, run twice
    pairs = {(t["a"], t["b"]): t for t in merged["tests"]}
    assert set(pairs) == {("ts-lr", "csp-lda"), ("ts-lr", "mdm"), ("csp-lda", "mdm")}
    subjects = merged["subjects"]
    expected = paired_test(np.array([merged["per_subject"]["csp-lda"][s] for s in subjects]),
                           np.array([merged["per_subject"]["mdm"][s] for s in subjects]))
    assert pairs[("csp-lda", "mdm")] == {"a": "csp-lda", "b": "mdm", **expected}
    write_comparison(tmp_path / "merged", merged)
    assert "`mdm`" in (tmp_path / "merged" / "compare.md").read_text()
    other = json.loads(json.dumps(new))
    other["protocol"] = "within-subject"
    with pytest.raises(ConfigError, match="differ in protocol"):
        merge_reports(old, other)
    other = json.loads(json.dumps(new))
    other["score_where"] = {"run": ["2"]}
    with pytest.raises(ConfigError, match="differ in score_where"):
        merge_reports(old, other)
    write_comparison(tmp_path / "scored", {**merged, "score_where": {"condition": ["imagined"]}})
    assert "only the windows with condition in ['imagined'] are tested" in (tmp_path / "scored" / "compare.md").read_text()
    other = json.loads(json.dumps(new))
    other["subjects"] = other["subjects"][:2]
    with pytest.raises(ConfigError, match="different subjects"):
        merge_reports(old, other)
    # models that read other windows (another band, alignment) are not put side by side...
    other = json.loads(json.dumps(new))
    other["data"]["alignment"] = "euclidean"
    other["data"]["preprocessing"] = [{"name": "bandpass", "l_freq": 8.0, "h_freq": 32.0}]
    with pytest.raises(ConfigError, match="read different data: data.alignment none vs euclidean; data.preprocessing"):
        merge_reports(old, other)
    # ...while another data folder or cache is no difference
    other = json.loads(json.dumps(new))
    other["data"]["data_dir"] = "/elsewhere"
    assert merge_reports(old, other)["models"] == ["ts-lr", "csp-lda", "mdm"]
    legacy = {k: v for k, v in old.items() if k != "data"}  # stored before the data settings were recorded
    assert merge_reports(legacy, new)["data"] == new["data"]


def test_predictions_cover_every_test_window_once(tmp_path):
    from biodecode.experiment import run_experiment

    run_experiment(_config(), tmp_path / "run")
    pred = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"subject": str})
    folds = json.loads((tmp_path / "run" / "metrics.json").read_text())["folds"]
    assert pred["window"].is_unique and len(pred) == sum(f["n_test"] for f in folds)
    assert sorted(pred["window"]) == list(range(len(pred)))  # LOSO tests every window once
    acc = per_subject_accuracy(tmp_path / "run")
    assert list(acc.index) == ["1", "2", "3"] and ((acc >= 0) & (acc <= 1)).all()


def test_compare_from_the_cli_checks_names_before_any_work(tmp_path, capsys):
    assert main(["compare", "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--models", "eegnet", "tslr",
                 "--out", str(tmp_path / "c")]) == 2
    assert "unknown model 'tslr'" in capsys.readouterr().err and not (tmp_path / "c").exists()
    assert main(["compare", "--dataset", "synthetic-mi", "--models", "eegnet", "--out", str(tmp_path / "c")]) == 2
    assert "at least two models" in capsys.readouterr().err
    assert main(["-q", "compare", "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1-3",
                 "--protocol", "loso", "--models", "mdm", "csp-lda", "--set", "data.dataset_kwargs.n_channels=6",
                 "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "mdm" in out and "csp-lda" in out and "report:" in out


def test_nested_tuning_never_reads_a_test_window(monkeypatch, tmp_path):
    """benchmarks/tune_defaults.py scores candidates on groups held out of each training side: no
    window of an outer test fold is ever read, for a network (with its own early-stopping split) or
    a baseline, and the scores it reports come from the held-out training groups."""
    import benchmarks.tune_defaults as tune
    from biodecode.evaluation import make_folds
    from biodecode.experiment import load_run_windows

    cfg = _config(subjects=[1, 2, 3, 4, 5, 6], cache_dir=str(tmp_path))
    cfg.protocol.name, cfg.protocol.n_folds = "cross-subject", 3
    ws = load_run_windows(cfg)
    tests = [set(f.test.tolist()) for f in make_folds(ws, "cross-subject", n_folds=3, val_fraction=tune.SCORE_FRACTION,
                                                       seed=cfg.seed)]
    import biodecode.experiment as experiment

    read: list[set[int]] = []
    real = experiment.take_rows
    monkeypatch.setattr(experiment, "take_rows",
                        lambda X, idx: read.append(set(np.asarray(idx).tolist())) or real(X, idx))
    for name in ("eegnet", "ts-lr"):
        read.clear()
        cfg.model.name = name
        s = tune.inner_scores(cfg, ws)
        assert s["folds"] == 3 and 0 <= s["acc"] <= 1
        per_fold = len(read) // 3  # reads happen fold by fold, in order
        for k, test in enumerate(tests):
            touched = set().union(*read[k * per_fold:(k + 1) * per_fold])
            assert not touched & test, f"{name}: fold {k} read test windows"


def test_accuracy_document_names_the_models_it_lacks():
    """docs/accuracy.md says which of a section's models have no result, and why or how to add them."""
    from dataclasses import replace

    from benchmarks.model_accuracy import SECTIONS, unmeasured_line

    name = "eeg-imagery-loso"
    section = replace(SECTIONS[name], unmeasured={"eegnex": "it needs a GPU"})
    assert unmeasured_line(name, section, list(section.models)) == ""
    line = unmeasured_line(name, section, [m for m in section.models if m not in ("eegnex", "lstm")])
    assert "`eegnex` (it needs a GPU)" in line  # the stated reason
    assert "--sections eeg-imagery-loso --models lstm" in line  # the command that adds it
    assert "`shallow`" not in line


def test_accuracy_document_names_the_machine_of_a_time_and_keeps_remarks_with_their_result():
    """A time measured off the document's 2-core CPU names its machine; re-measuring a model drops the
    remark that described how its old result was obtained, and keeps the others'."""
    from benchmarks.model_accuracy import DOC_DEVICE, _merged_extras, _time_cell

    rep = {"cost": {"a": {"seconds_per_run": 12.4}, "b": {"seconds_per_run": 300.0}, "c": {"seconds_per_run": 5.0}},
           "device": {"a": DOC_DEVICE, "b": "NVIDIA H200 GPU"}}
    assert _time_cell(rep, "a") == "12" and _time_cell(rep, "c") == "5"  # no record: the document's machine
    assert _time_cell(rep, "b") == "300 (NVIDIA H200 GPU)"
    old = {"models": ["a", "b"], "device": rep["device"], "remarks": {"a": "from a log", "b": "on a GPU"},
           "selection": {"a": {"best_epoch": [1]}}}
    new = {"models": ["b"], "device": {"b": DOC_DEVICE}, "selection": {"b": {"best_epoch": [2]}}}
    merged = _merged_extras(old, new)
    assert merged["remarks"] == {"a": "from a log"}
    assert merged["device"] == {"a": DOC_DEVICE, "b": DOC_DEVICE}
    assert merged["selection"] == {"a": {"best_epoch": [1]}, "b": {"best_epoch": [2]}}


def test_per_class_sensitivity_pools_folds_by_support():
    """The per-class Se / +P of docs/accuracy.md weight each fold (or seed) by the class's support."""
    from benchmarks.model_accuracy import _pooled_per_class

    def fold(recall, precision, support):
        return {"metrics": {"per_class": {"S": {"recall": recall, "precision": precision, "support": support}}}}

    pooled = _pooled_per_class([fold(1.0, 0.5, 30), fold(0.0, 0.0, 10)], ["S", "V"])
    assert pooled == {"S": {"recall": 0.75, "precision": 0.375}}  # V is absent: no row, not a zero


def test_added_models_join_the_same_days_note():
    from benchmarks.model_accuracy import _added

    once = _added("2026-11-20", ["fbcnet"], "2026-11-26")
    assert once == "2026-11-20 (+ fbcnet on 2026-11-26)"
    assert _added(once, ["lstm"], "2026-11-26") == "2026-11-20 (+ fbcnet, lstm on 2026-11-26)"
    assert _added(once, ["lstm"], "2026-11-27") == "2026-11-20 (+ fbcnet on 2026-11-26) (+ lstm on 2026-11-27)"


def test_networks_are_tested_against_another_sections_baselines(tmp_path):
    """A section that trains on more data tests its networks against the baselines of the section
    with the other settings too, subject by subject on the subjects both have."""
    from dataclasses import replace

    from benchmarks.model_accuracy import SECTIONS, versus_lines
    from biodecode.evaluation.compare import paired_test

    other = {"models": ["ts-lr", "shallow"], "per_subject": {
        "ts-lr": {str(s): 0.5 + 0.01 * s for s in range(1, 9)}, "shallow": {str(s): 0.5 for s in range(1, 9)}}}
    (tmp_path / "eeg-imagery-loso.json").write_text(json.dumps(other))
    net = {str(s): 0.6 + 0.02 * s for s in range(1, 8)}  # subject 8 missing here: left out of the pairs
    rep = {"models": ["conformer", "csp-lda"], "per_subject": {"conformer": net, "csp-lda": net}}
    section = replace(SECTIONS["eeg-mi-loso-real-imagined"], versus={"eeg-imagery-loso": ["ts-lr", "csp-lda"]})
    lines = versus_lines(tmp_path, section, rep)
    rows = [ln for ln in lines if ln.startswith("| `")]
    assert len(rows) == 1 and rows[0].startswith("| `conformer` | `ts-lr`, PhysioNet MI, imagined")  # networks only
    t = paired_test(np.array([net[str(s)] for s in range(1, 8)]), np.array([0.5 + 0.01 * s for s in range(1, 8)]))
    assert f"| {t['mean_diff']:+.3f} | {t['p']:.3f} | +1.00 | 7 |" in rows[0]
    assert versus_lines(tmp_path / "none", section, rep) == []  # the other section not measured: no table


@pytest.mark.realdata
def test_compare_on_a_task_scored_per_recording(data_dir, tmp_path):
    """CinC 2017: each subject is a recording, scored by one decision over its windows; the report
    gives the challenge's F1 over all test records pooled, per model."""
    from biodecode.datasets import get_dataset

    records = get_dataset("cinc2017", path=str(data_dir)).subjects()[:40]
    cfg = RunConfig.from_dict({"data": {"dataset": "cinc2017", "task": "af-rhythm", "subjects": records,
                                        "data_dir": str(data_dir)},
                               "model": {"name": "hrv-rf"}, "protocol": {"name": "cross-subject", "n_folds": 2}})
    rep = compare_models(cfg, ["hrv-rf", "mdm"], tmp_path / "c")
    run = tmp_path / "c" / "hrv-rf-seed0"
    dec = pd.read_csv(run / "record_predictions.csv", dtype={"subject": str, "record": str})
    assert sorted(dec["record"]) == sorted(records) and (dec["record"] == dec["subject"]).all()
    # a subject's score is its recording's decision (0 or 1), not the share of its windows right
    assert set(rep["per_subject"]["hrv-rf"].values()) <= {0.0, 1.0}
    pooled = json.loads((run / "metrics.json").read_text())["summary"]["per_record_pooled"]
    assert pooled["n_records"] == 40
    assert pooled["accuracy"] == pytest.approx((dec["true"] == dec["predicted"]).mean())
    assert rep["per_record_pooled"]["hrv-rf"]["challenge_f1"] == [pytest.approx(pooled["challenge_f1"])]
    md = (tmp_path / "c" / "compare.md").read_text()
    assert "accuracy of each subject's recording decisions" in md and "challenge F1, all test records pooled" in md
    assert "all folds pooled" in (run / "metrics.md").read_text()
