"""int8 quantisation of a C graph (:mod:`biodecode.deploy.cgraph`) for integer-only kernels.

The scheme is the one ONNX Runtime's static QDQ quantisation uses for ``model.int8.onnx`` (and
TFLite Micro / CMSIS-NN on devices), so the two int8 models make the same kind of rounding:

- activations: asymmetric int8, ``real = scale * (q - zero_point)``, the range calibrated as the
  min/max over calibration windows (widened to contain 0);
- weights: symmetric int8 per output channel, ``scale_o = max|w_o| / 127``;
- biases: int32 at ``scale_in * scale_o``; products accumulate in int32;
- requantisation: ``q_out = zero_point_out + round(acc * M)`` with ``M = s_in s_o / s_out`` as a
  31-bit fixed-point multiplier and a right shift (:func:`fixed_point`);
- ELU by a 256-entry table; ELU followed by average pooling fused (a 16-bit table, the average in
  int32, one requantisation); pooling requantises to its own calibrated range (as ONNX Runtime does
  at the next op's input), and so does the last time step; global pooling keeps its input's scale;
- the final dense layer's int32 accumulators are returned as float logits (``acc * s_in * s_o``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .cgraph import Graph

#: Ops whose output keeps the input's scale and zero point exactly.
SAME_SCALE = {"gpool"}


@dataclass(frozen=True)
class QParams:
    scale: float
    zero_point: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        return np.clip(np.round(np.asarray(x, np.float64) / self.scale) + self.zero_point, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, np.float64) - self.zero_point) * self.scale


def qparams(lo: float, hi: float) -> QParams:
    """Asymmetric int8 parameters for the real range ``[lo, hi]`` (widened to contain 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"calibration range [{lo}, {hi}] is not finite")
    scale = (hi - lo) / 255.0 or 1e-8
    zp = int(round(-128 - lo / scale))
    return QParams(float(np.float32(scale)), max(-128, min(127, zp)))


def fixed_point(M: float) -> tuple[int, int]:
    """``M >= 0`` as ``(m, r)`` with ``M ~= m / 2**r``, ``m`` a 31-bit integer (0 for negligible M)."""
    if M <= 0 or M < 2.0 ** -60:
        return 0, 0
    e = math.floor(math.log2(M))
    m = int(round(M * 2.0 ** (30 - e)))
    if m >= 1 << 31:
        m, e = m // 2, e + 1
    r = 30 - e
    if r < 0:
        raise ValueError(f"requantisation multiplier {M:g} is too large for int32 (scales out of balance)")
    return m, r


def weight_scales(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8 weights: ``(w_q (int8, same shape), scales (out,))``."""
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    scales = np.abs(flat).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    q = np.clip(np.round(flat / scales[:, None]), -127, 127).astype(np.int8).reshape(w.shape)
    return q, scales


def quantize_layer(weight: np.ndarray, bias: np.ndarray | None, q_in: QParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A conv or dense layer for int8 input quantised as ``q_in``: ``(int8 weights, int32 biases at
    scale q_in.scale * weight scale, per-output weight scales)``; no bias gives zeros."""
    wq, scales = weight_scales(weight)
    b = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
    bq = np.clip(np.round(b / (q_in.scale * scales)), -2**31, 2**31 - 1).astype(np.int64)
    return wq, bq, scales


def tensor_qparams(g: Graph, ranges: dict[int, tuple[float, float]]) -> dict[int, QParams]:
    """Scale and zero point of every tensor; scale-preserving ops inherit their input's."""
    qp = {0: qparams(*ranges[0])}
    for op in g.ops:
        if op.kind in SAME_SCALE:
            qp[op.output] = qp[op.inputs[0]]
        elif op.kind == "conv" and op.params["relu"] or op.kind == "add" and op.params["relu"]:
            qp[op.output] = qparams(0.0, ranges[op.output][1])
        else:
            qp[op.output] = qparams(*ranges[op.output])
    return qp


def elu_table(qin: QParams, qout: QParams) -> np.ndarray:
    """int8 -> int8 lookup table of ELU (alpha 1) between the two quantisations, indexed by ``q + 128``."""
    x = qin.dequantize(np.arange(-128, 128))
    return qout.quantize(np.where(x > 0, x, np.expm1(np.minimum(x, 0))))


def elu_table16(qin: QParams) -> tuple[np.ndarray, float]:
    """int8 -> int16 table of ELU at a fine scale (for ELU fused with average pooling): ``(table, scale)``."""
    x = qin.dequantize(np.arange(-128, 128))
    y = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    scale = float(np.abs(y).max()) / 32767.0 or 1e-8
    return np.clip(np.round(y / scale), -32767, 32767).astype(np.int16), scale
