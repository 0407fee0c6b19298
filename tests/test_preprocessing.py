import numpy as np
import pytest
from scipy.signal import sosfilt, welch

from biodecode import ConfigError, Recording
from biodecode.preprocessing import (CausalFilter, ExponentialMovingStandardizer, Pipeline, bandpass,
                                     common_average, design_bandpass, design_notch, exponential_moving_standardize,
                                     notch, resample, standardize)

SF = 250.0


def _power_at(x, f, sf=SF):
    freqs, p = welch(x, fs=sf, nperseg=1024, axis=-1)
    return p[..., np.argmin(abs(freqs - f))]


def _chunks(rng, n):
    """Random chunk boundaries including chunks of one sample."""
    cuts, pos = [], 0
    while pos < n:
        step = int(rng.choice([1, 1, 3, 17, 64, 250]))
        cuts.append((pos, min(n, pos + step)))
        pos += step
    return cuts


@pytest.mark.parametrize("design", [lambda: design_bandpass(SF, 8, 30), lambda: design_notch(SF, 50.0),
                                    lambda: design_bandpass(SF, None, 40, order=6)])
def test_chunked_causal_filter_equals_one_pass(rng, design):
    x = rng.standard_normal((4, 3000))
    sos = design()


    ref = sosfilt(sos, x, axis=-1)
    f = CausalFilter(sos, 4)
    out = np.concatenate([f.process(x[:, a:b]) for a, b in _chunks(rng, x.shape[1])], axis=1)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_bandpass_zero_phase_passes_band_and_stops_outside(rng):
    t = np.arange(5000) / SF
    x = np.sin(2 * np.pi * 12 * t) + np.sin(2 * np.pi * 60 * t) + np.sin(2 * np.pi * 1 * t)
    y = bandpass(x[None], SF, 8, 30)[0]
    assert _power_at(y, 12) > 0.8 * _power_at(x, 12)
    assert _power_at(y, 60) < 1e-3 * _power_at(x, 60)
    assert _power_at(y, 1) < 1e-3 * _power_at(x, 1)
    # zero phase: the in-band sine is not delayed
    inband = np.sin(2 * np.pi * 12 * t)
    assert np.corrcoef(y[500:-500], inband[500:-500])[0, 1] > 0.99


def test_notch_removes_line_noise(rng):
    t = np.arange(5000) / SF
    x = np.sin(2 * np.pi * 50 * t) + 0.1 * rng.standard_normal(t.size)
    y = notch(x[None], SF, 50.0)[0]
    assert _power_at(y, 50) < 1e-2 * _power_at(x, 50)


def test_filter_parameter_errors():
    with pytest.raises(ConfigError, match=r"h_freq=200 Hz must be in \(0, Nyquist=125.0 Hz\)"):
        design_bandpass(SF, 1, 200)
    with pytest.raises(ConfigError, match="must be below"):
        design_bandpass(SF, 30, 8)


def test_resample_length_and_content():
    t = np.arange(1600) / 160.0
    x = np.sin(2 * np.pi * 5 * t)[None].astype(np.float32)
    y = resample(x, 160.0, 128.0)
    assert y.shape == (1, 1280) and y.dtype == np.float32
    t2 = np.arange(1280) / 128.0
    assert np.max(abs(y[0, 100:-100] - np.sin(2 * np.pi * 5 * t2[100:-100]))) < 0.02


def test_car_and_standardize(rng):
    x = rng.standard_normal((5, 1000)) + 3.0
    np.testing.assert_allclose(common_average(x).mean(axis=0), 0, atol=1e-12)
    z = standardize(x)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=1), 1, atol=1e-9)


def test_ems_chunked_equals_whole_and_standardizes(rng):
    x = (rng.standard_normal((3, 20000)) * 5 + 2).astype(np.float32)
    whole = exponential_moving_standardize(x, factor_new=1e-2)
    ems = ExponentialMovingStandardizer(3, factor_new=1e-2)
    out = np.concatenate([ems.process(x[:, a:b]) for a, b in _chunks(rng, x.shape[1])], axis=1)
    np.testing.assert_allclose(out, whole, rtol=1e-4, atol=1e-4)
    assert abs(whole[:, 5000:].std() - 1) < 0.1 and abs(whole[:, 5000:].mean()) < 0.1


def _rec(rng, n_ch=4, n=5000):
    return Recording(rng.standard_normal((n_ch, n)), SF, [f"c{i}" for i in range(n_ch)], ["eeg"] * n_ch, ["V"] * n_ch)


def test_pipeline_config_round_trip_and_apply(rng):
    cfg = [{"name": "pick", "channels": ["c2", "c0"]}, {"name": "bandpass", "l_freq": 4.0, "h_freq": 40.0},
           {"name": "notch", "freq": 50.0}, {"name": "car"}, {"name": "resample", "sfreq": 125.0},
           {"name": "ems", "factor_new": 0.001}, {"name": "scale", "factor": 2.0}, {"name": "standardize"}]
    pipe = Pipeline.from_config(cfg)
    again = Pipeline.from_config(pipe.to_config())
    assert again.to_config() == pipe.to_config()
    out = pipe.apply(_rec(rng))
    assert out.ch_names == ["c2", "c0"] and out.sfreq == 125.0 and out.n_samples == 2500


@pytest.mark.parametrize("cfg, match", [
    ([{"name": "wavelets"}], r"unknown step 'wavelets'"),
    ([{"name": "bandpass", "low": 3}], r"preprocessing\[0\] \(bandpass\).*low"),
    (["bandpass"], r"must be a mapping with a 'name'"),
])
def test_pipeline_config_errors(cfg, match):
    with pytest.raises(ConfigError, match=match):
        Pipeline.from_config(cfg)


def test_streaming_pipeline_equals_offline_causal(rng):
    rec = _rec(rng)
    pipe = Pipeline.from_config([{"name": "bandpass", "l_freq": 4.0, "h_freq": 40.0, "causal": True},
                                 {"name": "notch", "freq": 50.0, "causal": True}, {"name": "car"},
                                 {"name": "ems", "factor_new": 0.01}])
    offline = pipe.apply(rec).data
    stream = pipe.stream(rec.sfreq, rec.ch_names)
    online = np.concatenate([stream.process(rec.data[:, a:b]) for a, b in _chunks(rng, rec.n_samples)], axis=1)
    np.testing.assert_allclose(online, offline, rtol=1e-4, atol=1e-4)


def test_non_causal_steps_refuse_streaming():
    with pytest.raises(ConfigError, match="'resample' has no streaming"):
        Pipeline.from_config([{"name": "resample", "sfreq": 100}]).stream(250.0, ["a"])
    with pytest.raises(ConfigError, match="'standardize' has no streaming"):
        Pipeline.from_config([{"name": "standardize"}]).stream(250.0, ["a"])
