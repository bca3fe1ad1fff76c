"""DataLoader's prefetch thread (the fast path "prefetch_batch"): the same batches, bit for bit
and in the same order, with it on, off and in reference mode; state_dict() describes the batches
handed out, not those prepared ahead; errors, `break`, dropped iterators and Ctrl-C end the
thread."""
import copy
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad.data import DataLoader, GaussianNoise, ImageArray, Normalize
from tensorgrad.optim import SGD
from tensorgrad.optim.lr_scheduler import CyclicLR
from tensorgrad.train import fit

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fast_and_no_thread_left():
    """Each test starts in fast mode and must leave no prefetch thread running."""
    with tg.fast_mode(True):
        yield
    assert _prefetch_threads() == []


def _prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "tensorgrad-prefetch"]


def _hits(reset=False):
    return tg.fast_paths(reset=reset)["prefetch_batch"].hits


def _images(n, d=12, seed=0):
    """(ImageArray of uint8 images with a Normalize, labels): the lean path."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, d), dtype=np.uint8)
    norm = Normalize.fit(ImageArray(pixels))
    return ImageArray(pixels, norm), np.arange(n) * 10


def _same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _epochs(loader, epochs):
    return [tuple(np.copy(a) for a in batch) for _ in range(epochs) for batch in loader]


def _assert_same_batches(got, want):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert all(_same(a, b) for a, b in zip(g, w)), f"batch {i} differs"


class Recording:
    """An array-like that records the rows asked for, optionally waits, and may raise."""

    def __init__(self, x, delay=0.0, fail_at=None):
        self.x, self.delay, self.fail_at = x, delay, fail_at
        self.shape, self.dtype = x.shape, x.dtype
        self.calls = 0

    def __len__(self):
        return len(self.x)

    def _skip_finite_scan(self):  # (check_finite would read every row: not counted as a batch)
        return True

    def __getitem__(self, idx):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.fail_at is not None and self.calls == self.fail_at:
            raise ValueError(f"cannot read rows {list(idx)[:2]}... (call {self.calls})")
        return self.x[idx]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 90), batch_size=st.integers(1, 25), drop_last=st.booleans(),
       shuffle=st.booleans(), seed=st.integers(0, 2**32 - 1), factor=st.sampled_from([1, 2, 3]),
       lean=st.booleans())
def test_batches_are_bitwise_the_same_with_prefetch_on_off_and_in_reference_mode(
        n, batch_size, drop_last, shuffle, seed, factor, lean):
    data = _images(n, seed=seed % 7) if lean else (
        np.random.default_rng(seed).standard_normal((n, 5)).astype(np.float32), np.arange(n))

    def run(prefetch_factor):
        loader = DataLoader(data, batch_size=batch_size, shuffle=shuffle, seed=seed,
                            drop_last=drop_last, prefetch_factor=prefetch_factor)
        return _epochs(loader, 3), loader.state_dict()

    _hits(reset=True)
    prefetched, state = run(factor)
    assert _hits(reset=True) == len(prefetched)
    plain, plain_state = run(0)
    assert _hits() == 0
    _assert_same_batches(prefetched, plain)
    assert pickle.dumps(state) == pickle.dumps(plain_state)
    for off in ({}, {"paths": ["prefetch_batch"]}):  # reference mode; the one path off
        with tg.fast_mode(False, **off):
            ref, ref_state = run(factor)
        assert _hits() == 0
        _assert_same_batches(ref, plain)
        assert pickle.dumps(ref_state) == pickle.dumps(plain_state)


def test_prefetching_is_off_by_default_and_refuses_random_transforms():
    x, y = _images(50)
    _hits(reset=True)
    assert len(_epochs(DataLoader((x, y), batch_size=10, seed=0), 1)) == 5
    assert _hits() == 0
    noisy = ImageArray(x.images, GaussianNoise(0.1, seed=0))
    with pytest.raises(ValueError, match=r"arrays\[0\] is an ImageArray whose transform "
                                         r"\(.*\) may draw random numbers"):
        DataLoader((noisy, y), batch_size=10, prefetch_factor=2)
    assert len(_epochs(DataLoader((noisy, y), batch_size=10), 1)) == 5  # without: as before
    for arrays in [(x, y), (x.images, y), (ImageArray(x.images), y),
                   (Recording(np.ones((50, 2))), y)]:  # any other array-like too, when asked
        _hits(reset=True)
        assert len(_epochs(DataLoader(arrays, batch_size=10, prefetch_factor=1), 1)) == 5
        assert _hits() == 5


def test_the_environment_switches_prefetching_off():
    code = ("import numpy as np, tensorgrad as tg; from tensorgrad.data import DataLoader; "
            "list(DataLoader(np.ones((30, 2)), batch_size=10, prefetch_factor=2)); "
            "print(tg.is_fast('prefetch_batch'), tg.fast_paths()['prefetch_batch'].hits)")
    for off, expected in (("prefetch_batch", "False 0"), ("", "True 3")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=REPO, env={**os.environ, "TENSORGRAD_FAST": "1",
                                            "TENSORGRAD_FAST_OFF": off})
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == expected.split()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), batch_size=st.integers(1, 16), drop_last=st.booleans(),
       stop=st.integers(0, 40), seed=st.integers(0, 1000), factor=st.sampled_from([1, 2, 4]))
def test_state_dict_describes_the_consumer_not_the_prefetcher(n, batch_size, drop_last, stop,
                                                               seed, factor):
    """After `stop` batches (the thread running up to `factor` batches ahead), state_dict() is
    the state a loader without prefetching has after `stop` batches, and a loader restored from
    it yields what the original yields next."""
    x, y = _images(n, seed=seed % 5)
    kw = dict(batch_size=batch_size, drop_last=drop_last)
    original = DataLoader((x, y), seed=seed, prefetch_factor=factor, **kw)
    plain = DataLoader((x, y), seed=seed, prefetch_factor=0, **kw)
    per_epoch = len(original)
    if per_epoch == 0:
        assert _epochs(original, 2) == []
        return
    stop = stop % (3 * per_epoch)
    state = copy.deepcopy(original.state_dict()) if stop == 0 else None
    seen = 0
    while state is None:
        for _ in original:
            seen += 1
            if seen == stop:  # may be the last batch of an epoch
                time.sleep(0.002)  # (the thread is usually ahead by now)
                state = copy.deepcopy(original.state_dict())
                break
    plain_seen = 0
    while plain_seen < stop:
        for _ in plain:
            plain_seen += 1
            if plain_seen == stop:
                break
    assert pickle.dumps(state) == pickle.dumps(plain.state_dict())
    rest = _epochs(original, 3)
    restored = DataLoader((x, y), seed=seed + 1, prefetch_factor=factor, **kw)
    restored.load_state_dict(pickle.loads(pickle.dumps(state)))
    _assert_same_batches(_epochs(restored, 3), rest)
    _assert_same_batches(_epochs(plain, 3), rest)


def test_state_dict_is_the_consumers_while_the_thread_has_gathered_ahead():
    rec = Recording(np.arange(40.0).reshape(20, 2))
    loader = DataLoader((rec, np.arange(20)), batch_size=5, seed=3, prefetch_factor=2)
    plain = DataLoader((np.arange(40.0).reshape(20, 2), np.arange(20)), batch_size=5, seed=3,
                       prefetch_factor=0)
    it, plain_it = iter(loader), iter(plain)
    next(it), next(plain_it)
    deadline = time.monotonic() + 10
    while rec.calls < 3 and time.monotonic() < deadline:  # batches 2 and 3 prepared ahead
        time.sleep(0.001)
    assert rec.calls == 3
    assert loader.state_dict()["position"] == 1
    assert pickle.dumps(loader.state_dict()) == pickle.dumps(plain.state_dict())
    restored = DataLoader((np.arange(40.0).reshape(20, 2), np.arange(20)), batch_size=5,
                          seed=0)
    restored.load_state_dict(loader.state_dict())
    _assert_same_batches([tuple(b) for b in it], _epochs(restored, 1))
    del it, plain_it


def test_an_error_on_the_thread_is_raised_in_the_loop_when_its_batch_is_due():
    def run(factor):
        rec = Recording(np.arange(60.0).reshape(30, 2), fail_at=3)
        loader = DataLoader((rec, np.arange(30)), batch_size=5, seed=0, prefetch_factor=factor)
        got = []
        with pytest.raises(ValueError, match=r"cannot read rows .* \(call 3\)") as info:
            for xb, _ in loader:
                got.append(xb.copy())
        assert _prefetch_threads() == []
        state = pickle.dumps(loader.state_dict())
        rest = [xb.copy() for xb, _ in loader]  # the next loop continues after the failed batch
        return got, info.value, state, rest

    got, error, state, rest = run(2)
    plain_got, plain_error, plain_state, plain_rest = run(0)
    assert len(got) == len(plain_got) == 2 and str(error) == str(plain_error)
    assert any("prefetch thread" in note for note in error.__notes__)
    assert state == plain_state
    assert len(rest) == 3
    _assert_same_batches([(a,) for a in got + rest], [(a,) for a in plain_got + plain_rest])


def test_break_and_a_new_loop_continue_the_epoch_and_end_the_thread():
    x, y = _images(100)
    reference = _epochs(DataLoader((x, y), batch_size=10, seed=4, prefetch_factor=0), 2)
    loader = DataLoader((x, y), batch_size=10, seed=4, prefetch_factor=3)
    got = []
    for batch in loader:
        got.append(tuple(np.copy(a) for a in batch))
        if len(got) in (1, 4):
            break
    assert _prefetch_threads() == []
    for batch in loader:
        got.append(tuple(np.copy(a) for a in batch))
        if len(got) == 4:
            break
    got += _epochs(loader, 1)  # the rest of the first epoch
    assert len(got) == 10
    got += _epochs(loader, 1)
    _assert_same_batches(got, reference)


def test_the_thread_is_a_daemon_and_a_dropped_iterator_ends_it():
    x, y = _images(100)
    loader = DataLoader((x, y), batch_size=10, seed=0, prefetch_factor=2)
    before = dict(vars(loader))
    it = iter(loader)
    next(it)
    (thread,) = _prefetch_threads()
    assert thread.daemon
    assert vars(loader).keys() == before.keys()  # the loader holds no thread, queue or batch
    copy.deepcopy(loader)  # and can still be copied and pickled mid-epoch
    pickle.dumps(loader)
    del it
    assert not thread.is_alive()
    assert loader.state_dict()["position"] == 1


def test_ctrl_c_while_waiting_for_a_batch_ends_the_loop_and_the_thread():
    """A real SIGINT while the loop waits for a slow batch: KeyboardInterrupt in the loop, no
    thread left, no hang (in a subprocess, with a timeout)."""
    code = textwrap.dedent("""
        import os, signal, threading, time
        import numpy as np
        from tensorgrad.data import DataLoader

        class Slow:
            shape, dtype = (50, 2), np.dtype(float)
            def __len__(self):
                return 50
            def _skip_finite_scan(self):
                return True
            def __getitem__(self, idx):
                time.sleep(0.3)
                return np.zeros((len(idx), 2))

        signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        loader = DataLoader((Slow(), np.arange(50)), batch_size=10, prefetch_factor=2)
        seen = 0
        try:
            for batch in loader:
                seen += 1
        except KeyboardInterrupt:
            left = [t.name for t in threading.enumerate() if t.name == "tensorgrad-prefetch"]
            print("interrupted", seen, loader.state_dict()["position"] == seen, left)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[0] == "interrupted" and int(words[1]) < 5 and words[2:] == ["True", "[]"]


def _fit_run(loader_kw, steps=None):
    """A few epochs of fit on uint8 images through ImageArray(Normalize), with a checkpoint."""
    x, y = _images(120, d=12, seed=1)
    y = y % 3
    model = MLP([12, 16, 16, 3], batch_norm=True, dropout=0.1, seed=0)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = CyclicLR(opt, base_lr=1e-3, max_lr=0.05, step_size_up=7)
    loader = DataLoader((x, y), batch_size=16, seed=2, **loader_kw)
    history = fit(model, opt, loader, val_data=(x[:40], y[:40]), epochs=3, scheduler=sched,
                  l2=1e-3, progress=False, max_updates=steps)
    return model, history.to_dict(), loader


@pytest.mark.parametrize("mode", [True, False], ids=["fast", "reference"])
def test_fit_gives_the_same_bits_with_and_without_prefetching(mode):
    with tg.fast_mode(mode):
        _hits(reset=True)
        model, history, loader = _fit_run({"prefetch_factor": 2})
        assert (_hits() > 0) == mode
        plain_model, plain_history, plain_loader = _fit_run({"prefetch_factor": 0})
    for (name, a), (_, b) in zip(model.state_dict().items(), plain_model.state_dict().items()):
        assert _same(np.asarray(a), np.asarray(b)), name
    history.pop("wall_time"), plain_history.pop("wall_time")
    assert history == plain_history
    assert pickle.dumps(loader.state_dict()) == pickle.dumps(plain_loader.state_dict())


def test_fit_checkpoints_the_consumers_position(tmp_path):
    """fit stopped mid-epoch (max_updates) with the thread ahead, then resumed from its
    checkpoint: the result of one uninterrupted run, bit for bit."""
    def run(steps, path):
        x, y = _images(120, d=12, seed=1)
        y = y % 3
        model = MLP([12, 16, 16, 3], batch_norm=True, dropout=0.1, seed=0)
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
        sched = CyclicLR(opt, base_lr=1e-3, max_lr=0.05, step_size_up=7)
        loader = DataLoader((x, y), batch_size=16, seed=2, prefetch_factor=3)
        fit(model, opt, loader, epochs=3, scheduler=sched, progress=False, max_updates=steps,
            checkpoint=path, checkpoint_every=4)
        return model
    whole = run(None, None)
    path = tmp_path / "run.ckpt"
    run(11, path)  # 11 of 24 updates: the middle of the second epoch
    resumed = run(None, path)
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert _same(np.asarray(a), np.asarray(b)), name


def test_bad_prefetch_factors_are_refused_and_repr_shows_a_given_one():
    x, y = np.ones((10, 2)), np.arange(10)
    for bad in (-1, 1.5, True, "2", None):
        with pytest.raises(ValueError, match="prefetch_factor must be a non-negative integer"):
            DataLoader((x, y), prefetch_factor=bad)
    assert repr(DataLoader((x, y), batch_size=5, prefetch_factor=2)) == (
        "DataLoader(arrays=[(10, 2), (10,)], batch_size=5, shuffle=True, drop_last=False, "
        "prefetch_factor=2)")
