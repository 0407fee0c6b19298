"""docs/accuracy.md: every model family beside the classical baselines on the development data.

    BIODECODE_DATA_DIR=../shared/data python -m benchmarks.model_accuracy [--sections NAME ...]
        [--seeds 0] [--results benchmarks/accuracy_results] [--out docs/accuracy.md] [--render-only]
        [--models NAME ...]   # only these models, merged into the section's stored results

Each section is one ``biodecode compare`` (:func:`biodecode.evaluation.compare.compare_models`):
several models, one dataset, task and protocol, per-subject scores and paired Wilcoxon tests. The
section's ``compare.json`` (and the runs' per-class metrics) are kept under ``--results``, its plots
under ``docs/img/accuracy/``; the document is rendered from every section found there, so one
section can be re-measured without re-running the others (``--render-only`` measures nothing: it
rewrites the document and redraws the plots from the stored results). Subjects are the ones present
in the data folder (``subjects: local``), never a fixed list. Settings that differ from a model's own defaults are the ones chosen by nested validation
(``benchmarks/tune_defaults.py``: scored on groups held out of each training side, never on a test
fold) and are printed in each section.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tune_defaults import merge_overrides
from biodecode.config import RunConfig
from biodecode.evaluation.compare import compare_models

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


@dataclass
class Section:
    title: str
    preset: str  # a file in configs/: the tuned settings every model of the section runs with
    models: list[str]
    protocol_text: str
    overrides: dict[str, Any] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    per_class: list[str] = field(default_factory=list)  # classes whose sensitivity / +P the section shows
    unmeasured: dict[str, str] = field(default_factory=dict)  # why a model of the section has no result yet
    # baselines of other sections (same subjects and test windows, other settings) that this section's
    # networks are also tested against, subject by subject: {section: [baseline, ...]}
    versus: dict[str, list[str]] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        import yaml

        return merge_overrides(yaml.safe_load((CONFIGS / self.preset).read_text()), self.overrides)


EEG_TEXT = ("early stopping off (a fixed budget of epochs on every training subject); per-subject Euclidean "
            "alignment (He & Wu 2019) for every model, baselines included; {band}; windows "
            "0-3 s after the cue")
DOC_DEVICE = "CPU, 2 cores"  # where the document's times were measured unless a model's "device" says otherwise
#: The imagery task alone (the preset trains on real and imagined movement)
IMAGERY_ONLY = {"data": {"task": "left-right-imagery", "alignment_by": ["subject"]},
                "protocol": {"name": "loso", "score_where": None}}
#: 0-3 s windows and no augmentation: what the EEG preset held before it took ShallowConvNet's 0-4 s
#: windows and mirrored training windows (2026-11-27); the sections measured before keep them
THREE_S = {"data": {"tmax": 3.0}, "train": {"augment": []}}
ECG_TEXT = ("train on DS1 (22 records), all of them, for a fixed number of epochs (no early stopping), test on the "
            "DS2 records present (one score per record); RR intervals, absolute and divided by the record's mean RR, "
            "as extra input channels for both models; each beat's deviation from its record's median beat as a "
            "second channel beside the raw lead (`alignment: median-append`, no labels used; `rr-morph-lda` reads "
            "the raw lead)")
ECG_PUBLISHED = ["de Chazal et al. 2004 (LDA, all 22 DS2 records): SVEB Se 75.9 / +P 38.5, VEB Se 77.7 / +P 81.9; "
                 "Mousavi & Afghah 2019: SVEB near 89 / 93, VEB near 99 / 99"]
SECTIONS: dict[str, Section] = {
    "eeg-mi-loso-real-imagined": Section(
        "PhysioNet MI, left vs right fist, trained on real and imagined movement, tested on imagined, leave one "
        "subject out", "eeg-mi-cross-subject.yaml", ["conformer", "shallow", "ts-lr", "csp-lda", "mdm"],
        "leave-one-subject-out over every subject present; every model trains on the training subjects' real and "
        "imagined left/right fist trials (twice the trials of imagery alone) and is tested on the held-out "
        "subject's imagined trials only (`task: left-right`, `protocol.score_where: {condition: imagined}`); "
        "per-subject Euclidean alignment, each condition on its own; {band}; windows 0-3 s "
        "after the cue; early stopping off",
        overrides=THREE_S,
        versus={"eeg-imagery-loso": ["ts-lr", "csp-lda", "mdm"]},
        published=["none on this protocol; the imagery-only section below is the same test"]),
    "eeg-mi-loso-real-imagined-4s": Section(
        "PhysioNet MI, left vs right fist, trained on real and imagined movement, tested on imagined, leave one "
        "subject out, windows 0-4 s", "eeg-mi-cross-subject.yaml", ["shallow", "ts-lr", "csp-lda", "mdm"],
        "as the section above (the same subjects, folds and test trials), but every window 0-4 s after the cue "
        "(the whole 4.1 s trial; 0-3 s above): nested validation on held-out training subjects scored ShallowConvNet "
        "0.665 with 4 s windows against 0.643 with 3 s, and the baselines lower with 4 s (ts-lr 0.621 against 0.633, "
        "csp-lda 0.604 against 0.630), so the baselines keep 3 s and are also tested here on the same 4 s windows; "
        "{band}; early stopping off",
        overrides={"data": {"tmax": 4.0}, "train": {"augment": []}},
        versus={"eeg-mi-loso-real-imagined": ["ts-lr", "csp-lda", "mdm"], "eeg-imagery-loso": ["ts-lr", "csp-lda", "mdm"]},
        published=["none on this protocol"]),
    "eeg-mi-loso-real-imagined-4s-mirror": Section(
        "PhysioNet MI, left vs right fist, trained on real and imagined movement, tested on imagined, leave one "
        "subject out, windows 0-4 s, ShallowConvNet trained with mirrored windows", "eeg-mi-cross-subject.yaml",
        ["shallow", "ts-lr"],
        "as the 0-4 s section above (the same subjects, folds, windows and test trials), with the `mirror` "
        "augmentation for the network (each training window, with probability 0.5, mirrored across the midline, "
        "C3 <-> C4, with the other hand's label): nested validation on held-out training subjects scored "
        "ShallowConvNet 0.685 with it against 0.665 without (with 0-3 s windows 0.649 against 0.643; the Conformer "
        "0.664 against 0.665), ts-lr 0.621 and csp-lda 0.604 on the same windows; the baselines take no "
        "augmentation, so they are those of the 0-4 s section (ts-lr, run again here beside the network, "
        "reproduces it exactly) and are tested below from there; {band}; early stopping off; three seeds "
        "of the network, chosen before any was read",
        overrides={"data": {"tmax": 4.0}, "train": {"augment": [{"name": "mirror", "p": 0.5}]}},
        versus={"eeg-mi-loso-real-imagined-4s": ["ts-lr", "csp-lda", "mdm", "shallow"],
                "eeg-mi-loso-real-imagined": ["ts-lr", "csp-lda", "mdm"], "eeg-imagery-loso": ["ts-lr", "csp-lda", "mdm"]},
        published=["none on this protocol"]),
    "eeg-imagery-loso": Section(
        "PhysioNet MI, imagined left vs right fist, leave one subject out", "eeg-mi-cross-subject.yaml",
        ["shallow", "eegnet", "fbcnet", "eegtcnet", "atcnet", "eegnex", "deep4", "conformer", "lstm", "transformer",
         "ts-lr", "csp-lda", "mdm"],
        "leave-one-subject-out over every subject present; " + EEG_TEXT,
        overrides=merge_overrides(IMAGERY_ONLY, THREE_S),
        published=["EEGNet 82.4% cross-subject with 105 subjects (Wang et al. 2020): not comparable, 7x more "
                   "training subjects; MOABB (Jayaram & Barachant 2018) finds tangent-space pipelines ahead of deep "
                   "nets on small sets"]),
    "eeg-mi-within-real-imagined": Section(
        "PhysioNet MI, left vs right fist, trained on real and imagined movement, tested on imagined, within "
        "subject", "eeg-mi-cross-subject.yaml", ["conformer", "shallow", "ts-lr", "csp-lda", "mdm"],
        "per subject, stratified 5-fold over the 45 imagined trials (about 36 to train, 9 to test per fold); every "
        "fold also trains on the subject's 45 real-movement trials (`task: left-right`, `protocol.score_where: "
        "{condition: imagined}`); per-subject Euclidean alignment, each condition on its own; {band}; "
        "windows 0-3 s after the cue; early stopping off",
        overrides={"protocol": {"name": "within-subject", "n_folds": 5}, **THREE_S},
        versus={"eeg-imagery-within": ["ts-lr", "csp-lda", "mdm"]},
        published=["none on this protocol; the imagery-only section below is the same test"]),
    "eeg-mi-within-real-imagined-4s-mirror": Section(
        "PhysioNet MI, left vs right fist, trained on real and imagined movement, tested on imagined, within "
        "subject, with the recommended ShallowConvNet settings", "eeg-mi-cross-subject.yaml", ["shallow", "ts-lr"],
        "as the within-subject section above (the same subjects, folds and test trials), but with what `physionet-mi` "
        "recommends for ShallowConvNet whatever the protocol, though it was chosen across subjects: windows 0-4 s "
        "after the cue and mirrored training windows (ts-lr takes no augmentation and reads the same 0-4 s windows); "
        "per-subject Euclidean alignment, each condition on its own; {band} (the preset's since 2026-11-27; the "
        "section above ran zero-phase); early stopping off",
        overrides={"protocol": {"name": "within-subject", "n_folds": 5}},
        versus={"eeg-mi-within-real-imagined": ["shallow", "ts-lr", "csp-lda", "mdm"]},
        published=["none on this protocol"]),
    "eeg-imagery-within": Section(
        "PhysioNet MI, imagined left vs right fist, within subject", "eeg-mi-cross-subject.yaml",
        ["shallow", "eegnet", "fbcnet", "eegtcnet", "atcnet", "eegnex", "deep4", "conformer", "lstm", "transformer",
         "ts-lr", "csp-lda", "mdm"],
        "per subject, stratified 5-fold over trials (45 trials: about 36 to train, 9 to test per fold); " + EEG_TEXT,
        overrides=merge_overrides(merge_overrides(IMAGERY_ONLY, THREE_S),
                                  {"protocol": {"name": "within-subject", "n_folds": 5, "score_where": None}}),
        published=["MOABB's within-session benchmark (Jayaram & Barachant 2018, PhysioNet MI left/right imagery): "
                   "tangent space + LR ahead of CSP + LDA; deep nets behind with so few trials"]),
    "emg-cross-day": Section(
        "Long-term Myo sEMG, 8 motions, across days", "emg-cross-day.yaml", ["emgnet", "eegnet", "td-lda"],
        "per subject, leave one day out (the armband was put on anew each day); no early stopping (every training "
        "day trains); per-day Euclidean alignment from that day's unlabelled windows (a per-session "
        "normalisation) for every model, baseline included; `electrode_shift` augmentation for the networks; "
        "200 ms windows every 50 ms",
        published=["Kanoga et al. 2020: across-day accuracy drops by tens of points from about 80-90% within a day "
                   "(22 motions; not the same task)"]),
    "ecg-inter-patient-s-offset": Section(
        "MIT-BIH AAMI beats, inter-patient, the network's S logit raised by nested validation",
        "ecg-inter-patient.yaml", ["resnet1d", "rr-morph-lda"],
        ECG_TEXT + "; the network's S logit +2.0 once trained (`train.logit_offsets`, chosen by nested validation "
        "on DS1 from 0, 0.5, 1, 1.5, 2 and 3; the baseline keeps its own decision rule); three seeds of the network, "
        "chosen before any was read",
        versus={"ecg-inter-patient": ["resnet1d"]},
        published=ECG_PUBLISHED, per_class=["S", "V", "F"]),
    "ecg-inter-patient": Section(
        "MIT-BIH AAMI beats, inter-patient (DS1 -> DS2 records present)", "ecg-inter-patient.yaml",
        ["resnet1d", "rr-morph-lda"], ECG_TEXT,
        overrides={"train": {"logit_offsets": {"S": 0.0}}},  # measured before the S offset was chosen
        published=ECG_PUBLISHED, per_class=["S", "V", "F"]),
    "ecg-af-rhythm": Section(
        "CinC 2017 AF, single-lead rhythm, per recording (record-wise 5-fold)", "ecg-af-rhythm.yaml",
        ["resnet1d", "hrv-rf"],
        "record-wise 5-fold over the recordings present (stratified by class; no recording on both sides); each "
        "recording cut into 9 s windows without overlap, scored by one decision per recording (the mean of its "
        "windows' probabilities), so each subject below is a recording and its score 1 or 0; the challenge's F1 "
        "(the mean of the F1 of normal, AF and other) over all test recordings pooled; the band-pass of the "
        "dataset (0.5-40 Hz, causal) and the R-R interval as a second channel (`rr-channel`; `hrv-rf` reads the "
        "ECG lead and finds its own R peaks); settings from nested validation on the training records",
        published=["the challenge's best entries scored F1 0.83 on its hidden test set, trained on 8,528 recordings "
                   "(35x more; Clifford et al. 2017), many of them with hand-crafted RR and P-wave features, alone "
                   "or beside a network (e.g. Datta et al., Zabihi et al., Teijeiro et al., Hong et al., CinC 2017): "
                   "not comparable"]),
}


def _band(cfg: dict[str, Any]) -> str:
    """The band-pass a stored section ran, in words (``"8-32 Hz causal band-pass"``)."""
    steps = [st for st in cfg["data"].get("preprocessing") or [] if st.get("name") == "bandpass"]
    if not steps:
        return "no band-pass"
    st = steps[0]
    return f"{st['l_freq']:g}-{st['h_freq']:g} Hz {'causal' if st.get('causal') else 'zero-phase'} band-pass"


def _config(section: Section, data_dir: str | None) -> RunConfig:
    d = section.config()
    d["data"]["subjects"] = d["data"].get("subjects") or ["local"]  # load_windows takes those present
    d["data"]["data_dir"] = data_dir
    d.setdefault("model", {"name": section.models[0]})
    d["model"]["name"] = section.models[0]
    return RunConfig.from_dict(d).validate()


def measure(name: str, seeds: list[int], results: Path, data_dir: str | None, only: list[str] | None = None) -> None:
    """Run one section and keep its comparison, per-class metrics and plots. With ``only``, run just
    those models (with the section's first baseline beside a lone model, as a check that it
    reproduces) and merge them into the section's stored comparison, whose other models are kept
    (the first such run of a section stores what it measured)."""
    from biodecode.baselines import is_baseline
    from biodecode.evaluation.compare import merge_reports, write_comparison

    section = SECTIONS[name]
    stored = results / f"{name}.json"
    models = section.models
    if only:
        unknown = [m for m in only if m not in section.models]
        if unknown:
            raise SystemExit(f"{name}: {unknown} are not among the section's models {section.models}")
        models = list(only)
        if len(models) == 1:  # compare needs two: add the section's first baseline (or, for a baseline, its first model)
            anchor = next(m for m in section.models if is_baseline(m))
            models.append(anchor if models[0] != anchor else section.models[0])
    cfg = _config(section, data_dir)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / name
        rep = compare_models(cfg, models, out, seeds=seeds, progress=lambda m: print(m, flush=True))
        per_class, by_seed, selection = {}, {}, {}
        for model, runs in rep["runs"].items():
            run_folds = [json.loads((out / r / "metrics.json").read_text())["folds"] for r in runs]
            folds = [f for fs in run_folds for f in fs]
            selection[model] = _selection(out / runs[0], folds)
            per_class[model] = _pooled_per_class(folds, section.per_class)
            by_seed[model] = [_pooled_per_class(fs, section.per_class) for fs in run_folds]
        rep.update(per_class_pooled=per_class, per_class_by_seed=by_seed, selection=selection, config=cfg.to_dict(),
                   device={m: _device(is_baseline(m)) for m in models},
                   measured=time.strftime("%Y-%m-%d"), wall_seconds=time.perf_counter() - t0)
        if only and stored.exists():
            old = json.loads(stored.read_text())
            for m in rep["models"]:
                if m in old["models"] and rep["per_subject"][m] != old["per_subject"][m]:
                    print(f"note: {m} scores differently from the stored comparison (mean {rep['summary'][m]['mean']:.3f} "
                          f"vs {old['summary'][m]['mean']:.3f}); the new run replaces it", flush=True)
            merged = {**merge_reports(old, rep), **_merged_extras(old, rep)}
            merged["measured"] = _added(old["measured"], only, rep["measured"])
            merged["wall_seconds"] = old.get("wall_seconds", 0.0) + rep["wall_seconds"]
            rep = merged
            write_comparison(out, rep)
        _copy_plots(out, name)
    results.mkdir(parents=True, exist_ok=True)
    tmp_path = results / f".{name}.json.tmp"
    tmp_path.write_text(json.dumps(rep, indent=1))
    tmp_path.replace(results / f"{name}.json")


def _copy_plots(run_dir: Path, name: str) -> None:
    """The comparison's score and paired plots into docs/img/accuracy/ under the section's name."""
    img = ROOT / "docs" / "img" / "accuracy"
    img.mkdir(parents=True, exist_ok=True)
    for plot in ("scores.png", "paired.png"):
        shutil.copyfile(run_dir / plot, img / f"{name}-{plot}")


def redraw_plots(results: Path, sections: list[str]) -> None:
    """Draw the stored sections' plots again from their results (after a change to the plots)."""
    from biodecode.evaluation.compare import write_comparison

    for name in sections:
        stored = results / f"{name}.json"
        if stored.exists():
            with tempfile.TemporaryDirectory() as tmp:
                write_comparison(tmp, json.loads(stored.read_text()))
                _copy_plots(Path(tmp), name)


def _merged_extras(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The per-model entries this script adds to a comparison, ``old``'s joined with ``new``'s (``new``
    wins for its models). A remark says how an old result was obtained (another machine, a log), so
    it goes with the result that a new run replaces."""
    out = {key: {**old.get(key, {}), **new.get(key, {})}
           for key in ("per_class_pooled", "per_class_by_seed", "selection", "device")}
    out["remarks"] = {m: r for m, r in old.get("remarks", {}).items() if m not in new["models"]}
    return out


def _device(baseline: bool) -> str:
    """Where a model of this run trains: the GPU's name for a network when CUDA is there, else the CPU."""
    import os

    import torch

    if not baseline and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} GPU"
    return f"CPU, {os.cpu_count()} cores"


def _time_cell(rep: dict[str, Any], model: str) -> str:
    """Seconds per run, with the machine named when it is not the document's (a GPU's time is not a CPU's)."""
    device = rep.get("device", {}).get(model, DOC_DEVICE)
    return f"{rep['cost'][model]['seconds_per_run']:.0f}" + ("" if device == DOC_DEVICE else f" ({device})")


def _added(measured: str, models: list[str], day: str) -> str:
    """The section's "measured" note with ``models`` added on ``day``, joined to the last addition
    when that was on the same day: ``2026-11-20 (+ a, b on 2026-11-26)``."""
    tail = f" on {day})"
    if measured.endswith(tail):
        return f"{measured[:-len(tail)]}, {', '.join(models)}{tail}"
    return f"{measured} (+ {', '.join(models)} on {day})"


def _pooled_per_class(folds: list[dict[str, Any]], classes: list[str]) -> dict[str, dict[str, float]]:
    """Sensitivity (recall) and +P (precision) of each class in ``classes``, pooled over ``folds``
    (each fold weighted by the class's support in it)."""
    out = {}
    for c in classes:
        rows = [f["metrics"]["per_class"][c] for f in folds if c in f["metrics"]["per_class"]]
        if rows:
            support = sum(r["support"] for r in rows)
            out[c] = {k: sum(r[k] * r["support"] for r in rows) / max(1, support) for k in ("recall", "precision")}
    return out


def _selection(run: Path, folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Which epoch each fold kept and how fold 1's validation loss and accuracy moved (networks with
    early stopping only): the evidence for what model selection did."""
    import csv

    out: dict[str, Any] = {"best_epoch": [f["best_epoch"] for f in folds], "epochs_run": [f["epochs_run"] for f in folds]}
    log = run / "logs" / "csv" / "fold-1" / "metrics.csv"
    if log.exists():
        rows = [r for r in csv.DictReader(log.open()) if r.get("val_loss")]
        out["fold1_val"] = [{"epoch": int(float(r["epoch"])), "val_loss": float(r["val_loss"]),
                             "val_acc": float(r["val_acc"])} for r in rows]
    return out


def _names(subjects: list[str], most: int = 30) -> str:
    """The subjects by name, or the first and last few of a long list (CinC 2017: 240 recordings)."""
    if len(subjects) <= most:
        return ", ".join(subjects)
    return f"{', '.join(subjects[:5])}, ..., {', '.join(subjects[-2:])}; all in the stored results"


def _p(p: float | None) -> str:
    return "-" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def unmeasured_line(name: str, section: Section, measured: list[str]) -> str:
    """The sentence naming the section's models without a stored result, with the reason or the
    command that adds each; empty when every model is measured."""
    missing = [m for m in section.models if m not in measured]
    if not missing:
        return ""
    return "Not measured yet: " + "; ".join(
        f"`{m}` ({section.unmeasured[m]})" if m in section.unmeasured else
        f"`{m}` (`python -m benchmarks.model_accuracy --sections {name} --models {m}` adds it)" for m in missing) + "."


def versus_lines(results: Path, section: Section, rep: dict[str, Any]) -> list[str]:
    """The table testing this section's networks against the baselines of other sections it names
    (``Section.versus``), subject by subject on the subjects both have, with the settings of each."""
    from biodecode.baselines import is_baseline
    from biodecode.evaluation.compare import paired_test

    rows = []
    for other, baselines in section.versus.items():
        path = results / f"{other}.json"
        if not path.exists():
            continue
        them = json.loads(path.read_text())
        for net in (m for m in rep["models"] if not is_baseline(m)):
            for base in (b for b in baselines if b in them["models"]):
                subjects = [s for s in rep["per_subject"][net] if s in them["per_subject"][base]]
                a = np.array([rep["per_subject"][net][s] for s in subjects])
                b = np.array([them["per_subject"][base][s] for s in subjects])
                t = paired_test(a, b)
                rows.append(f"| `{net}` | `{base}`, {SECTIONS[other].title} | {t['mean_diff']:+.3f} | "
                            f"{_p(t['p'])} | {'-' if t['r'] is None else format(t['r'], '+.2f')} | {t['n']} |")
    if not rows:
        return []
    return ["", "The networks above against the baselines as measured in another section, with that section's "
                "settings (same subjects, same test trials):", "",
            "| network | baseline, section | mean difference | p (Wilcoxon) | r | subjects |", "|---|---|---|---|---|---|",
            *rows]


def render(results: Path) -> str:
    from biodecode.baselines import is_baseline

    lines = ["# Accuracy on the development data: deep models beside the classical baselines", "",
             "Generated by `python -m benchmarks.model_accuracy` (each section a `biodecode compare`); re-run it to "
             "re-measure. Scores are accuracies on test subjects, days or records never used for training or "
             "model selection; each subject's score pools its test windows, and the paired tests compare models "
             "subject by subject (Wilcoxon signed-rank, two-sided, with the rank-biserial effect size r: positive "
             "when the network scores higher). Settings that differ from the toolkit's plain defaults (the datasets' recommended settings, each section's preset) were chosen by "
             "nested validation (`benchmarks/tune_defaults.py`), never on a test fold. 2-core CPU.", ""]
    summary = ROOT / "benchmarks" / "accuracy_summary.md"  # the verdict, written from the sections below
    if summary.exists():
        lines += [summary.read_text().rstrip(), ""]
    for name, section in SECTIONS.items():
        path = results / f"{name}.json"
        if not path.exists():
            continue
        rep = json.loads(path.read_text())
        cfg = rep["config"]
        models = rep["models"]
        lines += [f"## {section.title}", "",
                  f"Measured {rep['measured']}; {len(rep['subjects'])} subjects ({_names(rep['subjects'])}); "
                  f"seeds {', '.join(map(str, rep['seeds']))}; {section.protocol_text.replace('{band}', _band(cfg))}.", "",
                  f"Training (networks): " + (f"{rep['train']['max_epochs']} epochs, no early stopping"
                                              if not rep["train"]["val_fraction"] else
                                              f"up to {rep['train']['max_epochs']} epochs, early stopping (patience "
                                              f"{rep['train']['patience']}) on {rep['train']['val_fraction']:.0%} of "
                                              f"the training groups")
                  + f", batch {rep['train']['batch_size']}, AdamW lr {rep['train']['lr']:g}, "
                  f"{rep['train']['scheduler']} schedule, class weights {rep['train']['class_weights']}"
                  + (f", augmentation {rep['train']['augment']}" if rep["train"]["augment"] else "")
                  + (f"; model options {cfg['model']['kwargs']}" if cfg["model"]["kwargs"] else "") + ".", "",
                  *(["| model | recordings decided right | challenge F1, all test recordings pooled | time per run (s) "
                     "| epochs per fold |", "|---|---|---|---|---|"] if rep.get("per_record_pooled") else
                    ["| model | accuracy, mean ± sd over subjects | time per run (s) | epochs per fold |",
                     "|---|---|---|---|"])]
        best = max(models, key=lambda m: rep["summary"][m]["mean"])
        for m in models:
            s, c = rep["summary"][m], rep["cost"][m]
            acc = f"{s['mean']:.3f} ± {s['sd']:.3f}" + (f" (sd of the mean over seeds {s['sd_over_seeds']:.3f})"
                                                      if s.get("sd_over_seeds") is not None else "")
            cells = [acc]
            if rep.get("per_record_pooled"):  # a decision per recording: the share right, and the challenge's score
                f1 = rep["per_record_pooled"][m].get("challenge_f1")
                cells = [f"{s['mean']:.3f}", f"{np.mean(f1):.3f}" if f1 else "-"]
            score = " | ".join(f"**{x}**" if m == best else x for x in cells)
            lines.append(f"| `{m}`{' (baseline)' if is_baseline(m) else ''} | {score} | {_time_cell(rep, m)} | "
                         + (f"{c['epochs']:.0f} |" if c["epochs"] else "- |"))
        missing = unmeasured_line(name, section, models)
        if missing:
            lines += ["", missing]
        for m, remark in rep.get("remarks", {}).items():  # how a result was obtained, where not as the others
            lines += ["", f"`{m}`: {remark}"]
        if section.per_class and rep.get("per_class_pooled"):
            cls = section.per_class
            lines += ["", "| model | " + " | ".join(f"{c} Se / +P" for c in cls) + " |", "|---" * (len(cls) + 1) + "|"]
            for m in models:
                pc = rep["per_class_pooled"].get(m, {})
                lines.append(f"| `{m}`{' (all seeds pooled)' if len(rep['seeds']) > 1 else ''} | " + " | ".join(
                    f"{100 * pc[c]['recall']:.1f} / {100 * pc[c]['precision']:.1f}" if c in pc else "-" for c in cls) + " |")
                seeds = rep.get("per_class_by_seed", {}).get(m, [])
                for seed, ps in zip(rep["seeds"], seeds if len(seeds) > 1 else []):
                    lines.append(f"| `{m}`, seed {seed} | " + " | ".join(
                        f"{100 * ps[c]['recall']:.1f} / {100 * ps[c]['precision']:.1f}" if c in ps else "-"
                        for c in cls) + " |")
        for m, sel in rep.get("selection", {}).items():
            if sel.get("fold1_val"):
                kept = ", ".join(str(e + 1) if e is not None else "-" for e in sel["best_epoch"])
                curve = "; ".join(f"{r['epoch'] + 1}: {r['val_loss']:.3f} / {r['val_acc']:.3f}" for r in sel["fold1_val"])
                lines += ["", f"Model selection of `{m}`: kept epoch {kept} (of {', '.join(map(str, sel['epochs_run']))} "
                              f"run); validation loss / accuracy by epoch: {curve}."]
        pairs = [t for t in rep["tests"] if is_baseline(t["b"]) and not is_baseline(t["a"])]
        pairs += [{**t, "a": t["b"], "b": t["a"], "mean_diff": -t["mean_diff"], "r": None if t["r"] is None else -t["r"]}
                  for t in rep["tests"] if is_baseline(t["a"]) and not is_baseline(t["b"])]  # network first
        if pairs and len(rep["subjects"]) > 1:
            lines += ["", "| network | baseline | mean difference | p (Wilcoxon) | r | subjects |", "|---|---|---|---|---|---|"]
            for t in pairs:
                lines.append(f"| `{t['a']}` | `{t['b']}` | {t['mean_diff']:+.3f} | {_p(t['p'])} | "
                             f"{'-' if t['r'] is None else format(t['r'], '+.2f')} | {t['n']} |")
            n = len(rep["subjects"])
            if n < 6:
                lines += ["", f"With {n} subjects no two-sided Wilcoxon p-value can fall below 0.05 (the smallest "
                              f"possible is 2 / 2^{n} = {2 / 2 ** n:.3f}); read the per-subject scores and r."]
        lines += versus_lines(results, section, rep)
        lines += ["", f"![scores](img/accuracy/{name}-scores.png) ![paired](img/accuracy/{name}-paired.png)", ""]
        if section.published:
            lines += ["Published, for orientation: " + "; ".join(section.published) + ".", ""]
    notes = ROOT / "benchmarks" / "accuracy_notes.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "accuracy_results"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "accuracy.md"))
    ap.add_argument("--render-only", action="store_true",
                    help="write the document from the stored results and draw their plots again; measure nothing")
    ap.add_argument("--models", nargs="+", help="measure only these models of the section and merge them into its "
                                                "stored results (the other models' results are kept)")
    args = ap.parse_args(argv)
    results = Path(args.results)
    if args.render_only:
        redraw_plots(results, args.sections)
    else:
        for name in args.sections:
            measure(name, args.seeds, results, args.data_dir, args.models)
            Path(args.out).write_text(render(results))  # the document follows every finished section
    text = render(results)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
