"""biodecode explain: captum attribution per class on held-out windows, scalp topographies for EEG,
signal + attribution for other signals; the attribution itself checked where the answer is known."""

import json

import numpy as np
import pytest
import torch

from biodecode.cli import main
from biodecode.evaluation.explain import attributions, class_maps


class _OneChannel(torch.nn.Module):
    """Logits that depend on channel 2 only: class 1's logit is its mean, class 0's minus that."""

    def forward(self, x):
        m = x[:, 2].mean(dim=1)
        return torch.stack([-m, m], dim=1)


def test_attribution_finds_the_channel_a_model_uses_and_is_complete():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 4, 50)).astype(np.float32)
    y = (X[:, 2].mean(axis=1) > 0).astype(int)
    for method in ("integrated-gradients", "saliency"):
        attr = attributions(_OneChannel(), X, y, method)
        assert attr.shape == X.shape
        importance = np.abs(attr).mean(axis=(0, 2))
        assert np.argmax(importance) == 2 and np.allclose(importance[[0, 1, 3]], 0)
    # integrated gradients add up to logit(x) - logit(0) (completeness), here for a network
    torch.manual_seed(0)
    from biodecode.models import create_model

    net = create_model("shallow", 4, 200, 2, sfreq=100.0, filter_length=5, pool_length=20, pool_stride=10).eval()
    Xn = rng.standard_normal((6, 4, 200)).astype(np.float32)
    yn = np.array([0, 1, 0, 1, 0, 1])
    attr = attributions(net, Xn, yn, "integrated-gradients")
    with torch.no_grad():
        logits = net(torch.from_numpy(Xn)).numpy()
        base = net(torch.zeros(1, 4, 200)).numpy()
    gain = logits[np.arange(6), yn] - base[0, yn]
    np.testing.assert_allclose(attr.sum(axis=(1, 2)), gain, rtol=0.05, atol=0.05)
    maps = class_maps(attr, yn, 3)
    assert maps.shape == (3, 4, 200) and np.isnan(maps[2]).all() and (maps[:2] >= 0).all()


def test_explain_writes_topomaps_for_eeg_and_signal_plots_otherwise(tmp_path, capsys):
    eeg = tmp_path / "eeg"
    assert main(["-q", "train", "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1", "2",
                 "--model", "eegnet", "--protocol", "loso", "--epochs", "2", "--out", str(eeg),
                 "--set", "data.dataset_kwargs.n_channels=8"]) == 0
    assert main(["explain", str(eeg), "--windows", "20"]) == 0
    out = capsys.readouterr().out
    assert "strongest channels" in out and "topomaps.png" in out
    ex = eeg / "explain"
    assert {"topomaps.png", "time_course.png", "attribution.npz", "explain.md", "explain.json"} <= {p.name for p in ex.iterdir()}
    saved = np.load(ex / "attribution.npz")
    assert saved["maps"].shape == (2, 8, 480) and list(saved["classes"]) == ["left_hand", "right_hand"]
    rep = json.loads((ex / "explain.json").read_text())
    assert rep["n_windows"] == 20 and set(rep["channel_importance"]) == {"left_hand", "right_hand"}
    assert "held-out windows" in (ex / "explain.md").read_text()
    # channels without 10-05 positions (here renamed): the signal with its attribution instead
    other = tmp_path / "other"
    assert main(["-q", "train", "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1", "2",
                 "--model", "eegnet", "--protocol", "loso", "--epochs", "1", "--out", str(other),
                 "--set", "data.dataset_kwargs.n_channels=2"]) == 0
    assert main(["explain", str(other), "--method", "saliency", "--out", str(tmp_path / "ex2")]) == 0
    names = {p.name for p in (tmp_path / "ex2").iterdir()}
    assert {"signal_attribution.png", "channels.png"} <= names and "topomaps.png" not in names


def test_explain_refuses_baselines_and_non_runs(tmp_path, capsys):
    base = tmp_path / "base"
    assert main(["-q", "train", "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1", "2",
                 "--model", "csp-lda", "--protocol", "loso", "--out", str(base),
                 "--set", "data.dataset_kwargs.n_channels=8"]) == 0
    assert main(["explain", str(base)]) == 2
    assert "a classical baseline's run" in capsys.readouterr().err
    assert main(["explain", str(tmp_path)]) == 2
    assert "no model.pt" in capsys.readouterr().err
