"""A scikit-learn estimator around any registered model, for sklearn pipelines, ``cross_val_score``
with groups, and MOABB.

``X`` is ``(n_windows, n_channels, n_times)`` float; a 2-D ``(n, n_times)`` array is read as one
channel. Labels may be any hashable values; ``classes_`` keeps their order. ``fit(ws)`` with a
:class:`~biodecode.windows.WindowSet` takes its windows, its class names as labels (so ``classes_``
and ``predict`` give names) and its sampling rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .baselines import baseline_proba, fit_baseline, is_baseline, make_baseline
from .models import create_model
from .training import TrainConfig, fit, predict_proba, seed_everything
from .errors import ConfigError, DataFormatError
from .windows import WindowSet


def _windows_if_epochs(X: Any) -> Any:
    """``mne.Epochs`` become a WindowSet (labels from their event names); anything else is returned."""
    from .io.mne_objects import is_mne_epochs, windows_from_epochs

    return windows_from_epochs(X) if is_mne_epochs(X) else X


class BiosignalClassifier(ClassifierMixin, BaseEstimator):
    """Deep-network classifier with the estimator API (``fit``, ``predict``, ``predict_proba``, ``score``).

    model/model_kwargs: a name from ``biodecode.models.list_models()`` or a classical baseline from
    ``biodecode.baselines.list_baselines()`` (``csp-lda``, ``ts-lr``, ...) and its options; sfreq: sampling
    rate in Hz (sets sfreq-dependent kernels; taken from a WindowSet when None); the rest configures
    :class:`TrainConfig`.

    early_stopping: ``"auto"`` (default) holds out a stratified share ``val_fraction`` for early
    stopping (best weights restored) only when that share has at least ``MIN_VAL_WINDOWS`` windows;
    otherwise it trains on all windows for ``max_epochs``. On a handful of validation windows the
    validation loss is noise: with 45 windows (9 held out) its minimum often falls on the first
    epoch, and restoring those near-initial weights left a "fitted" estimator at chance on its own
    training windows. ``True`` / ``False`` force it on / off.
    """

    MIN_VAL_WINDOWS = 50

    def __init__(self, model: str = "eegnet", model_kwargs: dict[str, Any] | None = None, sfreq: float | None = None,
                 max_epochs: int = 100, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 1e-2,
                 val_fraction: float = 0.2, patience: int = 20, class_weights: str = "balanced",
                 sampler: str = "shuffle", augment: list[dict[str, Any]] | None = None, scheduler: str = "cosine",
                 accelerator: str = "auto", random_state: int = 0, early_stopping: bool | str = "auto",
                 logit_offsets: dict[str, float] | None = None):
        self.model = model
        self.model_kwargs = model_kwargs
        self.sfreq = sfreq
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.patience = patience
        self.class_weights = class_weights
        self.sampler = sampler
        self.augment = augment
        self.scheduler = scheduler
        self.accelerator = accelerator
        self.random_state = random_state
        self.early_stopping = early_stopping
        self.logit_offsets = logit_offsets

    def _as_3d(self, X: Any, reset: bool) -> np.ndarray:
        X = check_array(X, allow_nd=True, dtype=np.float32, ensure_min_samples=1)
        if X.ndim == 2:
            X = X[:, None, :]
        if X.ndim != 3:
            raise DataFormatError(f"X must be (n_windows, n_channels, n_times) or (n, n_times), got shape {X.shape}")
        if reset:
            self.n_features_in_ = X.shape[1] if X.shape[1] > 1 else X.shape[2]
            self.input_shape_ = X.shape[1:]
        elif X.shape[1:] != self.input_shape_:
            raise DataFormatError(f"X has windows of shape {X.shape[1:]}, the model was fitted on {self.input_shape_}")
        return X

    def fit(self, X: Any, y: Any = None) -> "BiosignalClassifier":
        """Fit on windows ``X (n, C, T)`` and labels ``y (n,)``, or on a WindowSet or ``mne.Epochs``
        ``X`` alone (labels from its event names)."""
        self.sfreq_ = self.sfreq
        X = _windows_if_epochs(X)
        ch_names, metadata_channels = None, None  # known only from a WindowSet (or mne.Epochs)
        if isinstance(X, WindowSet):
            if y is not None:
                raise ConfigError("BiosignalClassifier.fit: give a WindowSet alone (its labels are used), not with y")
            self.sfreq_ = self.sfreq if self.sfreq is not None else X.sfreq
            ch_names, metadata_channels = list(X.ch_names), X.info.get("metadata_channels")
            X, y = np.asarray(X.X), X.labels
        if y is None:
            raise ConfigError("BiosignalClassifier requires y to be passed, but the target y is None (give one label per window, or a WindowSet as X)")
        if np.asarray(X).ndim == 2:
            X, y = validate_data(self, X, y, dtype=np.float32)
        X = self._as_3d(X, reset=True)
        y = np.asarray(y)
        check_classification_targets(y)
        if len(y) != len(X):
            raise DataFormatError(f"X has {len(X)} windows but y has {len(y)} labels")
        self._encoder = LabelEncoder().fit(y)
        self.classes_ = self._encoder.classes_
        yi = self._encoder.transform(y).astype(np.int64)
        n_classes = max(2, len(self.classes_))
        tr, va = np.arange(len(yi)), np.arange(0)
        if is_baseline(self.model):  # a classical pipeline: no epochs, no early stopping
            self.early_stopped_ = False
            self.module_ = fit_baseline(make_baseline(self.model, self.sfreq_ or 1.0, metadata_channels, ch_names,
                                                      **(self.model_kwargs or {})), X, yi)
            self.history_ = []
            return self
        counts = np.bincount(yi)
        if self.early_stopping not in ("auto", True, False):
            raise ConfigError(f"BiosignalClassifier: early_stopping must be 'auto', True or False, got {self.early_stopping!r}")
        n_val = int(np.ceil(self.val_fraction * len(yi)))
        wanted = self.early_stopping is True or (self.early_stopping == "auto" and n_val >= self.MIN_VAL_WINDOWS)
        self.early_stopped_ = bool(wanted and self.val_fraction > 0 and len(yi) >= 10 and counts.min() >= 2
                                   and len(counts) > 1)
        if self.early_stopped_:
            split = StratifiedShuffleSplit(n_splits=1, test_size=self.val_fraction, random_state=self.random_state)
            tr, va = next(split.split(np.zeros(len(yi)), yi))
        config = TrainConfig(max_epochs=self.max_epochs, batch_size=self.batch_size, lr=self.lr,
                             weight_decay=self.weight_decay, val_fraction=self.val_fraction if self.early_stopped_ else 0.0,
                             patience=self.patience,
                             class_weights=self.class_weights, sampler=self.sampler, augment=list(self.augment or []),
                             scheduler=self.scheduler, accelerator=self.accelerator, seed=self.random_state,
                             logit_offsets=dict(self.logit_offsets or {}))
        seed_everything(self.random_state)  # weights are initialised from the run's seed
        net = create_model(self.model, X.shape[1], X.shape[2], n_classes, sfreq=self.sfreq_, **(self.model_kwargs or {}))
        result = fit(net, X[tr], yi[tr], X[va], yi[va], config, n_classes=n_classes, ch_names=ch_names,
                     classes=list(self.classes_))
        self.module_ = result.model
        self.history_ = result.history
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of ``classes_``."""
        check_is_fitted(self, "module_")
        X = _windows_if_epochs(X)
        if isinstance(X, WindowSet):
            X = np.asarray(X.X)
        if np.asarray(X).ndim == 2:
            X = validate_data(self, X, dtype=np.float32, reset=False)
        X = self._as_3d(X, reset=False)
        if is_baseline(self.model):
            proba = baseline_proba(self.module_, X, max(2, len(self.classes_)))
        else:
            proba = predict_proba(self.module_, X)
        return proba[:, : len(self.classes_)] / proba[:, : len(self.classes_)].sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (class names when fitted on a WindowSet)."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Accuracy on ``(X, y)``, or on a WindowSet or ``mne.Epochs`` ``X`` alone."""
        X = _windows_if_epochs(X)
        if isinstance(X, WindowSet):
            X, y = np.asarray(X.X), X.labels
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
