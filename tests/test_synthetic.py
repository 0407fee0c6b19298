import numpy as np
from scipy.signal import welch

from biodecode.datasets.synthetic import generate_mi_run


def _mu_power(x, sf):
    f, p = welch(x, fs=sf, nperseg=256, axis=-1)
    return p[..., (f >= 8) & (f <= 13)].mean(axis=-1)


def test_lateralised_desynchronisation():
    rec = generate_mi_run(1, 4, n_trials=40, seed=3)
    assert rec.meta["synthetic"] is True and rec.source == "synthetic"
    c3, c4 = rec.ch_names.index("C3"), rec.ch_names.index("C4")
    ratio = {}
    for code, cls in rec.meta["event_map"].items():
        onsets = rec.events.onset[rec.events.label == code]
        seg = np.stack([rec.data[:, int((o + 0.5) * rec.sfreq): int((o + 3.5) * rec.sfreq)] for o in onsets])
        p = _mu_power(seg, rec.sfreq).mean(axis=0)
        ratio[cls] = p[c3] / p[c4]
    # right-hand imagery suppresses C3 (left hemisphere), left-hand imagery suppresses C4
    assert ratio["right_hand"] < 0.8 * ratio["left_hand"]


def test_volume_conduction_correlates_neighbours():
    rec = generate_mi_run(2, 4, seed=0)
    corr = np.corrcoef(rec.data)
    i, j, k = (rec.ch_names.index(c) for c in ("C3", "C1", "Oz"))
    assert corr[i, j] > corr[i, k] + 0.1


def test_background_is_one_over_f():
    rec = generate_mi_run(3, 4, seed=0)
    f, p = welch(rec.data[rec.ch_names.index("Oz")], fs=rec.sfreq, nperseg=1024)
    low, high = p[(f > 2) & (f < 4)].mean(), p[(f > 40) & (f < 60)].mean()
    assert low > 5 * high
    assert 1e-6 < rec.data.std() < 1e-4  # tens of microvolts, in volts


def test_deterministic_per_seed():
    a, b = generate_mi_run(1, 4, seed=5), generate_mi_run(1, 4, seed=5)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, generate_mi_run(1, 4, seed=6).data)
