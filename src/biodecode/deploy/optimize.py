"""Inference-time rewrites that keep the trained function: batch-norm folding, and for EEGNet the
exact re-ordering of its linear first block.

EEGNet's first block is temporal conv (F1 kernels k_f, per electrode) -> BN1 -> depthwise spatial
conv (weights w[f*D+d, c]) -> BN2. All three are linear, so with BN scales s and shifts b

    out[fd](t) = s2[fd] * s1[f] * (k_f * z_fd)(t) + s2[fd] * b1[f] * sum_c w[fd, c] + b2[fd],
    z_fd(t)   = sum_c w[fd, c] x_c(t)

i.e. a spatial projection to F1*D virtual channels first, then one temporal filter each. MACs drop
from ``F1*K*C*T + F1*D*C*T`` to ``F1*D*C*T + F1*D*K*T``: about 18x fewer for 64 channels, K=80.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from ..models.eegnet import EEGNet
from ..models.tcnet import EEGTCNet


@torch.no_grad()
def _fold_bn_into_linear(bn: nn.modules.batchnorm._BatchNorm, linear: nn.Linear) -> None:
    """``linear(bn(x))`` as one Linear: W' = W diag(s), b' = b + W t with s = gamma / sqrt(var + eps),
    t = beta - mean s (BatchNorm in eval mode on ``(batch, features)``)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    bias = linear.bias if linear.bias is not None else linear.weight.new_zeros(linear.out_features)
    new_bias = bias + linear.weight @ shift
    linear.weight.mul_(scale[None, :])
    linear.bias = nn.Parameter(new_bias)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy (eval mode) in which every BatchNorm that directly follows a convolution (any Conv
    subclass, e.g. max-norm or causal convs) is merged into it, and one on features directly before
    a Linear is merged into that Linear; traced with torch.fx."""
    from torch import fx
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    from ..models.base import CombinedConv

    class _Tracer(fx.Tracer):  # keep every conv (also max-norm, causal and combined ones) a single node
        def is_leaf_module(self, mod: nn.Module, qualname: str) -> bool:
            return isinstance(mod, (nn.modules.conv._ConvNd, CombinedConv)) or super().is_leaf_module(mod, qualname)

    m = copy.deepcopy(model).eval()
    if getattr(m, "spatial_first", False):  # fold the paper-order graph: its BatchNorms follow convs
        m.spatial_first = False
    gm = fx.GraphModule(m, _Tracer().trace(m))
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.modules.batchnorm._BatchNorm):
            continue
        prev = node.args[0]
        if not (isinstance(prev, fx.Node) and prev.op == "call_module" and len(prev.users) == 1
                and isinstance(modules.get(prev.target), (nn.modules.conv._ConvNd, CombinedConv))):
            nxt = next(iter(node.users)) if len(node.users) == 1 else None
            if (nxt is not None and nxt.op == "call_module" and isinstance(modules.get(nxt.target), nn.Linear)
                    and modules[node.target].weight is not None and modules[nxt.target].in_features
                    == modules[node.target].num_features):  # BN on features, then a Linear: fold forward
                _fold_bn_into_linear(modules[node.target], modules[nxt.target])
                node.replace_all_uses_with(node.args[0])
                gm.graph.erase_node(node)
            continue
        conv = modules[prev.target]
        if isinstance(conv, CombinedConv):  # BN after spatial(temporal(x)) folds into the spatial conv
            fused = CombinedConv(conv.temporal, fuse_conv_bn_eval(conv.spatial, modules[node.target]))
        else:
            fused = fuse_conv_bn_eval(conv, modules[node.target])
        parent, _, name = prev.target.rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, name, fused)
        modules[prev.target] = fused
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    fused = gm
    for attr in ("n_channels", "n_times", "n_classes", "sfreq", "registry_name", "registry_kwargs"):
        if hasattr(model, attr):
            setattr(fused, attr, getattr(model, attr))
    return fused


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def fold_first_block(temporal: nn.Conv2d, bn1: nn.BatchNorm2d, spatial: nn.Conv2d,
                     bn2: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EEGNet's first block in eval mode (temporal conv ``(F1, 1, 1, K)`` -> BN1 -> depthwise spatial
    conv ``(F1*D, 1, C, 1)`` -> BN2) as ``projection (F1*D, C)``, one temporal filter per map
    ``(F1*D, K)`` and a bias ``(F1*D,)``: ``out = temporal_m * (projection_m . x) + bias_m``."""
    F1 = temporal.out_channels
    k = temporal.weight.detach()[:, 0, 0, :]  # (F1, K)
    w = spatial.weight.detach()[:, 0, :, 0]  # (F1*D, C)
    s1, b1 = _bn_affine(bn1)
    s2, b2 = _bn_affine(bn2)
    f_of = torch.arange(w.shape[0]) // (w.shape[0] // F1)  # filter f feeding output map f*D + d
    filters = (s2 * s1[f_of])[:, None] * k[f_of]
    bias = s2 * b1[f_of] * w.sum(dim=1) + b2
    return w.clone(), filters.detach().clone(), bias.detach().clone()


class FoldedEEGNetBlocks(nn.Module):
    """EEGNet's two blocks for inference (EEGNet itself and EEG-TCNet's front end): the first block
    re-ordered (spatial projection first, :func:`fold_first_block`), the separable conv's BN folded
    into its pointwise conv, dropout gone. ``(B, C, T)`` -> ``(B, F2, T // pool1 // pool2)``."""

    def __init__(self, temporal: nn.Sequential, bn1: nn.BatchNorm2d, spatial: nn.Conv2d, bn2: nn.BatchNorm2d,
                 pool1: nn.AvgPool2d, depthwise: nn.Sequential, pointwise: nn.Conv2d, bn3: nn.BatchNorm2d,
                 pool2: nn.AvgPool2d):
        super().__init__()
        projection, filters, bias = fold_first_block(temporal[1], bn1, spatial, bn2)
        self.pad = temporal[0].padding[:2]  # (left, right)
        # (F1*D, C, 1): a 1x1 convolution, so that int8 quantisers scale it per output map
        self.projection = nn.Parameter(projection[:, :, None], requires_grad=False)
        self.temporal = nn.Parameter(filters[:, None, :], requires_grad=False)  # (F1*D, 1, K)
        self.temporal_bias = nn.Parameter(bias, requires_grad=False)
        self.pool1, self.pool2 = pool1.kernel_size[1], pool2.kernel_size[1]
        s3, b3 = _bn_affine(bn3)
        self.sep_pad = depthwise[0].padding[:2]
        self.sep_depthwise = nn.Parameter(depthwise[1].weight.detach()[:, :, 0, :].clone(), requires_grad=False)
        pw = pointwise.weight.detach()[:, :, 0, 0]  # (F2, F1*D)
        self.sep_pointwise = nn.Parameter((s3[:, None] * pw)[:, :, None].clone(), requires_grad=False)
        self.sep_bias = nn.Parameter(b3.detach().clone(), requires_grad=False)
        self.groups = projection.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.conv1d(x, self.projection)  # (B, F1*D, T)
        z = F.conv1d(F.pad(z, self.pad), self.temporal, self.temporal_bias, groups=self.groups)
        z = F.avg_pool1d(F.elu(z), self.pool1)
        z = F.conv1d(F.pad(z, self.sep_pad), self.sep_depthwise, groups=self.groups)
        z = F.conv1d(z, self.sep_pointwise, self.sep_bias)
        return F.avg_pool1d(F.elu(z), self.pool2)


class FastEEGNet(nn.Module):
    """EEGNet for inference with the first block re-ordered (spatial projection first) and every
    batch norm folded; equal to the trained EEGNet in eval mode up to float rounding."""

    def __init__(self, net: EEGNet):
        super().__init__()
        net = net.eval()
        self.n_channels, self.n_times, self.n_classes = net.n_channels, net.n_times, net.n_classes
        self.blocks = FoldedEEGNetBlocks(net.temporal, net.bn1, net.spatial, net.bn2, net.pool1,
                                         net.separable_depthwise, net.separable_pointwise, net.bn3, net.pool2)
        self.classifier = copy.deepcopy(net.classifier).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.blocks(x).flatten(1), self.classifier.weight, self.classifier.bias)


class FastEEGTCNet(nn.Module):
    """EEG-TCNet for inference: its EEGNet front end as in :class:`FastEEGNet`, the TCN with its
    batch norms folded; equal to the trained EEG-TCNet in eval mode up to float rounding."""

    def __init__(self, net: EEGTCNet):
        super().__init__()
        net = net.eval()
        e = net.eegnet
        self.n_channels, self.n_times, self.n_classes = net.n_channels, net.n_times, net.n_classes
        self.blocks = FoldedEEGNetBlocks(e[0], e[1], e[2], e[3], e[5], e[7], e[8], e[9], e[11])
        self.tcn = fold_batchnorm(net.tcn)
        self.classifier = copy.deepcopy(net.classifier).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.tcn(self.blocks(x))[:, :, -1], self.classifier.weight, self.classifier.bias)


def optimize_for_inference(model: nn.Module) -> nn.Module:
    """The fastest exact form biodecode knows: FastEEGNet / FastEEGTCNet (first block spatial-first),
    BN folding otherwise."""
    if isinstance(model, EEGNet):
        return FastEEGNet(model)
    if isinstance(model, EEGTCNet):
        return FastEEGTCNet(model)
    try:
        return fold_batchnorm(model)
    except Exception:  # models fx cannot trace (data-dependent control flow) stay as they are
        return copy.deepcopy(model).eval()
