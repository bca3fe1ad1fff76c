"""The training loop of the course studies: `fit`, `evaluate`, checkpoint and resume.

`fit` runs mini-batch training with the scheduler stepped per update, records the learning rate
of every update and, at each measurement point, loss / cost (loss + L2 term) / accuracy on the
training and validation data, the numbers the course reports plot. A checkpoint holds the model,
optimizer, scheduler, every RNG (shuffle, dropout, augmentation) and the history, so an
interrupted run resumes to bitwise the same result.
"""
import math
import os
import pickle
import time
from dataclasses import dataclass, field

from .nn import functional as F
from .nn.regularization import l2_penalty
from .tensor import Tensor, no_grad

__all__ = ["fit", "evaluate", "History", "StopTraining", "TrainingDiverged"]

CHECKPOINT_FORMAT = "tensorgrad-checkpoint-1"


class StopTraining(Exception):
    """Raise from a callback (or return True) to end `fit` early, e.g. to prune a trial."""


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


@dataclass
class History:
    """What `fit` measured: per-update learning rates and per-measurement metrics."""
    lr: list = field(default_factory=list)            # learning rate used by each update
    steps: list = field(default_factory=list)         # update count at each measurement
    epochs: list = field(default_factory=list)        # fractional epoch at each measurement
    metrics: dict = field(default_factory=dict)       # name -> list, e.g. 'val_acc'
    stopped_early: bool = False
    wall_time: float = 0.0

    def record(self, step, epoch, values):
        self.steps.append(step)
        self.epochs.append(epoch)
        for k, v in values.items():
            self.metrics.setdefault(k, []).append(v)

    def last(self, name):
        return self.metrics[name][-1] if self.metrics.get(name) else None

    def to_dict(self):
        return {"lr": list(self.lr), "steps": list(self.steps), "epochs": list(self.epochs),
                "metrics": {k: list(v) for k, v in self.metrics.items()},
                "stopped_early": self.stopped_early, "wall_time": self.wall_time}


def _batches(x, batch_size):
    for i in range(0, len(x), batch_size):
        yield slice(i, i + batch_size)


def evaluate(model, x, y, batch_size=1000, l2=0.0):
    """Mean cross-entropy loss, cost (loss + l2 * penalty) and accuracy in eval mode, no graph.

    Returns a dict {'loss', 'cost', 'acc'}; the model's train/eval mode is restored after.
    """
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    try:
        with no_grad():
            for sl in _batches(x, batch_size):
                logits = model(Tensor(x[sl]))
                total += F.cross_entropy(logits, y[sl], reduction="sum").item()
                correct += int((logits.data.argmax(axis=1) == y[sl]).sum())
            penalty = l2_penalty(model).item() if l2 else 0.0
    finally:
        model.train(was_training)
    loss = total / len(x)
    return {"loss": loss, "cost": loss + l2 * penalty, "acc": correct / len(x)}


def _default_measure_every(scheduler, updates_per_epoch):
    cycle = getattr(scheduler, "total_size", None)  # CyclicLR: updates per cycle
    if cycle:  # 10 points per cycle of a cyclical schedule, as the reports plot
        return max(1, int(round(cycle / 10)))
    return updates_per_epoch


def _state(obj):
    return None if obj is None else obj.state_dict()


def _save_checkpoint(path, **state):
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        pickle.dump({"format": CHECKPOINT_FORMAT, **state}, f, protocol=4)
    os.replace(tmp, path)  # atomic: a crash never leaves a half-written checkpoint


def _load_checkpoint(path):
    with open(path, "rb") as f:
        state = pickle.load(f)  # only checkpoints this function wrote are read here
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a tensorgrad training checkpoint")
    return state


def fit(model, optimizer, train_loader, val_data=None, epochs=1, scheduler=None, l2=0.0,
        augment=None, measure_every=None, train_eval_data=None, callbacks=(), checkpoint=None,
        checkpoint_every=None, label_smoothing=0.0, progress=True, eval_batch_size=1000,
        max_updates=None):
    """Train `model` with mini-batches from `train_loader` for `epochs` epochs.

    - model(Tensor) returns class scores; the loss is softmax cross-entropy (with
      `label_smoothing`), the cost adds `l2 * nn.l2_penalty(model)` (weight matrices only).
    - `scheduler.step()` after every update; the lr each update used is in `history.lr`.
    - Every `measure_every` updates (default: 10 per cycle of a CyclicLR, else once per epoch)
      and at the end: loss, cost and accuracy on `train_eval_data` (default: the loader's
      arrays) and on `val_data` = (x, y); each callback is then called as
      `callback(step, metrics)` and training stops when one returns True or raises
      StopTraining.
    - `augment(x_batch) -> x_batch` runs on every training batch (numpy in, numpy out).
    - `checkpoint`: a file path; the full state is saved there every `checkpoint_every` updates
      (default: at each measurement) and, if the file exists when fit starts, training resumes
      from it exactly.
    - A NaN or infinite loss raises TrainingDiverged naming the update.
    Returns a History.
    """
    updates_per_epoch = len(train_loader)
    total_updates = epochs * updates_per_epoch
    if max_updates is not None:
        total_updates = min(total_updates, max_updates)
    measure_every = measure_every or _default_measure_every(scheduler, updates_per_epoch)
    checkpoint_every = checkpoint_every or measure_every
    if train_eval_data is None:
        arrays = getattr(train_loader, "arrays", None)
        train_eval_data = (arrays[0], arrays[1]) if arrays is not None else None
    history = History()
    step = 0
    if checkpoint is not None and os.path.exists(checkpoint):
        state = _load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        train_loader.load_state_dict(state["loader"])
        if augment is not None:
            augment.load_state_dict(state["augment"])
        history = History(**state["history"])
        step = state["step"]

    def save():
        _save_checkpoint(checkpoint, step=step, model=model.state_dict(),
                         optimizer=optimizer.state_dict(), scheduler=_state(scheduler),
                         loader=train_loader.state_dict(), augment=_state(augment),
                         history=history.to_dict())

    def measure():
        values = {}
        if train_eval_data is not None:
            for k, v in evaluate(model, *train_eval_data, eval_batch_size, l2).items():
                values[f"train_{k}"] = v
        if val_data is not None:
            for k, v in evaluate(model, *val_data, eval_batch_size, l2).items():
                values[f"val_{k}"] = v
        history.record(step, step / updates_per_epoch, values)
        stop = False
        for cb in callbacks:
            try:
                stop = bool(cb(step, values)) or stop
            except StopTraining:
                stop = True
        return stop

    bar = _progress(total_updates, step, progress)
    t0 = time.perf_counter() - history.wall_time
    model.train()
    stop = False
    running = None
    try:
        while step < total_updates and not stop:
            for xb, yb in train_loader:
                if augment is not None:
                    xb = augment(xb)
                logits = model(Tensor(xb))
                loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)
                cost = loss + l2 * l2_penalty(model) if l2 else loss
                value = loss.item()
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"fit: the loss became {value} at update {step + 1} (epoch "
                        f"{step // updates_per_epoch + 1}, "
                        f"lr {optimizer.param_groups[0]['lr']:.3g})"
                        f"; lower the learning rate or check the data")
                optimizer.zero_grad()
                cost.backward()
                history.lr.append(optimizer.param_groups[0]["lr"])
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                step += 1
                running = value if running is None else 0.98 * running + 0.02 * value
                if bar is not None:
                    bar.update(1)
                    if step % 20 == 0:
                        bar.set_postfix(loss=f"{running:.3f}")
                if step % measure_every == 0 or step == total_updates:
                    stop = measure()
                    model.train()
                    if bar is not None and history.last("val_acc") is not None:
                        bar.set_postfix(loss=f"{running:.3f}",
                                        val_acc=f"{history.last('val_acc'):.3f}")
                if checkpoint is not None and (step % checkpoint_every == 0 or stop
                                               or step == total_updates):
                    history.wall_time = time.perf_counter() - t0
                    save()
                if stop or step >= total_updates:
                    break
    finally:
        if bar is not None:
            bar.close()
    history.stopped_early = stop and step < total_updates
    history.wall_time = time.perf_counter() - t0
    return history


def _progress(total, initial, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="upd", leave=False, mininterval=0.5,
                dynamic_ncols=True)
