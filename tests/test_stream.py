"""The streaming decoder on irregular input: every sample that arrives is decoded once or counted
as dropped, none is invented (gap fills are flagged), and a clean stream gives the offline windows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biodecode.deploy.predictor import Predictor
from biodecode.deploy.stream import StreamDecoder
from biodecode.errors import ConfigError

SFREQ, N_TIMES = 100.0, 8


class Recorder(Predictor):
    """A stand-in model that keeps every window it is given (cheap, exact)."""

    def __init__(self, n_times: int = N_TIMES):
        self.meta = {"sfreq": SFREQ, "ch_names": ["a", "b"], "n_times": n_times, "preprocessing": [],
                     "classes": ["x", "y"]}
        self.windows: list[np.ndarray] = []

    def logits(self, X: np.ndarray) -> np.ndarray:
        self.windows.extend(np.array(w) for w in X)
        return np.zeros((len(X), 2), np.float32)


def _signal(n: int) -> np.ndarray:
    """Sample k has value k + 1 on channel a (and its negative on b): windows show which samples they hold."""
    v = np.arange(1, n + 1, dtype=np.float32)
    return np.stack([v, -v])


def test_hop_and_chunk_longer_than_the_window():
    rec = Recorder()
    dec = StreamDecoder(rec, hop_s=0.25, max_gap_s=10)  # hop 25 samples, window 8
    x = _signal(200)
    out = []
    for i in range(0, 200, 30):  # chunks of 30 > window
        out += dec.push(x[:, i:i + 30], i / SFREQ)
    assert [d.sample for d in out] == list(range(7, 200, 25))
    for d, w in zip(out, rec.windows):
        np.testing.assert_array_equal(w[0], np.arange(d.sample - 7, d.sample + 1) + 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_timestamp_is_counted_and_the_chunk_follows_on(bad):
    dec = StreamDecoder(Recorder(), hop_s=0.01)
    x = _signal(40)
    dec.push(x[:, :10], 0.0)
    dec.push(x[:, 10:20], bad)
    dec.push(x[:, 20:40], 0.2)
    assert dec.stats.bad_timestamps == 1 and dec.stats.samples == 40 and dec.stats.gaps == 0
    assert dec.stats.dropped_samples == 0


def test_duplicates_within_the_timing_tolerance_are_dropped():
    dec = StreamDecoder(Recorder(), hop_s=0.01, jitter_s=0.05)  # a tolerance of 5 samples
    x = _signal(40)
    for i in range(0, 40, 2):  # every 2-sample chunk sent twice
        dec.push(x[:, i:i + 2], i / SFREQ)
        dec.push(x[:, i:i + 2], i / SFREQ)
    assert dec.stats.samples == 40 and dec.stats.dropped_samples == 40 and dec.stats.decisions == 40 - N_TIMES + 1


def test_a_chunk_overlapping_samples_already_taken_keeps_only_the_new_ones():
    rec = Recorder()
    dec = StreamDecoder(rec, hop_s=0.01, jitter_s=0.0)
    x = _signal(30)
    dec.push(x[:, :20], 0.0)
    dec.push(x[:, 15:30], 0.15)  # samples 15..19 again, then 20..29
    assert dec.stats.dropped_samples == 5 and dec.stats.samples == 30
    np.testing.assert_array_equal(rec.windows[-1][0], np.arange(23, 31))


def test_timestamps_on_some_chunks_only_insert_nothing():
    rec = Recorder()
    dec = StreamDecoder(rec, hop_s=0.01)
    x = _signal(60)
    for k, i in enumerate(range(0, 60, 6)):
        dec.push(x[:, i:i + 6], i / SFREQ if k % 3 == 0 else None)
    assert dec.stats.gaps == 0 and dec.stats.gap_filled == 0 and dec.stats.samples == 60
    assert [int(w[0, -1]) for w in rec.windows] == list(range(N_TIMES, 61))


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(ConfigError, match="hop_s must be at least one sample"):
        StreamDecoder(Recorder(), hop_s=0.0)
    with pytest.raises(ConfigError, match="hop_s"):
        StreamDecoder(Recorder(), hop_s=float("nan"))


# --------------------------------------------------------------------------- property-based

_chunk = st.tuples(st.just("chunk"), st.integers(1, 25), st.sampled_from(["ok", "ok", "ok", "none", "nan", "jitter"]),
                   st.booleans())
_events = st.lists(st.one_of(_chunk, st.tuples(st.just("gap"), st.integers(1, 40)), st.just(("dup",)),
                             st.tuples(st.just("old"), st.integers(1, 4))), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_events)
def test_every_sample_is_decoded_once_or_counted_as_dropped(events):
    rec = Recorder()
    dec = StreamDecoder(rec, hop_s=0.01, max_gap_s=100.0, jitter_s=0.02)  # hop 1 sample, gaps filled, jitter 2
    signal = _signal(2000)
    pos, sent, pushed, decisions = 0, [], 0, []
    for ev in events:
        if ev[0] == "chunk":
            _, n, mode, with_nan = ev
            if pos + n > signal.shape[1]:
                break
            x = signal[:, pos:pos + n].copy()
            if with_nan:
                x[0, n // 2] = np.nan
            ts = {"ok": pos / SFREQ, "none": None, "nan": float("nan"),
                  "jitter": pos / SFREQ + 0.004}[mode]  # under half a sample: noise, not a gap
            sent.append((x, ts))
            pos += n
        elif ev[0] == "gap":
            pos += ev[1]
            continue
        elif ev[0] == "dup" and sent:
            x, ts = sent[-1]
        elif ev[0] == "old" and len(sent) > ev[1]:
            x, ts = sent[-1 - ev[1]]
        else:
            continue
        if ev[0] in ("dup", "old") and (ts is None or not np.isfinite(ts)):
            continue  # a resent chunk with no time on it is new data as far as anyone can tell
        pushed += x.shape[1]
        decisions += dec.push(x, ts)
    s = dec.stats
    # accounting: what arrived was taken or dropped; what was taken (and held gap samples) was decoded
    assert s.samples + s.dropped_samples == pushed
    assert s.resets == 0 and len(decisions) == len(rec.windows)
    assert len(decisions) == max(0, s.samples + s.gap_filled - (N_TIMES - 1))
    lasts = []
    for d, w in zip(decisions, rec.windows):
        v = w[0]
        assert np.all(np.diff(v) >= 0), v  # nothing repeated out of order or re-taken
        assert int(np.sum(np.diff(v) == 0)) <= d.filled, (v, d.filled)  # equal neighbours only where filled
        if v[-1] != v[-2] or d.filled == 0:
            lasts.append(v[-1])
    assert all(b > a for a, b in zip(lasts, lasts[1:]))  # each real sample is the newest of one decision at most


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=30), stamped=st.booleans(),
       hop=st.integers(1, 12))
def test_a_clean_stream_gives_the_offline_windows(sizes, stamped, hop):
    rec = Recorder()
    dec = StreamDecoder(rec, hop_s=hop / SFREQ)
    total = sum(sizes)
    x = _signal(total)
    pos = 0
    for n in sizes:
        dec.push(x[:, pos:pos + n], pos / SFREQ if stamped else None)
        pos += n
    ends = list(range(N_TIMES, total + 1, hop))
    assert len(rec.windows) == len(ends)
    for e, w in zip(ends, rec.windows):
        np.testing.assert_array_equal(w, x[:, e - N_TIMES:e])


def test_alignment_runs_with_numpy_blas_on_one_thread():
    """The per-window alignment product must not wake OpenBLAS's threads, which would spin against
    the model's (measured: 5.9 ms median, 92 ms p95 per decision instead of 1.0 / 1.4 ms)."""
    from biodecode.threads import blas_threads

    seen: list[list[int]] = []

    class Matrix:  # stands in for the calibrated matrix and records BLAS threads when applied
        def __matmul__(self, x):
            seen.append(blas_threads())
            return x

    rec = Recorder()
    dec = StreamDecoder(rec, hop_s=0.08)
    dec.align_matrix = Matrix()
    x = _signal(64)
    dec.push(x, 0.0)
    assert len(seen) == len(rec.windows) > 0
    assert all(t == [1] * len(t) for t in seen), seen
    np.testing.assert_array_equal(rec.windows[-1][0], x[0, -N_TIMES:])  # the windows themselves unchanged


def test_latency_of_an_aligned_model_includes_its_calibrated_alignment():
    """bench-latency's replay calibrates a model trained on aligned windows (it would otherwise be
    refused) and every measured decision goes through the alignment product."""
    from biodecode.deploy.latency import stream_latency

    rec = Recorder(n_times=20)
    rec.meta["alignment"] = {"method": "euclidean", "by": ["subject"]}
    row = stream_latency(rec, seconds=3.0, chunk_size=8, hop_s=0.25, calibrate_s=2.0)
    assert row["aligned"] and row["decisions"] > 0
    w = np.stack(rec.windows[-row["decisions"]:])
    cov = np.mean([x @ x.T / x.shape[1] for x in w], axis=0)
    np.testing.assert_allclose(cov, np.eye(2), atol=0.25)  # whitened by this "user's" matrix (noise: near I)
    plain = Recorder(n_times=20)
    assert stream_latency(plain, seconds=1.0)["aligned"] is False
