"""Classical baselines as scikit-learn pipelines on windows ``X (n, C, T)``, registered by name so
that ``biodecode train --model csp-lda`` (and every protocol and report) runs them in the same
harness as the networks. Built from the libraries users already trust:

- ``csp-lda``: MNE's CSP (6 log-variance components, Ledoit-Wolf regularised covariances) +
  scikit-learn LDA (Blankertz et al., IEEE Signal Process. Mag. 25(1) 2008).
- ``fbcsp-lda``: filter-bank CSP (Ang et al., IJCNN 2008): 9 band-pass bands of 4 Hz from 4 to
  40 Hz, CSP (4 components) per band, the 8 features with the highest mutual information with
  the label (fitted on the training side only), LDA.
- ``ts-lr``: pyRiemann OAS covariances -> tangent space at the Riemannian mean -> logistic
  regression (Barachant et al., IEEE TBME 59(4) 2012).
- ``mdm``: pyRiemann OAS covariances -> minimum distance to the Riemannian class means
  (Barachant et al. 2012).
- ``td-lda``: the EMG time-domain features of :mod:`biodecode.features` (Hudgins et al. 1993),
  standardised, + LDA.
- ``rr-morph-lda``: ECG beats (de Chazal et al., IEEE TBME 51(7) 2004, simplified): RR intervals
  and their ratios to the local rhythm, QRS and T-wave samples, standardised, LDA with equal class
  priors. Needs the RR metadata channels (``data.metadata_channels=[rr_pre_s, rr_post_s,
  rr_local_s]``).
- ``hrv-rf``: ECG rhythm (e.g. atrial fibrillation in CinC 2017's windows of several seconds): R
  peaks by XQRS, then RR-interval irregularity, beat-to-beat and P-region similarity and signal
  quality per window (:func:`biodecode.ecg.rhythm_features`, 18 features), a random forest with
  class weights balanced per tree (the feature-based CinC 2017 entries, e.g. Zabihi et al. 2017).

The covariance pipelines (``csp-lda``, ``fbcsp-lda``, ``ts-lr``, ``mdm``) first divide by the training
windows' overall standard deviation (``_Rescale``):
the methods are scale-invariant, but covariances of signals in volts (1e-10) trip numerical
tolerances.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

from .errors import ConfigError, DataFormatError


class _Rescale(BaseEstimator, TransformerMixin):
    """Divide by the training windows' standard deviation (a float64 copy)."""

    def fit(self, X, y=None):
        self.scale_ = float(np.std(np.asarray(X, dtype=np.float64))) or 1.0
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float64) / self.scale_


class FilterBankCSP(BaseEstimator, TransformerMixin):
    """Band-pass each window into ``bands`` (Hz, zero-phase Butterworth order 4) and concatenate
    the log-variance CSP features fitted per band: ``(n, C, T) -> (n, len(bands) * n_components)``."""

    def __init__(self, sfreq: float = 250.0, bands: tuple[tuple[float, float], ...] | None = None,
                 n_components: int = 4):
        self.sfreq = sfreq
        self.bands = bands
        self.n_components = n_components

    def _bands(self) -> list[tuple[float, float]]:
        bands = self.bands or tuple((lo, lo + 4.0) for lo in range(4, 40, 4))
        nyq = self.sfreq / 2
        usable = [(lo, hi) for lo, hi in bands if hi < nyq]
        if not usable:
            raise ConfigError(f"fbcsp-lda: no band of {bands} fits below the Nyquist frequency {nyq:g} Hz")
        return usable

    def _filtered(self, X: np.ndarray):
        from scipy.signal import butter, sosfiltfilt

        for lo, hi in self._bands():
            sos = butter(4, [lo, hi], btype="bandpass", fs=self.sfreq, output="sos")
            yield sosfiltfilt(sos, X, axis=-1)

    def fit(self, X, y):
        from mne.decoding import CSP

        self.csps_ = [CSP(n_components=self.n_components, reg="ledoit_wolf", log=True).fit(Xb, y)
                      for Xb in self._filtered(np.asarray(X, dtype=np.float64))]
        return self

    def transform(self, X):
        return np.concatenate([csp.transform(Xb) for csp, Xb in zip(self.csps_, self._filtered(np.asarray(X, np.float64)))],
                              axis=1)


def _csp_lda(sfreq: float, n_components: int = 6) -> Pipeline:
    from mne.decoding import CSP
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    return Pipeline([("rescale", _Rescale()), ("csp", CSP(n_components=n_components, reg="ledoit_wolf", log=True)),
                     ("lda", LinearDiscriminantAnalysis())])


def _fbcsp_lda(sfreq: float, n_components: int = 4, k_best: int = 8) -> Pipeline:
    from functools import partial

    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.feature_selection import SelectKBest, mutual_info_classif

    return Pipeline([("rescale", _Rescale()), ("fbcsp", FilterBankCSP(sfreq=sfreq, n_components=n_components)),
                     ("select", SelectKBest(partial(mutual_info_classif, random_state=0), k=k_best)),
                     ("lda", LinearDiscriminantAnalysis())])


def _ts_lr(sfreq: float, C: float = 1.0) -> Pipeline:
    from pyriemann.estimation import Covariances
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression

    return Pipeline([("rescale", _Rescale()), ("cov", Covariances(estimator="oas")), ("ts", TangentSpace(metric="riemann")),
                     ("lr", LogisticRegression(C=C, max_iter=1000))])


def _mdm(sfreq: float) -> Pipeline:
    from pyriemann.classification import MDM
    from pyriemann.estimation import Covariances

    return Pipeline([("rescale", _Rescale()), ("cov", Covariances(estimator="oas")), ("mdm", MDM(metric="riemann"))])


def _td_lda(sfreq: float, threshold: float = 0.0) -> Pipeline:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from .features import emg_features

    return Pipeline([("features", FunctionTransformer(emg_features, kw_args={"threshold": threshold})),
                     ("scale", StandardScaler()), ("lda", LinearDiscriminantAnalysis())])


def beat_features(X: np.ndarray, sfreq: float, r_offset_s: float = 0.25, n_rr: int = 3,
                  leads: Sequence[int] = (0,)) -> np.ndarray:
    """de Chazal-style features of heartbeat windows ``X (n, C, T)`` whose last ``n_rr`` channels
    are the RR metadata channels (pre, post, local average RR in s; with ``n_rr=6`` followed by the
    same three divided by the record's mean RR; with ``n_rr=8`` then pre- and post-RR over the local
    RR, ignored here since they are computed below; ``data.metadata_channels``) and whose first channel
    is the ECG lead with the R peak ``r_offset_s`` after the window start.

    Returns ``(n, 5 + 17 L)`` (``+ 3`` with ``n_rr`` 6 or 8) for ``L = len(leads)`` ECG channels:
    pre-RR, post-RR, local RR, pre/local and post/local (the ratios normalise each patient's heart
    rate away); per lead the QRS complex (R - 50 ms to R + 100 ms) at 10 samples and the T wave
    (R + 150 ms to R + 450 ms) at 7 samples, each relative to the beat's baseline (the median of the
    window's first 100 ms); then the per-record relative RR. de Chazal et al. read both leads of
    MIT-BIH (``leads=(0, 1)`` where the windows hold two)."""
    X = np.asarray(X, dtype=np.float64)
    if n_rr not in (3, 6, 8):
        raise ConfigError(f"rr-morph-lda: n_rr must be 3 (RR in s), 6 (and relative to the record's mean) or 8 "
                          f"(and pre/post over local RR, which it computes itself), got {n_rr}")
    if X.ndim != 3 or X.shape[1] < n_rr + 1:
        raise DataFormatError(f"rr-morph-lda: expected beats with an ECG lead and {n_rr} RR channels, got {X.shape}")
    if not leads or any(not 0 <= i < X.shape[1] - n_rr for i in leads):
        raise DataFormatError(f"rr-morph-lda: leads {list(leads)} are not among the {X.shape[1] - n_rr} channels "
                              f"before the {n_rr} RR channels")
    rr = X[:, -n_rr:, :].mean(axis=-1)
    pre, post, local = rr[:, 0], rr[:, 1], np.maximum(rr[:, 2], 1e-3)
    r = int(round(r_offset_s * sfreq))

    def at(ecg: np.ndarray, base: np.ndarray, t0: float, t1: float, k: int) -> np.ndarray:
        idx = np.clip(np.round(r + np.linspace(t0, t1, k) * sfreq).astype(int), 0, ecg.shape[1] - 1)
        return ecg[:, idx] - base

    cols = [pre, post, local, pre / local, post / local]
    for lead in leads:
        ecg = X[:, lead, :]
        base = np.median(ecg[:, : max(1, int(0.1 * sfreq))], axis=1, keepdims=True)
        cols += [at(ecg, base, -0.05, 0.10, 10), at(ecg, base, 0.15, 0.45, 7)]
    if n_rr >= 6:  # with 8, the last two (pre / local, post / local) repeat columns computed above
        cols.append(rr[:, 3:6])
    return np.column_stack(cols)


class BalancedLDA(BaseEstimator):
    """LDA with equal class priors (de Chazal et al. weighted each class equally in training), so
    that the rare S, V and F beats are not drowned by N."""

    def fit(self, X, y):
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        classes = np.unique(y)
        self.lda_ = LinearDiscriminantAnalysis(priors=np.full(len(classes), 1 / len(classes))).fit(X, y)
        self.classes_ = self.lda_.classes_
        return self

    def predict_proba(self, X):
        return self.lda_.predict_proba(X)

    def predict(self, X):
        return self.lda_.predict(X)


def ecg_leads(ch_names: Sequence[str] | None, metadata_channels: Sequence[str] | None) -> list[int]:
    """Indices of the raw ECG leads among a run's window channels ``ch_names``: neither metadata
    channels nor the centred copies ``<lead>-median`` of ``alignment: median-append``; ``[0]``
    when the names are unknown."""
    if not ch_names:
        return [0]
    meta = set(metadata_channels or [])
    return [i for i, c in enumerate(ch_names) if c not in meta and not str(c).endswith("-median")] or [0]


def _rr_morph_lda(sfreq: float, r_offset_s: float = 0.25, metadata_channels: Sequence[str] | None = None,
                  ch_names: Sequence[str] | None = None) -> Pipeline:
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    n_rr = len(metadata_channels) if metadata_channels else len(RR_CHANNELS)
    kw = {"sfreq": sfreq, "r_offset_s": r_offset_s, "n_rr": n_rr, "leads": ecg_leads(ch_names, metadata_channels)}
    return Pipeline([("features", FunctionTransformer(beat_features, kw_args=kw)),
                     ("scale", StandardScaler()), ("lda", BalancedLDA())])


def _hrv_rf(sfreq: float, n_estimators: int = 300, min_samples_leaf: int = 2) -> Pipeline:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer

    from .ecg import rhythm_features

    return Pipeline([("features", FunctionTransformer(rhythm_features, kw_args={"sfreq": sfreq})),
                     ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                     ("rf", RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=min_samples_leaf,
                                                   class_weight="balanced_subsample", random_state=0, n_jobs=1))])


#: The window metadata an ``rr-morph-lda`` run needs as channels (``data.metadata_channels``),
#: optionally followed by the same intervals divided by the record's mean RR.
RR_CHANNELS = ["rr_pre_s", "rr_post_s", "rr_local_s"]
RR_REL_CHANNELS = ["rr_pre_rel", "rr_post_rel", "rr_local_rel"]
RR_LOCAL_CHANNELS = ["rr_pre_local", "rr_post_local"]

#: Baselines that read window metadata appended as channels: name -> (the column lists it accepts,
#: what they are). The pipeline is told which list the run has (``make_baseline(metadata_channels=)``).
NEEDS_METADATA: dict[str, tuple[list[list[str]], str]] = {
    "rr-morph-lda": ([RR_CHANNELS, RR_CHANNELS + RR_REL_CHANNELS, RR_CHANNELS + RR_REL_CHANNELS + RR_LOCAL_CHANNELS],
                     "the RR intervals")}

#: name -> (builder(sfreq, **kwargs), signal family, reference)
BASELINES: dict[str, tuple[Callable[..., Pipeline], str, str]] = {
    "csp-lda": (_csp_lda, "EEG", "Blankertz et al. 2008, IEEE Signal Process. Mag. 25(1):41"),
    "fbcsp-lda": (_fbcsp_lda, "EEG", "Ang et al. 2008, IJCNN (filter-bank CSP)"),
    "ts-lr": (_ts_lr, "EEG", "Barachant et al. 2012, IEEE TBME 59(4):920 (tangent space)"),
    "mdm": (_mdm, "EEG", "Barachant et al. 2012, IEEE TBME 59(4):920 (minimum distance to mean)"),
    "td-lda": (_td_lda, "EMG", "Hudgins et al. 1993, IEEE TBME 40(1):82 (time-domain features)"),
    "rr-morph-lda": (_rr_morph_lda, "ECG", "de Chazal et al. 2004, IEEE TBME 51(7):1196 (RR + morphology, LDA)"),
    "hrv-rf": (_hrv_rf, "ECG", "RR irregularity (Tateno & Glass 2001, Med. Biol. Eng. Comput. 39:664) and beat and "
                               "signal-quality features + random forest, as the feature-based CinC 2017 entries "
                               "(e.g. Zabihi et al. 2017, CinC 44)"),
}


def is_baseline(name: str) -> bool:
    return name in BASELINES


def list_baselines() -> list[str]:
    return sorted(BASELINES)


def make_baseline(name: str, sfreq: float, metadata_channels: Sequence[str] | None = None,
                  ch_names: Sequence[str] | None = None, **kwargs: Any) -> Pipeline:
    """The unfitted pipeline ``name`` for windows at ``sfreq`` Hz; ``kwargs`` are its options
    (e.g. ``n_components`` for ``csp-lda``); ``metadata_channels`` the run's metadata channels, for
    the pipelines that read them (``NEEDS_METADATA``), and ``ch_names`` the windows' channels (which
    of them are ECG leads, for ``rr-morph-lda``). Unknown names and options are ConfigErrors."""
    import inspect

    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; available: {', '.join(list_baselines())}")
    build = BASELINES[name][0]
    given = ("sfreq", "metadata_channels", "ch_names")  # from the run, not options
    params = inspect.signature(build).parameters
    allowed = [p for p in params if p not in given]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(f"baseline {name!r} has no option(s) {unknown}; it takes {allowed}")
    if name in NEEDS_METADATA and metadata_channels:
        kwargs["metadata_channels"] = list(metadata_channels)
    if "ch_names" in params and ch_names is not None:
        kwargs["ch_names"] = list(ch_names)
    return build(float(sfreq), **kwargs)


def _quiet():
    """MNE reports each covariance estimate at INFO on standard output; the library stays quiet."""
    import mne

    return mne.utils.use_log_level("WARNING")


def check_baseline(name: str, kwargs: dict[str, Any], metadata_channels: list[str]) -> None:
    """A run config's baseline settings, checked before any data is read: the name and options
    (as :func:`make_baseline` does) and the metadata channels the pipeline reads."""
    make_baseline(name, 100.0, **kwargs)
    if name in NEEDS_METADATA and list(metadata_channels) not in NEEDS_METADATA[name][0]:
        options, what = NEEDS_METADATA[name]
        cols = options[0]
        raise ConfigError(f"{name} reads {what} from metadata channels: set data.metadata_channels={cols} "
                          f"(--set data.metadata_channels=[{','.join(cols)}])"
                          + "".join(f" or {o}" for o in options[1:]) + f", got {metadata_channels}")


def fit_baseline(pipeline: Pipeline, X: Any, y: np.ndarray) -> Pipeline:
    """Fit on windows ``X (n, C, T)`` (read into memory once) and integer labels ``y``."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise DataFormatError(f"baseline: expected windows (n, channels, times), got {X.shape}")
    if len(np.unique(y)) < 2:
        raise ConfigError("baseline: the training side holds a single class; nothing to discriminate")
    with _quiet():
        return pipeline.fit(X, y)


def baseline_proba(pipeline: Pipeline, X: Any, n_classes: int) -> np.ndarray:
    """``(n, n_classes)`` probabilities, columns by class index (classes absent from training: 0)."""
    X = np.asarray(X, dtype=np.float32)
    with _quiet():
        proba = pipeline.predict_proba(X)
    out = np.zeros((len(X), n_classes), dtype=np.float64)
    out[:, np.asarray(pipeline.classes_, dtype=int)] = proba
    return out


BASELINE_FORMAT = "biodecode-baseline/2"
#: The file a baseline's run writes (a network's is ``model.pt``).
BASELINE_FILE = "model.skops"
#: Types a baseline's file may hold beyond those skops trusts itself: the pipelines of
#: :data:`BASELINES` and nothing else (a test saves and loads every one). Loading a file that
#: names any other type is refused, so a model file cannot run code of its choosing.
TRUSTED_TYPES = frozenset({
    "biodecode.baselines._Rescale", "biodecode.baselines.FilterBankCSP", "biodecode.baselines.BalancedLDA",
    "biodecode.baselines.beat_features", "biodecode.ecg.rhythm_features", "biodecode.features.emg_features",
    "mne.decoding.csp.CSP", "pyriemann.classification.MDM", "pyriemann.estimation.Covariances",
    "pyriemann.tangentspace.TangentSpace", "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.tree._tree.Tree", "functools.partial", "numpy.dtype",
})


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers, for the JSON of a model file's metadata."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save_baseline(path: Any, pipeline: Pipeline, name: str, kwargs: dict[str, Any], **meta: Any) -> Any:
    """Write a fitted baseline and the same metadata a network's model file carries (atomically),
    in skops' format: loading it builds only the types of :data:`TRUSTED_TYPES` (no pickle)."""
    import json

    import skops.io as sio

    from .atomic import atomic_path

    payload = {"format": BASELINE_FORMAT, "model_name": name, "pipeline": pipeline,
               "model_kwargs": json.dumps(dict(kwargs), default=_plain), "meta": json.dumps(meta, default=_plain)}
    with atomic_path(path) as tmp:
        sio.dump(payload, tmp)
    return path


def load_baseline(path: Any) -> tuple[Pipeline, dict[str, Any]]:
    """``(fitted pipeline, meta)`` from :func:`save_baseline`'s file. A file naming a type outside
    :data:`TRUSTED_TYPES`, or an earlier biodecode's pickle (``model.joblib``), is refused by name."""
    import json
    from pathlib import Path

    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix == ".joblib":
        raise DataFormatError(f"{path}: a baseline model file of an earlier biodecode, a pickle (loading one runs "
                              f"whatever code it holds); train the baseline again to get {BASELINE_FILE}, or, if you "
                              f"trust the file, read it yourself with joblib.load")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise DataFormatError(f"{path}: not a readable baseline model file (truncated or not skops?): {exc}") from None
    foreign = sorted(set(untrusted) - TRUSTED_TYPES)
    if foreign:
        raise DataFormatError(f"{path}: refused: the file names types that are no part of biodecode's baselines "
                              f"({', '.join(foreign)}); loading them could run any code")
    try:
        payload = sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise DataFormatError(f"{path}: not a readable baseline model file: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != BASELINE_FORMAT:
        raise DataFormatError(f"{path}: not a biodecode baseline model file")
    meta = dict(json.loads(payload["meta"]), model_name=payload["model_name"],
                model_kwargs=json.loads(payload["model_kwargs"]))
    return payload["pipeline"], meta
