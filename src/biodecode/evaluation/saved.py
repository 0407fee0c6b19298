"""Evaluate a saved model file on data: rebuild the windows it expects, refuse windows it was
fitted on, and write the same report files as a training run."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from .metrics import chance_level, compute_metrics, record_metrics, summarize
from .protocols import describe_scoring, scored_windows
from .report import markdown_report, plot_confusion, write_json, write_text_atomic

log = logging.getLogger(__name__)


def fitted_windows(meta: dict[str, Any], ws) -> np.ndarray:
    """Boolean mask over ``ws``: windows in a group (``meta["fitted_on"]``: the fold's leakage
    key and its training-side groups) the model was fitted on. All False for model files that do
    not record it."""
    fitted = meta.get("fitted_on")
    if not fitted or fitted.get("key") not in ws.metadata.columns:
        return np.zeros(len(ws), dtype=bool)
    if "subject_groups" in fitted and fitted["key"] in ("session", "run"):  # session 1 of another subject is new data
        return np.isin(ws.groups(["subject", fitted["key"]]), np.asarray(fitted["subject_groups"], dtype=object).astype(str))
    return np.isin(ws.groups(fitted["key"]), np.asarray(fitted["groups"], dtype=object).astype(str))


def evaluate_model(
    checkpoint: str | os.PathLike,
    subjects: Sequence[int | str] | None = None,
    *,
    dataset: str | None = None,
    task: str | None = None,
    data_dir: str | None = None,
    cache_dir: str | None = None,
    out_dir: str | os.PathLike | None = None,
    allow_fitted: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Score ``checkpoint`` (a ``model.pt``, or a baseline's ``model.skops``) on ``subjects`` of ``dataset``/``task`` (default: the
    ones it was trained on), with the window spec, preprocessing and metadata channels in its file.

    Windows the model was fitted on (training or early-stopping side of its fold) are refused with
    a ConfigError that says how many, unless ``allow_fitted``, in which case the report is headed by
    a warning. Writes ``metrics.json``, ``metrics.md`` and ``confusion_matrix.png`` to ``out_dir``
    (default ``<model folder>/evaluate``) and returns the report dict.
    """
    from ..loading import load_windows_for_model
    from ..spec import WindowSpec
    from ..training import load_model, predict_proba

    checkpoint = Path(checkpoint)
    if checkpoint.suffix in (".skops", ".joblib"):  # a classical baseline's pipeline (.joblib: refused, by name)
        from ..baselines import baseline_proba, load_baseline

        pipeline, meta = load_baseline(checkpoint)
        predict = lambda X: baseline_proba(pipeline, X, len(meta["classes"]))  # noqa: E731
    else:
        model, meta = load_model(checkpoint)
        predict = lambda X: predict_proba(model, X)  # noqa: E731
    spec = WindowSpec.from_model_meta(meta)
    dataset, task = dataset or spec.dataset, task or spec.task
    try:
        ws = load_windows_for_model(meta, subjects, dataset=dataset, task=task, data_dir=data_dir,
                                    cache_dir=cache_dir, progress=progress)
    except ConfigError as exc:
        raise ConfigError(f"{checkpoint}: {exc}") from None
    where = meta.get("score_where")  # the run scored these windows only (e.g. imagined movement)
    if not (where and all(c in ws.metadata.columns for c in where)):
        where = None  # a run without the filter, or other data without its columns: every window
    if where:
        ws = ws.subset(scored_windows(ws, where))
    same_data = dataset == spec.dataset and task == spec.task
    fitted = fitted_windows(meta, ws) if same_data else np.zeros(len(ws), dtype=bool)
    warning = None
    if fitted.any():
        what = (f"{int(fitted.sum())} of these {len(ws)} windows were on the fitting side of the model "
                f"({meta.get('fold', 'its fold')}: {meta['fitted_on']['key']}s it was trained or early-stopped on)")
        if not allow_fitted:
            raise ConfigError(f"{checkpoint}: {what}; their score says nothing about new data. Evaluate on other "
                              f"subjects/records, or pass --allow-fitted (allow_fitted=True) to score them anyway")
        warning = f"{what}: this score is OPTIMISTIC, not an estimate for new data"
        log.warning("%s: %s", checkpoint, warning)
    proba = predict(ws.X)
    metrics = compute_metrics(ws.y, proba, ws.classes)
    from ..datasets import get_dataset

    task_def = get_dataset(dataset, path=data_dir, **((spec.dataset_kwargs or {}) if same_data else {})).task(task)
    if task_def is not None and task_def.score_per_record:  # e.g. CinC 2017: one decision per recording, the challenge's F1
        metrics["per_record"] = record_metrics(ws.y, proba, ws.groups("record"), ws.classes, task_def.challenge_score)
    subjects_seen = sorted(set(ws.groups("subject").tolist()), key=lambda s: (len(s), s))
    out = Path(out_dir) if out_dir is not None else checkpoint.parent / "evaluate"
    title = f"{checkpoint} evaluated on {dataset} ({task or 'default task'})"
    header = {"model file": str(checkpoint), "trained as": meta.get("fold", "-"), "dataset": dataset, "task": task,
              "subjects": ", ".join(subjects_seen),
              "windows": f"{len(ws)} x {ws.n_channels} channels x {ws.n_times} samples at {ws.sfreq:g} Hz",
              "classes": ", ".join(f"{c} ({n})" for c, n in ws.class_counts().items()),
              "windows the model was fitted on": f"{int(fitted.sum())}" + (" (OPTIMISTIC)" if fitted.any() else "")}
    if where:
        header["scored"] = "the windows with " + describe_scoring(where) + " (as the run)"
    row = {"name": "evaluation", "n_test": len(ws), "metrics": metrics, "chance": chance_level(ws.y, len(ws.classes)),
           "best_epoch": "-"}
    report = {"title": title, "checkpoint": str(checkpoint), "dataset": dataset, "task": task,
              "subjects": subjects_seen, "metrics": metrics, "n_fitted_windows": int(fitted.sum()),
              "warning": warning, "synthetic": bool(meta.get("synthetic", False))}
    md = markdown_report(title, header, [row], summarize([metrics]), ws.classes, report["synthetic"], curves=False)
    if warning:
        md = md.replace("\n", f"\n\n> **WARNING.** {warning}.\n", 1)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", report)
    write_text_atomic(out / "metrics.md", md)
    plot_confusion(out / "confusion_matrix.png", np.asarray(metrics["confusion_matrix"]), ws.classes,
                   f"{checkpoint.name} on {dataset}" + (" [OPTIMISTIC: fitted windows]" if warning else ""))
    report["out_dir"] = str(out)
    return report
