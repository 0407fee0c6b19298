import numpy as np
import pytest

from biodecode import DataFormatError, Events, Recording


def _rec(**kw):
    base = dict(data=np.zeros((2, 100)), sfreq=100.0, ch_names=["a", "b"], ch_types=["eeg"] * 2, units=["V"] * 2)
    base.update(kw)
    return Recording(**base)


def test_recording_casts_to_float32_and_reports_shape():
    rec = _rec()
    assert rec.data.dtype == np.float32
    assert (rec.n_channels, rec.n_samples, rec.duration) == (2, 100, 1.0)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"ch_names": ["a"]}, "ch_names has 1 entries but data has 2 channels"),
        ({"data": np.zeros(10)}, "must be 2-D"),
        ({"sfreq": 0.0}, "sampling rate must be positive"),
        ({"ch_names": ["a", "a"]}, "duplicate channel names"),
    ],
)
def test_recording_rejects_inconsistent_fields(kw, match):
    with pytest.raises(DataFormatError, match=match):
        _rec(**kw)


def test_check_finite_names_channel_and_sample():
    data = np.zeros((2, 100))
    data[1, 42] = np.nan
    with pytest.raises(DataFormatError, match=r"channel 'b' has 1 NaN \(missing\) value\(s\), first at sample 42"):
        _rec(data=data, source="x.edf").check_finite()


def test_pick_orders_and_reports_missing():
    rec = _rec(data=np.arange(200).reshape(2, 100))
    assert rec.pick(["b", "a"]).data[0, 0] == 100
    with pytest.raises(DataFormatError, match=r"channels \['zz'\] not found"):
        rec.pick(["zz"])


def test_events_counts_and_length_check():
    ev = Events.from_lists([0.0, 1.0, 2.0], [0, 0, 0], ["T1", "T2", "T1"])
    assert ev.counts() == {"T1": 2, "T2": 1}
    with pytest.raises(DataFormatError, match="one entry each"):
        Events.from_lists([0.0], [0, 0], ["T1"])
