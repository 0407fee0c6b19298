"""Several models (networks and classical baselines) on one dataset, task and protocol, several
seeds each, judged per subject with paired tests: the comparison MOABB users know, inside the
same leakage-free harness (each run selects its model on its training side only).

Output folder: one run folder per model and seed (``<model>-seed<k>/``, as ``biodecode train``
writes), and ``compare.md`` / ``compare.json`` (per-subject accuracy of every model, mean and sd
across subjects, paired Wilcoxon signed-rank tests with the rank-biserial effect size),
``scores.png`` (per-subject scores per model) and ``paired.png`` (each model against the first).
"""

from __future__ import annotations

import copy
import logging
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..errors import ConfigError
from .protocols import describe_scoring
from .report import _save, write_json, write_text_atomic

log = logging.getLogger(__name__)


def per_subject_accuracy(run_dir: str | Path) -> pd.Series:
    """Accuracy per subject over all of a run's test windows (``predictions.csv``); on a task scored
    per recording (e.g. CinC 2017) over the subject's recording decisions (``record_predictions.csv``),
    the unit the task is scored by."""
    run_dir = Path(run_dir)
    per_record = (run_dir / "record_predictions.csv").exists()
    pred = pd.read_csv(run_dir / ("record_predictions.csv" if per_record else "predictions.csv"),
                       dtype={"subject": str, "record": str})
    return (pred["true"] == pred["predicted"]).groupby(pred["subject"]).mean()


def pooled_record_score(run_dir: str | Path) -> dict[str, float] | None:
    """A run's scores over all its test recordings pooled (``metrics.json``'s ``per_record_pooled``:
    accuracy, challenge F1 where the task has one), or None on a task not scored per recording."""
    import json

    pooled = json.loads((Path(run_dir) / "metrics.json").read_text())["summary"].get("per_record_pooled")
    return None if pooled is None else {k: float(v) for k, v in pooled.items() if k in ("accuracy", "challenge_f1")}


def run_cost(run_dir: str | Path) -> dict[str, float]:
    """Seconds (summed over folds) and mean epochs run of one run folder (its ``metrics.json``)."""
    import json

    folds = json.loads((Path(run_dir) / "metrics.json").read_text())["folds"]
    return {"seconds": float(sum(f["seconds"] for f in folds)),
            "epochs": float(np.mean([f["epochs_run"] for f in folds])) if folds else 0.0}


def paired_test(a: np.ndarray, b: np.ndarray) -> dict[str, float | int | None]:
    """Wilcoxon signed-rank test of paired scores ``a`` vs ``b`` (one per subject) and the
    rank-biserial correlation r = (sum of positive ranks - sum of negative ranks) / total, in
    [-1, 1], positive when ``a`` scores higher. Ties (zero differences) are dropped, as Wilcoxon's
    original test does. ``p`` is None when fewer than two subjects differ."""
    from scipy.stats import rankdata, wilcoxon

    d = np.asarray(a, float) - np.asarray(b, float)
    nz = d[d != 0]
    out: dict[str, float | int | None] = {"n": int(len(d)), "mean_diff": float(d.mean()) if len(d) else None,
                                          "W": None, "p": None, "r": None}
    if len(nz) < 2:
        return out
    ranks = rankdata(np.abs(nz))
    plus, minus = float(ranks[nz > 0].sum()), float(ranks[nz < 0].sum())
    res = wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    out.update(W=float(res.statistic), p=float(res.pvalue), r=(plus - minus) / (plus + minus))
    return out


def compare_models(
    config: RunConfig,
    models: Sequence[str],
    out_dir: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    data_progress: Callable[[str, int, int], None] | None = None,
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Run every model in ``models`` with every seed under ``config``'s data and protocol (the
    windows are built once), then score and test them per subject. ``config.model.kwargs`` apply
    to the model named in ``config`` only; the others run with their defaults. Returns the report.
    Under ``torchrun`` only rank 0 writes ``out_dir`` (:func:`biodecode.runs.rank_out_dir`)."""
    from ..runs import is_rank_zero, rank_out_dir

    with rank_out_dir(out_dir) as out:
        return _compare_models(config, models, out, seeds=seeds, overwrite=overwrite,
                               progress=progress if is_rank_zero() else None, data_progress=data_progress,
                               on_epoch=on_epoch)


def _compare_models(config: RunConfig, models: Sequence[str], out: Path, *, seeds: Sequence[int], overwrite: bool,
                    progress: Callable[[str], None] | None, data_progress: Callable[[str, int, int], None] | None,
                    on_epoch: Callable[[int, int, dict[str, float]], None] | None) -> dict[str, Any]:
    from ..experiment import load_run_windows, run_experiment
    from ..runs import check_run_dir

    models = list(dict.fromkeys(models))
    if len(models) < 2:
        raise ConfigError(f"compare: give at least two models, got {models}")
    if not seeds:
        raise ConfigError("compare: give at least one seed")
    if (out / "compare.json").exists() and not overwrite:
        raise ConfigError(f"{out}: already holds a comparison; choose another folder or overwrite it (--overwrite)")
    checked = []
    for name in models:  # every name and option checked before any data is read
        cfg = copy.deepcopy(config)
        cfg.model.name = name
        if name != config.model.name:
            cfg.model.kwargs = {}
        cfg.validate()
        checked.append(cfg)
    for name in models:
        for seed in seeds:
            check_run_dir(out / f"{name}-seed{seed}", overwrite)
    say = progress or (lambda msg: log.info(msg))
    ws = load_run_windows(config, progress=data_progress)
    runs: dict[str, list[str]] = {}
    per_seed: dict[str, list[pd.Series]] = {}
    costs: dict[str, list[dict[str, float]]] = {}
    pooled: dict[str, list[dict[str, float] | None]] = {}
    for cfg in checked:
        for seed in seeds:
            c = copy.deepcopy(cfg)
            c.seed, c.train.seed = int(seed), int(seed)
            run = out / f"{c.model.name}-seed{seed}"
            say(f"compare: {c.model.name}, seed {seed}")
            run_experiment(c, run, windows=ws, overwrite=overwrite, progress=progress, on_epoch=on_epoch)
            runs.setdefault(c.model.name, []).append(run.name)
            per_seed.setdefault(c.model.name, []).append(per_subject_accuracy(run))
            costs.setdefault(c.model.name, []).append(run_cost(run))
            pooled.setdefault(c.model.name, []).append(pooled_record_score(run))
    scores = pd.DataFrame({m: pd.concat(s, axis=1).mean(axis=1) for m, s in per_seed.items()})
    scores = scores.loc[sorted(scores.index, key=lambda s: (len(s), s))]
    seed_sd = {m: float(pd.concat(s, axis=1).mean(axis=0).std(ddof=1)) if len(s) > 1 else None
               for m, s in per_seed.items()}
    tests = _paired_tests(scores, models)
    p = config.protocol
    report = {
        "dataset": config.data.dataset, "task": config.data.task, "protocol": p.name, "score_where": p.score_where,
        "seeds": list(map(int, seeds)),
        "subjects": list(scores.index), "models": models, "runs": runs, "synthetic": ws.synthetic,
        "per_subject": {m: {s: float(v) for s, v in scores[m].items()} for m in models},
        "summary": {m: {"mean": float(scores[m].mean()), "sd": float(scores[m].std(ddof=1)) if len(scores) > 1 else 0.0,
                        "sd_over_seeds": seed_sd[m]} for m in models},
        "tests": tests,
        "cost": {m: {"seconds_per_run": float(np.mean([c["seconds"] for c in costs[m]])),
                     "epochs": float(np.mean([c["epochs"] for c in costs[m]]))} for m in models},
        "train": {k: v for k, v in config.to_dict()["train"].items()
                  if k in ("max_epochs", "batch_size", "lr", "weight_decay", "scheduler", "patience", "augment",
                           "class_weights", "sampler", "val_fraction")},
        "recommended": config.describe_recommended(),
        # what every model read: windows, preprocessing, alignment (a merge refuses reports that differ here)
        "data": {k: v for k, v in config.to_dict()["data"].items() if k not in DATA_KEYS_NOT_COMPARED},
    }
    if all(p is not None for ps in pooled.values() for p in ps):  # a task scored per recording
        report["per_record_pooled"] = {m: {k: [p[k] for p in ps] for k in ps[0]} for m, ps in pooled.items()}
    write_comparison(out, report)
    say(f"compare: report in {out / 'compare.md'}")
    return report


def _paired_tests(scores: pd.DataFrame, models: list[str]) -> list[dict[str, Any]]:
    """:func:`paired_test` of every pair of ``models`` (columns of ``scores``), in list order."""
    return [{"a": a, "b": b, **paired_test(scores[a].to_numpy(), scores[b].to_numpy())} for a, b in combinations(models, 2)]


def _scores(report: dict[str, Any]) -> pd.DataFrame:
    """Per-subject scores ``(subjects, models)`` of a report, in its subject order."""
    return pd.DataFrame(report["per_subject"]).loc[report["subjects"], report["models"]]


def write_comparison(out_dir: str | Path, report: dict[str, Any]) -> None:
    """Write ``compare.json``, ``compare.md``, ``scores.png`` and ``paired.png`` for ``report``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores = _scores(report)
    write_json(out / "compare.json", report)
    write_text_atomic(out / "compare.md", _markdown(report, scores))
    _score_plot(out / "scores.png", scores, report)
    _paired_plot(out / "paired.png", scores, report["models"], report)


#: Data settings that may differ between two comparisons merged into one: where the files lie and
#: the cache (the subjects are checked by name, the windows' content by everything else).
DATA_KEYS_NOT_COMPARED = ("subjects", "data_dir", "cache_dir")


def merge_reports(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """One report from two comparisons of the same dataset, task, protocol (and windows scored), seeds, subjects and
    training settings: the models of ``old`` then those only in ``new`` (a model in both takes
    ``new``'s results), with every paired test recomputed. Lets a model join a comparison without
    re-running the others. Raises ConfigError when the two were not run alike."""
    for key in ("dataset", "task", "protocol", "score_where", "seeds", "train", "synthetic"):
        if old.get(key) != new.get(key):
            raise ConfigError(f"compare: cannot merge comparisons that differ in {key}: {old.get(key)} vs {new.get(key)}")
    if sorted(old["subjects"]) != sorted(new["subjects"]):
        raise ConfigError(f"compare: cannot merge comparisons of different subjects: {old['subjects']} vs {new['subjects']}")
    if "data" in old and "data" in new:  # reports written before the data settings were recorded are merged unchecked
        differ = sorted(k for k in set(old["data"]) | set(new["data"])
                        if k not in DATA_KEYS_NOT_COMPARED and old["data"].get(k) != new["data"].get(k))
        if differ:
            raise ConfigError("compare: cannot merge comparisons whose models read different data: "
                              + "; ".join(f"data.{k} {old['data'].get(k)} vs {new['data'].get(k)}" for k in differ))
    out = copy.deepcopy(old)
    models = list(old["models"]) + [m for m in new["models"] if m not in old["models"]]
    out["models"] = models
    keys = ["per_subject", "runs", "summary", "cost"] + (
        ["per_record_pooled"] if "per_record_pooled" in old and "per_record_pooled" in new else [])
    for key in keys:
        out[key] = {m: (new[key][m] if m in new["models"] else old[key][m]) for m in models}
    if "data" in new:
        out["data"] = new["data"]
    out["tests"] = _paired_tests(_scores(out), models)
    return out


def _fmt_p(p: float | None) -> str:
    return "-" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def _markdown(rep: dict[str, Any], scores: pd.DataFrame) -> str:
    models = rep["models"]
    lines = [f"# Comparison on {rep['dataset']} ({rep['task']}), {rep['protocol']}", ""]
    if rep["synthetic"]:
        lines += ["> **SYNTHETIC DATA.** These scores show the pipeline works, not how well anything decodes real "
                  "signals.", ""]
    lines += [f"- **subjects**: {len(rep['subjects'])} ({', '.join(rep['subjects'])})",
              f"- **seeds**: {', '.join(map(str, rep['seeds']))} (per-subject scores are averaged over seeds)",
              ("- **score**: accuracy of each subject's recording decisions (one per recording: its windows' "
               "probabilities averaged), pooled across the protocol's folds" if rep.get("per_record_pooled") else
               "- **score**: accuracy over each subject's test windows, pooled across the protocol's folds")
              + ("; only the windows with " + describe_scoring(rep["score_where"])
                 + " are tested (training also reads its subjects' other windows)" if rep.get("score_where") else ""),
              "- **model selection**: " + (
                  "none: the networks train a fixed number of epochs on the whole training side (baselines have "
                  "none either)" if (rep.get("train") or {}).get("val_fraction") == 0 else
                  "inside each run, on its training side only (early stopping on a validation split of the "
                  "training side; baselines have none)"),
              *([f"- **recommended settings** of {rep['dataset']} (what the config left out): {rep['recommended']}"]
                if rep.get("recommended") else []),
              "- **runs**: " + ", ".join(f"`{r}/`" for rs in rep["runs"].values() for r in rs), "",
              "## Per subject", "", "| subject | " + " | ".join(f"`{m}`" for m in models) + " |",
              "|---" * (len(models) + 1) + "|"]
    for s, row in scores.iterrows():
        lines.append(f"| {s} | " + " | ".join(f"{row[m]:.3f}" for m in models) + " |")
    lines.append("| **mean ± sd** | " + " | ".join(
        f"**{rep['summary'][m]['mean']:.3f}** ± {rep['summary'][m]['sd']:.3f}" for m in models) + " |")
    lines.append("| time per run (s) | " + " | ".join(f"{rep['cost'][m]['seconds_per_run']:.0f}" for m in models) + " |")
    lines.append("| epochs per fold (networks) | " + " | ".join(
        f"{rep['cost'][m]['epochs']:.0f}" if rep["cost"][m]["epochs"] else "-" for m in models) + " |")
    if len(rep["seeds"]) > 1:
        lines.append("| sd of the mean over seeds | " + " | ".join(
            f"{rep['summary'][m]['sd_over_seeds']:.3f}" for m in models) + " |")
    pooled = rep.get("per_record_pooled") or {}
    if pooled and all("challenge_f1" in pooled.get(m, {}) for m in models):
        lines.append("| challenge F1, all test records pooled (mean over seeds) | " + " | ".join(
            f"{np.mean(pooled[m]['challenge_f1']):.3f}" for m in models) + " |")
    lines += ["", "## Paired tests across subjects", "",
              "Wilcoxon signed-rank (two-sided; subjects with equal scores dropped) and the rank-biserial "
              "effect size r (positive: the first model scores higher; |r| near 1: it wins on nearly every "
              "subject).", "", "| model A | model B | mean A - B | W | p | r | subjects |", "|---|---|---|---|---|---|---|"]
    for t in rep["tests"]:
        w = "-" if t["W"] is None else f"{t['W']:.1f}"
        r = "-" if t["r"] is None else f"{t['r']:+.2f}"
        lines.append(f"| `{t['a']}` | `{t['b']}` | {t['mean_diff']:+.3f} | {w} | {_fmt_p(t['p'])} | {r} | {t['n']} |")
    n = len(rep["subjects"])
    if n < 6:
        lines += ["", f"With {n} subjects no two-sided Wilcoxon p-value can fall below 0.05 (the smallest is "
                      f"2 / 2^{n} = {2 / 2 ** n:.3f}): add subjects before reading anything into these tests."]
    lines += ["", "Plots: `scores.png` (per-subject scores per model), `paired.png` (each model against the first).", ""]
    return "\n".join(lines)


def _score_plot(path: Path, scores: pd.DataFrame, rep: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = rep["models"]
    fig, ax = plt.subplots(figsize=(1.4 * len(models) + 2.5, 4))
    rng = np.random.default_rng(0)
    for i, m in enumerate(models):
        y = scores[m].to_numpy()
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(y)), y, s=18, alpha=0.7)
        ax.errorbar(i + 0.3, y.mean(), yerr=y.std(ddof=1) if len(y) > 1 else 0, fmt="D", color="black", capsize=4)
    ax.set_xticks(range(len(models)), models, rotation=20)
    ax.set_ylabel("accuracy per subject")
    ax.set_ylim(0, 1)
    ax.set_title(f"{rep['dataset']} {rep['task']}, {rep['protocol']} ({len(scores)} subjects)"
                 + (" [SYNTHETIC]" if rep["synthetic"] else ""), fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _paired_plot(path: Path, scores: pd.DataFrame, models: list[str], rep: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = models[1:]
    cols = min(4, len(others))  # a grid of at most 4 columns: a dozen models stay readable
    rows = -(-len(others) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(3.6 * cols, 5.5), 3.6 * rows + 0.3), squeeze=False)
    for ax in axes.flat[len(others):]:
        ax.set_visible(False)
    for ax, m in zip(axes.flat, others):
        pairs = scores[[models[0], m]].round(6).value_counts()
        if len(pairs) <= len(scores) // 3:  # few distinct pairs (e.g. 1 or 0 per recording): how many at each
            xy = np.array(pairs.index.tolist(), dtype=float)
            ax.scatter(xy[:, 0], xy[:, 1], s=20 + 400 * pairs.to_numpy() / pairs.max(), alpha=0.6)
            for (x, y), n in zip(xy, pairs.to_numpy()):
                ax.annotate(str(n), (x, y), ha="center", va="center", fontsize=8)
        else:
            ax.scatter(scores[models[0]], scores[m], s=20)
        # from a tenth below the lowest score to just above 1: scores bunched near 1 stay apart
        lo = max(0.0, float(np.floor((np.nanmin(scores[[models[0], m]].to_numpy()) - 0.02) * 10) / 10))
        ax.plot([lo, 1.01], [lo, 1.01], "--", color="grey", lw=1)
        ax.set_xlim(lo - 0.06, 1.06)  # room for the markers at 0 and 1
        ax.set_ylim(lo - 0.06, 1.06)
        ax.set_aspect("equal")
        ax.set_xlabel(models[0])
        ax.set_ylabel(m)
        t = next(t for t in rep["tests"] if {t["a"], t["b"]} == {models[0], m})
        ax.set_title(f"p = {_fmt_p(t['p'])}", fontsize=9)
    fig.suptitle("each point a subject (a number: how many)\nabove the diagonal: the second model scores higher",
                 fontsize=9)
    fig.tight_layout()
    _save(fig, path)
