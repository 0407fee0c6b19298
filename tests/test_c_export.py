"""C99 export: the lowered graph equals the network, the generated C compiles with gcc -Wall -Werror,
the float32 program equals PyTorch, the int8 program takes the int8 ONNX model's decisions on real
held-out windows, the arena never overlaps live tensors, bad input gets messages."""

import json
import re
import subprocess

import numpy as np
import pytest
import torch

from biodecode.cli import main
from biodecode.deploy.c_export import C_FLAGS, CCompileError, c_sizes, compile_c, export_c, run_c
from biodecode.deploy.cgen import generate_c, plan_arena
from biodecode.deploy.cgraph import UnsupportedLayerError, lower, run_graph
from biodecode.deploy.predictor import OnnxPredictor
from biodecode.loading import load_windows_for_model
from biodecode.models import create_model, describe_model, list_models
from biodecode.training import load_model

pytestmark = pytest.mark.skipif(subprocess.run(["which", "gcc"], capture_output=True).returncode != 0,
                                reason="gcc is not installed")

CASES = [  # (model, channels, samples, kwargs): odd and even kernels, strides, dilations, groups
    ("eegnet", 8, 480, {}),
    ("eegnet", 64, 256, {"kernel_length": 33, "F1": 4, "D": 3}),
    ("eegnet", 1, 96, {"kernel_length": 8}),
    ("eegtcnet", 8, 480, {}),
    ("shallow", 8, 500, {}),
    ("deep4", 4, 1000, {}),
    ("resnet1d", 2, 361, {"widths": (8, 16, 16, 24)}),
    ("resnet1d", 3, 250, {"widths": (8, 8, 16, 16), "kernel_size": 3}),
]


def _trained(name, c, t, kwargs, seed=0):
    """A model with non-trivial batch-norm statistics and affine parameters, in eval mode."""
    torch.manual_seed(seed)
    model = create_model(name, c, t, 3, sfreq=160.0, **kwargs)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.3, 0.3)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, c, t) * 3 + 0.5)
    return model.eval()


def _torch_logits(model, X):
    with torch.no_grad():
        return model.eval()(torch.from_numpy(np.ascontiguousarray(X, np.float32))).numpy()


@pytest.mark.parametrize("name,c,t,kwargs", CASES)
def test_float32_and_int8_c_match_the_network(name, c, t, kwargs, tmp_path):
    model = _trained(name, c, t, kwargs)
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((24, c, t)) * 3).astype(np.float32)
    ref = _torch_logits(model, X)
    graph = lower(model)
    np.testing.assert_allclose(run_graph(graph, X)[0], ref, atol=1e-5, rtol=1e-5)
    src32 = export_c(model, tmp_path / "f32", dtype="float32")
    out32 = run_c(compile_c(tmp_path / "f32"), X, 3)
    assert np.max(np.abs(out32 - ref)) <= 1e-4
    assert "malloc" not in src32.files["model.c"] and "MODEL_ARENA_BYTES" in src32.files["model.h"]
    calib = (rng.standard_normal((64, c, t)) * 3).astype(np.float32)
    src8 = export_c(model, tmp_path / "i8", calib, dtype="int8")
    out8 = run_c(compile_c(tmp_path / "i8"), X, 3)
    spread = np.ptp(ref)
    assert np.max(np.abs(out8 - ref)) <= 0.05 * spread, (np.max(np.abs(out8 - ref)), spread)
    assert np.mean(out8.argmax(1) == ref.argmax(1)) >= 0.9
    assert "static const int8_t w1" in src8.files["model.c"] and src8.arena_bytes * 4 <= src32.arena_bytes + 16
    # weights are constants, activations live in the arena: nothing else is static and writable
    writable = re.findall(r"^static (?!const)[\w ]+? (\w+)\[", src8.files["model.c"], flags=re.M)
    assert writable == ["input_q"], writable  # the quantised-input buffer; the arena is a union


@pytest.mark.parametrize("name", list_models())
def test_model_listing_says_which_models_lower_to_c(name):
    model = create_model(name, 8, 600, 3, sfreq=200.0)
    says_ok = describe_model(name)["export"]["c99"].startswith("ok")
    if says_ok:
        assert lower(model).ops[-1].kind == "linear"
    else:
        with pytest.raises(UnsupportedLayerError, match=f"'{name}' is not supported"):
            lower(model)


def test_arena_never_overlaps_live_tensors():
    graph = lower(_trained("resnet1d", 2, 361, {"widths": (8, 16, 16, 24)}))
    offsets, size = plan_arena(graph, 4)
    last_use = {t: i for i, op in enumerate(graph.ops) for t in op.inputs}
    born = {op.output: i for i, op in enumerate(graph.ops)}
    spans = {t: (offsets[t], offsets[t] + 4 * np.prod(graph.shape(t))) for t in offsets}
    assert max(hi for _, hi in spans.values()) <= size
    for a in offsets:
        for b in offsets:
            if a < b and offsets[a] != offsets[b] or a < b and graph.ops[born[b]].kind != "elu":
                live_together = born[a] <= last_use[b] and born[b] <= last_use[a]
                overlap = spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]
                assert not (live_together and overlap), (a, b)
    # close to the lower bound: the most bytes alive at any one op
    alive = [sum(4 * np.prod(graph.shape(t)) for t in offsets if born[t] <= i <= last_use.get(t, born[t])
                 and not (graph.ops[born[t]].kind == "elu" and offsets[t] == offsets[graph.ops[born[t]].inputs[0]]))
             for i in range(len(graph.ops))]
    assert max(alive) <= size <= 1.1 * max(alive), (size, max(alive))


def test_unsupported_models_and_settings_get_clear_errors(tmp_path):
    lstm = create_model("lstm", 8, 200, 2)
    with pytest.raises(UnsupportedLayerError, match=r"'lstm' is not supported: its layer lstm \(LSTM\) has no C kernel"):
        export_c(lstm, tmp_path)
    with pytest.raises(Exception, match="int8 needs calibration windows"):
        export_c(_trained("eegnet", 8, 480, {}), tmp_path)
    with pytest.raises(Exception, match="dtype must be int8 or float32"):
        generate_c(lower(_trained("eegnet", 8, 480, {})), "int4")
    with pytest.raises(Exception, match="kernel_size must be odd"):
        create_model("resnet1d", 2, 250, 3, kernel_size=4)
    with pytest.raises(CCompileError, match="not installed"):
        compile_c(tmp_path, compiler="no-such-cc")


def test_the_example_program_refuses_bad_input(tmp_path):
    model = _trained("eegnet", 4, 128, {"kernel_length": 16})
    export_c(model, tmp_path, dtype="float32")
    exe = compile_c(tmp_path)
    one = np.zeros((1, 4, 128), "<f4")
    cut = subprocess.run([str(exe)], input=one.tobytes()[:-8], capture_output=True)
    assert cut.returncode == 1 and b"window 1 is cut short: 2040 of 2048 bytes (4 channels x 128 samples" in cut.stderr
    empty = subprocess.run([str(exe)], input=b"", capture_output=True)
    assert empty.returncode == 1 and b"no input" in empty.stderr
    bad = np.concatenate([one, one]).copy()
    bad[1, 2, 5] = np.nan
    nan = subprocess.run([str(exe)], input=bad.tobytes(), capture_output=True)
    assert nan.returncode == 2 and b"window 2 has 1 non-finite values" in nan.stderr
    assert len(nan.stdout) == 4 * 3  # the clean first window was decided


def test_sizes_are_measured_from_the_compiled_object(tmp_path, monkeypatch):
    model = _trained("eegnet", 64, 480, {})
    rng = np.random.default_rng(0)
    src = export_c(model, tmp_path / "c", (rng.standard_normal((16, 64, 480)) * 3).astype(np.float32))
    monkeypatch.chdir(tmp_path)
    sizes = c_sizes("c", "host")  # a relative folder, as `biodecode export runs/x` gives
    assert sizes["static_ram_bytes"] >= src.arena_bytes + 64 * 480  # arena + the int8 input buffer
    assert sizes["flash_bytes"] >= src.constant_bytes and sizes["stack_bytes"] > 0
    assert sizes["ram_bytes"] == sizes["data_bytes"] + sizes["static_ram_bytes"] + sizes["stack_bytes"]


# ------------------------------------------------------------------------- real recordings
@pytest.fixture(scope="module")
def eeg_run(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("c-eeg")
    assert main(["-q", "train", "--dataset", "physionet-mi", "--task", "left-right-real", "--subjects", "1", "2",
                 "--model", "eegnet", "--protocol", "loso", "--epochs", "6", "--data-dir", str(data_dir),
                 "--set", "defaults=plain", "--out", str(out), "--overwrite"]) == 0  # the dataset's band, no alignment
    return out


def _decisions_agree(c_logits, ref_logits, min_share=0.99):
    """At least ``min_share`` equal argmax decisions, and every other one on a window whose reference
    margin is within twice the largest logit difference (a near-tie, not a wrong kernel)."""
    diff = float(np.max(np.abs(c_logits - ref_logits)))
    same = c_logits.argmax(1) == ref_logits.argmax(1)
    top = np.sort(ref_logits, axis=1)
    margin = top[:, -1] - top[:, -2]
    assert np.mean(same) >= min_share, (np.mean(same), diff)
    assert np.all(margin[~same] <= 2 * diff), (margin[~same], diff)
    return diff


def test_real_eeg_int8_c_takes_the_int8_onnx_decisions(eeg_run, data_dir, tmp_path, capsys):
    assert main(["export", str(eeg_run), "--format", "onnx", "c"]) == 0
    printed = capsys.readouterr().out
    assert "C99 (int8)" in printed and "same decision as the int8 ONNX model" in printed
    rep = json.loads((eeg_run / "export" / "export_report.json").read_text())
    c = rep["c"]
    assert {"model.c", "model.h", "main.c"} <= {p.name for p in (eeg_run / "export" / "c").iterdir()}
    assert c["decisions_equal_int8_onnx"] >= 0.95 and c["n_windows"] >= 40  # one fold: 45 windows
    card = json.loads((eeg_run / "export" / "model_card.json").read_text())
    assert card["c_int8_flash_bytes"] > card["weight_bytes_int8"] and card["c_int8_ram_bytes"] > 64 * 480
    card_md = (eeg_run / "export" / "model_card.md").read_text()
    assert "C99 int8: flash (code + constants)" in card_md and "C99 int8: RAM (arena + input + stack)" in card_md
    header = (eeg_run / "export" / "c" / "model.h").read_text()
    assert "input, as in training: bandpass(l_freq=4.0, h_freq=38.0" in header and "left_hand" in header
    # held out more widely: every window of four subjects the model never saw
    model, meta = load_model(eeg_run / "model.pt")
    X = np.asarray(load_windows_for_model(meta, [3, 4, 5, 6], data_dir=str(data_dir)).X, np.float32)
    assert len(X) >= 150
    c_logits = run_c(compile_c(eeg_run / "export" / "c", tmp_path / "m"), X, 2)
    onnx8 = OnnxPredictor(eeg_run / "export" / "model.int8.onnx").logits(X)
    diff = _decisions_agree(c_logits, onnx8)
    assert diff <= 0.02 * np.ptp(onnx8), diff
    # float32 C: PyTorch's logits within 1e-4
    assert main(["export", str(eeg_run), "--format", "c", "--c-dtype", "float32", "--out", str(tmp_path / "f")]) == 0
    f32 = run_c(compile_c(tmp_path / "f" / "c", tmp_path / "m32"), X, 2)
    assert np.max(np.abs(f32 - _torch_logits(model, X))) <= 1e-4


def test_real_ecg_int8_c_takes_the_int8_onnx_decisions(tmp_path, data_dir):
    out = tmp_path / "ecg"
    assert main(["-q", "train", "--dataset", "mitdb", "--task", "aami-beats", "--model", "resnet1d", "--protocol",
                 "inter-patient", "--subjects", "101", "106", "100", "103", "--epochs", "1", "--data-dir", str(data_dir),
                 "--set", "model.kwargs.widths=[8,16,16,16]", "--set", "train.batch_size=256", "--set", "defaults=plain",
                 "--out", str(out)]) == 0
    assert main(["export", str(out), "--format", "onnx", "c"]) == 0
    c = json.loads((out / "export" / "export_report.json").read_text())["c"]
    assert c["n_windows"] >= 500 and c["decisions_equal_int8_onnx"] >= 0.99
    assert 0 <= c["max_abs_diff_int8_onnx"] < 0.5 and c["accuracy"] > 0.9
