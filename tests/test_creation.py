"""The global generator (tg.manual_seed, get/set_rng_state) behind tg.randn rand randint
randperm, nn.init, F.dropout, and the private child seeds of Dropout, DataLoader, augmentations
and MLP built without a seed: the same seed gives bitwise-equal training; an explicit seed wins."""
import numpy as np
import pytest

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad import nn
from tensorgrad.data import DataLoader
from tensorgrad.data.augment import RandomHorizontalFlip
from tensorgrad.nn import functional as F
from tensorgrad.optim import SGD
from tensorgrad.train import fit


@pytest.fixture(autouse=True)
def _keep_global_state():
    """Tests here reseed the global generator: leave it as they found it."""
    state = tg.get_rng_state()
    yield
    tg.set_rng_state(state)


def _draws():
    return [tg.randn(3).data, tg.rand(2, 2).data, tg.randint(0, 10, (4,)).data,
            tg.randperm(5).data, F.dropout(tg.ones(6)).data,
            nn.init.normal_(tg.zeros(2, 2)).data, nn.Linear(3, 2).weight.data]


def test_manual_seed_fixes_every_draw_without_a_seed():
    tg.manual_seed(7)
    first = _draws()
    tg.manual_seed(7)
    for a, b in zip(first, _draws()):
        np.testing.assert_array_equal(a, b)
    tg.manual_seed(8)
    assert not np.array_equal(first[0], tg.randn(3).data)
    assert tg.initial_seed() == 8


def test_draws_advance_the_global_generator():
    tg.manual_seed(0)
    assert not np.array_equal(tg.randn(4).data, tg.randn(4).data)


def test_get_and_set_rng_state_replay_the_same_draws():
    tg.manual_seed(3)
    tg.randn(5)
    state = tg.get_rng_state()
    a = tg.randn(5).data
    tg.randn(7)
    tg.set_rng_state(state)
    np.testing.assert_array_equal(tg.randn(5).data, a)
    with pytest.raises(ValueError, match="set_rng_state"):
        tg.set_rng_state({"not": "a state"})


def test_manual_seed_reseeds_the_same_object_and_returns_it():
    g = tg.default_generator
    assert tg.manual_seed(1) is g is tg.default_generator
    for bad in (-1, 1.5, "1", True):
        with pytest.raises(ValueError, match="manual_seed"):
            tg.manual_seed(bad)


def test_explicit_seeds_and_generators_win():
    tg.manual_seed(0)
    a = tg.randn(3, seed=5).data
    tg.manual_seed(1)
    np.testing.assert_array_equal(tg.randn(3, seed=5).data, a)
    np.testing.assert_array_equal(a, np.random.default_rng(5).standard_normal(3)
                                  .astype(np.float32))
    state = tg.get_rng_state()
    tg.randn(3, generator=np.random.default_rng(0))
    nn.Linear(3, 2, seed=0)
    nn.Dropout(0.5, seed=0)
    DataLoader(np.zeros((4, 1)), seed=0)
    assert tg.get_rng_state() == state  # explicit seeds leave the global generator alone
    with pytest.raises(TypeError, match="not both"):
        tg.randn(2, seed=1, generator=np.random.default_rng(1))


def test_explicit_seed_behaviour_is_unchanged():
    """What a seed gave before the global generator existed, it still gives."""
    w = nn.Linear(4, 3, seed=11).weight.data
    want = np.random.default_rng(11).standard_normal((3, 4)) * np.sqrt(2 / 4)
    np.testing.assert_array_equal(w, want.astype(np.float32))
    d = nn.Dropout(0.5, seed=2)
    assert d.generator.bit_generator.state == np.random.default_rng(2).bit_generator.state
    loader = DataLoader(np.arange(10), batch_size=10, seed=4)
    np.testing.assert_array_equal(next(iter(loader)), np.random.default_rng(4).permutation(10))


def test_objects_take_a_private_child_generator_at_construction():
    tg.manual_seed(0)
    d1, d2 = nn.Dropout(0.5), nn.Dropout(0.5)
    loader = DataLoader(np.arange(20), batch_size=20)
    flip = RandomHorizontalFlip()
    for obj in (d1.generator, d2.generator, loader.rng, flip.rng):
        assert obj is not tg.default_generator
    assert d1.generator.bit_generator.state != d2.generator.bit_generator.state
    tg.manual_seed(0)
    e1 = nn.Dropout(0.5)
    assert e1.generator.bit_generator.state == d1.generator.bit_generator.state
    # drawing from the global generator afterwards changes nothing in the objects' streams
    x = tg.ones(50)
    tg.randn(100)
    np.testing.assert_array_equal(d1(x).data, e1(x).data)


def test_child_state_keeps_the_checkpoint_format():
    """A Dropout seeded by the global generator saves and restores its own PCG64 state."""
    tg.manual_seed(5)
    d = nn.Dropout(0.5)
    saved = d.state_dict()
    a = d(tg.ones(20)).data
    d2 = nn.Dropout(0.5, seed=123)
    d2.load_state_dict(saved)
    np.testing.assert_array_equal(d2(tg.ones(20)).data, a)


def test_randint_and_randperm():
    tg.manual_seed(0)
    r = tg.randint(3, 10, (2, 5))
    assert r.shape == (2, 5) and r.dtype == np.int64
    assert r.data.min() >= 3 and r.data.max() < 10
    r = tg.randint(4, (100,))  # torch's randint(high, size)
    assert set(np.unique(r.data)) <= {0, 1, 2, 3}
    assert tg.randint(0, 5, 3).shape == (3,)
    assert sorted(tg.randperm(6).data.tolist()) == list(range(6))
    assert tg.randperm(6).dtype == np.int64
    np.testing.assert_array_equal(tg.randperm(8, seed=1).data,
                                  np.random.default_rng(1).permutation(8))
    with pytest.raises(TypeError, match="size"):
        tg.randint(10)
    with pytest.raises(ValueError, match="low < high"):
        tg.randint(5, 5, (2,))
    with pytest.raises(ValueError, match="randperm"):
        tg.randperm(-1)


def test_random_draws_refused_inside_a_trace():
    for draw in (lambda: tg.randint(0, 3, (2,)), lambda: tg.randperm(3)):
        f = tg.fuse(lambda x: x + draw())
        with pytest.raises(tg.TraceError):
            f(tg.ones(3 if draw().shape == (3,) else 2, dtype=np.float64))


def _train(seed, manual_loop):
    """A small MLP with dropout, trained from nothing but tg.manual_seed(seed)."""
    tg.manual_seed(seed)
    data = np.random.default_rng(0)  # the data itself is fixed
    x = data.standard_normal((60, 8)).astype(np.float32)
    y = data.integers(0, 3, 60)
    model = MLP([8, 16, 16, 3], batch_norm=True, dropout=0.3)
    loader = DataLoader((x, y), batch_size=20)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    if manual_loop:
        for _ in range(2):
            for xb, yb in loader:
                loss = F.cross_entropy(model(tg.tensor(xb)), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    else:
        fit(model, opt, loader, epochs=2, progress=False)
    return [p.data.copy() for p in model.parameters()]


@pytest.mark.parametrize("manual_loop", [True, False], ids=["loop", "fit"])
def test_same_manual_seed_gives_bitwise_equal_training(manual_loop):
    a, b = _train(1, manual_loop), _train(1, manual_loop)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    c = _train(2, manual_loop)
    assert any(not np.array_equal(p, q) for p, q in zip(a, c))
