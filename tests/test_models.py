"""One contract over every registered model, plus EEGNet's paper-specific points."""

import io

import numpy as np
import pytest
import torch
from torch import nn

from biodecode import ConfigError
from biodecode.models import count_macs, count_parameters, create_model, describe_model, list_models
from biodecode.models.base import shift_logits
from biodecode.models.eegnet import EEGNet, eegnet_paper_macs, eegnet_paper_param_count
from biodecode.deploy.export import export_onnx

ALL = list_models()
# (n_channels, n_times, sfreq): single-lead ECG, 8-channel EMG, 22-channel EEG
SHAPES = [(1, 720, 360.0), (8, 600, 200.0), (22, 480, 160.0)]
NEEDS_LENGTH = ["eegnet", "eegnet-4,2", "eegnet-8,2", "shallow", "deep4", "eegtcnet", "conformer"]


def _make(name, c, t, sf, n_classes=3, **kw):
    torch.manual_seed(0)
    return create_model(name, n_channels=c, n_times=t, n_classes=n_classes, sfreq=sf, **kw)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("c,t,sf", SHAPES)
def test_output_shape(name, c, t, sf):
    model = _make(name, c, t, sf).eval()
    out = model(torch.randn(2, c, t))
    assert out.shape == (2, 3) and out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL)
def test_gradients_reach_every_parameter(name):
    model = _make(name, 8, 600, 200.0).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 8, 600), torch.tensor([0, 1, 2, 0])
    for _ in range(2):  # one step first: zero-initialised BN scales (resnet1d) then pass gradient on
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not dead, f"no gradient reaches {dead}"


@pytest.mark.parametrize("name", ALL)
def test_eval_is_deterministic_and_state_dict_round_trips(name):
    model = _make(name, 8, 600, 200.0)
    model.train()
    model(torch.randn(4, 8, 600))  # move batch-norm statistics away from their initial values
    model.eval()
    x = torch.randn(3, 8, 600)
    a, b = model(x), model(x)
    assert torch.equal(a, b)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    clone = _make(name, 8, 600, 200.0)
    clone.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.allclose(clone.eval()(x), a)


@pytest.mark.parametrize("name", ALL)
def test_logit_offsets_fold_into_every_models_output_layer(name):
    model = _make(name, 8, 600, 200.0)
    model.train()
    model(torch.randn(4, 8, 600))  # batch-norm statistics away from their initial values
    model.eval()
    x = torch.randn(3, 8, 600)
    before = model(x)
    offsets = torch.tensor([1.5, -0.5, 0.0])
    shift_logits(model, offsets)
    assert torch.allclose(model(x) - before, offsets.expand_as(before), atol=1e-4)
    assert not model.training  # the mode it was in is kept


def test_logit_offsets_refuse_a_model_whose_logits_are_not_its_output_layer():
    class Doubled(nn.Module):  # logits = 2 x the layer's output: an offset in its bias would double
        def __init__(self):
            super().__init__()
            self.n_channels, self.n_times = 2, 10
            self.fc = nn.Linear(20, 3)

        def forward(self, x):
            return 2 * self.fc(x.flatten(1))

    model = Doubled()
    bias = model.fc.bias.detach().clone()
    with pytest.raises(ConfigError, match="Doubled.*cannot be folded"):
        shift_logits(model, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(model.fc.bias, bias)  # restored
    with pytest.raises(ConfigError, match="no output layer|none"):
        shift_logits(model, torch.tensor([1.0, 0.0]))  # no layer with 2 outputs


@pytest.mark.parametrize("name", ALL)
def test_can_overfit_a_tiny_batch(name):
    model = _make(name, 4, 480, 160.0, n_classes=2).train()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 4, 480, generator=g), torch.tensor([0, 1] * 4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        model.apply_constraints()
        losses.append(loss.item())
    assert min(losses[-5:]) < 0.3 * losses[0], f"loss {losses[0]:.3f} -> {losses[-1]:.3f}"


@pytest.mark.parametrize("name", NEEDS_LENGTH)
def test_impossible_shapes_fail_at_construction(name):
    with pytest.raises(ConfigError, match="too short"):
        create_model(name, n_channels=4, n_times=16, n_classes=2, sfreq=160.0)


def test_registry_errors():
    with pytest.raises(ConfigError, match=r"unknown model 'eegnett'; available: .*eegnet"):
        create_model("eegnett", 4, 480, 2)
    with pytest.raises(ConfigError, match=r"model 'eegnet' has no parameter\(s\) \['F3'\]"):
        create_model("eegnet", 4, 480, 2, F3=1)
    with pytest.raises(ConfigError, match="n_classes must be at least 2"):
        create_model("lstm", 4, 480, 1)
    model = create_model("lstm", 4, 480, 2)
    with pytest.raises(ValueError, match="built for 4 channels, got input with 5"):
        model(torch.randn(1, 5, 480))
    with pytest.raises(ValueError, match=r"expected input \(batch, n_channels, n_times\)"):
        model(torch.randn(4, 480))


@pytest.mark.parametrize("name", ALL)
def test_describe_model_names_paper_and_defaults(name):
    d = describe_model(name)
    assert d["paper"] and d["family"] and isinstance(d["defaults"], dict)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.filterwarnings("ignore:The tensor attributes self.lstm._flat_weights")  # torch's nn.LSTM, not ours
def test_torch_export_and_onnx_match_eager(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _make(name, 8, 600, 200.0).eval()
    x = torch.randn(2, 8, 600)
    with torch.no_grad():
        ref = model(x).numpy()
        exported = torch.export.export(model, (x,))
        np.testing.assert_allclose(exported.module()(x).numpy(), ref, rtol=1e-4, atol=1e-5)
    path = export_onnx(model, tmp_path / f"{name}.onnx", 8, 600)  # the torch.export-based exporter, dynamic batch
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x5 = torch.randn(5, 8, 600)
    with torch.no_grad():
        ref5 = model(x5).numpy()
    np.testing.assert_allclose(sess.run(None, {"x": x5.numpy()})[0], ref5, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------- EEGNet, point by point

def test_eegnet_counts_match_the_paper_table():
    for (c, t, n, f1, k) in [(64, 480, 2, 8, 80), (22, 1000, 4, 8, 64), (64, 128, 4, 4, 64), (1, 720, 5, 8, 180)]:
        model = EEGNet(c, t, n, F1=f1, D=2, kernel_length=k, spatial_first=False)  # the paper's order
        assert count_parameters(model) == eegnet_paper_param_count(c, t, n, F1=f1, kernel_length=k)
        assert count_macs(model, c, t) == eegnet_paper_macs(c, t, n, F1=f1, kernel_length=k)
        # the default spatial-first block computes the same function with far fewer operations
        assert count_macs(EEGNet(c, t, n, F1=f1, D=2, kernel_length=k), c, t) <= count_macs(model, c, t)
    # the paper's EEGNet-8,2 on 64 channels, 128 samples, 4 classes (kernel 64 at 128 Hz)
    assert eegnet_paper_param_count(64, 128, 4) == 512 + 16 + 1024 + 32 + 512 + 32 + (4 * 64 + 4)


def test_eegnet_classifier_sized_from_the_pooled_length():
    # the common sketch's 16 * (samples // 4) would be 1920 here; the right size is 16 * (480 // 32)
    model = EEGNet(64, 480, 2, sfreq=160.0)
    assert model.classifier.in_features == 16 * 15
    assert EEGNet(64, 500, 2).classifier.in_features == 16 * (500 // 4 // 8)
    assert model.temporal[1].kernel_size == (1, 80)  # sfreq / 2


def test_eegnet_dropout_off_in_eval_on_in_train():
    model = EEGNet(8, 256, 2, sfreq=128.0)
    x = torch.randn(4, 8, 256)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model.features(x), model.features(x))


def test_eegnet_separable_conv_is_depthwise_then_pointwise():
    model = EEGNet(8, 256, 2, F1=8, D=2)
    dw, pw = model.separable_depthwise[1], model.separable_pointwise
    assert dw.groups == 16 and dw.in_channels == dw.out_channels == 16 and dw.kernel_size == (1, 16)
    assert pw.kernel_size == (1, 1) and pw.groups == 1 and pw.out_channels == 16
    assert model.spatial.groups == 8 and model.spatial.kernel_size == (8, 1) and model.spatial.out_channels == 16
    assert all(m.bias is None for m in (model.temporal[1], model.spatial, dw, pw))


def test_eegnet_max_norm_constraints_hold_after_training_steps():
    model = EEGNet(8, 256, 2)
    with torch.no_grad():
        model.spatial.weight.mul_(50)
        model.classifier.weight.mul_(50)
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    x, y = torch.randn(8, 8, 256), torch.tensor([0, 1] * 4)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        model.apply_constraints()
    spatial_norms = model.spatial.weight.flatten(1).norm(dim=1)
    dense_norms = model.classifier.weight.norm(dim=1)
    assert spatial_norms.max() <= 1.0 + 1e-5 and dense_norms.max() <= 0.25 + 1e-5
    assert spatial_norms.max() > 0.99  # the constraint is active, not just small weights


def test_eegnet_4_2_and_8_2_presets():
    a = create_model("eegnet-4,2", 22, 256, 4, sfreq=128.0)
    b = create_model("eegnet-8,2", 22, 256, 4, sfreq=128.0)
    assert (a.F1, a.D, a.F2) == (4, 2, 8) and (b.F1, b.D, b.F2) == (8, 2, 16)


def test_eegnex_matches_the_authors_keras_layout():
    from biodecode.models.eegnex import EEGNeX, eegnex_keras_param_count

    for c, t, n in [(64, 480, 2), (22, 1000, 4), (8, 200, 8), (3, 250, 2)]:
        model = EEGNeX(c, t, n)
        assert count_parameters(model) == eegnex_keras_param_count(c, t, n)
        assert model.n_features == 8 * -(-t // 4)  # 8 maps x ceil(T / 4) steps into the dense layer
    m = EEGNeX(22, 1000, 4)
    assert [l.kernel_size for l in m.modules() if isinstance(l, torch.nn.Conv2d)] == [(1, 32), (1, 32), (22, 1), (1, 16), (1, 16)]
    assert [l.dilation for l in m.modules() if isinstance(l, torch.nn.Conv2d)][-2:] == [(1, 2), (1, 4)]
    assert [l.normalized_shape for l in m.modules() if isinstance(l, torch.nn.LayerNorm)] == [(1000,)] * 3 + [(250,)] * 2


def test_eegnex_is_blind_to_each_electrodes_amplitude_unless_norm_batch():
    """The authors' LayerNorm over time undoes any per-electrode gain (so band power per electrode,
    the motor-imagery cue, cannot reach the spatial filter); BatchNorm per filter keeps it."""
    from biodecode.models.eegnex import EEGNeX

    torch.manual_seed(0)
    x = torch.randn(4, 6, 200) * 20.0
    gain = torch.tensor([1.0, 3.0, 0.2, 1.0, 5.0, 1.0]).view(1, 6, 1)  # one hemisphere louder, say
    layer, batch = EEGNeX(6, 200, 2).eval(), EEGNeX(6, 200, 2, norm="batch").eval()
    with torch.no_grad():
        for m in batch.modules():  # non-trivial running statistics, as after training
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.fill_(4.0)
        torch.testing.assert_close(layer(x * gain), layer(x), rtol=1e-4, atol=1e-4)
        assert (batch(x * gain) - batch(x)).abs().max() > 1e-2
    with pytest.raises(ValueError, match="norm"):
        EEGNeX(6, 200, 2, norm="group")


def _atcnet_keras_params(c: int, n: int, F1: int = 16, D: int = 2, K: int = 64, windows: int = 5) -> tuple[int, int]:
    """(trainable, BatchNorm moving statistics) of the authors' Keras ATCNet, layer by layer."""
    F2 = F1 * D
    conv_block = F1 * K + 2 * F1 + F2 * c + 2 * F2 + F2 * F2 * 16 + 2 * F2
    attention = 3 * (F2 * 2 * 8 + 2 * 8) + (2 * 8 * F2 + F2) + 2 * F2  # Q, K, V, output dense; LayerNorm
    tcn = 2 * 2 * (F2 * F2 * 4 + F2 + 2 * F2)  # two blocks of two causal convs + BatchNorm (identity residual)
    dense = F2 * n + n
    moving = 2 * (F1 + F2 + F2) + windows * 2 * 4 * F2
    return conv_block + windows * (attention + tcn + dense), moving


def test_atcnet_matches_the_authors_layout():
    model = create_model("atcnet", 22, 1125, 4)  # BCI IV-2a as in the paper: 115.2 K parameters in Keras' count
    trainable, moving = _atcnet_keras_params(22, 4)
    assert count_parameters(model) == trainable
    assert trainable + moving == sum(b.numel() for n, b in model.named_buffers() if "running" in n) + trainable == 115_172
    assert model.window == 1125 // 56 - 5 + 1 == 16
    # the windows' logits are averaged: each window head sees only its own slice of the pooled steps
    torch.manual_seed(0)
    m = create_model("atcnet", 8, 600, 3).eval()
    x = torch.randn(2, 8, 600)
    with torch.no_grad():
        z = m.features(x)
        per_window = [head(tcn(att(z[:, :, i:i + m.window]))[:, :, -1])
                      for i, (att, tcn, head) in enumerate(zip(m.attention, m.tcn, m.classifiers))]
        torch.testing.assert_close(m(x), sum(per_window) / 5)
        paper_order = create_model("atcnet", 8, 600, 3, spatial_first=False).eval()
        paper_order.load_state_dict(m.state_dict())
        torch.testing.assert_close(paper_order(x), m(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="n_times must be >= 280"):
        create_model("atcnet", 8, 250, 2)


def test_fbcnet_matches_the_paper_layout_and_its_bands_pass_their_frequencies():
    model = create_model("fbcnet", 22, 1000, 4, sfreq=250.0)  # BCI IV-2a, 4 s, as in the paper
    assert model.bands == [(f, f + 4.0) for f in range(4, 40, 4)] and model.n_segments == 4
    # per band 32 spatial filters over 22 electrodes (+ bias), BN, then 9 * 32 * 4 log-variances -> 4 classes
    assert count_parameters(model) == 9 * 32 * (22 + 1) + 2 * 9 * 32 + (9 * 32 * 4 + 1) * 4
    assert model.spatial.max_norm == 2.0 and model.classifier.max_norm == 0.5
    # band signals end at 40 Hz: every 3rd sample at 250 Hz keeps them below the new Nyquist (41.7 Hz)
    assert model.stride == 3 and model.seg_len == 334 // 4
    assert create_model("fbcnet", 8, 200, 2, sfreq=50.0).stride == 1
    assert not any(p is model.fir for p in model.parameters())  # the filter bank is fixed
    # a 10 Hz sine comes out of the 8-12 Hz filter, barely out of the others
    t = torch.arange(1000) / 250.0
    x = torch.sin(2 * torch.pi * 10.0 * t)[None, None, :]
    with torch.no_grad():
        out = torch.nn.functional.conv1d(x, model.fir, padding=model.fir.shape[-1] // 2)[0, :, 200:-200]
    power = (out ** 2).mean(dim=-1)
    assert power.argmax() == 1 and power[1] > 0.4 and (power[[0, 2, 3, 4, 5, 6, 7, 8]] < 0.1 * power[1]).all()
    # bands above Nyquist are dropped; none left is an error
    assert len(create_model("fbcnet", 8, 200, 2, sfreq=50.0).bands) == 5  # 4-8 ... 20-24 Hz
    with pytest.raises(ConfigError, match="no band"):
        create_model("fbcnet", 8, 200, 2, sfreq=8.0)
