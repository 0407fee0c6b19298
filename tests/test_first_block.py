"""EEGNet's spatial-first first block equals the paper's order: outputs, BatchNorm running
statistics and every parameter's gradient, against a float64 reference."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from biodecode.models import create_model
from biodecode.models.first_block import temporal_conv_moments

CASES = [  # (channels, times, kernel, F1, D, batch)
    (64, 480, 80, 8, 2, 8),
    (22, 1000, 125, 8, 2, 3),
    (8, 64, 32, 4, 1, 1),
    (5, 96, 7, 2, 3, 2),
    (3, 40, 64, 8, 2, 4),  # kernel longer than the window
]


def test_moments_equal_the_unfolded_definition():
    torch.manual_seed(0)
    for B, C, T, K, left in [(4, 5, 100, 8, 3), (2, 3, 20, 25, 12), (1, 2, 64, 7, 3), (2, 2, 480, 80, 39)]:
        x = torch.randn(B, C, T, dtype=torch.float64) * 2 + torch.randn(B, C, 1, dtype=torch.float64) * 50
        m, R = temporal_conv_moments(x, K, left)
        windows = F.pad(x, (left, K - 1 - left)).reshape(B * C, -1).unfold(1, K, 1)  # (BC, T, K)
        torch.testing.assert_close(m, windows.mean((0, 1)), rtol=0, atol=1e-12)
        ref = torch.einsum("ntk,ntl->kl", windows, windows) / (B * C * T)
        torch.testing.assert_close(R, ref, rtol=1e-12, atol=1e-12)


def _pair(C, T, K, F1, D, dtype):
    torch.manual_seed(1)
    fast = create_model("eegnet", C, T, 3, sfreq=128.0, kernel_length=K, F1=F1, D=D, dropout=0.0).to(dtype)
    slow = copy.deepcopy(fast)
    slow.spatial_first = False
    with torch.no_grad():  # non-trivial BatchNorm affine parameters
        for m in (fast, slow):
            m.bn1.weight.copy_(torch.linspace(0.5, 1.5, F1))
            m.bn1.bias.copy_(torch.linspace(-0.2, 0.3, F1))
    return fast, slow


@pytest.mark.parametrize("C,T,K,F1,D,B", CASES)
def test_training_step_matches_standard_order(C, T, K, F1, D, B):
    fast, slow = _pair(C, T, K, F1, D, torch.float32)
    ref, _ = _pair(C, T, K, F1, D, torch.float64)
    ref.spatial_first = False
    torch.manual_seed(2)
    x64 = torch.randn(B, C, T, dtype=torch.float64) * 20 + 5  # microvolt-like, with an offset
    x = x64.float()
    outs, grads = {}, {}
    for name, model, inp in (("fast", fast, x), ("slow", slow, x), ("ref", ref, x64)):
        model.train()
        out = model(inp)
        loss = (out * torch.linspace(-1, 1, out.shape[1], dtype=out.dtype)).sum() + out.square().mean()
        loss.backward()
        outs[name] = out.detach().double()
        grads[name] = {n: p.grad.detach().double() for n, p in model.named_parameters() if p.grad is not None}
    scale = outs["ref"].abs().max()
    err_fast = (outs["fast"] - outs["ref"]).abs().max() / scale
    err_slow = (outs["slow"] - outs["ref"]).abs().max() / scale
    assert err_fast < 1e-4 and err_fast <= 10 * err_slow + 1e-6
    for n, g in grads["ref"].items():
        if n == "bn1.bias":  # BatchNorm 2 removes any constant per map: its true gradient is 0
            assert grads["fast"][n].abs().max() < 1e-3 * max(1.0, g.abs().max())
            continue
        tol = 1e-4 * g.abs().max() + 1e-7
        assert (grads["fast"][n] - g).abs().max() <= tol, n
    for stat in ("running_mean", "running_var"):
        a, r = getattr(fast.bn1, stat).double(), getattr(ref.bn1, stat)
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-6)
    assert int(fast.bn1.num_batches_tracked) == int(slow.bn1.num_batches_tracked) == 1


def test_eval_mode_and_state_dict_are_unchanged():
    fast, slow = _pair(16, 256, 64, 8, 2, torch.float32)
    x = torch.randn(4, 16, 256)
    for m in (fast, slow):
        m.train()
        m(x)
        m.eval()
    assert fast.state_dict().keys() == slow.state_dict().keys()
    torch.testing.assert_close(fast(x), slow(x), rtol=1e-4, atol=1e-5)


def test_max_norm_still_applies_to_the_spatial_filters():
    fast, _ = _pair(8, 128, 32, 4, 2, torch.float32)
    with torch.no_grad():
        fast.spatial.weight.mul_(10)
    fast.train()
    fast(torch.randn(2, 8, 128))
    norms = fast.spatial.weight.reshape(fast.spatial.out_channels, -1).norm(dim=1)
    assert (norms <= 1.0 + 1e-5).all()


@pytest.mark.parametrize("name,C,T", [("eegtcnet", 22, 256), ("eegtcnet", 8, 128), ("atcnet", 16, 300)])
def test_other_models_with_the_first_block_train_as_in_the_paper_order(name, C, T):
    """EEG-TCNet and ATCNet run the same spatial-first block: outputs, running statistics and every
    gradient of a training step equal the paper's order (float64 reference) within float32 rounding."""
    torch.manual_seed(3)
    fast = create_model(name, C, T, 3, sfreq=128.0)
    for m in fast.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    first = fast.eegnet[1] if name == "eegtcnet" else fast.bn1
    with torch.no_grad():  # non-trivial BatchNorm affine parameters
        first.weight.copy_(torch.linspace(0.5, 1.5, first.num_features))
        first.bias.copy_(torch.linspace(-0.2, 0.3, first.num_features))
    ref = copy.deepcopy(fast).double()
    ref.spatial_first = False
    x64 = torch.randn(4, C, T, dtype=torch.float64) * 20 + 5
    outs, grads = {}, {}
    for label, model, inp in (("fast", fast, x64.float()), ("ref", ref, x64)):
        model.train()
        out = model(inp)
        (out * torch.linspace(-1, 1, 3, dtype=out.dtype)).sum().backward()
        outs[label] = out.detach().double()
        grads[label] = {n: p.grad.detach().double() for n, p in model.named_parameters() if p.grad is not None}
    assert (outs["fast"] - outs["ref"]).abs().max() / outs["ref"].abs().max() < 1e-4
    bn1 = "eegnet.1" if name == "eegtcnet" else "bn1"
    for n, g in grads["ref"].items():
        if n == f"{bn1}.bias":  # the next BatchNorm removes any constant per map: its true gradient is 0
            continue
        assert (grads["fast"][n] - g).abs().max() <= 1e-4 * g.abs().max() + 1e-6, n
    first_bn = fast.eegnet[1] if name == "eegtcnet" else fast.bn1
    ref_bn = ref.eegnet[1] if name == "eegtcnet" else ref.bn1
    torch.testing.assert_close(first_bn.running_var.double(), ref_bn.running_var, rtol=1e-5, atol=1e-6)
