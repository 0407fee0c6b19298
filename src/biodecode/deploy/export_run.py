"""Export a run folder: optimised model -> ONNX (+ int8, + a torch.export program), parity on real held-out
windows, accuracy of the int8 model, and a model card next to the exported files."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError
from ..evaluation.report import write_json, write_text_atomic
from ..spec import WindowSpec
from ..training import load_model
from .card import card_markdown, model_card
from .export import export_onnx, export_pt2, parity
from .optimize import optimize_for_inference
from .predictor import OnnxPredictor, TorchPredictor


def _held_out(run: Path, max_test: int = 512, max_calib: int = 256):
    """Windows of the run's data: the best fold's test side and calibration windows from the rest."""
    from ..experiment import load_run_windows

    config = RunConfig.from_yaml(run / "config.yaml")
    metrics = json.loads((run / "metrics.json").read_text())
    fold = metrics["folds"][metrics.get("best_fold", 0)]
    ws = load_run_windows(config)
    test = np.isin(ws.groups(fold["leakage_key"]), fold["test_groups"])
    rng = np.random.default_rng(0)
    test_idx = np.flatnonzero(test)
    other = np.flatnonzero(~test)
    test_idx = np.sort(rng.choice(test_idx, min(max_test, len(test_idx)), replace=False))
    calib_idx = np.sort(rng.choice(other, min(max_calib, len(other)), replace=False)) if len(other) else test_idx[:0]
    return ws, test_idx, calib_idx, fold["name"]


def _latency_ms(predictor, x: np.ndarray, repeats: int = 200) -> float:
    for _ in range(10):
        predictor.logits(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predictor.logits(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def export_run(run_dir: str | Path, formats: tuple[str, ...] = ("onnx",), quantize: bool = True,
               out_dir: str | Path | None = None) -> dict[str, Any]:
    run = Path(run_dir)
    if (run / "model.joblib").is_file() and not (run / "model.pt").is_file():
        raise ConfigError(f"{run}: a classical baseline's run (model.joblib); only networks export to ONNX / pt2")
    if not (run / "model.pt").is_file():
        raise FileNotFoundError(f"{run}: no model.pt (is this a biodecode run folder?)")
    unknown = set(formats) - {"onnx", "pt2"}
    if unknown:
        raise ConfigError(f"export: unknown format(s) {sorted(unknown)}; use onnx and/or pt2 (a torch.export program; "
                          f"TorchScript is deprecated in torch and no longer written)")
    out = Path(out_dir) if out_dir else run / "export"
    out.mkdir(parents=True, exist_ok=True)
    model, meta = load_model(run / "model.pt")
    C, T = model.n_channels, model.n_times
    meta = dict(meta, n_channels=C, n_times=T, model=getattr(model, "registry_name", ""))
    meta.pop("fitted_on", None)  # the training groups stay in model.pt; exports carry no data ids
    ws, test_idx, calib_idx, fold_name = _held_out(run)
    X_test, y_test = np.asarray(ws.X[test_idx]), ws.y[test_idx]
    fast = optimize_for_inference(model)
    report: dict[str, Any] = {"run": str(run), "held_out": f"{len(test_idx)} test windows of {fold_name}",
                              "synthetic": ws.synthetic, "opset": 17, "input": {"name": "x", "shape": ["batch", C, T]},
                              "output": {"name": "logits", "shape": ["batch", len(meta.get("classes", []))]}}
    ref = TorchPredictor(model, meta)
    acc = lambda p: float(np.mean(p.predict_proba(X_test).argmax(1) == y_test)) if len(y_test) else float("nan")  # noqa: E731
    report["accuracy_pytorch"] = acc(ref)
    extra: dict[str, Any] = {"accuracy_float32": round(report["accuracy_pytorch"], 4),
                             "accuracy_measured_on": f"{len(test_idx)} held-out windows (test side of {fold_name}; "
                                                     f"the model never saw them)"}
    if "onnx" in formats:
        onnx_path = export_onnx(fast, out / "model.onnx", C, T, meta)
        report["onnx"] = {"path": str(onnx_path), "bytes": onnx_path.stat().st_size, **parity(model, onnx_path, X_test[:64])}
        fp32 = OnnxPredictor(onnx_path)
        report["onnx"]["accuracy"] = acc(fp32)
        report["onnx"]["latency_ms_batch1"] = _latency_ms(fp32, X_test[:1])
        extra["parity_max_abs_diff"] = f"{report['onnx']['max_abs_diff']:.2e}"
        if quantize and len(calib_idx):
            from .quantize import quantize_onnx

            q_path = quantize_onnx(onnx_path, out / "model.int8.onnx", np.asarray(ws.X[calib_idx]))
            q = OnnxPredictor(q_path)
            report["int8"] = {"path": str(q_path), "bytes": q_path.stat().st_size, "accuracy": acc(q),
                              "accuracy_change": acc(q) - report["onnx"]["accuracy"],
                              "latency_ms_batch1": _latency_ms(q, X_test[:1]),
                              "calibration_windows": int(len(calib_idx))}
            extra.update(accuracy_int8=round(report["int8"]["accuracy"], 4), size_onnx_float32=report["onnx"]["bytes"],
                         size_onnx_int8=report["int8"]["bytes"])
    if "pt2" in formats:
        pt2_path = export_pt2(fast, out / "model.pt2", C, T, meta)
        report["pt2"] = {"path": str(pt2_path), **parity(model, pt2_path, X_test[:64])}
    card = model_card(model, C, T, extra)
    fast_card = model_card(fast, C, T)  # what the exported (re-ordered / BN-folded) graph costs
    card["macs_per_window_optimised"] = fast_card["macs_per_window"]
    card["peak_activation_bytes_float32_optimised"] = fast_card["peak_activation_bytes_float32"]
    write_json(out / "model_card.json", card)
    write_text_atomic(out / "model_card.md", f"# Model card: {meta.get('model')} on {WindowSpec.from_model_meta(meta).dataset}"
                      f"{' (SYNTHETIC)' if ws.synthetic else ''}\n\n" + card_markdown(card))
    report["card"] = card
    write_json(out / "export_report.json", report)
    return report
