"""Classical baselines in the same harness as the networks: registered names, every protocol, the
reports, model files, evaluate and BiosignalClassifier."""

import json

import numpy as np
import pytest

from biodecode.baselines import (baseline_proba, fit_baseline, list_baselines, load_baseline, make_baseline,
                                 save_baseline)
from biodecode.classifier import BiosignalClassifier
from biodecode.cli import main
from biodecode.errors import ConfigError, DataFormatError
from biodecode.loading import load_windows

SYN = dict(task="left-right-imagery", dataset_kwargs={"n_channels": 8, "n_trials": 30})


@pytest.fixture(scope="module")
def synthetic():
    return load_windows("synthetic-mi", [1, 2, 3], **SYN)


@pytest.mark.parametrize("name", ["csp-lda", "fbcsp-lda", "ts-lr", "mdm"])
def test_eeg_baselines_decode_an_unseen_synthetic_subject(synthetic, name):
    g = synthetic.groups("subject")
    X, y = np.asarray(synthetic.X), synthetic.y
    pipe = fit_baseline(make_baseline(name, synthetic.sfreq), X[g != "3"], y[g != "3"])
    proba = baseline_proba(pipe, X[g == "3"], 2)
    assert proba.shape == (int((g == "3").sum()), 2)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    assert (proba.argmax(1) == y[g == "3"]).mean() > 0.7  # the synthetic mu/beta ERD is easy for all of them


def test_unknown_names_and_options_are_config_errors():
    with pytest.raises(ConfigError, match="baseline 'csp-lda' has no option"):
        make_baseline("csp-lda", 160.0, n_filters=3)
    with pytest.raises(ConfigError, match="unknown baseline"):
        make_baseline("csp-svm", 160.0)
    with pytest.raises(ConfigError, match="single class"):
        fit_baseline(make_baseline("ts-lr", 160.0), np.random.randn(6, 3, 50), np.zeros(6, int))


def test_train_evaluate_and_report_a_baseline_from_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1", "2", "3",
                 "--model", "ts-lr", "--protocol", "loso", "--out", str(out), "--set", "data.dataset_kwargs.n_channels=8",
                 "--set", "data.dataset_kwargs.n_trials=30"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"model.skops", "metrics.md", "metrics.json", "confusion_matrix.png", "folds.json", "status.json"} <= names
    assert "model.pt" not in names and "learning_curves.png" not in names
    report = json.loads((out / "metrics.json").read_text())
    assert len(report["folds"]) == 3 and report["summary"]["accuracy"]["mean"] > 0.7
    assert "classical baseline" in (out / "metrics.md").read_text()
    pipe, meta = load_baseline(out / "model.skops")
    assert meta["model_name"] == "ts-lr" and meta["fitted_on"]["key"] == "subject"
    # the saved pipeline (last fold: trained on subjects 1 and 2) scores subject 3 only with --allow-fitted...
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.skops"), "--subjects", "1"]) == 2
    assert "were on the fitting side" in capsys.readouterr().err
    # ...and an unseen subject plainly
    assert main(["evaluate", str(out / "model.skops"), "--subjects", "3", "--out", str(tmp_path / "ev")]) == 0
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["n_fitted_windows"] == 0 and ev["metrics"]["accuracy"] > 0.7
    assert main(["export", str(out)]) == 2
    assert "classical baseline's run" in capsys.readouterr().err


def _fitted(name: str):
    rng = np.random.default_rng(0)
    shape, sfreq = {"rr-morph-lda": ((60, 4, 252), 360.0), "hrv-rf": ((60, 1, 2700), 300.0),
                    "td-lda": ((60, 8, 40), 200.0)}.get(name, ((60, 8, 320), 160.0))
    X = rng.normal(size=shape).astype(np.float32)
    X[::2, 0] *= 3  # something to learn
    return fit_baseline(make_baseline(name, sfreq), X, np.arange(60) % 2), X


@pytest.mark.parametrize("name", list_baselines())
def test_every_baseline_file_loads_back_without_pickle(tmp_path, name):
    pipe, X = _fitted(name)
    path = save_baseline(tmp_path / "model.skops", pipe, name, {}, classes=["a", "b"], n_channels=np.int64(X.shape[1]))
    loaded, meta = load_baseline(path)
    assert meta["model_name"] == name and meta["classes"] == ["a", "b"] and meta["n_channels"] == X.shape[1]
    np.testing.assert_array_equal(baseline_proba(loaded, X, 2), baseline_proba(pipe, X, 2))


def test_a_baseline_file_naming_foreign_types_or_a_pickle_is_refused(tmp_path):
    import joblib
    import skops.io as sio

    pipe, _ = _fitted("csp-lda")
    sio.dump({"format": "biodecode-baseline/2", "pipeline": pipe, "hook": np.testing.assert_array_equal},
             tmp_path / "evil.skops")
    with pytest.raises(DataFormatError, match=r"evil.skops: refused: .*numpy.testing"):
        load_baseline(tmp_path / "evil.skops")
    joblib.dump({"pipeline": pipe}, tmp_path / "model.joblib")
    with pytest.raises(DataFormatError, match="earlier biodecode, a pickle"):
        load_baseline(tmp_path / "model.joblib")
    (tmp_path / "cut.skops").write_bytes((tmp_path / "evil.skops").read_bytes()[:200])
    with pytest.raises(DataFormatError, match="cut.skops: not a readable baseline model file"):
        load_baseline(tmp_path / "cut.skops")


def test_classifier_runs_a_baseline_with_class_names(synthetic):
    g = synthetic.groups("subject")
    clf = BiosignalClassifier(model="csp-lda").fit(synthetic.subset(g != "3"))
    assert list(clf.classes_) == ["left_hand", "right_hand"]
    assert clf.score(synthetic.subset(g == "3")) > 0.7 and clf.history_ == []


def test_models_listing_and_unknown_model_name_mention_baselines(capsys):
    assert main(["models", "--n-channels", "8", "--n-times", "480"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_baselines())
    assert main(["train", "--model", "cspp-lda"]) == 2
    assert "classical baselines: csp-lda" in capsys.readouterr().err


@pytest.mark.realdata
def test_td_lda_across_days_on_the_myo_set(data_dir, tmp_path):
    out = tmp_path / "emg"
    assert main(["-q", "train", "--dataset", "semg-longterm-myo", "--task", "motions-8", "--model", "td-lda",
                 "--protocol", "cross-session", "--subjects", "1", "--data-dir", str(data_dir), "--out", str(out),
                 "--set", "data.dataset_kwargs.days=[1,2,3]"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert len(report["folds"]) == 3 and all("held out" in f["name"] for f in report["folds"])
    assert report["summary"]["accuracy"]["mean"] > 1 / 8 + 0.1  # above chance across days


def test_rr_morph_lda_needs_the_rr_channels_and_reads_them():
    from biodecode.baselines import beat_features

    with pytest.raises(ConfigError, match="set data.metadata_channels"):
        from biodecode.config import RunConfig

        RunConfig.from_dict({"data": {"dataset": "mitdb", "task": "aami-beats"}, "model": {"name": "rr-morph-lda"},
                             "protocol": {"name": "inter-patient"}, "defaults": "plain"}).validate()
    # the dataset's recommended settings bring the RR channels
    RunConfig.from_dict({"data": {"dataset": "mitdb", "task": "aami-beats"}, "model": {"name": "rr-morph-lda"},
                         "protocol": {"name": "inter-patient"}}).validate()
    X = np.zeros((2, 4, 252))
    X[:, 0, 90] = [1.0, 2.0]  # R peak at 0.25 s (360 Hz)
    X[:, 1:, :] = np.array([[0.8, 1.0, 0.9], [0.5, 1.2, 1.0]])[:, :, None]
    f = beat_features(X, 360.0)
    assert f.shape == (2, 22)
    np.testing.assert_allclose(f[:, :5], [[0.8, 1.0, 0.9, 0.8 / 0.9, 1.0 / 0.9], [0.5, 1.2, 1.0, 0.5, 1.2]])
    assert f[1, 5:15].max() == pytest.approx(2.0)  # the R peak is among the QRS samples
    # with the per-record relative RR channels after the absolute ones: three more features, read
    X6 = np.concatenate([X, np.array([[0.9, 1.1, 1.0], [0.6, 1.3, 1.1]])[:, :, None] * np.ones((1, 1, 252))], axis=1)
    f6 = beat_features(X6, 360.0, n_rr=6)
    assert f6.shape == (2, 25)
    np.testing.assert_allclose(f6[:, 22:], [[0.9, 1.1, 1.0], [0.6, 1.3, 1.1]])
    np.testing.assert_allclose(f6[:, :5], f[:, :5])
    # with pre / local and post / local after those: the same features (it computes the ratios itself)
    X8 = np.concatenate([X6, np.array([[7.0, 8.0], [9.0, 6.0]])[:, :, None] * np.ones((1, 1, 252))], axis=1)
    np.testing.assert_allclose(beat_features(X8, 360.0, n_rr=8), f6)
    with pytest.raises(ConfigError, match="n_rr must be"):
        beat_features(X8, 360.0, n_rr=7)
    # the run config's channel list reaches the pipeline; other lists are refused by name
    from biodecode.baselines import RR_CHANNELS, RR_REL_CHANNELS, check_baseline, make_baseline

    pipe = make_baseline("rr-morph-lda", 360.0, RR_CHANNELS + RR_REL_CHANNELS)
    assert pipe.named_steps["features"].kw_args["n_rr"] == 6
    assert make_baseline("rr-morph-lda", 360.0).named_steps["features"].kw_args["n_rr"] == 3
    check_baseline("rr-morph-lda", {}, RR_CHANNELS + RR_REL_CHANNELS)
    from biodecode.baselines import RR_LOCAL_CHANNELS

    assert make_baseline("rr-morph-lda", 360.0, RR_CHANNELS + RR_REL_CHANNELS + RR_LOCAL_CHANNELS
                         ).named_steps["features"].kw_args["n_rr"] == 8
    with pytest.raises(ConfigError, match="got \\['rr_pre_rel'"):
        check_baseline("rr-morph-lda", {}, ["rr_pre_rel"])


@pytest.mark.realdata
def test_rr_morph_lda_inter_patient_on_real_records(data_dir, tmp_path):
    from biodecode.datasets import get_dataset
    from biodecode.datasets.mitdb import DS1, DS2

    present = get_dataset("mitdb", path=str(data_dir)).available()
    train, test = [r for r in DS1 if r in present][:3], [r for r in DS2 if r in present][:3]
    if len(train) < 2 or len(test) < 2:
        pytest.fail(f"mitdb in {data_dir} holds too few DS1/DS2 records for this test: {present}")
    out = tmp_path / "ecg"
    assert main(["-q", "train", "--dataset", "mitdb", "--task", "aami-beats", "--model", "rr-morph-lda", "--protocol",
                 "inter-patient", "--subjects", *train, *test, "--data-dir", str(data_dir),
                 "--out", str(out), "--set", "data.metadata_channels=[rr_pre_s,rr_post_s,rr_local_s]"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    (fold,) = report["folds"]
    assert set(fold["test_groups"]) == set(test)  # DS2 records only, as de Chazal's split says
    assert fold["metrics"]["accuracy"] > 0.6
    assert "learning_curves" not in (out / "metrics.md").read_text()


def _synthetic_ecg(rr_s: np.ndarray, sfreq: float = 300.0, dur_s: float = 9.0, p_wave: bool = True) -> np.ndarray:
    """A lead with a narrow QRS (and a P wave 0.16 s before it) after each RR interval in ``rr_s``."""
    t = np.arange(int(dur_s * sfreq)) / sfreq
    x = np.zeros_like(t)
    for r in np.cumsum(rr_s):
        if r >= dur_s:
            break
        x += np.exp(-0.5 * ((t - r) / 0.012) ** 2)
        if p_wave:
            x += 0.15 * np.exp(-0.5 * ((t - r + 0.16) / 0.025) ** 2)
    return x


def test_rhythm_features_measure_rate_and_irregularity():
    from biodecode.ecg import RHYTHM_FEATURES, rhythm_features

    rng = np.random.default_rng(0)
    regular = _synthetic_ecg(np.full(20, 0.8) + rng.normal(0, 0.01, 20))
    irregular = _synthetic_ecg(np.tile([0.5, 0.9, 0.65, 1.05, 0.55, 0.8], 4), p_wave=False)
    X = np.stack([regular, irregular, regular * 1e-3])[:, None, :]  # the last in volts: same features
    f = dict(zip(RHYTHM_FEATURES, rhythm_features(X, 300.0).T))
    assert f["heart_rate_bpm"][0] == pytest.approx(60 / 0.8 * 11 / 11.25, rel=0.1)  # 11 beats in 9 s
    assert f["rr_median_s"][0] == pytest.approx(0.8, abs=0.02)
    assert f["rr_cv"][0] < 0.03 and f["rr_cv"][1] > 0.15  # atrial-fibrillation-like irregularity
    assert f["pnn50"][0] < 0.1 and f["pnn50"][1] > 0.6
    assert f["p_region_corr"][0] > 0.9  # a P wave before every beat
    np.testing.assert_allclose(rhythm_features(X, 300.0)[2], rhythm_features(X, 300.0)[0], rtol=1e-4)
    flat = rhythm_features(np.zeros((1, 1, 2700)), 300.0)
    assert np.isnan(flat).all()  # a flat window: missing values, not zeros the forest would trust
    from biodecode.errors import DataFormatError

    with pytest.raises(DataFormatError, match="at least 3 s"):
        rhythm_features(np.zeros((1, 1, 600)), 300.0)


@pytest.mark.realdata
def test_hrv_rf_on_cinc2017_records(data_dir, tmp_path):
    """On real AliveCor recordings: AF windows are more irregular than normal ones, and the baseline
    run per record (grouped folds) beats chance on the challenge's F1."""
    from biodecode.ecg import RHYTHM_FEATURES, rhythm_features

    ws = load_windows("cinc2017", "local", task="af-rhythm", data_dir=str(data_dir))
    lab = np.asarray(ws.classes)[ws.y]
    cv = rhythm_features(np.asarray(ws.X[(lab == "AF") | (lab == "normal")]), ws.sfreq)[:, RHYTHM_FEATURES.index("rr_cv")]
    sub = lab[(lab == "AF") | (lab == "normal")]
    assert np.nanmedian(cv[sub == "AF"]) > 2 * np.nanmedian(cv[sub == "normal"])
    records = sorted(set(ws.groups("record")))[:100]
    out = tmp_path / "af"
    assert main(["-q", "train", "--dataset", "cinc2017", "--task", "af-rhythm", "--model", "hrv-rf", "--protocol",
                 "cross-subject", "--folds", "2", "--subjects", *records, "--data-dir", str(data_dir),
                 "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["summary"]["per_record"]["challenge_f1"]["mean"] > 0.45  # chance is about 0.3
    pipe, meta = load_baseline(out / "model.skops")
    assert meta["model_name"] == "hrv-rf"


def test_rr_channel_appends_the_last_rr_interval():
    from biodecode.preprocessing import Pipeline
    from biodecode.recording import Recording

    rr = np.tile([0.6, 1.0, 0.8], 5)
    x = _synthetic_ecg(rr, dur_s=10.0).astype(np.float32)[None]
    rec = Recording(x, 300.0, ["ECG"], ["ecg"], ["mV"], source="synthetic.dat")
    out = Pipeline.from_config([{"name": "rr-channel"}]).apply(rec)
    assert out.ch_names == ["ECG", "RR"] and out.units == ["mV", "s"]
    np.testing.assert_array_equal(out.data[0], rec.data[0])
    peaks = np.round(np.cumsum(rr) * 300).astype(int)
    peaks = peaks[peaks < 3000]
    # between two peaks the channel holds the interval that ended at the first of them (causal)
    for k in range(1, len(peaks) - 1):
        mid = (peaks[k] + peaks[k + 1]) // 2
        assert out.data[1, mid] == pytest.approx(rr[k], abs=0.01), k
    assert out.data[1, 0] == pytest.approx(rr[1], abs=0.01)  # before the second peak: the first interval
    with pytest.raises(ConfigError, match="no channel 'II'"):
        Pipeline.from_config([{"name": "rr-channel", "lead": "II"}]).apply(rec)
    with pytest.raises(ConfigError, match="already has a channel named 'RR'"):
        Pipeline.from_config([{"name": "rr-channel"}, {"name": "rr-channel"}]).apply(rec)
    with pytest.raises(ConfigError, match="'rr-channel' has no streaming form: it detects the R peaks over the whole"):
        Pipeline.from_config([{"name": "rr-channel"}]).stream(300.0, ["ECG"])
    flat = Recording(np.zeros((1, 3000), np.float32), 300.0, ["ECG"], ["ecg"], ["mV"])
    assert (Pipeline.from_config([{"name": "rr-channel"}]).apply(flat).data[1] == 0).all()  # no beats: no rhythm
