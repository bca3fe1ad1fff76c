"""Beyond the reports: the best pure MLP on CIFAR-10 in at most 15 minutes on this machine.

    python -m experiments.best_mlp --split b --seeds 1 --epochs 10    # a short validation run
    python -m experiments.best_mlp                                     # final: split c, 3 seeds

Fully connected layers only (Linear -> BatchNorm -> ReLU -> Dropout per hidden layer), trained
with what the MLP literature on CIFAR-10 suggests: wide layers, random flips and translations,
label smoothing, SGD with Nesterov momentum (or AdamW) under a one-cycle (or cosine) schedule,
weight decay on the weight matrices only, batch 256 in float32, and optionally the average of
the weights over the last epochs (SWA, batch-norm statistics recomputed) and flip test-time
augmentation. Each run's wall time covers model creation, training and evaluation (data
loading is excluded and reported separately). The machine is shared, so its speed varies: with
--fit-budget (default) --epochs is a maximum and, after every epoch, the schedule is shortened
to the epochs that still fit in --time-limit, so every run ends its whole schedule in time.
Seeds run one at a time (--workers 1, with this process's BLAS threads) or side by side in
1-thread worker processes (--workers 2).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from models.mlp import ACTIVATIONS, MLP
from tensorgrad import nn
from tensorgrad.data import (
    ColorJitter,
    Compose,
    DataLoader,
    RandomHorizontalFlip,
    RandomTranslation,
)
from tensorgrad.optim import SGD, AdamW
from tensorgrad.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR
from tensorgrad.optim.swa_utils import AveragedModel, update_bn
from tensorgrad.train import StopTraining, TrainingDiverged, evaluate, fit

from . import common, parallel

NAME, SID, TITLE = "best_mlp", "S6+", "The best pure MLP in 15 minutes"
BEST_REPORT = 0.525   # the best course report (STUDIES.md, "Beyond the reports")
TARGET = 0.60


@dataclass
class Recipe:
    """Everything that defines one best-MLP training run."""
    hidden: list = field(default_factory=lambda: [1024, 512, 256])
    activation: str = "relu"
    dropout: float = 0.1
    batch_size: int = 256
    epochs: int = 30
    optimizer: str = "sgd"          # 'sgd' (momentum, Nesterov) or 'adamw'
    lr: float = 0.1                 # peak learning rate
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4      # weight matrices only (biases and BN excluded)
    schedule: str = "onecycle"      # 'onecycle' or 'cosine'
    pct_start: float = 0.25
    label_smoothing: float = 0.1
    flip: float = 0.5               # probability of a horizontal flip
    shift: int = 3                  # max translation in pixels (0: none)
    jitter: float = 0.0             # ColorJitter brightness and contrast (0: none)
    average_last: int = 0           # average the weights over the last k epochs (0: none)
    tta: bool = True                # average the scores of each image and its mirror at test
    eval_train: int = 2000          # training images measured each epoch (curves)
    time_limit: float = 900.0       # seconds: stop before training + evaluation exceed it
    fit_budget: bool = True         # shorten the schedule (epochs = the maximum) to fit time_limit
    seed: int = 0
    label: str = ""


# ---------------------------------------------------------------------------------------------
# One run
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
        self.epochs, self.done = state["epochs"], 0
        self.inner = self.make(self.epochs * self.per_epoch)
        self.inner.load_state_dict(state["inner"])
        self.done = state["done"]


def build(r: Recipe, per_epoch: int):
    model = MLP([3072, *r.hidden, 10], activation=r.activation, dropout=r.dropout, seed=r.seed)
    groups = nn.l2_param_groups(model, r.weight_decay)
    if r.optimizer == "sgd":
        opt = SGD(groups, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov)
    elif r.optimizer == "adamw":
        opt = AdamW(groups, lr=r.lr)
    else:
        raise ValueError(f"best_mlp: optimizer must be 'sgd' or 'adamw', got {r.optimizer!r}")
    if r.schedule == "onecycle":
        def make(total):
            return OneCycleLR(opt, max_lr=r.lr, total_steps=total, pct_start=r.pct_start)
    elif r.schedule == "cosine":
        def make(total):
            for group in opt.param_groups:
                group["lr"] = r.lr
            return CosineAnnealingLR(opt, T_max=total)
    else:
        raise ValueError(f"best_mlp: schedule must be 'onecycle' or 'cosine', got {r.schedule!r}")
    return model, opt, FittedSchedule(make, per_epoch, r.epochs)


def augmentation(r: Recipe, norm):
    seeds = [np.random.default_rng(s) for s in np.random.SeedSequence([r.seed, 7]).spawn(3)]
    steps = []
    if r.flip > 0:
        steps.append(RandomHorizontalFlip(r.flip, seed=seeds[0]))
    if r.shift > 0:
        steps.append(RandomTranslation(r.shift, seed=seeds[1]))
    if r.jitter > 0:
        steps.append(ColorJitter(brightness=r.jitter, contrast=r.jitter, seed=seeds[2]))
    return Compose(steps + [norm])


def train_best(r: Recipe, data: parallel.PixelData, progress: bool = False) -> dict:
    """One run of recipe r: train on data's training part, evaluate on val (if any) and test."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    loader = DataLoader((data.train_pixels, data.train[1]), batch_size=r.batch_size,
                        shuffle=True, seed=r.seed, drop_last=True)
    per_epoch = len(loader)
    updates = r.epochs * per_epoch
    model, opt, sched = build(r, per_epoch)
    eval_idx = np.random.default_rng(r.seed).choice(
        len(data.train[1]), size=min(r.eval_train, len(data.train[1])), replace=False)
    train_eval = (data.train[0][eval_idx], data.train[1][eval_idx])
    budget = {"time_limit_stop": False, "resized": []}

    def guard(step, metrics):
        """Keep training + final evaluation within r.time_limit. The final evaluation is taken as
        half an epoch's time (~45k forward passes) plus 15 s. With fit_budget the schedule is
        fitted to the epochs that still fit, at most r.epochs (then training ends with it);
        otherwise training stops when the next epoch would not fit."""
        k = step // per_epoch
        elapsed = time.perf_counter() - t0
        mean = elapsed / max(1, k)
        reserve = 0.5 * mean + 15
        if r.fit_budget:
            fits = min(r.epochs, k + max(0, math.floor((r.time_limit - reserve - elapsed) / mean)))
            # shrink whenever needed; grow (the machine got faster) only in the first half
            if fits < sched.epochs or (fits > sched.epochs and k < sched.epochs / 2):
                sched.resize(max(k, fits))
                budget["resized"].append((k, sched.epochs))
            if k >= sched.epochs:
                raise StopTraining
        elif step < updates and elapsed + mean + reserve > r.time_limit:
            budget["time_limit_stop"] = True
            raise StopTraining

    def log(step, metrics):
        if not progress:
            print(f"    {r.label}: epoch {step / per_epoch:.0f}/{sched.epochs}, "
                  + ", ".join(f"{k} {100 * metrics[k]:.2f}%" for k in ("train_acc", "val_acc")
                              if k in metrics)
                  + f", {time.perf_counter() - t0:.0f} s", flush=True)

    swa = AveragedModel(model) if r.average_last else None

    def average(step, metrics):
        """SWA: add the weights at the end of each of the schedule's last r.average_last epochs
        (as planned at that epoch; a later shortening can leave fewer averaged)."""
        if step % per_epoch == 0 and step // per_epoch > sched.epochs - r.average_last:
            swa.update_parameters(model)

    callbacks = [log] + ([average] if swa is not None else []) + [guard]
    diverged = False
    try:
        history = fit(model, opt, loader, val_data=data.val, epochs=r.epochs, scheduler=sched,
                      augment=augmentation(r, data.norm), measure_every=per_epoch,
                      train_eval_data=train_eval, callbacks=callbacks,
                      label_smoothing=r.label_smoothing, progress=progress).to_dict()
    except TrainingDiverged as exc:
        print(f"  {r.label}: {exc}", flush=True)
        diverged, history = True, {"lr": [], "steps": [], "epochs": [], "metrics": {},
                                   "stopped_early": True, "wall_time": time.perf_counter() - t0}
    train_time = time.perf_counter() - t0
    t_eval = time.perf_counter()
    final = {k: v[-1] for k, v in history["metrics"].items() if v}
    for part, xy in (("val", data.val), ("test", data.test)):
        if xy is not None:
            final[f"{part}_acc_plain"] = evaluate(model, *xy)["acc"]
            final[f"{part}_acc"] = evaluate(model, *xy, flip_tta=r.tta, normalize=data.norm)["acc"]
    if swa is not None and int(swa.n_averaged.data) and not diverged:
        x = data.train[0][:10000]  # as torch's update_bn, with dropout active
        update_bn((x[i:i + 500] for i in range(0, len(x), 500)), swa)
        for part, xy in (("val", data.val), ("test", data.test)):
            if xy is not None:
                final[f"{part}_acc_swa"] = evaluate(swa, *xy, flip_tta=r.tta,
                                                    normalize=data.norm)["acc"]
    wall = time.perf_counter() - t0
    return {"label": r.label, "config": dataclasses.asdict(r),
            "data": {"folder": data.folder, "split": data.split, "sizes": data.sizes()},
            "updates": len(history["lr"]), "epochs_done": len(history["lr"]) / per_epoch,
            "final": final, "history": history, "diverged": diverged,
            "stopped_by_time_limit": budget["time_limit_stop"],
            "schedule_epochs": sched.epochs, "schedule_resized": budget["resized"],
            "train_time": train_time,
            "eval_time": time.perf_counter() - t_eval, "wall_time": wall,
            "cpu_time": time.process_time() - cpu0, "within_limit": wall <= r.time_limit,
            "parameters": int(sum(p.data.size for p in model.parameters()))}


# ---------------------------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    d = Recipe()
    p.add_argument("--split", choices=["b", "c"], default="c",
                   help="b: 45k train / 5k val (to choose settings); c: all 50k (final)")
    count, number, rate = common.positive_int, common.non_negative_float, common.probability
    p.add_argument("--seeds", type=count, default=3, help="seeds to train (--seed onwards)")
    p.add_argument("--hidden", type=count, nargs="+", default=d.hidden,
                   help="widths of the hidden layers")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default=d.activation,
                   help="activation of the hidden layers")
    p.add_argument("--dropout", type=common.probability_below_one, default=d.dropout,
                   help="dropout rate after each hidden layer (0: none)")
    p.add_argument("--batch-size", type=count, default=d.batch_size, help="images per update")
    p.add_argument("--epochs", type=count, default=d.epochs,
                   help="epochs (the maximum with --fit-budget)")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default=d.optimizer,
                   help="sgd: SGD with momentum; adamw: AdamW")
    p.add_argument("--lr", type=common.positive_float, default=d.lr, help="peak learning rate")
    p.add_argument("--momentum", type=number, default=d.momentum, help="SGD momentum")
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=d.nesterov,
                   help="Nesterov momentum (SGD)")
    p.add_argument("--weight-decay", type=number, default=d.weight_decay,
                   help="weight decay of the weight matrices (biases and BN excluded)")
    p.add_argument("--schedule", choices=["onecycle", "cosine"], default=d.schedule,
                   help="learning-rate schedule")
    p.add_argument("--pct-start", type=rate, default=d.pct_start,
                   help="one-cycle: fraction of the updates spent warming up")
    p.add_argument("--label-smoothing", type=rate, default=d.label_smoothing,
                   help="label smoothing of the cross-entropy")
    p.add_argument("--flip", type=rate, default=d.flip,
                   help="probability of a horizontal flip of each training image")
    p.add_argument("--shift", type=common.non_negative_int, default=d.shift,
                   help="largest random translation in pixels (0: none)")
    p.add_argument("--jitter", type=number, default=d.jitter,
                   help="ColorJitter brightness and contrast (0: none)")
    p.add_argument("--average-last", type=common.non_negative_int, default=d.average_last,
                   help="average the weights over the last k epochs (0: none)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=d.tta,
                   help="test-time augmentation: average each image's scores with its mirror's")
    p.add_argument("--eval-train", type=count, default=d.eval_train,
                   help="training images measured each epoch (for the curves)")
    p.add_argument("--time-limit", type=common.positive_float, default=d.time_limit,
                   help="seconds per run for training + evaluation (data loading excluded)")
    p.add_argument("--fit-budget", action=argparse.BooleanOptionalAction, default=d.fit_budget,
                   help="shorten the schedule to the epochs that fit --time-limit (measured "
                        "each epoch; --epochs is then the maximum); without it a run that "
                        "would overrun stops early")
    parallel.add_parallel_args(p, workers=1)
    return p


def recipe_from(args, seed) -> Recipe:
    names = {f.name for f in dataclasses.fields(Recipe)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if args.quick:
        values.update(hidden=[32, 16], epochs=3, batch_size=20, eval_train=100)
    label = (f"{'-'.join(map(str, [3072, *values['hidden'], 10]))}, {values['epochs']} epochs, "
             f"seed {seed}")
    return Recipe(**{**values, "seed": seed, "label": label})


def plot_runs(runs, out):
    """Curves of the first run (train and, on split b, val) and its learning rate."""
    from tensorgrad.plotting import plot_compare
    paths = common.run_plots(runs[0], out, "best_mlp", title=runs[0]["label"])
    if len(runs) > 1 and all(r["history"]["steps"] for r in runs):
        split = "val" if runs[0]["history"]["metrics"].get("val_acc") else "train"
        paths.append(plot_compare({f"seed {r['config']['seed']}": r["history"] for r in runs},
                                  out / "best_mlp_seeds.png", metrics=("loss", "acc"),
                                  split=split, title=f"best MLP: every seed ({split})"))
    return paths


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    t0 = time.perf_counter()
    recipes = [recipe_from(args, args.seed + s) for s in range(args.seeds)]
    load = {}

    def done(i, run):
        load[i] = run["worker"]["data_load_time"]
        f = run["final"]
        extra = "".join(f", {k} {100 * f[k]:.2f}%" for k in ("val_acc_swa", "test_acc_swa",
                                                             "test_acc_plain") if k in f)
        print(f"  {run['label']}: {common.accuracy_text(f)}{extra}; {run['wall_time']:.0f} s "
              f"(train {run['train_time']:.0f} s, {run['epochs_done']:.1f} epochs"
              f"{', STOPPED BY TIME LIMIT' if run['stopped_by_time_limit'] else ''})", flush=True)
    runs = parallel.run_jobs(train_best, recipes, args, split=args.split, workers=args.workers,
                             threads=args.threads, progress=args.progress and args.workers <= 1,
                             on_done=done)
    data = parallel.load_data(args, args.split) if args.workers <= 1 else None
    stats = common.summarize(runs, keys=("train_acc", "val_acc", "test_acc", "test_acc_plain",
                                         "test_acc_swa", "val_acc_swa"))
    walls = [r["wall_time"] for r in runs]
    test = stats.get("test_acc", (None, None))
    rows_md = []
    for r in runs:
        f = r["final"]
        rows_md.append([r["config"]["seed"], common.pct(f.get("train_acc"), digits=2),
                        common.pct(f.get("val_acc"), digits=2),
                        common.pct(f.get("test_acc_plain"), digits=2),
                        common.pct(f.get("test_acc"), digits=2),
                        common.pct(f.get("test_acc_swa"), digits=2),
                        f"{r['wall_time']:.0f}", f"{r['epochs_done']:.0f}",
                        "yes" if r["within_limit"] else "NO"])
    c = recipes[0]
    blas_threads = (args.threads if args.workers > 1
                    else os.environ.get("OPENBLAS_NUM_THREADS", "default"))
    config_text = (f"{'-'.join(map(str, [3072, *c.hidden, 10]))}, BN + {c.activation}, dropout "
                   f"{c.dropout}; {c.optimizer}"
                   f"{' Nesterov' if c.optimizer == 'sgd' and c.nesterov else ''}"
                   f" momentum {c.momentum}, {c.schedule} peak lr {c.lr}, weight decay "
                   f"{c.weight_decay}, label smoothing {c.label_smoothing}, batch {c.batch_size}, "
                   + (f"at most {c.epochs} epochs (schedule fitted to {c.time_limit:.0f} s)"
                      if c.fit_budget else f"{c.epochs} epochs")
                   + f"; flips p {c.flip}, shifts +-{c.shift} px"
                   + (f", jitter {c.jitter}" if c.jitter else "")
                   + (f", weights averaged over the last {c.average_last} epochs"
                      if c.average_last else "")
                   + (", flip TTA" if c.tta else "") + f"; split {args.split}, "
                   f"{args.workers} worker(s) x {blas_threads} BLAS thread(s)")
    table = (f"{config_text}.\n\nAccuracy in %; wall time per run in s (training + evaluation, "
             f"data loading excluded: {max(load.values()):.0f} s).\n\n"
             + common.markdown_table(["seed", "train (subset)", "val", "test (no TTA)", "test",
                                      "test (SWA)", "wall s", "epochs", f"<= {c.time_limit:.0f} s"],
                                     rows_md)
             + f"\n\nMean ± std over {len(runs)} seed(s): test {common.pct(*test, digits=2)}%; "
               f"report best {100 * BEST_REPORT:.1f}%; target {100 * TARGET:.0f}%.")
    ours = {"test": test[0]} if args.split == "c" else {"val": stats.get("val_acc", (None,))[0],
                                                        "test": test[0]}
    rows = [common.result_row(f"best pure MLP in 15 min ({len(runs)} seeds, split {args.split})",
                              ours, {"test": BEST_REPORT}, std={"test": test[1]},
                              report_text="best report: 52.5% (target >= 60%)",
                              note=config_text)]
    plots = plot_runs(runs, study.out)
    summary = (f"Test accuracy {common.pct(*test, digits=2)}% over {len(runs)} seed(s); wall "
               f"time per run {min(walls):.0f}-{max(walls):.0f} s (limit {c.time_limit:.0f} s)")
    return common.finish(study, table, rows, runs, plots, data,
                         extra={"recipe": dataclasses.asdict(c), "data_load_s": load,
                                "summary": {k: list(v) for k, v in stats.items()},
                                "total_s": time.perf_counter() - t0},
                         summary=summary)


if __name__ == "__main__":
    common.run_cli(main)
