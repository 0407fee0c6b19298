"""Nested validation for choosing defaults: score candidate settings on validation groups only.

Each candidate (a base run config plus overrides) runs under the outer protocol's folds; inside each
fold the training side is split again (whole subjects, records or days held out, as
``biodecode.evaluation.inner_validation`` does for early stopping) and the candidate is scored on
that held-out part of the *training* side. The outer test groups are never read: this script
cannot print a test score, so choosing by its output never tunes on a test fold.

    BIODECODE_DATA_DIR=../shared/data python -m benchmarks.tune_defaults --config base.yaml \
        --candidate '{}' --candidate '{"train": {"batch_size": 16}}' [--folds 5]

Prints one line per candidate: mean +- sd of the inner-validation accuracy over outer folds, the
balanced accuracy, the epochs run and the time. A classical baseline is fitted on the inner
training part and scored on the same validation windows, so deep and classical candidates are
compared on equal terms.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np

from biodecode.config import RunConfig
from biodecode.evaluation import make_folds
from biodecode.evaluation.protocols import inner_validation
from biodecode.datasets import get_dataset
from biodecode.evaluation.metrics import compute_metrics, pooled_record_metrics, record_metrics
from biodecode.experiment import fill_dataset_split, fit_and_predict, load_run_windows
from biodecode.training import seed_everything


#: Share of each outer training side held out (as whole groups) to score candidates.
SCORE_FRACTION = 0.2


def merge_overrides(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid on it, nested mappings merged key by key (a candidate's overrides on a
    config; a value that is not a mapping replaces); ``base`` is left as it was."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge_overrides(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def inner_scores(cfg: RunConfig, ws=None) -> dict[str, float]:
    """Inner-validation accuracy of ``cfg`` over its protocol's outer folds (test folds unread)."""
    ws = ws if ws is not None else load_run_windows(cfg)
    cfg = copy.deepcopy(cfg)
    p, t = fill_dataset_split(cfg), cfg.train
    # the scoring groups are held out at a fixed share whatever the candidate's own val_fraction
    folds = make_folds(ws, p.name, n_folds=p.n_folds, val_fraction=SCORE_FRACTION, seed=cfg.seed,
                       train_groups=p.train_groups, val_groups=p.val_groups, test_groups=p.test_groups,
                       group_key=p.group_key, score_where=p.score_where)
    task = get_dataset(cfg.data.dataset, **cfg.data.dataset_kwargs).task(cfg.data.task)
    per_record = bool(task and task.score_per_record)  # e.g. CinC 2017: scored by one decision per recording
    accs, bals, epochs, ys, probas, records = [], [], [], [], [], []
    for k, fold in enumerate(folds):
        seed_everything(cfg.seed + k)
        # the fold's validation groups score the candidate; early stopping gets its own groups,
        # held out of the rest of the training side, so the score is not the stopping criterion's
        # (a baseline fits on both parts of the split, i.e. the whole training side)
        tr, es = inner_validation(ws, fold.train, fold.leakage_key, t.val_fraction, cfg.seed + k)
        res, proba = fit_and_predict(cfg, ws, tr, es, fold.val)
        epochs.append(len(res.history))
        m = compute_metrics(ws.y[fold.val], proba, ws.classes)
        accs.append(m["accuracy"])
        bals.append(m["balanced_accuracy"])
        ys.append(ws.y[fold.val])
        probas.append(proba)
        if per_record:
            records.append(record_metrics(ws.y[fold.val], proba, ws.groups("record")[fold.val], ws.classes,
                                          task.challenge_score))
    pooled = compute_metrics(np.concatenate(ys), np.concatenate(probas), ws.classes)["per_class"]
    out = {"acc": float(np.mean(accs)), "acc_sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
           "bal": float(np.mean(bals)), "epochs": float(np.mean(epochs)), "folds": len(folds),
           "per_class": {c: (v["recall"], v["precision"], v["support"]) for c, v in pooled.items()}}
    if records:  # the decision per recording, over every outer fold's validation records pooled
        out["per_record"] = pooled_record_metrics(records, ws.classes, task.challenge_score)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="base run config (YAML)")
    ap.add_argument("--candidate", action="append", default=[], help="JSON overrides of the base config")
    ap.add_argument("--per-class", nargs="*", default=[], metavar="CLASS",
                    help="also print these classes' sensitivity / +P, pooled over the inner validation windows")
    args = ap.parse_args(argv)
    # as written: a candidate's overrides (e.g. {"defaults": "plain"}) apply before the dataset's
    # recommended settings fill what is left unset
    base = RunConfig.read_yaml(args.config, check=True)
    cache: dict[str, object] = {}
    for text in args.candidate or ["{}"]:
        over = json.loads(text)
        merged = merge_overrides(base, over)
        named = (over.get("model") or {})
        if "name" in named and named["name"] != (base.get("model") or {}).get("name") and "kwargs" not in named:
            merged["model"]["kwargs"] = {}  # another model does not take the base model's options (as compare does)
        cfg = RunConfig.from_dict(merged).validate()
        key = json.dumps(cfg.to_dict()["data"], sort_keys=True)
        if key not in cache:
            cache = {key: load_run_windows(cfg)}  # one window set at a time in memory
        t0 = time.perf_counter()
        s = inner_scores(cfg, cache[key])
        print(f"{cfg.model.name:10s} inner-val acc {s['acc']:.3f} +- {s['acc_sd']:.3f}  bal {s['bal']:.3f}  "
              f"epochs {s['epochs']:.0f}  ({time.perf_counter() - t0:.0f} s, {s['folds']} folds)  {text}", flush=True)
        if "per_record" in s:
            r = s["per_record"]
            print(f"    per recording ({r['n_records']} validation records pooled): accuracy {r['accuracy']:.3f}"
                  + (f", challenge F1 {r['challenge_f1']:.3f}" if "challenge_f1" in r else ""), flush=True)
        for c in args.per_class:
            se, pp, n = s["per_class"][c]
            print(f"    {c}: Se {100 * se:.1f} / +P {100 * pp:.1f}  ({n} windows)", flush=True)


if __name__ == "__main__":
    main()
