"""MIT-BIH Arrhythmia Database (mitdb v1.0.0).

48 half-hour two-lead ambulatory ECG records, 360 Hz, WFDB format 212, with beat and rhythm
annotations (``.atr``). 47 subjects: records 201 and 202 are the same person.
Moody & Mark, IEEE EMB Mag 20(3) 2001; Goldberger et al., Circulation 101(23) 2000.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import ConfigError
from ..io.wfdb_io import read_wfdb
from ..recording import Recording
from .base import Dataset

RECORDS = (
    "100 101 102 103 104 105 106 107 108 109 111 112 113 114 115 116 117 118 119 121 122 123 124 "
    "200 201 202 203 205 207 208 209 210 212 213 214 215 217 219 220 221 222 223 228 230 231 232 233 234"
).split()
#: Paced records, excluded by the AAMI / de Chazal protocols.
PACED = ("102", "104", "107", "217")
#: de Chazal et al. (IEEE TBME 2004) inter-patient split.
DS1 = tuple("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split())
DS2 = tuple("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split())
#: Records from the same person share a subject id (for grouped splits).
SUBJECT_OF = {"202": "201"}


class MITBIH(Dataset):
    name = "mitdb"
    folder = "mitdb"
    base_url = "https://physionet.org/files/mitdb/1.0.0/"
    version = "1.0.0"
    signal = "ecg"
    description = "MIT-BIH Arrhythmia: 48 records, 2-lead ECG, 360 Hz, beat and rhythm annotations"
    citation = "Moody & Mark, IEEE Eng Med Biol 20(3):45-50, 2001; Goldberger et al., Circulation 2000"
    license = "ODC-By 1.0"
    default_preprocessing = [{"name": "bandpass", "l_freq": 0.5, "h_freq": 40.0, "causal": True}]

    def subjects(self) -> list[str]:
        return list(RECORDS)

    def available(self) -> list[str]:
        """Records whose three files are present locally."""
        return [r for r in RECORDS if all((self.root / f).is_file() for f in self.files(r))]

    def _check_record(self, record: int | str) -> str:
        rec = str(record)
        if rec not in RECORDS:
            raise ConfigError(f"{self.name}: no record {rec!r}; records are {RECORDS[0]}..{RECORDS[-1]} ({len(RECORDS)})")
        return rec

    def files(self, subject: int | str, task: str | None = None) -> list[str]:
        rec = self._check_record(subject)
        return [f"{rec}.hea", f"{rec}.dat", f"{rec}.atr"]

    def load(self, subjects: Sequence[int | str] | None = None, task: str | None = None) -> list[Recording]:
        out = []
        for record in subjects if subjects is not None else self.subjects():
            rec_id = self._check_record(record)
            self.fetch(self.files(rec_id, task))
            rec = read_wfdb(self.root / rec_id, annotator="atr")
            out.append(
                rec.replace(
                    subject=SUBJECT_OF.get(rec_id, rec_id), session="1", run="1", record=rec_id,
                    meta=dict(rec.meta, dataset=self.name),
                )
            )
        return out
