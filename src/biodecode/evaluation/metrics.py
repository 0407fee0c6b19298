"""The metrics the fields report, from scikit-learn, and their mean and spread across folds."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

from ..errors import ConfigError

SCALARS = ("accuracy", "balanced_accuracy", "kappa", "f1_macro", "roc_auc", "challenge_f1")


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


def aggregate_by_group(y: np.ndarray, proba: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One decision per group (e.g. a recording scored as a whole): the mean of its windows' class
    probabilities. Returns ``(group names, labels, probabilities (n_groups, n_classes))``; a group whose
    windows carry different labels is an error (its label would be ambiguous)."""
    names, inverse = np.unique(np.asarray(groups), return_inverse=True)
    proba = np.asarray(proba, dtype=np.float64)
    sums = np.zeros((len(names), proba.shape[1]))
    np.add.at(sums, inverse, proba)
    counts = np.bincount(inverse, minlength=len(names))
    labels = np.full(len(names), -1)
    for i, label in zip(inverse, np.asarray(y)):
        if labels[i] not in (-1, label):
            raise ConfigError(f"aggregate_by_group: group '{names[i]}' has windows of more than one label")
        labels[i] = label
    return names, labels, sums / counts[:, None]


def cinc2017_f1(cm: np.ndarray, classes: Sequence[str]) -> float:
    """The PhysioNet/CinC 2017 challenge score from a recording-level confusion matrix: the mean of the
    F1 of normal, AF and other rhythm, ``F1_x = 2 n_xx / (row_x + column_x)`` (noisy records count in
    the rows and columns, not in the mean), as the challenge's ``score2017Challenge.m`` computes it."""
    cm = np.asarray(cm, dtype=np.float64)
    f1 = []
    for name in ("normal", "AF", "other"):
        i = list(classes).index(name)
        denom = cm[i, :].sum() + cm[:, i].sum()
        f1.append(2 * cm[i, i] / denom if denom else 0.0)
    return float(np.mean(f1))


#: Scores a dataset's task declares beyond the standard ones, by name.
CHALLENGE_SCORES = {"cinc2017": cinc2017_f1}


def record_metrics(y: np.ndarray, proba: np.ndarray, records: np.ndarray, classes: Sequence[str],
                   challenge: str | None = None) -> dict[str, Any]:
    """The standard scores of one decision per recording (:func:`aggregate_by_group`), with
    ``n_records`` and, when ``challenge`` names one, the field's challenge score (``challenge_f1``)."""
    _, labels, rec_proba = aggregate_by_group(y, proba, records)
    return decision_metrics(labels, rec_proba, classes, challenge)


def decision_metrics(labels: np.ndarray, rec_proba: np.ndarray, classes: Sequence[str],
                     challenge: str | None = None) -> dict[str, Any]:
    """:func:`record_metrics` from decisions already aggregated (:func:`aggregate_by_group`'s labels
    and probabilities), for callers that also keep the decisions."""
    m = compute_metrics(labels, rec_proba, classes)
    if challenge:
        m["challenge_f1"] = CHALLENGE_SCORES[challenge](np.asarray(m["confusion_matrix"]), classes)
    m["n_records"] = int(len(labels))
    return m


def pooled_record_metrics(fold_metrics: Sequence[dict[str, Any]], classes: Sequence[str],
                          challenge: str | None = None) -> dict[str, Any]:
    """The per-record scores of every fold's test decisions taken together (their recording-level
    confusion matrices summed): ``n_records``, ``accuracy``, ``balanced_accuracy`` (mean recall over
    the classes present), ``f1_macro`` (over the classes predicted or present), ``confusion_matrix``
    and, when ``challenge`` names one, ``challenge_f1`` - the score a challenge computes once over
    all its test records, where the mean over folds averages scores of small folds."""
    cm = np.sum([np.asarray(m["confusion_matrix"], dtype=np.int64) for m in fold_metrics], axis=0)
    n, rows, cols, tp = int(cm.sum()), cm.sum(1), cm.sum(0), np.diag(cm)
    present, seen = rows > 0, (rows + cols) > 0
    out: dict[str, Any] = {
        "n_records": n, "accuracy": float(tp.sum() / n) if n else float("nan"),
        "balanced_accuracy": float(np.mean(tp[present] / rows[present])) if present.any() else float("nan"),
        "f1_macro": float(np.mean(2 * tp[seen] / (rows + cols)[seen])) if seen.any() else float("nan"),
        "confusion_matrix": cm.tolist()}
    if challenge:
        out["challenge_f1"] = CHALLENGE_SCORES[challenge](cm, classes)
    return out
