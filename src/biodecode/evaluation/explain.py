"""What a trained network looks at: per-class attribution over channels and time on held-out windows.

Attribution is captum's integrated gradients (zero baseline, 32 steps) of each window's logit for its
true class, or plain saliency (``|d logit / d x|``, cheaper). For each class, the mean absolute
attribution over that class's held-out windows gives a ``(channels, time)`` map; its mean over time
is the channel importance, its mean over channels the time course.

Figures (``RUN/explain/``):

- EEG (channels with 10-05 positions): one scalp topography per class of the channel importance
  (MNE's ``plot_topomap``, standard 10-05 positions), and the time course per class;
- ECG and EMG (or EEG without positions): per class, the mean held-out window of each channel (at
  most 8) with its attribution drawn under it, and a bar chart of the channel importance.

Windows come from the run's best fold's test side (never the windows it was fitted on), an equal
share per class (at random within a class), so that rare classes are explained too.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .report import write_json, write_text_atomic

METHODS = ("integrated-gradients", "saliency")


def attributions(model: torch.nn.Module, X: np.ndarray, target: np.ndarray, method: str = "integrated-gradients",
                 batch_size: int = 32) -> np.ndarray:
    """Attribution ``(n, C, T)`` of each window's logit for class ``target[i]`` (captum)."""
    from captum.attr import IntegratedGradients, Saliency

    if method not in METHODS:
        raise ConfigError(f"explain: method must be one of {METHODS}, got {method!r}")
    model = model.eval()
    explainer = IntegratedGradients(model) if method == "integrated-gradients" else Saliency(model)
    out = []
    for i in range(0, len(X), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(X[i:i + batch_size], dtype=np.float32)).requires_grad_(True)
        t = torch.as_tensor(target[i:i + batch_size], dtype=torch.long)
        kw = {"n_steps": 32, "internal_batch_size": batch_size} if method == "integrated-gradients" else {"abs": True}
        out.append(explainer.attribute(x, target=t, **kw).detach().numpy())
    return np.concatenate(out) if out else np.zeros((0, *X.shape[1:]), np.float32)


def class_maps(attr: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean absolute attribution per class ``(n_classes, C, T)`` (NaN for a class without windows)."""
    maps = np.full((n_classes, *attr.shape[1:]), np.nan)
    for c in range(n_classes):
        if (y == c).any():
            maps[c] = np.abs(attr[y == c]).mean(axis=0)
    return maps


def _importance(maps: np.ndarray) -> np.ndarray:
    """Channel importance per class ``(n_classes, C)``: the maps' mean over time (NaN for an absent class)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # classes without held-out windows stay NaN
        return np.nanmean(maps, axis=2)


def _has_positions(ch_names: list[str]) -> bool:
    """Whether a topomap can be drawn: at least 4 channels, every one with a 10-05 position."""
    from ..montage import standard_positions, standardize_channel_name

    positions = standard_positions()
    return len(ch_names) >= 4 and all(standardize_channel_name(c) in positions for c in ch_names)


def _topomaps(path: Path, importance: np.ndarray, classes: list[str], ch_names: list[str], title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mne

    info = mne.create_info(list(ch_names), 100.0, "eeg")
    from ..montage import _montage, standardize_channel_name

    info.rename_channels({c: standardize_channel_name(c) for c in ch_names})
    info.set_montage(_montage(), on_missing="ignore")
    vmax = float(np.nanmax(importance)) or 1.0
    fig, axes = plt.subplots(1, len(classes), figsize=(3.2 * len(classes) + 0.8, 3.6), squeeze=False)
    im = None
    for ax, c, imp in zip(axes[0], classes, importance):
        if np.isnan(imp).all():
            ax.set_axis_off()
            ax.set_title(f"{c}\n(no held-out windows)", fontsize=9)
            continue
        im, _ = mne.viz.plot_topomap(imp, info, axes=ax, show=False, cmap="Reds", vlim=(0, vmax), contours=4,
                                     sensors=True)
        top = [info.ch_names[i] for i in np.argsort(imp)[::-1][:3]]
        ax.set_title(f"{c}\n(strongest: {', '.join(top)})", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), fraction=0.025, pad=0.02, label="mean |attribution|")
    fig.suptitle(title, fontsize=10, y=1.12)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _time_course(path: Path, maps: np.ndarray, classes: list[str], sfreq: float, t0: float, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = t0 + np.arange(maps.shape[2]) / sfreq
    width = max(1, int(round(0.1 * sfreq)))  # a 100 ms moving average: the trend, not the sample noise
    kernel = np.ones(width) / width
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for c, m in zip(classes, maps):
        if not np.isnan(m).all():
            curve = m.mean(axis=0)
            line = ax.plot(t, np.convolve(curve, kernel, mode="same"), label=c)[0]
            ax.plot(t, curve, color=line.get_color(), alpha=0.2, lw=0.6)
    ax.set_xlabel("time in the window (s)")
    ax.set_ylabel("mean |attribution| over channels\n(100 ms average; faint: per sample)", fontsize=8)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _signal_with_attribution(path: Path, X: np.ndarray, y: np.ndarray, maps: np.ndarray, importance: np.ndarray,
                             classes: list[str], ch_names: list[str], sfreq: float, title: str,
                             max_channels: int = 8) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chans = list(np.argsort(np.nanmean(importance, axis=0))[::-1][:max_channels])  # over the classes present
    present = [c for c in range(len(classes)) if (y == c).any()]
    t = np.arange(X.shape[2]) / sfreq
    fig, axes = plt.subplots(len(chans), len(present), figsize=(3.4 * len(present) + 1, 1.5 * len(chans) + 1),
                             squeeze=False, sharex=True)
    for j, c in enumerate(present):
        mean = X[y == c].mean(axis=0)
        for i, ch in enumerate(chans):
            ax = axes[i, j]
            ax.plot(t, mean[ch], color="black", lw=0.8)
            a = maps[c, ch] / (np.nanmax(maps[:, ch]) or 1.0)
            lo, hi = float(mean[ch].min()), float(mean[ch].max())
            ax.fill_between(t, lo, lo + a * (hi - lo + 1e-12), color="tab:red", alpha=0.35, lw=0)
            if i == 0:
                ax.set_title(f"{classes[c]} (n={int((y == c).sum())})", fontsize=9)
            if j == 0:
                ax.set_ylabel(ch_names[ch], fontsize=8)
            ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)", fontsize=8)
    fig.suptitle(f"{title}\nblack: mean held-out window; red: attribution (scaled per channel)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _channel_bars(path: Path, importance: np.ndarray, classes: list[str], ch_names: list[str], title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(ch_names))
    width = 0.8 / len(classes)
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(ch_names) * len(classes) / 2 + 2), 3.2))
    for k, (c, imp) in enumerate(zip(classes, importance)):
        ax.bar(x + k * width, np.nan_to_num(imp), width, label=c)
    ax.set_xticks(x + 0.4 - width / 2, ch_names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("mean |attribution|")
    ax.legend(fontsize=7, ncol=min(4, len(classes)))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def explain_run(run_dir: str | Path, method: str = "integrated-gradients", max_windows: int = 256,
                out_dir: str | Path | None = None) -> dict[str, Any]:
    """Attribution of a run's network on its held-out windows; writes figures, ``attribution.npz``
    (the per-class maps) and ``explain.md`` into ``RUN/explain`` (or ``out_dir``)."""
    from ..experiment import held_out_windows
    from ..runs import network_model_file
    from ..spec import WindowSpec
    from ..training import load_model

    run = Path(run_dir)
    model, meta = load_model(network_model_file(run, "explain looks inside networks (gradients)"))
    ws, test_idx, _, fold_name = held_out_windows(run, max_test=10 ** 12, max_calib=0)
    if not len(test_idx):
        raise ConfigError(f"{run}: the best fold has no held-out windows to explain")
    # every class gets its share of the windows (rare beats too), at random within the class
    rng, labels = np.random.default_rng(0), ws.y[test_idx]
    present = np.unique(labels)
    share = max(1, max_windows // len(present))
    test_idx = np.sort(np.concatenate([rng.choice(test_idx[labels == c], min(share, int((labels == c).sum())),
                                                  replace=False) for c in present]))
    X, y = np.asarray(ws.X[test_idx], np.float32), ws.y[test_idx]
    attr = attributions(model, X, y, method)
    classes, ch_names = list(ws.classes), list(ws.ch_names)
    maps = class_maps(attr, y, len(classes))
    out = Path(out_dir) if out_dir else run / "explain"
    out.mkdir(parents=True, exist_ok=True)
    spec = WindowSpec.from_model_meta(meta)
    name = getattr(model, "registry_name", "") or json.loads((run / "metrics.json").read_text())["title"].split(" on ")[0]
    title = f"{name} on {spec.dataset} ({spec.task})\n{method}, {len(X)} held-out windows of {fold_name}"
    importance = _importance(maps)  # (classes, C)
    if _has_positions(ch_names):
        figures = [_topomaps(out / "topomaps.png", importance, classes, ch_names, title),
                   _time_course(out / "time_course.png", maps, classes, ws.sfreq, spec.tmin or 0.0, title)]
    else:
        figures = [_signal_with_attribution(out / "signal_attribution.png", X, y, maps, importance, classes, ch_names,
                                            ws.sfreq, title),
                   _channel_bars(out / "channels.png", importance, classes, ch_names, title)]
    np.savez_compressed(out / "attribution.npz", maps=maps.astype(np.float32), classes=np.array(classes),
                        ch_names=np.array(ch_names), sfreq=ws.sfreq)
    lines = [f"# What the model looks at", "", f"- **run**: {run}", f"- **method**: {method} (captum), logit of the "
             f"true class, mean absolute attribution per class", f"- **windows**: {len(X)} held-out windows of "
             f"{fold_name} (the model never fitted them)", "", "| class | held-out windows | strongest channels |",
             "|---|---|---|"]
    for c, imp in enumerate(importance):
        n = int((y == c).sum())
        top = ", ".join(ch_names[i] for i in np.argsort(np.nan_to_num(imp, nan=-1))[::-1][:5]) if n else "-"
        lines.append(f"| {classes[c]} | {n} | {top} |")
    lines += ["", "Figures: " + ", ".join(f"`{p.name}`" for p in figures) + "; per-class maps: `attribution.npz`.", ""]
    write_text_atomic(out / "explain.md", "\n".join(lines))
    report = {"run": str(run), "method": method, "n_windows": int(len(X)), "fold": fold_name,
              "figures": [str(p) for p in figures], "out_dir": str(out),
              "channel_importance": {classes[c]: dict(zip(ch_names, map(float, importance[c])))
                                     for c in range(len(classes)) if (y == c).any()}}
    write_json(out / "explain.json", report)
    return report
