"""int8 quantisation of an exported ONNX model with ONNX Runtime static quantisation (QDQ,
per-channel weights, activations calibrated on real windows), quantised at the same points as the
C export's int8 kernels (:mod:`biodecode.deploy.cquant`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


#: Ops with int8 inputs and outputs (and int8 weights). Elementwise and pooling ops between them run on
#: dequantised values and are re-quantised at the next op's input, as the C export's fused kernels do
#: (ELU + average pool, ShallowConvNet's square-pool-log), instead of rounding a squared or pooled value
#: to int8 on its own; the final dense layer's output (the logits) stays float.
QUANTIZED_OPS = ["Conv", "MatMul", "Gemm", "Add", "Concat", "Relu"]


def quantize_onnx(fp32_path: str | os.PathLike, int8_path: str | os.PathLike, calibration: np.ndarray,
                  batch_size: int = 16) -> Path:
    """Quantise ``fp32_path`` to ``int8_path`` using ``calibration`` windows ``(n, C, T)`` (taken
    from the training side, never from test data). The biodecode metadata is carried over."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .export import INPUT_NAME

    class _Reader(CalibrationDataReader):
        def __init__(self, X: np.ndarray):
            self.batches = iter([{INPUT_NAME: np.ascontiguousarray(X[i:i + batch_size], dtype=np.float32)}
                                 for i in range(0, len(X), batch_size)])

        def get_next(self):
            return next(self.batches, None)

    int8_path = Path(int8_path)
    with tempfile.TemporaryDirectory(dir=int8_path.parent) as tmpdir:
        pre = Path(tmpdir) / "pre.onnx"
        try:
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        except Exception:
            pre = Path(fp32_path)
        out = Path(tmpdir) / "q.onnx"
        quantize_static(str(pre), str(out), _Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS,
                        extra_options={"OpTypesToExcludeOutputQuantization": ["Gemm"]})
        src, dst = onnx.load(str(fp32_path)), onnx.load(str(out))
        del dst.metadata_props[:]
        dst.metadata_props.extend(src.metadata_props)
        onnx.save(dst, str(out))
        os.replace(out, int8_path)
    return int8_path
