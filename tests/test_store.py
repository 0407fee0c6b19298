"""The window store: entries per unit keyed by file content, checks on every read, killed writers,
concurrent writers, parallel builds, and lazy window sets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import biodecode.loading as loading
import biodecode.store as store_module
from biodecode.lazyarray import ConcatRows
from biodecode.loading import load_windows
from biodecode.store import WindowStore, _manifest_digest, _sha256_file, entry_key

SYN = dict(task="left-right-imagery", dataset_kwargs={"n_channels": 8, "n_trials": 6})


def _entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


def _new_process(monkeypatch) -> None:
    """Forget which entries this process has verified, as a new process would."""
    monkeypatch.setattr(store_module, "_VERIFIED", set())


def _count_builds(monkeypatch) -> list[str]:
    built: list[str] = []
    real = loading._build_windows

    def counting(ds, unit, spec, classes):
        built.append(unit)
        return real(ds, unit, spec, classes)

    monkeypatch.setattr(loading, "_build_windows", counting)
    return built


def _rewrite_manifest(entry: Path, edit) -> None:
    """Edit a manifest and re-sign it, as a buggy writer (not a damaged disk) would."""
    man = json.loads((entry / "manifest.json").read_text())
    edit(man)
    for name in ("X.npy", "y.npy", "meta.npz"):
        man["sizes"][name] = (entry / name).stat().st_size
        man["sha256"][name] = _sha256_file(entry / name)
    man["digest"] = _manifest_digest(man)
    (entry / "manifest.json").write_text(json.dumps(man))


def test_entry_key_is_stable_and_sensitive():
    about = {"dataset": "x", "unit": "1", "files": [["a.edf", 10, "ab"]], "preprocessing": [{"name": "car"}]}
    assert entry_key(about) == entry_key(dict(reversed(list(about.items()))))
    assert entry_key(about) != entry_key({**about, "unit": "2"})
    assert entry_key(about) != entry_key({**about, "files": [["a.edf", 10, "ac"]]})  # bytes changed


def test_added_subject_builds_only_that_subject(tmp_path, monkeypatch):
    built = _count_builds(monkeypatch)
    a = load_windows("synthetic-mi", [1, 2], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    assert sorted(built) == ["1", "2"] and len(_entries(tmp_path)) == 2
    b = load_windows("synthetic-mi", [1, 2, 3], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    assert sorted(built) == ["1", "2", "3"]  # only subject 3 was built
    assert isinstance(b.X, ConcatRows) and len(b.X.parts) == 3
    np.testing.assert_array_equal(np.asarray(b.X)[: len(a)], np.asarray(a.X))
    c = load_windows("synthetic-mi", [2], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    assert sorted(built) == ["1", "2", "3"] and set(c.metadata.subject) == {"2"}


def test_parallel_build_equals_serial_and_uncached(tmp_path, monkeypatch):
    from biodecode import sharedwork

    subjects = [1, 2, 3, 4, 5, 6]
    serial = load_windows("synthetic-mi", subjects, cache_dir=str(tmp_path / "a"), n_jobs=1, **SYN)
    seen = []
    monkeypatch.setattr(sharedwork, "WORKER_START_S", 0.0)  # a worker process builds some units
    parallel = load_windows("synthetic-mi", subjects, cache_dir=str(tmp_path / "b"), n_jobs=2,
                            progress=lambda unit, done, total: seen.append((done, total)), **SYN)
    plain = load_windows("synthetic-mi", subjects, use_cache=False, **SYN)
    for ws in (parallel, plain):
        np.testing.assert_array_equal(np.asarray(ws.X), np.asarray(serial.X))
        np.testing.assert_array_equal(ws.y, serial.y)
        assert ws.metadata.equals(serial.metadata) and ws.classes == serial.classes
    assert seen[-1] == (6, 6) and len(seen) == 6  # progress per unit


def test_lazy_subsets_read_only_their_rows(tmp_path):
    ws = load_windows("synthetic-mi", [1, 2, 3], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    full = np.asarray(ws.X)
    idx = np.array([40, 3, 20, 21, 0])
    sub = ws.subset(idx)
    assert isinstance(sub.X, ConcatRows) and sub.X.shape == (5, *full.shape[1:])
    np.testing.assert_array_equal(sub.X[np.arange(5)], full[idx])
    np.testing.assert_array_equal(sub.X[1], full[3])
    np.testing.assert_array_equal(sub.subset([4, 0]).X[:], full[[0, 40]])
    np.testing.assert_array_equal(ws.X[5:9, :2, ::3], full[5:9, :2, ::3])
    mask = ws.y == 1
    np.testing.assert_array_equal(ws.subset(mask).X[:], full[mask])


def test_flipped_bytes_in_a_stored_array_are_never_served(tmp_path, monkeypatch):
    first = load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    expected = np.asarray(first.X).copy()
    (entry,) = _entries(tmp_path)
    raw = bytearray((entry / "X.npy").read_bytes())
    raw[-1000] ^= 0xFF  # same size, one byte of data changed
    (entry / "X.npy").write_bytes(bytes(raw))
    store = WindowStore(tmp_path)
    assert store.get(entry.name, verify=True) is None  # verify=True checks every read
    assert not entry.exists()  # removed
    # in a new process the first use is verified: damaged again, it is rebuilt, not served
    load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    (entry / "X.npy").write_bytes(bytes(raw))
    _new_process(monkeypatch)
    built = _count_builds(monkeypatch)
    again = load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    assert built == ["1"]
    np.testing.assert_array_equal(np.asarray(again.X), expected)


@pytest.mark.parametrize("edit", [
    lambda m: m.__setitem__("classes", list(reversed(m["classes"]))),
    lambda m: m.__setitem__("sfreq", 250.0),
    lambda m: m["ch_names"].__setitem__(0, "Cz"),
    lambda m: m.__setitem__("shape", [m["shape"][0] - 1, *m["shape"][1:]]),
], ids=["classes", "sfreq", "ch_names", "shape"])
def test_edited_manifest_is_rebuilt(tmp_path, monkeypatch, edit):
    first = load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    (entry,) = _entries(tmp_path)
    man = json.loads((entry / "manifest.json").read_text())
    edit(man)
    (entry / "manifest.json").write_text(json.dumps(man))
    built = _count_builds(monkeypatch)
    again = load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    assert built == ["1"]
    assert again.classes == first.classes and again.sfreq == first.sfreq and again.ch_names == first.ch_names


def test_labels_out_of_range_or_inconsistent_are_rejected(tmp_path, monkeypatch):
    load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    (entry,) = _entries(tmp_path)
    y = np.load(entry / "y.npy")
    y[3] = 7  # no such class
    np.save(entry / "y.npy", y)
    _rewrite_manifest(entry, lambda m: None)
    _new_process(monkeypatch)
    assert WindowStore(tmp_path).get(entry.name) is None
    # a manifest whose class list no longer matches the metadata's labels
    load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    _rewrite_manifest(entry, lambda m: m.__setitem__("classes", list(reversed(m["classes"]))))
    assert WindowStore(tmp_path).get(entry.name) is None


def test_killed_writer_leaves_a_folder_that_is_cleaned_up(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from biodecode.loading import load_windows
        real = np.savez
        def die(*a, **k):
            real(*a, **k)
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of a write
        np.savez = die
        load_windows("synthetic-mi", [1], cache_dir={str(tmp_path)!r}, n_jobs=1, task="left-right-imagery",
                     dataset_kwargs={{"n_channels": 8, "n_trials": 6}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and not _entries(tmp_path)
    ws = load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    assert len(ws) > 0 and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_concurrent_writers_build_the_same_entries_safely(tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np
        from biodecode.loading import load_windows
        ws = load_windows("synthetic-mi", [1, 2], cache_dir={str(tmp_path)!r}, n_jobs=1, task="left-right-imagery",
                          dataset_kwargs={{"n_channels": 8, "n_trials": 6}})
        print(float(np.asarray(ws.X).sum()), len(ws))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-1500:] for o in outs]
    assert len({o[0] for o in outs}) == 1
    assert len(_entries(tmp_path)) == 2 and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_racing_writers_of_one_entry_never_leave_a_reader_without_it(tmp_path):
    """Several processes put and read back the same key at once (as DDP ranks do): each must read
    the entry back whole every time; no writer may delete one another reader is using."""
    script = textwrap.dedent(f"""
        import numpy as np, pandas as pd
        from biodecode.store import WindowStore
        from biodecode.windows import WindowSet
        X = np.arange(40 * 4 * 50, dtype=np.float32).reshape(40, 4, 50)
        ws = WindowSet(X, np.arange(40) % 2, pd.DataFrame({{"subject": np.ones(40, int)}}), ["a", "b"], 100.0,
                       ["c1", "c2", "c3", "c4"], {{}})
        st = WindowStore({str(tmp_path)!r})
        for i in range(25):
            st.put("k" * 32, ws, {{"i": 0}})
            got = st.get("k" * 32)
            assert got is not None, f"round {{i}}: entry vanished"
            assert float(np.asarray(got.X).sum()) == float(X.sum())
        print("ok")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-1500:] for o in outs]
    assert _entries(tmp_path) == [tmp_path / ("k" * 32)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.realdata
def test_another_data_folder_never_gets_this_folders_windows(data_dir, tmp_path):
    good, bad = tmp_path / "good" / "mitdb", tmp_path / "bad" / "mitdb"
    for d in (good, bad):
        d.mkdir(parents=True)
        for ext in ("hea", "dat", "atr"):
            shutil.copy(data_dir / "mitdb" / f"100.{ext}", d / f"100.{ext}")
    raw = bytearray((bad / "100.dat").read_bytes())
    for i in range(300_000, 310_000):
        raw[i] = 0  # a damaged copy: same name, same size, other bytes
    (bad / "100.dat").write_bytes(bytes(raw))
    cache = tmp_path / "cache"
    kw = dict(cache_dir=str(cache), n_jobs=1)
    from_bad = load_windows("mitdb", ["100"], "aami-beats", data_dir=str(tmp_path / "bad"), **kw)
    from_good = load_windows("mitdb", ["100"], "aami-beats", data_dir=str(tmp_path / "good"), **kw)
    truth = load_windows("mitdb", ["100"], "aami-beats", data_dir=str(tmp_path / "good"), use_cache=False)
    np.testing.assert_array_equal(np.asarray(from_good.X), np.asarray(truth.X))
    assert not np.array_equal(np.asarray(from_bad.X), np.asarray(truth.X))
    assert len(_entries(cache)) == 2
    # the same folder, its file edited in place (same size, new bytes): a new entry, not the old one
    os.utime(good / "100.dat", ns=(0, 0))
    (good / "100.dat").write_bytes(bytes(raw))
    edited = load_windows("mitdb", ["100"], "aami-beats", data_dir=str(tmp_path / "good"), **kw)
    np.testing.assert_array_equal(np.asarray(edited.X), np.asarray(from_bad.X))


def _age(entry: Path, days: float) -> None:
    t = __import__("time").time() - days * 86400
    os.utime(entry, (t, t))


def test_prune_removes_entries_not_used_lately_and_a_request_rebuilds_them(tmp_path, monkeypatch):
    load_windows("synthetic-mi", [1, 2, 3], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    store = WindowStore(tmp_path)
    by_unit = {e.unit: e for e in store.entries()}
    assert sorted(by_unit) == ["1", "2", "3"] and all(e.dataset == "synthetic-mi" and e.n_windows for e in by_unit.values())
    for unit, days in (("1", 40), ("2", 40), ("3", 1)):
        _age(tmp_path / by_unit[unit].key, days)
    load_windows("synthetic-mi", [2], cache_dir=str(tmp_path), n_jobs=1, **SYN)  # a hit marks 2 as used now
    assert store.prune(older_than_s=30 * 86400, dry_run=True)[0].unit == "1"
    assert len(store.entries()) == 3  # a dry run removes nothing
    gone = store.prune(older_than_s=30 * 86400)
    assert [e.unit for e in gone] == ["1"] and sorted(e.unit for e in store.entries()) == ["2", "3"]
    built = _count_builds(monkeypatch)
    load_windows("synthetic-mi", [1, 2, 3], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    assert built == ["1"]  # only the pruned entry is built again


def test_prune_to_a_size_removes_the_least_recently_used_first(tmp_path):
    load_windows("synthetic-mi", [1, 2, 3], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    store = WindowStore(tmp_path)
    entries = {e.unit: e for e in store.entries()}
    for unit, days in (("1", 3), ("2", 9), ("3", 1)):
        _age(tmp_path / entries[unit].key, days)
    one = entries["1"].bytes
    gone = store.prune(max_bytes=sum(e.bytes for e in entries.values()) - one)  # room for two: the oldest goes
    assert [e.unit for e in gone] == ["2"]
    assert [e.unit for e in store.prune(max_bytes=0)] == ["1", "3"] and store.entries() == []
    with pytest.raises(ValueError, match="older_than_s"):
        store.prune()


def test_cache_command_reports_and_prunes(tmp_path, capsys, monkeypatch):
    from biodecode.cli import main

    load_windows("synthetic-mi", [1, 2], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    for e in WindowStore(tmp_path).entries():
        _age(tmp_path / e.key, 60)
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 entries" in out and "synthetic-mi" in out and "last used 60.0 days ago" in out
    listings = []
    real_entries = WindowStore.entries
    monkeypatch.setattr(WindowStore, "entries", lambda self: listings.append(1) or real_entries(self))
    assert main(["cache", "prune", "--older-than", "30d", "--dry-run", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "would remove 2 entries" in out and "0 left" in out and len(listings) == 1  # manifests read once
    monkeypatch.setattr(WindowStore, "entries", real_entries)
    assert len(WindowStore(tmp_path).entries()) == 2
    assert main(["cache", "prune", "--cache-dir", str(tmp_path)]) == 2  # says what to give
    assert "--older-than" in capsys.readouterr().err
    assert main(["cache", "prune", "--older-than", "30d", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "removed 2 entries" in out and "0 left" in out and WindowStore(tmp_path).entries() == []


def test_a_step_s_engine_version_is_part_of_the_key(tmp_path, monkeypatch):
    """rr-channel's peaks come from wfdb's XQRS: another wfdb version rebuilds, never serves the old windows."""
    import importlib.metadata

    built = _count_builds(monkeypatch)
    kw = {**SYN, "preprocessing": [{"name": "rr-channel"}]}
    load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **kw)
    load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **kw)
    assert built == ["1"]  # the second read was a hit
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda lib: "0.0-other" if lib == "wfdb" else real(lib))
    ws = load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **kw)
    assert built == ["1", "1"] and ws.ch_names[-1] == "RR"
    # a pipeline without such a step keeps the key it always had (no engines in it)
    load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    load_windows("synthetic-mi", [1], cache_dir=str(tmp_path), n_jobs=1, **SYN)
    assert built == ["1", "1", "1"]
