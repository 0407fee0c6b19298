"""The three seed families (EEGNet, LSTM, Transformer) on EEG, ECG and EMG windows, unchanged,
and the CLI end to end on ECG and EMG."""

import json

import numpy as np
import pytest
import torch

from biodecode.cli import main
from biodecode.models import create_model
from biodecode.training import TrainConfig, fit, predict_proba
from biodecode.loading import load_windows

pytestmark = pytest.mark.realdata

KINDS = {
    "eeg": dict(dataset="physionet-mi", subjects=[1], task="left-right-imagery"),
    "ecg": dict(dataset="mitdb", subjects=["100", "119"], task="aami-beats"),
    "emg": dict(dataset="semg-longterm-myo", subjects=[1], task="motions-8", dataset_kwargs={"days": [1]}),
}


@pytest.fixture(scope="module")
def kind_windows(data_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("kinds")
    return {k: load_windows(**v, data_dir=str(data_dir), cache_dir=str(cache)) for k, v in KINDS.items()}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("model", ["eegnet", "lstm", "transformer"])
def test_family_trains_on_each_signal_kind(kind_windows, kind, model):
    ws = kind_windows[kind]
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(ws), size=min(len(ws), 96), replace=False))
    X = np.asarray(ws.X[idx])
    X = (X - X.mean(axis=(0, 2), keepdims=True)) / (X.std(axis=(0, 2), keepdims=True) + 1e-8)
    y = ws.y[idx]
    torch.manual_seed(0)
    net = create_model(model, ws.n_channels, ws.n_times, len(ws.classes), sfreq=ws.sfreq)
    res = fit(net, X, y, None, None, TrainConfig(max_epochs=2, batch_size=32, val_fraction=0.0))
    proba = predict_proba(res.model, X)
    assert proba.shape == (len(X), len(ws.classes)) and np.isfinite(proba).all()
    assert len(res.history) == 2 and res.history[-1]["train_loss"] < 10


def test_cli_mitdb_inter_patient_resnet1d(tmp_path, data_dir):
    out = tmp_path / "ecg"
    # a few DS1 (train) and DS2 (test) records keep this fast; the protocol fills the lists itself
    rc = main(["train", "--dataset", "mitdb", "--task", "aami-beats", "--model", "resnet1d", "--protocol",
               "inter-patient", "--subjects", "101", "106", "100", "103", "--epochs", "1", "--data-dir", str(data_dir),
               "--set", "model.kwargs.widths=[8,16,16,16]", "--set", "train.batch_size=256", "--out", str(out),
               "--set", "data.metadata_channels=[rr_pre_s,rr_post_s,rr_local_s]", "--set", "defaults=plain"])
    assert rc == 0
    rep = json.loads((out / "metrics.json").read_text())
    (fold,) = rep["folds"]
    assert fold["leakage_key"] == "record" and set(fold["test_groups"]) == {"100", "103"}
    assert set(rep["classes"]) == {"N", "S", "V", "F", "Q"}
    md = (out / "metrics.md").read_text()
    assert "sensitivity" in md and "PPV" in md
    assert "1 x 252" not in md and "4 channels x 252 samples" in md  # MLII + three RR channels
    # the model file remembers the RR channels, so evaluation rebuilds them; streaming refuses clearly
    assert main(["evaluate", str(out / "model.pt"), "--subjects", "100", "--data-dir", str(data_dir)]) == 0
    from biodecode.deploy import load_predictor
    from biodecode.deploy.stream import StreamDecoder
    from biodecode.errors import ConfigError

    with pytest.raises(ConfigError, match="metadata channels"):
        StreamDecoder(load_predictor(out / "model.pt"))


def test_cli_emg_cross_session(tmp_path, data_dir):
    out = tmp_path / "emg"
    rc = main(["train", "--dataset", "semg-longterm-myo", "--task", "motions-8", "--model", "eegnet", "--protocol",
               "cross-session", "--subjects", "1", "--epochs", "1", "--data-dir", str(data_dir),
               "--set", "data.dataset_kwargs.days=[1,2]", "--out", str(out)])
    assert rc == 0
    rep = json.loads((out / "metrics.json").read_text())
    assert len(rep["folds"]) == 2 and {f["leakage_key"] for f in rep["folds"]} == {"session"}


def test_cinc2017_is_also_scored_per_recording_with_the_challenge_f1(tmp_path, data_dir, capsys):
    out = tmp_path / "cinc"
    assert main(["train", "--dataset", "cinc2017", "--task", "af-rhythm", "--model", "td-lda", "--protocol",
                 "cross-subject", "--folds", "2", "--subjects", "local", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    assert "challenge F1 (N, A, O)" in capsys.readouterr().out
    rep = json.loads((out / "metrics.json").read_text())
    classes = rep["classes"]
    for fold in rep["folds"]:
        per_record = fold["metrics"]["per_record"]
        assert per_record["n_records"] == len(fold["test_groups"]) < fold["metrics"]["n"]  # several windows a record
        cm = np.asarray(per_record["confusion_matrix"])
        assert cm.sum() == per_record["n_records"]
        f1 = [2 * cm[i, i] / (cm[i].sum() + cm[:, i].sum()) for i in (classes.index(c) for c in ("normal", "AF", "other"))]
        assert per_record["challenge_f1"] == pytest.approx(np.mean(f1))
    assert "challenge F1 (mean of N, A, O)" in (out / "metrics.md").read_text()


def test_cli_mitdb_with_the_recommended_settings(tmp_path, data_dir):
    """Naming nothing but the data and the protocol gives MIT-BIH's tuned input: the raw lead, its
    deviation from the record's median beat and six RR channels; evaluate rebuilds all of them."""
    out = tmp_path / "ecg"
    assert main(["-q", "train", "--dataset", "mitdb", "--task", "aami-beats", "--protocol", "inter-patient",
                 "--subjects", "101", "106", "100", "103", "--epochs", "1", "--data-dir", str(data_dir),
                 "--set", "model.kwargs.widths=[8,16,16,16]", "--out", str(out)]) == 0
    rep = json.loads((out / "metrics.json").read_text())
    assert rep["header"]["model"].startswith("resnet1d")
    assert "8 channels x 252 samples" in (out / "metrics.md").read_text()  # 2 leads + 6 RR channels
    assert "alignment = median-append" in rep["header"]["recommended settings"]
    assert main(["-q", "evaluate", str(out / "model.pt"), "--subjects", "100", "--data-dir", str(data_dir)]) == 0
    ev = json.loads((out / "evaluate" / "metrics.json").read_text())
    assert ev["metrics"]["n"] > 1000
