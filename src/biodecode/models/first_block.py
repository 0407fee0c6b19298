"""EEGNet's first block (temporal conv -> BatchNorm -> depthwise spatial conv) run spatial-first,
exactly, in training mode too.

The block is linear up to the BatchNorm, so the depthwise spatial projection (C electrodes -> F1*D
maps) can run before the temporal filters, at a fraction of the cost (one temporal filter per map
instead of one per electrode), provided BatchNorm still normalises each filter's output with the
batch statistics of the *standard-order* temporal-conv output ``z_f = w_f * x`` over
(batch, electrode, time). Those are had without computing ``z``:

- mean: ``mu_f = w_f . m`` with ``m_k`` the mean of the zero-padded input shifted by ``k`` (a
  difference of cumulative sums);
- second moment: ``E[z_f^2] = w_f^T R w_f`` with ``R_kl`` the mean of ``xpad[t+k] xpad[t+l]``: the
  input's autocorrelation at lag ``|l-k|`` (one FFT per series) minus the products that the
  'same' padding cuts off at the two ends (at most K samples each, computed directly).

These moments are taken in float64, outside autocast. The spatial-first block is then
``a_f * (w_f * (W_m x)) + (beta_f - a_f mu_f) sum_c W_mc`` for map ``m`` of filter ``f``, with
``a_f = gamma_f / sqrt(var_f + eps)``; BatchNorm's running statistics are updated as
``nn.BatchNorm2d`` would (unbiased variance, its momentum). Autograd differentiates all of it, so
every parameter's gradient is that of the standard order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _edge_products(xs: torch.Tensor, K: int) -> torch.Tensor:
    """``P[s, tau] = sum_n xs[n, s] xs[n, s + tau]`` for ``s, tau < K`` (zero past the end), from
    one ``(K, n) @ (n, 2K)`` product."""
    head = xs[:, : 2 * K]
    if head.shape[1] < 2 * K:
        head = F.pad(head, (0, 2 * K - head.shape[1]))
    gram = head[:, :K].T @ head  # (K, 2K)
    s = torch.arange(K, device=xs.device)
    return gram[s[:, None], s[:, None] + s[None, :]]


def _fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (sizes the FFT is fast at)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _window_sums(cum: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Sums over ``[lo, hi)`` from a cumulative sum with a leading 0 (0 where the range is empty)."""
    T = cum.shape[0] - 1
    lo, hi = lo.clamp(0, T), hi.clamp(0, T)
    return (cum[hi] - cum[lo]) * (hi > lo)


def temporal_conv_moments(x: torch.Tensor, K: int, left: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Moments of a 'same'-padded temporal convolution's input, float64.

    ``x``: ``(B, C, T)``; the convolution has ``K`` taps and ``left`` zeros of padding on the left
    (``K - 1 - left`` on the right). Returns ``m (K,)`` and ``R (K, K)`` such that for any filter
    ``w``, the mean over (batch, electrode, time) of ``z = conv(xpad, w)`` is ``w . m`` and the mean
    of ``z**2`` is ``w^T R w``. The heavy sums (autocorrelation, edge products) run in the input's
    precision on each series minus its mean; the means' contributions are added back exactly in
    float64, so large offsets cost no accuracy.
    """
    B, C, T = x.shape
    N = B * C * T
    xs = x.reshape(B * C, T)
    dev = xs.device
    mu = xs.mean(1, keepdim=True)  # per-series offset c_n
    xc = xs - mu  # centred series x'
    mu64 = mu.to(torch.float64)
    k = torch.arange(K, device=dev)
    d = k - left  # tap k reads sample t + d
    # mean: sum of x over s in [d, T + d) ∩ [0, T) for each tap
    g = xs.sum(0, dtype=torch.float64)
    m = _window_sums(F.pad(torch.cumsum(g, 0), (1, 0)), d, T + d) / N
    # second moments of the centred series: autocorrelation by lag (one FFT for all) ...
    nfft = _fft_size(T + K - 1)
    spec = torch.fft.rfft(xc, n=nfft)
    acf = torch.fft.irfft((spec.real.square() + spec.imag.square()).sum(0), n=nfft)[:K].to(torch.float64)
    # ... minus the products the padding cuts off at the start (s < d) and, mirrored, at the end
    head = F.pad(torch.cumsum(_edge_products(xc, K).to(torch.float64), 0), (0, 0, 1, 0))  # sums over s < n
    end = xc[:, max(0, T - 2 * K):].flip(1)  # only the last 2K samples are read: flip just those
    tail = F.pad(torch.cumsum(_edge_products(end, K).to(torch.float64), 0), (0, 0, 1, 0))
    kk = torch.minimum(k[:, None], k[None, :])
    ll = torch.maximum(k[:, None], k[None, :])
    tau = ll - kk
    n_head = (kk - left).clamp(min=0, max=K)
    n_tail = (left - ll).clamp(min=0, max=K)
    R = acf[tau] - head[n_head, tau] - tail[n_tail, tau]
    # the offsets: x = x' + c_n on valid samples. Cross terms need sums of gc = sum_n c_n x'_n over
    # the samples where tap k (or l) reads while the other tap's sample is valid, and c^2 terms the
    # count of output samples where both taps read inside the recording.
    gc = mu64[:, 0] @ xc.to(torch.float64)
    cgc = F.pad(torch.cumsum(gc, 0), (1, 0))
    dk, dl = d[:, None], d[None, :]
    t_lo = torch.maximum(torch.maximum(-dk, -dl), torch.zeros_like(dk - dl))  # first t where both are valid
    t_hi = torch.minimum(torch.minimum(T - dk, T - dl), torch.full_like(dk - dl, T))
    cross = _window_sums(cgc, t_lo + dk, t_hi + dk) + _window_sums(cgc, t_lo + dl, t_hi + dl)
    both = (t_hi.clamp(0, T) - t_lo.clamp(0, T)).clamp_min(0).to(torch.float64)
    R = (R + cross + mu64.square().sum() * both) / N
    return m, R


def spatial_first_block(x: torch.Tensor, temporal: nn.Conv2d, left: int, bn: nn.BatchNorm2d,
                        spatial: nn.Conv2d) -> torch.Tensor:
    """``spatial(bn(temporal(pad(x))))`` for ``x (B, C, T)``, computed spatial-first; returns
    ``(B, F1 * D, 1, T)`` like the standard order. ``temporal``: ``(F1, 1, 1, K)`` bias-free conv;
    ``spatial``: depthwise ``(F1 * D, 1, C, 1)`` bias-free conv (its max-norm applied as in its
    own forward); ``bn``: the BatchNorm between them, in training or eval mode."""
    B, C, T = x.shape
    wt = temporal.weight.reshape(temporal.out_channels, -1)  # (F1, K)
    F1, K = wt.shape
    if hasattr(spatial, "_constrain_if_training"):
        spatial._constrain_if_training()  # the max-norm, exactly when its own forward would apply it
    ws = spatial.weight.reshape(spatial.out_channels, C)  # (F1 * D, C)
    D = spatial.out_channels // F1
    use_batch = bn.training or not bn.track_running_stats
    if use_batch:
        with torch.autocast(device_type=x.device.type, enabled=False):
            grad = torch.is_grad_enabled() and x.requires_grad
            with torch.set_grad_enabled(grad):
                m, R = temporal_conv_moments(x.detach() if not grad else x, K, left)
            w64 = wt.to(torch.float64)
            mean = w64 @ m
            var = ((w64 @ R) * w64).sum(1) - mean.square()
            var = var.clamp_min(0)
        if bn.training and bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                factor = (1.0 / float(bn.num_batches_tracked)) if bn.momentum is None else bn.momentum
                n = B * C * T
                bn.running_mean.mul_(1 - factor).add_(mean.detach().to(bn.running_mean.dtype), alpha=factor)
                bn.running_var.mul_(1 - factor).add_((var.detach() * n / max(n - 1, 1)).to(bn.running_var.dtype),
                                                     alpha=factor)
        mean, var = mean.to(x.dtype), var.to(x.dtype)
    else:
        mean, var = bn.running_mean, bn.running_var
    scale = torch.rsqrt(var + bn.eps)
    if bn.affine:
        scale = bn.weight * scale
        shift = bn.bias - scale * mean
    else:
        shift = -scale * mean
    u = torch.matmul(ws, x)  # (B, F1 * D, T)
    taps = wt.repeat_interleave(D, 0).unsqueeze(1)  # (F1 * D, 1, K): filter f for each of its D maps
    v = F.conv1d(F.pad(u, (left, K - 1 - left)), taps.to(u.dtype), groups=F1 * D)
    scale_m = scale.repeat_interleave(D)
    offset_m = shift.repeat_interleave(D) * ws.sum(1)
    out = v * scale_m.to(v.dtype)[:, None] + offset_m.to(v.dtype)[:, None]
    return out.unsqueeze(2)


def first_block(x: torch.Tensor, temporal: nn.Sequential, bn: nn.BatchNorm2d, spatial: nn.Conv2d,
                spatial_first: bool) -> torch.Tensor:
    """The EEGNet-style first block of EEGNet, EEG-TCNet and ATCNet on ``x (B, C, T)``: ``temporal`` (a
    same-padding ``Sequential(ZeroPad2d, Conv2d)``) -> ``bn`` -> depthwise ``spatial`` conv, as
    ``(B, F1 * D, 1, T)``. Spatial-first (:func:`spatial_first_block`) where asked and where it pays
    (more electrodes than the depth multiplier D), else in the paper's order."""
    n_channels = spatial.kernel_size[0]
    depth = spatial.out_channels // temporal[1].out_channels
    if spatial_first and n_channels > depth:  # the same function, ~C/D times fewer operations
        return spatial_first_block(x, temporal[1], temporal[0].padding[0], bn, spatial)
    return spatial(bn(temporal(x.unsqueeze(1))))
