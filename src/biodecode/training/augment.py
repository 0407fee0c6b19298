"""Train-time augmentation on batches ``x (B, C, T)`` with one-hot/soft targets ``y (B, K)``.

Every transform draws from the generator it is given, so a run is reproducible from its seed.
Named in the config as ``[{"name": "noise", "std": 0.1}, {"name": "mixup", "alpha": 0.2}, ...]``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import ConfigError

Transform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def time_shift(max_shift: float = 0.1, p: float = 0.5) -> Transform:
    """Shift each window by up to ``max_shift`` of its length (zero-filled), with probability p."""

    def f(x, y, g):
        b, _, t = x.shape
        limit = int(max_shift * t)
        if limit < 1:
            return x, y
        shifts = torch.randint(-limit, limit + 1, (b,), generator=g)
        apply = torch.rand(b, generator=g) < p
        idx = torch.arange(t)[None, :] - shifts[:, None]  # (B, T) source index
        valid = (idx >= 0) & (idx < t)
        out = torch.gather(x, 2, idx.clamp(0, t - 1)[:, None, :].expand_as(x)) * valid[:, None, :]
        return torch.where(apply[:, None, None], out, x), y

    return f


def gaussian_noise(std: float = 0.1, p: float = 0.5) -> Transform:
    """Add noise with ``std`` times each window's own standard deviation."""

    def f(x, y, g):
        scale = x.std(dim=(1, 2), keepdim=True) * std
        apply = (torch.rand(x.shape[0], generator=g) < p)[:, None, None]
        return x + apply * scale * torch.randn(x.shape, generator=g), y

    return f


def amplitude_scale(low: float = 0.8, high: float = 1.2, p: float = 0.5) -> Transform:
    """Multiply each window by a factor drawn uniformly from [low, high]."""

    def f(x, y, g):
        factor = low + (high - low) * torch.rand(x.shape[0], 1, 1, generator=g)
        apply = (torch.rand(x.shape[0], generator=g) < p)[:, None, None]
        return torch.where(apply, x * factor, x), y

    return f


def channel_dropout(rate: float = 0.1, p: float = 0.5) -> Transform:
    """Zero each channel with probability ``rate`` (in windows chosen with probability p)."""

    def f(x, y, g):
        keep = (torch.rand(x.shape[0], x.shape[1], 1, generator=g) >= rate).to(x.dtype)
        apply = (torch.rand(x.shape[0], generator=g) < p)[:, None, None]
        return torch.where(apply, x * keep, x), y

    return f


def mixup(alpha: float = 0.2) -> Transform:
    """Mixup (Zhang et al. 2018): convex combinations of window pairs and of their targets."""

    def f(x, y, g):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
        lam = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, x.shape[0])) if alpha > 0 \
            else torch.ones(x.shape[0])
        perm = torch.randperm(x.shape[0], generator=g)
        lx = lam.to(x.dtype)[:, None, None]
        ly = lam.to(y.dtype)[:, None]
        return lx * x + (1 - lx) * x[perm], ly * y + (1 - ly) * y[perm]

    return f


def electrode_shift(max_shift: float = 0.5, p: float = 0.5) -> Transform:
    """Rotate a ring of electrodes (an armband: channel ``C-1`` next to channel 0) by a shift drawn
    uniformly from [-max_shift, max_shift] electrodes, fractional shifts by linear interpolation
    between neighbours: the displacement of an armband put on anew (cf. Kanoga et al. 2020). Only
    for channels laid out in order around the ring."""

    if max_shift < 0:
        raise ConfigError(f"electrode_shift: max_shift must be >= 0 electrodes, got {max_shift}")

    def f(x, y, g):
        b, c, _ = x.shape
        shift = (torch.rand(b, generator=g) * 2 - 1) * max_shift
        shift = torch.where(torch.rand(b, generator=g) < p, shift, torch.zeros_like(shift))
        base = torch.floor(shift)
        frac = (shift - base).to(x.dtype)[:, None, None]
        idx = (torch.arange(c)[None, :] + base.long()[:, None]) % c  # (B, C): source electrode per output
        lo = torch.gather(x, 1, idx[:, :, None].expand_as(x))
        hi = torch.gather(x, 1, ((idx + 1) % c)[:, :, None].expand_as(x))
        return (1 - frac) * lo + frac * hi, y

    return f


TRANSFORMS: dict[str, Callable[..., Transform]] = {
    "time_shift": time_shift, "noise": gaussian_noise, "scale": amplitude_scale,
    "channel_dropout": channel_dropout, "mixup": mixup, "electrode_shift": electrode_shift,
}


class Augmenter:
    """Applies the configured transforms in order, drawing from one seeded generator."""

    def __init__(self, config: Sequence[dict[str, Any]] | None, seed: int = 0):
        self.config = list(config or [])
        self.transforms: list[Transform] = []
        for i, item in enumerate(self.config):
            name = item.get("name") if isinstance(item, dict) else None
            if name not in TRANSFORMS:
                raise ConfigError(f"augment[{i}]: unknown augmentation {name!r}; known: {sorted(TRANSFORMS)}")
            try:
                self.transforms.append(TRANSFORMS[name](**{k: v for k, v in item.items() if k != "name"}))
            except TypeError as exc:
                raise ConfigError(f"augment[{i}] ({name}): {exc}") from None
        self.generator = torch.Generator().manual_seed(seed)

    def __bool__(self) -> bool:
        return bool(self.transforms)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.device.type != "cpu":  # draw on the CPU generator, apply where the batch lives
            xc, yc = self(x.cpu(), y.cpu())
            return xc.to(x.device), yc.to(y.device)
        for t in self.transforms:
            x, y = t(x, y, self.generator)
        return x, y
