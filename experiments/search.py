"""Hyper-parameter search over any training option: grid, random (coarse-to-fine) or TPE.

    python -m experiments.search --space r4_grid --workers 2          # S7: R4's 14 x 14 grid
    python -m experiments.search --space r0_tpe --workers 2           # S6: R0's TPE search
    python -m experiments.search --space my_space.json --sampler random --trials 30
    python -m experiments.search --space r0_tpe --storage postgresql://user:pw@host/db

--trials is the total over all workers and machines. The study lives in --storage (default
<out>/study.journal); running the same command again continues it, and on other machines the
same command with the same postgresql:// storage joins it. After the search the best
configuration is retrained on the larger split (a -> b, b -> c) and tested.

A spec file is JSON: either a bare space {"lam": {"type": "loguniform", "low": 1e-3, "high":
1e-1}, "depth": {"type": "int", "low": 2, "high": 5}} or a preset-like object {"space": ...,
"fixed": {training options}, "sampler": ..., "trials": ..., "pruner": ..., "refine": {"trials":
.., "sampler": .., "factor": .., "fix": [..], "space": {..}}, "final": {training options}}.
Searchable and fixed training options are the fields of TrainOptions below.

Ctrl-C (or SIGTERM) stops the search with one message: where its finished trials are kept and
the command that resumes it (the same one); a second Ctrl-C stops the workers at once. An
unreachable storage is retried for --storage-retry-seconds, then ends the search the same way.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from models.mlp import ACTIVATIONS, INITS, MLP
from tensorgrad.data import Compose, DataLoader, GaussianBlur, GaussianNoise, RandomHorizontalFlip
from tensorgrad.optim import SGD, Adagrad, Adam, RMSprop
from tensorgrad.optim.lr_scheduler import CyclicLR
from tensorgrad.search import (
    PRUNERS,
    SAMPLERS,
    STORAGE_RETRY_SECONDS,
    Int,
    LogUniform,
    Refine,
    StorageError,
    StorageSpec,
    StorageUnavailable,
    load_space,
    plot_best_so_far,
    plot_params,
    run_search,
    space_from_dict,
    span_seconds,
    top_table,
)
from tensorgrad.train import evaluate, fit

from . import common, interrupts

NAME = "search"
R0_WIDTHS = [50, 30, 20, 20, 10, 10, 10, 10]
OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam, "rmsprop": RMSprop}
TRAIN_EVAL = 5000   # training accuracy is measured on this many training images (speed)


@dataclass
class TrainOptions:
    """One training run of the search. Every field can be searched (--space) or fixed (--set).

    Network: `widths` '50-50' (hidden widths) or 'r0' (R0's family: the first depth-1 of
    50-30-20-20-10-10-10-10); `depth` (number of layers) cuts the r0 family or, with `width`,
    makes depth-1 hidden layers of that width. Schedule: with `eta` set, a constant learning
    rate for `epochs` epochs; otherwise the triangular cycle eta_min..eta_max, n_s, cycles.
    Augmentation per batch (on standardised images): flip (probability of a horizontal
    flip), blur (probability of a Gaussian blur, sigma ~ U(0, blur_sigma)), noise (R3's
    noise, a fraction of the batch's std).
    """
    split: str = "b"
    n_val: int = 5000
    widths: str = "50-50"
    depth: int | None = None
    width: int | None = None
    batch_norm: bool = True
    bn_position: str = "before"
    activation: str = "relu"
    dropout: float = 0.0
    init: str = "he"
    lam: float = 0.005
    optimizer: str = "sgd"
    momentum: float = 0.0
    eta: float | None = None
    epochs: int = 10
    eta_min: float = common.RECIPE["eta_min"]
    eta_max: float = common.RECIPE["eta_max"]
    n_s: int = 2250
    cycles: int = 2
    batch_size: int = common.RECIPE["batch_size"]
    flip: float = 0.0
    blur: float = 0.0
    blur_sigma: float = 0.5
    noise: float = 0.0
    seed: int = 0

    def hidden(self) -> list[int]:
        if self.widths == "r0":
            depth = 3 if self.depth is None else self.depth
            if not 2 <= depth <= len(R0_WIDTHS) + 1:
                raise ValueError(f"TrainOptions: the r0 family has depths 2..9, got {depth}")
            return R0_WIDTHS[:depth - 1]
        if self.width is not None:
            if self.depth is None:
                raise ValueError("TrainOptions: width needs depth (layers of that width)")
            return [int(self.width)] * (int(self.depth) - 1)
        try:
            hidden = [int(w) for w in str(self.widths).split("-") if w]
        except ValueError:
            raise ValueError(f"TrainOptions: widths must look like '50-50' or be 'r0', got "
                             f"{self.widths!r}") from None
        if self.depth is not None and self.depth != len(hidden) + 1:
            raise ValueError(f"TrainOptions: depth {self.depth} does not match widths "
                             f"{self.widths!r} ({len(hidden) + 1} layers)")
        return hidden

    def updates(self, n_train: int) -> int:
        if self.eta is not None:
            return self.epochs * math.ceil(n_train / self.batch_size)
        return 2 * self.n_s * self.cycles


FIELDS = {f.name: f for f in dataclasses.fields(TrainOptions)}


def _one_of(names) -> tuple:
    return (lambda v: v in names), f"one of {', '.join(map(str, names))}"


# What each training option takes, beyond its type: (test, what the error says it expects)
_COUNT = (lambda v: v >= 1), "a positive integer"
_RATE = (lambda v: v > 0), "a positive number"
_NON_NEGATIVE = (lambda v: v >= 0), "a number >= 0"
_PROBABILITY = (lambda v: 0 <= v <= 1), "a number in [0, 1]"
OPTION_RANGES = {
    "split": _one_of(("a", "b", "c")), "n_val": _COUNT, "width": _COUNT,
    "depth": ((lambda v: v >= 2), "an integer >= 2"),
    "bn_position": _one_of(("before", "after")), "activation": _one_of(tuple(ACTIVATIONS)),
    "dropout": ((lambda v: 0 <= v < 1), "a number in [0, 1)"), "init": _one_of(tuple(INITS)),
    "lam": _NON_NEGATIVE, "optimizer": _one_of(tuple(OPTIMIZERS)), "momentum": _NON_NEGATIVE,
    "eta": _RATE, "epochs": _COUNT, "eta_min": _RATE, "eta_max": _RATE, "n_s": _COUNT,
    "cycles": _COUNT, "batch_size": _COUNT, "flip": _PROBABILITY, "blur": _PROBABILITY,
    "blur_sigma": _RATE, "noise": _NON_NEGATIVE,
    "seed": ((lambda v: v >= 0), "an integer >= 0"),
}


def check_option(name: str, value):
    """value as training option `name` takes it (an int for a float option becomes a float),
    else ValueError saying what the option expects."""
    if name not in FIELDS:
        raise ValueError(f"{name!r} is not a training option; known: {sorted(FIELDS)}")
    kinds = {k.strip() for k in str(FIELDS[name].type).split("|")}
    given = value
    if value is None:
        if "None" in kinds:
            return None
        raise ValueError(f"{name} cannot be null")
    if "bool" in kinds:
        ok = isinstance(value, bool)
        expected = "true or false"
    elif "int" in kinds:
        ok = isinstance(value, int) and not isinstance(value, bool)
        expected = "an integer"
    elif "float" in kinds:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value))
        value = float(value) if ok else value
        expected = "a finite number"
    elif name == "widths":  # a number is one hidden layer of that width
        ok = isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
        expected = "hidden widths such as '50-50', or 'r0'"
    else:
        ok, expected = isinstance(value, str), "a string"
    test, what = OPTION_RANGES.get(name, (lambda v: True, ""))
    if not ok or not test(value):
        raise ValueError(f"{name} must be {expected if not ok or not what else what}, got "
                         f"{given!r}")
    return value


def options(fixed: dict, params: dict | None = None) -> TrainOptions:
    """TrainOptions from the fixed options, then the trial's parameters (names checked)."""
    values = {**fixed, **(params or {})}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(FIELDS)}")
    return TrainOptions(**values)


def _augment(o: TrainOptions, seed: int):
    parts = []
    if o.flip:
        parts.append(RandomHorizontalFlip(o.flip, seed=seed))
    if o.blur:
        parts.append(GaussianBlur(o.blur, sigma=(0.0, o.blur_sigma), seed=seed + 1))
    if o.noise:
        parts.append(GaussianNoise(o.noise, seed=seed + 2))
    return Compose(parts) if parts else None


def train(o: TrainOptions, data: common.Data, callbacks=(), progress=False):
    """Train o on data.train (validating on data.val); returns (model, History)."""
    if o.optimizer not in OPTIMIZERS:
        raise ValueError(f"train: optimizer must be one of {sorted(OPTIMIZERS)}, got "
                         f"{o.optimizer!r}")
    dims = [data.train[0].shape[1], *o.hidden(), 10]
    model = MLP(dims, batch_norm=o.batch_norm, bn_position=o.bn_position,
                activation=o.activation, dropout=o.dropout, init=o.init, seed=o.seed)
    for m in model.modules():
        if hasattr(m, "running_var"):
            m.eps, m.momentum = common.RECIPE["bn_eps"], common.RECIPE["bn_momentum"]
    loader = DataLoader(data.train, batch_size=o.batch_size, shuffle=True, seed=o.seed)
    extra = {"momentum": o.momentum} if o.optimizer in ("sgd", "rmsprop") else {}
    lr = o.eta if o.eta is not None else o.eta_min
    optimizer = OPTIMIZERS[o.optimizer](model.parameters(), lr=lr, **extra)
    scheduler = None if o.eta is not None else CyclicLR(
        optimizer, base_lr=o.eta_min, max_lr=o.eta_max, step_size_up=o.n_s)
    updates = o.updates(len(data.train[1]))
    history = fit(model, optimizer, loader, val_data=data.val,
                  epochs=math.ceil(updates / len(loader)), max_updates=updates,
                  scheduler=scheduler, l2=o.lam, augment=_augment(o, o.seed + 7),
                  train_eval_data=tuple(a[:TRAIN_EVAL] for a in data.train),
                  callbacks=list(callbacks), progress=progress)
    return model, history


def _data(data_args: dict, split: str, n_val: int) -> common.Data:
    return common.load_data(argparse.Namespace(**data_args), split=split, n_val=n_val)


def objective(params, trial, fixed, data_args, progress=False):
    """The search objective: final validation accuracy of one training run (pruned by the
    trial's pruner on the validation accuracy at each measurement)."""
    o = options(fixed, params)
    if o.split == "c":
        raise ValueError("the search needs validation data: split 'c' has none")
    data = _data(data_args, o.split, o.n_val)
    _, history = train(o, data, callbacks=[trial.pruning_callback("val_acc")], progress=progress)
    trial.set_user_attr("train_acc", history.last("train_acc"))
    trial.set_user_attr("updates", history.steps[-1] if history.steps else 0)
    return history.last("val_acc")


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------

PRESETS = {
    # S7 (R4): 3-layer BN, constant eta, 10 epochs; 14 x 14 log grid, then 20 eta values at the
    # best lambda. Split (a) (STUDIES.md does not say which split R4 used).
    "r4_grid": dict(
        sid="S7", title="R4's grid search of (lambda, eta)",
        space={"lam": LogUniform(1e-8, 1e-4, num=14), "eta": LogUniform(1e-6, 1e-2, num=14)},
        fixed=dict(split="a", widths="50-50", batch_norm=True, epochs=10, init="he"),
        sampler="grid", trials=None, pruner="none",
        refine=Refine(sampler="grid", fix=("lam",), space={"eta": LogUniform(0.02, 0.1, num=20)}),
        final=dict(split="b"),
        report={"top": [0.418, 0.4157, 0.412],
                "text": "top three 41.8 / 41.57 / 41.2% at (eta, lambda) = (0.02785, 2.03e-8), "
                        "(0.02, 2.03e-8), (0.02, 2e-7); 196 runs in about 7 hours"}),
    # S6 (R0): TPE over lambda and depth of the r0 family, ~20 trials; AdaGrad on the cyclical
    # schedule, dropout 0.1, flip 20% + blur 50% sigma U(0, 0.5), "Xavier" = lecun init.
    "r0_tpe": dict(
        sid="S6", title="R0's TPE search of (lambda, depth)",
        space={"lam": LogUniform(1e-2, 8e-2), "depth": Int(3, 9)},
        fixed=dict(split="b", widths="r0", batch_norm=True, dropout=0.1, optimizer="adagrad",
                   n_s=2250, cycles=2, init="lecun", flip=0.2, blur=0.5, blur_sigma=0.5),
        sampler="tpe", trials=20, pruner="median", refine=None,
        final=dict(split="c", cycles=4, n_s=2500),
        report={"best_val": 0.506, "final_test": 0.5213,
                "text": "best val 50.6% (3 layers, lambda 0.014); ~20 trials",
                "final_text": "test 52.13% (50,000 images, 4 cycles n_s 2500)"}),
}


def load_preset(name: str) -> dict:
    """A named preset, or a JSON spec file (a bare space or a preset-like object)."""
    if name in PRESETS:
        return dict(PRESETS[name], name=name)
    path = Path(name)
    if not path.exists():
        raise FileNotFoundError(f"--space: {name!r} is neither a preset ({sorted(PRESETS)}) "
                                f"nor a file")
    raw = json.loads(path.read_text())
    if "space" not in raw:
        return dict(sid="search", title=f"search over {path.name}", space=load_space(path),
                    fixed={}, sampler=None, trials=None, pruner=None, refine=None, final={},
                    report=None, name=path.stem)
    unknown = set(raw) - {"space", "fixed", "sampler", "trials", "pruner", "refine", "final",
                          "title"}
    if unknown:
        raise ValueError(f"--space {name}: unknown keys {sorted(unknown)}")
    refine = raw.get("refine")
    if refine is not None:
        refine = Refine(**{**refine, "fix": tuple(refine.get("fix", ())),
                           "space": space_from_dict(refine["space"]) if refine.get("space")
                           else {}})
    return dict(sid="search", title=raw.get("title", f"search over {path.name}"),
                space=space_from_dict(raw["space"], who=f"--space {name}"),
                fixed=raw.get("fixed", {}), sampler=raw.get("sampler"),
                trials=raw.get("trials"), pruner=raw.get("pruner"), refine=refine,
                final=raw.get("final", {}), report=None, name=path.stem)


def _value(text: str):
    """A --set value: JSON (numbers, true/false, null) or else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def setting(text: str):
    """--set OPTION=VALUE, the value typed and checked against the training option: JSON for
    numbers, true/false and null; the text itself for string options."""
    key, sep, value = text.partition("=")
    if not sep or key not in FIELDS:
        raise argparse.ArgumentTypeError(f"expected OPTION=VALUE with OPTION one of "
                                         f"{sorted(FIELDS)}, got {text!r}")
    kinds = {k.strip() for k in str(FIELDS[key].type).split("|")}
    parsed = value if kinds <= {"str", "None"} and value != "null" else _value(value)
    try:
        return key, check_option(key, parsed)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _probes(param) -> list:
    """Values that stand for a search parameter when checking a space: every value of a small
    grid (Choice, Int, a numbered grid), else the ends of its range."""
    values = param.grid()
    if values is not None and len(values) <= 64:
        return list(values)
    return [param.low, param.high]


def check_space_options(space: dict, fixed: dict, refine=None) -> None:
    """Refuse, before the first trial, a space the training options cannot take: each probe
    value of each parameter (and, up to 4096 points, their combinations) must give valid
    TrainOptions with the fixed options. ValueError names the point and the reason."""
    spaces = [space] + ([{**space, **refine.space}] if refine is not None and refine.space
                        else [])
    for current in spaces:
        probes = {name: _probes(param) for name, param in current.items()}
        for name, values in probes.items():
            for v in values:
                try:
                    check_option(name, v)
                except ValueError as exc:
                    raise ValueError(f"{name}={v!r} cannot be trained: {exc}") from None
        names = list(probes)
        if math.prod(len(v) for v in probes.values()) <= 4096:
            points = [dict(zip(names, combo)) for combo in itertools.product(*probes.values())]
        else:  # one parameter at a time, the others at their first probe
            first = {n: v[0] for n, v in probes.items()}
            points = [{**first, n: v} for n, values in probes.items() for v in values]
        for point in points:
            try:
                o = options(fixed, point)
                o.hidden()
                if o.split == "c":
                    raise ValueError("split 'c' has no validation data to search on")
            except (ValueError, TypeError) as exc:
                where = ", ".join(f"{k}={v!r}" for k, v in point.items())
                raise ValueError(f"the point {where} cannot be trained with the fixed options: "
                                 f"{exc}; fix the others with --set OPTION=VALUE or search "
                                 f"them too") from None


def pruner_options(name: str, o: TrainOptions, space: dict, n_train: int) -> dict:
    """Don't judge a trial in its first half (median) / rungs at 1/9, 1/3 of the run (halving),
    when the number of updates does not depend on the searched parameters."""
    schedule = {"eta", "epochs", "n_s", "cycles", "batch_size", "split", "n_val"}
    updates = None if schedule & set(space) else o.updates(n_train)
    if name == "median":
        return {"n_warmup_steps": updates // 2} if updates else {}
    if name == "halving":
        return {"min_resource": max(1, updates // 9), "reduction_factor": 3} if updates else {}
    return {}


def _n_train(o: TrainOptions, data_args: dict) -> int:
    if data_args["quick"]:  # tiny data: look
        return len(_data(data_args, o.split, o.n_val).train[1])
    return {"a": 10000, "b": 50000 - o.n_val, "c": 50000}[o.split]


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0], folder="search_<study-name>")
    p.add_argument("--space", default="r0_tpe",
                   help=f"a preset ({', '.join(PRESETS)}) or a JSON spec file")
    p.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="Optuna sampler; default: the preset's (grid for r4_grid, tpe for "
                        "r0_tpe; tpe for a file)")
    p.add_argument("--trials", type=common.positive_int, default=None,
                   help="trials of stage 1 over all workers (default: the preset's; a grid: "
                        "all points)")
    p.add_argument("--fine-trials", type=common.non_negative_int, default=None,
                   help="trials of the second (fine) stage; 0 = no second stage (default: the "
                        "preset's, or 0)")
    p.add_argument("--workers", type=common.positive_int, default=1,
                   help="worker processes on this machine (one BLAS thread each when > 1)")
    p.add_argument("--storage", default=None,
                   help="journal file path or postgresql://user:password@host:port/db "
                        "(default: <out>/study.journal)")
    p.add_argument("--study-name", default=None,
                   help="the study's name in the storage; default: the preset or spec file name")
    p.add_argument("--pruner", choices=PRUNERS, default=None,
                   help="pruner of hopeless trials; default: the preset's (none for r4_grid, "
                        "median for r0_tpe and files)")
    p.add_argument("--set", dest="fixed", type=setting, action="append", default=[],
                   metavar="OPTION=VALUE",
                   help="fix a training option (a field of TrainOptions), e.g. --set epochs=5; "
                        "repeatable")
    p.add_argument("--heartbeat", type=common.positive_int, default=10,
                   help="seconds between heartbeats of a running trial (postgresql only; a "
                        "trial silent for 4 heartbeats is re-queued)")
    p.add_argument("--storage-retry-seconds", type=common.non_negative_float,
                   default=STORAGE_RETRY_SECONDS,
                   help="how long an unreachable storage (database down or restarting, journal "
                        "file gone) is retried, with backoff, before the search stops with a "
                        "message; the same command then resumes it")
    p.add_argument("--no-final", dest="final", action="store_false",
                   help="skip retraining the best configuration on the larger split")
    p.add_argument("--final-split", choices=["b", "c"], default=None,
                   help="split of the final run (default: the preset's, else a->b, b->c)")
    return p


def _quick(fixed: dict) -> dict:
    """--quick: tiny schedules."""
    return {**fixed, "n_s": min(fixed.get("n_s", 2250), common.QUICK_N_S),
            "epochs": min(fixed.get("epochs", 10), 2)}


def final_run(o: TrainOptions, data_args: dict, progress: bool) -> dict:
    """Retrain o (the best configuration, on its final split) and test it, as the reports do."""
    t0 = time.perf_counter()
    data = _data(data_args, o.split, o.n_val)
    model, history = train(o, data, progress=progress)
    final = {k: v[-1] for k, v in history.metrics.items() if v}
    for k, v in evaluate(model, *data.test, l2=o.lam).items():
        final[f"test_{k}"] = v
    run = {"label": "best configuration, retrained", "config": dataclasses.asdict(o),
           "data": {"folder": data.folder, "split": data.split, "sizes": data.sizes()},
           "updates": history.steps[-1] if history.steps else 0, "final": final,
           "history": history.to_dict(), "wall_time": time.perf_counter() - t0}
    print(f"final run (split {o.split}): {common.accuracy_text(final)} "
          f"({run['wall_time']:.0f} s)", flush=True)
    return run


def _rows(preset, result, final) -> list[dict]:
    rep = preset.get("report") or {}
    done = sorted((r for r in result.records if r["state"] == "COMPLETE"),
                  key=lambda r: -r["value"])
    best = result.best
    rows = []
    if "top" in rep and done:
        top = done[:3]
        ours = " / ".join(f"{100 * r['value']:.2f}" for r in top)
        where = "; ".join(f"(eta {r['params'].get('eta', float('nan')):.4g}, lambda "
                          f"{r['params'].get('lam', float('nan')):.3g})" for r in top)
        rows.append(common.result_row(
            f"{preset['sid']} {preset['name']}: top three", {"val": top[0]["value"]},
            {"val": rep["top"][0]}, ours_text=f"val {ours}% at {where}",
            report_text=rep["text"], compare="val"))
    if "best_val" in rep and best:
        params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in best["params"].items())
        rows.append(common.result_row(
            f"{preset['sid']} {preset['name']}: best trial", {"val": best["value"]},
            {"val": rep["best_val"]}, ours_text=f"val {common.pct(best['value'], digits=2)}% "
            f"({params})", report_text=rep["text"], compare="val"))
    if final is not None:
        test = final["final"].get("test_acc")
        report = {"test": rep["final_test"]} if "final_test" in rep else None
        rows.append(common.result_row(
            f"{preset['sid']} {preset['name']}: best retrained on split {final['data']['split']}",
            {"test": test}, report, ours_text=common.accuracy_text(final["final"]),
            report_text=rep.get("final_text", "—"), compare="test"))
    return rows


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        preset = load_preset(args.space)
    except (OSError, ValueError, TypeError) as exc:
        parser.error(str(exc))
    study_name = args.study_name or preset["name"]
    if args.out is None:
        args.out = os.fspath(common.output_dir(args, f"search_{study_name}"))
    fixed = {**preset["fixed"], **dict(args.fixed), "seed": args.seed}
    if args.quick:
        fixed = _quick(fixed)
    space = preset["space"]
    clash = sorted(set(space) & set(dict(args.fixed)))
    if clash:
        parser.error(f"--set {clash}: these options are searched by --space {args.space}")
    unknown = sorted(set(space) - set(FIELDS))
    if unknown:
        parser.error(f"--space {args.space}: {unknown} are not training options; known: "
                     f"{sorted(FIELDS)}")
    try:
        for name, value in fixed.items():
            check_option(name, value)
        options(fixed).hidden()
    except (ValueError, TypeError) as exc:
        parser.error(f"fixed training options {fixed}: {exc}")
    sampler = args.sampler or preset["sampler"] or "tpe"
    pruner = args.pruner or preset["pruner"] or "median"
    trials = args.trials if args.trials is not None else preset["trials"]
    refine = preset["refine"]
    if args.fine_trials is not None:
        refine = (None if args.fine_trials == 0 else
                  dataclasses.replace(refine or Refine(), trials=args.fine_trials))
    try:
        check_space_options(space, fixed, refine)
    except ValueError as exc:
        parser.error(f"--space {args.space}: {exc}")
    study = common.start(NAME, preset["sid"], preset["title"], args, argv)
    storage = StorageSpec(args.storage or os.fspath(study.out / "study.journal"),
                          heartbeat=args.heartbeat, grace=4 * args.heartbeat,
                          retry_seconds=args.storage_retry_seconds)
    with _resumable(study, storage):
        data_args = {"data": args.data, "quick": args.quick}
        o = options(fixed)
        print(f"  workers: {args.workers}, sampler {sampler}, pruner {pruner}, storage "
              f"{storage.describe()}", flush=True)
        result = run_search(
            objective, space, storage=storage, study_name=study_name, trials=trials,
            sampler=sampler, workers=args.workers, pruner=pruner,
            pruner_options=pruner_options(pruner, o, space, _n_train(o, data_args)), seed=args.seed,
            refine=refine, objective_kwargs={"fixed": fixed, "data_args": data_args,
                                             "progress": args.progress and args.workers == 1})
        best = result.best
        final = None
        if best is not None and args.final:
            final_opts = {**fixed, **preset["final"], **best["params"]}
            final_opts["split"] = args.final_split or preset["final"].get("split") or \
                {"a": "b", "b": "c"}[o.split]
            if args.quick:
                final_opts = _quick(final_opts)
            final = final_run(options(final_opts), data_args, args.progress)
        plots = [] if best is None else [
            plot_params(result.records, space, study.out / "params.png",
                        title=f"{study_name}: validation accuracy per parameter"),
            plot_best_so_far(result.records, study.out / "best_so_far.png",
                             title=f"{study_name}: best so far")]
        if final is not None:
            plots += common.run_plots(final, study.out, "final", title="best configuration")
        states = {}
        for r in result.records:
            states[r["state"]] = states.get(r["state"], 0) + 1
        rows = _rows(preset, result, final)
        span = span_seconds(result.records) or 0.0
        busy = sum(r["duration_s"] or 0.0 for r in result.records)
        table = "\n\n".join([
            f"Search: {sampler}, {len(result.records)} trials "
            f"({', '.join(f'{v} {k.lower()}' for k, v in sorted(states.items()))}), "
            f"{args.workers} worker(s) here; search wall time {result.wall_time:.0f} s in this "
            f"run, {span:.0f} s from the first trial's start to the last one's end (a resumed "
            f"study counts its earlier runs too); {busy:.0f} s of trials in all.",
            "Top 10 (validation accuracy in %):\n\n" + top_table(
                result.records, 10, "val %", lambda v: f"{100 * v:.2f}"),
            "Against the report:\n\n" + common.markdown_table(
                ["", "ours", "report"], [[r["label"], r["ours_text"], r["report_text"]]
                                         for r in rows])])
        failed = [r for r in result.records if r["state"] == "FAIL"]
        if failed:
            table += "\n\nFailed trials:\n\n" + "\n".join(
                f"- {r['stage'] + 1}:{r['number']} {r['params']}: {r['reason']}" for r in failed)
        extra = {"search": {"study_name": study_name, "storage": storage.describe(),
                            "sampler": sampler, "pruner": pruner, "workers": args.workers,
                            "fixed": fixed, "stages": result.stages,
                            "wall_time_s": result.wall_time, "span_s": span,
                            "trial_seconds": busy},
                 "trials": result.records, "best": best}
        summary = (f"best: {best['params']} val {100 * best['value']:.2f}%" if best else
                   f"no trial completed ({states.get('FAIL', 0)} failed, "
                   f"{states.get('PRUNED', 0)} pruned): see the reasons above")
        return common.finish(study, table, rows, [final] if final else [], plots,
                             extra=extra, summary=summary)


@contextlib.contextmanager
def _resumable(study, storage: StorageSpec):
    """An interruption or a storage fault inside carries where the search's work is kept
    (`search_storage`) and the command that resumes it (`resume_command`)."""
    try:
        yield
    except (KeyboardInterrupt, StorageError) as exc:
        exc.search_storage = storage.describe()
        exc.resume_command = study.command.replace(storage.url, storage.url_without_password)
        raise


def _interrupted(exc) -> str:
    """The one message of a search stopped by Ctrl-C or SIGTERM: where its finished trials are
    kept and the command that resumes it."""
    what = "stopped (SIGTERM)" if isinstance(exc, interrupts.Terminated) else \
        "interrupted (Ctrl-C)"
    if hasattr(exc, "search_storage"):
        return (f"{what}: the search's finished trials are kept in {exc.search_storage}; the "
                f"same command resumes it:\n  {exc.resume_command}")
    return f"{what} before the search started: there is nothing to resume"


def succeeded(results) -> bool:
    """A search succeeds when some trial completed; one whose every trial failed or was pruned
    has written its report (the reasons of the failures) and exits with status 1."""
    if results["best"] is None:
        failed = sum(t["state"] == "FAIL" for t in results["trials"])
        print(f"error: search {results['search']['study_name']!r}: no trial completed "
              f"({failed} failed); the reasons are above and in its table.md", file=sys.stderr)
        return False
    return True


def cli():
    """The command line: main(), where Ctrl-C (exit 130), SIGTERM (143) and a storage fault
    (1) end with one message saying where the work is kept and the command that resumes it,
    instead of a traceback (experiments/interrupts.py). A second Ctrl-C, while the workers
    record their trials, stops them at once."""
    try:
        common.run_cli(main, succeeded, interrupted=_interrupted)
    except StorageError as exc:
        resume = (f"\n  once it is back, the same command resumes the search (a longer "
                  f"--storage-retry-seconds waits longer):\n  {exc.resume_command}"
                  if isinstance(exc, StorageUnavailable) else "")
        sys.exit(f"error: {exc}{resume}")


if __name__ == "__main__":
    cli()
