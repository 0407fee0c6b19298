"""Fit a model on windows with Lightning: the same call runs on this CPU, one GPU, or many GPUs
and machines (``strategy="ddp"``, or under ``torchrun``)."""

from __future__ import annotations

import copy
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import nn

from ..errors import ConfigError
from ..models.base import shift_logits
from ..threads import numpy_blas_single_thread
from .checkpoint import SafeCheckpointIO
from .config import TrainConfig
from .data import make_loader
from .module import BiosignalModule

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """model: best weights restored, eval mode; history: one dict per epoch
    (``epoch, train_loss, val_loss, val_acc, lr``); best_epoch / best_val_loss: where the restored
    weights come from (None without validation data)."""

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    world_size: int = 1


class _History(Callback):
    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        m = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch, "lr": trainer.optimizers[0].param_groups[0]["lr"]}
        for k in ("train_loss", "val_loss", "val_acc"):
            if k in m:
                row[k] = float(m[k])
        self.rows.append(row)


class _EpochReport(Callback):
    """Calls ``report(row)`` on the main process after each epoch with that epoch's history row."""

    def __init__(self, history: _History, report: Callable[[dict[str, float]], None]) -> None:
        self.history, self.report = history, report

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero and self.history.rows:
            self.report(dict(self.history.rows[-1]))


class _BestWeights(Callback):
    """Keeps the weights of the epoch with the lowest validation loss and restores them at the end."""

    def __init__(self) -> None:
        self.best_loss = float("inf")
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or "val_loss" not in trainer.callback_metrics:
            return
        loss = float(trainer.callback_metrics["val_loss"])
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, trainer.current_epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in pl_module.model.state_dict().items()}

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.best_state is not None:
            pl_module.model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_loss, self.best_epoch, self.best_state = state["best_loss"], state["best_epoch"], state["best_state"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all processes and data-loader workers) in one place."""
    L.seed_everything(seed, workers=True, verbose=False)


def resolve_precision(precision: str) -> str:
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def class_weights_for(y: np.ndarray, n_classes: int, mode: str) -> torch.Tensor | None:
    """``"balanced"``: inverse-frequency weights ``n / (K * count_k)``; ``"sqrt"``: their square
    root (a rare class counts more, but less than balanced: fewer false alarms of it); classes
    absent from ``y`` get weight 0; ``"none"``: ``None``."""
    if mode == "none":
        return None
    counts = np.bincount(np.asarray(y), minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    if mode == "sqrt":
        w = np.sqrt(w)
    return torch.tensor(w, dtype=torch.float32)


def to_channels_last(model: nn.Module) -> nn.Module:
    """Store ``model``'s 4-D (conv2d) weights channels-last, in place. A weight whose layout is
    ambiguous (e.g. ``(F, 1, 1, K)``: contiguous in both formats) keeps the standard strides, which
    are the ones autograd gives its gradient; otherwise DDP warns that gradient and bucket strides
    differ and copies them on every step."""
    model.to(memory_format=torch.channels_last)
    for p in model.parameters():
        if p.dim() == 4 and p.is_contiguous() and p.stride() != torch.empty(p.shape, device="meta").stride():
            p.data = p.data.clone(memory_format=torch.contiguous_format)
    return model


def training_class_weights(y_train: np.ndarray, n_classes: int, config: TrainConfig) -> torch.Tensor | None:
    """The loss's class weights ``(n_classes,)``: ``config.class_weights`` of the class frequencies
    the training loader serves. A class-balanced sampler serves every class present equally often,
    so its weights are equal (0 for a class absent from ``y_train``): the two never balance twice."""
    served = y_train if config.sampler == "shuffle" else np.unique(np.asarray(y_train))
    return class_weights_for(served, n_classes, config.class_weights)


@contextmanager
def _quiet_lightning(verbose: bool) -> Iterator[None]:
    """Lightning logs its set-up ("GPU available: ...") at INFO; the library stays quiet unless asked."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Lightning 2.6 with torch >= 2.10: a deprecation inside Lightning, not in our code
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=r".*`validation_step` but have no `val_dataloader`.*")
            yield
    finally:
        logger.setLevel(level)


def _devices_and_strategy(config: TrainConfig) -> tuple[Any, str]:
    devices, strategy = config.devices, config.strategy
    local_world = os.environ.get("LOCAL_WORLD_SIZE")  # set by torchrun
    if devices == "auto" and local_world and int(local_world) > 1:
        devices = int(local_world)
        if strategy == "auto":
            strategy = "ddp"
    return devices, strategy


def fit(
    model: nn.Module,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    config: TrainConfig | None = None,
    *,
    n_classes: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume_from: str | os.PathLike | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    loggers: list[Any] | None = None,
    ch_names: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
) -> FitResult:
    """Train ``model`` on ``X_train (n, C, T)``, ``y_train (n,)``; early-stop on ``(X_val, y_val)``.

    With ``checkpoint_dir`` a ``last.ckpt`` is written (atomically) after every epoch;
    ``resume_from`` continues from such a file (read with ``weights_only=True``). ``on_epoch(row)``
    is called after each epoch with its history row (``epoch, train_loss, val_loss, val_acc, lr``).
    ``loggers``: Lightning loggers that receive the losses and accuracy per epoch. ``ch_names``
    and ``classes``: the windows' channel and class names, which some augmentations read (``mirror``).
    """
    config = config or TrainConfig()
    if len(X_train) == 0:
        raise ConfigError("fit: the training set is empty")
    n_classes = n_classes or getattr(model, "n_classes", None) or int(np.max(y_train)) + 1
    offsets = None
    if config.logit_offsets:  # refused before training, not after it: unknown classes, a model it cannot fold into
        offsets = _offset_vector(config.logit_offsets, classes, n_classes)
        shift_logits(copy.deepcopy(model), offsets)
    seed_everything(config.seed)
    has_val = X_val is not None and len(X_val) > 0
    if config.channels_last:
        to_channels_last(model)
    module = BiosignalModule(model, config, n_classes, training_class_weights(y_train, n_classes, config),
                             ch_names=ch_names, classes=classes)
    history, best = _History(), _BestWeights()
    callbacks: list[Callback] = [history, best]
    if on_epoch is not None:
        callbacks.append(_EpochReport(history, on_epoch))
    if has_val:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=config.patience, mode="min"))
    if checkpoint_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=str(checkpoint_dir), save_last=True, save_top_k=0))
    devices, strategy = _devices_and_strategy(config)
    with _quiet_lightning(config.progress_bar), numpy_blas_single_thread():
        trainer = L.Trainer(
            max_epochs=config.max_epochs, accelerator=config.accelerator, devices=devices, strategy=strategy,
            num_nodes=config.num_nodes, precision=resolve_precision(config.precision),
            gradient_clip_val=config.grad_clip or None, callbacks=callbacks, logger=list(loggers) if loggers else False,
            log_every_n_steps=1,
            enable_checkpointing=checkpoint_dir is not None, enable_progress_bar=config.progress_bar,
            enable_model_summary=False, num_sanity_val_steps=0, deterministic=False,
            default_root_dir=str(checkpoint_dir) if checkpoint_dir else None, plugins=[SafeCheckpointIO()],
        )
        train_loader = make_loader(X_train, y_train, config.batch_size, shuffle=True, seed=config.seed,
                                   num_workers=config.num_workers, balanced=config.sampler == "balanced")
        val_loader = make_loader(X_val, y_val, max(config.batch_size, 256), shuffle=False,
                                 num_workers=config.num_workers) if has_val else None
        trainer.fit(module, train_loader, val_loader, ckpt_path=str(resume_from) if resume_from else None,
                    weights_only=True if resume_from else None)
    model.eval()
    if offsets is not None:
        shift_logits(model, offsets)
    return FitResult(
        model=model, history=history.rows,
        best_epoch=best.best_epoch if best.best_state is not None else None,
        best_val_loss=best.best_loss if best.best_state is not None else None,
        world_size=trainer.world_size,
    )


def _offset_vector(offsets: dict[str, float], classes: Sequence[str] | None, n_classes: int) -> torch.Tensor:
    """``train.logit_offsets`` as a ``(n_classes,)`` vector in the order of ``classes``."""
    if classes is None:
        raise ConfigError("train.logit_offsets names classes, but fit was given no class names (pass classes=)")
    names = [str(c) for c in classes]
    unknown = sorted(set(map(str, offsets)) - set(names))
    if unknown:
        raise ConfigError(f"train.logit_offsets: no class named {unknown} among this run's classes {names}")
    vec = torch.zeros(n_classes)
    for k, v in offsets.items():
        vec[names.index(str(k))] = float(v)
    return vec


@torch.no_grad()
def predict_proba(model: nn.Module, X: np.ndarray, batch_size: int = 256, device: str | torch.device | None = None) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` for windows ``X (n, C, T)``, in eval mode."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    out = []
    with numpy_blas_single_thread():
        for start in range(0, len(X), batch_size):
            xb = torch.from_numpy(np.array(X[start : start + batch_size], dtype=np.float32)).to(device)
            out.append(torch.softmax(model(xb).float(), dim=1).cpu().numpy())
    n_classes = getattr(model, "n_classes", 0)
    return np.concatenate(out) if out else np.zeros((0, n_classes), dtype=np.float32)
