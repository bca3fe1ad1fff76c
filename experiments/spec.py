"""One way to describe and run a training: a Spec, build(spec) and run(spec, data).

Every study, the search, the best MLP and the benchmark's tensorgrad network describe a training
as a Spec (network, optimizer, schedule, augmentation, data split, evaluation); `build` makes the
model, optimizer, scheduler and augmentation of one, `run` trains it with fit and evaluates it,
and `run_all` runs a list of them, in this process or in one-BLAS-thread worker processes.
Every field is checked when a Spec is made, so a bad setting fails before any training.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from models.mlp import ACTIVATIONS, INITS, MLP
from tensorgrad import faults, nn
from tensorgrad.checkpoint import load_checkpoint
from tensorgrad.data import (
    ColorJitter,
    Compose,
    DataLoader,
    GaussianBlur,
    GaussianNoise,
    RandomHorizontalFlip,
    RandomTranslation,
)
from tensorgrad.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from tensorgrad.optim.lr_scheduler import CosineAnnealingLR, CyclicLR, OneCycleLR
from tensorgrad.optim.swa_utils import AveragedModel, update_bn
from tensorgrad.processes import map_jobs
from tensorgrad.train import StopTraining, TrainingDiverged, evaluate, fit

from . import common, runstate

R0_WIDTHS = [50, 30, 20, 20, 10, 10, 10, 10]   # R0's depth family: the first depth-1 of these
OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam, "rmsprop": RMSprop, "adamw": AdamW}
SCHEDULES = ("cyclic", "onecycle", "cosine")
AUGMENT_STREAM = 6   # the augmentations' random streams: SeedSequence([seed, AUGMENT_STREAM])


def _option(default, kind, help, test=None, what="", optional=False):
    """A Spec field that is a training option: its kind ('int', 'float', 'bool', 'str' or
    'widths'), a test of its value and what the test asks for, and its help text."""
    meta = {"kind": kind, "help": help, "test": test, "what": what, "optional": optional}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _one_of(names):
    return (lambda v: v in names), f"one of {', '.join(map(str, names))}"


_COUNT = (lambda v: v >= 1), "a positive integer"
_RATE = (lambda v: v > 0), "a positive number"
_NON_NEGATIVE = (lambda v: v >= 0), "a number >= 0"
_PROBABILITY = (lambda v: 0 <= v <= 1), "a number in [0, 1]"
_BELOW_ONE = (lambda v: 0 <= v < 1), "a number in [0, 1)"


@dataclass
class Spec:
    """Everything that defines one training run; each field can be fixed (--set) or searched.

    Network: `widths` ('50-50', a list of hidden widths, or 'r0': the first depth-1 of R0's
    50-30-20-20-10-10-10-10); `depth` cuts the r0 family or, with `width`, makes depth-1 hidden
    layers of that width. Schedule: with `eta` set, a constant rate for `epochs` epochs;
    otherwise 'cyclic' (triangular eta_min..eta_max, n_s, cycles), or 'onecycle' / 'cosine'
    peaking at eta_max over `epochs` epochs (shortened to fit `time_limit` with fit_budget).
    Augmentation, on pixels before standardising, in this order: flip, blur, noise, shift,
    jitter (0: off). `label` and `tags` are the study's bookkeeping, not settings.
    """
    # data
    split: str = _option("b", "str", "data split: a (10,000 train / 10,000 val), b (50,000 - "
                         "n_val train / n_val val) or c (all 50,000, no val)",
                         *_one_of(("a", "b", "c")))
    n_val: int = _option(5000, "int", "validation images of split b", *_COUNT)
    val_choice: str = _option("last", "str", "split b's validation images: the last ones, or "
                              "drawn at random with the study's --seed",
                              *_one_of(("last", "random")))
    # network
    widths: str = _option("50-50", "widths", "hidden widths, e.g. '50-50', or 'r0'")
    depth: int | None = _option(None, "int", "number of layers (cuts 'r0'; with width: depth-1 "
                                "hidden layers)", lambda v: v >= 2, "an integer >= 2", True)
    width: int | None = _option(None, "int", "width of every hidden layer (with depth)", *_COUNT,
                                optional=True)
    inputs: int = _option(3072, "int", "input features", *_COUNT)
    classes: int = _option(10, "int", "classes", *_COUNT)
    batch_norm: bool = _option(True, "bool", "batch normalisation in each hidden layer")
    bn_position: str = _option("before", "str", "batch norm before or after the activation",
                               *_one_of(("before", "after")))
    bn_eps: float = _option(1e-5, "float", "batch norm's eps (added to the variance)", *_RATE)
    bn_momentum: float = _option(0.1, "float", "running-average update weight (PyTorch's; "
                                 "course keep-factor 0.9)", *_PROBABILITY)
    activation: str = _option("relu", "str", "activation of the hidden layers",
                              *_one_of(tuple(ACTIVATIONS)))
    negative_slope: float = _option(0.01, "float", "Leaky ReLU's slope below 0", *_NON_NEGATIVE)
    alpha: float = _option(1.0, "float", "ELU's alpha", *_RATE)
    dropout: float = _option(0.0, "float", "dropout rate after each hidden layer (0: none)",
                             *_BELOW_ONE)
    init: str = _option("he", "str", "weight init", *_one_of(tuple(INITS)))
    init_std: float | None = _option(None, "float", "sigma of init 'normal'", *_RATE,
                                     optional=True)
    # optimizer and loss
    optimizer: str = _option("sgd", "str", "optimizer", *_one_of(tuple(OPTIMIZERS)))
    momentum: float = _option(0.0, "float", "momentum (sgd, rmsprop)", *_NON_NEGATIVE)
    nesterov: bool = _option(False, "bool", "Nesterov momentum (SGD)")
    weight_decay: float = _option(0.0, "float", "weight decay of the weight matrices in the "
                                  "optimizer (biases and BN excluded)", *_NON_NEGATIVE)
    lam: float = _option(0.005, "float", "L2 coefficient lambda (in the cost)", *_NON_NEGATIVE)
    label_smoothing: float = _option(0.0, "float", "label smoothing of the cross-entropy",
                                     *_BELOW_ONE)
    # schedule
    schedule: str = _option("cyclic", "str", "learning-rate schedule (without eta)",
                            *_one_of(SCHEDULES))
    eta: float | None = _option(None, "float", "a constant learning rate for `epochs` epochs",
                                *_RATE, optional=True)
    eta_min: float = _option(1e-5, "float", "CyclicLR base_lr", *_RATE)
    eta_max: float = _option(1e-1, "float", "CyclicLR max_lr; the peak of onecycle and cosine",
                             *_RATE)
    n_s: int = _option(2250, "int", "CyclicLR step_size_up (updates per half cycle)", *_COUNT)
    cycles: int = _option(2, "int", "number of cycles (2 n_s updates each)", *_COUNT)
    epochs: int = _option(10, "int", "epochs of a constant, onecycle or cosine schedule",
                          *_COUNT)
    pct_start: float = _option(0.25, "float", "one-cycle: fraction of the updates spent "
                               "warming up", lambda v: 0 < v < 1, "a number in (0, 1)")
    batch_size: int = _option(100, "int", "images per update", *_COUNT)
    drop_last: bool = _option(False, "bool", "drop each epoch's last, smaller batch")
    # augmentation
    flip: float = _option(0.0, "float", "probability of a horizontal flip", *_PROBABILITY)
    blur: float = _option(0.0, "float", "probability of a Gaussian blur", *_PROBABILITY)
    blur_sigma: float = _option(0.5, "float", "the blur's sigma ~ U(0, blur_sigma)", *_RATE)
    noise: float = _option(0.0, "float", "Gaussian noise, a fraction of the batch's std",
                           *_NON_NEGATIVE)
    shift: int = _option(0, "int", "largest random translation in pixels (0: none)",
                         lambda v: v >= 0, "an integer >= 0")
    jitter: float = _option(0.0, "float", "ColorJitter brightness and contrast (0: none)",
                            *_NON_NEGATIVE)
    # measurement and evaluation
    measure_every: int | None = _option(None, "int", "updates between measurements (None: 10 "
                                        "per cycle of a cyclic schedule, else one epoch)",
                                        *_COUNT, optional=True)
    eval_train: int | None = _option(None, "int", "training images measured at each "
                                     "measurement (a random subset; None: all)", *_COUNT,
                                     optional=True)
    test_curve: bool = _option(False, "bool", "measure the test set during training, for the "
                               "curves of a split without validation images")
    tta: bool = _option(False, "bool", "test-time augmentation: average each image's scores "
                        "with its mirror's")
    average_last: int = _option(0, "int", "average the weights over the last k epochs (0: "
                                "none)", lambda v: v >= 0, "an integer >= 0")
    time_limit: float | None = _option(None, "float", "seconds per run for training + "
                                       "evaluation (data loading excluded)", *_RATE,
                                       optional=True)
    fit_budget: bool = _option(True, "bool", "with time_limit: shorten the onecycle or cosine "
                               "schedule to the epochs that fit (else stop early)")
    seed: int = _option(0, "int", "seed of weights, shuffling and draws", lambda v: v >= 0,
                        "an integer >= 0")
    label: str = ""
    tags: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in OPTIONS:
            setattr(self, name, check_option(name, getattr(self, name)))
        self.hidden()
        if (self.init == "normal") != (self.init_std is not None):
            raise ValueError(f"Spec: init_std goes with init 'normal' (and only with it); got "
                             f"init={self.init!r}, init_std={self.init_std!r}")
        if self.eta is not None and self.schedule != "cyclic":
            raise ValueError(f"Spec: eta (a constant rate) and schedule {self.schedule!r} "
                             f"exclude each other")
        if self.momentum and self.optimizer not in ("sgd", "rmsprop"):
            raise ValueError(f"Spec: momentum goes with optimizer 'sgd' or 'rmsprop', not "
                             f"{self.optimizer!r}")
        if self.nesterov and (self.optimizer != "sgd" or not self.momentum):
            raise ValueError("Spec: nesterov needs optimizer 'sgd' with momentum > 0")
        if self.time_limit is not None and self.fit_budget and self.kind() not in (
                "onecycle", "cosine"):
            raise ValueError(f"Spec: fit_budget fits a onecycle or cosine schedule to "
                             f"time_limit, not a {self.kind()} one; set fit_budget=False")

    @classmethod
    def of(cls, values: dict) -> Spec:
        """A Spec from training options by name (unknown names refused, listing the known)."""
        unknown = sorted(set(values) - set(OPTIONS) - {"label", "tags"})
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(OPTIONS)}")
        return cls(**values)

    @classmethod
    def from_args(cls, args, **overrides) -> Spec:
        """A Spec from a study's flags that are Spec options (those not None) and its --seed,
        then overrides."""
        values = {k: v for k, v in vars(args).items() if k in OPTIONS and v is not None}
        return cls.of({**values, "seed": args.seed, **overrides})

    def kind(self) -> str:
        """The schedule actually run: 'constant' when eta is set, else `schedule`."""
        return "constant" if self.eta is not None else self.schedule

    def hidden(self) -> list[int]:
        """The hidden widths (ValueError if widths, depth and width do not fit together)."""
        if self.widths == "r0":
            depth = 3 if self.depth is None else self.depth
            if not 2 <= depth <= len(R0_WIDTHS) + 1:
                raise ValueError(f"Spec: the r0 family has depths 2..9, got {depth}")
            return R0_WIDTHS[:depth - 1]
        if self.width is not None:
            if self.depth is None:
                raise ValueError("Spec: width needs depth (layers of that width)")
            return [self.width] * (self.depth - 1)
        if isinstance(self.widths, (list, tuple)):
            hidden = list(self.widths)
        elif isinstance(self.widths, int):
            hidden = [self.widths]
        else:
            try:
                hidden = [int(w) for w in self.widths.split("-") if w]
            except ValueError:
                raise ValueError(f"Spec: widths must look like '50-50' or be 'r0', got "
                                 f"{self.widths!r}") from None
        if any(w < 1 for w in hidden):
            raise ValueError(f"Spec: hidden widths must be positive, got {self.widths!r}")
        if self.depth is not None and self.depth != len(hidden) + 1:
            raise ValueError(f"Spec: depth {self.depth} does not match widths {self.widths!r} "
                             f"({len(hidden) + 1} layers)")
        return hidden

    def dims(self) -> list[int]:
        return [self.inputs, *self.hidden(), self.classes]

    def per_epoch(self, n_train: int) -> int:
        return n_train // self.batch_size if self.drop_last else -(-n_train // self.batch_size)

    def updates(self, n_train: int) -> int:
        """Updates of the whole schedule on n_train training images."""
        if self.kind() == "cyclic":
            return 2 * self.n_s * self.cycles
        return self.epochs * self.per_epoch(n_train)

    def augmented(self) -> bool:
        return bool(self.flip or self.blur or self.noise or self.shift or self.jitter)

    def cost(self) -> float:
        """Rough relative compute (weights x images), to start the longest runs first."""
        dims = self.dims()
        weights = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
        return weights * self.updates(45000) * self.batch_size * (1.5 if self.augmented() else 1)


OPTIONS = {f.name: f.metadata for f in dataclasses.fields(Spec) if f.metadata}


def check_option(name: str, value):
    """value as training option `name` takes it (an int for a float option becomes a float),
    else ValueError naming the option and what it expects."""
    if name not in OPTIONS:
        raise ValueError(f"{name!r} is not a training option; known: {sorted(OPTIONS)}")
    meta, given = OPTIONS[name], value
    if value is None:
        if meta["optional"]:
            return None
        raise ValueError(f"{name} cannot be null")
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    kind = meta["kind"]
    if kind == "bool":
        ok, expected = isinstance(value, bool), "true or false"
    elif kind == "int":
        ok, expected = integer, "an integer"
        value = int(value) if ok else value
    elif kind == "float":
        ok = (integer or isinstance(value, (float, np.floating))) and math.isfinite(value)
        value, expected = (float(value) if ok else value), "a finite number"
    elif kind == "widths":  # a number is one hidden layer of that width
        ok = isinstance(value, str) or integer or (
            isinstance(value, (list, tuple)) and all(
                isinstance(w, (int, np.integer)) and not isinstance(w, bool) for w in value))
        value = [int(w) for w in value] if isinstance(value, (list, tuple)) else value
        expected = "hidden widths such as '50-50', or 'r0'"
    else:
        ok, expected = isinstance(value, str), "a string"
    test, what = meta["test"], meta["what"]
    if not ok or (test is not None and not test(value)):
        raise ValueError(f"{name} must be {expected if not ok or not what else what}, got "
                         f"{given!r}")
    return value


def _json_or_text(text: str):
    import json
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def setting(text: str):
    """argparse type of --set OPTION=VALUE: the value typed and checked against the option:
    JSON for numbers, true/false and null; the text itself for string options."""
    key, sep, value = text.partition("=")
    if not sep or key not in OPTIONS:
        raise argparse.ArgumentTypeError(f"expected OPTION=VALUE with OPTION one of "
                                         f"{sorted(OPTIONS)}, got {text!r}")
    textual = OPTIONS[key]["kind"] in ("str", "widths") and value != "null"
    try:
        return key, check_option(key, value if textual else _json_or_text(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_flags(parser: argparse.ArgumentParser, names, **defaults) -> None:
    """--flags for these Spec options, typed and checked as the Spec checks them, with the
    Spec's help; defaults (by option name) override the Spec's."""
    base = Spec()
    for name in names:
        meta = OPTIONS[name]
        default = defaults.get(name, getattr(base, name))
        flag = "--" + name.replace("_", "-")
        if meta["kind"] == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=meta["help"])
            continue

        def typed(text, name=name):
            value = (text if OPTIONS[name]["kind"] == "str" else
                     _json_or_text(text) if text.strip() else text)
            try:
                return check_option(name, value)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(f"{exc}") from None
        typed.__name__ = name
        parser.add_argument(flag, type=typed, default=default, help=meta["help"])


RECIPE_FLAGS = ("batch_size", "eta_min", "eta_max", "bn_eps", "bn_momentum")


def add_recipe_flags(parser: argparse.ArgumentParser, **defaults) -> None:
    """The course recipe's flags (batch size, eta range, batch norm's eps and momentum), plus
    n_s, cycles and lam when a default is given for them."""
    extra = [name for name in ("n_s", "cycles", "lam") if name in defaults]
    add_flags(parser, RECIPE_FLAGS + tuple(extra), **defaults)


def init_fields(init) -> dict:
    """Spec fields of a command-line weight init (common.init_value: 'he' or a sigma)."""
    return dict(init="he", init_std=None) if init == "he" else dict(init="normal", init_std=init)


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------

class FittedSchedule:
    """A one-cycle or cosine schedule over `epochs` epochs that can be shortened while training
    (resize), so a run under a time budget still finishes its whole schedule. fit steps it once
    per update, like any scheduler."""

    def __init__(self, make, per_epoch: int, epochs: int):
        self.make, self.per_epoch, self.epochs = make, per_epoch, epochs
        self.inner, self.done = make(epochs * per_epoch), 0

    def step(self):
        self.inner.step()
        self.done += 1

    def resize(self, epochs: int):
        """The same schedule compressed into `epochs` epochs, continued from the current update."""
        self.epochs = epochs
        self.inner = self.make(epochs * self.per_epoch)
        for _ in range(self.done):
            self.inner.step()

    def state_dict(self):
        return {"epochs": self.epochs, "done": self.done, "inner": self.inner.state_dict()}

    def load_state_dict(self, state):
        """The saved schedule; the optimizer's hyper-parameters (lr, momentum) stay as loaded,
        though making the inner schedule sets them to its first update's."""
        groups = self.inner.optimizer.param_groups
        loaded = [{k: v for k, v in g.items() if k != "params"} for g in groups]
        self.epochs, self.done = state["epochs"], 0
        self.inner = self.make(self.epochs * self.per_epoch)
        self.inner.load_state_dict(state["inner"])
        for group, values in zip(groups, loaded):
            group.update(values)
        self.done = state["done"]


@dataclass
class Built:
    model: MLP
    optimizer: object
    scheduler: object
    augment: object


def build_model(spec: Spec) -> MLP:
    return MLP(spec.dims(), batch_norm=spec.batch_norm, bn_position=spec.bn_position,
               activation=spec.activation, dropout=spec.dropout, init=spec.init,
               init_std=spec.init_std, seed=spec.seed, negative_slope=spec.negative_slope,
               alpha=spec.alpha, bn_eps=spec.bn_eps, bn_momentum=spec.bn_momentum)


def build_augment(spec: Spec, norm=None):
    """Compose(the enabled augmentations, each with its own random stream, then norm), or None
    when none is enabled. The streams are SeedSequence([seed, AUGMENT_STREAM]).spawn(k) for the
    k enabled ones, in the order flip, blur, noise, shift, jitter."""
    steps = [make for value, make in (
        (spec.flip, lambda rng: RandomHorizontalFlip(spec.flip, seed=rng)),
        (spec.blur, lambda rng: GaussianBlur(spec.blur, (0.0, spec.blur_sigma), seed=rng)),
        (spec.noise, lambda rng: GaussianNoise(spec.noise, seed=rng)),
        (spec.shift, lambda rng: RandomTranslation(spec.shift, seed=rng)),
        (spec.jitter, lambda rng: ColorJitter(brightness=spec.jitter, contrast=spec.jitter,
                                              seed=rng))) if value]
    if not steps:
        return None
    if norm is None:
        raise ValueError("build_augment: augmentation works on pixels and needs norm, the "
                         "Normalize that standardises them")
    seeds = np.random.SeedSequence([spec.seed, AUGMENT_STREAM]).spawn(len(steps))
    return Compose([make(np.random.default_rng(s)) for make, s in zip(steps, seeds)] + [norm])


def build(spec: Spec, per_epoch: int | None = None, norm=None) -> Built:
    """The model, optimizer, scheduler and augmentation of spec. per_epoch (updates per epoch)
    is needed by the onecycle and cosine schedules, norm (a Normalize) by augmentation."""
    return Built(*build_training(spec, per_epoch), build_augment(spec, norm))


def build_training(spec: Spec, per_epoch: int | None = None) -> tuple:
    """(model, optimizer, scheduler) of spec: build without the augmentation."""
    model = build_model(spec)
    params = (nn.l2_param_groups(model, spec.weight_decay) if spec.weight_decay
              else model.parameters())
    extra = {"momentum": spec.momentum} if spec.optimizer in ("sgd", "rmsprop") else {}
    if spec.nesterov:
        extra["nesterov"] = True
    kind = spec.kind()
    lr = {"constant": spec.eta, "cyclic": spec.eta_min}.get(kind, spec.eta_max)
    optimizer = OPTIMIZERS[spec.optimizer](params, lr=lr, **extra)
    scheduler = None
    if kind == "cyclic":
        scheduler = CyclicLR(optimizer, base_lr=spec.eta_min, max_lr=spec.eta_max,
                             step_size_up=spec.n_s, mode="triangular")
    elif kind in ("onecycle", "cosine"):
        if per_epoch is None:
            raise ValueError(f"build: the {kind} schedule needs per_epoch (updates per epoch)")

        def make(total):
            if kind == "onecycle":
                return OneCycleLR(optimizer, max_lr=spec.eta_max, total_steps=total,
                                  pct_start=spec.pct_start)
            for group in optimizer.param_groups:
                group["lr"] = spec.eta_max
            return CosineAnnealingLR(optimizer, T_max=total)
        scheduler = FittedSchedule(make, per_epoch, spec.epochs)
    return model, optimizer, scheduler


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------

class TimeBudget:
    """fit callback keeping training + final evaluation within spec.time_limit. The final
    evaluation is taken as half an epoch's time plus 15 s. With fit_budget the schedule is
    fitted to the epochs that still fit, at most spec.epochs (then training ends with it);
    otherwise training stops when the next epoch would not fit."""

    def __init__(self, spec: Spec, scheduler, per_epoch: int, updates: int, t0: float):
        self.spec, self.sched, self.per_epoch, self.updates, self.t0 = (
            spec, scheduler, per_epoch, updates, t0)
        self.stopped, self.resized = False, []

    def __call__(self, step, metrics):
        k = step // self.per_epoch
        elapsed = time.perf_counter() - self.t0
        mean = elapsed / max(1, k)
        reserve = 0.5 * mean + 15
        limit, sched = self.spec.time_limit, self.sched
        if self.spec.fit_budget:
            fits = min(self.spec.epochs, k + max(0, math.floor((limit - reserve - elapsed) / mean)))
            # shrink whenever needed; grow (the machine got faster) only in the first half
            if fits < sched.epochs or (fits > sched.epochs and k < sched.epochs / 2):
                sched.resize(max(k, fits))
                self.resized.append((k, sched.epochs))
            if k >= sched.epochs:
                raise StopTraining
        elif step < self.updates and elapsed + mean + reserve > limit:
            self.stopped = True
            raise StopTraining


def _train_eval(spec: Spec, train):
    """The training images measured at each measurement: all, or a random eval_train of them."""
    n = len(train[1])
    if spec.eval_train is None or spec.eval_train >= n:
        return train
    index = np.random.default_rng(spec.seed).choice(n, size=spec.eval_train, replace=False)
    return train[0][index], train[1][index]


CHECKPOINT_EVERY, CHECKPOINT_SECONDS = 500, 60.0  # a run's checkpoint: updates, seconds


def _resume_point(path, updates: int, label: str):
    """(update, seconds trained) of the checkpoint at path, printing that the run resumes from
    it; None when there is none."""
    if path is None or not os.path.exists(path):
        return None
    state = load_checkpoint(path)
    step, wall = int(state["step"]), float(state["history"]["wall_time"])
    print(f"  {label}: resumed from update {step} of {updates} ({updates - step} left), "
          f"checkpoint {path}", flush=True)
    return step, wall


def run(spec: Spec, data: common.Data, *, progress=False, callbacks=(), test=True,
        keep_diverged=True, log=False, checkpoint=None, checkpoint_every=CHECKPOINT_EVERY,
        checkpoint_seconds=CHECKPOINT_SECONDS) -> dict:
    """Train spec on data.train (measuring on the training images and data.val), then evaluate
    on data.test (unless test=False: then no evaluation, plain, TTA or averaged, touches it).

    checkpoint: a path where fit keeps the training state (every checkpoint_every updates and
    checkpoint_seconds seconds); if the file exists, the run resumes from it, to bitwise the
    result of an uninterrupted run (unless a time_limit decides when to stop).

    Returns {'label', 'config', 'data', 'updates', 'epochs', 'final': {train_/val_/test_ acc,
    loss, cost, ...}, 'history': History.to_dict(), 'diverged', 'wall_time', ...}. A run whose
    loss becomes NaN keeps the measurements made before and is marked diverged (with
    keep_diverged=False, TrainingDiverged propagates). log: print each measurement.
    """
    t0, cpu0 = time.perf_counter(), time.process_time()
    loader = DataLoader((data.pixels, data.train[1]) if spec.augmented() else data.train,
                        batch_size=spec.batch_size, shuffle=True, seed=spec.seed,
                        drop_last=spec.drop_last)
    per_epoch = len(loader)
    if per_epoch == 0:
        raise ValueError(f"run: batch_size {spec.batch_size} with drop_last leaves no batch of "
                         f"the {len(data.train[1])} training images")
    built = build(spec, per_epoch, data.norm)
    updates = spec.updates(len(data.train[1]))
    epochs = math.ceil(updates / per_epoch)
    steps = list(callbacks)
    if log and not progress:
        steps.append(lambda step, metrics: print(
            f"    {spec.label}: epoch {step / per_epoch:.0f}/"
            f"{getattr(built.scheduler, 'epochs', epochs)}, " + ", ".join(
                f"{k} {100 * metrics[k]:.2f}%" for k in ("train_acc", "val_acc")
                if k in metrics) + f", {time.perf_counter() - t0:.0f} s", flush=True))
    swa = None
    if spec.average_last:
        swa = AveragedModel(built.model)

        def average(step, metrics):
            """SWA: add the weights at the end of each of the schedule's last average_last
            epochs (as planned at that epoch; a later shortening can leave fewer averaged)."""
            planned = getattr(built.scheduler, "epochs", epochs)
            if step % per_epoch == 0 and step // per_epoch > planned - spec.average_last:
                swa.update_parameters(built.model)
        steps.append(average)
    resumed = _resume_point(checkpoint, updates, spec.label)
    budget = None
    if spec.time_limit is not None:  # a resumed run counts the time trained before
        budget = TimeBudget(spec, built.scheduler, per_epoch, updates,
                            t0 - (resumed[1] if resumed else 0.0))
        steps.append(budget)
    val = data.test if spec.test_curve else data.val
    diverged = False
    try:
        fitted = fit(built.model, built.optimizer, loader, val_data=val, epochs=epochs,
                     scheduler=built.scheduler, l2=spec.lam, augment=built.augment,
                     max_updates=updates, train_eval_data=_train_eval(spec, data.train),
                     callbacks=steps, progress=progress, measure_every=spec.measure_every,
                     label_smoothing=spec.label_smoothing, checkpoint=checkpoint,
                     checkpoint_every=checkpoint_every, checkpoint_seconds=checkpoint_seconds,
                     state=None if swa is None else {"swa": swa})
    except TrainingDiverged as exc:
        if not keep_diverged:
            raise
        print(f"  {spec.label}: {exc}", flush=True)
        diverged, fitted = True, exc.history
    history = fitted.to_dict()
    if spec.test_curve:
        history["metrics"] = {k.replace("val_", "test_", 1): v
                              for k, v in history["metrics"].items()}
    train_time = time.perf_counter() - t0
    final = {k: v[-1] for k, v in history["metrics"].items() if v}
    if test:
        for k, v in evaluate(built.model, *data.test, l2=spec.lam).items():
            final[f"test_{k}"] = v
    final.update(_tta_and_average(spec, built.model, data, swa, diverged, final, test))
    wall = time.perf_counter() - t0
    result = {"label": spec.label, "config": {**dataclasses.asdict(spec), "dims": spec.dims()},
              "data": {"folder": data.folder, "split": data.split, "sizes": data.sizes()},
              "updates": updates, "epochs": epochs, "updates_done": len(history["lr"]),
              "epochs_done": len(history["lr"]) / per_epoch, "final": final,
              "history": history, "diverged": diverged, "train_time": train_time,
              "eval_time": wall - train_time, "wall_time": wall,
              "measure_time": fitted.measure_time, "measured_images": fitted.measured_images,
              "cpu_time": time.process_time() - cpu0,
              "parameters": int(sum(p.data.size for p in built.model.parameters())),
              "resumed_from": resumed and resumed[0]}
    if budget is not None:
        result.update(stopped_by_time_limit=budget.stopped, schedule_resized=budget.resized,
                      schedule_epochs=getattr(built.scheduler, "epochs", spec.epochs),
                      within_limit=wall <= spec.time_limit)
    return result


def _tta_and_average(spec, model, data, swa, diverged, final, test=True) -> dict:
    """With spec.tta: val and test accuracy averaging each image's scores with its mirror's
    (the plain ones kept as *_acc_plain); with weight averaging: *_acc_swa of the averaged
    weights (batch-norm statistics recomputed on 10,000 training images, as torch's
    update_bn, with dropout active). test=False leaves the test set out."""
    averaged = swa is not None and int(swa.n_averaged.data) and not diverged
    parts = [(p, xy) for p, xy in (("val", data.val), ("test", data.test if test else None))
             if xy is not None]
    out = {}
    if spec.tta:
        for part, xy in parts:
            out[f"{part}_acc_plain"] = final.get(f"{part}_acc")
            out[f"{part}_acc"] = evaluate(model, *xy, flip_tta=True, normalize=data.norm)["acc"]
    if averaged:
        x = data.train[0][:10000]
        update_bn((x[i:i + 500] for i in range(0, len(x), 500)), swa)
        for part, xy in parts:
            out[f"{part}_acc_swa"] = evaluate(swa, *xy, flip_tta=spec.tta,
                                              normalize=data.norm)["acc"]
    return out


# ---------------------------------------------------------------------------------------------
# Many runs
# ---------------------------------------------------------------------------------------------

@dataclass
class Job:
    """One run of run_all: the spec, where its data comes from, and how to report it."""
    spec: Spec
    data_args: dict
    progress: bool = False
    log: bool = False
    checkpoint: str | None = None   # the run's fit checkpoint (the study's run state)
    result: str | None = None       # where its finished result is kept
    checkpoint_every: int = CHECKPOINT_EVERY
    checkpoint_seconds: float = CHECKPOINT_SECONDS
    test: bool = True               # evaluate on the test set (False: a selection run)


def load_for(s: Spec, data_args: dict) -> common.Data:
    """The data s trains on (its split, validation size and choice), loaded from
    common.data_args: in a worker process, or in a search trial."""
    return common.load_data(argparse.Namespace(**data_args), s.split, s.n_val, s.val_choice)


def run_job(job: Job) -> dict:
    """run(job.spec) on its split (loaded once per process and kept), with where it ran; with
    a run state, checkpointed and its result kept (by the process that ran it)."""
    t0 = time.perf_counter()
    s = job.spec
    data = load_for(s, job.data_args)
    load_time = time.perf_counter() - t0
    if job.progress:
        print(f"{s.label}", flush=True)
    result = run(s, data, progress=job.progress, log=job.log, checkpoint=job.checkpoint,
                 test=job.test, checkpoint_every=job.checkpoint_every,
                 checkpoint_seconds=job.checkpoint_seconds)
    result["worker"] = {"pid": os.getpid(), "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                        "data_load_time": load_time}
    if job.result is not None:
        runstate.store(job.result, job.checkpoint, result)
    return result


def run_all(specs, args, workers: int = 1, threads: int = 1, log: bool = False,
            report=None, here: bool | None = None, state=None, test: bool = True) -> list[dict]:
    """Train every spec on the data args names (--data, --quick, --seed), in this process or
    in `workers` processes with `threads` BLAS threads each (longest runs first), printing each
    result as it ends; report(run) replaces the printed line. here=False runs even a single
    worker in a process of its own. Returns the runs in the specs' order.

    state: the study's RunState (default: that of the study begun by common.start, if any).
    Each run is then checkpointed (--checkpoint-every / --checkpoint-seconds) and its result
    kept; a run finished before is not run again, and the run in flight resumes.

    test=False: no run evaluates on the test set (runs that select a recipe on validation
    data); their results hold no test_* numbers."""
    specs = list(specs)
    state = state if state is not None else common.current_state()
    data_args = common.data_args(args)
    progress = args.progress and here is not False and (workers <= 1 or len(specs) <= 1)
    every = dict(checkpoint_every=getattr(args, "checkpoint_every", None) or CHECKPOINT_EVERY,
                 checkpoint_seconds=getattr(args, "checkpoint_seconds", None)
                 or CHECKPOINT_SECONDS)
    results, jobs = [None] * len(specs), []
    if state is not None:
        state.check_batch(specs)
    for i, s in enumerate(specs):
        results[i] = state and state.result(s)
        if results[i] is not None:
            print(f"[{i + 1}/{len(specs)}] {s.label}: finished before, result kept in "
                  f"{state.paths(s)[1]}: {common.accuracy_text(results[i]['final'])}",
                  flush=True)
            continue
        paths = {} if state is None else dict(zip(("checkpoint", "result"),
                                                  map(os.fspath, state.paths(s))))
        jobs.append((i, Job(s, data_args, progress, log, **paths, **every, test=test)))
    done = [len(specs) - len(jobs)]

    def on_done(j, run):
        done[0] += 1
        if state is not None:  # as a later resume reads it back
            run = runstate.as_stored(run)
        results[jobs[j][0]] = run
        text = report(run) if report else (f"{common.accuracy_text(run['final'])} "
                                           f"({run['wall_time']:.0f} s)")
        print(f"[{done[0]}/{len(specs)}] {run['label']}: {text}", flush=True)
        if state is not None:
            state.count_time()
            faults.at("run")  # tests only: a kill between two runs
    map_jobs(run_job, [job for _, job in jobs], workers=workers, seed=args.seed,
             threads=threads, order=(lambda job: job.spec.cost()) if workers > 1 else None,
             on_done=on_done, here=here)
    return results
