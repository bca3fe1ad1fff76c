"""fit's checkpoints: a file format that cannot run code, refusals that name the file and the
difference, never a non-finite state on disk, and Ctrl-C saving the last finished update."""
import errno
import os
import pickle
import zipfile

import numpy as np
import pytest

from models.mlp import MLP
from tensorgrad.data import DataLoader
from tensorgrad.optim import SGD, Adam
from tensorgrad.train import TrainingDiverged, fit


def _data(n=120, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d)).astype(np.float32)
    return x, x[:, :3].argmax(1).astype(np.int64)


def _run(ckpt, optimizer="sgd", dims=(12, 16, 3), epochs=1, groups=1, lr=0.05, **kwargs):
    model = MLP(list(dims), dropout=0.1, seed=0)
    params = list(model.parameters())
    if groups == 2:
        params = [{"params": params[:2]}, {"params": params[2:]}]
    opt = (SGD(params, lr=lr, momentum=0.9) if optimizer == "sgd" else Adam(params, lr=lr))
    loader = DataLoader(_data(), batch_size=30, seed=0)
    kwargs.setdefault("checkpoint_every", 2)
    history = fit(model, opt, loader, epochs=epochs, checkpoint=str(ckpt), progress=False,
                  **kwargs)
    return model, opt, history


def _states_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.fixture
def ckpt(tmp_path):
    """A finished 1-epoch run's checkpoint (4 updates)."""
    path = tmp_path / "run.ckpt"
    _run(path)
    return path


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "run.ckpt"
    path.write_bytes(pickle.dumps({"format": "tensorgrad-checkpoint-1", "x": _Evil(marker)}))
    with pytest.raises(ValueError, match="pickle") as info:
        _run(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_an_old_pickle_checkpoint_is_refused_with_a_message_saying_so(tmp_path):
    path = tmp_path / "old.ckpt"
    path.write_bytes(pickle.dumps({"format": "tensorgrad-checkpoint-1", "step": 3}, protocol=4))
    with pytest.raises(ValueError, match=r"tensorgrad-checkpoint-1.*pickle|pickle.*checkpoint-1") \
            as info:
        _run(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "text"])
def test_a_damaged_checkpoint_names_the_file(ckpt, damage):
    data = ckpt.read_bytes()
    ckpt.write_bytes({"empty": b"", "truncated": data[:len(data) // 2],
                      "random": np.random.default_rng(0).bytes(len(data)),
                      "text": b"hello\n"}[damage])
    with pytest.raises(ValueError) as info:
        _run(ckpt)
    assert str(ckpt) in str(info.value)


def _same(a, b):
    """Nested states equal, arrays in dtype, shape and bits."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and (a == b or (a != a and b != b))


def test_a_flipped_byte_in_the_weights_is_detected(ckpt):
    model, _, _ = _run(ckpt)  # resumes a finished run: fit only loads the checkpoint
    weight = model.state_dict()["0.weight"].tobytes(order="A")  # as stored (memory order)
    original = ckpt.read_bytes()
    at = original.index(weight[:64]) + 100  # a byte inside the stored first-layer weights
    damaged = bytearray(original)
    damaged[at] ^= 0x01
    ckpt.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="damaged") as info:
        _run(ckpt)
    assert str(ckpt) in str(info.value)


def test_no_flipped_byte_anywhere_loads_a_different_state(ckpt):
    """Bytes all over the file (every 9th, and each of the last 600: the zip directory), flipped
    in turn: the load refuses, naming the file, or (a byte nothing reads, such as a zip
    timestamp) gives exactly the saved state; never another one."""
    from tensorgrad.checkpoint import load_checkpoint
    saved = load_checkpoint(ckpt)
    original = ckpt.read_bytes()
    silently_different, refused = [], 0
    positions = sorted(set(range(0, len(original), 9)) | set(range(len(original) - 600,
                                                                     len(original))))
    for i in positions:
        damaged = bytearray(original)
        damaged[i] ^= 0x10
        ckpt.write_bytes(bytes(damaged))
        try:
            state = load_checkpoint(ckpt)
        except ValueError as e:
            assert str(ckpt) in str(e), (i, str(e))
            refused += 1
            continue
        if not _same(state, saved):
            silently_different.append(i)
    assert not silently_different
    assert refused > len(positions) // 2  # most bytes matter: the check is not vacuous


def test_a_checkpoint_of_sgd_is_refused_by_adam_and_the_reverse(tmp_path):
    for saved, other in (("sgd", "adam"), ("adam", "sgd")):
        path = tmp_path / f"{saved}.ckpt"
        _run(path, optimizer=saved)
        with pytest.raises(ValueError) as info:
            _run(path, optimizer=other, epochs=2)
        message = str(info.value)
        assert str(path) in message and "SGD" in message and "Adam" in message


def test_a_different_parameter_group_layout_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    _run(path)
    with pytest.raises(ValueError, match="group") as info:
        _run(path, groups=2, epochs=2)
    assert str(path) in str(info.value)


def test_a_different_model_is_refused_naming_the_tensor(tmp_path):
    path = tmp_path / "run.ckpt"
    _run(path)
    with pytest.raises(ValueError, match=r"0\.weight") as info:
        _run(path, dims=(12, 20, 3), epochs=2)
    message = str(info.value)
    assert str(path) in message and "(16, 12)" in message and "(20, 12)" in message


def test_a_checkpoint_holds_no_pickle(ckpt):
    with zipfile.ZipFile(ckpt) as zf:
        for name in zf.namelist():
            if name.endswith(".npy"):
                array = np.lib.format.read_array(zf.open(name), allow_pickle=False)
                assert not array.dtype.hasobject


def test_a_diverging_run_keeps_its_last_finite_checkpoint_and_raises(tmp_path):
    path = tmp_path / "run.ckpt"
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="update") as info:
        _run(path, lr=1e10, checkpoint_every=1, epochs=3)
    assert path.exists()
    model = MLP([12, 16, 3], dropout=0.1, seed=0)
    # a fresh optimizer, 0 epochs: fit only loads the checkpoint (and checks it)
    fit(model, SGD(model.parameters(), lr=0.05, momentum=0.9),
        DataLoader(_data(), batch_size=30, seed=0), epochs=0, checkpoint=str(path),
        progress=False)
    assert all(np.isfinite(v).all() for v in model.state_dict().values()
               if np.issubdtype(v.dtype, np.floating))
    assert str(path) in str(info.value)


def test_batch_norm_statistics_that_overflow_raise_naming_the_buffer():
    """lr 1e6 with batch norm: the loss stays finite for a while but running_var becomes inf;
    fit raises (no checkpoint involved) naming that buffer."""
    x, y = _data()
    model = MLP([12, 16, 16, 3], seed=0)
    opt = SGD(model.parameters(), lr=1e6)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        fit(model, opt, DataLoader((x, y), batch_size=30, seed=0), epochs=3,
            progress=False)
    assert "4.running_var" in str(info.value) and "update" in str(info.value)


def test_a_full_disk_names_the_checkpoint_and_leaves_no_temporary(tmp_path, monkeypatch):
    """ENOSPC in the middle of writing a checkpoint: the error names the checkpoint, the
    previous checkpoint stays, and no temporary file is left."""
    import builtins
    real_open = builtins.open
    folder = tmp_path / "ckpts"
    folder.mkdir()
    path = folder / "run.ckpt"

    class FullDisk:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 200:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def full_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        inside = os.path.dirname(os.path.abspath(os.fspath(file))) == str(folder)
        return FullDisk(f) if inside and "b" in mode and "r" not in mode else f

    _run(path)
    before = path.read_bytes()
    monkeypatch.setattr(builtins, "open", full_open)
    with pytest.raises(OSError) as info:
        _run(path, epochs=2)
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)
    assert sorted(os.listdir(folder)) == ["run.ckpt"] and path.read_bytes() == before


def test_a_state_dict_file_or_another_format_version_is_refused(tmp_path, ckpt):
    import tensorgrad as tg
    from tensorgrad.checkpoint import save_checkpoint
    weights = tmp_path / "weights.npz"
    tg.save(MLP([12, 16, 3], seed=0), weights)
    with pytest.raises(ValueError, match="checkpoint.json") as info:
        _run(weights)
    assert str(weights) in str(info.value)
    future = tmp_path / "future.ckpt"
    save_checkpoint(future, {"step": 1})
    with zipfile.ZipFile(future) as zf:
        meta = zf.read("checkpoint.json").replace(b"checkpoint-2", b"checkpoint-9")
    with zipfile.ZipFile(future, "w") as zf:
        zf.writestr("checkpoint.json", meta)
    with pytest.raises(ValueError, match="tensorgrad-checkpoint-9.*tensorgrad-checkpoint-2"):
        _run(future)


def test_hyperparameters_come_from_the_checkpoint(tmp_path):
    """As in torch: the optimizer's lr (here set by hand after 4 updates) is the saved one,
    not the one the resumed run's optimizer was built with."""
    path = tmp_path / "run.ckpt"
    model, opt, _ = _run(path, lr=0.05)
    model = MLP([12, 16, 3], dropout=0.1, seed=0)
    opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
    fit(model, opt, DataLoader(_data(), batch_size=30, seed=0), epochs=1, checkpoint=str(path),
        progress=False)
    assert opt.param_groups[0]["lr"] == 0.05


def test_nested_state_round_trips_exactly(tmp_path):
    """Tuples, int-keyed dicts, numpy scalars (their type matters under NumPy 2's promotion
    rules), big ints (bit-generator states), NaN and F-ordered arrays come back as saved."""
    from tensorgrad.checkpoint import load_checkpoint, save_checkpoint
    state = {"betas": (0.9, 0.999), "state": {0: {"step": 3, "buf": np.ones((3, 2), order="F")}},
             "scalar": np.float32(1.5), "rng": np.random.default_rng(0).bit_generator.state,
             "nan": float("nan"), "text": np.array("x"), "__tensorgrad__": [None, True, "s"]}
    save_checkpoint(tmp_path / "s.ckpt", state)
    back = load_checkpoint(tmp_path / "s.ckpt")
    assert _same(back, state)
    assert back["state"][0]["buf"].flags.f_contiguous and type(back["scalar"]) is np.float32


class _Clock:
    """A stand-in for fit's `time` module whose clock advances 1 s per reading."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1.0
        return self.now


def test_checkpoint_seconds_saves_by_the_clock_too(tmp_path, monkeypatch):
    import tensorgrad.train as train
    saves = []
    real = train.save_checkpoint
    monkeypatch.setattr(train, "save_checkpoint",
                        lambda path, state: saves.append(state["step"]) or real(path, state))
    _run(tmp_path / "a.ckpt", epochs=3, checkpoint_every=100)   # 12 updates, 4 per epoch
    assert saves == [12]   # the end only
    saves.clear()
    monkeypatch.setattr(train, "time", _Clock())
    _run(tmp_path / "b.ckpt", epochs=3, checkpoint_every=100, checkpoint_seconds=3)
    assert len(saves) > 3 and saves[-1] == 12 and saves == sorted(set(saves))


def test_extra_state_is_saved_and_must_match(tmp_path):
    from tensorgrad.checkpoint import CheckpointError
    from tensorgrad.optim.swa_utils import AveragedModel
    model = MLP([12, 16, 3], seed=1)
    swa = AveragedModel(model)
    swa.update_parameters(model)
    _run(tmp_path / "run.ckpt", state={"swa": swa})
    again = AveragedModel(MLP([12, 16, 3], seed=2))
    _run(tmp_path / "run.ckpt", state={"swa": again})   # finished: restored, nothing to do
    assert int(again.n_averaged.data) == 1
    _states_equal(again.state_dict(), swa.state_dict())
    with pytest.raises(CheckpointError, match=r"extra state \['swa'\], this run has \[\]"):
        _run(tmp_path / "run.ckpt")
