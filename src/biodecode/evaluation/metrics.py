"""The metrics the fields report, from scikit-learn, and their mean and spread across folds."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

SCALARS = ("accuracy", "balanced_accuracy", "kappa", "f1_macro", "roc_auc")


def confusion_counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class true positives, false negatives, false positives and true negatives from a
    confusion matrix (rows true, columns predicted)."""
    cm = np.asarray(cm)
    tp = np.diag(cm)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    return tp, fn, fp, cm.sum() - tp - fn - fp


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (a fold may lack a rare class that the
    model still predicts; scikit-learn warns about that, which is expected here)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(skm.balanced_accuracy_score(y_true, y_pred))


def compute_metrics(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """accuracy, balanced accuracy, Cohen's kappa, macro F1, ROC AUC (two classes), and per class:
    precision (= positive predictive value), recall (= sensitivity), specificity, F1, support; plus
    the confusion matrix (rows true, columns predicted)."""
    y_true = np.asarray(y_true)
    labels = list(range(len(classes)))
    y_pred = np.asarray(proba).argmax(axis=1)
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    prec, rec, f1, sup = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    _, _, fp, tn = confusion_counts(cm)
    per_class = {}
    for i, c in enumerate(classes):
        per_class[c] = {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                        "specificity": float(tn[i] / (tn[i] + fp[i])) if (tn[i] + fp[i]) else 0.0,
                        "support": int(sup[i])}
    present = np.unique(y_true)
    out: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _balanced_accuracy(y_true, y_pred) if len(present) > 0 else 0.0,
        "kappa": float(skm.cohen_kappa_score(y_true, y_pred, labels=labels)) if len(present) > 1 else 0.0,
        "f1_macro": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }
    if len(classes) == 2 and len(present) == 2:
        out["roc_auc"] = float(skm.roc_auc_score(y_true, np.asarray(proba)[:, 1]))
    return out


def summarize(per_fold: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation (population, ddof=0) of each scalar metric across folds."""
    out = {}
    for k in SCALARS:
        vals = [f[k] for f in per_fold if k in f]
        if vals:
            out[k] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n_folds": len(vals)}
    return out


def chance_level(y: np.ndarray, n_classes: int) -> float:
    """Accuracy of always predicting the most frequent class."""
    counts = np.bincount(np.asarray(y), minlength=n_classes)
    return float(counts.max() / max(1, counts.sum()))
