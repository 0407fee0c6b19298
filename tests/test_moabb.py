"""MOABB both ways, offline with MOABB's FakeDataset: a MOABB dataset and paradigm as a biodecode
dataset (every protocol, MOABB's own epochs and labels), and biodecode's models inside MOABB's
WithinSession and CrossSubject evaluations."""

import json
import warnings

import numpy as np
import pytest

pytest.importorskip("moabb")

from biodecode.cli import main  # noqa: E402
from biodecode.datasets import get_dataset  # noqa: E402
from biodecode.datasets.moabb_bridge import moabb_pipeline  # noqa: E402
from biodecode.errors import ConfigError  # noqa: E402
from biodecode.loading import load_windows  # noqa: E402

FAKE = {"event_list": ["left_hand", "right_hand"], "n_sessions": 2, "n_runs": 2, "n_subjects": 3, "paradigm": "imagery",
        "seed": 7}


def _fake():
    from moabb.datasets.fake import FakeDataset

    return FakeDataset(**FAKE)


def test_a_moabb_dataset_is_a_biodecode_dataset(tmp_path):
    from moabb.paradigms import LeftRightImagery

    ds = get_dataset("moabb:FakeDataset", moabb_kwargs=FAKE)
    assert "LeftRightImagery" in ds.tasks and ds.task("LeftRightImagery").classes == ("left_hand", "right_hand")
    ws = load_windows("moabb:FakeDataset", [1, 2], task="LeftRightImagery", dataset_kwargs={"moabb_kwargs": FAKE},
                      cache_dir=str(tmp_path))
    # the same epochs and labels as MOABB's own get_data, in microvolts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X, y, meta = LeftRightImagery().get_data(_fake(), subjects=[1, 2])
    np.testing.assert_allclose(np.asarray(ws.X), X, rtol=1e-5, atol=1e-4)  # MOABB's arrays: microvolts
    assert list(ws.metadata["label"]) == list(y)
    assert list(ws.groups("subject")) == [str(s) for s in meta["subject"]]
    assert set(ws.groups("session")) == {"0", "1"} and ws.synthetic
    with pytest.raises(ConfigError, match="no dataset 'NoSuchSet'"):
        get_dataset("moabb:NoSuchSet")
    with pytest.raises(ConfigError, match="can only scale"):
        load_windows("moabb:FakeDataset", [1], task="LeftRightImagery", dataset_kwargs={"moabb_kwargs": FAKE},
                     preprocessing=[{"name": "bandpass", "l_freq": 8.0, "h_freq": 30.0}])
    with pytest.raises(ConfigError, match=r"no subject\(s\) \[9\]"):
        load_windows("moabb:FakeDataset", [9], task="LeftRightImagery", dataset_kwargs={"moabb_kwargs": FAKE})


def test_every_protocol_runs_on_a_moabb_dataset(tmp_path):
    common = ["--dataset", "moabb:FakeDataset", "--task", "LeftRightImagery", "--set",
              "data.dataset_kwargs.moabb_kwargs=" + json.dumps(FAKE)]
    assert main(["-q", "train", *common, "--subjects", "1-3", "--model", "ts-lr", "--protocol", "loso",
                 "--out", str(tmp_path / "loso")]) == 0
    rep = json.loads((tmp_path / "loso" / "metrics.json").read_text())
    assert [f["test_groups"] for f in rep["folds"]] == [["1"], ["2"], ["3"]]
    assert main(["-q", "train", *common, "--subjects", "1", "--model", "eegnet", "--epochs", "1",
                 "--protocol", "cross-session", "--out", str(tmp_path / "days")]) == 0
    # the model file carries the MOABB dataset: evaluate reads it back through MOABB
    assert main(["-q", "evaluate", str(tmp_path / "days" / "model.pt"), "--subjects", "2",
                 "--out", str(tmp_path / "ev")]) == 0


def test_biodecode_models_inside_moabb_evaluations(tmp_path):
    from moabb.evaluations import CrossSubjectEvaluation, WithinSessionEvaluation
    from moabb.paradigms import LeftRightImagery

    pipelines = {"bd-eegnet": moabb_pipeline("eegnet", sfreq=128.0, max_epochs=2),
                 "bd-ts-lr": moabb_pipeline("ts-lr", sfreq=128.0)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        within = WithinSessionEvaluation(paradigm=LeftRightImagery(), datasets=[_fake()], overwrite=True,
                                         hdf5_path=str(tmp_path / "within"), n_jobs=1).process(pipelines)
        cross = CrossSubjectEvaluation(paradigm=LeftRightImagery(), datasets=[_fake()], overwrite=True,
                                       hdf5_path=str(tmp_path / "cross"), n_jobs=1).process(pipelines)
    assert set(within["pipeline"]) == {"bd-eegnet", "bd-ts-lr"} and len(within) == 2 * 3 * 2  # subjects x sessions
    assert set(cross["pipeline"]) == {"bd-eegnet", "bd-ts-lr"} and set(cross["subject"].astype(str)) == {"1", "2", "3"}
    assert within["score"].between(0, 1).all() and cross["score"].between(0, 1).all()
