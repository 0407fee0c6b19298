"""MOABB's own CrossSubject evaluation next to biodecode's LOSO protocol, on the PhysioNet MI subjects in
the data folder (imagined left vs right fist), offline.

MOABB's ``PhysionetMI`` reads MNE's eegbci layout (``MNE-eegbci-data/files/eegmmidb/1.0.0/SNNN/``);
a temporary folder of links to ``$BIODECODE_DATA_DIR/eegmmidb/SNNN`` stands in for it (only the
hand runs 4, 8 and 12 are there, so the dataset's feet runs are switched off; the left/right paradigm
does not use them). Pipelines on MOABB's side: its tangent-space pipeline (OAS covariances, tangent
space, logistic regression), and biodecode's ts-lr and EEGNet through ``moabb_pipeline``. On
biodecode's side: the same models under ``--protocol loso`` with the toolkit's plain defaults (``defaults:
plain``: not the dataset's recommended alignment and band, which MOABB's side does not have). Both are
leave-one-subject-out; MOABB scores two classes with ROC AUC, so both sides report ROC AUC, and
biodecode's accuracy too.

    BIODECODE_DATA_DIR=../shared/data python -m benchmarks.moabb_physionet [--epochs 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def _links(data_dir: Path, tmp: Path) -> list[int]:
    target = tmp / "MNE-eegbci-data" / "files" / "eegmmidb" / "1.0.0"
    target.mkdir(parents=True)
    subjects = []
    for d in sorted((data_dir / "eegmmidb").glob("S[0-9][0-9][0-9]")):
        if all((d / f"{d.name}R{r:02d}.edf").is_file() for r in (4, 8, 12)):
            (target / d.name).symlink_to(d.resolve())
            subjects.append(int(d.name[1:]))
    return subjects


def _moabb_side(subjects: list[int], epochs: int, hdf5: Path) -> dict[str, dict[int, float]]:
    import moabb
    from moabb.datasets import PhysionetMI
    from moabb.evaluations import CrossSubjectEvaluation
    from moabb.paradigms import LeftRightImagery
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from biodecode.datasets.moabb_bridge import moabb_pipeline

    moabb.set_log_level("error")
    ds = PhysionetMI(imagined=True, executed=False)
    ds.feet_runs = []  # not in the data folder; LeftRightImagery uses the hand runs only
    ds.subject_list = subjects
    pipelines = {"ts-lr (MOABB's pipeline)": make_pipeline(Covariances("oas"), TangentSpace(metric="riemann"),
                                                            LogisticRegression(max_iter=1000)),
                 "ts-lr (biodecode's)": moabb_pipeline("ts-lr", sfreq=160.0),
                 "eegnet (biodecode's)": moabb_pipeline("eegnet", sfreq=160.0, max_epochs=epochs)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CrossSubjectEvaluation(paradigm=LeftRightImagery(), datasets=[ds], overwrite=True,
                                     hdf5_path=str(hdf5), n_jobs=1).process(pipelines)
    out: dict[str, dict[int, float]] = {}
    for name, group in res.groupby("pipeline"):
        out[str(name)] = {int(s): float(v) for s, v in group.groupby("subject")["score"].mean().items()}
    return out


def _biodecode_side(subjects: list[int], epochs: int, out: Path) -> dict[str, dict[str, dict[int, float]]]:
    from biodecode.config import RunConfig
    from biodecode.experiment import run_experiment

    res: dict[str, dict[str, dict[int, float]]] = {}
    for model in ("ts-lr", "eegnet"):
        cfg = RunConfig.from_dict({"data": {"dataset": "physionet-mi", "task": "left-right-imagery", "subjects": subjects},
                                   "model": {"name": model}, "protocol": {"name": "loso"},
                                   "train": {"max_epochs": epochs, "loggers": []}, "defaults": "plain"})
        rep = run_experiment(cfg, out / model)
        per = {"roc_auc": {}, "accuracy": {}}
        for fold in rep["folds"]:
            s = int(fold["test_groups"][0])
            per["roc_auc"][s] = fold["metrics"].get("roc_auc", float("nan"))
            per["accuracy"][s] = fold["metrics"]["accuracy"]
        res[model] = per
    return res


def _ms(d: dict[int, float]) -> str:
    v = np.array(list(d.values()))
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30, help="EEGNet epochs on both sides")
    args = ap.parse_args(argv)
    data_dir = Path(os.environ.get("BIODECODE_DATA_DIR", "../shared/data"))
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subjects = _links(data_dir, tmp)
        os.environ["MNE_DATASETS_EEGBCI_PATH"] = str(tmp)
        os.environ["MOABB_DOWNLOAD_PROVIDER"] = "upstream"  # the files are here: no NEMAR mirror look-up (offline)
        t0 = time.perf_counter()
        moabb_res = _moabb_side(subjects, args.epochs, tmp / "moabb.h5")
        t1 = time.perf_counter()
        ours = _biodecode_side(subjects, args.epochs, tmp / "runs")
        t2 = time.perf_counter()
    lines.append(f"PhysioNet MI imagined left/right, {len(subjects)} subjects ({', '.join(map(str, subjects))}), "
                 f"leave one subject out; EEGNet {args.epochs} epochs. MOABB side {t1 - t0:.0f} s, biodecode side "
                 f"{t2 - t1:.0f} s.")
    lines.append("")
    lines.append("| model | MOABB CrossSubject: ROC AUC (MOABB's epochs: 8-32 Hz, 0-3 s) | biodecode LOSO: ROC AUC "
                 "(its windows: 4-38 Hz causal, 0-3 s) | biodecode LOSO: accuracy |")
    lines.append("|---|---|---|---|")
    theirs = moabb_res["ts-lr (MOABB's pipeline)"]
    lines.append(f"| ts-lr, MOABB's own pipeline | {_ms(theirs)} | | |")
    for model in ("ts-lr", "eegnet"):
        in_moabb = moabb_res[model + " (biodecode's)"]
        lines.append(f"| {model} | {_ms(in_moabb)} | {_ms(ours[model]['roc_auc'])} | {_ms(ours[model]['accuracy'])} |")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
