"""Export a run folder: optimised model -> ONNX (+ int8, + a torch.export program), parity on real held-out
windows, accuracy of the int8 model, and a model card next to the exported files."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import RunConfig
from ..errors import ConfigError
from ..evaluation.report import write_json, write_text_atomic
from ..experiment import held_out_windows
from ..runs import network_model_file
from ..spec import WindowSpec
from ..training import load_model
from .card import card_markdown, model_card
from .export import export_onnx, export_pt2, parity
from .optimize import optimize_for_inference
from .predictor import OnnxPredictor, TorchPredictor


def _latency_ms(predictor, x: np.ndarray, repeats: int = 200) -> float:
    for _ in range(10):
        predictor.logits(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predictor.logits(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def _c_export(model, meta: dict[str, Any], out: Path, dtype: str, X_test: np.ndarray, y_test: np.ndarray,
              calibration: np.ndarray, torch_logits: np.ndarray, int8_onnx: OnnxPredictor | None) -> dict[str, Any]:
    """Write ``out/c``, build it with gcc (when installed) and check it on the held-out windows: the
    float32 program against PyTorch (parity within 1e-4), the int8 program against the int8 ONNX model
    (share of equal decisions, largest logit difference) and against PyTorch."""
    import tempfile

    from .c_export import CCompileError, c_sizes, compile_c, export_c, run_c
    from ..preprocessing import describe_step
    from .export import ParityError

    spec = WindowSpec.from_model_meta(meta)
    lines = [f"model {meta.get('model')} on {spec.dataset}, task {spec.task}; {model.n_channels} channels "
             f"({', '.join(meta.get('ch_names', [])[:16])}{', ...' if len(meta.get('ch_names', [])) > 16 else ''}) "
             f"x {model.n_times} samples at {meta.get('sfreq')} Hz",
             "input, as in training: " + "; ".join(
                 describe_step(step) for step in (spec.preprocessing or [])) + (f"; then {meta['alignment']['method']} alignment per "
                 f"{', '.join(meta['alignment'].get('by', []))}" if meta.get("alignment", {}).get("method", "none")
                 != "none" else "") + (f"; metadata channels {meta['metadata_channels']}" if meta.get("metadata_channels")
                 else "")]
    if dtype == "int8" and not len(calibration):
        raise ConfigError("C export: int8 needs calibration windows from the training side, and this run has none; "
                          "use --c-dtype float32")
    src = export_c(model, out / "c", calibration if dtype == "int8" else None, dtype, meta.get("classes"), lines)
    rep: dict[str, Any] = {"path": str(out / "c"), "dtype": dtype, "arena_bytes": src.arena_bytes,
                           "constant_bytes": src.constant_bytes, "input_bytes": src.input_bytes}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            logits = run_c(compile_c(out / "c", Path(tmp) / "model"), X_test, model.n_classes)
        rep["sizes_host"] = c_sizes(out / "c", "host")
    except CCompileError as e:
        rep["not_checked"] = str(e)
        return rep
    rep["n_windows"] = int(len(X_test))
    rep["accuracy"] = float(np.mean(logits.argmax(1) == y_test)) if len(y_test) else float("nan")
    rep["max_abs_diff_pytorch"] = float(np.max(np.abs(logits - torch_logits))) if len(X_test) else 0.0
    rep["decisions_equal_pytorch"] = float(np.mean(logits.argmax(1) == torch_logits.argmax(1))) if len(X_test) else 1.0
    if dtype == "float32" and rep["max_abs_diff_pytorch"] > 1e-4:
        raise ParityError(f"{out / 'c'}: the float32 C program differs from PyTorch by up to "
                          f"{rep['max_abs_diff_pytorch']:.2e} (> 1e-4) on {len(X_test)} windows")
    if dtype == "int8" and int8_onnx is not None:
        ref = int8_onnx.logits(X_test)
        rep["decisions_equal_int8_onnx"] = float(np.mean(logits.argmax(1) == ref.argmax(1))) if len(X_test) else 1.0
        rep["max_abs_diff_int8_onnx"] = float(np.max(np.abs(logits - ref))) if len(X_test) else 0.0
    try:
        rep["sizes_cortex_m4f"] = c_sizes(out / "c", "cortex-m4f")
    except CCompileError as e:
        rep["sizes_cortex_m4f_skipped"] = str(e)
    return rep


def export_run(run_dir: str | Path, formats: tuple[str, ...] = ("onnx",), quantize: bool = True,
               out_dir: str | Path | None = None, c_dtype: str = "int8") -> dict[str, Any]:
    run = Path(run_dir)
    model_file = network_model_file(run, "only networks export to ONNX / pt2 / C")
    unknown = set(formats) - {"onnx", "pt2", "c"}
    if unknown:
        raise ConfigError(f"export: unknown format(s) {sorted(unknown)}; use onnx, pt2 (a torch.export program; "
                          f"TorchScript is deprecated in torch and no longer written) and/or c (C99 source)")
    if c_dtype not in ("int8", "float32"):
        raise ConfigError(f"export: --c-dtype must be int8 or float32, got {c_dtype!r}")
    model, meta = load_model(model_file)
    if "c" in formats:
        from .cgraph import lower

        lower(model)  # an unsupported model fails before any windows are loaded or files written
    out = Path(out_dir) if out_dir else run / "export"
    out.mkdir(parents=True, exist_ok=True)
    C, T = model.n_channels, model.n_times
    meta = dict(meta, n_channels=C, n_times=T, model=getattr(model, "registry_name", ""))
    meta.pop("fitted_on", None)  # the training groups stay in model.pt; exports carry no data ids
    ws, test_idx, calib_idx, fold_name = held_out_windows(run)
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
    if "c" in formats:
        int8_onnx = OnnxPredictor(report["int8"]["path"]) if "int8" in report else None
        with torch.no_grad():
            torch_logits = model.eval()(torch.from_numpy(np.ascontiguousarray(X_test, np.float32))).numpy()
        report["c"] = _c_export(model, meta, out, c_dtype, X_test, y_test, np.asarray(ws.X[calib_idx]), torch_logits,
                                int8_onnx)
        c = report["c"]
        sizes = c.get("sizes_cortex_m4f") or c.get("sizes_host")
        if sizes:
            extra.update({f"c_{c_dtype}_flash_bytes": sizes["flash_bytes"], f"c_{c_dtype}_ram_bytes": sizes["ram_bytes"],
                          f"c_{c_dtype}_sizes_for": f"{sizes['target']} ({sizes['compiler']}, -Os); RAM = arena "
                                                    f"{c['arena_bytes']} + input {c['input_bytes']} + stack {sizes['stack_bytes']}"})
        else:
            extra.update({f"c_{c_dtype}_constant_bytes": c["constant_bytes"],
                          f"c_{c_dtype}_ram_bytes_without_stack": c["arena_bytes"] + c["input_bytes"]})
        if "accuracy" in c:
            extra[f"accuracy_c_{c_dtype}"] = round(c["accuracy"], 4)
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
    report["card_path"] = str(out / "model_card.md")
    write_json(out / "export_report.json", report)
    return report
