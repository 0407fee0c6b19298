"""The fit loop, checkpoints, augmentation, DDP, and the scikit-learn estimator."""

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from biodecode import ConfigError, DataFormatError
from biodecode.datasets.synthetic import generate_mi_run
from biodecode.models import create_model
from biodecode.preprocessing import Pipeline
from biodecode.training import (Augmenter, TrainConfig, class_weights_for, fit, load_model, predict_proba, save_model,
                                training_class_weights)
from biodecode.training.data import make_loader
from biodecode.training.module import recalibrate_batchnorm
from biodecode.windows import make_event_windows

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def windows():
    band = Pipeline.from_config([{"name": "bandpass", "l_freq": 6.0, "h_freq": 30.0}])
    recs = [band.apply(generate_mi_run(s, r, n_trials=30, seed=2, rhythm_gain=5.0,
                                       channels=("C3", "C1", "Cz", "C2", "C4", "FC3", "FC4", "CP3")))
            for s in (1, 2) for r in (4, 8)]
    ws = make_event_windows(recs, 0.5, 2.5)
    perm = np.random.default_rng(0).permutation(len(ws))  # mix subjects and runs on both sides
    return np.asarray(ws.X)[perm] * 1e6, ws.y[perm], ws


def test_fit_learns_and_restores_best_weights(windows):
    X, y, ws = windows
    torch.manual_seed(0)
    model = create_model("eegnet", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq)
    res = fit(model, X[:90], y[:90], X[90:], y[90:], TrainConfig(max_epochs=25, batch_size=16, lr=3e-3, patience=6))
    assert res.best_epoch is not None and len(res.history) >= 7
    losses = [h["val_loss"] for h in res.history]
    assert res.best_val_loss == pytest.approx(min(losses), rel=1e-5)
    assert res.history[-1]["epoch"] >= res.best_epoch  # stopped at or after the best epoch
    acc = (predict_proba(res.model, X[90:]).argmax(1) == y[90:]).mean()
    assert acc > 0.65, acc
    assert res.model.training is False


def test_early_stopping_stops_before_max_epochs(windows):
    X, y, ws = windows
    rng = np.random.default_rng(0)
    model = create_model("eegnet", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq)
    res = fit(model, X[:40], rng.integers(0, 2, 40), X[40:], rng.integers(0, 2, len(X) - 40),
              TrainConfig(max_epochs=200, batch_size=16, patience=3, lr=1e-2))
    assert len(res.history) < 200


def test_logit_offsets_shift_the_trained_models_decisions(windows):
    X, y, ws = windows
    names = list(ws.classes)
    runs = {}
    for offsets in ({}, {names[1]: 2.0}):
        torch.manual_seed(0)
        model = create_model("shallow", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq)
        cfg = TrainConfig(max_epochs=2, batch_size=16, val_fraction=0, logit_offsets=offsets)
        runs[bool(offsets)] = predict_proba(fit(model, X[:60], y[:60], config=cfg, classes=names).model, X[60:])
    plain, shifted = (np.log(runs[k]) for k in (False, True))
    # the same training, then +2 on the second class's log-odds: more windows called that class
    assert np.allclose((shifted[:, 1] - shifted[:, 0]) - (plain[:, 1] - plain[:, 0]), 2.0, atol=1e-3)
    assert (runs[True].argmax(1) == 1).sum() >= (runs[False].argmax(1) == 1).sum()
    model = create_model("shallow", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq)
    cfg = TrainConfig(max_epochs=1, val_fraction=0, logit_offsets={"S": 1.0})
    seen = []
    with pytest.raises(ConfigError, match=r"no class named \['S'\] among this run's classes"):
        fit(model, X[:20], y[:20], config=cfg, classes=names, on_epoch=seen.append)
    assert seen == []  # refused before any training
    with pytest.raises(ConfigError, match="no class names"):
        fit(model, X[:20], y[:20], config=cfg)
    with pytest.raises(ConfigError, match="train.logit_offsets.S: expected a number"):
        TrainConfig(logit_offsets={"S": "high"})


def test_class_weights_balance_imbalanced_labels():
    w = class_weights_for(np.array([0] * 90 + [1] * 10), 2, "balanced")
    assert torch.allclose(w, torch.tensor([100 / 180, 100 / 20]))
    assert class_weights_for(np.array([0, 1]), 2, "none") is None
    assert class_weights_for(np.array([0, 0]), 3, "balanced")[1] == 0  # absent class
    sq = class_weights_for(np.array([0] * 90 + [1] * 10), 2, "sqrt")
    assert torch.allclose(sq, torch.tensor([100 / 180, 100 / 20]).sqrt())
    with pytest.raises(ConfigError, match="class_weights must be"):
        TrainConfig(class_weights="inverse")


def test_balanced_sampler_serves_every_class_equally_and_weights_become_equal():
    y = np.array([0] * 900 + [1] * 100)
    X = np.arange(len(y), dtype=np.float32).reshape(-1, 1, 1).repeat(2, axis=2)
    loader = make_loader(X, y, batch_size=100, shuffle=True, seed=3, balanced=True)
    served = np.concatenate([yb.numpy() for _, yb in loader])
    assert len(served) == len(y)  # an epoch draws as many windows as the training set holds
    assert 0.4 < served.mean() < 0.6  # the minority class is half of what is served (10% held)

    def first_epoch(seed):
        xs, ys = zip(*[(xb[:, 0, 0].numpy(), yb.numpy()) for xb, yb in make_loader(X, y, 100, True, seed, balanced=True)])
        return np.concatenate(xs).astype(int), np.concatenate(ys)
    rows, labels = first_epoch(3)
    assert np.array_equal(y[rows], labels)  # each label travels with its window
    assert np.array_equal(rows, first_epoch(3)[0]) and not np.array_equal(rows, first_epoch(4)[0])
    # with replacement: about 500 minority draws from its 100 windows
    assert (labels == 1).sum() > len(np.unique(rows[labels == 1]))
    shuffled = np.concatenate([yb.numpy() for _, yb in make_loader(X, y, 100, True, seed=3)])
    assert shuffled.mean() == pytest.approx(0.1)  # the plain loader serves each window once
    # the loss does not balance a second time what the sampler balanced (an absent class stays 0)
    w = training_class_weights(y, 3, TrainConfig(sampler="balanced"))
    assert w[0] == w[1] > 0 and w[2] == 0
    assert training_class_weights(y, 2, TrainConfig())[1] == pytest.approx(5.0)
    with pytest.raises(ConfigError, match="train.sampler must be"):
        TrainConfig(sampler="oversample")


def test_model_file_round_trip_and_atomicity(tmp_path, windows):
    X, y, ws = windows
    model = create_model("shallow", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq, n_filters=8).eval()
    path = save_model(tmp_path / "m.pt", model, classes=["a", "b"], preprocessing=[{"name": "car"}])
    loaded, meta = load_model(path)
    assert meta["classes"] == ["a", "b"] and loaded.registry_kwargs == {"n_filters": 8}
    torch.testing.assert_close(loaded(torch.from_numpy(X[:4])), model(torch.from_numpy(X[:4])))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left
    # a truncated file is a clear error, never a half-loaded model
    (tmp_path / "bad.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataFormatError, match=r"bad\.pt: not a readable biodecode model file"):
        load_model(tmp_path / "bad.pt")
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(DataFormatError, match=r"other\.pt: not a biodecode model file"):
        load_model(tmp_path / "other.pt")


def test_checkpoint_and_resume(tmp_path, windows):
    X, y, ws = windows
    cfg = TrainConfig(max_epochs=2, batch_size=16, scheduler="none")
    model = create_model("eegnet", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq)
    fit(model, X[:40], y[:40], X[40:], y[40:], cfg, checkpoint_dir=tmp_path)
    last = tmp_path / "last.ckpt"
    assert last.is_file()
    ckpt = torch.load(last, weights_only=True)  # loadable without running any pickled code
    assert ckpt["epoch"] == 2  # two epochs completed
    cfg4 = TrainConfig(max_epochs=4, batch_size=16, scheduler="none")
    model2 = create_model("eegnet", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq)
    res = fit(model2, X[:40], y[:40], X[40:], y[40:], cfg4, checkpoint_dir=tmp_path, resume_from=last)
    assert [h["epoch"] for h in res.history] == [2, 3]  # continued, not restarted


def test_augmentations_are_seeded_and_shape_preserving():
    x = torch.randn(16, 4, 100)
    y = torch.nn.functional.one_hot(torch.arange(16) % 2, 2).float()
    cfg = [{"name": "time_shift", "max_shift": 0.2, "p": 1.0}, {"name": "noise", "std": 0.1, "p": 1.0},
           {"name": "scale", "p": 1.0}, {"name": "channel_dropout", "rate": 0.5, "p": 1.0}, {"name": "mixup", "alpha": 0.4}]
    a1, t1 = Augmenter(cfg, seed=3)(x.clone(), y.clone())
    a2, t2 = Augmenter(cfg, seed=3)(x.clone(), y.clone())
    assert a1.shape == x.shape and torch.equal(a1, a2) and torch.equal(t1, t2)
    assert not torch.equal(a1, x)
    torch.testing.assert_close(t1.sum(1), torch.ones(16))  # mixup keeps targets a distribution
    assert ((t1 > 0) & (t1 < 1)).any()
    with pytest.raises(ConfigError, match=r"augment\[0\]: unknown augmentation 'warp'"):
        Augmenter([{"name": "warp"}])
    shifted, _ = Augmenter([{"name": "time_shift", "max_shift": 0.1, "p": 1.0}], seed=0)(x.clone(), y)
    assert (shifted == 0).any()  # zero-filled, not wrapped around


def test_electrode_shift_rotates_the_ring():
    x = torch.arange(8.0)[None, :, None].repeat(64, 1, 3)  # electrode k holds the value k
    y = torch.zeros(64, 2)
    out, _ = Augmenter([{"name": "electrode_shift", "max_shift": 1.0, "p": 1.0}], seed=0)(x.clone(), y)
    d = (out[:, 1:, 0] - out[:, :-1, 0])  # neighbours stay one electrode apart except across the seam
    assert ((d - 1).abs() < 1e-5).sum(1).min() >= 6
    shift = out[:, 1, 0] - 1  # how far each window moved (in electrodes; the seam is at one end)
    assert shift.abs().max() <= 1.0 + 1e-5 and shift.abs().max() > 0.5 and shift.std() > 0.2
    whole, _ = Augmenter([{"name": "electrode_shift", "max_shift": 0.0, "p": 1.0}], seed=0)(x.clone(), y)
    assert torch.equal(whole, x)
    with pytest.raises(ConfigError, match="max_shift must be >= 0"):
        Augmenter([{"name": "electrode_shift", "max_shift": -1}])


def test_mirror_swaps_hemispheres_and_side_labels():
    from biodecode.training.augment import mirror_channel, mirror_class

    assert [mirror_channel(c) for c in ["C3", "FC6", "Cz", "Fc5.", "Fp1", "T10", "FCC5h"]] == \
        ["C4", "FC5", "Cz", "FC6", "Fp2", "T9", "FCC6h"]
    assert [mirror_class(c) for c in ["left_hand", "Right", "feet"]] == ["right_hand", "Left", "feet"]
    ch, classes = ["C3", "Cz", "C4", "FC5", "FC6"], ["left_hand", "right_hand", "feet"]
    x = torch.arange(5.0)[None, :, None].repeat(32, 1, 4)  # channel k holds the value k
    y = torch.nn.functional.one_hot(torch.arange(32) % 3, 3).float()
    out, t = Augmenter([{"name": "mirror", "p": 1.0}], ch_names=ch, classes=classes)(x.clone(), y.clone())
    assert out[:, :, 0].tolist() == [[2.0, 1.0, 0.0, 4.0, 3.0]] * 32  # C3 <-> C4, Cz stays, FC5 <-> FC6
    assert torch.equal(t[:, [1, 0, 2]], y)  # left <-> right, feet kept
    twice, t2 = Augmenter([{"name": "mirror", "p": 1.0}] * 2, ch_names=ch, classes=classes)(x.clone(), y.clone())
    assert torch.equal(twice, x) and torch.equal(t2, y)
    some, ts = Augmenter([{"name": "mirror", "p": 0.5}], seed=1, ch_names=ch, classes=classes)(x.clone(), y.clone())
    flipped = some[:, 0, 0] == 2.0
    assert 0 < flipped.sum() < 32 and torch.equal(ts[flipped][:, [1, 0, 2]], y[flipped])
    assert torch.equal(ts[~flipped], y[~flipped]) and torch.equal(some[~flipped], x[~flipped])
    with pytest.raises(ConfigError, match=r"augment\[0\] \(mirror\): needs the windows' channel and class names"):
        Augmenter([{"name": "mirror"}])
    with pytest.raises(ConfigError, match="channel 'C3' has its mirror 'C4' missing"):
        Augmenter([{"name": "mirror"}], ch_names=["C3", "Cz"], classes=classes)
    with pytest.raises(ConfigError, match="channel 'EOG' is not a 10-05 electrode name"):
        Augmenter([{"name": "mirror"}], ch_names=["Cz", "EOG"], classes=classes)
    with pytest.raises(ConfigError, match="class 'left_hand' mirrors to 'right_hand', which is not a class"):
        Augmenter([{"name": "mirror"}], ch_names=ch, classes=["left_hand", "rest"])


def test_precise_bn_sets_exact_statistics():
    model = create_model("eegnet", 4, 128, 2, sfreq=128.0)
    X = torch.randn(64, 4, 128) * 3 + 1
    loader = [(X[i:i + 16], None) for i in range(0, 64, 16)]
    recalibrate_batchnorm(model, loader, torch.device("cpu"))
    with torch.no_grad():
        z = model.temporal(X.unsqueeze(1))
    torch.testing.assert_close(model.bn1.running_mean, z.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert model.bn1.momentum == 0.01 and model.training


def test_train_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="scheduler must be"):
        TrainConfig(scheduler="step")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['epochs'\]"):
        TrainConfig.from_dict({"epochs": 3})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["shuffle", "balanced"])
def test_ddp_two_processes_end_with_identical_weights(tmp_path, sampler):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE.parent / "src"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(HERE / "helpers" / "ddp_train.py"),
           str(tmp_path), str(tmp_path / "store"), sampler]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # EEGNet's channels-last weights of ambiguous layout keep the strides DDP's gradient buckets expect
    assert "Grad strides do not match" not in proc.stderr
    info = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(i["world_size"] == 2 for i in info)
    if sampler == "shuffle":  # a distributed sampler: each rank was served its own half of the training windows
        halves = [set(i["served_first_epoch"]) for i in info]
        assert halves[0].isdisjoint(halves[1]) and halves[0] | halves[1] == set(range(24))
    else:  # Lightning's DistributedSamplerWrapper splits one epoch of class-balanced draws between the ranks
        assert all(len(i["served_first_epoch"]) == 12 for i in info)
        labels = info[0]["served_labels"] + info[1]["served_labels"]
        assert sum(labels) > 6  # the minority class (6 of 24 windows) is drawn more often than it occurs
        assert max(Counter(info[0]["served_first_epoch"] + info[1]["served_first_epoch"]).values()) > 1  # with replacement
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{k} differs between ranks")
    # and training did change the weights
    torch.manual_seed(0)
    fresh = create_model("eegnet", 6, 320, 2, sfreq=160.0).state_dict()
    assert not torch.equal(fresh["classifier.weight"], a["classifier.weight"])


LIGHTNING_DDP = ["--set", "train.strategy=ddp", "--set", "train.devices=2", "--set", "train.accelerator=cpu"]


@pytest.mark.parametrize("launcher,command", [
    ("torchrun", ["train", "--model", "shallow", "--epochs", "2"]),
    ("torchrun", ["compare", "--models", "shallow", "csp-lda", "--epochs", "1"]),
    # no torchrun: Lightning's own launcher starts rank 1 at the first fold's fit, re-running the
    # command; both processes then train every later fold together
    ("lightning", ["train", "--model", "shallow", "--epochs", "2", *LIGHTNING_DDP]),
])
def test_cli_under_torchrun_writes_one_run_folder(tmp_path, launcher, command):
    """Every rank runs the command; rank 0 alone writes the folder and prints (rank 1 used to find
    rank 0's folder and stop with 'already holds a run')."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE.parent / "src"), TMPDIR=str(tmp),
               BIODECODE_CACHE_DIR=str(tmp_path / "store"))
    out = tmp_path / "run"
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
              "--master_addr=127.0.0.1", f"--master_port={_free_port()}"] if launcher == "torchrun" else [sys.executable]
    cmd = [*launch, "-m", "biodecode.cli", *command,
           "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1", "2", "3",
           "--protocol", "cross-subject", "--out", str(out), "-q"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("report: ") == 1  # printed by rank 0 only
    if launcher == "lightning":
        assert proc.stderr.count("MEMBER: 2/2") >= 1, proc.stderr[-3000:]  # rank 1 did join
    if command[0] == "train":
        assert json.loads((out / "status.json").read_text())["status"] == "done"
        assert json.loads((out / "metrics.json").read_text())["summary"]["accuracy"]["n_folds"] == 3
    else:
        assert set(json.loads((out / "compare.json").read_text())["models"]) == {"shallow", "csp-lda"}
    assert not [p for p in tmp.iterdir() if p.name.startswith("biodecode-rank-")]  # rank 1's copy is gone


def test_channels_last_training_matches_default_layout(windows):
    X, y, ws = windows
    results = []
    for cl in (False, True):
        torch.manual_seed(0)
        # no dropout: its random masks are drawn in memory order, which differs between layouts
        model = create_model("eegnet", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq, dropout=0.0)
        res = fit(model, X[:32], y[:32], None, None, TrainConfig(max_epochs=2, batch_size=16, val_fraction=0,
                                                                 channels_last=cl, precise_bn=False))
        results.append(predict_proba(res.model, X[32:48]))
        assert res.model.temporal[1].weight.is_contiguous(memory_format=torch.channels_last) == cl or \
            res.model.temporal[1].weight.shape[1] == 1
    np.testing.assert_allclose(results[0], results[1], rtol=1e-2, atol=1e-3)


def test_numpy_blas_runs_on_one_thread_while_torch_trains(windows):
    """The data path's NumPy matmuls (the per-subject alignment) must not start BLAS threads that
    compete with torch's: during fit and predict_proba BLAS is limited to one thread, and the
    limit is lifted afterwards."""
    from biodecode.threads import blas_threads

    X, y, ws = windows
    before = blas_threads()
    seen: list[list[int]] = []

    class Rows:  # a lazy array whose reads record the BLAS threads, as AlignedRows' einsum would run
        shape, dtype, ndim = X[:32].shape, np.dtype(np.float32), 3

        def __len__(self):
            return 32

        def __getitem__(self, key):
            seen.append(blas_threads())
            return np.asarray(X[:32][key], dtype=np.float32)

    model = create_model("eegnet", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq)
    fit(model, Rows(), y[:32], config=TrainConfig(max_epochs=1, batch_size=16, val_fraction=0.0))
    predict_proba(model, Rows())
    assert seen and all(t == [1] * len(t) for t in seen), seen
    assert blas_threads() == before


def test_rank_out_dir_redirects_other_ranks_per_thread(tmp_path, monkeypatch):
    """On a rank other than 0 a run folder goes to a temporary folder (removed after); nested uses
    stay inside it; another thread's run is redirected on its own, not handed the real folder."""
    import threading

    from biodecode.runs import rank_out_dir

    monkeypatch.setenv("RANK", "1")
    out = tmp_path / "run"
    seen = {}
    with rank_out_dir(out) as d:
        assert d != out and d.name == "run"
        with rank_out_dir(d / "inner") as inner:
            assert inner == d / "inner"  # nested: inside the outer temporary folder

        def other() -> None:
            with rank_out_dir(out) as e:
                seen["other"] = e

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert seen["other"] != out and seen["other"].parent != d.parent
    assert not d.parent.exists() and not out.exists()
    monkeypatch.setenv("RANK", "0")
    with rank_out_dir(out) as d0:
        assert d0 == out
