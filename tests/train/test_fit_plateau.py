"""fit with ReduceLROnPlateau: stepped with the validation loss at each measurement, not per
update, and resumed from a checkpoint with the same learning rates."""
import numpy as np
import pytest

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad.data import DataLoader
from tensorgrad.optim import SGD
from tensorgrad.optim.lr_scheduler import ReduceLROnPlateau
from tensorgrad.train import fit

pytestmark = pytest.mark.usefixtures("each_mode")  # in fast and reference mode

LR = 0.05
PLATEAU = dict(patience=0, factor=0.5, threshold=0.3)


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((200, 12)).astype(np.float32)
    y = x[:, :3].argmax(1).astype(np.int64)
    model = MLP([12, 16, 3], seed=seed)
    opt = SGD(model.parameters(), lr=LR)
    # a large relative threshold: almost every measurement is "no better", so the lr falls often
    sched = ReduceLROnPlateau(opt, **PLATEAU)
    loader = DataLoader((x, y), batch_size=25, seed=seed)
    return model, opt, sched, loader, (x[:80], y[:80])


def _replay(val_losses, steps, n_updates):
    """The lr of each update when a ReduceLROnPlateau sees `val_losses` after updates `steps`."""
    opt = SGD([tg.tensor(np.zeros(1), requires_grad=True)], lr=LR)
    plateau = ReduceLROnPlateau(opt, **PLATEAU)
    lrs, measured = [], dict(zip(steps, val_losses))
    for update in range(1, n_updates + 1):
        lrs.append(opt.param_groups[0]["lr"])
        if update in measured:
            plateau.step(measured[update])
    return lrs


def test_fit_steps_reduce_lr_on_plateau_with_the_validation_loss_per_measurement():
    model, opt, sched, loader, val = _setup()
    h = fit(model, opt, loader, val_data=val, epochs=4, scheduler=sched, measure_every=3,
            progress=False)
    assert h.steps == [3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 32]  # and at the end
    assert sched.last_epoch == len(h.steps)  # one step per measurement, none per update
    assert h.lr == _replay(h.metrics["val_loss"], h.steps, len(h.lr))
    assert len(set(h.lr)) > 2  # the lr fell, more than once
    changes = [u for u in range(1, len(h.lr)) if h.lr[u] != h.lr[u - 1]]
    assert all(u in h.steps for u in changes)  # only right after a measurement


def test_fit_needs_validation_data_for_reduce_lr_on_plateau():
    model, opt, sched, loader, _ = _setup()
    with pytest.raises(ValueError, match="ReduceLROnPlateau .* validation loss .* val_data"):
        fit(model, opt, loader, epochs=1, scheduler=sched, progress=False)


def test_fit_resumes_reduce_lr_on_plateau_exactly(tmp_path):
    model, opt, sched, loader, val = _setup()
    ref = fit(model, opt, loader, val_data=val, epochs=4, scheduler=sched, measure_every=3,
              progress=False)

    def crash(step, metrics):
        if step == 15:
            raise KeyboardInterrupt

    ckpt = str(tmp_path / "run.ckpt")
    model, opt, sched, loader, val = _setup()
    with pytest.raises(KeyboardInterrupt):
        fit(model, opt, loader, val_data=val, epochs=4, scheduler=sched, measure_every=3,
            progress=False, checkpoint=ckpt, callbacks=[crash])
    model, opt, sched, loader, val = _setup()
    h = fit(model, opt, loader, val_data=val, epochs=4, scheduler=sched, measure_every=3,
            progress=False, checkpoint=ckpt)
    assert h.lr == ref.lr and h.metrics == ref.metrics
    assert sched.best == _best(ref.metrics["val_loss"])


def _best(losses):
    best = np.inf
    for v in losses:
        if v < best * (1 - PLATEAU["threshold"]):
            best = v
    return best
