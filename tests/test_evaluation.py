"""Protocols must make leakage impossible; tests try to break them. Metrics match scikit-learn."""

import numpy as np
import pandas as pd
import pytest

from biodecode import ConfigError
from biodecode.evaluation import LeakageError, check_fold, compute_metrics, make_folds, summarize
from biodecode.evaluation.protocols import Fold
from biodecode.windows import WindowSet


def _ws(n_subjects=4, sessions=2, runs=2, trials=10, windows_per_trial=1, n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    rows, y = [], []
    for s in range(1, n_subjects + 1):
        for se in range(1, sessions + 1):
            for r in range(1, runs + 1):
                for t in range(trials):
                    label = t % n_classes
                    for w in range(windows_per_trial):
                        rec = f"s{s}se{se}r{r}"
                        rows.append({"subject": str(s), "session": str(se), "run": str(r), "record": rec,
                                     "trial": f"{rec}@{t}", "onset_s": t * 4.0 + w * 0.5, "label": str(label)})
                        y.append(label)
    n = len(y)
    return WindowSet(rng.standard_normal((n, 2, 8)).astype(np.float32), np.array(y), pd.DataFrame(rows),
                     [str(c) for c in range(n_classes)], 100.0, ["a", "b"])


@pytest.mark.parametrize("protocol,key", [("within-subject", "trial"), ("cross-subject", "subject"), ("loso", "subject"),
                                          ("cross-session", "session"), ("cross-run", "run")])
def test_protocols_never_share_a_group(protocol, key):
    ws = _ws(windows_per_trial=3)  # overlapping windows of one trial must stay together
    folds = make_folds(ws, protocol, n_folds=4, val_fraction=0.25, seed=1)
    assert folds
    for f in folds:
        groups = ws.groups(key)
        assert not set(groups[f.test]) & set(groups[np.concatenate([f.train, f.val])])
        assert not set(f.val) & set(f.test) and not set(f.val) & set(f.train)
        trials = ws.groups("trial")
        assert not set(trials[f.test]) & set(trials[f.train])
        assert len(f.val) > 0  # early stopping data, from the training side
        assert not set(trials[f.val]) & set(trials[f.train])
    if protocol in ("within-subject", "cross-session", "cross-run"):
        # per-subject protocols test each subject on its own data only
        for f in folds:
            assert len(set(ws.groups("subject")[np.concatenate([f.train, f.val, f.test])])) == 1
    if protocol == "loso":
        assert len(folds) == 4 and [len(set(ws.groups("subject")[f.test])) for f in folds] == [1] * 4
    # every window is tested exactly once within each subject (k-fold / leave-one-out)
    if protocol in ("within-subject", "cross-subject", "loso"):
        tested = np.concatenate([f.test for f in folds])
        assert sorted(tested) == list(range(len(ws)))


def test_cross_subject_validation_holds_out_whole_subjects():
    ws = _ws(n_subjects=6)
    for f in make_folds(ws, "cross-subject", n_folds=3, val_fraction=0.25):
        subj = ws.groups("subject")
        assert not set(subj[f.val]) & set(subj[f.train])


def test_inter_patient_fixed_lists():
    ws = _ws(n_subjects=4, sessions=1, runs=1)
    recs = sorted(set(ws.groups("record")))
    (fold,) = make_folds(ws, "inter-patient", train_groups=recs[:3], test_groups=recs[3:])
    assert set(ws.groups("record")[fold.test]) == {recs[3]}
    assert set(ws.groups("record")[fold.val]) <= set(recs[:3])
    with pytest.raises(LeakageError, match=r"in both the train and the test list"):
        make_folds(ws, "inter-patient", train_groups=recs[:3], test_groups=recs[2:])


@pytest.mark.parametrize("key", ["subject", "session", "run", "record"])
def test_fixed_split_by_any_named_groups(key, caplog):
    ws = _ws(n_subjects=5, sessions=4, runs=4, trials=4)
    names = sorted(set(ws.groups(key).tolist()), key=lambda g: (len(g), g))
    train, val, test = names[:-2], names[-2:-1], names[-1:]
    (fold,) = make_folds(ws, "fixed-split", train_groups=train, val_groups=val, test_groups=test, group_key=key)
    g = ws.groups(key)
    assert set(g[fold.train]) == set(train) and set(g[fold.val]) == set(val) and set(g[fold.test]) == set(test)
    assert fold.leakage_key == key and len(fold.train) + len(fold.val) + len(fold.test) == len(ws)
    # without a validation list, validation comes out of the training groups, whole groups at a time
    (auto,) = make_folds(ws, "fixed-split", train_groups=train, test_groups=test, group_key=key, val_fraction=0.3)
    assert set(g[auto.val]) < set(train) and not set(g[auto.val]) & set(g[auto.train])
    for a, b in ((train, train[:1]), (val, val)):
        with pytest.raises(LeakageError, match="in both the"):
            make_folds(ws, "fixed-split", train_groups=train, val_groups=a, test_groups=b, group_key=key)
    with caplog.at_level("WARNING"):
        make_folds(ws, "fixed-split", train_groups=train, test_groups=test + ["nobody"], group_key=key)
    assert f"listed for test but without windows here: {key} nobody" in caplog.text
    with pytest.raises(ConfigError, match="the test side is empty"):
        make_folds(ws, "fixed-split", train_groups=train, test_groups=["nobody"], group_key=key)
    with pytest.raises(ConfigError, match="give the train and test groups"):
        make_folds(ws, "fixed-split", train_groups=train, group_key=key)


@pytest.mark.parametrize("protocol", ["cross-subject", "loso", "within-subject"])
def test_score_where_scores_one_condition_and_trains_on_all(protocol):
    """Windows of two conditions (e.g. real and imagined movement): the folds are those of the scored
    windows alone, only they are validated and tested, and training also reads the rest of its groups."""
    ws = _ws(n_subjects=5, sessions=1, runs=2, trials=20)
    ws.metadata["condition"] = np.where(ws.metadata["run"] == "2", "imagined", "real")
    where = {"condition": ["imagined"]}
    scored = np.flatnonzero(ws.metadata["condition"].to_numpy() == "imagined")
    alone = make_folds(ws.subset(scored), protocol, n_folds=3, val_fraction=0.25, seed=2)
    folds = make_folds(ws, protocol, n_folds=3, val_fraction=0.25, seed=2, score_where=where)
    assert len(folds) == len(alone)
    subjects, condition = ws.groups("subject"), ws.metadata["condition"].to_numpy()
    for f, a in zip(folds, alone):
        assert list(f.test) == list(scored[a.test]) and list(f.val) == list(scored[a.val])
        assert set(condition[f.test]) == {"imagined"} and set(condition[f.val]) <= {"imagined"}
        # the training subjects' real-movement windows too
        assert set(condition[f.train]) == {"real", "imagined"}
        assert set(f.train) == set(scored[a.train]) | set(np.flatnonzero(
            np.isin(subjects, subjects[scored[a.train]]) & (condition == "real")))
        if protocol == "within-subject":  # split by trial: all of the subject's real trials, nobody else's
            assert set(subjects[f.train]) == set(subjects[f.test]) and not len(f.val_unscored)
        else:  # none of a validation or test subject
            assert not set(subjects[f.train]) & set(subjects[np.concatenate([f.val, f.test])])
            # the validation subjects' other windows: read by no network, fitted by a classical pipeline
            assert set(f.val_unscored) == set(np.flatnonzero(np.isin(subjects, subjects[f.val]) & (condition == "real")))
            assert len(f.val_unscored) == len(f.val)
    with pytest.raises(ConfigError, match=r"no metadata column 'mood'"):
        make_folds(ws, protocol, score_where={"mood": ["calm"]})
    with pytest.raises(ConfigError, match=r"no window has condition in \['dreamt'\]; values present: \['imagined', 'real'\]"):
        make_folds(ws, protocol, score_where={"condition": ["dreamt"]})


def test_check_fold_catches_planted_leaks():
    ws = _ws()
    good = make_folds(ws, "cross-subject", n_folds=2)[0]
    # move one window of a test subject to the training side
    bad = Fold("planted", np.concatenate([good.train, good.test[:1]]), good.val, good.test[1:], "subject")
    with pytest.raises(LeakageError, match="on both the training and the test side"):
        check_fold(ws, bad)
    bad2 = Fold("planted", good.train, np.concatenate([good.val, good.test[:1]]), good.test, "subject")
    with pytest.raises(LeakageError, match="in both val and test"):
        check_fold(ws, bad2)


def test_protocol_errors_are_clear():
    ws = _ws(n_subjects=1)
    with pytest.raises(ConfigError, match="needs at least 2 subjects"):
        make_folds(ws, "loso")
    with pytest.raises(ConfigError, match="unknown protocol 'random'"):
        make_folds(ws, "random")
    with pytest.raises(ConfigError, match="only one session"):
        make_folds(_ws(sessions=1), "cross-session")


def test_metrics_agree_with_sklearn_and_hand_counts():
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    proba = np.array([[.9, .1], [.6, .4], [.3, .7], [.2, .8], [.4, .6], [.7, .3], [.1, .9], [.45, .55]])
    m = compute_metrics(y, proba, ["rest", "move"])
    pred = proba.argmax(1)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, pred))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]))
    assert m["confusion_matrix"] == [[2, 1], [1, 4]]
    assert m["per_class"]["move"]["precision"] == pytest.approx(4 / 5)
    assert m["per_class"]["move"]["recall"] == pytest.approx(4 / 5)
    assert m["per_class"]["rest"]["specificity"] == pytest.approx(4 / 5)
    s = summarize([m, {**m, "accuracy": 0.25}])
    assert s["accuracy"]["mean"] == pytest.approx(0.5) and s["accuracy"]["std"] == pytest.approx(0.25)


def test_cinc2017_challenge_f1_and_per_record_aggregation():
    from biodecode.evaluation.metrics import aggregate_by_group, cinc2017_f1

    classes = ["normal", "AF", "other", "noisy"]
    # rows true, columns predicted; the challenge: F1_x = 2 n_xx / (row_x + col_x), mean over N, A, O
    cm = np.array([[50, 2, 8, 1], [3, 10, 2, 0], [10, 1, 20, 2], [1, 0, 1, 3]])
    expected = np.mean([2 * 50 / (61 + 64), 2 * 10 / (15 + 13), 2 * 20 / (33 + 31)])
    assert cinc2017_f1(cm, classes) == pytest.approx(expected)
    assert cinc2017_f1(np.diag([5, 5, 5, 5]), classes) == 1.0
    # three windows of record a (mean decides), one of b
    y = np.array([1, 1, 1, 0])
    proba = np.array([[0.6, 0.4], [0.6, 0.4], [0.1, 0.9], [0.8, 0.2]])
    names, labels, p = aggregate_by_group(y, proba, np.array(["a", "a", "a", "b"]))
    assert list(names) == ["a", "b"] and list(labels) == [1, 0]
    np.testing.assert_allclose(p, [[1.3 / 3, 1.7 / 3], [0.8, 0.2]])
    with pytest.raises(ConfigError, match="group 'a' has windows of more than one label"):
        aggregate_by_group(np.array([0, 1]), proba[:2], np.array(["a", "a"]))
