"""The LightningModule around any registered model: loss with class weights and soft targets
(mixup), AdamW with a cosine or plateau schedule, max-norm constraints after every step."""

from __future__ import annotations

from typing import Any, Sequence

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

from .augment import Augmenter
from .config import TrainConfig


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader: Any, device: torch.device) -> None:
    """Set every BatchNorm's running statistics to their exact average over ``loader`` (the training
    windows, without augmentation or dropout) - "precise BN" (Wu & Johnson 2021). With few batches per
    epoch, exponential running averages (momentum 0.01 in EEGNet's Keras defaults) lag far behind the
    weights, so evaluation would use stale statistics."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return
    modes = {m: m.training for m in model.modules()}
    momenta = [m.momentum for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    for x, _ in loader:
        model(x.to(device))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    for m, mode in modes.items():
        m.training = mode


class BiosignalModule(L.LightningModule):
    """``ch_names`` and ``classes``: the training windows' channel and class names, for the
    augmentations that read them (``mirror``)."""

    def __init__(self, model: nn.Module, config: TrainConfig, n_classes: int, class_weights: torch.Tensor | None = None,
                 *, ch_names: Sequence[str] | None = None, classes: Sequence[str] | None = None):
        super().__init__()
        self.model, self.config, self.n_classes = model, config, n_classes
        self.register_buffer("class_weights", class_weights if class_weights is not None else torch.ones(n_classes))
        self.augment = Augmenter(config.augment, seed=config.seed, ch_names=ch_names, classes=classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), target, weight=self.class_weights)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        target = F.one_hot(y, self.n_classes).to(x.dtype)
        if self.augment:
            x, target = self.augment(x, target)
        loss = self._loss(self(x), target)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(x), sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", self._loss(logits, y), on_epoch=True, batch_size=len(x), sync_dist=True)
        self.log("val_acc", (logits.argmax(1) == y).float().mean(), on_epoch=True, batch_size=len(x), sync_dist=True)

    def on_validation_start(self) -> None:
        if self.config.precise_bn and self.trainer.train_dataloader is not None:
            self._recalibrate()

    def on_train_end(self) -> None:
        if self.config.precise_bn and self.trainer.train_dataloader is not None:
            self._recalibrate()

    def _recalibrate(self) -> None:
        recalibrate_batchnorm(self.model, self.trainer.train_dataloader, self.device)
        if self.trainer.world_size > 1:  # every rank saw its own shard: average the statistics
            for m in self.model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                    m.running_mean.copy_(self.trainer.strategy.reduce(m.running_mean, reduce_op="mean"))
                    m.running_var.copy_(self.trainer.strategy.reduce(m.running_var, reduce_op="mean"))

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if hasattr(self.model, "apply_constraints"):
            self.model.apply_constraints()

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
        if self.config.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.config.max_epochs))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        if self.config.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(1, self.config.patience // 3))
            monitor = "val_loss" if self.config.val_fraction > 0 else "train_loss"
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": monitor}}
        return opt
