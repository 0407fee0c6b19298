"""Dataset registry, local loading on real files, and the download path on a loopback server."""

import hashlib
import http.server
import threading
import urllib.request
from functools import partial

import numpy as np
import pytest

from biodecode import ConfigError, DownloadError
from biodecode.datasets import download_file, get_dataset, list_datasets
from biodecode.datasets.download import data_root, parse_checksums
from biodecode.datasets.mitdb import DS1, DS2, PACED, RECORDS


def test_registry_lists_and_rejects():
    assert {"physionet-mi", "mitdb", "synthetic-mi"} <= set(list_datasets())
    with pytest.raises(ConfigError, match=r"unknown dataset 'nope'; available"):
        get_dataset("nope")


def test_every_option_that_changes_a_recording_is_in_the_store_key(tmp_path):
    """A dataset option left out of ``cache_identity`` would let the window store serve windows
    built with another value of it (mitdb's unknown_beats once did)."""
    import inspect

    from biodecode.datasets import dataset_class

    not_options = {"self", "path", "download", "base_url"}
    checked = 0
    for name in list_datasets():
        cls = dataset_class(name)
        options = [p for p in inspect.signature(cls.__init__).parameters if p not in not_options]
        try:
            identity = get_dataset(name, path=tmp_path).cache_identity()
        except ConfigError:  # needs options to exist at all (bids: a root folder)
            continue
        missing = [o for o in options if o not in cls.selection_options and o not in identity]
        assert not missing, f"{name}: option(s) {missing} change recordings but are not in cache_identity()"
        checked += 1
    assert checked >= 5


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("BIODECODE_DATA_DIR", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("BIODECODE_DATA_DIR")
    assert "biodecode" in str(data_root())


def test_physionet_subjects_and_bad_subjects():
    ds = get_dataset("physionet-mi")
    assert len(ds.subjects()) == 105 and 88 not in ds.subjects()
    assert len(get_dataset("physionet-mi", include_bad=True).subjects()) == 109
    with pytest.raises(ConfigError, match="subject 88 is excluded by default"):
        ds.files(88)
    with pytest.raises(ConfigError, match="out of range"):
        ds.files(110)
    assert ds.files(1, "left-right-imagery") == ["S001/S001R04.edf", "S001/S001R08.edf", "S001/S001R12.edf"]
    assert ds.task("4-class-imagery").event_map(6) == {"T1": "both_fists", "T2": "feet"}
    with pytest.raises(ConfigError, match="has no task 'x'"):
        ds.task("x")


def test_mitdb_lists():
    assert len(RECORDS) == 48 and len(DS1) == len(DS2) == 22
    assert not set(DS1) & set(DS2) and not set(PACED) & (set(DS1) | set(DS2))


@pytest.mark.realdata
def test_physionet_load_present_files_without_network(data_dir, monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("network touched although the files are present")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    recs = get_dataset("physionet-mi", path=data_dir).load([1], "left-right-imagery")
    assert [r.run for r in recs] == ["4", "8", "12"]
    assert recs[0].ch_names[:3] == ["FC5", "FC3", "FC1"] and "Cz" in recs[0].ch_names
    assert recs[0].meta["event_map"] == {"T1": "left_hand", "T2": "right_hand"}


@pytest.mark.realdata
def test_physionet_left_right_pools_real_and_imagined_runs(data_dir):
    """The `left-right` task reads runs 3, 4, 7, 8, 11, 12; each window names its run's condition."""
    from biodecode.loading import load_windows

    ws = load_windows("physionet-mi", subjects=[2], task="left-right", data_dir=data_dir, use_cache=False)
    imagery = load_windows("physionet-mi", subjects=[2], task="left-right-imagery", data_dir=data_dir, use_cache=False)
    runs = ws.metadata["run"].to_numpy()
    assert sorted(set(runs), key=int) == ["3", "4", "7", "8", "11", "12"]
    assert (ws.metadata["condition"].to_numpy() == ["imagined" if int(r) % 2 == 0 else "real" for r in runs]).all()
    assert ws.classes == ["left_hand", "right_hand"]
    # its imagined windows are the imagery task's windows, value for value
    mine = ws.metadata["condition"].to_numpy() == "imagined"
    assert mine.sum() == len(imagery) and (ws.metadata["trial"][mine].to_numpy() == imagery.metadata["trial"].to_numpy()).all()
    assert np.array_equal(np.asarray(ws.X[np.flatnonzero(mine)]), np.asarray(imagery.X[:]))
    assert (imagery.metadata["condition"] == "imagined").all()


@pytest.mark.realdata
def test_mitdb_load_and_verify(data_dir, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(AssertionError("network")))
    ds = get_dataset("mitdb", path=data_dir)
    assert "100" in ds.available() and len(ds.available()) >= 30
    (rec,) = ds.load(["100"])
    assert rec.subject == "100" and rec.record == "100" and rec.sfreq == 360
    assert ds.verify(["100.hea", "100.atr"]) == {"100.hea": True, "100.atr": True}


@pytest.mark.realdata
def test_missing_file_with_downloads_off(data_dir, tmp_path):
    """A data folder that holds subject 1 only (links to the real files): subject 2 is missing."""
    src = data_dir / "eegmmidb" / "S001"
    dest = tmp_path / "eegmmidb" / "S001"
    dest.mkdir(parents=True)
    for f in src.iterdir():
        (dest / f.name).symlink_to(f)
    ds = get_dataset("physionet-mi", path=tmp_path, download=False)
    assert len(ds.load([1], "left-right-imagery")) == 3
    with pytest.raises(FileNotFoundError, match=r"S002R04\.edf: missing and downloads are off"):
        ds.load([2], "left-right-imagery")


# ------------------------------------------------------------------ downloads on loopback

class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, honouring 'Range: bytes=N-' like PhysioNet does."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        self.server.requests.append((self.path, rng))
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
            self.send_response(206)
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "remote"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_RangeHandler, directory=str(root)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_port}/", httpd.requests
    httpd.shutdown()


def test_download_verifies_and_resumes(server, tmp_path):
    root, url, requests = server
    payload = bytes(range(256)) * 1000
    (root / "f.bin").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "cache" / "f.bin"
    dest.parent.mkdir()
    (dest.parent / "f.bin.part").write_bytes(payload[:1000])  # an interrupted earlier download
    assert download_file(url + "f.bin", dest, sha).read_bytes() == payload
    assert requests[-1] == ("/f.bin", "bytes=1000-")
    assert not (dest.parent / "f.bin.part").exists()
    n = len(requests)
    download_file(url + "f.bin", dest, sha)  # present: no request
    assert len(requests) == n


def test_download_checksum_mismatch_leaves_nothing(server, tmp_path):
    root, url, _ = server
    (root / "g.bin").write_bytes(b"tampered")
    dest = tmp_path / "g.bin"
    with pytest.raises(DownloadError, match=r"checksum mismatch for g\.bin"):
        download_file(url + "g.bin", dest, "0" * 64)
    assert not dest.exists() and not (tmp_path / "g.bin.part").exists()


def test_download_http_error_names_url(server, tmp_path):
    _, url, _ = server
    with pytest.raises(DownloadError, match=r"missing\.bin: HTTP 404"):
        download_file(url + "missing.bin", tmp_path / "missing.bin")


@pytest.mark.realdata
def test_dataset_download_path_with_published_checksums(server, tmp_path, data_dir):
    """The real fetch code against a loopback mirror in PhysioNet's layout."""
    root, url, requests = server
    (root / "S001").mkdir()
    src = data_dir / "eegmmidb"
    for run in (4, 8, 12):
        name = f"S001/S001R{run:02d}.edf"
        (root / name).write_bytes((src / name).read_bytes())
    (root / "SHA256SUMS.txt").write_text((src / "SHA256SUMS.txt").read_text())
    ds = get_dataset("physionet-mi", path=tmp_path / "data", base_url=url)
    recs = ds.load([1], "left-right-imagery")
    assert len(recs) == 3 and (tmp_path / "data" / "eegmmidb" / "SHA256SUMS.txt").is_file()
    assert {p for p, _ in requests} == {"/SHA256SUMS.txt", "/S001/S001R04.edf", "/S001/S001R08.edf", "/S001/S001R12.edf"}
    sums = parse_checksums((src / "SHA256SUMS.txt").read_text())
    assert all(ds.verify([f"S001/S001R{r:02d}.edf" for r in (4, 8, 12)]).values())
    assert len(sums) >= 12
    # corrupt the mirror: a fresh download must fail the checksum and keep nothing
    (root / "S001" / "S001R04.edf").write_bytes(b"0" * 100)
    ds2 = get_dataset("physionet-mi", path=tmp_path / "data2", base_url=url)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        ds2.load([1], "left-right-imagery")
    assert not (tmp_path / "data2" / "eegmmidb" / "S001" / "S001R04.edf").exists()
