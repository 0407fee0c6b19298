"""Train-time augmentation on batches ``x (B, C, T)`` with one-hot/soft targets ``y (B, K)``.

Every transform draws from the generator it is given, so a run is reproducible from its seed.
Named in the config as ``[{"name": "noise", "std": 0.1}, {"name": "mixup", "alpha": 0.2}, ...]``.
Transforms in ``NEEDS_WINDOWS`` (``mirror``) also read the windows' channel and class names, which
the training loop passes to :class:`Augmenter`.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..montage import standard_names, standardize_channel_name

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


_SIDE = re.compile(r"^(?P<stem>[A-Za-z]+?)(?P<pos>\d+|[zZ])(?P<half>h?)$")
_LEFT_RIGHT = re.compile(r"left|right", re.IGNORECASE)


def mirror_channel(name: str) -> str:
    """The 10-05 electrode at the mirror position across the midline: odd numbers (left) and the
    next even number (right) swap, ``z`` (midline) stays: ``"C3" -> "C4"``, ``"FT8" -> "FT7"``,
    ``"FCC5h" -> "FCC6h"``, ``"Cz" -> "Cz"``. A name outside the 10-05 system raises
    ``ConfigError`` naming it."""
    std = standardize_channel_name(name)
    m = _SIDE.match(std)
    if m is None or std.lower() not in standard_names():
        raise ConfigError(f"mirror: channel {name!r} is not a 10-05 electrode name (e.g. C3, FC6, Cz), "
                          "so it has no mirror position across the midline")
    pos = m["pos"]
    if pos in "zZ":
        return std
    n = int(pos)
    return f"{m['stem']}{n + 1 if n % 2 else n - 1}{m['half']}"


def mirror_class(name: str) -> str:
    """The class a mirrored window shows: ``left`` and ``right`` swap inside the name
    (``"left_hand" -> "right_hand"``); a class naming neither side is its own mirror."""
    def swap(m: re.Match) -> str:
        other = "right" if m[0].lower() == "left" else "left"
        return other.upper() if m[0].isupper() else other.capitalize() if m[0][0].isupper() else other

    return _LEFT_RIGHT.sub(swap, name)


def mirror_permutations(ch_names: Sequence[str], classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(channel_perm (C,), class_perm (K,))``: channel ``i`` of a mirrored window is channel
    ``channel_perm[i]`` of the original, and its class ``j`` is the original's ``class_perm[j]``.
    Every channel's mirror must be among ``ch_names`` and every mirrored class among ``classes``."""
    index = {standardize_channel_name(c): i for i, c in enumerate(ch_names)}
    chan = []
    for c in ch_names:
        other = mirror_channel(c)
        if other not in index:
            raise ConfigError(f"mirror: channel {c!r} has its mirror {other!r} missing from the windows' channels "
                              "(the montage must be symmetric across the midline)")
        chan.append(index[other])
    cls = {c: j for j, c in enumerate(classes)}
    perm = []
    for c in classes:
        other = mirror_class(str(c))
        if other not in cls:
            raise ConfigError(f"mirror: class {c!r} mirrors to {other!r}, which is not a class of the task "
                              f"{list(classes)}")
        perm.append(cls[other])
    return np.asarray(chan, dtype=np.int64), np.asarray(perm, dtype=np.int64)


def mirror(ch_names: Sequence[str], classes: Sequence[str], p: float = 0.5) -> Transform:
    """Mirror each window across the head's midline with probability p: every electrode takes the
    signal of its mirror (C3 <-> C4, Cz stays) and a class naming a side takes the other side's
    name (left_hand <-> right_hand), so the window stays a true example of its new label. For
    lateralised tasks (left/right motor imagery) it doubles the distinct training examples; a class
    naming no side keeps its label (the label-free symmetry of Deiss et al. 2018)."""
    chan, cls = (torch.from_numpy(a) for a in mirror_permutations(ch_names, classes))

    def f(x, y, g):
        if x.shape[1] != len(chan):
            raise ConfigError(f"mirror: the batch has {x.shape[1]} channels, the channel names {len(chan)}")
        apply = torch.rand(x.shape[0], generator=g) < p
        return (torch.where(apply[:, None, None], x[:, chan], x),
                torch.where(apply[:, None], y[:, cls], y))

    return f


TRANSFORMS: dict[str, Callable[..., Transform]] = {
    "time_shift": time_shift, "noise": gaussian_noise, "scale": amplitude_scale,
    "channel_dropout": channel_dropout, "mixup": mixup, "electrode_shift": electrode_shift,
    "mirror": mirror,
}

#: Transforms built with the windows' ``ch_names`` and ``classes`` as well as their config options.
NEEDS_WINDOWS = frozenset({"mirror"})


class Augmenter:
    """Applies the configured transforms in order, drawing from one seeded generator.
    ``ch_names`` and ``classes`` (the windows' channel and class names) are needed only by the
    transforms in ``NEEDS_WINDOWS``."""

    def __init__(self, config: Sequence[dict[str, Any]] | None, seed: int = 0, *,
                 ch_names: Sequence[str] | None = None, classes: Sequence[str] | None = None):
        self.config = list(config or [])
        self.transforms: list[Transform] = []
        for i, item in enumerate(self.config):
            name = item.get("name") if isinstance(item, dict) else None
            if name not in TRANSFORMS:
                raise ConfigError(f"augment[{i}]: unknown augmentation {name!r}; known: {sorted(TRANSFORMS)}")
            options = {k: v for k, v in item.items() if k != "name"}
            if name in NEEDS_WINDOWS:
                if ch_names is None or classes is None:
                    raise ConfigError(f"augment[{i}] ({name}): needs the windows' channel and class names; "
                                      "train from a WindowSet (or mne.Epochs), not a bare array")
                if {"ch_names", "classes"} & options.keys():
                    raise ConfigError(f"augment[{i}] ({name}): ch_names and classes come from the windows, "
                                      "not from the config")
                options.update(ch_names=list(ch_names), classes=[str(c) for c in classes])
            try:
                self.transforms.append(TRANSFORMS[name](**options))
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
