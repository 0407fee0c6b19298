import numpy as np
import pytest
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import check_estimator

from biodecode import ConfigError
from biodecode.classifier import BiosignalClassifier
from biodecode.datasets.synthetic import generate_mi_run
from biodecode.preprocessing import Pipeline
from biodecode.windows import make_event_windows


@pytest.mark.filterwarnings("ignore:Skipping check check_array_api_input")  # scikit-learn, not ours
def test_sklearn_estimator_checks():
    est = BiosignalClassifier(model="lstm", model_kwargs={"hidden_size": 8, "num_layers": 1}, max_epochs=30,
                              batch_size=32, lr=3e-2)
    results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed, failed
    assert len([r for r in results if r["status"] == "passed"]) > 30


def test_pipeline_and_grouped_cross_validation():
    band = Pipeline.from_config([{"name": "bandpass", "l_freq": 6.0, "h_freq": 30.0}])
    recs = [band.apply(generate_mi_run(s, 4, n_trials=40, seed=4, channels=("C3", "Cz", "C4", "FC3", "FC4", "CP3", "CP4"),
                                       rhythm_gain=5.0)) for s in (1, 2, 3)]
    ws = make_event_windows(recs, 0.5, 2.5)
    labels = np.array(ws.classes)[ws.y]  # string labels work
    pipe = make_pipeline(FunctionTransformer(lambda x: x * 1e6),
                         BiosignalClassifier(model="eegnet", sfreq=ws.sfreq, max_epochs=30, batch_size=16, lr=3e-3))
    scores = cross_val_score(pipe, np.asarray(ws.X), labels, groups=ws.groups("subject"), cv=GroupKFold(3))
    assert scores.shape == (3,) and scores.mean() > 0.7, scores
    pipe.fit(np.asarray(ws.X), labels)  # cross_val_score fitted clones; fit the pipeline itself
    clf = pipe[-1]
    assert list(clf.classes_) == ["left_hand", "right_hand"]
    proba = pipe.predict_proba(np.asarray(ws.X[:5]))
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="the model was fitted on"):
        clf.predict(np.zeros((2, 3, 320), dtype=np.float32))


def test_logit_offsets_reach_the_network_by_class_label():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2, 64)).astype(np.float32), np.repeat(["a", "b"], 20)
    kw = dict(model="lstm", model_kwargs={"hidden_size": 4, "num_layers": 1}, max_epochs=1)
    plain = np.log(BiosignalClassifier(**kw).fit(X, y).predict_proba(X))
    shifted = np.log(BiosignalClassifier(**kw, logit_offsets={"b": -1.0}).fit(X, y).predict_proba(X))
    np.testing.assert_allclose((shifted[:, 1] - shifted[:, 0]) - (plain[:, 1] - plain[:, 0]), -1.0, atol=1e-3)
    with pytest.raises(ConfigError, match=r"no class named \['c'\] among this run's classes \['a', 'b'\]"):
        BiosignalClassifier(**kw, logit_offsets={"c": 1.0}).fit(X, y)


@pytest.mark.realdata
def test_fitted_on_a_window_set_it_fits_and_speaks_class_names(data_dir):
    from biodecode.loading import load_windows

    ws = load_windows("physionet-mi", subjects=[1], task="left-right-imagery", data_dir=str(data_dir))
    # seed 3 used to restore its first epoch's weights (early stopping on 9 validation windows): 0.40 here
    clf = BiosignalClassifier(model="eegnet", max_epochs=100, random_state=3).fit(ws)
    assert list(clf.classes_) == ["left_hand", "right_hand"]
    assert set(clf.predict(ws)) <= {"left_hand", "right_hand"}
    assert clf.early_stopped_ is False  # 9 validation windows are too few to choose weights by
    assert clf.score(ws) > 0.8
    with pytest.raises(ValueError, match="requires y"):
        BiosignalClassifier().fit(np.zeros((4, 2, 100), np.float32))


@pytest.mark.realdata
def test_mirror_augmentation_reads_the_window_sets_names(data_dir):
    from biodecode.loading import load_windows
    from biodecode.training.augment import mirror_permutations

    ws = load_windows("physionet-mi", subjects=[1], task="left-right-imagery", data_dir=str(data_dir))
    chan, cls = mirror_permutations(ws.ch_names, ws.classes)  # all 64 electrodes have their mirror
    midline = [c.rstrip(".").lower().endswith("z") for c in ws.ch_names]  # Fpz, AFz, ..., Iz: 10 of them
    assert sorted(chan) == list(range(64)) and np.array_equal(chan == np.arange(64), midline) and sum(midline) == 10
    assert list(cls) == [1, 0]
    mirror = [{"name": "mirror", "p": 0.5}]
    clf = BiosignalClassifier(model="shallow", max_epochs=2, augment=mirror).fit(ws)
    assert set(clf.predict(ws)) <= {"left_hand", "right_hand"}
    with pytest.raises(ConfigError, match="needs the windows' channel and class names"):
        BiosignalClassifier(model="shallow", max_epochs=1, augment=mirror).fit(np.asarray(ws.X), ws.labels)


def test_baseline_reads_the_window_sets_channel_roles():
    """rr-morph-lda fitted on a WindowSet learns which channels are leads and which RR metadata."""
    import pandas as pd

    from biodecode.baselines import RR_CHANNELS, RR_REL_CHANNELS
    from biodecode.windows import WindowSet, with_metadata_channels

    rng = np.random.default_rng(0)
    n = 40
    meta = pd.DataFrame({"subject": "1", "session": "0", "run": "0", "record": "100", "trial": np.arange(n).astype(str),
                         "onset_s": np.arange(n, dtype=float), "label": np.where(np.arange(n) % 2, "V", "N")})
    for c in RR_CHANNELS + RR_REL_CHANNELS:
        meta[c] = rng.uniform(0.5, 1.5, n)
    ws = WindowSet(rng.standard_normal((n, 2, 252)).astype(np.float32), (np.arange(n) % 2).astype(np.int64), meta,
                   ["N", "V"], 360.0, ["MLII", "lead2"])
    ws = with_metadata_channels(ws, RR_CHANNELS + RR_REL_CHANNELS)
    clf = BiosignalClassifier(model="rr-morph-lda").fit(ws)
    kw = clf.module_.named_steps["features"].kw_args
    assert kw["n_rr"] == 6 and kw["leads"] == [0, 1]
