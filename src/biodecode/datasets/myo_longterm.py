"""Long-term forearm sEMG with a Myo armband (Kanoga et al. 2020).

5 subjects, 30 days each, 8 channels at 200 Hz, 22 hand/wrist motions x 4 trials per day, one CSV
per 1.5 s trial (300 rows x 8 columns, no header, values as released, about -1.3 to 1.3). The
armband was put on anew every day (position neutral, inward or outward), which makes the
cross-session (day-to-day) protocol the realistic one.
S. Kanoga et al., "Are armband sEMG devices dense enough for long-term use? Sensor placement shifts
cause significant reduction in recognition accuracy", Biomedical Signal Processing and Control 2020.
Released by the authors under Apache-2.0 in GitHub ``Suguru55/Wearable_Sensor_Long-term_sEMG_Dataset``.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import ConfigError
from ..io.arrays import read_csv
from ..recording import Recording
from .base import Dataset, Task

#: Motion names M1..M22, as encoded by the authors' labeling.m.
MOTIONS = (
    "rest", "wrist_flexion", "wrist_extension", "radial_deviation", "ulnar_deviation", "pronation", "supination",
    "hand_close", "pronation+flexion", "pronation+extension", "pronation+radial", "pronation+ulnar",
    "supination+flexion", "supination+extension", "supination+radial", "supination+ulnar", "hand_close+flexion",
    "hand_close+extension", "hand_close+radial", "hand_close+ulnar", "hand_close+pronation", "hand_close+supination",
)
#: Armband position per day (days 1-4 and 29-30 from the authors' set_config.m).
POSITION = {1: "N", 2: "I", 3: "O", 4: "N", 29: "N", 30: "O"}
_COMMIT = "005b70cb0fd54f186e4fa17bcf66dcaf32937aa5"


class MyoLongTerm(Dataset):
    name = "semg-longterm-myo"
    folder = "semg-longterm-myo"
    # pinned to the commit whose files were checked; the authors publish no checksums
    base_url = f"https://raw.githubusercontent.com/Suguru55/Wearable_Sensor_Long-term_sEMG_Dataset/{_COMMIT}/"
    version = "2020"
    signal = "emg"
    description = "Long-term Myo armband sEMG: 5 subjects x 30 days, 8 ch, 200 Hz, 22 motions x 4 trials/day"
    citation = "Kanoga et al., Biomed. Signal Process. Control 2020"
    license = "Apache-2.0"
    default_preprocessing: list = []  # values are released already band-limited by the Myo; 1.5 s trials are too short to filter
    # chosen by nested validation across days (one training day held out, docs/accuracy.md): each day
    # aligned on its own (the armband is put on again every day), the EMG network, random shifts of up
    # to half an electrode around the armband, 40 epochs on every training day
    recommended = {"*": {
        "data": {"alignment": "euclidean", "alignment_by": ["subject", "session"]},
        "model": {"name": "emgnet"},
        "train": {"max_epochs": 40, "val_fraction": 0.0,
                  "augment": [{"name": "electrode_shift", "max_shift": 0.5, "p": 0.5}]},
    }}
    tasks = {
        "motions-22": Task("motions-22", "all 22 motions; 200 ms windows every 50 ms inside each 1.5 s trial",
                           MOTIONS, kind="sliding", defaults={"window_s": 0.2, "stride_s": 0.05}),
        "motions-8": Task("motions-8", "rest, wrist flexion/extension, radial/ulnar deviation, pronation, supination, "
                          "hand close (M1-M8); 200 ms windows every 50 ms", MOTIONS[:8], kind="sliding",
                          defaults={"window_s": 0.2, "stride_s": 0.05}),
    }

    def __init__(self, path=None, *, download: bool = True, base_url: str | None = None,
                 days: Sequence[int] | None = None, trials: Sequence[int] = (1, 2, 3, 4)):
        super().__init__(path, download=download, base_url=base_url)
        self.days = list(days) if days is not None else list(range(1, 31))
        bad = [d for d in self.days if not 1 <= int(d) <= 30]
        if bad:
            raise ConfigError(f"{self.name}: days must be 1..30, got {bad}")
        self.trials = list(trials)

    def subjects(self) -> list[int]:
        return [1, 2, 3, 4, 5]

    def _motions(self, task: str | None) -> range:
        t = self.task(task)
        return range(1, (len(t.classes) if t else 22) + 1)

    def files(self, subject: int | str, task: str | None = None) -> list[str]:
        s = int(subject)
        if s not in self.subjects():
            raise ConfigError(f"{self.name}: subject {subject} out of range 1..5")
        return [f"data/sub{s}/day{d}/D{d}M{m}T{t}.csv" for d in self.days for m in self._motions(task) for t in self.trials]

    def load(self, subjects: Sequence[int | str] | None = None, task: str | None = None) -> list[Recording]:
        out = []
        for subject in subjects if subjects is not None else self.subjects():
            for rel, path in zip(self.files(subject, task), self.fetch(self.files(subject, task))):
                day, motion, trial = (int(x) for x in path.stem[1:].replace("M", " ").replace("T", " ").split())
                rec = read_csv(path, sfreq=200.0, ch_names=[f"emg{i}" for i in range(1, 9)], ch_type="emg", unit="a.u.")
                out.append(rec.replace(subject=str(int(subject)), session=str(day), run=str(trial), record=path.stem,
                                       meta=dict(rec.meta, dataset=self.name, label=MOTIONS[motion - 1],
                                                 position=POSITION.get(day, "?"))))
                if rec.n_channels != 8:
                    raise ConfigError(f"{path}: expected 8 channels, got {rec.n_channels}")
        return out

    def cache_identity(self) -> dict:
        return {**super().cache_identity(), "days": self.days, "trials": self.trials}
