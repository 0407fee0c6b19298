"""A synthetic motor-imagery EEG generator: the offline stand-in for demos and fast tests.

Every recording it makes is labelled synthetic (``meta["synthetic"] = True``, dataset
``"synthetic-mi"``). The signal model, per channel, in volts:

- a 1/f ("pink") background, independent per channel, plus spatially smooth background sources;
- mu (8-12 Hz) and beta (18-26 Hz) rhythms generated at sources under C3, C4 and Cz;
- event-related desynchronisation: during a cue, the rhythm of the hemisphere contralateral to the
  imagined hand drops (left hand -> C4, right hand -> C3, feet -> Cz, both fists -> C3 and C4);
- volume conduction: each source reaches every electrode with a Gaussian fall-off of distance on
  the scalp (standard 10-05 positions), so neighbouring channels are correlated as in real EEG.

Events mimic PhysioNet MI runs (T0 rest, T1/T2 cues of about 4 s), so the same tasks and windowing
apply. Each subject gets its own rhythm frequencies, gains and ERD depth.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.signal import butter, sosfiltfilt

from ..errors import ConfigError
from ..montage import standard_positions
from ..recording import Events, Recording
from .base import Dataset, Task

CHANNELS = (
    "Fz FC3 FC1 FCz FC2 FC4 C5 C3 C1 Cz C2 C4 C6 CP3 CP1 CPz CP2 CP4 P3 Pz P4 Oz "
    "Fp1 Fp2 F7 F3 F4 F8 T7 T8 P7 P8 O1 O2 AF3 AF4 FC5 FC6 CP5 CP6 PO3 PO4"
).split()

# Which sources desynchronise for which class.
_ERD = {"left_hand": ("C4",), "right_hand": ("C3",), "feet": ("Cz",), "both_fists": ("C3", "C4")}
_CUE = {"left_hand": "T1", "right_hand": "T2", "both_fists": "T1", "feet": "T2"}


def _pink(rng: np.random.Generator, n_ch: int, n: int, sfreq: float) -> np.ndarray:
    """Unit-variance 1/f noise ``(n_ch, n)``."""
    spec = np.fft.rfft(rng.standard_normal((n_ch, n)), axis=1)
    f = np.fft.rfftfreq(n, 1.0 / sfreq)
    f[0] = f[1]
    x = np.fft.irfft(spec / np.sqrt(f), n=n, axis=1)
    return x / x.std(axis=1, keepdims=True)


def _band(rng: np.random.Generator, n: int, sfreq: float, lo: float, hi: float) -> np.ndarray:
    sos = butter(4, [lo, hi], btype="bandpass", fs=sfreq, output="sos")
    x = sosfiltfilt(sos, rng.standard_normal(n))
    return x / x.std()


def generate_mi_run(
    subject: int,
    run: int,
    classes: Sequence[str] = ("left_hand", "right_hand"),
    *,
    n_trials: int = 15,
    sfreq: float = 160.0,
    channels: Sequence[str] = tuple(CHANNELS[:22]),
    cue_s: float = 4.0,
    rest_s: float = 4.0,
    seed: int = 0,
    rhythm_gain: float = 1.0,
) -> Recording:
    """One synthetic run: ``n_trials`` cues alternating with rest, classes balanced and shuffled.

    ``rhythm_gain`` scales the mu/beta sources against the background (>1: easier to decode)."""
    unknown = [c for c in classes if c not in _ERD]
    if unknown:
        raise ConfigError(f"synthetic-mi: unknown classes {unknown}; known: {sorted(_ERD)}")
    pos_all = standard_positions()
    missing = [c for c in channels if c not in pos_all]
    if missing:
        raise ConfigError(f"synthetic-mi: channels {missing} have no standard 10-05 position")
    subj_rng = np.random.default_rng([seed, subject])
    rng = np.random.default_rng([seed, subject, run])
    n_ch = len(channels)
    n = int(round((n_trials * (cue_s + rest_s) + rest_s) * sfreq))
    t_pos = np.stack([pos_all[c] for c in channels])

    # Trial schedule: rest, cue, rest, cue, ...
    labels = np.array([classes[i % len(classes)] for i in range(n_trials)])
    rng.shuffle(labels)
    onsets = rest_s + np.arange(n_trials) * (cue_s + rest_s)

    # Rhythmic sources with subject-specific frequencies, amplitudes and ERD depth.
    mu_f = subj_rng.uniform(9.0, 11.5)
    beta_f = subj_rng.uniform(19.0, 24.0)
    erd_depth = subj_rng.uniform(0.25, 0.55)
    # trial-to-trial variability: some cues barely desynchronise, as in real imagery
    trial_depth = np.clip(erd_depth * rng.uniform(0.0, 1.6, n_trials), 0.0, 0.9)
    sources = {"C3": pos_all["C3"], "C4": pos_all["C4"], "Cz": pos_all["Cz"]}
    sigma = 0.035  # metres of volume-conduction spread
    data = np.zeros((n_ch, n))
    t = np.arange(n) / sfreq
    for name, spos in sources.items():
        env = np.ones(n)
        for onset, lab, depth in zip(onsets, labels, trial_depth):
            if name in _ERD[lab]:
                # smooth dip starting ~0.3 s after the cue, back to baseline at its end
                w = np.clip((t - onset - 0.3) / 0.4, 0, 1) * np.clip((onset + cue_s - t) / 0.4, 0, 1)
                env -= depth * w
        rhythm = (
            subj_rng.uniform(0.8, 1.2) * _band(rng, n, sfreq, mu_f - 1.5, mu_f + 1.5)
            + 0.5 * _band(rng, n, sfreq, beta_f - 3.0, beta_f + 3.0)
        )
        gain = np.exp(-np.sum((t_pos - spos) ** 2, axis=1) / (2 * sigma**2))
        data += np.outer(gain, env * rhythm) * 8e-6 * rhythm_gain

    # Background: spatially smooth random sources plus per-channel pink noise.
    n_bg = 12
    bg_pos = t_pos[rng.integers(0, n_ch, n_bg)] + rng.normal(0, 0.01, (n_bg, 3))
    mix = np.exp(-np.sum((t_pos[:, None] - bg_pos[None]) ** 2, axis=2) / (2 * (2 * sigma) ** 2))
    data += mix @ _pink(rng, n_bg, n, sfreq) * 6e-6
    data += _pink(rng, n_ch, n, sfreq) * 5e-6

    cue_labels = [_CUE[lab] for lab in labels]
    rest_onsets = np.concatenate([[0.0], onsets + cue_s])
    ev_onset = np.concatenate([rest_onsets, onsets])
    ev_dur = np.concatenate([np.full(rest_onsets.size, rest_s), np.full(onsets.size, cue_s)])
    ev_lab = ["T0"] * rest_onsets.size + cue_labels
    order = np.argsort(ev_onset, kind="stable")
    events = Events.from_lists(ev_onset[order], ev_dur[order], [ev_lab[i] for i in order])
    event_map = {_CUE[c]: c for c in classes}
    if len(event_map) != len(classes):
        raise ConfigError(f"synthetic-mi: classes {list(classes)} share a cue code; a run holds at most one T1 and one T2 class")
    return Recording(
        data=data.astype(np.float32),
        sfreq=sfreq,
        ch_names=list(channels),
        ch_types=["eeg"] * n_ch,
        units=["V"] * n_ch,
        events=events,
        subject=str(subject),
        session="1",
        run=str(run),
        record=f"synthetic-S{subject:03d}R{run:02d}",
        source="synthetic",
        meta={"dataset": "synthetic-mi", "synthetic": True, "seed": seed, "event_map": event_map},
    )


_LR = {"T1": "left_hand", "T2": "right_hand"}
_FF = {"T1": "both_fists", "T2": "feet"}


class SyntheticMI(Dataset):
    """Synthetic motor imagery, generated on the fly (nothing is downloaded)."""

    name = "synthetic-mi"
    folder = "synthetic-mi"
    version = "2"  # bump whenever the generator changes: it is part of the window-cache key
    signal = "eeg"
    description = "SYNTHETIC motor-imagery EEG (1/f background, mu/beta ERD, volume conduction); offline stand-in"
    citation = "biodecode synthetic generator (not real data)"
    license = "BSD-3-Clause"
    default_preprocessing = [{"name": "bandpass", "l_freq": 4.0, "h_freq": 38.0, "causal": True},
                             {"name": "scale", "factor": 1e6}]
    tasks = {
        "left-right-imagery": Task(
            "left-right-imagery", "synthetic left vs right hand imagery (runs 4, 8, 12)",
            ("left_hand", "right_hand"), (4, 8, 12), ((None, _LR),), defaults={"tmin": 0.0, "tmax": 3.0},
        ),
        "4-class-imagery": Task(
            "4-class-imagery", "synthetic left, right, both fists, feet (runs 4, 6, 8, 10, 12, 14)",
            ("left_hand", "right_hand", "both_fists", "feet"), (4, 6, 8, 10, 12, 14),
            (((4, 8, 12), _LR), ((6, 10, 14), _FF)), defaults={"tmin": 0.0, "tmax": 3.0},
        ),
    }

    selection_options = ("n_subjects",)  # subject k is the same whatever the count

    def __init__(self, path=None, *, download: bool = True, base_url: str | None = None,
                 n_subjects: int = 10, n_channels: int = 22, sfreq: float = 160.0, n_trials: int = 15, seed: int = 0):
        super().__init__(path, download=download, base_url=base_url)
        if not 1 <= n_channels <= len(CHANNELS):
            raise ConfigError(f"synthetic-mi: n_channels must be 1..{len(CHANNELS)}, got {n_channels}")
        self.n_subjects, self.n_channels, self.sfreq, self.n_trials, self.seed = n_subjects, n_channels, sfreq, n_trials, seed

    def subjects(self) -> list[int]:
        return list(range(1, self.n_subjects + 1))

    def files(self, subject, task=None) -> list[str]:
        return []

    def load(self, subjects=None, task=None) -> list[Recording]:
        t = self.task(task or "left-right-imagery")
        out = []
        for s in subjects if subjects is not None else self.subjects():
            if int(s) not in self.subjects():
                raise ConfigError(f"synthetic-mi: subject {s} out of range 1..{self.n_subjects}")
            for run in t.runs:
                classes = tuple(t.event_map(run).values())
                out.append(generate_mi_run(int(s), run, classes, n_trials=self.n_trials, sfreq=self.sfreq,
                                           channels=tuple(CHANNELS[: self.n_channels]), seed=self.seed))
        return out

    def cache_identity(self) -> dict:
        return {"dataset": self.name, "version": self.version, "n_channels": self.n_channels,
                "sfreq": self.sfreq, "n_trials": self.n_trials, "seed": self.seed}
