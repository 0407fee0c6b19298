"""A trained network as a flat list of C-kernel operations on one window (the C export's graph).

Every tensor is 2-D, ``(channels, length)``, stored channel-major (so a flatten before a dense
layer is free). Batch norms are folded into the convolution before them, EEGNet's first block is
re-ordered spatial-first (:func:`~biodecode.deploy.optimize.fold_first_block`), dropout is gone.
:func:`lower` builds the graph from a model in eval mode; :func:`run_graph` executes it in float32
with PyTorch (the reference the C code must match, and the source of the int8 calibration ranges).

Operations (``Op.kind``):

- ``conv``: 1-D convolution, weight ``(out, in / groups, K)``, optional bias, stride, dilation,
  zero padding ``(left, right)``, optional fused ReLU;
- ``elu``: ELU (alpha 1) elementwise;
- ``pool``: average or max pooling (kernel, stride, padding, ceil mode; an average divides by the
  number of in-range samples, as PyTorch does without padding);
- ``powlog``: ShallowConvNet's ``log(max(avg_pool(x^2), 1e-6))``;
- ``add``: two tensors, optional ReLU;
- ``gpool``: ``(C, L) -> (2C, 1)``: mean over time, then max over time;
- ``last``: ``(C, L) -> (C, 1)``: the last time step;
- ``linear``: dense layer on the flattened ``(C * L)`` tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from .optimize import _bn_affine, fold_first_block


class UnsupportedLayerError(ConfigError):
    """The model has a layer the C export has no kernel for."""


@dataclass
class Op:
    """One operation: ``kind``, input tensor ids, output tensor id, parameters (NumPy float32
    arrays for weights) and the output shape ``(channels, length)``."""

    kind: str
    inputs: tuple[int, ...]
    output: int
    shape: tuple[int, int]
    params: dict[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass
class Graph:
    """Tensor 0 is the input ``(n_channels, n_times)``; the last op's output is the logits ``(n_classes, 1)``."""

    n_channels: int
    n_times: int
    n_classes: int
    ops: list[Op] = field(default_factory=list)

    def shape(self, tensor: int) -> tuple[int, int]:
        return (self.n_channels, self.n_times) if tensor == 0 else next(o.shape for o in self.ops if o.output == tensor)

    @property
    def output(self) -> int:
        return self.ops[-1].output


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().double().numpy().astype(np.float32)


def _out_len(n: int, k: int, stride: int, pad_total: int, dilation: int = 1, ceil: bool = False) -> int:
    """Output length of a conv or pool over ``n`` samples, as PyTorch computes it (a ceil-mode
    window must start inside the input or the left padding)."""
    span = n + pad_total - dilation * (k - 1) - 1
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= n + pad_total // 2:
        out -= 1
    return out


class _Builder:
    def __init__(self, g: Graph):
        self.g, self.n = g, 0

    def _add(self, kind: str, inputs: tuple[int, ...], shape: tuple[int, int], name: str, **params: Any) -> int:
        if shape[0] < 1 or shape[1] < 1:
            raise ConfigError(f"C export: layer {name} leaves nothing (output shape {shape})")
        self.n += 1
        self.g.ops.append(Op(kind, inputs, self.n, shape, params, name))
        return self.n

    def conv(self, x: int, weight: torch.Tensor, bias: torch.Tensor | None, name: str, *, stride: int = 1,
             dilation: int = 1, pad: tuple[int, int] = (0, 0), groups: int = 1, relu: bool = False) -> int:
        c_in, length = self.g.shape(x)
        w = _np(weight)
        if w.ndim != 3 or w.shape[1] * groups != c_in:
            raise ConfigError(f"C export: layer {name}: weight {w.shape} does not fit {c_in} input channels in {groups} groups")
        out = _out_len(length, w.shape[2], stride, pad[0] + pad[1], dilation)
        return self._add("conv", (x,), (w.shape[0], out), name, weight=w, bias=_np(bias), stride=stride,
                         dilation=dilation, pad=tuple(pad), groups=groups, relu=relu)

    def elu(self, x: int, name: str) -> int:
        return self._add("elu", (x,), self.g.shape(x), name)

    def pool(self, x: int, mode: str, k: int, stride: int, name: str, pad: int = 0, ceil: bool = False) -> int:
        c, length = self.g.shape(x)
        if mode == "avg" and pad:
            raise UnsupportedLayerError(f"C export: layer {name}: average pooling with padding has no C kernel")
        return self._add("pool", (x,), (c, _out_len(length, k, stride, 2 * pad, ceil=ceil)), name, mode=mode, k=k,
                         stride=stride, pad=pad, ceil=ceil)

    def powlog(self, x: int, k: int, stride: int, eps: float, name: str) -> int:
        c, length = self.g.shape(x)
        return self._add("powlog", (x,), (c, _out_len(length, k, stride, 0)), name, k=k, stride=stride, eps=eps)

    def add(self, a: int, b: int, name: str, relu: bool = False) -> int:
        if self.g.shape(a) != self.g.shape(b):
            raise ConfigError(f"C export: layer {name}: adding shapes {self.g.shape(a)} and {self.g.shape(b)}")
        return self._add("add", (a, b), self.g.shape(a), name, relu=relu)

    def gpool(self, x: int, name: str) -> int:
        return self._add("gpool", (x,), (2 * self.g.shape(x)[0], 1), name)

    def last(self, x: int, name: str) -> int:
        return self._add("last", (x,), (self.g.shape(x)[0], 1), name)

    def linear(self, x: int, layer: nn.Linear, name: str) -> int:
        c, length = self.g.shape(x)
        if layer.in_features != c * length:
            raise ConfigError(f"C export: layer {name} takes {layer.in_features} features, the graph gives {c * length}")
        return self._add("linear", (x,), (layer.out_features, 1), name, weight=_np(layer.weight), bias=_np(layer.bias))

    # composite pieces ----------------------------------------------------------------------
    def conv_bn(self, x: int, conv: nn.Conv1d, bn: nn.BatchNorm1d | None, name: str, relu: bool = False,
                pad: tuple[int, int] | None = None) -> int:
        w, b = conv.weight.detach(), conv.bias.detach() if conv.bias is not None else None
        if bn is not None:
            s, shift = _bn_affine(bn)
            w = w * s[:, None, None]
            b = shift + (s * b if b is not None else 0)
        p = conv.padding
        if isinstance(p, str):
            raise UnsupportedLayerError(f"C export: layer {name}: padding={p!r} (use explicit padding)")
        return self.conv(x, w, b, name, stride=conv.stride[0], dilation=conv.dilation[0],
                         pad=pad if pad is not None else (p[0], p[0]), groups=conv.groups, relu=relu)

    def combined_conv_bn(self, x: int, conv: nn.Module, bn: nn.BatchNorm2d, name: str) -> int:
        """A :class:`~biodecode.models.base.CombinedConv` (temporal x spatial, one ``(C, K)`` kernel) with the
        BatchNorm after it folded in: a 1-D convolution over the electrodes as input channels."""
        weight, bias = conv.combined()
        scale, shift = _bn_affine(bn)
        return self.conv(x, scale[:, None, None] * weight[:, 0].detach(),
                         shift + (scale * bias.detach() if bias is not None else 0), name)

    def eegnet_front(self, x: int, temporal: nn.Sequential, bn1: nn.BatchNorm2d, spatial: nn.Conv2d,
                     bn2: nn.BatchNorm2d, name: str) -> int:
        """Temporal conv -> BN1 -> depthwise spatial conv -> BN2, re-ordered spatial-first and folded."""
        projection, filters, bias = fold_first_block(temporal[1], bn1, spatial, bn2)
        z = self.conv(x, projection[:, :, None], None, f"{name} (spatial projection)")
        pad = temporal[0].padding[:2]
        return self.conv(z, filters[:, None, :], bias, f"{name} (temporal filters)", pad=(pad[0], pad[1]),
                         groups=filters.shape[0])

    def eegnet_blocks(self, x: int, temporal: nn.Sequential, bn1: nn.BatchNorm2d, spatial: nn.Conv2d,
                      bn2: nn.BatchNorm2d, pool1: nn.AvgPool2d, depthwise: nn.Sequential, pointwise: nn.Conv2d,
                      bn3: nn.BatchNorm2d, pool2: nn.AvgPool2d, prefix: str) -> int:
        """EEGNet's two blocks (EEGNet itself, EEG-TCNet's front end): folded first block, ELU, pool,
        separable conv, ELU, pool; layer names start with ``prefix``."""
        z = self.eegnet_front(x, temporal, bn1, spatial, bn2, f"{prefix}block 1")
        z = self.pool(self.elu(z, f"{prefix}block 1 ELU"), "avg", pool1.kernel_size[1], pool1.stride[1],
                      f"{prefix}block 1 pool")
        z = self.separable(z, depthwise, pointwise, bn3, f"{prefix}block 2 separable conv")
        return self.pool(self.elu(z, f"{prefix}block 2 ELU"), "avg", pool2.kernel_size[1], pool2.stride[1],
                         f"{prefix}block 2 pool")

    def separable(self, x: int, depthwise: nn.Sequential, pointwise: nn.Conv2d, bn: nn.BatchNorm2d, name: str) -> int:
        pad = depthwise[0].padding[:2]
        dw = depthwise[1]
        z = self.conv(x, dw.weight.detach()[:, :, 0, :], None, f"{name} (depthwise)", pad=(pad[0], pad[1]),
                      groups=dw.groups, dilation=dw.dilation[1])
        s, shift = _bn_affine(bn)
        return self.conv(z, s[:, None, None] * pointwise.weight.detach()[:, :, 0, :], shift, f"{name} (pointwise)")


def _lower_eegnet(b: _Builder, m: nn.Module) -> int:
    z = b.eegnet_blocks(0, m.temporal, m.bn1, m.spatial, m.bn2, m.pool1, m.separable_depthwise, m.separable_pointwise,
                        m.bn3, m.pool2, "")
    return b.linear(z, m.classifier, "classifier")


def _lower_eegtcnet(b: _Builder, m: nn.Module) -> int:
    e = m.eegnet
    z = b.eegnet_blocks(0, e[0], e[1], e[2], e[3], e[5], e[7], e[8], e[9], e[11], "EEGNet ")
    for i, block in enumerate(m.tcn):
        net = block.net
        h = b.elu(b.conv_bn(z, net[0], net[1], f"TCN block {i + 1} conv 1", pad=(net[0].left, 0)), f"TCN block {i + 1} ELU 1")
        h = b.elu(b.conv_bn(h, net[4], net[5], f"TCN block {i + 1} conv 2", pad=(net[4].left, 0)), f"TCN block {i + 1} ELU 2")
        skip = z if isinstance(block.skip, nn.Identity) else b.conv_bn(z, block.skip, None, f"TCN block {i + 1} skip")
        z = b.elu(b.add(h, skip, f"TCN block {i + 1} residual"), f"TCN block {i + 1} ELU out")
    return b.linear(b.last(z, "last step"), m.classifier, "classifier")


def _lower_shallow(b: _Builder, m: nn.Module) -> int:
    z = b.combined_conv_bn(0, m.conv, m.bn, "temporal x spatial conv")
    z = b.powlog(z, m.pool.kernel_size[1], m.pool.stride[1], 1e-6, "square, mean pool, log")
    return b.linear(z, m.classifier, "classifier")


def _lower_deep4(b: _Builder, m: nn.Module) -> int:
    layers = list(m.features)
    z = b.combined_conv_bn(0, layers[0], layers[1], "block 1 conv")
    i, block = 2, 1
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, nn.ELU):
            z = b.elu(z, f"block {block} ELU")
        elif isinstance(layer, nn.MaxPool2d):
            z = b.pool(z, "max", layer.kernel_size[1], layer.stride[1], f"block {block} pool")
        elif isinstance(layer, nn.Conv2d):
            block += 1
            scale, shift = _bn_affine(layers[i + 1])
            z = b.conv(z, scale[:, None, None] * layer.weight.detach()[:, :, 0, :], shift, f"block {block} conv")
            i += 1
        i += 1
    return b.linear(z, m.classifier, "classifier")


def _lower_resnet1d(b: _Builder, m: nn.Module) -> int:
    def conv_bn(x: int, seq: nn.Sequential, name: str) -> int:
        return b.conv_bn(x, seq[0], seq[1], name, relu=len(seq) > 2)

    z = x = 0
    for i, layer in enumerate(m.stem[:3]):
        z = conv_bn(z, layer, f"stem conv {i + 1}")
    mp = m.stem[3]
    z = b.pool(z, "max", mp.kernel_size, mp.stride, "stem max pool", pad=mp.padding)
    for i, block in enumerate(m.blocks):
        x = z
        h = conv_bn(conv_bn(x, block.body[0], f"block {i + 1} conv 1"), block.body[1], f"block {i + 1} conv 2")
        for layer in block.shortcut:
            if isinstance(layer, nn.AvgPool1d):
                x = b.pool(x, "avg", layer.kernel_size[0], layer.stride[0], f"block {i + 1} shortcut pool",
                           ceil=layer.ceil_mode)
            else:
                x = conv_bn(x, layer, f"block {i + 1} shortcut conv")
        z = b.add(h, x, f"block {i + 1} residual", relu=True)
    return b.linear(b.gpool(z, "mean and max over time"), m.classifier, "classifier")


#: Which model classes lower to C, by their ``info.name`` (presets such as eegnet-8,2 share their class's).
LOWERINGS: dict[str, Callable[[_Builder, nn.Module], int]] = {
    "eegnet": _lower_eegnet, "eegtcnet": _lower_eegtcnet, "shallow": _lower_shallow, "deep4": _lower_deep4,
    "resnet1d": _lower_resnet1d,
}
_KNOWN_LAYERS = (nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.ELU, nn.ReLU, nn.Dropout, nn.Linear,
                 nn.AvgPool1d, nn.AvgPool2d, nn.MaxPool1d, nn.MaxPool2d, nn.ZeroPad2d, nn.Identity)


def _first_unsupported_layer(model: nn.Module) -> str | None:
    for name, mod in model.named_modules():
        if not list(mod.children()) and not isinstance(mod, _KNOWN_LAYERS):
            return f"{name} ({type(mod).__name__})"
    return None


def lower(model: nn.Module) -> Graph:
    """The C graph of ``model`` (a biodecode network, used in eval mode; not modified).

    Raises UnsupportedLayerError naming the first layer without a C kernel for other models."""
    info = getattr(type(model), "info", None)
    name = info.name if info is not None else ""
    if name not in LOWERINGS:
        layer = _first_unsupported_layer(model)
        what = f"its layer {layer} has no C kernel" if layer else "its layer sequence has no C lowering"
        shown = getattr(model, "registry_name", "") or name or type(model).__name__
        raise UnsupportedLayerError(f"C export: model {shown!r} is not supported: {what}. "
                                    f"Supported: {', '.join(sorted(LOWERINGS))}")
    was_training = model.training
    model.eval()
    try:
        g = Graph(model.n_channels, model.n_times, model.n_classes)
        with torch.no_grad():
            LOWERINGS[name](_Builder(g), model)
    finally:
        model.train(was_training)
    return g


# --------------------------------------------------------------------------- reference executor
def _run_op(op: Op, xs: list[torch.Tensor]) -> torch.Tensor:
    p = op.params
    x = xs[0]
    if op.kind == "conv":
        b = None if p["bias"] is None else torch.from_numpy(p["bias"])
        y = F.conv1d(F.pad(x, p["pad"]), torch.from_numpy(p["weight"]), b, p["stride"], 0, p["dilation"], p["groups"])
        return F.relu(y) if p["relu"] else y
    if op.kind == "elu":
        return F.elu(x)
    if op.kind == "pool":
        if p["mode"] == "avg":
            return F.avg_pool1d(x, p["k"], p["stride"], 0, ceil_mode=p["ceil"])
        return F.max_pool1d(x, p["k"], p["stride"], p["pad"], ceil_mode=p["ceil"])
    if op.kind == "powlog":
        return torch.log(torch.clamp(F.avg_pool1d(x * x, p["k"], p["stride"]), min=p["eps"]))
    if op.kind == "add":
        y = x + xs[1]
        return F.relu(y) if p["relu"] else y
    if op.kind == "gpool":
        return torch.cat([x.mean(-1), x.amax(-1)], dim=1)[:, :, None]
    if op.kind == "last":
        return x[:, :, -1:]
    if op.kind == "linear":
        return F.linear(x.flatten(1), torch.from_numpy(p["weight"]), torch.from_numpy(p["bias"]))[:, :, None]
    raise ConfigError(f"C graph: unknown op {op.kind!r}")


def run_graph(g: Graph, X: np.ndarray, record: bool = False) -> tuple[np.ndarray, dict[int, tuple[float, float]]]:
    """Execute the graph in float32 on windows ``X (n, C, T)``: the logits ``(n, n_classes)`` and,
    with ``record``, each tensor's (min, max) over the windows (the calibration ranges)."""
    ranges: dict[int, tuple[float, float]] = {}
    values: dict[int, torch.Tensor] = {0: torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))}

    def note(t: int, v: torch.Tensor) -> None:
        if record:
            lo, hi = float(v.min()), float(v.max())
            old = ranges.get(t, (lo, hi))
            ranges[t] = (min(old[0], lo), max(old[1], hi))

    note(0, values[0])
    last_use = {t: i for i, op in enumerate(g.ops) for t in op.inputs}
    with torch.no_grad():
        for i, op in enumerate(g.ops):
            values[op.output] = _run_op(op, [values[t] for t in op.inputs])
            note(op.output, values[op.output])
            for t in op.inputs:
                if last_use[t] == i:
                    del values[t]
    return values[g.output][:, :, 0].numpy(), ranges
