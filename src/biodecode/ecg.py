"""ECG helpers: AAMI beat classes, RR intervals, R-peak detection, beat windows and rhythm segments.

AAMI classes follow ANSI/AAMI EC57 as used by de Chazal, O'Dwyer & Reilly, IEEE TBME 51(7) 2004:

| AAMI | MIT-BIH symbols |
|---|---|
| N (normal, bundle branch block, escape) | N L R e j |
| S (supraventricular ectopic) | A a J S |
| V (ventricular ectopic) | V E |
| F (fusion of ventricular and normal) | F |
| Q (paced, fusion of paced and normal, unclassifiable) | / f Q |

Annotations that are not beats (rhythm changes ``+``, noise ``~``, artefacts ``|``, flutter waves
``!``, non-conducted P waves ``x``, ...) are not windowed. A beat symbol outside this table is an
error that names the record and the symbol, unless ``unknown="Q"`` maps it to Q - never a silent drop.
"""

from __future__ import annotations

import numpy as np

from .errors import DataFormatError
from .recording import Events, Recording
from .windows import make_event_windows

AAMI_CLASSES = ("N", "S", "V", "F", "Q")
AAMI_MAP: dict[str, str] = {
    **{s: "N" for s in "NLRej"}, **{s: "S" for s in "AaJS"}, **{s: "V" for s in "VE"}, "F": "F",
    **{s: "Q" for s in "/fQ"},
}
#: WFDB annotation symbols that do not mark a heartbeat.
NON_BEAT = frozenset('+~|sT*D"=p^tu?![]@x()')

#: MIT-BIH rhythm annotations (aux notes of ``+``) grouped into the rhythm task's classes.
RHYTHM_CLASSES = ("N", "AFIB/AFL", "other")
RHYTHM_MAP = {"N": "N", "AFIB": "AFIB/AFL", "AFL": "AFIB/AFL"}


def aami_event_map(events: Events, record: str, unknown: str = "error") -> dict[str, str]:
    """The symbol -> AAMI class map for a record's annotations; unknown beat symbols raise
    (``unknown="error"``) or map to Q (``unknown="Q"``)."""
    mapping = dict(AAMI_MAP)
    odd = sorted({str(s) for s in events.label} - set(AAMI_MAP) - NON_BEAT)
    if odd:
        if unknown != "Q":
            raise DataFormatError(
                f"record {record}: beat symbol(s) {odd} have no AAMI class; pass unknown='Q' to map them to Q "
                f"(documented in docs/ecg.md)")
        mapping.update({s: "Q" for s in odd})
    return mapping


def rr_intervals(beat_onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pre-RR, post-RR and local average RR (10 beats around) in seconds, one per beat.

    The first beat's pre-RR and the last beat's post-RR repeat their neighbour's value.
    """
    t = np.asarray(beat_onsets, dtype=np.float64)
    if t.size < 2:
        z = np.full(t.size, np.nan)
        return z, z, z
    d = np.diff(t)
    pre = np.concatenate([[d[0]], d])
    post = np.concatenate([d, [d[-1]]])
    kernel = np.ones(10) / 10
    local = np.convolve(np.pad(pre, 5, mode="edge"), kernel, mode="same")[5:-5]
    return pre, post, local


def rr_relative(pre: np.ndarray, post: np.ndarray, local: np.ndarray) -> dict[str, np.ndarray]:
    """RR intervals divided by the recording's mean RR (NaN entries ignored): the per-patient RR
    normalisation of the inter-patient literature (e.g. Lin & Yang 2014, Mondejar-Guerra et al. 2019),
    so a premature beat reads as premature whatever the patient's own heart rate; and the pre- and
    post-RR divided by the local average RR (``rr_pre_local``, ``rr_post_local``: de Chazal et al.'s
    prematurity ratios, against the rhythm of the last few beats). Unitless."""
    mean = np.nanmean(pre) if np.isfinite(pre).any() else np.nan
    return {"rr_pre_rel": pre / mean, "rr_post_rel": post / mean, "rr_local_rel": local / mean,
            "rr_pre_local": pre / local, "rr_post_local": post / local}


def detect_r_peaks(signal: np.ndarray, sfreq: float, *, learn: bool = True) -> np.ndarray:
    """R-peak sample indices of a single-lead ECG (millivolts) with wfdb's XQRS detector, each
    moved to the local maximum of the absolute signal within 50 ms."""
    from wfdb import processing

    sig = np.asarray(signal, dtype=np.float64).reshape(-1)
    if sig.size < sfreq * 3:
        raise DataFormatError(f"detect_r_peaks: need at least 3 s of signal, got {sig.size / sfreq:.2f} s")
    qrs = processing.xqrs_detect(sig, fs=sfreq, verbose=False, learn=learn)
    if len(qrs) == 0:
        return np.zeros(0, dtype=np.int64)
    radius = max(1, int(0.05 * sfreq))
    peaks = processing.correct_peaks(np.abs(sig), qrs, search_radius=radius, smooth_window_size=radius)
    peaks = np.asarray(peaks, dtype=np.int64)
    return np.unique(peaks[(peaks >= 0) & (peaks < sig.size)])


def with_detected_beats(rec: Recording, lead: int | str = 0, label: str = "?") -> Recording:
    """A copy of ``rec`` whose events are R peaks detected on ``lead``, labelled ``label``, so that
    the beat windowing used for annotated data applies to a user's own ECG."""
    idx = rec.ch_names.index(lead) if isinstance(lead, str) else lead
    peaks = detect_r_peaks(rec.data[idx], rec.sfreq)
    ev = Events.from_lists(peaks / rec.sfreq, np.zeros(peaks.size), [label] * peaks.size)
    return rec.replace(events=ev, meta=dict(rec.meta, event_map={label: label}, detected_beats=True))


def rhythm_segments(events: Events, end_s: float, mapping: dict[str, str] | None = None) -> Events:
    """Turn WFDB rhythm-change annotations (``+`` with aux ``(AFIB`` ...) into events with durations:
    each rhythm lasts until the next change or ``end_s``. Labels are the rhythm names without
    ``(``, mapped through ``mapping`` (names not in it become ``"other"``) when given."""
    mask = np.asarray([lab == "+" and str(ext).startswith("(") for lab, ext in zip(events.label, events.extra)], bool)
    on = events.onset[mask]
    names = [str(e).lstrip("(").strip() for e in events.extra[mask]]
    if mapping is not None:
        names = [mapping.get(n, "other") for n in names]
    ends = np.concatenate([on[1:], [end_s]])
    return Events.from_lists(on, ends - on, names)


def beat_windows_for_inference(rec: Recording, tmin: float = -0.25, tmax: float = 0.45,
                               lead: int | str = 0) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``(n_beats, n_channels, n_times)`` around detected R peaks and their onsets (s)."""
    det = with_detected_beats(rec, lead)
    ws = make_event_windows([det], tmin, tmax)
    return np.asarray(ws.X), ws.metadata["onset_s"].to_numpy()
