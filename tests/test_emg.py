"""EMG: the long-term Myo set, the UCI gestures format, envelopes and classic features."""

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from biodecode import DataFormatError
from biodecode.datasets import get_dataset
from biodecode.datasets.uci_emg import read_uci_emg_file
from biodecode.evaluation import make_folds
from biodecode.features import emg_features
from biodecode.preprocessing import Pipeline
from biodecode.recording import Recording
from biodecode.loading import load_windows
from biodecode.windows import make_sliding_windows


@pytest.mark.realdata
def test_myo_windows_and_days_as_sessions(data_dir, tmp_path):
    ws = load_windows("semg-longterm-myo", [1], "motions-8", data_dir=str(data_dir), cache_dir=str(tmp_path),
                      dataset_kwargs={"days": [1, 2, 3, 4]})
    # 8 motions x 4 trials x 4 days, 27 windows of 40 samples (200 ms) every 10 (50 ms) per 300-sample trial
    assert ws.X.shape == (8 * 4 * 4 * 27, 8, 40) and ws.sfreq == 200.0
    assert set(ws.class_counts().values()) == {4 * 4 * 27}
    assert sorted(set(ws.metadata.session), key=int) == ["1", "2", "3", "4"]
    folds = make_folds(ws, "cross-session", val_fraction=0.25)
    assert len(folds) == 4 and all(len(set(ws.metadata.session.iloc[f.test])) == 1 for f in folds)


@pytest.mark.realdata
def test_feature_baseline_beats_chance_across_trials(data_dir, tmp_path):
    ws = load_windows("semg-longterm-myo", [1], "motions-8", data_dir=str(data_dir), cache_dir=str(tmp_path),
                      dataset_kwargs={"days": [1]})
    feats = emg_features(ws.X)
    assert feats.shape == (len(ws), 8 * 5)
    folds = make_folds(ws, "within-subject", n_folds=4, val_fraction=0)
    accs = []
    for f in folds:
        clf = LinearDiscriminantAnalysis().fit(feats[f.train], ws.y[f.train])
        accs.append(clf.score(feats[f.test], ws.y[f.test]))
    assert np.mean(accs) > 0.5  # chance is 1/8


def test_emgnet_learns_the_power_features_of_lda():
    """emgnet's log-power of learned filters can express what separates classes by amplitude per electrode."""
    import torch

    from biodecode.models import create_model
    from biodecode.training import TrainConfig, fit, predict_proba

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 60)
    gains = np.array([[3, 1, 1, 1], [1, 3, 1, 1], [1, 1, 1, 3]], float)  # class k: louder on one electrode
    X = (rng.standard_normal((len(y), 4, 40)) * gains[y][:, :, None]).astype(np.float32)
    model = create_model("emgnet", 4, 40, 3, sfreq=200.0)
    assert model.filters.kernel_size == (8,) and model.filters.groups == 4  # 40 ms at 200 Hz, per electrode
    res = fit(model, X[::2], y[::2], None, None, TrainConfig(max_epochs=40, batch_size=30, lr=1e-2, precise_bn=False))
    assert (predict_proba(res.model, X[1::2]).argmax(1) == y[1::2]).mean() > 0.9
    assert torch.isfinite(res.model(torch.zeros(1, 4, 40))).all()  # silence: log clamped, no -inf


def test_emg_features_by_hand():
    x = np.array([[[1.0, -1.0, 2.0, 2.0, -2.0]]])
    rms, mav, wl, zc, ssc = emg_features(x)[0]
    assert rms == pytest.approx(np.sqrt(14 / 5)) and mav == pytest.approx(8 / 5)
    assert wl == pytest.approx(2 + 3 + 0 + 4) and zc == 3 and ssc == 1
    assert emg_features(x, threshold=3.5)[0][3] == 1  # only the 2 -> -2 crossing is large enough


def test_rectify_and_envelope_stream_like_offline(rng):
    rec = Recording(rng.standard_normal((2, 2000)), 1000.0, ["a", "b"], ["emg"] * 2, ["V"] * 2)
    pipe = Pipeline.from_config([{"name": "bandpass", "l_freq": 20.0, "h_freq": 450.0, "causal": True},
                                 {"name": "envelope", "cutoff": 5.0}])
    off = pipe.apply(rec).data
    stream = pipe.stream(rec.sfreq, rec.ch_names)
    on = np.concatenate([stream.process(rec.data[:, i:i + 7]) for i in range(0, 2000, 7)], axis=1)
    np.testing.assert_allclose(on, off, rtol=1e-4, atol=1e-5)
    assert (Pipeline.from_config([{"name": "rectify"}]).apply(rec).data >= 0).all()


def _write_uci(path, classes, fs=1000):
    n = len(classes)
    t = np.arange(n) * (1000 / fs)
    rng = np.random.default_rng(0)
    lines = ["time\tchannel1\tchannel2\tchannel3\tchannel4\tchannel5\tchannel6\tchannel7\tchannel8\tclass"]
    for i in range(n):
        vals = "\t".join(f"{v:.6f}" for v in rng.normal(0, 1e-4, 8))
        lines.append(f"{t[i]:g}\t{vals}\t{classes[i]}")
    path.write_text("\n".join(lines) + "\n")


def test_uci_emg_format_and_transitions(tmp_path):
    classes = [0] * 300 + [1] * 1000 + [2] * 1000 + [0] * 200 + [3] * 500
    sub = tmp_path / "uci-emg-gestures" / "EMG_data_for_gestures-master" / "01"
    sub.mkdir(parents=True)
    _write_uci(sub / "1_raw_data_13-12_22.03.16.txt", classes)
    rec = read_uci_emg_file(sub / "1_raw_data_13-12_22.03.16.txt")
    assert rec.sfreq == 1000.0 and rec.n_channels == 8
    assert list(rec.events.label) == ["rest", "fist", "wrist_flexion"]
    np.testing.assert_allclose(rec.events.duration, [1.0, 1.0, 0.5])
    ws = make_sliding_windows([rec], 0.2, 0.05)
    # no window straddles a gesture change or covers unmarked (class 0) samples
    for onset, lab in zip(ws.metadata.onset_s, ws.metadata.label):
        i0, i1 = int(round(onset * 1000)), int(round(onset * 1000)) + 200
        assert len(set(classes[i0:i1])) == 1 and classes[i0] > 0
    assert ws.class_counts() == {"fist": 17, "rest": 17, "wrist_flexion": 7}
    ds = get_dataset("uci-emg-gestures", path=tmp_path, download=False)
    (loaded,) = ds.load([1], "gestures-6")
    assert loaded.subject == "1" and loaded.session == "1"


def test_uci_emg_broken_files(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("time\tchannel1\tclass\n0\t1\t0\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt: missing column\(s\) \['channel2'"):
        read_uci_emg_file(p)
    _write_uci(p, [0, 1, 9, 1])
    with pytest.raises(DataFormatError, match=r"bad\.txt: class values \[9\] are not gestures"):
        read_uci_emg_file(p)
