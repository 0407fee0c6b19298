"""Export parity, exact inference rewrites, quantisation, model cards, streaming and latency."""

import json
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

from biodecode.cli import main
from biodecode.datasets.synthetic import generate_mi_run
from biodecode.deploy import FastEEGNet, TorchPredictor, fold_batchnorm, load_predictor, optimize_for_inference
from biodecode.deploy.stream import StreamDecoder, lsl_decisions
from biodecode.models import count_macs, create_model, list_models
from biodecode.preprocessing import Pipeline

PRE = [{"name": "bandpass", "l_freq": 4.0, "h_freq": 38.0, "causal": True}, {"name": "scale", "factor": 1e6}]
CH = ("C3", "Cz", "C4", "FC3", "FC4", "CP3", "CP4", "Fz")


def _trained_bn(model, c, t):
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, c, t) * 3 + 1)
    return model.eval()


def test_fast_eegnet_is_exact_and_about_20x_cheaper():
    torch.manual_seed(0)
    net = _trained_bn(create_model("eegnet", 64, 480, 4, sfreq=160.0), 64, 480)
    fast = FastEEGNet(net)
    x = torch.randn(16, 64, 480) * 20
    with torch.no_grad():
        torch.testing.assert_close(fast(x), net(x), rtol=1e-4, atol=1e-4)
    first_block_before = 8 * 80 * 64 * 480 + 16 * 64 * 480
    first_block_after = 16 * 64 * 480 + 16 * 80 * 480
    assert first_block_before / first_block_after > 17
    paper_order = create_model("eegnet", 64, 480, 4, sfreq=160.0, spatial_first=False)
    assert count_macs(paper_order, 64, 480) / count_macs(fast, 64, 480) > 15
    # EEGNet itself now runs its first block spatial-first: as cheap as the deployed form
    assert count_macs(net, 64, 480) <= 1.05 * count_macs(fast, 64, 480)


def test_fast_eegtcnet_is_exact_and_cheaper():
    torch.manual_seed(0)
    net = _trained_bn(create_model("eegtcnet", 64, 480, 4, sfreq=160.0), 64, 480)
    fast = optimize_for_inference(net)
    assert type(fast).__name__ == "FastEEGTCNet"
    x = torch.randn(8, 64, 480) * 20
    with torch.no_grad():
        torch.testing.assert_close(fast(x), net(x), rtol=1e-4, atol=1e-4)
    paper_order = create_model("eegtcnet", 64, 480, 4, sfreq=160.0, spatial_first=False)
    assert count_macs(paper_order, 64, 480) / count_macs(fast, 64, 480) > 5
    assert count_macs(net, 64, 480) <= 1.05 * count_macs(fast, 64, 480)  # trained spatial-first: as cheap


@pytest.mark.parametrize("name", list_models())
def test_batchnorm_folding_is_exact(name):
    torch.manual_seed(0)
    model = _trained_bn(create_model(name, 8, 600, 3, sfreq=200.0), 8, 600)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    x = torch.randn(4, 8, 600)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--dataset", "synthetic-mi", "--task", "left-right-imagery", "--subjects", "1", "2",
                 "--model", "eegnet", "--protocol", "loso", "--epochs", "8", "--out", str(out),
                 "--set", "data.dataset_kwargs.n_channels=8", "--set", "train.lr=0.003"]) == 0
    return out


def test_export_run_parity_int8_and_card(run_dir, capsys):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["export", str(run_dir), "--format", "onnx", "pt2"]) == 0
    # torch.export and its ONNX exporter: no deprecation notice, no constant-folding chatter
    assert not [str(w.message)[:120] for w in caught], [str(w.message)[:120] for w in caught]
    ex = run_dir / "export"
    assert {"model.onnx", "model.int8.onnx", "model.pt2", "model_card.json", "model_card.md", "export_report.json"} <= {
        p.name for p in ex.iterdir()}
    rep = json.loads((ex / "export_report.json").read_text())
    assert rep["onnx"]["max_abs_diff"] <= 1e-4 and rep["pt2"]["max_abs_diff"] <= 1e-4
    assert rep["onnx"]["n_windows"] > 10
    assert abs(rep["onnx"]["accuracy"] - rep["accuracy_pytorch"]) < 1e-9
    assert abs(rep["int8"]["accuracy_change"]) <= 0.1 and rep["int8"]["bytes"] < rep["onnx"]["bytes"]
    card = json.loads((ex / "model_card.json").read_text())
    assert card["parameters"] > 0 and card["weight_bytes_int8"] * 4 == card["weight_bytes_float32"]
    assert card["peak_activation_bytes_float32"] == 4 * card["peak_activation_bytes_int8"]
    assert card["macs_per_window_optimised"] <= card["macs_per_window"]
    n_held_out = int(rep["held_out"].split()[0])
    assert card["accuracy_measured_on"].startswith(f"{n_held_out} held-out windows") and n_held_out > 10
    assert "accuracy measured on" in (ex / "model_card.md").read_text()
    assert "fitted_on" not in load_predictor(ex / "model.onnx").meta  # exports carry no training ids
    # the ONNX file carries what a deployment needs, and a dynamic batch
    onnx_pred = load_predictor(ex / "model.onnx")
    assert onnx_pred.meta["classes"] == ["left_hand", "right_hand"] and len(onnx_pred.meta["ch_names"]) == 8
    assert onnx_pred.logits(np.zeros((5, 8, 480), np.float32)).shape == (5, 2)
    assert "parity max |diff|" in capsys.readouterr().out


def _offline_reference(pred, rec, n_times, hop):
    data = Pipeline.from_config(PRE).apply(rec).data
    ends = np.arange(n_times, data.shape[1] + 1, hop)
    wins = np.stack([data[:, e - n_times:e] for e in ends])
    return ends - 1, pred.predict_proba(wins)


@pytest.mark.parametrize("chunking", [1, 7, 33, "random"])
def test_stream_equals_offline(chunking):
    torch.manual_seed(0)
    model = _trained_bn(create_model("eegnet", 8, 320, 2, sfreq=160.0), 8, 320)
    pred = TorchPredictor(model, {"sfreq": 160.0, "ch_names": list(CH), "n_times": 320, "preprocessing": PRE,
                                  "classes": ["a", "b"]})
    rec = generate_mi_run(1, 4, n_trials=4, channels=CH)
    dec = StreamDecoder(pred, hop_s=0.25)
    rng = np.random.default_rng(0)
    got, i = [], 0
    while i < rec.n_samples:
        n = int(rng.integers(1, 50)) if chunking == "random" else chunking
        got += dec.push(rec.data[:, i:i + n], timestamp=i / rec.sfreq)
        i += n
    samples, ref = _offline_reference(pred, rec, 320, 40)
    assert [d.sample for d in got] == samples.tolist()
    np.testing.assert_allclose(np.stack([d.proba for d in got]), ref, rtol=1e-4, atol=1e-5)
    assert dec.stats.samples == rec.n_samples and dec.stats.dropped_samples == 0


def test_stream_survives_nan_gaps_bursts_and_disorder():
    model = create_model("eegnet", 8, 160, 2, sfreq=160.0).eval()
    pred = TorchPredictor(model, {"sfreq": 160.0, "ch_names": list(CH), "n_times": 160, "preprocessing": PRE})
    dec = StreamDecoder(pred, hop_s=0.1, max_gap_s=0.5)
    x = np.random.default_rng(0).standard_normal((8, 2000)).astype(np.float32) * 1e-5
    out = dec.push(x[:, :200], 0.0)  # a burst: several decisions in one chunk
    assert len(out) >= 3 and dec.stats.bursts == 1
    bad = x[:, 200:216].copy()
    bad[2, 5] = np.nan
    bad[:, 10] = np.inf
    out = dec.push(bad, 200 / 160)
    assert dec.stats.nan_filled == 2 and all(np.isfinite(d.proba).all() for d in out)
    assert dec.push(x[:, 100:116], 100 / 160) == [] and dec.stats.out_of_order == 1  # in the past: dropped, counted
    assert dec.stats.dropped_samples == 16
    out = dec.push(x[:, 260:276], 260 / 160)  # 44 samples missing: filled by holding, counted
    assert dec.stats.gaps == 1 and dec.stats.gap_filled == 44
    assert any(d.filled > 0 for d in out) or dec.stats.decisions > 0
    dec.push(x[:, 1000:1016], 1000 / 160)  # a gap longer than 0.5 s: reset
    assert dec.stats.resets == 1
    with pytest.raises(ValueError, match=r"expected chunks of shape \(8, n\)"):
        dec.push(x[:3, :10])
    summary = dec.stats.summary()
    assert summary["latency_p99_ms"] >= summary["latency_p50_ms"] > 0


@pytest.fixture
def lsl_config(tmp_path, monkeypatch):
    """Keep LSL discovery on this machine's loopback."""
    cfg = tmp_path / "lsl_api.cfg"
    cfg.write_text("[ports]\nIPv6 = disable\n[multicast]\nResolveScope = machine\nMachineAddresses = {127.0.0.1}\n"
                   "LinkAddresses = {}\nSiteAddresses = {}\nOrganizationAddresses = {}\nGlobalAddresses = {}\n"
                   "[lab]\nKnownPeers = {127.0.0.1}\n")
    monkeypatch.setenv("LSLAPICFG", str(cfg))
    return cfg


def test_lsl_stream_matches_offline(lsl_config):
    pylsl = pytest.importorskip("pylsl")
    torch.manual_seed(0)
    model = _trained_bn(create_model("eegnet", 8, 320, 2, sfreq=160.0), 8, 320)
    pred = TorchPredictor(model, {"sfreq": 160.0, "ch_names": list(CH), "n_times": 320, "preprocessing": PRE,
                                  "classes": ["a", "b"]})
    rec = generate_mi_run(2, 4, n_trials=2, channels=CH)
    n = 160 * 8
    name = f"biodecode-test-{os.getpid()}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 8, 160.0, "float32", name), chunk_size=16)

    def produce():
        assert outlet.wait_for_consumers(20.0)  # samples pushed before an inlet connects are not kept
        time.sleep(0.2)
        for i in range(0, n, 16):
            chunk = rec.data[:, i:i + 16].T.astype(np.float32)
            outlet.push_chunk(chunk.tolist(), 100.0 + (i + chunk.shape[0] - 1) / 160.0)  # stamp of the last sample
            time.sleep(0.002)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    dec = StreamDecoder(pred, hop_s=0.25)
    got = list(lsl_decisions(dec, name, timeout=5.0, max_seconds=15.0, max_idle_s=1.5))
    thread.join()
    samples, ref = _offline_reference(pred, rec.replace(data=rec.data[:, :n]), 320, 40)
    assert dec.stats.samples == n and dec.stats.dropped_samples == 0 and dec.stats.gaps == 0
    assert [d.sample for d in got] == samples.tolist()
    np.testing.assert_allclose(np.stack([d.proba for d in got]), ref, rtol=1e-4, atol=1e-5)


def test_cli_stream_replay_and_bench_latency(run_dir, tmp_path, capsys):
    if not (run_dir / "export" / "model.onnx").is_file():
        main(["export", str(run_dir)])
    rec = generate_mi_run(1, 4, n_trials=2, channels=tuple(load_predictor(run_dir / "model.pt").meta["ch_names"]))
    path = tmp_path / "rec.npy"
    np.save(path, rec.data)
    capsys.readouterr()
    assert main(["stream", "--model", str(run_dir / "export" / "model.int8.onnx"), "--replay", str(path),
                 "--max-seconds", "6"]) == 0
    out = capsys.readouterr().out
    assert "latency" in out and '"decisions"' in out
    assert main(["bench-latency", str(run_dir), "--seconds", "5"]) == 0
    out = capsys.readouterr().out
    for backend in ("PyTorch eager", "ONNX Runtime float32", "ONNX Runtime int8"):
        assert backend in out


def test_deploy_cli_errors_are_clear(run_dir, tmp_path, capsys):
    import re

    bad = tmp_path / "three.npy"
    np.save(bad, np.zeros((3, 1000), np.float32))
    # a recording at another sampling rate than the model's 160 Hz (WFDB, 250 Hz)
    import wfdb

    ch = load_predictor(run_dir / "model.pt").meta["ch_names"]
    wfdb.wrsamp("rate250", fs=250, units=["mV"] * len(ch), sig_name=list(ch), p_signal=np.zeros((500, len(ch))),
                fmt=["16"] * len(ch), write_dir=str(tmp_path))
    cases = [
        (["export", str(tmp_path / "nope")], r"nope: no model\.pt"),
        (["stream", "--model", str(tmp_path / "m.onnx"), "--replay", str(bad)], r"m\.onnx: no such model file"),
        (["stream", "--model", str(run_dir / "model.pt"), "--replay", str(bad)], r"three\.npy: 3 channels, the model expects 8"),
        (["bench-latency", str(tmp_path)], r"no model\.pt / export/model\.onnx found"),
        (["stream", "--model", str(run_dir / "model.pt"), "--replay", str(tmp_path / "rate250.hea")],
         r"rate250\.hea: 250 Hz, but the model expects 160 Hz"),
    ]
    for args, pattern in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert re.search(pattern, err), (args, err)


def test_damaged_model_files_get_messages_not_tracebacks(run_dir, tmp_path, capsys):
    import re

    import torch

    payload = torch.load(run_dir / "model.pt", weights_only=True)
    variants = {
        "wrong_shape.pt": dict(payload, state_dict={k: v[:1] if v.ndim else v for k, v in payload["state_dict"].items()}),
        "no_weights.pt": {k: v for k, v in payload.items() if k != "state_dict"},
        "bad_settings.pt": dict(payload, model_kwargs={"F1": -3}),
        "empty_weights.pt": dict(payload, state_dict={}),
    }
    for name, obj in variants.items():
        torch.save(obj, tmp_path / name)
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07 not a protobuf" * 8)
    (tmp_path / "bad.ts").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "bad.pt2").write_bytes(b"PK\x03\x04 not a zip")
    rec = tmp_path / "rec.npy"
    np.save(rec, np.zeros((8, 800), np.float32))
    cases = [
        (["evaluate", str(tmp_path / "wrong_shape.pt")], r"wrong_shape\.pt: its weights do not fit a eegnet for 8 channels"),
        (["evaluate", str(tmp_path / "no_weights.pt")], r"no_weights\.pt: model file lacks \['state_dict'\]"),
        (["evaluate", str(tmp_path / "bad_settings.pt")], r"bad_settings\.pt: the model it describes cannot be built: .*F1=-3"),
        (["evaluate", str(tmp_path / "empty_weights.pt")], r"empty_weights\.pt: its weights do not fit .*Missing key"),
        (["stream", "--model", str(tmp_path / "bad.onnx"), "--replay", str(rec)], r"bad\.onnx: not a readable ONNX model"),
        (["bench-latency", str(tmp_path / "bad.ts"), "--seconds", "1"], r"bad\.ts: not a readable TorchScript model"),
        (["stream", "--model", str(tmp_path / "bad.pt2"), "--replay", str(rec)], r"bad\.pt2: not a readable torch\.export"),
    ]
    for args, pattern in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert re.search(pattern, err) and "Traceback" not in err, (args, err)


@pytest.mark.parametrize("flag,value", [("--chunk", "0"), ("--chunk", "-5"), ("--hop", "0"), ("--max-seconds", "-1"),
                                        ("--hop", "nan"), ("--chunk", "2.5")])
def test_stream_arguments_are_checked(run_dir, tmp_path, capsys, flag, value):
    rec = tmp_path / "rec.npy"
    np.save(rec, np.zeros((8, 800), np.float32))
    with pytest.raises(SystemExit) as exc:
        main(["stream", "--model", str(run_dir / "model.pt"), "--replay", str(rec), flag, value])
    assert exc.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_stream_decoder_and_replay_reject_impossible_settings(run_dir):
    from biodecode.deploy.stream import StreamDecoder, replay
    from biodecode.errors import ConfigError

    pred = load_predictor(run_dir / "model.pt")
    with pytest.raises(ConfigError, match="hop_s must be at least one sample"):
        StreamDecoder(pred, hop_s=0.001)  # under one sample at 160 Hz: it used to decide on every sample
    with pytest.raises(ConfigError, match="chunk_size must be a positive"):
        list(replay(StreamDecoder(pred), np.zeros((8, 100), np.float32), 0))


def test_replay_matches_channels_by_name_and_warns_when_none_match(run_dir, tmp_path, caplog):
    from biodecode.deploy.stream import StreamDecoder, load_replay
    from biodecode.errors import ConfigError

    dec = StreamDecoder(load_predictor(run_dir / "model.pt"))
    names = list(dec.ch_names)
    data = np.arange(8 * 400, dtype=float).reshape(8, 400)
    csv = tmp_path / "reordered.csv"
    pd.DataFrame(data[::-1].T, columns=names[::-1]).to_csv(csv, index=False)
    np.testing.assert_allclose(load_replay(csv, dec), data)  # put back in the model's order by name
    other = tmp_path / "other.csv"
    pd.DataFrame(data.T, columns=[f"EMG{i}" for i in range(8)]).to_csv(other, index=False)
    with caplog.at_level("WARNING"):
        np.testing.assert_allclose(load_replay(other, dec), data)
    assert "none of its channel names" in caplog.text and "file order" in caplog.text
    some = tmp_path / "some.csv"
    pd.DataFrame(data.T, columns=names[:4] + [f"X{i}" for i in range(4)]).to_csv(some, index=False)
    with pytest.raises(ConfigError, match=r"some\.csv: lacks the model's channel\(s\)"):
        load_replay(some, dec)
    np.testing.assert_allclose(load_replay(csv, dec, max_seconds=1.0), data[:, :160])
