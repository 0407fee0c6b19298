"""Evaluation protocols as split generators that make leakage impossible.

Every fold names the unit that must never be on both sides (``leakage_key``: trial, subject,
session, run or record), and :func:`check_fold` verifies it, together with the rule that the
validation set used for early stopping is carved from the training side only.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold

from ..errors import ConfigError
from ..windows import WindowSet


log = logging.getLogger(__name__)


class LeakageError(ConfigError):
    """A split puts the same trial/subject/session/record on both sides."""


@dataclass(frozen=True)
class Fold:
    """Indices into a WindowSet. ``val`` is disjoint from ``train`` and comes from the training side.
    ``val_unscored``: the validation groups' windows left out of scoring (``score_where``); no network
    reads them, a classical baseline (which has no validation) fits on them with the rest."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    leakage_key: str
    val_unscored: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


PROTOCOLS = {
    "within-subject": "per subject, stratified k-fold over trials (no trial on both sides)",
    "cross-subject": "grouped k-fold over subjects (no subject on both sides)",
    "loso": "leave one subject out",
    "cross-session": "per subject, leave one session out",
    "cross-run": "per subject, leave one run out",
    "inter-patient": "fixed train and test record lists (e.g. MIT-BIH DS1 -> DS2, de Chazal et al. 2004)",
    "fixed-split": "fixed lists of named groups (subjects, records, sessions or runs) for training, optionally "
                   "validation, and test",
    "intra-patient": "OPTIMISTIC: stratified k-fold over windows pooled from all records; the same patient is on "
                     "both sides (only each trial/beat stays on one side)",
}


def _stratified_group_split(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list:
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ConfigError(f"need at least 2 groups to split, got {n_groups}")
    n_splits = min(n_splits, n_groups)
    values, counts = np.unique(y, return_counts=True)
    rare = {int(v): int(c) for v, c in zip(values, counts) if c < n_splits}
    if rare:
        log.warning("class(es) %s have fewer windows (%s) than the %d folds; some test folds will not contain them",
                    sorted(rare), [rare[k] for k in sorted(rare)], n_splits)
    with warnings.catch_warnings():  # said once above, in our words
        warnings.filterwarnings("ignore", message="The least populated class in y has only")
        return list(StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(
            np.zeros(len(y)), y, groups))


def inner_validation(ws: WindowSet, train: np.ndarray, key: str, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into (train, val), holding out whole ``key`` groups when there are
    at least two (else whole trials). The validation set never touches the test side."""
    if val_fraction <= 0 or len(train) < 4:
        return train, train[:0]
    groups = ws.groups(key)[train]
    if len(np.unique(groups)) < 2:
        key, groups = "trial", ws.groups("trial")[train]
    if len(np.unique(groups)) < 2:
        return train, train[:0]
    n_splits = max(2, int(round(1 / val_fraction)))
    tr, va = _stratified_group_split(ws.y[train], groups, n_splits, seed)[0]
    return train[tr], train[va]


def _subject_folds(ws: WindowSet, key: str, leave_one_out: bool, n_folds: int, seed: int, label: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    subjects = ws.groups("subject")
    for s in sorted(set(subjects), key=str):
        idx = np.flatnonzero(subjects == s)
        groups = ws.groups(key)[idx]
        if len(np.unique(groups)) < 2:
            raise ConfigError(f"{label}: subject {s} has only one {key} ({groups[0]!r}); nothing to hold out")
        if leave_one_out:
            splits = LeaveOneGroupOut().split(idx, groups=groups)
        else:
            try:
                splits = _stratified_group_split(ws.y[idx], groups, n_folds, seed)
            except ValueError as exc:
                raise ConfigError(f"{label}: cannot make {n_folds} folds for subject {s}: {exc}") from None
        for k, (tr, te) in enumerate(splits):
            held = f"{key} {groups[te][0]} held out" if leave_one_out else f"fold {k + 1}"
            out.append((f"subject {s}, {held}", idx[tr], idx[te]))
    return out


def _fixed_split(ws: WindowSet, protocol: str, train_groups: Sequence[str] | None, val_groups: Sequence[str] | None,
                 test_groups: Sequence[str] | None, key: str, val_fraction: float, seed: int) -> Fold:
    """One fold from named lists of ``key`` groups; groups listed but absent from the windows are
    named in a warning (e.g. records not downloaded), an empty side is an error."""
    if not train_groups or not test_groups:
        raise ConfigError(f"{protocol}: give the train and test groups (--train-groups/--test-groups, or "
                          f"protocol.train_groups/test_groups), e.g. subjects 1-10 and 11-14")
    sides = {"train": [str(g) for g in train_groups], "test": [str(g) for g in test_groups],
             "validation": [str(g) for g in val_groups or []]}
    for a, b in (("train", "test"), ("train", "validation"), ("validation", "test")):
        both = sorted(set(sides[a]) & set(sides[b]), key=lambda g: (len(g), g))
        if both:
            raise LeakageError(f"{protocol}: {key}s {both} are in both the {a} and the {b} list")
    groups = ws.groups(key)
    present = set(groups.tolist())
    shown = " ".join(sorted(present, key=lambda g: (len(g), g)))
    idx = {}
    for side, names in sides.items():
        missing = [g for g in names if g not in present]
        if missing:
            log.warning("%s: listed for %s but without windows here: %s %s (present: %s)", protocol, side, key,
                        " ".join(missing), shown)
        idx[side] = np.flatnonzero(np.isin(groups, names))
        if names and not len(idx[side]):  # a side that was named (validation is optional) must have windows
            raise ConfigError(f"{protocol}: the {side} side is empty: none of the {key}s {' '.join(names)} has windows "
                              f"(present: {shown})")
    if val_groups:
        tr, va = idx["train"], idx["validation"]
    else:
        tr, va = inner_validation(ws, idx["train"], key, val_fraction, seed)
    fold = Fold(protocol, tr, va, idx["test"], key)
    check_fold(ws, fold)
    return fold


def scored_windows(ws: WindowSet, where: dict[str, Sequence[str]] | None) -> np.ndarray:
    """Boolean mask ``(n,)`` of the windows a protocol scores: those whose metadata ``column`` is one
    of the listed values, for every column in ``where`` (all windows when ``where`` is empty)."""
    keep = np.ones(len(ws), dtype=bool)
    for column, values in (where or {}).items():
        if column not in ws.metadata.columns:
            raise ConfigError(f"protocol.score_where: no metadata column {column!r}; have {list(ws.metadata.columns)}")
        have = ws.metadata[column].astype(str).to_numpy()
        wanted = [str(v) for v in values]
        if not np.isin(wanted, have).any():
            raise ConfigError(f"protocol.score_where: no window has {column} in {wanted}; "
                              f"values present: {sorted(set(have.tolist()))}")
        keep &= np.isin(have, wanted)
    return keep


def describe_scoring(where: dict[str, Sequence[str]]) -> str:
    """``where`` (see :func:`scored_windows`) in words for reports: ``condition in ['imagined']``."""
    return ", ".join(f"{column} in {list(values)}" for column, values in where.items())


def _with_unscored(ws: WindowSet, scored: np.ndarray, fold: Fold) -> Fold:
    """``fold``, made on the scored windows only (``scored`` maps its indices into ``ws``), back in
    ``ws``'s indices. Validation and test stay the scored windows; the training side also takes the
    unscored windows of its subjects whose ``leakage_key`` group is on neither the validation nor the
    test side (a training subject's real-movement trials; within a subject, its real-movement trials
    beside the imagined training trials); the validation groups' unscored windows go to ``val_unscored``."""
    groups, subjects = ws.groups(["subject", fold.leakage_key]), ws.groups("subject")
    unscored = np.ones(len(ws), dtype=bool)
    unscored[scored] = False
    train, val, test = scored[fold.train], scored[fold.val], scored[fold.test]
    in_val = np.isin(groups, np.unique(groups[val]))
    held = in_val | np.isin(groups, np.unique(groups[test]))
    extra = np.flatnonzero(unscored & ~held & np.isin(subjects, np.unique(subjects[train])))
    return Fold(fold.name, np.sort(np.concatenate([train, extra])), val, test, fold.leakage_key,
                np.flatnonzero(unscored & in_val))


def make_folds(
    ws: WindowSet,
    protocol: str,
    *,
    n_folds: int = 5,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_groups: Sequence[str] | None = None,
    test_groups: Sequence[str] | None = None,
    group_key: str | None = None,
    val_groups: Sequence[str] | None = None,
    score_where: dict[str, Sequence[str]] | None = None,
) -> list[Fold]:
    """Folds for ``protocol`` (see ``PROTOCOLS``); each is checked with :func:`check_fold`.

    With ``score_where`` (see :func:`scored_windows`) the folds are made on the matching windows,
    which alone are validated and tested; each training side also reads its subjects' other windows
    outside the validation and test groups (e.g. a training subject's real-movement trials beside the
    imagined ones; within a subject, its real-movement trials)."""
    kw = dict(n_folds=n_folds, val_fraction=val_fraction, seed=seed, train_groups=train_groups,
              test_groups=test_groups, group_key=group_key, val_groups=val_groups)
    if not score_where:
        return _make_folds(ws, protocol, **kw)
    # the split is the one the scored windows alone would get (so it is the same whatever else is
    # read), made on their labels and groups without touching X (a zero-stride stand-in)
    scored = np.flatnonzero(scored_windows(ws, score_where))
    shadow = WindowSet(np.broadcast_to(np.float32(0), (len(scored), ws.n_channels, 1)), np.asarray(ws.y)[scored],
                       ws.metadata.iloc[scored].reset_index(drop=True), list(ws.classes), ws.sfreq, list(ws.ch_names))
    folds = [_with_unscored(ws, scored, f) for f in _make_folds(shadow, protocol, **kw)]
    for fold in folds:
        check_fold(ws, fold)
    return folds


def _make_folds(
    ws: WindowSet,
    protocol: str,
    *,
    n_folds: int,
    val_fraction: float,
    seed: int,
    train_groups: Sequence[str] | None,
    test_groups: Sequence[str] | None,
    group_key: str | None,
    val_groups: Sequence[str] | None,
) -> list[Fold]:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; available: {sorted(PROTOCOLS)}")
    raw: list[tuple[str, np.ndarray, np.ndarray]]
    if protocol == "intra-patient":
        key = "trial"
        raw = [(f"intra-patient fold {k + 1}", tr, te)
               for k, (tr, te) in enumerate(_stratified_group_split(ws.y, ws.groups("trial"), n_folds, seed))]
    elif protocol == "within-subject":
        key = "trial"
        raw = _subject_folds(ws, "trial", False, n_folds, seed, protocol)
    elif protocol in ("cross-session", "cross-run"):
        key = "session" if protocol == "cross-session" else "run"
        raw = _subject_folds(ws, key, True, n_folds, seed, protocol)
    elif protocol in ("cross-subject", "loso"):
        key = "subject"
        groups = ws.groups("subject")
        if len(np.unique(groups)) < 2:
            raise ConfigError(f"{protocol}: needs at least 2 subjects, got {len(np.unique(groups))}")
        splits = (LeaveOneGroupOut().split(groups, groups=groups) if protocol == "loso"
                  else _stratified_group_split(ws.y, groups, n_folds, seed))
        raw = [(f"{protocol} fold {k + 1}" + (f" (subject {groups[te][0]})" if protocol == "loso" else ""), tr, te)
               for k, (tr, te) in enumerate(splits)]
    else:  # inter-patient, fixed-split
        return [_fixed_split(ws, protocol, train_groups, val_groups, test_groups,
                             group_key or ("record" if protocol == "inter-patient" else "subject"), val_fraction, seed)]
    folds = []
    for k, (name, tr, te) in enumerate(raw):
        tr2, va = inner_validation(ws, np.asarray(tr), key, val_fraction, seed + k)
        fold = Fold(name, tr2, va, np.asarray(te), key)
        check_fold(ws, fold)
        folds.append(fold)
    return folds


def check_fold(ws: WindowSet, fold: Fold) -> None:
    """Raise LeakageError if indices overlap or a ``leakage_key`` group sits on both sides."""
    sets = {"train": set(fold.train.tolist()), "val": set(fold.val.tolist()) | set(fold.val_unscored.tolist()),
            "test": set(fold.test.tolist())}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if sets[a] & sets[b]:
            raise LeakageError(f"{fold.name}: windows {sorted(sets[a] & sets[b])[:5]} are in both {a} and {b}")
    groups = ws.groups(fold.leakage_key)
    fit_side = set(groups[np.concatenate([fold.train, fold.val, fold.val_unscored])].tolist())
    shared = fit_side & set(groups[fold.test].tolist())
    if shared:
        raise LeakageError(f"{fold.name}: {fold.leakage_key} {sorted(shared)[:5]} on both the training and the test side")
    if not len(fold.train) or not len(fold.test):
        raise ConfigError(f"{fold.name}: empty {'train' if not len(fold.train) else 'test'} side")
