"""EEG-BIDS through mne-bids: a folder the test writes from the PhysioNet EDF files in ../shared/data
is read as a dataset with subjects, sessions and runs; its windows are the ones the EDF files hold,
every protocol runs on it, and its events.tsv is part of the window store's key."""

import json

import numpy as np
import pytest

from biodecode.cli import main
from biodecode.datasets import get_dataset
from biodecode.errors import ConfigError
from biodecode.loading import load_windows

KW = {"classes": ["left", "right"]}


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory, data_dir):
    import mne
    import mne_bids

    root = tmp_path_factory.mktemp("bids")
    for s in (1, 2):
        for ses, run in (("1", 4), ("2", 8)):
            raw = mne.io.read_raw_edf(data_dir / "eegmmidb" / f"S{s:03d}" / f"S{s:03d}R{run:02d}.edf", verbose="error")
            raw.annotations.rename({"T0": "rest", "T1": "left", "T2": "right"})
            bp = mne_bids.BIDSPath(subject=f"{s:02d}", session=ses, task="motorimagery", run=run, root=root,
                                   datatype="eeg")
            mne_bids.write_raw_bids(raw, bp, overwrite=True, verbose=False, allow_preload=False)
    return root


def test_a_bids_folder_is_a_dataset(bids_root):
    ds = get_dataset("bids", root=bids_root)
    assert ds.subjects() == ["01", "02"] and ds.bids_task == "motorimagery"
    assert ds.classes == ["left", "rest", "right"]  # every trial type by default
    task = ds.task("motorimagery")
    assert task.defaults["tmax"] == pytest.approx(4.1, abs=0.1)  # the events' median duration
    assert ds.label(1) == "01" and any(f.endswith("_events.tsv") for f in ds.files(1))
    with pytest.raises(ConfigError, match="not a BIDS root"):
        get_dataset("bids", root=bids_root / "sub-01")
    with pytest.raises(ConfigError, match="no BIDS task 'rest'"):
        get_dataset("bids", root=bids_root, bids_task="rest")
    with pytest.raises(ConfigError, match=r"trial types \['feet'\] are in no motorimagery events.tsv"):
        get_dataset("bids", root=bids_root, classes=["left", "feet"])
    with pytest.raises(ConfigError, match="no subject '7'"):
        ds.files("7")
    with pytest.raises(ConfigError, match="give the BIDS root"):
        get_dataset("bids")


def test_bids_windows_are_what_the_edf_files_hold(bids_root, data_dir, tmp_path):
    ws = load_windows("bids", ["01"], task="motorimagery", tmax=3.0, data_dir=str(data_dir), cache_dir=str(tmp_path),
                      dataset_kwargs={"root": str(bids_root), **KW})
    ref = load_windows("physionet-mi", [1], task="left-right-imagery", data_dir=str(data_dir), cache_dir=str(tmp_path))
    assert set(ws.groups("session")) == {"1", "2"} and set(ws.groups("run")) == {"4", "8"}
    for run in ("4", "8"):
        a = ws.subset(ws.groups("run") == run)
        b = ref.subset(ref.groups("run") == run)
        np.testing.assert_allclose(np.asarray(a.X), np.asarray(b.X), rtol=1e-5, atol=1e-4)
        assert [x.split("_")[0] for x in b.metadata["label"]] == list(a.metadata["label"])
        np.testing.assert_allclose(a.metadata["onset_s"], b.metadata["onset_s"])


def test_every_protocol_runs_on_bids_and_events_tsv_is_part_of_the_key(bids_root, data_dir, tmp_path):
    common = ["--dataset", "bids", "--task", "motorimagery", "--set", f"data.dataset_kwargs.root={bids_root}",
              "--set", "data.dataset_kwargs.classes=[left,right]", "--set", "data.tmax=3.0", "--model", "csp-lda",
              "--data-dir", str(data_dir)]
    assert main(["-q", "train", *common, "--protocol", "loso", "--subjects", "01-02", "--out", str(tmp_path / "a")]) == 0
    rep = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert [f["test_groups"] for f in rep["folds"]] == [["01"], ["02"]]
    assert main(["-q", "train", *common, "--protocol", "cross-session", "--subjects", "1", "--out", str(tmp_path / "b")]) == 0
    assert main(["-q", "train", *common, "--train-groups", "01", "--test-groups", "02", "--out", str(tmp_path / "c")]) == 0
    # an edited events.tsv (one trial relabelled) is a new store entry with the new label, not a stale hit
    kw = dict(task="motorimagery", tmax=3.0, data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"),
              dataset_kwargs={"root": str(bids_root), **KW})
    before = load_windows("bids", ["02"], **kw)
    events = next((bids_root / "sub-02" / "ses-1" / "eeg").glob("*_events.tsv"))
    lines = events.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if "\tleft\t" in line)
    lines[i] = lines[i].replace("\tleft\t", "\tright\t")
    events.write_text("\n".join(lines) + "\n")
    after = load_windows("bids", ["02"], **kw)
    assert (after.metadata["label"] == "right").sum() == (before.metadata["label"] == "right").sum() + 1
