"""One run end to end: windows -> protocol folds -> fit per fold -> test metrics -> report folder."""

from __future__ import annotations

import copy
import json
import logging
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .config import ProtocolConfig, RunConfig
from .datasets import Dataset, Task, get_dataset
from .evaluation import PROTOCOLS, chance_level, compute_metrics, describe_scoring, make_folds, scored_windows, summarize
from .evaluation.metrics import aggregate_by_group, decision_metrics, pooled_record_metrics
from .evaluation.report import markdown_report, plot_confusion, plot_learning_curves, write_json, write_text_atomic
from .models import count_parameters, create_model
from .training import FitResult, fit, predict_proba, save_model, seed_everything
from .training.tracking import log_final, make_loggers, require_loggers
from .lazyarray import take_rows
from .alignment import align_windows
from .baselines import BASELINE_FILE, BASELINES, baseline_proba, fit_baseline, is_baseline, make_baseline, save_baseline
from .loading import load_windows
from .runs import check_run_dir, is_rank_zero, rank_out_dir, set_status, start_run
from .spec import WindowSpec
from .windows import WindowSet, with_metadata_channels

log = logging.getLogger(__name__)


def environment(seed: int) -> dict[str, Any]:
    """Versions, machine and seed, recorded with every run."""
    import lightning
    import mne
    import scipy
    import sklearn
    import torch

    from . import __version__

    return {
        "biodecode": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "lightning": lightning.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__, "mne": mne.__version__, "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(), "seed": seed, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
    }


def load_run_windows(config: RunConfig, progress=None) -> WindowSet:
    """The windows a run config describes (through the window store)."""
    d = config.data
    ws = load_windows(d.window_spec(), d.subjects, data_dir=d.data_dir, cache_dir=d.cache_dir, progress=progress)
    if d.alignment != "none":
        ws = align_windows(ws, by=d.alignment_by, method=d.alignment)
    return with_metadata_channels(ws, d.metadata_channels) if d.metadata_channels else ws


def _resolved_spec(config: RunConfig, ws: WindowSet) -> WindowSpec:
    """The spec the windows were built with (the store records it), else the config's own."""
    if "window_spec" in ws.info:
        return WindowSpec.from_dict(ws.info["window_spec"])
    return config.data.window_spec()


def run_experiment(config: RunConfig, out_dir: str | Path, *, progress: Callable[[str], None] | None = None,
                   windows: WindowSet | None = None,
                   data_progress: Callable[[str, int, int], None] | None = None,
                   on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
                   overwrite: bool = False) -> dict[str, Any]:
    """Train and test one model under one protocol; write the report folder; return the summary.

    Files written to ``out_dir``: ``status.json`` (running / done / failed with the error; see
    :mod:`biodecode.runs`), ``config.yaml`` (resolved), ``environment.json`` (versions, seed),
    ``metrics.json`` (rewritten after every fold, so a stopped run keeps the folds it finished) and
    ``metrics.md`` (per fold and mean ± sd), ``confusion_matrix.png``, ``learning_curves.png``,
    ``folds.json`` (which groups were tested in each fold), ``predictions.csv`` (every test window:
    fold, window index, subject, true and predicted class; on a task scored per recording, e.g. CinC
    2017, also ``record_predictions.csv``: fold, record, subject, true class and the recording's
    decision) and ``model.pt`` (the fold model with the
    lowest validation loss; its ``meta["fitted_on"]`` names the groups it was fitted on).

    A folder that already holds a run is refused unless ``overwrite``; the folder is created only
    once the windows are ready, so a run that cannot load its data leaves nothing behind.
    ``progress(message)`` gets a line per fold; ``data_progress(unit, done, total)`` is called as each
    recording unit's windows are ready; ``on_epoch(fold_index, n_folds, history_row)`` after every epoch.
    Under ``torchrun`` (or Lightning's DDP launcher) every rank trains, and only rank 0 writes
    ``out_dir`` and reports progress (:func:`biodecode.runs.rank_out_dir`).
    """
    with rank_out_dir(out_dir) as out:  # under torchrun only rank 0 writes out_dir
        return _run_experiment(config, out, progress=progress if is_rank_zero() else None, windows=windows,
                               data_progress=data_progress, on_epoch=on_epoch, overwrite=overwrite)


def _run_experiment(config: RunConfig, out: Path, *, progress: Callable[[str], None] | None,
                    windows: WindowSet | None, data_progress: Callable[[str, int, int], None] | None,
                    on_epoch: Callable[[int, int, dict[str, float]], None] | None, overwrite: bool) -> dict[str, Any]:
    config = copy.deepcopy(config)  # resolved below; the caller's config is left as it was given
    config.validate()
    require_loggers(config.train.loggers)
    check_run_dir(out, overwrite)  # before any work
    ds = get_dataset(config.data.dataset, path=config.data.data_dir, **config.data.dataset_kwargs)
    p = fill_dataset_split(config, ds)
    ws = windows if windows is not None else load_run_windows(config, progress=data_progress)
    if config.data.preprocessing is None:
        config.data.preprocessing = ws.info.get("preprocessing", [])
    if config.data.subjects == ["local"] and "subjects" in ws.info:  # written as the list it stood for
        config.data.subjects = list(ws.info["subjects"])
    folds = make_folds(ws, p.name, n_folds=p.n_folds, val_fraction=config.train.val_fraction, seed=config.seed,
                       train_groups=p.train_groups, test_groups=p.test_groups, group_key=p.group_key,
                       val_groups=p.val_groups, score_where=p.score_where)
    start_run(out, overwrite)
    if overwrite and (out / "logs").is_dir():  # the replaced run's tracking logs go with it
        shutil.rmtree(out / "logs")
    try:
        report = _run_folds(config, ws, folds, out, progress or (lambda msg: log.info(msg)), on_epoch,
                            ds.task(config.data.task))
    except BaseException as exc:  # also Ctrl-C: the folder says the run did not finish, and why
        set_status(out, "failed", message=f"{type(exc).__name__}: {exc}")
        raise
    set_status(out, "done", accuracy=report["summary"].get("accuracy", {}).get("mean"))
    return report


def fill_dataset_split(config: RunConfig, ds: Dataset | None = None) -> ProtocolConfig:
    """``config.protocol`` (changed in place and returned) with the dataset's standard split for
    the protocol filled in when no groups were given, e.g. MIT-BIH DS1 -> DS2 for ``inter-patient``."""
    p = config.protocol
    if p.train_groups is None and p.test_groups is None:
        ds = ds or get_dataset(config.data.dataset, path=config.data.data_dir, **config.data.dataset_kwargs)
        fixed = ds.splits.get(p.name)
        if fixed is not None:
            p.train_groups, p.test_groups = list(fixed[0]), list(fixed[1])
    return p


def fit_and_predict(config: RunConfig, ws: WindowSet, train: np.ndarray, val: np.ndarray, test: np.ndarray, *,
                    val_unscored: np.ndarray | None = None,
                    on_epoch: Callable[[dict[str, float]], None] | None = None,
                    loggers: list[Any] | None = None) -> tuple[FitResult, np.ndarray]:
    """Fit ``config``'s model on windows ``train`` and return it with class probabilities
    ``(len(test), n_classes)`` for windows ``test``. A network early-stops on ``val``; a classical
    baseline has nothing to stop, so ``train`` and ``val`` together fit it, with ``val_unscored``
    (the validation groups' windows a ``score_where`` protocol does not score)."""
    n_classes = len(ws.classes)
    if is_baseline(config.model.name):
        side = np.concatenate([train, val, np.asarray(val_unscored if val_unscored is not None else [], dtype=np.int64)])
        pipe = fit_baseline(make_baseline(config.model.name, ws.sfreq, config.data.metadata_channels,
                                          ws.ch_names, **config.model.kwargs),
                            take_rows(ws.X, side), ws.y[side])
        return FitResult(model=pipe, history=[]), baseline_proba(pipe, take_rows(ws.X, test), n_classes)
    model = create_model(config.model.name, ws.n_channels, ws.n_times, n_classes, sfreq=ws.sfreq, **config.model.kwargs)
    # lazy row views: batches are read from the store as they are drawn, nothing is copied up front
    res = fit(model, take_rows(ws.X, train), ws.y[train], take_rows(ws.X, val), ws.y[val], config.train,
              n_classes=n_classes, on_epoch=on_epoch, loggers=loggers, ch_names=ws.ch_names, classes=ws.classes)
    return res, predict_proba(res.model, take_rows(ws.X, test))


def _record_decisions(fold: int, ws: WindowSet, test: np.ndarray, proba: np.ndarray,
                      challenge: str | None) -> tuple[dict[str, Any], pd.DataFrame]:
    """The per-record scores of a fold's test windows (``record_metrics``) and one row per test
    recording: its subject, true class and decision (the mean of its windows' probabilities)."""
    records = ws.groups("record")[test]
    names, labels, rec_proba = aggregate_by_group(ws.y[test], proba, records)
    subject_of = dict(zip(records, ws.groups("subject")[test]))
    classes = np.asarray(ws.classes, dtype=object)
    rows = pd.DataFrame({"fold": fold, "record": names, "subject": [subject_of[r] for r in names],
                         "true": classes[labels], "predicted": classes[rec_proba.argmax(1)]})
    return decision_metrics(labels, rec_proba, ws.classes, challenge), rows


def _run_folds(config: RunConfig, ws: WindowSet, folds: list, out: Path, say: Callable[[str], None],
               on_epoch: Callable[[int, int, dict[str, float]], None] | None, task: Task | None) -> dict[str, Any]:
    p = config.protocol
    write_text_atomic(out / "config.yaml", config.to_yaml())
    write_json(out / "environment.json", environment(config.seed))
    say(f"{len(ws)} windows {ws.X.shape[1:]} at {ws.sfreq:g} Hz, classes {ws.class_counts()}; "
        f"{len(folds)} folds ({p.name})" + ("  [SYNTHETIC DATA]" if ws.synthetic else ""))
    results, histories, best, predictions, record_predictions = [], [], (np.inf, None, -1), [], []
    subjects = ws.groups("subject")
    n_classes = len(ws.classes)
    classical = is_baseline(config.model.name)
    per_record = bool(task and task.score_per_record)  # e.g. CinC 2017: the labels belong to whole recordings
    title = f"{config.model.name} on {config.data.dataset} ({config.data.task or 'default task'}), {p.name}"
    for k, fold in enumerate(folds):
        t0 = time.perf_counter()
        seed_everything(config.seed + k)  # weight initialisation, shuffling and augmentation of this fold
        loggers = make_loggers(config.train.loggers, out, k, fold.name, title, config.to_dict())
        res, proba = fit_and_predict(config, ws, fold.train, fold.val, fold.test, val_unscored=fold.val_unscored, loggers=loggers,
                                     on_epoch=(lambda row, k=k: on_epoch(k, len(folds), row)) if on_epoch else None)
        metrics = compute_metrics(ws.y[fold.test], proba, ws.classes)
        if per_record:
            metrics["per_record"], rows = _record_decisions(k, ws, fold.test, proba, task.challenge_score)
            record_predictions.append(rows)
        log_final(loggers, {**metrics, **{f"per_record_{key}": v for key, v in metrics.get("per_record", {}).items()}},
                  step=len(res.history))
        predictions.append(pd.DataFrame({"fold": k, "window": fold.test, "subject": subjects[fold.test],
                                         "true": np.asarray(ws.classes, dtype=object)[ws.y[fold.test]],
                                         "predicted": np.asarray(ws.classes, dtype=object)[proba.argmax(1)]}))
        # a classical pipeline fits on the whole training side: it has no validation windows
        fit_side = np.concatenate([fold.train, fold.val, fold.val_unscored]) if classical else fold.train
        val_side = fold.val[:0] if classical else fold.val
        side_groups = {f"{side}_groups": sorted(set(ws.groups(fold.leakage_key)[idx].tolist()), key=lambda g: (len(g), g))
                       for side, idx in (("train", fit_side), ("val", val_side), ("test", fold.test))}
        results.append({"name": fold.name, "n_train": len(fit_side), "n_val": len(val_side),
                        "n_test": len(fold.test), "best_epoch": res.best_epoch, "best_val_loss": res.best_val_loss,
                        "epochs_run": len(res.history), "seconds": time.perf_counter() - t0,
                        "chance": chance_level(ws.y[fold.test], n_classes), "metrics": metrics,
                        "leakage_key": fold.leakage_key, **side_groups})
        histories.append(res.history)
        score = res.best_val_loss if res.best_val_loss is not None else -k
        if score < best[0] or best[1] is None:
            best = (score, res.model, k)
        write_json(out / "metrics.json", {"title": title, "synthetic": ws.synthetic, "classes": ws.classes,
                                          "partial": f"{k + 1} of {len(folds)} folds", "folds": results})
        set_status(out, "running", folds_done=k + 1, n_folds=len(folds))
        how = "fitted" if classical else f"{len(res.history)} epochs"
        say(f"fold {k + 1}/{len(folds)} {fold.name}: accuracy {metrics['accuracy']:.3f} "
            f"(kappa {metrics['kappa']:.3f}, {how}, {time.perf_counter() - t0:.1f} s)")
    summary = summarize([r["metrics"] for r in results])
    if per_record:
        summary["per_record"] = summarize([r["metrics"]["per_record"] for r in results])
        summary["per_record_pooled"] = pooled_record_metrics([r["metrics"]["per_record"] for r in results], ws.classes,
                                                             task.challenge_score)
    header = {
        "dataset": config.data.dataset + (" (SYNTHETIC)" if ws.synthetic else ""), "task": config.data.task,
        "subjects": ", ".join(sorted(set(subjects.tolist()), key=lambda s: (len(s), s))),
        "windows": f"{len(ws)} x {ws.n_channels} channels x {ws.n_times} samples at {ws.sfreq:g} Hz",
        "classes": ", ".join(f"{c} ({n})" for c, n in ws.class_counts().items()),
        "protocol": f"{p.name}: {PROTOCOLS[p.name]}" + (
            "; scored on the windows with " + describe_scoring(p.score_where) +
            " only (training also reads its subjects' other windows)" if p.score_where else ""),
        "model": (f"{config.model.name} (classical baseline: {BASELINES[config.model.name][2]})" if classical else
                  f"{config.model.name} ({count_parameters(best[1])} parameters)"),
        "early stopping": ("none (a classical pipeline fitted on the whole training side)" if classical else
                           f"none: {config.train.max_epochs} epochs on the whole training side"
                           if config.train.val_fraction == 0 else
                           f"on a validation split of {config.train.val_fraction:.0%} of the training side"),
        "seed": config.seed,
    }
    if config.from_dataset:
        header["recommended settings"] = (f"{config.describe_recommended()} (the {config.data.dataset} settings "
                                          "chosen by nested validation; `defaults: plain` turns them off)")
    report = {"title": title, "synthetic": ws.synthetic, "classes": ws.classes, "summary": summary, "folds": results,
              "header": header, "best_fold": best[2]}
    write_json(out / "metrics.json", report)
    write_text_atomic(out / "metrics.md", markdown_report(title, header, results, summary, ws.classes, ws.synthetic,
                                                          curves=not classical))
    write_json(out / "folds.json", [{k: r[k] for k in ("name", "leakage_key", "train_groups", "val_groups", "test_groups")}
                                    for r in results])
    write_text_atomic(out / "predictions.csv", pd.concat(predictions).to_csv(index=False))
    if record_predictions:
        write_text_atomic(out / "record_predictions.csv", pd.concat(record_predictions).to_csv(index=False))
    cm = np.sum([np.asarray(r["metrics"]["confusion_matrix"]) for r in results], axis=0)
    tag = " [SYNTHETIC]" if ws.synthetic else ""
    plot_confusion(out / "confusion_matrix.png", cm, ws.classes, title + tag)
    if not classical:  # a pipeline has no epochs
        plot_learning_curves(out / "learning_curves.png", histories, [r["name"] for r in results], title + tag)
    fold = folds[best[2]]
    fitted = np.concatenate([fold.train, fold.val, fold.val_unscored] if classical else [fold.train, fold.val])
    meta = dict(classes=list(ws.classes), ch_names=list(ws.ch_names), sfreq=ws.sfreq,
                alignment={"method": config.data.alignment, "by": list(config.data.alignment_by)},
                window_spec=_resolved_spec(config, ws).to_dict(), metadata_channels=list(config.data.metadata_channels),
                synthetic=ws.synthetic, fold=results[best[2]]["name"], score_where=p.score_where,
                fitted_on={"key": fold.leakage_key, "groups": sorted(set(ws.groups(fold.leakage_key)[fitted].tolist())),
                           # sessions and runs are named per subject ("1" in every subject): the pairs say whose
                           "subject_groups": sorted(set(ws.groups(["subject", fold.leakage_key])[fitted].tolist())),
                           "n_windows": int(len(fitted))})
    if classical:
        save_baseline(out / BASELINE_FILE, best[1], config.model.name, config.model.kwargs,
                      n_channels=ws.n_channels, n_times=ws.n_times, **meta)
    else:
        save_model(out / "model.pt", best[1], **meta)
    acc = summary.get("accuracy", {})
    say(f"accuracy {acc.get('mean', float('nan')):.3f} ± {acc.get('std', float('nan')):.3f} over {len(results)} folds; "
        f"report in {out}")
    return report


def held_out_windows(run: str | Path, max_test: int = 512, max_calib: int = 256) -> tuple[WindowSet, np.ndarray, np.ndarray, str]:
    """A finished run's windows: indices of up to ``max_test`` of its best fold's test side (windows its
    model never fitted) and of up to ``max_calib`` calibration windows from the rest, and the fold's name."""
    run = Path(run)
    config = RunConfig.from_yaml(run / "config.yaml")
    metrics = json.loads((run / "metrics.json").read_text())
    fold = metrics["folds"][metrics.get("best_fold", 0)]
    ws = load_run_windows(config)
    test = np.isin(ws.groups(fold["leakage_key"]), fold["test_groups"]) & scored_windows(ws, config.protocol.score_where)
    rng = np.random.default_rng(0)
    test_idx = np.flatnonzero(test)
    other = np.flatnonzero(~test)
    test_idx = np.sort(rng.choice(test_idx, min(max_test, len(test_idx)), replace=False))
    calib_idx = np.sort(rng.choice(other, min(max_calib, len(other)), replace=False)) if len(other) else test_idx[:0]
    return ws, test_idx, calib_idx, fold["name"]
