"""Real-time decoding: samples in, chunk by chunk; causal preprocessing with state kept across
chunks; a ring buffer of one window; a decision with class probabilities every hop.

Decisions fall on fixed sample positions (the window ending at sample ``n_times - 1 + k * hop``),
whatever the chunking, so streaming output equals offline prediction on the same windows.
Irregular input never crashes the loop and is always counted in :class:`StreamStats`:

- NaN/inf samples are replaced by the channel's last finite value (``nan_filled``);
- with timestamps, a chunk that starts earlier than expected (duplicate or out of order) is
  dropped (``out_of_order`` chunks, ``dropped_samples``);
- a gap up to ``max_gap_s`` is filled by holding the last sample (``gaps``, ``gap_filled``); a
  longer gap resets filters and buffer (``resets``), since the window would be mostly made up;
- a chunk that completes several hops (a burst) yields all its decisions (``bursts``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import ConfigError, DataFormatError
from ..preprocessing import Pipeline
from ..threads import numpy_blas_single_thread
from .predictor import Predictor

log = logging.getLogger(__name__)


def _pipeline_of(meta: dict) -> list:
    """The preprocessing a model file or export recorded (its window spec; older files: top level)."""
    spec = meta.get("window_spec") or {}
    return list(spec.get("preprocessing") or meta.get("preprocessing") or [])


@dataclass
class Decision:
    """sample: stream index (at the decoder's rate) of the window's last sample; time: its time in
    seconds (stream clock); proba: class probabilities; latency_s: from the arrival of the chunk that
    completed the window to the prediction; filled: samples in the window that were filled in."""

    sample: int
    time: float
    proba: np.ndarray
    label: str
    latency_s: float
    filled: int = 0


@dataclass
class StreamStats:
    chunks: int = 0
    samples: int = 0
    decisions: int = 0
    nan_filled: int = 0
    out_of_order: int = 0
    dropped_samples: int = 0
    gaps: int = 0
    gap_filled: int = 0
    resets: int = 0
    bursts: int = 0
    bad_timestamps: int = 0
    latencies_s: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        out = {k: v for k, v in asdict(self).items() if k != "latencies_s"}
        if self.latencies_s:
            lat = np.asarray(self.latencies_s) * 1e3
            out.update(latency_p50_ms=float(np.percentile(lat, 50)), latency_p99_ms=float(np.percentile(lat, 99)))
        return out


class StreamDecoder:
    """Decode a live stream with a trained model.

    predictor: from :func:`load_predictor` (PyTorch, ONNX, int8 ONNX); its metadata gives the
    classes, channel names, sampling rate, preprocessing and window length unless overridden.
    hop_s: time between decisions (default 0.25 s, at least one sample); max_gap_s: longest gap
    filled by holding the last sample (flagged in ``Decision.filled``; longer gaps reset the
    decoder); jitter_s: timestamp deviations up to this are taken as contiguous samples.

    Timestamps (stream time of a chunk's first sample) are how the decoder knows what is new: a
    chunk not later than the previous one is a duplicate or out of order and is dropped; one that
    overlaps samples already taken keeps only its new samples; the dropped ones are counted in
    ``stats.dropped_samples``. A chunk without a usable timestamp (None, NaN, inf) is taken as
    following the previous chunk. Every sample pushed is either decoded or counted as dropped.
    """

    def __init__(self, predictor: Predictor, *, hop_s: float = 0.25, sfreq: float | None = None,
                 ch_names: Sequence[str] | None = None, preprocessing: list | None = None,
                 n_times: int | None = None, max_gap_s: float = 1.0, jitter_s: float = 0.02):
        meta = predictor.meta
        if meta.get("metadata_channels"):
            raise ConfigError(f"this model was trained with metadata channels {meta['metadata_channels']} "
                              f"(e.g. RR intervals) that a live stream does not provide; it cannot be streamed")
        self.predictor = predictor
        self.sfreq = float(sfreq or meta.get("sfreq") or 0)
        if self.sfreq <= 0:
            raise ConfigError("StreamDecoder: the sampling rate is unknown; pass sfreq=")
        self.ch_names = list(ch_names or meta.get("ch_names") or [])
        self.n_times = int(n_times or meta.get("n_times") or 0)
        if not self.ch_names or self.n_times <= 0:
            raise ConfigError("StreamDecoder: channel names and window length are unknown; pass ch_names= and n_times=")
        self.classes = list(meta.get("classes") or [str(i) for i in range(len(predictor.logits(np.zeros((1, len(self.ch_names), self.n_times), np.float32))[0]))])
        if not (isinstance(hop_s, (int, float)) and np.isfinite(hop_s) and hop_s * self.sfreq >= 1):
            raise ConfigError(f"StreamDecoder: hop_s must be at least one sample (1/{self.sfreq:g} s), got {hop_s!r}")
        self.hop = int(round(hop_s * self.sfreq))
        self.pipeline_config = list(preprocessing if preprocessing is not None else _pipeline_of(meta))
        self.max_gap = int(round(max_gap_s * self.sfreq))
        self.jitter = max(0, int(round(jitter_s * self.sfreq)))  # timestamp noise tolerated as contiguous
        self.stats = StreamStats()
        self.alignment = str((meta.get("alignment") or {}).get("method", "none"))
        from ..alignment import MEDIAN_METHODS

        if self.alignment in MEDIAN_METHODS:
            raise ConfigError(f"this model was trained on windows centred on each group's median window (alignment "
                              f"{self.alignment!r}, for event-locked windows such as beats); the streaming decoder "
                              f"slides its windows over the signal and cannot apply it")
        self.align_matrix: np.ndarray | None = None
        self.reset()

    def calibrate(self, segment: np.ndarray) -> np.ndarray:
        """For a model trained on aligned windows (Euclidean or Riemannian): this user's matrix from a
        calibration segment ``(n_channels, n_samples)`` (at least one window; no labels needed),
        preprocessed as the stream is. Returns the ``(C, C)`` matrix applied to every window."""
        from ..alignment import alignment_matrix

        segment = np.asarray(segment, dtype=np.float32)
        if segment.ndim != 2 or segment.shape[0] != len(self.ch_names) or segment.shape[1] < self.n_times:
            raise DataFormatError(f"StreamDecoder.calibrate: expected ({len(self.ch_names)}, >= {self.n_times}) "
                                  f"samples, got {segment.shape}")
        y = Pipeline.from_config(self.pipeline_config).stream(self.sfreq, self.ch_names).process(segment)
        step = max(1, self.n_times // 2)
        windows = np.stack([y[:, e - self.n_times:e] for e in range(self.n_times, y.shape[1] + 1, step)])
        self.align_matrix = alignment_matrix(windows, self.alignment if self.alignment != "none" else "euclidean"
                                             ).astype(np.float32)
        return self.align_matrix

    def reset(self) -> None:
        """Forget filter state and buffered samples (after a long gap or a new stream)."""
        self.pipe = Pipeline.from_config(self.pipeline_config).stream(self.sfreq, self.ch_names)
        n_out = len(self.pipe.ch_names)
        self.buf = np.zeros((n_out, 2 * self.n_times), dtype=np.float32)
        self.filled = np.zeros(2 * self.n_times, dtype=bool)
        self.pos = 0
        self.count = 0  # samples in the buffer since the last reset
        self.until_decision = self.n_times
        self.last = None  # last finite raw sample per channel
        self.next_ts: float | None = None  # stream time expected for the next sample
        self.last_ts: float | None = None  # timestamp of the last chunk taken

    # ----------------------------------------------------------------------------- input
    def _clean(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.array(chunk, dtype=np.float32)
        bad = ~np.isfinite(x)
        filled = bad.any(axis=0)
        if bad.any():
            self.stats.nan_filled += int(filled.sum())
            for i in range(x.shape[1]):
                col_bad = bad[:, i]
                if col_bad.any():
                    x[col_bad, i] = self.last[col_bad] if self.last is not None else 0.0
                self.last = x[:, i].copy()
        elif x.shape[1]:
            self.last = x[:, -1].copy()
        return x, filled

    def push(self, chunk: np.ndarray, timestamp: float | None = None) -> list[Decision]:
        """Feed ``chunk (n_channels, n_samples)``; ``timestamp``: stream time (s) of its first sample."""
        arrival = time.perf_counter()
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[0] != len(self.ch_names):
            raise DataFormatError(f"StreamDecoder: expected chunks of shape ({len(self.ch_names)}, n) for channels "
                             f"{self.ch_names}, got {chunk.shape}")
        if self.alignment != "none" and self.align_matrix is None:
            raise ConfigError(f"this model was trained on {self.alignment}-aligned windows: call calibrate(segment) with at "
                              f"least {self.n_times} samples of this user's signal first (CLI: --calibrate-s)")
        n = chunk.shape[1]
        self.stats.chunks += 1
        if n == 0:
            return []
        decisions: list[Decision] = []
        if timestamp is not None and not np.isfinite(timestamp):
            self.stats.bad_timestamps += 1
            log.warning("stream: chunk with timestamp %r; taken as following the previous one", timestamp)
            timestamp = None
        if timestamp is not None and self.next_ts is not None:
            step = 1.0 / self.sfreq
            offset = int(round((timestamp - self.next_ts) / step))
            if self.last_ts is not None and timestamp <= self.last_ts:
                # not later than the chunk before it: a duplicate or a chunk out of order
                self.stats.out_of_order += 1
                self.stats.dropped_samples += n
                log.warning("stream: chunk at t=%.3f s does not follow the last one (t=%.3f s); dropped",
                            timestamp, self.last_ts)
                return []
            if abs(offset) <= self.jitter:
                offset = 0
            if offset < 0:  # its first -offset samples were already taken: keep only the new ones
                overlap = min(n, -offset)
                self.stats.out_of_order += 1
                self.stats.dropped_samples += overlap
                log.warning("stream: chunk at t=%.3f s repeats %d samples already taken; those dropped",
                            timestamp, overlap)
                if overlap == n:
                    return []
                chunk, timestamp, n = chunk[:, overlap:], timestamp + overlap / self.sfreq, n - overlap
            if offset > 0:
                self.stats.gaps += 1
                if offset > self.max_gap:
                    log.warning("stream: gap of %.2f s; resetting filters and buffer", offset / self.sfreq)
                    self.stats.resets += 1
                    self.reset()
                else:
                    hold = np.repeat((self.last if self.last is not None else np.zeros(len(self.ch_names)))[:, None],
                                     offset, axis=1)
                    self.stats.gap_filled += offset
                    decisions += self._ingest(hold, np.ones(offset, bool), arrival, self.next_ts)
        if timestamp is None and self.next_ts is not None:  # no time given: it follows the previous chunk
            timestamp = self.next_ts
        if timestamp is not None:
            self.last_ts = timestamp
            self.next_ts = timestamp + n / self.sfreq
        x, filled = self._clean(chunk)
        self.stats.samples += n
        decisions += self._ingest(x, filled, arrival, timestamp)
        if len(decisions) > 1:
            self.stats.bursts += 1
        return decisions

    def _ingest(self, x: np.ndarray, filled: np.ndarray, arrival: float, t0: float | None) -> list[Decision]:
        y = self.pipe.process(x)
        out = []
        i = 0
        while i < y.shape[1]:
            take = min(self.until_decision, y.shape[1] - i)
            self._append(y[:, i:i + take], filled[i:i + take])
            i += take
            self.until_decision -= take
            if self.until_decision == 0:
                self.until_decision = self.hop
                window = self.buf[None, :, self.pos - self.n_times:self.pos]
                if self.align_matrix is not None:
                    with numpy_blas_single_thread():  # OpenBLAS threads would spin against the model's
                        window = (self.align_matrix @ window[0])[None]
                proba = self.predictor.predict_proba(window)[0]
                latency = time.perf_counter() - arrival
                sample = self.count - 1
                t = (t0 + (i - 1) / self.sfreq) if t0 is not None else sample / self.sfreq
                d = Decision(sample, t, proba, self.classes[int(np.argmax(proba))], latency,
                             int(self.filled[self.pos - self.n_times:self.pos].sum()))
                self.stats.decisions += 1
                self.stats.latencies_s.append(latency)
                out.append(d)
        return out

    def _append(self, y: np.ndarray, filled: np.ndarray) -> None:
        n = y.shape[1]
        self.count += n
        if n >= self.n_times:  # only the last window's worth can matter (a hop or chunk longer than a window)
            self.buf[:, :self.n_times] = y[:, -self.n_times:]
            self.filled[:self.n_times] = filled[-self.n_times:]
            self.pos = self.n_times
            return
        if self.pos + n > self.buf.shape[1]:  # keep the last window contiguous at the front
            keep = self.n_times
            self.buf[:, :keep] = self.buf[:, self.pos - keep:self.pos]
            self.filled[:keep] = self.filled[self.pos - keep:self.pos]
            self.pos = keep
        self.buf[:, self.pos:self.pos + n] = y
        self.filled[self.pos:self.pos + n] = filled
        self.pos += n


# --------------------------------------------------------------------------------- sources

def replay(decoder: StreamDecoder, data: np.ndarray, chunk_size: int = 16, realtime: bool = False,
           timestamps: bool = True) -> Iterator[Decision]:
    """Feed a recording ``(n_channels, n_samples)`` chunk by chunk, as fast as possible or in real time."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ConfigError(f"replay: chunk_size must be a positive number of samples, got {chunk_size!r}")
    start = time.perf_counter()
    for i in range(0, data.shape[1], chunk_size):
        if realtime:
            delay = start + i / decoder.sfreq - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        yield from decoder.push(data[:, i:i + chunk_size], i / decoder.sfreq if timestamps else None)


def load_replay(path: str | os.PathLike, decoder: StreamDecoder, max_seconds: float | None = None) -> np.ndarray:
    """A recording file as the decoder's input ``(n_channels, n_samples)``: channels picked and
    ordered by name (standard 10-20 spellings matched), the sampling rate checked, cut to
    ``max_seconds``. A file whose channel names match none of the model's is taken in file order,
    with a warning; one that has some of them but not all is a ConfigError naming the missing ones."""
    from ..io import read
    from ..montage import standardize_channel_name

    path = Path(path)
    kwargs = {"sfreq": decoder.sfreq} if path.suffix.lower() in {".csv", ".txt", ".tsv", ".npy"} else {}
    rec = read(path, **kwargs)
    if rec.sfreq != decoder.sfreq:
        raise ConfigError(f"{path}: {rec.sfreq:g} Hz, but the model expects {decoder.sfreq:g} Hz; resample it first")
    if rec.ch_names != decoder.ch_names:
        std = [standardize_channel_name(c) for c in rec.ch_names]
        want = [standardize_channel_name(c) for c in decoder.ch_names]
        found = [c for c in want if c in std]
        if len(found) == len(want):
            rec = rec.replace(ch_names=std).pick(want)
        elif found:
            missing = [c for c in decoder.ch_names if standardize_channel_name(c) not in std]
            raise ConfigError(f"{path}: lacks the model's channel(s) {missing[:8]}"
                              + (f" ... ({len(missing)} in all)" if len(missing) > 8 else "") + f"; it has {rec.ch_names[:8]}")
        else:
            log.warning("%s: none of its channel names (%s...) is one of the model's (%s...); replaying its %d channels "
                        "in file order as the model's", path, rec.ch_names[:3], decoder.ch_names[:3], rec.n_channels)
    if rec.n_channels != len(decoder.ch_names):
        raise ConfigError(f"{path}: {rec.n_channels} channels, the model expects {len(decoder.ch_names)}")
    if max_seconds is not None and not (np.isfinite(max_seconds) and max_seconds > 0):
        raise ConfigError(f"max_seconds must be positive, got {max_seconds!r}")
    n = rec.n_samples if max_seconds is None else min(rec.n_samples, int(round(max_seconds * rec.sfreq)))
    return rec.data[:, :n]


def lsl_decisions(decoder: StreamDecoder, name: str, *, timeout: float = 5.0, max_seconds: float | None = None,
                  max_idle_s: float = 2.0) -> Iterator[Decision]:
    """Resolve the LSL stream ``name``, pull chunks and decode them until ``max_seconds`` pass or
    no sample has arrived for ``max_idle_s`` seconds."""
    import pylsl

    streams = pylsl.resolve_byprop("name", name, minimum=1, timeout=timeout)
    if not streams:
        raise ConfigError(f"no LSL stream named {name!r} found within {timeout} s")
    info = streams[0]
    if info.channel_count() != len(decoder.ch_names):
        raise ConfigError(f"LSL stream {name!r} has {info.channel_count()} channels; the model expects "
                          f"{len(decoder.ch_names)} ({decoder.ch_names})")
    if info.nominal_srate() and abs(info.nominal_srate() - decoder.sfreq) > 1e-6:
        raise ConfigError(f"LSL stream {name!r} runs at {info.nominal_srate()} Hz; the model expects {decoder.sfreq} Hz")
    inlet = pylsl.StreamInlet(info, max_buflen=60, processing_flags=0)
    start = last_data = time.perf_counter()
    try:
        while max_seconds is None or time.perf_counter() - start < max_seconds:
            samples, stamps = inlet.pull_chunk(timeout=0.05)
            if samples:
                last_data = time.perf_counter()
                yield from decoder.push(np.asarray(samples, dtype=np.float32).T, float(stamps[0]))
            elif time.perf_counter() - last_data > max_idle_s:
                break
    finally:
        inlet.close_stream()
