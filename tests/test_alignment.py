"""Euclidean alignment: per-subject whitening that is exact, lazy over the store, carried by the
model file into evaluate, and applied in the streaming decoder from a calibration segment."""

import json

import numpy as np
import pytest

from biodecode.alignment import AlignedRows, align_windows, alignment_matrix
from biodecode.config import RunConfig
from biodecode.deploy.predictor import Predictor
from biodecode.deploy.stream import StreamDecoder
from biodecode.errors import ConfigError
from biodecode.evaluation.saved import evaluate_model
from biodecode.experiment import run_experiment
from biodecode.lazyarray import ConcatRows, take_rows
from biodecode.loading import load_windows

SYN = dict(task="left-right-imagery", dataset_kwargs={"n_channels": 6, "n_trials": 12})


def _mean_cov(X):
    x = np.asarray(X, np.float64)
    x = x - x.mean(-1, keepdims=True)
    return np.einsum("nct,ndt->cd", x, x) / x.shape[-1] / len(x)


def test_each_subjects_aligned_mean_covariance_is_the_identity(tmp_path):
    ws = load_windows("synthetic-mi", [1, 2, 3], cache_dir=str(tmp_path), **SYN)
    assert isinstance(ws.X, ConcatRows)
    al = align_windows(ws, by="subject")
    assert isinstance(al.X, AlignedRows) and al.X.shape == ws.X.shape
    g = ws.groups("subject")
    for s in ("1", "2", "3"):
        rows = np.flatnonzero(g == s)
        np.testing.assert_allclose(_mean_cov(al.X[rows]), np.eye(6), atol=1e-4)
        assert not np.allclose(_mean_cov(ws.X[rows]), np.eye(6), atol=1e-2)  # it was not so before
    # lazy views agree with reading everything at once, in any row order
    full = np.asarray(al.X)
    idx = np.array([5, 0, 40, 3, 70])
    np.testing.assert_allclose(al.X[idx], full[idx], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(take_rows(al.X, idx)), full[idx], rtol=1e-6)
    np.testing.assert_allclose(al.X[7], full[7], rtol=1e-6)
    sub = al.subset(idx)
    np.testing.assert_allclose(np.asarray(sub.X), full[idx], rtol=1e-6)


def test_alignment_matrix_inverts_the_square_root():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    X = np.einsum("cd,ndt->nct", A, rng.standard_normal((200, 4, 300)))
    M = alignment_matrix(X)
    np.testing.assert_allclose(M @ _mean_cov(X) @ M.T, np.eye(4), atol=1e-8)
    np.testing.assert_allclose(M, M.T, atol=1e-10)


def _run_then_evaluate(tmp_path, alignment: str, model: str) -> tuple[dict, dict]:
    """A LOSO run on three synthetic subjects with ``alignment``, then ``evaluate`` of its model file on
    subject 3, which must give the run's own last fold's score (the file carries the alignment)."""
    cfg = RunConfig.from_dict({"data": {"dataset": "synthetic-mi", "task": "left-right-imagery", "subjects": [1, 2, 3],
                                        "dataset_kwargs": SYN["dataset_kwargs"], "alignment": alignment},
                               "model": {"name": model}, "protocol": {"name": "loso"}})
    rep = run_experiment(cfg, tmp_path / "run")
    ev = evaluate_model(tmp_path / "run" / "model.skops", [3], out_dir=tmp_path / "ev")
    last = json.loads((tmp_path / "run" / "metrics.json").read_text())["folds"][-1]
    assert ev["metrics"]["accuracy"] == pytest.approx(last["metrics"]["accuracy"])
    return rep, ev


def test_a_run_with_alignment_carries_it_into_evaluate(tmp_path):
    rep, ev = _run_then_evaluate(tmp_path, "euclidean", "ts-lr")
    assert rep["summary"]["accuracy"]["mean"] > 0.6
    assert ev["n_fitted_windows"] == 0
    with pytest.raises(ConfigError, match="data.alignment must be one of"):
        RunConfig.from_dict({"data": {"alignment": "riemann"}})


class _Recorder(Predictor):
    def __init__(self):
        self.meta = {"sfreq": 100.0, "ch_names": ["a", "b", "c"], "n_times": 50, "preprocessing": [],
                     "classes": ["x", "y"], "alignment": {"method": "euclidean", "by": ["subject"]}}
        self.windows = []

    def logits(self, X):
        self.windows.extend(np.array(w) for w in X)
        return np.zeros((len(X), 2), np.float32)


def test_the_stream_decoder_aligns_from_a_calibration_segment():
    rng = np.random.default_rng(1)
    A = np.array([[2.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.1, 0.0, 0.5]])
    signal = (A @ rng.standard_normal((3, 3000))).astype(np.float32)
    rec = _Recorder()
    dec = StreamDecoder(rec, hop_s=0.5)
    with pytest.raises(ConfigError, match="call calibrate"):
        dec.push(signal[:, :10], 0.0)
    M = dec.calibrate(signal[:, :1000])
    x = signal[:, 1000:]
    dec.push(x, 0.0)
    assert rec.windows
    np.testing.assert_allclose(rec.windows[0], M @ x[:, :50], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_mean_cov(np.stack(rec.windows)), np.eye(3), atol=0.15)  # whitened, up to sampling


def test_riemannian_recentring_puts_each_subjects_riemannian_mean_at_the_identity(tmp_path):
    try:
        from pyriemann.geometry.mean import mean_riemann
    except ImportError:
        from pyriemann.utils.mean import mean_riemann

    ws = load_windows("synthetic-mi", [1, 2], cache_dir=str(tmp_path), **SYN)
    al = align_windows(ws, by="subject", method="riemannian")
    assert al.info["alignment"] == {"method": "riemannian", "by": ["subject"]}
    g = ws.groups("subject")
    for s in ("1", "2"):
        x = np.asarray(al.X[np.flatnonzero(g == s)], np.float64)
        x = x - x.mean(-1, keepdims=True)
        covs = np.einsum("nct,ndt->ncd", x, x) / x.shape[-1]
        np.testing.assert_allclose(mean_riemann(covs), np.eye(6), atol=1e-4)
        # not the arithmetic mean: that one is not the identity after Riemannian re-centring
        assert not np.allclose(covs.mean(0), np.eye(6), atol=1e-3)
    # a run, evaluate and the streaming decoder all take the method from the config / model file
    _run_then_evaluate(tmp_path, "riemannian", "mdm")
    rec = _Recorder()
    rec.meta["alignment"] = {"method": "riemannian", "by": ["subject"]}
    dec = StreamDecoder(rec, hop_s=0.5)
    with pytest.raises(ConfigError, match="riemannian-aligned windows: call calibrate"):
        dec.push(np.zeros((3, 10), np.float32), 0.0)
    signal = np.random.default_rng(2).standard_normal((3, 2000)).astype(np.float32) * [[3.0], [1.0], [0.5]]
    M = dec.calibrate(signal)
    step = 25
    wins = np.stack([signal[:, e - 50:e] for e in range(50, 2001, step)])
    np.testing.assert_allclose(M, alignment_matrix(wins, "riemannian"), rtol=1e-5)


def test_aligned_rows_apply_their_matrices_with_numpy_blas_on_one_thread(monkeypatch):
    """Reading aligned batches anywhere (a user's own loop next to torch, not only fit) runs the
    alignment's matmul with NumPy's BLAS held to one thread, and lifts the limit afterwards; the
    values are the matrices applied row by row."""
    import biodecode.alignment as alignment
    from biodecode.threads import blas_threads

    seen: list[list[int]] = []
    einsum = np.einsum

    def recording_einsum(*args, **kwargs):
        seen.append(blas_threads())
        return einsum(*args, **kwargs)

    monkeypatch.setattr(alignment.np, "einsum", recording_einsum)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 3, 20)).astype(np.float32)
    mats = rng.standard_normal((2, 3, 3)).astype(np.float32)
    group = np.array([0, 1, 0, 1, 1, 0])
    before = blas_threads()
    rows = AlignedRows(base, group, mats)
    got = rows[np.array([4, 0, 3])]
    assert seen and all(t == [1] * len(t) for t in seen), seen
    assert blas_threads() == before
    want = np.stack([mats[group[i]] @ base[i] for i in (4, 0, 3)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_median_alignment_subtracts_each_groups_median_window_lazily(tmp_path):
    """``method="median"``: every window minus its own group's median window (per channel and sample),
    read lazily in any order; a minority of odd windows (ectopic beats) does not move the median."""
    from biodecode.alignment import CentredRows, median_window

    ws = load_windows("synthetic-mi", [1, 2, 3], cache_dir=str(tmp_path), **SYN)
    al = align_windows(ws, by="subject", method="median")
    assert isinstance(al.X, CentredRows) and al.info["alignment"] == {"method": "median", "by": ["subject"]}
    raw, g = np.asarray(ws.X), ws.groups("subject")
    full = np.asarray(al.X)
    for s in ("1", "2", "3"):
        rows = np.flatnonzero(g == s)
        np.testing.assert_allclose(full[rows], raw[rows] - np.median(raw[rows], axis=0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.median(full[rows], axis=0), 0.0, atol=1e-5)
    idx = np.array([5, 0, 40, 3, 70])
    np.testing.assert_allclose(al.X[idx], full[idx], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(take_rows(al.X, idx)), full[idx], rtol=1e-6)
    np.testing.assert_allclose(al.X[7], full[7], rtol=1e-6)
    np.testing.assert_allclose(al.X[idx, 1:3], full[idx, 1:3], rtol=1e-6)
    # "median-append": the raw channels, then the centred ones under their own names
    both = align_windows(ws, by="subject", method="median-append")
    assert both.X.shape == (len(ws), 12, ws.X.shape[2])
    assert both.ch_names == list(ws.ch_names) + [f"{c}-median" for c in ws.ch_names]
    np.testing.assert_allclose(np.asarray(both.X[idx]), np.concatenate([raw[idx], full[idx]], axis=1), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(take_rows(both.X, idx)), np.asarray(both.X[idx]), rtol=1e-6)

    # a typical beat plus 20% outliers: the median stays on the typical beat, the mean does not
    rng = np.random.default_rng(0)
    beat = np.sin(np.linspace(0, 3, 50))[None].astype(np.float32)
    X = np.repeat(beat[None], 100, axis=0) + 0.01 * rng.standard_normal((100, 1, 50)).astype(np.float32)
    X[:20] += 5.0
    np.testing.assert_allclose(median_window(X), beat, atol=0.02)
    assert np.abs(X.mean(0) - beat).max() > 0.9
    # a subsample bounds the rows read, and is the same on every call
    np.testing.assert_allclose(median_window(X, max_rows=60, seed=3), median_window(X, max_rows=60, seed=3))
    np.testing.assert_allclose(median_window(X, max_rows=60), beat, atol=0.1)
    # long multichannel windows: the byte cap reads fewer rows (never fewer than 100)
    class Rows:
        def __init__(self, X):
            self.X, self.shape, self.read = X, X.shape, 0

        def __len__(self):
            return len(self.X)

        def __getitem__(self, key):
            self.read += len(key)
            return self.X[key]

    big = np.repeat(X, 5, axis=0)  # 500 windows of 200 bytes
    r = Rows(big)
    median_window(r, max_bytes=200 * 150)
    assert r.read == 150
    r = Rows(big)
    median_window(r, max_bytes=200 * 10)
    assert r.read == 100
    X[3, 0, 7] = np.nan
    with pytest.raises(Exception, match="NaN or inf"):
        median_window(X)


def test_a_run_with_median_alignment_carries_it_into_evaluate_and_the_stream_refuses_it(tmp_path):
    _run_then_evaluate(tmp_path, "median", "csp-lda")
    for method in ("median", "median-append"):
        rec = _Recorder()
        rec.meta["alignment"] = {"method": method, "by": ["subject"]}
        with pytest.raises(ConfigError, match=f"median window \\(alignment '{method}'.*cannot apply it"):
            StreamDecoder(rec, hop_s=0.5)
