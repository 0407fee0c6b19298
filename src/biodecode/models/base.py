"""Shared base for every model: the ``(batch, n_channels, n_times) -> (batch, n_classes)`` contract,
input checks with clear messages, and max-norm weight constraints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError, DataFormatError


@dataclass(frozen=True)
class ModelInfo:
    """What a model is: family, paper, and which export paths work (with reasons where not)."""

    name: str
    family: str
    paper: str
    signals: tuple[str, ...] = ("eeg", "ecg", "emg")
    deviations: str = ""
    #: Export paths checked by the contract test (tests/test_models.py) for every registered model.
    export_notes: dict[str, str] = field(default_factory=lambda: {"torch.export": "ok", "onnx": "ok", "c99": "no"})


#: The export notes of a model that also lowers to C99 (``biodecode export --format c``).
WITH_C99 = {"torch.export": "ok", "onnx": "ok", "c99": "ok (int8, float32)"}


def _checking() -> bool:
    """False while tracing/exporting, where Python-side checks would be baked in or warn."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    from torch.fx import _symbolic_trace as fx_trace

    tracing = getattr(fx_trace, "is_fx_symbolic_tracing", None) or fx_trace.is_fx_tracing
    if tracing():
        return False
    compiler = getattr(torch, "compiler", None)
    if compiler is not None:
        for fn in ("is_compiling", "is_exporting"):
            if hasattr(compiler, fn) and getattr(compiler, fn)():
                return False
    return True


class BiosignalModel(nn.Module):
    """Base class. Subclasses set ``info`` and build layers from the signal parameters.

    n_channels: input channels (electrodes/leads); n_times: samples per window; n_classes: outputs;
    sfreq: sampling rate in Hz, used by models whose kernel lengths are defined in seconds.
    """

    info: ClassVar[ModelInfo]

    def __init__(self, n_channels: int, n_times: int, n_classes: int, sfreq: float | None = None):
        super().__init__()
        for name, value in (("n_channels", n_channels), ("n_times", n_times), ("n_classes", n_classes)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{type(self).__name__}: {name} must be a positive integer, got {value!r}")
        if n_classes < 2:
            raise ConfigError(f"{type(self).__name__}: n_classes must be at least 2, got {n_classes}")
        if sfreq is not None and sfreq <= 0:
            raise ConfigError(f"{type(self).__name__}: sfreq must be positive, got {sfreq}")
        self.n_channels, self.n_times, self.n_classes = n_channels, n_times, n_classes
        self.sfreq = float(sfreq) if sfreq is not None else None

    def check_input(self, x: torch.Tensor) -> None:
        if not _checking():
            return
        if x.dim() != 3:
            raise DataFormatError(f"{type(self).__name__}: expected input (batch, n_channels, n_times), got shape {tuple(x.shape)}")
        if x.shape[1] != self.n_channels:
            raise DataFormatError(f"{type(self).__name__}: built for {self.n_channels} channels, got input with {x.shape[1]}")

    def apply_constraints(self) -> None:
        """Project weights onto their constraints (max-norm); the trainer calls it after each step."""
        for m in self.modules():
            if m is not self and isinstance(m, MaxNormMixin):
                m.project()

    def hparams(self) -> dict[str, Any]:
        return {"n_channels": self.n_channels, "n_times": self.n_times, "n_classes": self.n_classes, "sfreq": self.sfreq}


@torch.no_grad()
def shift_logits(model: nn.Module, offsets: torch.Tensor) -> None:
    """Add ``offsets (n_classes,)`` to every output of ``model`` for good, through the bias of its
    output layers: the ``nn.Linear`` layers with ``n_classes`` outputs whose mean or sole output
    the logits are (one head, or ATCNet's averaged heads), else the last such layer.

    Checked on a probe input in eval mode: if the logits did not move by exactly ``offsets``, the
    model is restored and a ConfigError names it.
    """
    n_classes = len(offsets)
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == n_classes and m.bias is not None]
    name = type(model).__name__
    if not heads or not hasattr(model, "n_channels") or not hasattr(model, "n_times"):
        raise ConfigError(f"{name}: logit offsets need an output layer (nn.Linear with {n_classes} outputs and a bias) "
                          "and the model's n_channels / n_times; this model has none")
    param = next(model.parameters())
    probe = torch.randn(2, model.n_channels, model.n_times, generator=torch.Generator().manual_seed(0)).to(param)
    was_training = model.training
    model.eval()
    try:
        before = model(probe).float()
        offsets = offsets.to(param)
        saved = [m.bias.detach().clone() for m in heads]
        for chosen in (heads, heads[-1:]):
            for m in chosen:
                m.bias += offsets
            if torch.allclose(model(probe).float() - before, offsets.float()[None].expand_as(before), atol=1e-4, rtol=1e-4):
                return
            for m, b in zip(heads, saved):
                m.bias.copy_(b)
        raise ConfigError(f"{name}: its logits are not an output layer's (or the mean of several), so logit offsets "
                          "cannot be folded into it")
    finally:
        model.train(was_training)


class MaxNormMixin:
    """Keeps each output unit's weight vector at L2 norm <= ``max_norm`` (Keras ``max_norm``)."""

    max_norm: float

    @torch.no_grad()
    def project(self) -> None:
        w = self.weight  # type: ignore[attr-defined]
        w.copy_(torch.renorm(w, p=2, dim=0, maxnorm=self.max_norm))

    def _constrain_if_training(self) -> None:
        if self.training and _checking():  # type: ignore[attr-defined]
            self.project()


class MaxNormLinear(MaxNormMixin, nn.Linear):
    def __init__(self, in_features: int, out_features: int, max_norm: float, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.max_norm = max_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._constrain_if_training()
        return super().forward(x)


class MaxNormConv2d(MaxNormMixin, nn.Conv2d):
    def __init__(self, *args: Any, max_norm: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_norm = max_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._constrain_if_training()
        return super().forward(x)


def same_pad_conv(c_in: int, c_out: int, kernel: int, groups: int = 1, dilation: int = 1) -> nn.Sequential:
    """A bias-free ``(1, kernel)`` Conv2d (optionally dilated) with Keras 'same' padding (the extra
    zero goes right).

    Explicit padding instead of ``padding="same"`` avoids an input copy for even kernels and
    exports cleanly to ONNX.
    """
    total = dilation * (kernel - 1)
    return nn.Sequential(nn.ZeroPad2d((total // 2, total - total // 2, 0, 0)),
                         nn.Conv2d(c_in, c_out, (1, kernel), groups=groups, dilation=(1, dilation), bias=False))


class CombinedConv(nn.Module):
    """A temporal conv ``(1, K)`` followed by a spatial conv ``(C, 1)`` with nothing in between, run as
    one ``(C, K)`` convolution whose kernel is the product of the two (computed each call, so both keep
    their own parameters and gradients). Mathematically identical to the two convs in sequence, without
    the large ``(batch, F, C, T)`` intermediate; braindecode's CombinedConv does the same."""

    def __init__(self, temporal: nn.Conv2d, spatial: nn.Conv2d):
        super().__init__()
        if temporal.in_channels != 1 or temporal.kernel_size[0] != 1 or spatial.kernel_size[1] != 1 or spatial.groups != 1:
            raise ConfigError("CombinedConv: needs a (1, K) temporal conv on one input map and a dense (C, 1) spatial conv")
        self.temporal, self.spatial = temporal, spatial

    def combined(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The one convolution's weight ``(F_s, 1, C, K)`` and bias ``(F_s,)`` (None without biases)."""
        t = self.temporal.weight[:, 0, 0, :]  # (F_t, K)
        s = self.spatial.weight[:, :, :, 0]  # (F_s, F_t, C)
        weight = torch.einsum("oic,ik->ock", s, t).unsqueeze(1)  # (F_s, 1, C, K)
        bias = self.spatial.bias
        if self.temporal.bias is not None:
            tb = torch.einsum("oic,i->o", s, self.temporal.bias)
            bias = tb if bias is None else bias + tb
        return weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, *self.combined())


def out_len(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a conv/pool along one axis (floor mode)."""
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def require_length(model: str, stage: str, n: int) -> int:
    if n < 1:
        raise ConfigError(f"{model}: the window is too short: nothing is left after {stage}; use a longer n_times")
    return n
