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


#: What :func:`rhythm_features` returns per window, in order.
RHYTHM_FEATURES = (
    "heart_rate_bpm", "rr_median_s", "rr_cv", "rmssd_rel", "pnn50", "madsd_rel", "rr_range_rel", "sd1_sd2",
    "rr_turning_points", "beat_corr", "p_region_corr", "r_amp_cv", "qrs_width_s", "kurtosis", "power_below_3hz",
    "power_above_15hz", "clipped_fraction", "level_sd",
)


def _corr_with_median(segments: np.ndarray) -> float:
    """Median correlation of each row of ``segments (n, L)`` with the rows' median (NaN for < 3 rows)."""
    if len(segments) < 3:
        return np.nan
    tpl = np.median(segments, axis=0)
    a = segments - segments.mean(1, keepdims=True)
    b = tpl - tpl.mean()
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.nanmedian(np.where(den > 0, a @ b / den, np.nan))) if (den > 0).any() else np.nan


def _window_rhythm_features(s: np.ndarray, sfreq: float) -> np.ndarray:
    from scipy.signal import welch
    from scipy.stats import kurtosis

    f: dict[str, float] = {}
    s = s - np.median(s)
    amp = np.percentile(np.abs(s), 99)
    if not np.isfinite(amp) or amp <= 0:  # a flat (or broken) window: nothing to measure, the classifier sees missing values
        return np.full(len(RHYTHM_FEATURES), np.nan)
    s = s / amp  # the QRS near 1, the scale XQRS's fixed thresholds expect of millivolts
    peaks = detect_r_peaks(s, sfreq, learn=False)
    freqs, power = welch(s, fs=sfreq, nperseg=min(s.size, int(2 * sfreq)))
    total, hi, lo = power.sum(), np.max(s), np.min(s)
    f["heart_rate_bpm"] = 60.0 * peaks.size / (s.size / sfreq)
    f["kurtosis"] = kurtosis(s)
    if total > 0:
        f["power_below_3hz"], f["power_above_15hz"] = power[freqs < 3].sum() / total, power[freqs > 15].sum() / total
    f["clipped_fraction"] = np.mean((s > hi - 0.01 * (hi - lo)) | (s < lo + 0.01 * (hi - lo)))
    f["level_sd"] = np.std(s)
    if peaks.size >= 3:
        rr = np.diff(peaks) / sfreq
        d = np.diff(rr)
        mean, med = rr.mean(), np.median(rr)
        sd1 = np.std(d) / np.sqrt(2)
        sd2 = np.sqrt(max(2 * np.var(rr) - sd1**2, 0.0))
        f.update(rr_median_s=med, rr_cv=np.std(rr) / mean, rmssd_rel=np.sqrt(np.mean(d**2)) / mean,
                 pnn50=np.mean(np.abs(d) > 0.05), madsd_rel=np.median(np.abs(d)) / med,
                 rr_range_rel=(rr.max() - rr.min()) / med)
        if sd2 > 0:
            f["sd1_sd2"] = sd1 / sd2
        if d.size >= 2:
            f["rr_turning_points"] = np.mean((d[:-1] * d[1:]) < 0)
    # beat shapes: [-0.2, 0.4] s around each R peak, the P-wave region [-0.3, -0.06] s
    pre, post, p0, p1 = (int(round(t * sfreq)) for t in (0.2, 0.4, 0.3, 0.06))
    inside = peaks[(peaks - max(pre, p0) >= 0) & (peaks + post < s.size)]
    if inside.size >= 3:
        beats = np.stack([s[k - pre:k + post] for k in inside])
        f["beat_corr"] = _corr_with_median(beats)
        f["p_region_corr"] = _corr_with_median(np.stack([s[k - p0:k - p1] for k in inside]))
        r = s[inside]
        if np.mean(r) != 0:
            f["r_amp_cv"] = np.std(r) / abs(np.mean(r))
        tpl = np.abs(np.median(beats, axis=0))
        half = int(0.1 * sfreq)
        f["qrs_width_s"] = np.sum(tpl[max(0, pre - half):pre + half] > 0.5 * tpl[pre]) / sfreq
    return np.array([f.get(name, np.nan) for name in RHYTHM_FEATURES], dtype=np.float64)


def rhythm_features(X: np.ndarray, sfreq: float) -> np.ndarray:
    """Rhythm features of single-lead ECG windows ``X (n, C, T)`` (the first channel is read; any
    unit): R peaks by XQRS (:func:`detect_r_peaks`, each window scaled so its QRS is near 1), then
    per window the :data:`RHYTHM_FEATURES`: heart rate; RR-interval irregularity (coefficient of
    variation, RMSSD and median successive difference over the RR, pNN50, range, Poincare SD1/SD2,
    turning points; Tateno & Glass 2001 and the HRV literature); how alike the beats are and how
    alike the stretch before each R peak is (a P wave repeats, fibrillatory waves do not); R
    amplitude variation and QRS width; and signal quality (kurtosis, power below 3 and above 15 Hz,
    clipped samples, spread). Returns ``(n, 18)`` float32, NaN where a window has too few beats
    for a feature. Windows shorter than 3 s are an error (too few beats to measure a rhythm)."""
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 3:
        raise DataFormatError(f"rhythm_features: expected windows (n, channels, times), got {x.shape}")
    if x.shape[-1] < 3 * sfreq:
        raise DataFormatError(f"rhythm_features: windows of {x.shape[-1] / sfreq:.2f} s hold too few beats to "
                              f"measure a rhythm; use windows of at least 3 s (data.window_s)")
    return np.stack([_window_rhythm_features(w[0], sfreq) for w in x]).astype(np.float32) if len(x) else \
        np.zeros((0, len(RHYTHM_FEATURES)), np.float32)


def rr_tachogram(signal: np.ndarray, sfreq: float) -> np.ndarray:
    """``(n_samples,)`` float32: at each sample the last complete R-R interval (s) before it, from the
    R peaks of a single-lead ECG (:func:`detect_r_peaks` over the whole signal) - a staircase that
    a network reads beside the ECG (regular in sinus rhythm, irregular in atrial fibrillation).
    Until the second R peak the first interval stands in; a signal with fewer than two peaks gives 0
    (no rhythm to measure)."""
    sig = np.asarray(signal, dtype=np.float64).reshape(-1)
    out = np.zeros(sig.size, dtype=np.float32)
    peaks = detect_r_peaks(sig, sfreq) if sig.size >= 3 * sfreq else np.zeros(0, dtype=np.int64)
    if peaks.size < 2:
        return out
    rr = np.diff(peaks) / sfreq
    # sample t gets the interval that ends at the last peak at or before t
    last = np.searchsorted(peaks, np.arange(sig.size), side="right") - 1  # index of that peak (-1: none yet)
    out[:] = rr[np.clip(last - 1, 0, rr.size - 1)]
    return out
