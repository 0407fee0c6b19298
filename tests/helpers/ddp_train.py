"""Run under torchrun: trains EEGNet with DistributedDataParallel (gloo, CPU) through biodecode's
fit() and saves each rank's final weights, so a test can check that the ranks agree."""

import json
import os
import sys

import numpy as np
import torch

from biodecode.datasets.synthetic import generate_mi_run
from biodecode.models import create_model
from biodecode.training import TrainConfig, fit, seed_everything
from biodecode.windows import make_event_windows


def main(out: str) -> None:
    recs = [generate_mi_run(s, 4, n_trials=16, seed=1, channels=("C3", "Cz", "C4", "FC3", "FC4", "CP3")) for s in (1, 2)]
    ws = make_event_windows(recs, 0.0, 2.0)
    X = np.asarray(ws.X) * 1e6
    seed_everything(0)
    model = create_model("eegnet", ws.n_channels, ws.n_times, 2, sfreq=ws.sfreq)
    cfg = TrainConfig(max_epochs=3, batch_size=8, accelerator="cpu", seed=0)
    res = fit(model, X[:24], ws.y[:24], X[24:], ws.y[24:], cfg)
    rank = int(os.environ.get("RANK", 0))
    torch.save({k: v.cpu() for k, v in res.model.state_dict().items()}, os.path.join(out, f"rank{rank}.pt"))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"world_size": res.world_size, "epochs": len(res.history), "best_epoch": res.best_epoch}, f)


if __name__ == "__main__":
    main(sys.argv[1])
