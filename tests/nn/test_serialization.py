"""tensorgrad.save / tensorgrad.load: exact .npz round trips of state dicts, clear errors."""
import io
import zipfile

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.serialization import load, save


def _model():
    return nn.Sequential(nn.Linear(5, 4, seed=0), nn.BatchNorm1d(4), nn.ReLU(),
                         nn.Dropout(0.2, seed=3), nn.Linear(4, 2, seed=1))


def test_round_trip_is_exact_in_dtype_bits_and_order(tmp_path):
    sd = {"a": np.array([1.0, np.nan, -0.0, np.inf], np.float32),
          "b.c": np.arange(6, dtype=np.int64).reshape(2, 3),
          "d": np.float64(np.pi), "e": tg.tensor([1.5, 2.5], dtype=np.float64),
          "f": np.array("text"), "file": np.zeros(2)}  # 'file' is a parameter name of np.savez
    path = tmp_path / "state.ckpt"
    save(sd, path)
    assert path.exists() and not (tmp_path / "state.ckpt.npz").exists()
    back = load(path)
    assert list(back) == list(sd)
    for k, v in sd.items():
        v = np.asarray(v.data if isinstance(v, tg.Tensor) else v)
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        assert back[k].tobytes() == v.tobytes()
    assert zipfile.is_zipfile(path)  # a standard .npz: numpy reads it too
    with np.load(path) as npz:
        assert sorted(npz.files) == sorted(sd)


def test_save_a_module_and_load_into_another(tmp_path):
    m = _model()
    x = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
    m(x)  # running statistics and the dropout generator move
    save(m, tmp_path / "m.npz")
    other = _model()
    other.load_state_dict(load(tmp_path / "m.npz"))
    for mode in ("train", "eval"):  # dropout masks and running stats restored too
        getattr(m, mode)(), getattr(other, mode)()
        np.testing.assert_array_equal(m(x).data, other(x).data)


def test_float64_model_round_trips_exactly(tmp_path):
    m = _model().double()
    m.save(tmp_path / "m64.npz")
    sd = load(tmp_path / "m64.npz")
    assert sd["0.weight"].dtype == np.float64
    np.testing.assert_array_equal(sd["0.weight"], m[0].weight.data)


def test_file_objects_work():
    buf = io.BytesIO()
    save({"w": np.ones(3)}, buf)
    buf.seek(0)
    assert load(buf)["w"].tolist() == [1.0, 1.0, 1.0]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="junk.npz"):
        load(junk)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single array"):
        load(single)
    with pytest.raises(TypeError, match="entry 'bad'"):
        save({"bad": object()}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="Module or a dict"):
        save([np.zeros(2)], tmp_path / "x.npz")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save({"a": np.zeros(1)}, tmp_path / "missing_dir" / "x.npz")
    assert not list(tmp_path.glob(".tmp-*"))  # no temporary files left behind


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "keep.npz"
    save({"a": np.ones(2)}, path)
    with pytest.raises(TypeError):
        save({"ok": np.zeros(2), "bad": object()}, path)
    assert load(path)["a"].tolist() == [1.0, 1.0]


def test_save_names_the_file_when_the_disk_is_full(tmp_path, monkeypatch):
    import errno
    import os

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    path = tmp_path / "model.npz"
    save(_model(), path)
    before = path.read_bytes()
    monkeypatch.setattr(np.lib.format, "write_array", full)
    with pytest.raises(OSError) as info:
        save(_model(), path)
    assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]


def test_save_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    import os
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    save(_model(), tmp_path / "model.npz")
    assert len(synced) == 2
