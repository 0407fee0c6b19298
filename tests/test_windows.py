import json

import numpy as np
import pytest

import biodecode.io.edf as edf_module
from biodecode import ConfigError, DataFormatError, Events, Recording
from biodecode.lazyarray import ConcatRows
from biodecode.loading import load_windows
from biodecode.windows import make_event_windows, make_sliding_windows


def _rec(rng, n=1000, sf=100.0, events=None, **kw):
    return Recording(rng.standard_normal((3, n)), sf, ["a", "b", "c"], ["eeg"] * 3, ["V"] * 3,
                     events=events or Events.empty(), **kw)


def test_event_windows_shapes_labels_and_edges(rng):
    ev = Events.from_lists([0.5, 2.0, 4.0, 9.5], [1, 1, 1, 1], ["T1", "T2", "T0", "T1"])
    rec = _rec(rng, events=ev, subject="7", run="3")
    ws = make_event_windows([rec], 0.0, 1.0, event_map={"T1": "left", "T2": "right"}, classes=["left", "right"])
    # the event at 9.5 s would run past the 10 s recording: dropped and counted
    assert ws.X.shape == (2, 3, 100) and list(ws.y) == [0, 1] and ws.info["n_dropped"] == 1
    np.testing.assert_array_equal(ws.X[1], rec.data[:, 200:300])
    assert list(ws.groups("subject")) == ["7", "7"] and ws.metadata.onset_s.tolist() == [0.5, 2.0]
    ws2 = make_event_windows([rec], -0.5, 0.5, event_map={"T1": "left"})
    np.testing.assert_array_equal(ws2.X[0], rec.data[:, 0:100])


def test_event_windows_errors(rng):
    rec = _rec(rng, events=Events.from_lists([1.0], [1], ["T1"]))
    with pytest.raises(ConfigError, match="tmax .* must be greater than tmin"):
        make_event_windows([rec], 1.0, 0.5, event_map={"T1": "x"})
    with pytest.raises(ConfigError, match="no event_map"):
        make_event_windows([rec], 0, 1)
    other = _rec(rng, sf=200.0, source="b.edf")
    with pytest.raises(DataFormatError, match=r"b\.edf: sampling rate 200.0 Hz differs"):
        make_event_windows([rec, other], 0, 1, event_map={"T1": "x"})
    with pytest.raises(ConfigError, match=r"classes \['x'\] not in classes \['y'\]"):
        make_event_windows([rec], 0, 1, event_map={"T1": "x"}, classes=["y"])


def test_sliding_windows_recording_label_and_event_cover(rng):
    rec = _rec(rng, n=1000, meta={"label": "fist"})
    ws = make_sliding_windows([rec], 2.0, 0.5)
    assert ws.X.shape == (17, 3, 200) and set(ws.metadata.label) == {"fist"}
    np.testing.assert_array_equal(ws.X[3], rec.data[:, 150:350])
    ev = Events.from_lists([0.0, 5.0], [5.0, 5.0], ["open", "close"])
    rec2 = _rec(rng, events=ev)
    ws2 = make_sliding_windows([rec2], 1.0, 0.5, event_map={"open": "open", "close": "close"})
    # windows crossing the transition at 5 s are dropped
    assert ws2.class_counts() == {"close": 9, "open": 9}
    assert all((o + 1.0 <= 5.0) or (o >= 5.0) for o in ws2.metadata.onset_s)


@pytest.mark.realdata
def test_physionet_subject1_left_right_imagery(data_dir, tmp_path):
    ws = load_windows("physionet-mi", [1], "left-right-imagery", data_dir=str(data_dir), cache_dir=str(tmp_path))
    assert ws.X.shape == (45, 64, 480) and ws.X.dtype == np.float32 and ws.sfreq == 160.0
    counts = ws.class_counts()
    assert set(counts) == {"left_hand", "right_hand"} and abs(counts["left_hand"] - counts["right_hand"]) <= 1
    assert sorted(set(ws.metadata.run), key=int) == ["4", "8", "12"]
    assert (ws.metadata.groupby("run").size() == 15).all()
    assert not ws.synthetic


@pytest.mark.realdata
def test_cache_hit_opens_no_edf_and_params_change_key(data_dir, tmp_path, monkeypatch):
    kw = dict(data_dir=str(data_dir), cache_dir=str(tmp_path))
    pre = [{"name": "bandpass", "l_freq": 4.0, "h_freq": 38.0}]
    first = load_windows("physionet-mi", [1], "left-right-imagery", preprocessing=pre, **kw)
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 1  # one subject, one entry

    def boom(*a, **k):
        raise AssertionError("an EDF file was opened on a cache hit")

    monkeypatch.setattr(edf_module, "read_edf", boom)
    monkeypatch.setattr("biodecode.datasets.physionet_mi.read_edf", boom)
    second = load_windows("physionet-mi", [1], "left-right-imagery", preprocessing=pre, **kw)
    assert isinstance(second.X, ConcatRows) and all(isinstance(p, np.memmap) for p in second.X.parts)
    np.testing.assert_array_equal(np.asarray(second.X), np.asarray(first.X))
    np.testing.assert_array_equal(second.y, first.y)
    assert second.metadata.equals(first.metadata) and second.classes == first.classes
    # a changed parameter is a new entry (it would need the EDF files, which now raise)
    with pytest.raises(AssertionError, match="EDF file was opened"):
        load_windows("physionet-mi", [1], "left-right-imagery", tmax=2.0, preprocessing=pre, **kw)
    with pytest.raises(AssertionError, match="EDF file was opened"):
        load_windows("physionet-mi", [1], "left-right-imagery",
                     preprocessing=[{"name": "bandpass", "l_freq": 4.0, "h_freq": 30.0}], **kw)


def test_synthetic_windows_are_labelled_synthetic(tmp_path):
    ws = load_windows("synthetic-mi", [1], "left-right-imagery", cache_dir=str(tmp_path))
    assert ws.synthetic and ws.X.shape == (45, 22, 480)
    manifest = json.loads(next(tmp_path.glob("*/manifest.json")).read_text())
    assert manifest["info"]["synthetic"] is True
