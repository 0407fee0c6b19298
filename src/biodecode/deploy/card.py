"""A model card: what it costs to run a model on a device, for one window."""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..models import count_macs, count_parameters


def peak_activation_bytes(model: nn.Module, n_channels: int, n_times: int, bytes_per_value: int = 4) -> int:
    """Largest (input + output) size of any leaf layer for one window: a lower bound on the working
    memory a layer-by-layer runtime needs besides the weights."""
    peak = [n_channels * n_times * bytes_per_value]

    def hook(mod, inp, out):
        size = sum(t.numel() for t in inp if torch.is_tensor(t))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        size += sum(t.numel() for t in outs if torch.is_tensor(t))
        peak.append(size * bytes_per_value)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, n_channels, n_times))
    finally:
        for h in handles:
            h.remove()
    return max(peak)


def model_card(model: nn.Module, n_channels: int, n_times: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Parameters, MACs, weight memory and peak activation memory (float32 and int8) for one window."""
    params = count_parameters(model, trainable_only=False)
    buffers = sum(b.numel() for b in model.buffers())
    card = {
        "input_shape": [1, n_channels, n_times],
        "parameters": params,
        "macs_per_window": count_macs(model, n_channels, n_times),
        "weight_bytes_float32": 4 * (params + buffers),
        "weight_bytes_int8": params + buffers,  # one byte per value; per-channel scales add a few hundred bytes
        "peak_activation_bytes_float32": peak_activation_bytes(model, n_channels, n_times, 4),
        "peak_activation_bytes_int8": peak_activation_bytes(model, n_channels, n_times, 1),
    }
    card.update(extra or {})
    return card


def card_markdown(card: dict[str, Any]) -> str:
    rows = [("input", " x ".join(map(str, card["input_shape"]))), ("parameters", f"{card['parameters']:,}"),
            ("multiply-accumulates / window", f"{card['macs_per_window']:,}"),
            ("weights, float32", f"{card['weight_bytes_float32'] / 1024:.1f} KiB"),
            ("weights, int8", f"{card['weight_bytes_int8'] / 1024:.1f} KiB"),
            ("peak activations, float32", f"{card['peak_activation_bytes_float32'] / 1024:.1f} KiB"),
            ("peak activations, int8", f"{card['peak_activation_bytes_int8'] / 1024:.1f} KiB")]
    c_labels = {"flash_bytes": "flash (code + constants)", "ram_bytes": "RAM (arena + input + stack)",
                "sizes_for": "sizes measured for", "constant_bytes": "constants", "ram_bytes_without_stack":
                "RAM (arena + input; no compiler to measure the stack)"}
    for k, v in card.items():
        if k in {"input_shape", "parameters", "macs_per_window"} or k.startswith(("weight_bytes", "peak_")):
            continue
        m = re.fullmatch(r"c_(int8|float32)_(.+)", k)
        if m and m.group(2) in c_labels:
            label = f"C99 {m.group(1)}: {c_labels[m.group(2)]}"
            rows.append((label, f"{v / 1024:.1f} KiB ({v:,} B)" if isinstance(v, int) else str(v)))
        else:
            rows.append((k.replace("_", " "), f"{v:,}" if isinstance(v, int) else str(v)))
    if "peak_activation_bytes_float32_optimised" in card:
        rows.append(("peak activations, float32, optimised graph",
                     f"{card['peak_activation_bytes_float32_optimised'] / 1024:.1f} KiB"))
    return "| quantity | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"
