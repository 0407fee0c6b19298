"""How far each MIT-BIH DS2 record's normal beats lie from the DS1 (training) patients' beats.

    BIODECODE_DATA_DIR=../shared/data python -m benchmarks.ecg_record_similarity [--k 10] [--max-beats 600]

For every DS2 record present: the share of the DS1 labels among the ``k`` nearest DS1 beats of its
normal (N) beats (Euclidean distance between the raw beat windows of the section's preset, lead 0,
in mV), the median distance to the nearest one, and the correlation of its mean N beat with DS1's
mean N, V and F beats. A record whose normal beats look like DS1's ventricular or fusion beats is
one a network trained on DS1 will misread whatever its settings: this is the evidence behind the
record-117 note in docs/accuracy.md. Uses labels of the test records only to pick their N beats,
never to train or tune anything. The DS1 record that holds most F beats (208: 372 of DS1's 429)
gets its own mean N and mean F columns, since a network's F class is, in effect, that patient's
fusion beats.

    python -m benchmarks.ecg_record_similarity --centred

compares each beat minus its own record's median beat (the second channel of the
preset, ``alignment: median-append``) instead: how far 117's normal beats lie from DS1's once each
patient is read against their own typical beat.

    python -m benchmarks.ecg_record_similarity --run RUN_DIR

reads a trained run's predictions instead and splits each test record's normal beats by whether a
V beat comes just before or after them (the RR channels differ there): record 233's misread beats
are the ones with ordinary RR intervals.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

from biodecode.config import RunConfig
from biodecode.datasets.mitdb import DS1
from biodecode.loading import load_windows
from benchmarks.model_accuracy import SECTIONS


def similarity(k: int = 10, max_beats: int = 600, data_dir: str | None = None,
               records: list[str] | None = None, centred: bool = False) -> pd.DataFrame:
    """One row per DS2 record (of ``records``, default every record present) with its N beats'
    nearest-DS1-neighbour label shares, nearest distance and mean-beat correlations. ``centred``:
    every record's beats minus that record's median beat first (the preset's ``median-append``
    channel), on the DS1 and the DS2 side alike."""
    from sklearn.neighbors import NearestNeighbors

    d = SECTIONS["ecg-inter-patient"].config()  # the preset the section measures with
    d["data"].update(subjects=list(records) if records else ["local"], data_dir=data_dir)
    cfg = RunConfig.from_dict(d).validate()
    ws = load_windows(cfg.data.window_spec(), cfg.data.subjects, data_dir=cfg.data.data_dir)
    X = np.asarray(ws.X)[:, 0]
    label = np.asarray(ws.classes)[ws.y]
    record = ws.metadata["subject"].astype(str).to_numpy()
    if centred:
        from biodecode.alignment import median_window

        for rec in np.unique(record):
            rows = np.flatnonzero(record == rec)
            X[rows] -= median_window(X[rows][:, None])[0]
    train = np.isin(record, DS1)
    nn = NearestNeighbors(n_neighbors=k).fit(X[train])
    means = {c: X[train & (label == c)].mean(0) for c in ("N", "V", "F")}
    f_counts = pd.Series(record[train & (label == "F")]).value_counts()  # DS1's F beats: mostly one patient
    if len(f_counts):
        f_rec = f_counts.index[0]
        means[f"F of {f_rec}"] = X[(record == f_rec) & (label == "F")].mean(0)
        means[f"N of {f_rec}"] = X[(record == f_rec) & (label == "N")].mean(0)
    rows = []
    for rec in sorted(set(record[~train]), key=int):
        beats = X[(record == rec) & (label == "N")]
        if not len(beats):
            continue
        dist, idx = nn.kneighbors(beats[:max_beats])
        near = label[train][idx].ravel()
        mean = beats.mean(0)
        rows.append({"record": rec, "N beats": len(beats),
                     **{f"neighbours {c}": float(np.mean(near == c)) for c in ("N", "S", "V", "F")},
                     "nearest distance (median)": float(np.median(dist[:, 0])),
                     **{f"r with DS1 mean {c}": float(np.corrcoef(mean, m)[0, 1]) for c, m in means.items()}})
    return pd.DataFrame(rows).set_index("record")


def n_accuracy_by_neighbour(true: np.ndarray, predicted: np.ndarray) -> dict[str, tuple[float, int]]:
    """Share of one record's normal beats (labels in time order) called N, split by whether the beat
    follows a V beat (a long RR before it: the compensatory pause), precedes one, or neither:
    ``{"after V": (share, n), "before V": ..., "neither": ..., "all": ...}``."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    after = np.r_[False, true[:-1] == "V"]
    before = np.r_[true[1:] == "V", False]
    n = true == "N"
    out = {}
    for name, mask in (("after V", n & after), ("before V", n & before), ("neither", n & ~after & ~before), ("all", n)):
        out[name] = (float(np.mean(predicted[mask] == "N")) if mask.any() else float("nan"), int(mask.sum()))
    return out


def beat_errors(run_dir: str) -> pd.DataFrame:
    """Per test record of a MIT-BIH run folder (its ``predictions.csv``): :func:`n_accuracy_by_neighbour`
    and what the misread normal beats were called."""
    pred = pd.read_csv(os.path.join(run_dir, "predictions.csv"), dtype={"subject": str}).sort_values("window")
    rows = []
    for rec, g in pred.groupby("subject", sort=False):
        split = n_accuracy_by_neighbour(g["true"].to_numpy(), g["predicted"].to_numpy())
        wrong = g[(g["true"] == "N") & (g["predicted"] != "N")]["predicted"].value_counts()
        rows.append({"record": rec, **{f"N right, {k} (n)": f"{v:.2f} ({n})" for k, (v, n) in split.items()},
                     "misread N called": ", ".join(f"{c} {k}" for c, k in wrong.items()) or "-"})
    return pd.DataFrame(rows).set_index("record").sort_index(key=lambda i: i.astype(int))


def _print_markdown(table: pd.DataFrame, cell) -> None:
    """``table`` (indexed by record) as a Markdown table; ``cell(column, value)`` formats a value."""
    print("| record | " + " | ".join(table.columns) + " |")
    print("|---" * (len(table.columns) + 1) + "|")
    for rec, row in table.iterrows():
        print(f"| {rec} | " + " | ".join(cell(c, v) for c, v in row.items()) + " |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--max-beats", type=int, default=600)
    ap.add_argument("--data-dir", default=os.environ.get("BIODECODE_DATA_DIR"))
    ap.add_argument("--run", help="a run folder of `biodecode train --config configs/ecg-inter-patient.yaml`: "
                                  "print its test records' normal beats called N, by neighbouring V beats")
    ap.add_argument("--centred", action="store_true",
                    help="compare each record's beats minus its own median beat (the preset's second channel)")
    args = ap.parse_args(argv)
    if args.run:
        _print_markdown(beat_errors(args.run), lambda column, v: str(v))
        return
    _print_markdown(similarity(args.k, args.max_beats, args.data_dir, centred=args.centred),
                    lambda column, v: f"{v:.0f}" if column == "N beats" else f"{v:.2f}")

if __name__ == "__main__":
    main()
