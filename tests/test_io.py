"""Readers on the real files in BIODECODE_DATA_DIR, and on broken copies of them."""

import shutil

import numpy as np
import pytest

from biodecode import ConfigError, DataFormatError
from biodecode.io import check_edf_header, read, read_csv, read_edf, read_npy, read_wfdb

pytestmark = pytest.mark.realdata


@pytest.fixture
def edf_path(data_dir):
    return data_dir / "eegmmidb" / "S001" / "S001R04.edf"


def test_edf_physionet_run(edf_path):
    rec = read(edf_path)
    assert rec.n_channels == 64 and rec.sfreq == 160.0 and rec.n_samples == 20000
    assert set(rec.ch_types) == {"eeg"} and set(rec.units) == {"V"}
    assert rec.events.counts() == {"T0": 15, "T1": 8, "T2": 7}
    # physical units: EEG amplitudes in volts are tens of microvolts
    assert 1e-6 < float(np.std(rec.data)) < 1e-3
    assert rec.events.onset[0] == 0.0 and np.all(np.diff(rec.events.onset) > 0)


def test_wfdb_mitdb_record_100(data_dir):
    rec = read(data_dir / "mitdb" / "100")
    assert rec.n_channels == 2 and rec.sfreq == 360.0 and rec.n_samples == 650000
    assert rec.ch_names == ["MLII", "V5"] and rec.units == ["mV", "mV"]
    beats = [s for s in rec.events.label if s != "+"]
    assert len(beats) == 2273
    assert rec.events.counts()["N"] == 2239
    assert rec.events.extra[0] == "(N"  # rhythm annotation's aux note
    assert 0.1 < float(np.ptp(rec.data[0])) < 10  # millivolts


def test_wfdb_accepts_hea_and_dat_paths(data_dir):
    a = read(data_dir / "mitdb" / "100.hea", annotator=None)
    b = read_wfdb(data_dir / "mitdb" / "100.dat", annotator=None)
    assert len(a.events) == 0 and np.array_equal(a.data[:, :100], b.data[:, :100])


def test_cinc2017_header_quirk_is_read_by_hand(data_dir):
    # wfdb refuses this header (date before time); the fallback reads it with the .mat signal
    rec = read(data_dir / "cinc2017" / "validation" / "A00001.hea")
    assert rec.n_channels == 1 and rec.sfreq == 300.0 and rec.n_samples == 9000
    assert rec.units == ["mV"]
    assert abs(rec.data[0, 0] - (-0.127)) < 1e-6  # -127 adu / 1000 adu per mV


def test_csv_myo_trial(data_dir):
    rec = read(data_dir / "semg-longterm-myo" / "data" / "sub1" / "day1" / "D1M1T1.csv", sfreq=200, ch_type="emg",
               unit="a.u.")
    assert rec.data.shape == (8, 300) and rec.sfreq == 200.0
    assert rec.ch_names[0] == "ch1"


def test_npy_round_trip(tmp_path, rng):
    arr = rng.standard_normal((3, 500)).astype(np.float32)
    np.save(tmp_path / "x.npy", arr)
    rec = read(tmp_path / "x.npy", sfreq=250, ch_names=["a", "b", "c"])
    assert np.array_equal(rec.data, arr)
    rec2 = read_npy(tmp_path / "x.npy", sfreq=250, channels_first=False)
    assert rec2.data.shape == (500, 3)


def test_csv_with_header_names_channels(tmp_path):
    (tmp_path / "s.csv").write_text("Fz,Cz\n1,2\n3,4\n5,6\n")
    rec = read_csv(tmp_path / "s.csv", sfreq=100)
    assert rec.ch_names == ["Fz", "Cz"] and rec.data.shape == (2, 3)


# ---------------------------------------------------------------- broken input

@pytest.mark.parametrize(
    "name, kw",
    [("nothere.edf", {}), ("nothere.hea", {}), ("nothere.bin", {}), ("nothere.csv", {"sfreq": 100}),
     ("nothere.npy", {"sfreq": 100})],
)
def test_missing_file(tmp_path, name, kw):
    with pytest.raises(FileNotFoundError, match="nothere"):
        read(tmp_path / name, **kw)


def test_a_directory_is_not_called_missing(tmp_path):
    (tmp_path / "run.edf").mkdir()
    with pytest.raises(DataFormatError, match=r"run\.edf: is a directory, not a file"):
        read(tmp_path / "run.edf")
    with pytest.raises(DataFormatError, match="is a directory"):
        read_csv(tmp_path / "run.edf", sfreq=100)


def test_csv_with_blank_lines_before_its_header(tmp_path):
    (tmp_path / "b.csv").write_text("\n\nFp1,Fp2\n1,2\n3,4\n")
    rec = read(tmp_path / "b.csv", sfreq=100)
    assert rec.ch_names == ["Fp1", "Fp2"] and rec.data.tolist() == [[1, 3], [2, 4]]
    (tmp_path / "blank.csv").write_text("\n \n\n")
    with pytest.raises(DataFormatError, match=r"blank\.csv: only blank lines"):
        read(tmp_path / "blank.csv", sfreq=100)


def test_a_value_too_large_is_called_infinite_not_nan(tmp_path):
    (tmp_path / "big.csv").write_text("a,b\n1e400,2\n3,4\n")
    with pytest.raises(DataFormatError, match=r"channel 'a' has 1 infinite value\(s\) \(inf, or a number too large"):
        read(tmp_path / "big.csv", sfreq=100)


def test_options_a_reader_does_not_take_are_named(edf_path):
    with pytest.raises(ConfigError, match="takes no \\['sfreq'\\] .*carry their own sampling rate"):
        read(edf_path, sfreq=160.0)


def test_unknown_extension(tmp_path):
    p = tmp_path / "signal.xyz"
    p.write_text("1,2,3")
    with pytest.raises(DataFormatError, match=r"signal\.xyz: unknown file type '\.xyz'"):
        read(p)


def test_truncated_edf(tmp_path, edf_path):
    p = tmp_path / "trunc.edf"
    p.write_bytes(edf_path.read_bytes()[:1_000_000])
    with pytest.raises(DataFormatError, match=r"trunc\.edf: truncated file: header says \d+ data records"):
        read(p)


def test_truncated_edf_header(tmp_path, edf_path):
    p = tmp_path / "tiny.edf"
    p.write_bytes(edf_path.read_bytes()[:100])
    with pytest.raises(DataFormatError, match=r"tiny\.edf: truncated header"):
        read(p)


def test_edf_header_lies_about_length(tmp_path, edf_path):
    raw = bytearray(edf_path.read_bytes())
    n_records = int(raw[236:244].decode())
    info = check_edf_header(edf_path)
    assert info["n_records"] == n_records and info["n_signals"] == 65  # 64 EEG + annotations
    raw[236:244] = f"{n_records - 10:<8d}".encode()  # claims fewer records than the file holds
    p = tmp_path / "lies.edf"
    p.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match=r"lies\.edf: header says \d+ data records .* does not match"):
        read_edf(p)


def _patched_edf(edf_path, dest, start: int, text: bytes):
    """A copy of ``edf_path`` at ``dest`` with the header bytes from ``start`` replaced by ``text``."""
    raw = bytearray(edf_path.read_bytes())
    raw[start:start + len(text)] = text
    dest.write_bytes(bytes(raw))
    return dest


def test_edf_header_garbage_field(tmp_path, edf_path):
    p = _patched_edf(edf_path, tmp_path / "garbage.edf", 236, b"abcdefgh")
    with pytest.raises(DataFormatError, match=r"garbage\.edf: header field 'number of data records' is not a number"):
        read(p)


def _copy_record(data_dir, tmp_path, rec="100"):
    for ext in ("hea", "dat", "atr"):
        shutil.copy(data_dir / "mitdb" / f"{rec}.{ext}", tmp_path / f"{rec}.{ext}")
    return tmp_path / rec


def test_wfdb_truncated_data(tmp_path, data_dir):
    base = _copy_record(data_dir, tmp_path)
    dat = base.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:100_000])
    with pytest.raises(DataFormatError, match=r"100\.dat: truncated or header disagrees with data: .* 650000 samples"):
        read(base)


def test_wfdb_header_longer_than_data(tmp_path, data_dir):
    base = _copy_record(data_dir, tmp_path)
    hea = base.with_suffix(".hea")
    hea.write_text(hea.read_text().replace("100 2 360 650000", "100 2 360 700000", 1))
    with pytest.raises(DataFormatError, match="700000 samples"):
        read(base)


def test_wfdb_missing_annotation_named(tmp_path, data_dir):
    base = _copy_record(data_dir, tmp_path)
    base.with_suffix(".atr").unlink()
    with pytest.raises(DataFormatError, match=r"100\.atr: annotation file is missing"):
        read_wfdb(base, annotator="atr")
    assert len(read_wfdb(base).events) == 0  # "auto" reads none when absent


def test_wfdb_missing_signal_file(tmp_path, data_dir):
    base = _copy_record(data_dir, tmp_path)
    base.with_suffix(".dat").unlink()
    with pytest.raises(DataFormatError, match=r"signal file .*100\.dat is missing"):
        read(base)


def test_csv_nan_names_channel(tmp_path):
    (tmp_path / "nan.csv").write_text("1,2\n3,nan\n5,6\n")
    with pytest.raises(DataFormatError, match=r"nan\.csv: channel 'ch2' has 1 NaN \(missing\) value\(s\), first at sample 1"):
        read(tmp_path / "nan.csv", sfreq=100)
    assert np.isnan(read(tmp_path / "nan.csv", sfreq=100, allow_nan=True).data[1, 1])


def test_npy_nan_names_channel(tmp_path):
    arr = np.zeros((2, 10))
    arr[0, 3] = np.inf
    np.save(tmp_path / "inf.npy", arr)
    with pytest.raises(DataFormatError, match=r"inf\.npy: channel 'x' has 1 infinite value"):
        read(tmp_path / "inf.npy", sfreq=10, ch_names=["x", "y"])


def test_truncated_npy(tmp_path, rng):
    np.save(tmp_path / "t.npy", rng.standard_normal((4, 1000)))
    raw = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFormatError, match=r"t\.npy: not a readable \.npy file"):
        read(tmp_path / "t.npy", sfreq=10)


def test_csv_requires_sampling_rate_and_numbers(tmp_path):
    (tmp_path / "a.csv").write_text("1,2\n3,4\n")
    with pytest.raises(TypeError):
        read(tmp_path / "a.csv")  # sfreq is a required keyword
    with pytest.raises(DataFormatError, match="explicit positive sampling rate"):
        read(tmp_path / "a.csv", sfreq=0)
    (tmp_path / "b.csv").write_text("1,2\n3,x\n")
    with pytest.raises(DataFormatError, match=r"b\.csv: non-numeric values"):
        read(tmp_path / "b.csv", sfreq=10)


def test_wrong_channel_name_count(tmp_path):
    (tmp_path / "c.csv").write_text("1,2\n3,4\n")
    with pytest.raises(DataFormatError, match=r"c\.csv: 3 channel names given but the file has 2 channels"):
        read(tmp_path / "c.csv", sfreq=10, ch_names=["a", "b", "c"])


# ------------------------------------------------------------------ readers never silently wrong

def test_edf_numpy_reader_equals_mne(data_dir):
    """The fast EDF path gives MNE's values, names, rate and annotations exactly."""
    for f in sorted((data_dir / "eegmmidb").glob("S00[12]/*R0[3-5].edf")):
        a, b = read_edf(f, engine="mne"), read_edf(f)
        np.testing.assert_array_equal(a.data, b.data)
        assert a.ch_names == b.ch_names and a.sfreq == b.sfreq and a.meta == b.meta
        np.testing.assert_array_equal(a.events.onset, b.events.onset)
        np.testing.assert_array_equal(a.events.duration, b.events.duration)
        assert list(a.events.label) == list(b.events.label)


def _edf_field(raw: bytearray, signal: int, field: str, value: str, ns: int = 65) -> None:
    """Overwrite one per-signal field of an EDF header."""
    widths = [("label", 16), ("transducer", 80), ("dimension", 8), ("phys_min", 8), ("phys_max", 8),
              ("dig_min", 8), ("dig_max", 8), ("prefilter", 80), ("samples", 8)]
    off = 256
    for name, w in widths:
        if name == field:
            start = off + w * signal
            raw[start:start + w] = f"{value:<{w}s}".encode()
            return
        off += w * ns


@pytest.mark.parametrize("field,value,message", [
    ("phys_min", "-8092", r"signal 3 \('Fcz\.'\) has equal physical minimum and maximum"),
    ("dig_min", "8091", r"signal 3 \('Fcz\.'\) has equal digital minimum and maximum"),
])
def test_edf_equal_min_max_is_an_error(tmp_path, edf_path, field, value, message):
    raw = bytearray(edf_path.read_bytes())
    other = "phys_max" if field == "phys_min" else "dig_max"
    _edf_field(raw, 3, field, value)
    _edf_field(raw, 3, other, value)
    p = tmp_path / "flat.edf"
    p.write_bytes(bytes(raw))
    for engine in ("auto", "mne"):
        with pytest.raises(DataFormatError, match=r"flat\.edf: " + message):
            read_edf(p, engine=engine)


def test_edf_record_duration_zero_is_an_error(tmp_path, edf_path):
    p = _patched_edf(edf_path, tmp_path / "zero.edf", 244, b"0       ")
    with pytest.raises(DataFormatError, match=r"zero\.edf: header field 'duration of a data record' is 0"):
        read(p)


def test_edf_unknown_record_count_hiding_a_cut(tmp_path, edf_path):
    whole = _patched_edf(edf_path, tmp_path / "whole.edf", 236, b"-1      ")
    assert read(whole).n_samples == read(edf_path).n_samples  # -1 with whole records: derived from the size
    cut = tmp_path / "cut.edf"
    cut.write_bytes(whole.read_bytes()[:-1000])
    with pytest.raises(DataFormatError, match=r"cut\.edf: header says -1 data records .* the file is cut"):
        read(cut)


def test_wfdb_truncated_annotations(tmp_path, data_dir):
    base = _copy_record(data_dir, tmp_path)
    atr = base.with_suffix(".atr")
    data = atr.read_bytes()
    atr.write_bytes(data[: len(data) // 2 // 2 * 2])  # cut at a whole annotation: wfdb alone reads half
    with pytest.raises(DataFormatError, match=r"100\.atr: truncated annotation file .* no end-of-file marker"):
        read_wfdb(base)


@pytest.mark.parametrize("change,message", [
    (lambda t: t.replace("100 2 360 650000", "100 2 360 600000", 1), r"100\.dat: \d+ bytes more than header"),
    (None, r"100\.dat: 7 bytes more than header"),
])
def test_wfdb_data_longer_than_header_says(tmp_path, data_dir, change, message):
    base = _copy_record(data_dir, tmp_path)
    if change is None:
        dat = base.with_suffix(".dat")
        dat.write_bytes(dat.read_bytes() + b"\x00" * 7)  # trailing bytes
    else:
        hea = base.with_suffix(".hea")
        hea.write_text(change(hea.read_text()))
    with pytest.raises(DataFormatError, match=message):
        read(base)


def test_wfdb_unknown_annotation_symbol(tmp_path, data_dir):
    base = _copy_record(data_dir, tmp_path)
    atr = base.with_suffix(".atr")
    raw = bytearray(atr.read_bytes())
    pair = int.from_bytes(raw[8:10], "little")
    assert pair >> 10 == 1  # a normal beat
    raw[8:10] = ((42 << 10) | (pair & 0x3FF)).to_bytes(2, "little")  # code 42 is not defined
    atr.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match=r"100\.atr: 1 annotation\(s\) with an unknown code"):
        read_wfdb(base)


def test_wfdb_zero_sampling_rate_blames_the_header(tmp_path, data_dir):
    base = _copy_record(data_dir, tmp_path)
    hea = base.with_suffix(".hea")
    hea.write_text(hea.read_text().replace("100 2 360 650000", "100 2 0 650000", 1))
    with pytest.raises(DataFormatError, match=r"100\.hea: .*sampling"):
        read_wfdb(base)


def test_complex_npy_is_an_error(tmp_path, rng):
    p = tmp_path / "c.npy"
    np.save(p, rng.standard_normal((2, 50)) + 1j * rng.standard_normal((2, 50)))
    with pytest.raises(DataFormatError, match=r"c\.npy: complex values"):
        read_npy(p, sfreq=100.0)
