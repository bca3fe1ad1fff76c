"""fit: measurements, callbacks, NaN stop, and bitwise-exact resume from a mid-epoch checkpoint."""
import numpy as np
import pytest

from models.mlp import MLP
from tensorgrad.data import Compose, DataLoader, GaussianNoise, RandomHorizontalFlip
from tensorgrad.optim import SGD
from tensorgrad.optim.lr_scheduler import CyclicLR
from tensorgrad.train import StopTraining, TrainingDiverged, evaluate, fit

pytestmark = pytest.mark.usefixtures("each_mode")  # in fast and reference mode


def _data(n=300, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d)).astype(np.float32)
    y = (x[:, :3].argmax(1)).astype(np.int64)
    return x, y


def _setup(seed=0, dropout=0.2, lr=0.05):
    x, y = _data()
    model = MLP([12, 16, 16, 3], dropout=dropout, seed=seed)
    opt = SGD(model.parameters(), lr=lr)
    sched = CyclicLR(opt, base_lr=1e-3, max_lr=lr, step_size_up=5)
    loader = DataLoader((x, y), batch_size=32, seed=seed)
    # flip/noise on 12 features: viewed as 3 channels of 2x2 "images"
    augment = Compose([RandomHorizontalFlip(0.5, seed=seed + 1), GaussianNoise(0.1, seed=seed + 2)])
    return model, opt, sched, loader, augment, (x[:100], y[:100])


def test_fit_records_lr_per_update_and_metrics_per_measurement():
    model, opt, sched, loader, _, val = _setup()
    h = fit(model, opt, loader, val_data=val, epochs=2, scheduler=sched, l2=1e-3, progress=False)
    assert len(h.lr) == 2 * len(loader) == h.steps[-1]
    assert h.lr[0] == pytest.approx(1e-3) and max(h.lr) == pytest.approx(0.05)
    assert h.steps[0] == 1  # a cycle of 10 updates -> a measurement every update
    for k in ["train_loss", "train_cost", "train_acc", "val_loss", "val_cost", "val_acc"]:
        assert len(h.metrics[k]) == len(h.steps)
    assert all(c > loss for c, loss in zip(h.metrics["train_cost"], h.metrics["train_loss"]))


def test_fit_counts_the_images_its_measurements_evaluate_and_keeps_that_out_of_the_history():
    """For time estimates: what the measurements cost is kept on the History, never in its
    dict (a checkpoint's, a study's results), which must not depend on timing."""
    model, opt, _, loader, _, val = _setup()
    x, y = _data()
    h = fit(model, opt, loader, val_data=val, epochs=1, train_eval_data=(x[:40], y[:40]),
            measure_every=4, progress=False)
    assert len(h.steps) == -(-len(loader) // 4)  # every 4 updates and at the last
    assert h.measured_images == len(h.steps) * (40 + 100)
    assert 0 < h.measure_time <= h.wall_time
    assert "measure_time" not in h.to_dict() and "measured_images" not in h.to_dict()


def test_resume_after_interruption_mid_epoch_is_bitwise_identical(tmp_path):
    model, opt, sched, loader, aug, val = _setup()
    ref = fit(model, opt, loader, val_data=val, epochs=3, scheduler=sched, augment=aug, l2=1e-3,
              progress=False, measure_every=4)
    ref_state = {k: v.copy() for k, v in model.state_dict().items() if isinstance(v, np.ndarray)}

    ckpt = str(tmp_path / "run.ckpt")
    model, opt, sched, loader, aug, val = _setup()

    def crash(step, metrics):
        if step == 16:  # mid-epoch (10 batches per epoch), right after a checkpoint
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fit(model, opt, loader, val_data=val, epochs=3, scheduler=sched, augment=aug, l2=1e-3,
            progress=False, measure_every=4, checkpoint=ckpt, checkpoint_every=4,
            callbacks=[crash])
    # a new process would rebuild everything from scratch, then resume from the file
    model, opt, sched, loader, aug, val = _setup(seed=0)
    for p in model.parameters():
        p.data[...] = 0  # make sure nothing comes from the fresh objects
    h = fit(model, opt, loader, val_data=val, epochs=3, scheduler=sched, augment=aug, l2=1e-3,
            progress=False, measure_every=4, checkpoint=ckpt, checkpoint_every=4)
    for k, v in ref_state.items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    assert h.lr == ref.lr and h.steps == ref.steps and h.metrics == ref.metrics
    ref_opt, new_opt = opt.state_dict(), opt.state_dict()
    assert ref_opt.keys() == new_opt.keys()


def test_fit_stops_on_nan_naming_the_update():
    x, y = _data()
    x[100:] = 3e38  # batches 4 and later (in order) overflow float32: the loss becomes NaN there
    model = MLP([12, 16, 3], batch_norm=False, seed=0)
    opt = SGD(model.parameters(), lr=0.01)
    loader = DataLoader((x, y), batch_size=25, shuffle=False)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="update 5 "):
        fit(model, opt, loader, epochs=2, progress=False)


def test_a_diverged_run_hands_over_the_measurements_made_before():
    x, y = _data()
    x[100:] = 3e38  # the loss becomes NaN at update 5
    model = MLP([12, 16, 3], batch_norm=False, seed=0)
    loader = DataLoader((x, y), batch_size=25, shuffle=False)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        fit(model, SGD(model.parameters(), lr=0.01), loader, epochs=2, measure_every=2,
            train_eval_data=(x[:100], y[:100]), progress=False)
    h = info.value.history
    assert h.steps == [2, 4] and len(h.metrics["train_acc"]) == 2 and len(h.lr) == 4
    assert h.stopped_early and h.wall_time > 0


def test_a_callback_can_stop_training():
    model, opt, sched, loader, _, val = _setup()
    seen = []

    def pruner(step, metrics):
        seen.append(step)
        if step >= 3:
            raise StopTraining
    h = fit(model, opt, loader, val_data=val, epochs=5, scheduler=sched, measure_every=1,
            callbacks=[pruner], progress=False)
    assert h.stopped_early and h.steps[-1] == 3 and seen == [1, 2, 3]
    h = fit(model, opt, loader, epochs=5, measure_every=2, callbacks=[lambda s, m: s >= 4],
            progress=False)
    assert h.stopped_early and h.steps[-1] == 4


def test_evaluate_uses_eval_mode_and_restores_it():
    model, *_ , val = _setup()
    model.train()
    a = evaluate(model, *val, batch_size=7)
    b = evaluate(model, *val, batch_size=100)
    assert model.training and a["acc"] == b["acc"] and a["loss"] == pytest.approx(b["loss"])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_validation_data_is_refused_before_training(bad):
    model, opt, sched, loader, _, (x, y) = _setup()
    x = x.copy()
    x[7, 2] = bad
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"fit: val_data .*row 7"):
        fit(model, opt, loader, val_data=(x, y), scheduler=sched, progress=False)
    assert all(np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))


def test_a_non_finite_measured_loss_raises_though_the_weights_are_finite(tmp_path):
    """Finite weights whose outputs overflow (here on validation inputs near float32's limit)
    give an infinite or NaN measured loss: that is divergence too, and no checkpoint of it is
    written."""
    model, opt, sched, loader, _, (x, y) = _setup()
    huge = np.full_like(x, 3e38)
    path = tmp_path / "run.ckpt"
    with pytest.raises(TrainingDiverged, match=r"the val_(loss|cost) measured after update 1 is"):
        fit(model, opt, loader, val_data=(huge, y), scheduler=sched, progress=False,
            checkpoint=path)
    assert not path.exists()
