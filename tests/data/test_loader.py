"""Tests for tensorgrad.data.DataLoader: coverage per epoch, seeding, and exact mid-epoch resume."""
import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorgrad.data import DataLoader


def dataset(n):
    """x rows hold their own index so batches can be traced back; y = index * 10."""
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1)
    return x, np.arange(n) * 10


def indices(batch):
    x, y = batch
    np.testing.assert_array_equal(y, x[:, 0].astype(int) * 10)     # rows stay paired
    return x[:, 0].astype(int).tolist()


def epoch(loader):
    return [indices(b) for b in loader]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 120), batch_size=st.integers(1, 50), drop_last=st.booleans(),
       shuffle=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_each_epoch_covers_every_index_once(n, batch_size, drop_last, shuffle, seed):
    loader = DataLoader(dataset(n), batch_size=batch_size, shuffle=shuffle, seed=seed,
                        drop_last=drop_last)
    for _ in range(2):
        batches = epoch(loader)
        assert len(batches) == len(loader)
        flat = [i for b in batches for i in b]
        assert all(len(b) == batch_size for b in batches[:-1])
        if drop_last:
            assert len(loader) == n // batch_size
            assert len(flat) == len(loader) * batch_size and len(set(flat)) == len(flat)
        else:
            assert sorted(flat) == list(range(n))
        if not shuffle:
            assert flat == list(range(len(flat)))


def test_order_differs_between_epochs_and_repeats_with_the_seed():
    a = DataLoader(dataset(100), batch_size=10, seed=7)
    b = DataLoader(dataset(100), batch_size=10, seed=7)
    c = DataLoader(dataset(100), batch_size=10, seed=np.random.default_rng(7))
    first, second = epoch(a), epoch(a)
    assert first != second
    assert [first, second] == [epoch(b), epoch(b)] == [epoch(c), epoch(c)]
    assert epoch(DataLoader(dataset(100), batch_size=10, seed=8)) != first
    assert a.epoch == 2


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), batch_size=st.integers(1, 16), drop_last=st.booleans(),
       stop=st.integers(0, 40), seed=st.integers(0, 1000))
def test_resume_mid_epoch_reproduces_the_rest_exactly(n, batch_size, drop_last, stop, seed):
    """Snapshot after `stop` batches (anywhere in the first epochs), then compare the rest."""
    def stream(loader, epochs):
        out = []
        for _ in range(epochs):
            out.extend(epoch(loader))
        return out

    original = DataLoader(dataset(n), batch_size=batch_size, seed=seed, drop_last=drop_last)
    per_epoch = len(original)
    if per_epoch == 0:
        assert stream(original, 2) == []
        return
    stop = stop % (3 * per_epoch)
    seen = []
    state = copy.deepcopy(original.state_dict()) if stop == 0 else None
    while state is None:
        for batch in original:
            seen.append(indices(batch))
            if len(seen) == stop:          # may be the last batch of an epoch
                state = copy.deepcopy(original.state_dict())
                break
    rest_original = stream(original, 3)       # finish the interrupted epoch, then two more

    restored = DataLoader(dataset(n), batch_size=batch_size, seed=seed + 1, drop_last=drop_last)
    restored.load_state_dict(pickle.loads(pickle.dumps(state)))
    assert stream(restored, 3) == rest_original
    assert restored.epoch == original.epoch


def test_state_dict_taken_inside_the_loop_resumes_the_same_epoch():
    original = DataLoader(dataset(50), batch_size=10, seed=1)
    it = iter(original)
    done = [indices(next(it)) for _ in range(2)]
    state = original.state_dict()
    rest = [indices(b) for b in it]
    restored = DataLoader(dataset(50), batch_size=10, seed=99)
    restored.load_state_dict(state)
    assert epoch(restored) == rest
    assert sorted(i for b in done + rest for i in b) == list(range(50))
    assert epoch(restored) == epoch(original)


def test_break_then_loop_again_continues_the_epoch():
    loader = DataLoader(dataset(30), batch_size=10, seed=0)
    reference = epoch(DataLoader(dataset(30), batch_size=10, seed=0))
    for batch in loader:
        first = indices(batch)
        break
    assert [first] + epoch(loader) == reference


def test_batches_are_gathered_not_views_and_dataset_is_not_copied():
    x, y = dataset(20)
    loader = DataLoader((x, y), batch_size=5, seed=0)
    assert loader.arrays[0] is x and loader.arrays[1] is y
    xb, yb = next(iter(loader))
    assert not np.shares_memory(xb, x)
    xb[:] = -1
    assert x.min() == 0


def test_single_array_yields_arrays():
    x, _ = dataset(7)
    batches = list(DataLoader(x, batch_size=3, shuffle=False))
    assert [b.shape for b in batches] == [(3, 3), (3, 3), (1, 3)]
    np.testing.assert_array_equal(np.concatenate(batches), x)


def test_bad_arguments_are_reported():
    x, y = dataset(10)
    with pytest.raises(ValueError, match=r"first dimension.*\(10, 3\), \(9,\)"):
        DataLoader((x, y[:9]))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader((x, y), batch_size=0)
    with pytest.raises(TypeError, match=r"arrays\[1\] must be a numpy array"):
        DataLoader((x, list(y)))
    with pytest.raises(ValueError, match="empty"):
        DataLoader(())
    state = DataLoader((x, y), batch_size=5).state_dict()
    with pytest.raises(ValueError, match="batch_size=5 but this loader has batch_size=2"):
        DataLoader((x, y), batch_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="num_samples"):
        DataLoader((x[:8], y[:8]), batch_size=5).load_state_dict(state)


def test_repr_and_len():
    loader = DataLoader(dataset(101), batch_size=10, drop_last=False)
    assert len(loader) == 11
    assert len(DataLoader(dataset(101), batch_size=10, drop_last=True)) == 10
    assert repr(loader) == ("DataLoader(arrays=[(101, 3), (101,)], batch_size=10, shuffle=True, "
                            "drop_last=False)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_is_refused_naming_the_array_and_row(bad):
    x, y = dataset(30)
    x[17, 1] = bad
    x[21, 0] = bad
    with pytest.raises(ValueError, match=r"DataLoader: arrays\[0\] holds 2 non-finite values "
                                         r"\(NaN or inf\); the first is at row 17"):
        DataLoader((x, y), batch_size=5)
    with pytest.raises(ValueError, match=r"DataLoader: arrays\[1\] holds 2 non-finite"):
        DataLoader((y, x), batch_size=5)


def test_huge_finite_values_are_not_mistaken_for_non_finite():
    x = np.full((8, 3), np.finfo(np.float32).max, dtype=np.float32)   # the sum overflows
    assert len(DataLoader(x, batch_size=4)) == 2


def test_array_likes_such_as_image_arrays_are_gathered_by_indexing():
    from tensorgrad.data import ImageArray
    u8 = np.arange(40, dtype=np.uint8).reshape(20, 2)
    x, y = ImageArray(u8), np.arange(20)
    loader = DataLoader((x, y), batch_size=6, seed=2)
    assert loader.arrays[0] is x
    for xb, yb in loader:
        assert xb.dtype == np.float32
        np.testing.assert_array_equal(xb, u8[yb].astype(np.float32) / np.float32(255))
    assert repr(loader) == ("DataLoader(arrays=[(20, 2), (20,)], batch_size=6, shuffle=True, "
                            "drop_last=False)")
