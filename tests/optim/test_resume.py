"""Resuming from a checkpoint gives the same bits as never stopping, for every optimizer.

The model is large enough for the BLAS paths (its first weight has 3072 x 50 elements, above
`blas.BIG`), with batch norm and flat parameters on as in training, and OpenBLAS runs with two
threads: the setting in which `axpy` takes its one-pass BLAS path.
"""

import numpy as np
import pytest

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad import optim
from tensorgrad.checkpoint import load_checkpoint, save_checkpoint
from tensorgrad.compile import blas
from tensorgrad.nn import functional as F
from tensorgrad.optim import lr_scheduler

from ..compile.test_blas import _openblas_set_threads


@pytest.fixture
def two_blas_threads():
    set_threads = _openblas_set_threads()
    if not blas.HAVE_BLAS or set_threads is None:
        pytest.skip("numpy's OpenBLAS (and its thread control) not found")
    before = blas._threads()
    set_threads(2)
    assert blas._threads() == 2
    yield
    set_threads(before)


OPTIMIZERS = {
    "sgd": lambda p: optim.SGD(p, lr=0.05),
    "sgd_momentum": lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
    "sgd_nesterov": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "sgd_dampening": lambda p: optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.3),
    "sgd_weight_decay": lambda p: optim.SGD(p, lr=0.05, weight_decay=1e-3),
    "sgd_momentum_weight_decay": lambda p: optim.SGD(p, lr=0.05, momentum=0.9,
                                                     weight_decay=1e-3),
    "adam": lambda p: optim.Adam(p, lr=1e-3),
    "adam_amsgrad": lambda p: optim.Adam(p, lr=1e-3, weight_decay=1e-3, amsgrad=True),
    "adamw": lambda p: optim.AdamW(p, lr=1e-3),
    "adagrad": lambda p: optim.Adagrad(p, lr=1e-2),
    "rmsprop": lambda p: optim.RMSprop(p, lr=1e-3),
    "rmsprop_momentum_centered": lambda p: optim.RMSprop(p, lr=1e-3, momentum=0.9,
                                                         centered=True),
}

DIMS, BATCH, STEPS, STOP = [3072, 50, 10], 32, 6, 3


def _batches():
    rng = np.random.default_rng(7)
    return [(rng.standard_normal((BATCH, DIMS[0])).astype(np.float32),
             rng.integers(0, DIMS[-1], BATCH)) for _ in range(STEPS)]


def _fresh(name):
    model = MLP(DIMS, batch_norm=True, seed=0)
    opt = OPTIMIZERS[name](model.parameters())
    return model, opt, lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)


def _train(model, opt, sched, batches):
    model.train()
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(model(tg.tensor(x)), y).backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resumed_training_is_bitwise_equal_to_uninterrupted(name, two_blas_threads, tmp_path):
    assert MLP(DIMS, seed=0)[0].weight.data.size >= blas.BIG  # the BLAS path is in play
    batches = _batches()
    model, opt, sched = _fresh(name)
    _train(model, opt, sched, batches)

    first, opt1, sched1 = _fresh(name)
    _train(first, opt1, sched1, batches[:STOP])
    path = tmp_path / "checkpoint.npz"  # train.fit's checkpoint format
    save_checkpoint(path, {"model": first.state_dict(), "optimizer": opt1.state_dict(),
                           "scheduler": sched1.state_dict()})
    del first, opt1, sched1
    state = load_checkpoint(path)
    resumed, opt2, sched2 = _fresh(name)
    resumed.load_state_dict(state["model"])
    opt2.load_state_dict(state["optimizer"])
    sched2.load_state_dict(state["scheduler"])
    _train(resumed, opt2, sched2, batches[STOP:])

    expected, got = model.state_dict(), resumed.state_dict()
    assert list(got) == list(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key, strict=True)
        assert got[key].tobytes() == expected[key].tobytes(), key  # bits, not only values


def test_model_state_survives_save_and_load_bitwise(two_blas_threads, tmp_path):
    """The model half of a checkpoint through tensorgrad's own .npz format as well."""
    batches = _batches()
    model, opt, sched = _fresh("sgd_momentum")
    _train(model, opt, sched, batches[:STOP])
    tg.save(model, tmp_path / "model.npz")
    loaded = MLP(DIMS, batch_norm=True, seed=1).load(tmp_path / "model.npz")
    for key, value in model.state_dict().items():
        assert loaded.state_dict()[key].tobytes() == value.tobytes(), key
