"""The peer side (braindecode), run inside benchmarks/.peer-venv by benchmarks/run.py.

Reads one JSON command per line on stdin and answers one JSON line on stdout. Each operation
mirrors the one in benchmarks/ours.py with braindecode's own models, data path and trainer.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from timing import causal_band, fold_accuracies, latency_ms, train_step_rate, wall  # noqa: E402

warnings.filterwarnings("ignore")


def make_model(name: str, C: int, T: int, K: int):
    from braindecode.models import EEGNet, ShallowFBCSPNet

    if name in ("eegnet", "eegnet-paper"):  # braindecode has one EEGNet (the paper's order)
        return EEGNet(n_chans=C, n_outputs=K, n_times=T, kernel_length=64, drop_prob=0.5, final_layer_with_constraint=True)
    if name == "shallow":
        return ShallowFBCSPNet(n_chans=C, n_outputs=K, n_times=T, final_conv_length="auto")
    raise ValueError(name)


def train_throughput(model: str, C: int, T: int, K: int, batch: int, steps: int, **_):
    torch.manual_seed(0)
    return {"windows_per_s": train_step_rate(make_model(model, C, T, K), C, T, K, batch, steps)}


def latency(model: str, C: int, T: int, K: int, n: int, **_):
    """braindecode's model in eager PyTorch, batch 1."""
    torch.manual_seed(0)
    net = make_model(model, C, T, K).eval()
    x = torch.randn(1, C, T)
    with torch.no_grad():
        return latency_ms(lambda: net(x), n)


def _windows(files, tmin, tmax, l_freq, h_freq):
    import mne
    from braindecode.datasets import BaseConcatDataset, RawDataset
    from braindecode.preprocessing import Preprocessor, create_windows_from_events, preprocess

    raws = [mne.io.read_raw_edf(f, preload=True, verbose="error") for f in files]
    sfreq = raws[0].info["sfreq"]
    ds = BaseConcatDataset([RawDataset(r, {"file": f}) for r, f in zip(raws, files)])
    preprocess(ds, [Preprocessor(causal_band, apply_on_array=True, sfreq=sfreq, l_freq=l_freq, h_freq=h_freq)])
    n = int(round((tmax - tmin) * sfreq))
    return create_windows_from_events(ds, trial_start_offset_samples=int(round(tmin * sfreq)), trial_stop_offset_samples=0,
                                      window_size_samples=n, window_stride_samples=n, drop_last_window=True,
                                      mapping={"T1": 0, "T2": 1}, preload=True)


def _epoch(ds, batch):
    n = 0
    for x, y, *_ in torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True):
        n += len(x)
    return n


def data_pipeline(files, tmin, tmax, l_freq, h_freq, batch, **_):
    holder = {}
    first = wall(lambda: holder.update(n=_epoch(_windows(files, tmin, tmax, l_freq, h_freq), batch)))
    ds = _windows(files, tmin, tmax, l_freq, h_freq)
    warm = wall(lambda: holder.update(n=_epoch(ds, batch)))
    return {"windows": holder["n"], "first_s": first, "warm_s": warm}


def accuracy(data: str, epochs: int, batch: int, lr: float, seed: int, **_):
    from braindecode import EEGClassifier
    from skorch.callbacks import LRScheduler

    def fit_predict(X_tr, y_tr, X_te, k):
        torch.manual_seed(seed + k)
        np.random.seed(seed + k)
        clf = EEGClassifier(make_model("eegnet", X_tr.shape[1], X_tr.shape[2], 2), criterion=torch.nn.CrossEntropyLoss,
                            optimizer=torch.optim.AdamW, optimizer__lr=lr, optimizer__weight_decay=1e-2,
                            batch_size=batch, max_epochs=epochs, train_split=None, verbose=0, device="cpu",
                            callbacks=[("lr", LRScheduler("CosineAnnealingLR", T_max=epochs))])
        return clf.fit(X_tr, y_tr).predict(X_te)

    return {"fold_accuracy": fold_accuracies(data, fit_predict)}


def versions(**_):
    import braindecode
    import mne

    return {"braindecode": braindecode.__version__, "torch": torch.__version__, "mne": mne.__version__}


def biodecode_train_throughput(**cmd):
    """biodecode's model, from this checkout's source, trained under the peer's torch: the library's gain
    without the torch build's (biodecode's models need only torch and numpy)."""
    root = Path(__file__).resolve().parents[1]
    for p in (str(root / "src"), str(root)):
        if p not in sys.path:
            sys.path.insert(0, p)
    from benchmarks.ours import train_throughput as ours_train_throughput

    return ours_train_throughput(**cmd)


OPS = {"train_throughput": train_throughput, "biodecode_train_throughput": biodecode_train_throughput, "latency": latency, "data_pipeline": data_pipeline,
       "accuracy": accuracy, "versions": versions}


def main() -> None:
    for line in sys.stdin:
        cmd = json.loads(line)
        torch.set_num_threads(int(cmd.get("threads", 1)))
        try:
            result = {"ok": True, **OPS[cmd["op"]](**cmd)}
        except Exception as exc:  # report, keep serving
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
