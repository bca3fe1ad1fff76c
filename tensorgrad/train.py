"""The training loop of the course studies: `fit`, `evaluate`, checkpoint and resume.

`fit` runs mini-batch training with the scheduler stepped per update (ReduceLROnPlateau: with the
validation loss, per measurement), records the learning rate of every update and, at each
measurement point, loss / cost (loss + L2 term) / accuracy on the training and validation data,
the numbers the course reports plot. A checkpoint
(tensorgrad.checkpoint: arrays and JSON, no pickle) holds the model, optimizer, scheduler, every
RNG (shuffle, dropout, augmentation) and the history, so an interrupted run resumes to bitwise
the same result; one that is not finite is never written.
"""
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import faults
from .autograd import as_tensor, no_grad
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data.augment import hflip
from .data.checks import check_finite
from .deferred_signals import DeferredSignals
from .nn import functional as F
from .nn.regularization import l2_penalty
from .optim.lr_scheduler import ReduceLROnPlateau

__all__ = ["fit", "evaluate", "History", "StopTraining", "TrainingDiverged", "CheckpointError"]


class StopTraining(Exception):
    """Raise from a callback (or return True) to end `fit` early, e.g. to prune a trial."""


class TrainingDiverged(FloatingPointError):
    """The loss, a parameter, a buffer or the optimizer state became NaN or infinite.

    `step` is the update after which it was found, `tensor` what was not finite (None for the
    loss), `checkpoint` the path of the last (finite) checkpoint on disk, or None, and `history`
    the History of the measurements made before (stopped_early set), so a caller keeps them."""

    def __init__(self, message, step=None, tensor=None, checkpoint=None, history=None):
        super().__init__(message)
        self.step, self.tensor, self.checkpoint = step, tensor, checkpoint
        self.history = history


@dataclass
class History:
    """What `fit` measured: per-update learning rates and per-measurement metrics."""
    lr: list = field(default_factory=list)            # learning rate used by each update
    steps: list = field(default_factory=list)         # update count at each measurement
    epochs: list = field(default_factory=list)        # fractional epoch at each measurement
    metrics: dict = field(default_factory=dict)       # name -> list, e.g. 'val_acc'
    stopped_early: bool = False
    wall_time: float = 0.0
    # what the measurements cost in this process (not saved: timing, for time estimates)
    measure_time: float = field(default=0.0, compare=False)
    measured_images: int = field(default=0, compare=False)

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


def evaluate(model, x, y, batch_size=1000, l2=0.0, flip_tta=False, normalize=None):
    """Mean cross-entropy loss, cost (loss + l2 * penalty) and accuracy in eval mode, no graph.

    flip_tta (test-time augmentation): each image's softmax probabilities are averaged with its
    left-right mirror's, and the loss and accuracy are those of the average; x holds images,
    (n, 3*s*s) rows or (n, C, H, W), and `normalize` is the Normalize that standardised them, if
    any (the mirror is then taken in pixel space, see tensorgrad.data.hflip).
    Returns a dict {'loss', 'cost', 'acc'}; the model's train/eval mode is restored after.
    """
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    try:
        with no_grad():
            for sl in _batches(x, batch_size):
                xb, yb = x[sl], y[sl]
                logits = model(as_tensor(xb))
                if flip_tta:
                    mirrored = model(as_tensor(hflip(xb, normalize)))
                    scores = F.softmax(logits, axis=1).data + F.softmax(mirrored, axis=1).data
                    rows = np.arange(len(yb))
                    log_p = np.logaddexp(F.log_softmax(logits, axis=1).data[rows, yb],
                                         F.log_softmax(mirrored, axis=1).data[rows, yb])
                    total += float(np.log(2.0) * len(yb) - log_p.sum(dtype=np.float64))
                    correct += int((scores.argmax(axis=1) == yb).sum())
                else:
                    total += F.cross_entropy(logits, yb, reduction="sum").item()
                    correct += int((logits.data.argmax(axis=1) == yb).sum())
            penalty = l2_penalty(model).item() if l2 else 0.0
    finally:
        model.train(was_training)
    loss = total / len(x)
    return {"loss": loss, "cost": loss + l2 * penalty, "acc": correct / len(x)}


def default_measure_every(scheduler, updates_per_epoch):
    """fit's interval between measurements when none is given."""
    cycle = getattr(scheduler, "total_size", None)  # CyclicLR: updates per cycle
    if cycle:  # 10 points per cycle of a cyclical schedule, as the reports plot
        return max(1, int(round(cycle / 10)))
    return updates_per_epoch


def _finite(array):
    """All values finite (one cheap sum first; huge finite values may overflow it)."""
    if array.dtype.kind not in "fc":
        return True
    return bool(np.isfinite(array.sum())) or bool(np.isfinite(array).all())


def _first_non_finite(model, optimizer):
    """(what, 'NaN' or 'inf') for the first parameter, buffer or optimizer state entry that is
    not finite, else None."""
    def kind(a):
        return "NaN" if np.isnan(a).any() else "inf"
    names = {}
    for name, p in model.named_parameters():
        names[id(p)] = name
        if not _finite(p.data):
            return f"parameter '{name}'", kind(p.data)
    for name, b in model.named_buffers():
        if b is not None and not _finite(b.data):
            return f"buffer '{name}'", kind(b.data)
    for p, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, (np.ndarray, np.floating, float)):
                value = np.asarray(value)
                if not _finite(value):
                    return (f"optimizer state '{key}' of parameter "
                            f"'{names.get(id(p), '(not in the model)')}'", kind(value))
    return None


def _state_of(obj):
    return None if obj is None else {"type": type(obj).__name__, "state_dict": obj.state_dict()}


def _group_layout(optimizer):
    return [{"options": sorted(k for k in g if k != "params"),
             "shapes": [list(p.data.shape) for p in g["params"]]}
            for g in optimizer.param_groups]


def _check_matches(path, state, model, optimizer, scheduler, augment):
    """Raise CheckpointError naming every difference between the checkpoint and this run's
    model, optimizer (type, parameter groups), scheduler and augmentation."""
    problems = []
    saved, live = state["model"], model.state_dict()
    missing = [k for k in live if k not in saved]
    unexpected = [k for k in saved if k not in live]
    if missing:
        problems.append(f"the model's {missing} are not in it")
    if unexpected:
        problems.append(f"it holds {unexpected}, which the model does not have")
    problems += [f"'{k}' has shape {np.shape(saved[k])} in it and {np.shape(v)} in the model"
                 for k, v in live.items() if k in saved and np.shape(saved[k]) != np.shape(v)]
    kind = type(optimizer).__name__
    if state["optimizer"]["type"] != kind:
        problems.append(f"it was saved with optimizer {state['optimizer']['type']}, this run "
                        f"has {kind}")
    else:
        groups, here = state["optimizer"]["groups"], _group_layout(optimizer)
        if len(groups) != len(here):
            problems.append(f"it has {len(groups)} parameter group(s), the optimizer "
                            f"{len(here)}")
        for i, (a, b) in enumerate(zip(groups, here)):
            if a["shapes"] != b["shapes"]:
                problems.append(f"parameter group {i} holds parameters of shapes "
                                f"{[tuple(x) for x in a['shapes']]} in it and "
                                f"{[tuple(x) for x in b['shapes']]} in the optimizer")
            if a["options"] != b["options"]:
                problems.append(f"parameter group {i} has options {a['options']} in it and "
                                f"{b['options']} in the optimizer")
    for what, obj in (("scheduler", scheduler), ("augment", augment)):
        had = state[what]
        if (had is None) != (obj is None):
            problems.append(f"it was saved {'with' if had else 'without'} a {what}, this run "
                            f"has {'one' if obj is not None else 'none'}")
        elif had is not None and had["type"] != type(obj).__name__:
            problems.append(f"its {what} is a {had['type']}, this run's a {type(obj).__name__}")
    if problems:
        raise CheckpointError(path, "does not match this run: " + "; ".join(problems))


def _restore(path, model, optimizer, scheduler, train_loader, augment, extra=None):
    """Load the checkpoint at `path` into the run's objects; return (step, History)."""
    state = load_checkpoint(path)
    try:
        _check_matches(path, state, model, optimizer, scheduler, augment)
        saved = sorted(state.get("extra", {}))
        if saved != sorted(extra or {}):
            raise CheckpointError(path, f"does not match this run: it holds the extra state "
                                        f"{saved}, this run has {sorted(extra or {})}")
        for name, obj in (extra or {}).items():
            obj.load_state_dict(state["extra"][name])
        train_loader.load_state_dict(state["loader"])
        if augment is not None:
            augment.load_state_dict(state["augment"]["state_dict"])
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"]["state_dict"])  # hyper-parameters too
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"]["state_dict"])
        return int(state["step"]), History(**state["history"])
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(path, f"cannot be restored ({type(e).__name__}: {e})") from e


def fit(model, optimizer, train_loader, val_data=None, epochs=1, scheduler=None, l2=0.0,
        augment=None, measure_every=None, train_eval_data=None, callbacks=(), checkpoint=None,
        checkpoint_every=None, label_smoothing=0.0, progress=True, eval_batch_size=1000,
        max_updates=None, checkpoint_seconds=None, state=None):
    """Train `model` with mini-batches from `train_loader` for `epochs` epochs.

    - model(Tensor) returns class scores; the loss is softmax cross-entropy (with
      `label_smoothing`), the cost adds `l2 * nn.l2_penalty(model)` (weight matrices only).
    - `scheduler.step()` after every update; the lr each update used is in `history.lr`. A
      ReduceLROnPlateau is stepped at each measurement instead, with the validation loss
      (`scheduler.step(val_loss)`; it needs `val_data`).
    - Every `measure_every` updates (default: 10 per cycle of a CyclicLR, else once per epoch)
      and at the end: loss, cost and accuracy on `train_eval_data` (default: the loader's
      arrays) and on `val_data` = (x, y); each callback is then called as
      `callback(step, metrics)` and training stops when one returns True or raises
      StopTraining.
    - `augment(x_batch) -> x_batch` runs on every training batch (numpy in, numpy out).
    - `checkpoint`: a file path; the full state is saved there every `checkpoint_every` updates
      (default: at each measurement) and at the end, and, if the file exists when fit starts,
      training resumes from it exactly. Its model, optimizer type and parameter groups must
      match this run's (CheckpointError otherwise); hyper-parameters (lr, ...) come from it.
      With `checkpoint_seconds`, it is also saved after the first update that ends that many
      seconds or more after the last save (or the start). `state`: {name: object with
      state_dict() / load_state_dict()}, more state saved and restored with the checkpoint
      (e.g. an AveragedModel a callback updates).
    - A NaN or infinite loss, parameter, buffer or optimizer state raises TrainingDiverged
      naming the update and the tensor; parameters, buffers and optimizer state are checked at
      every measurement, before every save and at the end, so no checkpoint is ever written
      from a non-finite state: the last good one stays on disk.
    - Ctrl-C (KeyboardInterrupt; in the main thread it takes effect when the current update
      and its measurement end, a second one at once): with `checkpoint`, the state after the
      last finished update is saved; the KeyboardInterrupt is then re-raised with attributes
      `checkpoint` (the path holding it, or None) and `step` (the update it holds).
    Returns a History.
    """
    updates_per_epoch = len(train_loader)
    total_updates = epochs * updates_per_epoch
    if max_updates is not None:
        total_updates = min(total_updates, max_updates)
    measure_every = measure_every or default_measure_every(scheduler, updates_per_epoch)
    plateau = isinstance(scheduler, ReduceLROnPlateau)
    if plateau and val_data is None:
        raise ValueError("fit: a ReduceLROnPlateau scheduler is stepped with the validation loss "
                         "at each measurement; pass val_data")
    checkpoint_every = checkpoint_every or measure_every
    if train_eval_data is None:
        arrays = getattr(train_loader, "arrays", None)
        train_eval_data = (arrays[0], arrays[1]) if arrays is not None else None
    for data, name in ((val_data, "val_data"), (train_eval_data, "train_eval_data")):
        if data is not None:  # before training: a NaN would otherwise only show as val_loss=nan
            check_finite(data[0], f"fit: {name}")
    history = History()
    step = 0
    saved = None    # the update whose state the checkpoint file holds
    checked = None  # the last update after which the state was found finite
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)
        if os.path.exists(checkpoint):
            step, history = _restore(checkpoint, model, optimizer, scheduler, train_loader,
                                     augment, state)
            saved = step

    def kept():
        if saved is not None:
            return f"the last finite checkpoint, of update {saved}, is kept at {checkpoint}"
        return "no checkpoint was written" if checkpoint is not None else "nothing was saved"

    def check():
        nonlocal checked
        bad = _first_non_finite(model, optimizer)
        if bad is not None:
            raise TrainingDiverged(
                f"fit: {bad[0]} is not finite ({bad[1]}) after update {step} (epoch "
                f"{math.ceil(step / updates_per_epoch)}); {kept()}; lower the learning rate or "
                f"check the data", step=step, tensor=bad[0],
                checkpoint=checkpoint if saved is not None else None)
        checked = step

    def save():
        nonlocal saved, last_save
        if checked != step:
            check()
        history.wall_time = time.perf_counter() - t0
        save_checkpoint(checkpoint, {
            "step": step, "model": model.state_dict(),
            "optimizer": {**_state_of(optimizer), "groups": _group_layout(optimizer)},
            "scheduler": _state_of(scheduler), "loader": train_loader.state_dict(),
            "augment": _state_of(augment), "history": history.to_dict(),
            "extra": {k: v.state_dict() for k, v in (state or {}).items()}})
        saved = step
        last_save = time.perf_counter()

    def measure():
        check()
        started = time.perf_counter()
        values = {}
        if train_eval_data is not None:
            for k, v in evaluate(model, *train_eval_data, eval_batch_size, l2).items():
                values[f"train_{k}"] = v
            history.measured_images += len(train_eval_data[1])
        if val_data is not None:
            for k, v in evaluate(model, *val_data, eval_batch_size, l2).items():
                values[f"val_{k}"] = v
            history.measured_images += len(val_data[1])
        history.measure_time += time.perf_counter() - started
        for k, v in values.items():  # finite weights whose outputs overflow: diverged as well
            if not math.isfinite(v):
                raise TrainingDiverged(
                    f"fit: the {k} measured after update {step} is {v} (epoch "
                    f"{math.ceil(step / updates_per_epoch)}); {kept()}; lower the learning rate "
                    f"or check the data", step=step,
                    checkpoint=checkpoint if saved is not None else None)
        history.record(step, step / updates_per_epoch, values)
        if plateau:
            scheduler.step(values["val_loss"])
        stop = False
        for cb in callbacks:
            try:
                stop = bool(cb(step, values)) or stop
            except StopTraining:
                stop = True
        return stop

    bar = _progress(total_updates, step, progress)
    t0 = time.perf_counter() - history.wall_time
    last_save = time.perf_counter()
    model.train()
    stop = False
    running = None
    fault = faults.active("update") or faults.active("saved")  # tests only
    done = step  # the last update whose measurement and save are complete too
    signals = DeferredSignals()
    try:
        with signals:
            while step < total_updates and not stop:
                for xb, yb in train_loader:
                    if augment is not None:
                        xb = augment(xb)
                    logits = model(as_tensor(xb))
                    loss = F.cross_entropy(logits, yb, label_smoothing=label_smoothing)
                    cost = loss + l2 * l2_penalty(model) if l2 else loss
                    value = loss.item()
                    if not math.isfinite(value):
                        raise TrainingDiverged(
                            f"fit: the loss became {value} at update {step + 1} (epoch "
                            f"{step // updates_per_epoch + 1}, "
                            f"lr {optimizer.param_groups[0]['lr']:.3g}); {kept()}; lower the "
                            f"learning rate or check the data", step=step + 1,
                            checkpoint=checkpoint if saved is not None else None)
                    optimizer.zero_grad()
                    cost.backward()
                    history.lr.append(optimizer.param_groups[0]["lr"])
                    optimizer.step()
                    if scheduler is not None and not plateau:
                        scheduler.step()
                    step += 1
                    if fault:
                        faults.at("update", step)
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
                    if checkpoint is not None and (
                            step % checkpoint_every == 0 or stop or step == total_updates
                            or (checkpoint_seconds is not None
                                and time.perf_counter() - last_save >= checkpoint_seconds)):
                        save()
                        if fault:
                            faults.at("saved", step)
                    done = step
                    if signals.pending is not None:
                        signals.deliver()
                    if stop or step >= total_updates:
                        break
        if signals.pending is not None:
            signals.deliver()
    except TrainingDiverged as exc:
        _attach(exc, history, t0)
        raise
    except KeyboardInterrupt as exc:
        signals.restore()  # from here on a second Ctrl-C acts at once
        _interrupted(exc, checkpoint, save if done == step and saved != step else None,
                     lambda: saved, done)
        raise
    finally:
        if bar is not None:
            bar.close()
    if checked != step:
        try:
            check()
        except TrainingDiverged as exc:
            _attach(exc, history, t0)
            raise
    history.stopped_early = stop and step < total_updates
    history.wall_time = time.perf_counter() - t0
    return history


def _attach(exc, history, t0):
    """Hand the measurements made before a divergence to the caller on the exception."""
    history.stopped_early = True
    history.wall_time = time.perf_counter() - t0
    exc.history = history


def _interrupted(exc, checkpoint, save, saved, done):
    """Save on Ctrl-C if the state is that of a finished update (`save` is None otherwise),
    and attach `checkpoint` / `step` to the KeyboardInterrupt for the caller."""
    problem = None
    if checkpoint is not None and save is not None:
        try:
            save()
        except KeyboardInterrupt as again:  # a second Ctrl-C while saving: give the save up
            _carry(again, checkpoint if saved() is not None else None, saved(),
                   "the save was stopped by a second interrupt")
            raise
        except TrainingDiverged as e:
            problem = f"the state is not saved: {e}"
    if checkpoint is None:
        _carry(exc, None, done, "nothing was saved (no checkpoint path)")
    else:
        _carry(exc, checkpoint if saved() is not None else None, saved(), problem)


def _carry(exc, checkpoint, step, problem=None):
    exc.checkpoint, exc.step = checkpoint, step
    if checkpoint is not None:
        note = (f"fit: interrupted; {checkpoint} holds the state after update {step}: calling "
                f"fit again with checkpoint={checkpoint!r} resumes from there")
    else:
        note = f"fit: interrupted after update {step}"
    if problem:
        note += f" ({problem})"
    if hasattr(exc, "add_note"):  # Python 3.11+: shown under the traceback
        exc.add_note(note)


def _progress(total, initial, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="upd", leave=False, mininterval=0.5,
                dynamic_ncols=True)
