"""Run reports people can read: JSON, a Markdown table, a confusion matrix and learning curves."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic import atomic_path
from .metrics import confusion_counts


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _epoch(best: Any) -> str:
    """Epochs counted from 1, as in the learning curves (Lightning counts from 0)."""
    return str(best + 1) if isinstance(best, int) else "-"


def per_class_table(cm: np.ndarray, classes: Sequence[str]) -> list[dict[str, Any]]:
    """Per-class sensitivity (recall), PPV (precision), specificity and support from a confusion matrix."""
    tp, fn, fp, tn = confusion_counts(cm)
    rate = lambda a, b: float(a / (a + b)) if a + b else None  # noqa: E731
    return [{"class": c, "support": int(tp[i] + fn[i]), "sensitivity": rate(tp[i], fn[i]),
             "ppv": rate(tp[i], fp[i]), "specificity": rate(tn[i], fp[i])} for i, c in enumerate(classes)]


def name_list(names: Sequence[str], sep: str = " ", show: int = 12) -> str:
    """Names for a table cell or a line of output: all of them up to ``show``, else the first ones and
    the count; ``-`` for none."""
    if not names:
        return "-"
    head = sep.join(map(str, names[:show]))
    return head if len(names) <= show else f"{head}{sep}... ({len(names)} in all)"


def markdown_report(title: str, header: dict[str, Any], folds: Sequence[dict[str, Any]], summary: dict[str, Any],
                    classes: Sequence[str], synthetic: bool, curves: bool = True) -> str:
    lines = [f"# {title}", ""]
    if synthetic:
        lines += ["> **SYNTHETIC DATA.** These numbers come from biodecode's synthetic generator, not from real "
                  "recordings; they show the pipeline works, not how well a model decodes real signals.", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()] + [""]
    lines += ["## Per fold (test side)", "",
              "| fold | n test | accuracy | balanced acc. | kappa | macro F1 | ROC AUC | best epoch |",
              "|---|---|---|---|---|---|---|---|"]
    for f in folds:
        m = f["metrics"]
        lines.append(f"| {f['name']} | {m['n']} | {_fmt(m['accuracy'])} | {_fmt(m['balanced_accuracy'])} | "
                     f"{_fmt(m['kappa'])} | {_fmt(m['f1_macro'])} | {_fmt(m.get('roc_auc'))} | {_epoch(f.get('best_epoch'))} |")
    cells = [f"{summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}" if k in summary else "-"
             for k in ("accuracy", "balanced_accuracy", "kappa", "f1_macro", "roc_auc")]
    lines.append(f"| **mean ± sd** | | {' | '.join(cells)} | |")
    if folds and "per_record" in folds[0]["metrics"]:
        challenge = "challenge_f1" in folds[0]["metrics"]["per_record"]
        lines += ["", "## Per recording (one decision per record: its windows' probabilities averaged)", "",
                  "| fold | records | accuracy | balanced acc. | macro F1 |" + (" challenge F1 (mean of N, A, O) |" if challenge else ""),
                  "|---|---|---|---|---|" + ("---|" if challenge else "")]
        for f in folds:
            r = f["metrics"]["per_record"]
            lines.append(f"| {f['name']} | {r['n_records']} | {_fmt(r['accuracy'])} | {_fmt(r['balanced_accuracy'])} | "
                         f"{_fmt(r['f1_macro'])} |" + (f" {_fmt(r['challenge_f1'])} |" if challenge else ""))
        if "per_record" in summary:
            ps = summary["per_record"]
            cells = [f"{ps[k]['mean']:.3f} ± {ps[k]['std']:.3f}" if k in ps else "-" for k in
                     ("accuracy", "balanced_accuracy", "f1_macro") + (("challenge_f1",) if challenge else ())]
            lines.append(f"| **mean ± sd** | | {' | '.join(cells)} |")
        if "per_record_pooled" in summary:
            pr = summary["per_record_pooled"]
            lines.append(f"| **all folds pooled** | {pr['n_records']} | " + " | ".join(
                _fmt(pr.get(k)) for k in ("accuracy", "balanced_accuracy", "f1_macro")
                + (("challenge_f1",) if challenge else ())) + " |")
    if folds and "train_groups" in folds[0]:
        lines += ["", "## Who trained, validated and tested", "",
                  f"| fold | grouped by | trained on | validated on | tested on |", "|---|---|---|---|---|"]
        for f in folds[:30]:
            lines.append(f"| {f['name']} | {f['leakage_key']} | {name_list(f['train_groups'])} | {name_list(f['val_groups'])} | "
                         f"{name_list(f['test_groups'])} |")
        if len(folds) > 30:
            lines.append(f"| ... {len(folds) - 30} more folds in `folds.json` | | | | |")
    cm = np.sum([np.asarray(f["metrics"]["confusion_matrix"]) for f in folds], axis=0)
    lines += ["", "## Per class (all test folds pooled)", "", "| class | support | sensitivity | PPV | specificity |",
              "|---|---|---|---|---|"]
    for r in per_class_table(cm, classes):
        lines.append(f"| {r['class']} | {r['support']} | {_fmt(r['sensitivity'])} | {_fmt(r['ppv'])} | {_fmt(r['specificity'])} |")
    lines += ["", "Confusion matrix: `confusion_matrix.png`" + ("; learning curves: `learning_curves.png`." if curves else "."), ""]
    return "\n".join(lines)


def plot_confusion(path: str | os.PathLike, cm: np.ndarray, classes: Sequence[str], title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2.5, 1.2 * len(classes) + 2))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{cm[i, j]}\n{norm[i, j]:.0%}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return _save(fig, path)


def plot_learning_curves(path: str | os.PathLike, histories: Sequence[Sequence[dict[str, float]]], names: Sequence[str],
                         title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for hist, name in zip(histories, names):
        ep = [h["epoch"] + 1 for h in hist]  # Lightning counts from 0; epoch 1 is the first
        line = axes[0].plot(ep, [h.get("train_loss", np.nan) for h in hist], label=f"{name} train")[0]
        axes[0].plot(ep, [h.get("val_loss", np.nan) for h in hist], "--", color=line.get_color())
        axes[1].plot(ep, [h.get("val_acc", np.nan) for h in hist], color=line.get_color(), label=name)
    axes[0].set_title("loss (solid: train, dashed: validation)", fontsize=9)
    axes[1].set_title("validation accuracy", fontsize=9)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(names) <= 10:
        axes[1].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | os.PathLike) -> Path:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return Path(path)
