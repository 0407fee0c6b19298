"""MNE objects in and out: Raw <-> Recording, Epochs -> WindowSet, BiosignalClassifier.fit(epochs);
units and channel types checked."""

import mne
import numpy as np
import pandas as pd
import pytest

from biodecode.classifier import BiosignalClassifier
from biodecode.errors import DataFormatError
from biodecode.io.edf import read_edf
from biodecode.io.mne_objects import recording_from_raw, recording_to_raw, windows_from_epochs


@pytest.fixture(scope="module")
def raw(data_dir):
    return mne.io.read_raw_edf(data_dir / "eegmmidb" / "S001" / "S001R04.edf", preload=True, verbose="error")


def _epochs(raw, **kw):
    events, ids = mne.events_from_annotations(raw, verbose="error")
    return mne.Epochs(raw, events, {"left": ids["T1"], "right": ids["T2"]}, tmin=0.0, tmax=3.0 - 1 / 160,
                      baseline=None, preload=True, verbose="error", **kw)


def test_raw_to_recording_and_back(raw, data_dir):
    rec = recording_from_raw(raw, subject="1", run="4")
    ref = read_edf(data_dir / "eegmmidb" / "S001" / "S001R04.edf")
    np.testing.assert_array_equal(rec.data, ref.data)
    assert rec.ch_names == ref.ch_names and rec.ch_types == ["eeg"] * 64 and rec.units == ["V"] * 64
    np.testing.assert_allclose(rec.events.onset, ref.events.onset)
    assert list(rec.events.label) == list(ref.events.label) and (rec.subject, rec.run) == ("1", "4")
    back = recording_to_raw(rec)
    np.testing.assert_allclose(back.get_data(), raw.get_data(), atol=1e-10)  # float32 of microvolt signals
    assert list(back.annotations.description) == list(raw.annotations.description)
    assert back.info["sfreq"] == raw.info["sfreq"] and back.ch_names == raw.ch_names


def test_units_and_channel_types_are_checked():
    info = mne.create_info(["Fz", "ECG", "STI", "EMG"], 250.0, ["eeg", "ecg", "stim", "emg"])
    data = np.vstack([np.full(500, 2e-5), np.full(500, 1e-3), np.zeros(500), np.full(500, 5e-5)])
    rec = recording_from_raw(mne.io.RawArray(data, info, verbose="error"))
    assert rec.ch_names == ["Fz", "ECG", "EMG"]  # the stimulus channel is left out
    assert rec.units == ["V", "mV", "V"]
    np.testing.assert_allclose(rec.data[:, 0], [2e-5, 1.0, 5e-5], rtol=1e-6)  # ECG in millivolts
    np.testing.assert_allclose(recording_to_raw(rec).get_data()[1], 1e-3, rtol=1e-6)  # and back to volts
    meg = mne.create_info(["Fz", "MEG0111"], 250.0, ["eeg", "mag"])
    with pytest.raises(DataFormatError, match=r"does not decode: MEG0111 \(mag\)"):
        recording_from_raw(mne.io.RawArray(np.zeros((2, 100)), meg, verbose="error"))
    odd = mne.io.RawArray(np.zeros((1, 100)), mne.create_info(["Fz"], 250.0, ["eeg"]), verbose="error")
    odd.info["chs"][0]["unit"] = 201  # not volts
    with pytest.raises(DataFormatError, match=r"channel 'Fz' \(eeg\) is not in volts"):
        recording_from_raw(odd)
    nan = mne.io.RawArray(np.array([[0.0, np.nan, 0.0]]), mne.create_info(["Cz"], 250.0, ["eeg"]), verbose="error")
    with pytest.raises(DataFormatError, match="channel 'Cz' has 1 NaN"):
        recording_from_raw(nan)


def test_epochs_to_windows_keep_events_tmin_and_metadata(raw):
    ep = _epochs(raw)
    ep.metadata = pd.DataFrame({"subject": ["7"] * len(ep), "difficulty": np.arange(len(ep))})
    ws = windows_from_epochs(ep)
    assert ws.X.shape == (len(ep), 64, 480) and ws.classes == ["left", "right"]
    codes = {v: k for k, v in ep.event_id.items()}
    assert list(ws.metadata["label"]) == [codes[c] for c in ep.events[:, 2]]
    assert [ws.classes[i] for i in ws.y] == list(ws.metadata["label"])
    np.testing.assert_allclose(ws.metadata["onset_s"], ep.events[:, 0] / 160.0 + ep.tmin)
    assert set(ws.groups("subject")) == {"7"} and list(ws.metadata["difficulty"]) == list(range(len(ep)))
    assert len(set(ws.groups("trial"))) == len(ep) and ws.info["tmin"] == 0.0
    np.testing.assert_allclose(ws.X, ep.get_data().astype(np.float32))
    with pytest.raises(DataFormatError, match=r"epochs labelled \['right'\] are not among classes \['left'\]"):
        windows_from_epochs(ep, classes=["left"])


def test_biosignal_classifier_fits_mne_epochs(raw):
    ep = _epochs(raw)
    clf = BiosignalClassifier(model="csp-lda").fit(ep)
    assert list(clf.classes_) == ["left", "right"] and clf.sfreq_ == 160.0
    assert set(clf.predict(ep)) <= {"left", "right"}
    assert 0.0 <= clf.score(ep) <= 1.0
    net = BiosignalClassifier(model="eegnet", max_epochs=2).fit(ep)
    assert net.predict_proba(ep).shape == (len(ep), 2)
