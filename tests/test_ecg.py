"""MIT-BIH beats and rhythms, CinC 2017, R-peak detection, broken records."""

import shutil

import numpy as np
import pytest

from biodecode import DataFormatError
from biodecode.datasets import get_dataset
from biodecode.ecg import AAMI_MAP, aami_event_map, detect_r_peaks, rr_intervals, with_detected_beats
from biodecode.io import read_wfdb
from biodecode.recording import Events
from biodecode.loading import load_windows
from biodecode.windows import make_event_windows

pytestmark = pytest.mark.realdata


def test_record_100_aami_counts(data_dir, tmp_path):
    (rec,) = get_dataset("mitdb", path=data_dir).load(["100"], "aami-beats")
    mapped = [rec.meta["event_map"][s] for s in rec.events.label if s in rec.meta["event_map"]]
    assert len(mapped) == 2273
    assert {c: mapped.count(c) for c in set(mapped)} == {"N": 2239, "S": 33, "V": 1}
    assert rec.ch_names == ["MLII"]
    ws = load_windows("mitdb", ["100"], "aami-beats", data_dir=str(data_dir), cache_dir=str(tmp_path))
    assert ws.X.shape[1:] == (1, 252)  # 0.25 s before + 0.45 s after at 360 Hz
    assert len(ws) + ws.info["n_dropped"] == 2273 and ws.info["n_dropped"] <= 2
    assert ws.class_counts()["S"] == 33 and ws.class_counts()["V"] == 1
    # RR intervals ride along in the metadata (seconds); ~75 bpm in record 100
    assert 0.6 < ws.metadata["rr_pre_s"].median() < 1.0
    # the window is centred on the annotated R peak: the peak sits 90 samples (0.25 s) in
    assert abs(int(np.argmax(np.abs(ws.X[100, 0]))) - 90) <= 8


def test_second_lead_is_named_lead2_and_keys_its_own_store_entries(data_dir, tmp_path):
    (rec,) = get_dataset("mitdb", path=data_dir, second_lead=True).load(["114"], "aami-beats")
    assert rec.ch_names == ["MLII", "lead2"] and rec.meta["lead2"] == "V5"  # 114 stores V5 first, then MLII
    (raw,) = get_dataset("mitdb", path=data_dir).load(["114"])
    np.testing.assert_array_equal(rec.data, raw.data[[1, 0]])
    store = str(tmp_path / "store")
    one = load_windows("mitdb", ["100"], "aami-beats", data_dir=str(data_dir), cache_dir=store)
    two = load_windows("mitdb", ["100"], "aami-beats", data_dir=str(data_dir), cache_dir=store,
                       dataset_kwargs={"second_lead": True})  # the same store: not the one-lead entry
    assert one.ch_names == ["MLII"] and two.ch_names == ["MLII", "lead2"]
    np.testing.assert_array_equal(np.asarray(two.X)[:, 0], np.asarray(one.X)[:, 0])
    assert get_dataset("mitdb", unknown_beats="Q").cache_identity() != get_dataset("mitdb").cache_identity()
    with pytest.raises(Exception, match="second_lead must be true or false"):
        get_dataset("mitdb", second_lead="yes")


def test_rr_morph_lda_reads_every_raw_lead_and_no_centred_copy():
    from biodecode.baselines import beat_features, ecg_leads, make_baseline

    rr = ["rr_pre_s", "rr_post_s", "rr_local_s"]
    assert ecg_leads(["MLII", "lead2", "MLII-median", "lead2-median", *rr], rr) == [0, 1]
    assert ecg_leads(["MLII", "MLII-median", *rr], rr) == [0] and ecg_leads(None, rr) == [0]
    X = np.random.default_rng(0).normal(size=(5, 2 + 3, 252))
    one, both = beat_features(X, 360.0), beat_features(X, 360.0, leads=(0, 1))
    assert one.shape == (5, 22) and both.shape == (5, 39)
    np.testing.assert_array_equal(both[:, :22], one)
    pipe = make_baseline("rr-morph-lda", 360.0, rr, ch_names=["MLII", "lead2", *rr])
    assert pipe.named_steps["features"].kw_args["leads"] == [0, 1]
    with pytest.raises(DataFormatError, match="leads"):
        beat_features(X, 360.0, leads=(0, 2))


def test_paced_records_excluded_and_subject_of_201_202():
    ds = get_dataset("mitdb")
    assert not {"102", "104", "107", "217"} & set(ds.subjects())
    assert len(get_dataset("mitdb", include_paced=True).subjects()) == 48
    assert ds.splits["inter-patient"][0][0] == "101"


def test_unknown_beat_symbol_is_an_error_or_documented_q():
    ev = Events.from_lists([1.0, 2.0, 3.0], [0, 0, 0], ["N", "Z", "+"])
    with pytest.raises(DataFormatError, match=r"record 999: beat symbol\(s\) \['Z'\] have no AAMI class"):
        aami_event_map(ev, "999")
    assert aami_event_map(ev, "999", unknown="Q")["Z"] == "Q"
    assert AAMI_MAP["/"] == "Q" and AAMI_MAP["e"] == "N" and AAMI_MAP["J"] == "S" and AAMI_MAP["E"] == "V"


def test_rhythm_windows_inside_one_episode(data_dir, tmp_path):
    ws = load_windows("mitdb", ["203"], "rhythm", data_dir=str(data_dir), cache_dir=str(tmp_path))
    assert ws.X.shape[1:] == (1, 3600)
    assert ws.class_counts()["AFIB/AFL"] > 50 and set(ws.classes) == {"N", "AFIB/AFL", "other"}
    (rec,) = get_dataset("mitdb", path=data_dir).load(["203"], "rhythm")
    for onset, lab in zip(ws.metadata.onset_s, ws.metadata.label):
        inside = (rec.events.onset <= onset) & (rec.events.onset + rec.events.duration >= onset + 10)
        assert inside.sum() == 1 and rec.events.label[inside][0] == lab


def test_rr_intervals():
    pre, post, local = rr_intervals(np.array([0.0, 1.0, 2.5, 3.5]))
    np.testing.assert_allclose(pre, [1.0, 1.0, 1.5, 1.0])
    np.testing.assert_allclose(post, [1.0, 1.5, 1.0, 1.0])
    assert local.shape == (4,)
    from biodecode.ecg import rr_relative

    rel = rr_relative(pre, post, local)
    np.testing.assert_allclose(rel["rr_pre_rel"], pre / pre.mean())
    np.testing.assert_allclose(rel["rr_pre_local"], pre / local)  # prematurity against the local rhythm
    np.testing.assert_allclose(rel["rr_post_local"], post / local)


def test_r_peak_detector_finds_annotated_beats(data_dir):
    rec = read_wfdb(data_dir / "mitdb" / "100")
    n = int(60 * rec.sfreq)  # the first minute
    peaks = detect_r_peaks(rec.data[0, :n], rec.sfreq)
    truth = np.array([round(o * rec.sfreq) for o, s in zip(rec.events.onset, rec.events.label) if s in AAMI_MAP])
    truth = truth[truth < n]
    hits = sum(np.min(np.abs(peaks - t)) <= 0.05 * rec.sfreq for t in truth)
    assert hits / len(truth) > 0.97 and len(peaks) <= len(truth) + 3
    # the same beat windows from detections, for a user's own unannotated ECG
    det = with_detected_beats(rec.replace(data=rec.data[:, :n], events=Events.empty()), lead="MLII")
    ws = make_event_windows([det], -0.25, 0.45)
    assert abs(len(ws) - len(truth)) <= 3 and ws.classes == ["?"]


def test_broken_records(data_dir, tmp_path):
    for ext in ("hea", "dat"):
        shutil.copy(data_dir / "mitdb" / f"100.{ext}", tmp_path / f"100.{ext}")
    ds = get_dataset("mitdb", path=tmp_path.parent, download=False)
    ds.root = tmp_path
    with pytest.raises(FileNotFoundError, match=r"100\.atr: missing and downloads are off"):
        ds.load(["100"], "aami-beats")


def test_cinc2017_af_windows(data_dir, tmp_path):
    ws = load_windows("cinc2017", None, "af-rhythm", data_dir=str(data_dir), cache_dir=str(tmp_path))
    assert ws.X.shape[1:] == (1, 2700) and ws.sfreq == 300.0
    assert set(ws.class_counts()) == {"normal", "AF", "other", "noisy"}
    assert len(set(ws.metadata.record)) == 240  # every record gives at least one 9 s window
    assert all(ws.metadata.trial == ws.metadata.record)  # windows of a record never straddle a split


def test_deep_model_learns_real_beats_above_chance(data_dir, tmp_path):
    """Intra-patient (optimistic) N vs V on three records: a small ResNet1d must clearly beat chance."""
    from biodecode.evaluation import compute_metrics, make_folds
    from biodecode.models import create_model
    from biodecode.training import TrainConfig, fit, predict_proba

    ws = load_windows("mitdb", ["119", "208", "233"], "aami-beats", data_dir=str(data_dir), cache_dir=str(tmp_path))
    keep = np.isin(ws.y, [ws.classes.index("N"), ws.classes.index("V")])
    ws = ws.subset(keep)
    (fold,) = make_folds(ws, "intra-patient", n_folds=2, val_fraction=0.0)[:1]
    X = np.asarray(ws.X)
    rng = np.random.default_rng(0)
    train = rng.choice(fold.train, size=min(2000, len(fold.train)), replace=False)
    model = create_model("resnet1d", 1, ws.n_times, len(ws.classes), widths=(16, 16, 32, 32))
    res = fit(model, X[train], ws.y[train], None, None, TrainConfig(max_epochs=2, batch_size=128, lr=3e-3, val_fraction=0))
    m = compute_metrics(ws.y[fold.test], predict_proba(res.model, X[fold.test]), ws.classes)
    assert m["per_class"]["V"]["support"] > 500
    assert m["per_class"]["V"]["recall"] > 0.8 and m["per_class"]["N"]["recall"] > 0.9, m["per_class"]


def test_rr_intervals_as_extra_channels(data_dir, tmp_path):
    from biodecode.windows import with_metadata_channels

    ws = load_windows("mitdb", ["100"], "aami-beats", data_dir=str(data_dir), cache_dir=str(tmp_path))
    cols = ["rr_pre_s", "rr_post_s", "rr_local_s"]
    ws2 = with_metadata_channels(ws, cols)
    assert ws2.X.shape == (len(ws), 4, 252) and ws2.ch_names == ["MLII", *cols]
    np.testing.assert_allclose(ws2.X[7, 1], ws.metadata["rr_pre_s"].iloc[7])
    np.testing.assert_array_equal(ws2.X[:, 0], ws.X[:, 0])
    with pytest.raises(Exception, match="not window metadata columns"):
        with_metadata_channels(ws, ["qt_s"])
    # per-record relative RR: the record's own mean RR is 1, premature (pre < post) beats read below 1
    rel = ws.metadata["rr_pre_rel"].to_numpy()
    ratio = ws.metadata["rr_pre_s"].to_numpy() / rel  # one mean RR for the whole record
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
    assert abs(ratio[0] / ws.metadata["rr_pre_s"].mean() - 1) < 0.01 and 0.5 < np.median(ws.metadata["rr_local_rel"]) < 1.5


@pytest.mark.realdata
def test_record_117s_normal_beats_resemble_ds1s_ventricular_and_fusion_beats(data_dir):
    """The evidence behind docs/accuracy.md's note on record 117: its normal beats' nearest DS1
    beats are mostly V or F, unlike record 100's (which are N)."""
    from benchmarks.ecg_record_similarity import similarity

    table = similarity(k=5, max_beats=200, data_dir=str(data_dir), records=["101", "108", "208", "223", "100", "117"])
    assert list(table.index) == ["100", "117"]
    assert table.loc["117", "neighbours N"] < 0.5 < table.loc["100", "neighbours N"]
    assert table.loc["117", "r with DS1 mean N"] < 0.5 < table.loc["100", "r with DS1 mean N"]
    # each patient read against their own median beat (the preset's median-append channel): 117's
    # normal beats now sit among DS1's normal beats
    centred = similarity(k=5, max_beats=200, data_dir=str(data_dir), records=["101", "108", "208", "223", "100", "117"],
                         centred=True)
    assert centred.loc["117", "neighbours N"] > 0.9 and centred.loc["100", "neighbours N"] > 0.9


def test_normal_beats_split_by_neighbouring_ventricular_beats(tmp_path):
    """benchmarks.ecg_record_similarity's split behind the record-233 note: normal beats right when a
    V beat comes just before, just after, or neither; read back from a run's predictions."""
    import pandas as pd

    from benchmarks.ecg_record_similarity import beat_errors, n_accuracy_by_neighbour

    true = np.array(["N", "V", "N", "N", "N", "V", "N", "S"])
    pred = np.array(["F", "V", "N", "F", "N", "V", "N", "S"])
    got = n_accuracy_by_neighbour(true, pred)
    assert got["after V"] == (1.0, 2) and got["before V"] == (0.5, 2)  # beats 2, 6 / beats 0, 4
    assert got["neither"] == (0.0, 1) and got["all"] == (0.6, 5)
    rows = pd.DataFrame({"fold": 0, "window": np.arange(8)[::-1], "subject": "233", "true": true[::-1],
                         "predicted": pred[::-1]})  # shuffled order: read back in window order
    rows.to_csv(tmp_path / "predictions.csv", index=False)
    table = beat_errors(str(tmp_path))
    assert table.loc["233", "N right, after V (n)"] == "1.00 (2)" and table.loc["233", "misread N called"] == "F 2"
