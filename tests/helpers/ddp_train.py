"""Run under torchrun: trains EEGNet with DistributedDataParallel (gloo, CPU) through biodecode's
fit() on windows read lazily from the window store, and saves each rank's final weights and the
training rows it was served, so a test can check that the ranks agree and split the data.
Arguments: OUT STORE [shuffle|balanced]; with ``balanced`` the training side is imbalanced (18 / 6
windows) and drawn by the class-balanced sampler."""

import json
import os
import sys

import numpy as np
import torch

import biodecode.training.data as data_module
from biodecode.lazyarray import ConcatRows
from biodecode.loading import load_windows
from biodecode.models import create_model
from biodecode.training import TrainConfig, fit, seed_everything

SERVED: list[int] = []


def _recording(getitems):
    def wrapper(self, idx):
        if len(self) == 24:  # the training set
            SERVED.extend(int(i) for i in idx)
        return getitems(self, idx)
    return wrapper


def main(out: str, store: str, sampler: str = "shuffle") -> None:
    data_module.WindowDataset.__getitems__ = _recording(data_module.WindowDataset.__getitems__)
    ws = load_windows("synthetic-mi", [1, 2], "left-right-imagery", tmin=0.0, tmax=2.0, cache_dir=store, n_jobs=1,
                      dataset_kwargs={"n_channels": 6, "n_trials": 8, "seed": 1})
    if sampler == "balanced":
        first, second = np.flatnonzero(ws.y == 0), np.flatnonzero(ws.y == 1)
        rows = np.sort(np.concatenate([first[:18], second[:6]]))
        train, val = ws.subset(rows), ws.subset(np.setdiff1d(np.arange(len(ws.y)), rows)[:12])
    else:
        train, val = ws.subset(np.arange(24)), ws.subset(np.arange(24, 36))
    assert isinstance(train.X, ConcatRows)  # lazy: rows are read per batch, not copied up front
    seed_everything(0)
    model = create_model("eegnet", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq)
    cfg = TrainConfig(max_epochs=3, batch_size=8, accelerator="cpu", seed=0, sampler=sampler)
    res = fit(model, train.X, train.y, val.X, val.y, cfg)
    rank = int(os.environ.get("RANK", 0))
    torch.save({k: v.cpu() for k, v in res.model.state_dict().items()}, os.path.join(out, f"rank{rank}.pt"))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"world_size": res.world_size, "epochs": len(res.history), "best_epoch": res.best_epoch,
                   "served_first_epoch": SERVED[:12],  # 24 windows / 2 ranks in the first epoch
                   "served_labels": [int(train.y[i]) for i in SERVED[:12]]}, f)
    # Lightning leaves the process group open; exiting with it up can abort in gloo's destructor
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:4])
