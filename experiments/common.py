"""What every study script shares: command-line flags, data loading, one training run, outputs.

A study script builds its parser with `study_parser` (numbers checked by the argparse types
below), describes its runs as experiments.spec.Spec and trains them with spec.run_all (data
from `load_data`, the one split loader), and ends with `finish`, which writes results.json
(config, command line, seed, versions, the code's commit and tree hashes, wall time, numbers)
and table.md into runs/<study>/ and prints both paths. Nothing here writes into the
repository's tracked files: only `python -m experiments.reproduce --publish` copies results into
experiments/results/.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import tensorgrad
from tensorgrad.atomic import write_text
from tensorgrad.data import ImageArray, check_finite, find_cifar10, load_cifar10, standardize
from tensorgrad.data.cifar10 import ENV_VAR, resolve_root

from . import interrupts
from .runstate import ResumeRefused, RunState

EXPERIMENTS = Path(__file__).resolve().parent
REPO = EXPERIMENTS.parent
RESULTS_ROOT = EXPERIMENTS / "results"  # published evidence: written only by reproduce --publish
RUNS_ROOT = REPO / "runs"               # every script's outputs by default (gitignored)
QUICK_ROOT = RUNS_ROOT / "quick"        # --quick runs, apart from the full ones

# --quick: at most this many images per part, and this n_s (so a run is a few dozen updates)
QUICK_TRAIN, QUICK_VAL, QUICK_TEST, QUICK_N_S = 400, 100, 100, 5

# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help with each default said once: '(default: X)' is added unless the help text already
    speaks of its default, or the default is None or [], or the flag is a switch (--quick,
    --no-progress: giving it is the setting); a --x/--no-x pair shows the default's spelling."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text.lower() or action.default in (None, argparse.SUPPRESS, [])
                or not (action.option_strings or action.nargs in (argparse.OPTIONAL,
                                                                   argparse.ZERO_OR_MORE))):
            return text
        if isinstance(action, argparse.BooleanOptionalAction):
            on, off = action.option_strings[0], action.option_strings[1]
            return f"{text} (default: {on if action.default else off})"
        if action.nargs == 0:  # store_true / store_false / store_const
            return text
        return f"{text} (default: %(default)s)"


def _checked(kind, text, ok, what):
    """text as kind if ok(value) (and finite), else the argparse error 'expected WHAT'."""
    try:
        value = kind(text)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text) -> int:
    """argparse type: a count such as --n-s, --seeds, --workers, --epochs (1, 2, ...)."""
    return _checked(int, text, lambda v: v > 0, "a positive integer")


def non_negative_int(text) -> int:
    """argparse type: an integer >= 0 (a seed, or a count where 0 means none)."""
    return _checked(int, text, lambda v: v >= 0, "an integer >= 0")


def positive_float(text) -> float:
    """argparse type: a finite number > 0 (a learning rate, eps, a time limit)."""
    return _checked(float, text, lambda v: v > 0, "a positive number")


def non_negative_float(text) -> float:
    """argparse type: a finite number >= 0 (lambda, weight decay, momentum)."""
    return _checked(float, text, lambda v: v >= 0, "a number >= 0")


def probability(text) -> float:
    """argparse type: a number in [0, 1]."""
    return _checked(float, text, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def probability_below_one(text) -> float:
    """argparse type: a number in [0, 1) (a dropout rate: 1 would drop everything)."""
    return _checked(float, text, lambda v: 0 <= v < 1, "a number in [0, 1)")


def study_parser(name: str, description: str, folder: str | None = None,
                 resumable: bool = True) -> argparse.ArgumentParser:
    """The flags every study takes: --data, --out, --seed, --quick, --no-progress, and, when
    `resumable` (its runs are kept in a run state), --restart, --checkpoint-every and
    --checkpoint-seconds. folder: the default output folder's name under runs/ as the help
    shows it (default: name)."""
    folder = folder or name
    p = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description,
                                formatter_class=HelpFormatter)
    p.add_argument("--data", default=None,
                   help=f"folder holding cifar-10-batches-py (or that folder itself); default "
                        f"${ENV_VAR}, else ~/.cache/tensorgrad")
    p.add_argument("--out", default=None,
                   help=f"output folder; default runs/{folder}/ (runs/quick/{folder}/ with "
                        f"--quick), untracked")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of weights, shuffling and draws")
    p.add_argument("--quick", action="store_true",
                   help=f"tiny run for tests: at most {QUICK_TRAIN}/{QUICK_VAL}/{QUICK_TEST} "
                        f"train/val/test images, n_s={QUICK_N_S}")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar during training")
    if resumable:
        p.add_argument("--restart", action="store_true",
                       help="start over: remove the run state kept in <out>/state/ (by "
                            "default the same command continues where it stopped)")
        p.add_argument("--checkpoint-every", type=positive_int, default=500,
                       help="updates between checkpoints of the run in flight")
        p.add_argument("--checkpoint-seconds", type=positive_float, default=60.0,
                       help="seconds between checkpoints of the run in flight, at most")
    return p


def bn_choice(value):
    """--bn / --no-bn / neither -> the list of batch-norm settings to run."""
    return [True, False] if value is None else [bool(value)]


def add_bn_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bn", action=argparse.BooleanOptionalAction, default=None,
                   help="only with (--bn) or only without (--no-bn) batch norm; default both")


def add_seeds_flag(p: argparse.ArgumentParser, default: int = 3, what: str = "setting") -> None:
    """--seeds N: every compared setting runs with seeds --seed, --seed + 1, ..., --seed + N - 1,
    the same seeds in every arm, so that differences between arms can be paired by seed."""
    p.add_argument("--seeds", type=positive_int, default=default,
                   help=f"seeds per {what}: --seed, --seed + 1, ... (the same seeds in every "
                        f"compared arm: differences are paired by seed)")


def seed_list(args) -> list[int]:
    """The seeds of a study's compared rows: args.seed, args.seed + 1, ..., args.seeds of them."""
    return [args.seed + i for i in range(args.seeds)]


def add_parallel_args(p: argparse.ArgumentParser, workers: int = 2) -> None:
    p.add_argument("--workers", type=positive_int, default=workers,
                   help="parallel training processes (1: run here, one at a time)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="BLAS threads per worker process")


def run_cli(main, succeeded=lambda results: True, interrupted=None) -> None:
    """Entry point of a study module: run main(); a missing dataset ends with its message
    instead of a traceback; exit status 1 when succeeded(results) is false. Ctrl-C / SIGTERM
    end with one message, interrupted(exc) (default: what a study keeps), and status 130 / 143
    (experiments/interrupts.py)."""
    try:
        results = interrupts.run(main, interrupted or interrupted_message)
    except (FileNotFoundError, ResumeRefused) as exc:
        sys.exit(f"error: {exc}")
    sys.exit(0 if succeeded(results) else 1)


_started = []  # the Study begun in this process by start(), for interrupted_message


def current_state():
    """The RunState of the study begun by start() in this process and not yet finished."""
    return _started[-1].state if _started and not _started[-1].finished else None


def resume_command(command: str) -> str:
    """The command that continues a study: the same one, without --restart."""
    return " ".join(part for part in command.split(" ") if part != "--restart")


def interrupted_message(exc) -> str:
    """What a study stopped by Ctrl-C / SIGTERM kept, and the command that resumes it."""
    how = interrupts.signal_name(exc)
    if not _started:
        return f"interrupted ({how}) before the study began; nothing was written."
    study = _started[-1]
    if study.state is None:
        return (f"interrupted ({how}): {study.name} did not finish; re-running "
                f"`{study.command}` starts over.")
    step = getattr(exc, "step", None)
    flight = f", the run in flight at update {step}" if getattr(exc, "checkpoint", None) else ""
    return (f"interrupted ({how}): {study.name} did not finish; its run state (finished "
            f"runs{flight}) is kept in {study.state.folder}; the same command resumes it: "
            f"`{resume_command(study.command)}`")


def output_dir(args, name: str) -> Path:
    """--out, else runs/<name>/ (runs/quick/<name>/ with --quick): never a tracked folder."""
    if args.out:
        return Path(args.out)
    return (QUICK_ROOT if args.quick else RUNS_ROOT) / name


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

@dataclass
class Data:
    """Standardised splits (x, int64 y): train, val (None for split 'c') and test, plus the
    training images as pixels in [0, 1] (`pixels`, for augmentation) and the Normalize that
    standardises them (`norm`, the last step after augmenting).

    x is an ImageArray: the uint8 images, read as float32 batches standardised with the training
    part's statistics (bitwise what standardising the float32 pixels gives)."""
    train: tuple
    val: tuple | None
    test: tuple
    folder: str
    split: str
    pixels: object = None
    norm: object = None

    def sizes(self) -> dict:
        return {k: (None if v is None else len(v[1]))
                for k, v in (("train", self.train), ("val", self.val), ("test", self.test))}


_cache: dict = {}


def data_args(args) -> dict:
    """What load_data reads from a study's args, as a picklable dict for worker processes and
    search trials: the folder, --quick and --seed (split b's random validation choice)."""
    return {"data": args.data, "quick": args.quick, "seed": args.seed}


def load_data(args, split: str = "b", n_val: int = 5000, val_choice: str = "last") -> Data:
    """CIFAR-10 in the given split, standardised with the training part's mean and std.

    The images stay uint8 (184 MB for split b) and every batch read from them is converted and
    standardised on the fly. With args.quick the parts are cut to QUICK_TRAIN / QUICK_VAL /
    QUICK_TEST images, and split 'b' takes its validation images from the end of the training
    batches, at most a fifth of them, so a tiny dataset in the real format (fewer images per
    file) works too. The last loaded split is cached, so a study running several configurations
    loads it once. val_choice 'random' draws split b's validation images at random with
    args.seed (R0's way; --quick keeps its cut). A split holding NaN or infinity raises
    ValueError naming it.
    """
    key = (os.fspath(resolve_root(args.data)), split, n_val, val_choice, args.quick)
    if key in _cache:
        return _cache[key]
    _cache.clear()  # one split in memory at a time
    if args.quick:  # never downloads: --quick is for tests and fixtures
        raw = load_cifar10(args.data, split="a" if split == "a" else "c", download=False,
                           dtype=np.uint8)
        (x, y), test = raw.train, raw.test
        if split == "a":
            train, val = (x[:QUICK_TRAIN], y[:QUICK_TRAIN]), tuple(a[:QUICK_VAL] for a in raw.val)
        elif split == "b":
            n_v = max(1, min(QUICK_VAL, n_val, len(y) // 5))
            train = (x[:min(QUICK_TRAIN, len(y) - n_v)], y[:min(QUICK_TRAIN, len(y) - n_v)])
            val = (x[len(y) - n_v:], y[len(y) - n_v:])
        else:
            train, val = (x[:QUICK_TRAIN], y[:QUICK_TRAIN]), None
        test = (test[0][:QUICK_TEST], test[1][:QUICK_TEST])
    else:
        raw = load_cifar10(args.data, split=split, n_val=n_val, dtype=np.uint8,
                           val_choice=val_choice, seed=args.seed)
        train, val, test = raw.train, raw.val, raw.test
    del raw
    for name, part in (("train", train), ("val", val), ("test", test)):
        check_finite(None if part is None else part[0], f"load_data: the {name} split")
    xs = standardize(train[0], None if val is None else val[0], test[0])
    folder = os.fspath(find_cifar10(args.data) or resolve_root(args.data))
    data = Data(train=(xs[0], train[1]), val=None if val is None else (xs[1], val[1]),
                test=(xs[2], test[1]), folder=folder, split=split, pixels=ImageArray(train[0]),
                norm=xs[0].transform)
    _cache[key] = data
    return data


# ---------------------------------------------------------------------------------------------
# Runs: weight inits, accuracies, curves
# ---------------------------------------------------------------------------------------------

def init_value(text: str):
    """A command-line weight init: 'he' or a positive float sigma for N(0, sigma^2)."""
    if text.lower() == "he":
        return "he"
    try:
        sigma = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'he' or a number, got {text!r}") from None
    if not sigma > 0:
        raise argparse.ArgumentTypeError(f"sigma must be positive, got {text!r}")
    return sigma


def init_name(init) -> str:
    return "He" if init == "he" else f"sigma {init:g}"


def accuracy_text(final: dict) -> str:
    parts = [f"{k} {100 * final[f'{k}_acc']:.2f}%" for k in ("train", "val", "test")
             if final.get(f"{k}_acc") is not None]
    return ", ".join(parts)


def summarize(runs, keys=("train_acc", "val_acc", "test_acc")) -> dict:
    """{key: (mean, std)} over runs' final numbers (mean_std: sample std, ddof=1; None for
    one run)."""
    out = {}
    for k in keys:
        vals = [r["final"][k] for r in runs if r["final"].get(k) is not None]
        if vals:
            out[k] = mean_std(vals)
    return out


def by_seed(runs, key="test_acc") -> dict:
    """{seed: final[key]} of runs, one run per seed (ValueError naming a seed run twice); runs
    without the number are left out."""
    out = {}
    for r in runs:
        seed = r["config"]["seed"]
        if seed in out:
            raise ValueError(f"by_seed: seed {seed} appears twice among the runs "
                             f"({r.get('label')!r}); one run per seed is expected")
        if r["final"].get(key) is not None:
            out[seed] = r["final"][key]
    return out


def run_plots(run: dict, out: Path, stem: str, title: str | None = None) -> list[Path]:
    """curves (cost / loss / accuracy) and, if recorded, the per-update learning rate."""
    from tensorgrad.plotting import plot_curves, plot_lr
    paths = []
    if run["history"]["steps"]:
        paths.append(plot_curves(run["history"], out / f"{stem}_curves.png", title=title))
    if run["history"]["lr"]:
        paths.append(plot_lr(run["history"], out / f"{stem}_lr.png", title=title))
    return paths


def save_plot(fig, path: Path) -> Path:
    """A study's own matplotlib Figure, laid out and written to path (a PNG)."""
    from tensorgrad.plotting import save_figure
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def mean_std(values) -> tuple[float, float | None]:
    """(mean, sample std with ddof=1) of numbers; the std is None for a single value (one run
    shows no spread). ValueError for no values."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("mean_std: no values")
    mean = float(np.mean(vals))
    return mean, (float(np.std(vals, ddof=1)) if len(vals) > 1 else None)


def paired_differences(a_by_seed: dict, b_by_seed: dict) -> dict:
    """{seed: a[seed] - b[seed]} of two arms run on the same seeds (ValueError naming the seeds
    that only one arm has: an unpaired difference has no per-seed error bar)."""
    if set(a_by_seed) != set(b_by_seed):
        raise ValueError(f"paired_delta: the two arms' seeds differ: "
                         f"{sorted(a_by_seed)} vs {sorted(b_by_seed)}; a paired difference "
                         f"needs the same seeds in both")
    if not a_by_seed:
        raise ValueError("paired_delta: no seeds")
    return {s: a_by_seed[s] - b_by_seed[s] for s in sorted(a_by_seed)}


def paired_delta(a_by_seed: dict, b_by_seed: dict) -> tuple[float, float | None]:
    """(mean, std ddof=1) of the per-seed differences a - b: the error bar of a difference
    between two arms run on the same seeds (what the seed changes in both cancels). The std is
    None with one seed."""
    return mean_std(paired_differences(a_by_seed, b_by_seed).values())


def pct(value, std=None, digits=1) -> str:
    """A fraction as a percentage ('53.2', '53.2 ± 0.4'); '—' for None."""
    if value is None:
        return "—"
    text = f"{100 * value:.{digits}f}"
    return text if std is None else f"{text} ± {100 * std:.{digits}f}"


def points(delta, std=None, digits=1) -> str:
    """A difference of fractions in signed percentage points ('+1.2', '-0.4 ± 0.3'); '—' for
    None."""
    if delta is None:
        return "—"
    text = f"{100 * delta:+.{digits}f}"
    return text if std is None else f"{text} ± {100 * std:.{digits}f}"


def sizes_text(data) -> str:
    """A split's training and validation sizes as a table says them: '45,000 train / 5,000 val'
    (Data, or the sizes dict a run records)."""
    sizes = data if isinstance(data, dict) else data.sizes()
    return f"{sizes['train']:,} train / {sizes['val'] or 0:,} val"


def seeds_text(seeds) -> str:
    """'seed 0' or 'seeds 0, 1, 2'."""
    seeds = sorted(seeds)
    return f"seed{'s' * (len(seeds) != 1)} {', '.join(map(str, seeds))}"


def markdown_table(headers, rows) -> str:
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


_SPLITS = ("train", "val", "test")


def result_row(label, ours=None, report=None, report_text=None, std=None, note=None,
               ours_text=None, compare=None, per_seed=None) -> dict:
    """One row for RESULTS.md: our numbers beside the report's.

    ours / report / std: {'train'|'val'|'test': fraction} (or other named numbers with
    ours_text). per_seed: {split: {seed: fraction}}, the runs behind a mean ± std; it is kept
    in the row (with `seeds`), and ours and std, when not given, are its mean and std (ddof=1).
    delta (percentage points, ours - report) is taken on `compare`, by default the last of
    train/val/test that both have; its error bar `delta_std` is our std there (the report is
    one number, so the per-seed differences from it spread as ours do); `delta_text` shows
    both ('+0.4 ± 0.3').
    """
    if per_seed:
        stats = {k: mean_std(v.values()) for k, v in per_seed.items() if v}
        ours = ours if ours is not None else {k: m for k, (m, _) in stats.items()}
        if std is None:
            std = {k: s for k, (_, s) in stats.items() if s is not None}
    if ours is None:
        raise ValueError(f"result_row {label!r}: give ours or per_seed")
    std = std or {}

    def text(values, with_std):
        return ", ".join(f"{k} {pct(values[k], std.get(k) if with_std else None)}"
                         for k in _SPLITS if values.get(k) is not None)
    if compare is None and report:
        common = [k for k in _SPLITS if ours.get(k) is not None and report.get(k) is not None]
        compare = common[-1] if common else None
    delta = (100 * (ours[compare] - report[compare])
             if compare and report and ours.get(compare) is not None
             and report.get(compare) is not None else None)
    delta_std = (100 * std[compare] if delta is not None and std.get(compare) is not None
                 else None)
    seeds = sorted({s for v in (per_seed or {}).values() for s in v}) or None
    return {"label": label, "ours": ours, "std": std or None, "report": report,
            "ours_text": ours_text or text(ours, True),
            "report_text": report_text or (text(report, False) if report else "—"),
            "compare": compare, "delta": delta, "delta_std": delta_std,
            "delta_text": (None if delta is None else points(delta / 100, None if delta_std
                                                             is None else delta_std / 100)),
            "seeds": seeds, "per_seed": per_seed or None, "note": note}


def seed_row(label, runs, report=None, keys=_SPLITS, **kwargs) -> dict:
    """result_row of runs of one setting over seeds: mean ± std (ddof=1) of each of `keys`
    (train / val / test), the per-seed values kept in the row."""
    per_seed = {k: by_seed(runs, f"{k}_acc") for k in keys}
    return result_row(label, report=report, per_seed={k: v for k, v in per_seed.items() if v},
                      **kwargs)


def delta_row(label, a_by_seed: dict, b_by_seed: dict, report_delta=None, metric="test",
              report_text=None, note=None) -> dict:
    """A row of the paired difference a - b of two arms (fractions by seed, the same seeds):
    ours is the mean ± std (ddof=1) of the per-seed differences (kept as per_seed, in
    fractions), beside the report's difference of the same two arms if it has one; delta is
    ours - report in points, with our std as its error bar."""
    diffs = paired_differences(a_by_seed, b_by_seed)
    mean, std = mean_std(diffs.values())
    report = None if report_delta is None else {metric: report_delta}
    return result_row(label, {metric: mean}, report, std=None if std is None else {metric: std},
                      ours_text=f"{metric} {points(mean, std)} points ({seeds_text(diffs)})",
                      report_text=report_text or (f"{metric} {points(report_delta)} points"
                                                  if report else "—"),
                      compare=metric, per_seed={metric: diffs}, note=note)


def plot_deltas(entries, path: Path, title: str, xlabel: str = "difference (points)") -> Path:
    """Horizontal bars of differences with error bars: entries are (name, mean, std) in
    fractions (std None: no bar), drawn in points, the first at the top."""
    from matplotlib.figure import Figure
    entries = list(entries)
    if not entries:
        raise ValueError("plot_deltas: no differences to plot")
    names = [e[0] for e in entries]
    means = [100 * e[1] for e in entries]
    errors = [0.0 if e[2] is None else 100 * e[2] for e in entries]
    fig = Figure(figsize=(7, 0.45 * len(entries) + 1.6))
    ax = fig.subplots()
    y = list(range(len(entries)))[::-1]
    ax.barh(y, means, xerr=errors, capsize=4,
            color=["tab:green" if m > 0 else "tab:red" for m in means])
    ax.set_yticks(y, names, fontsize="small")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(xlabel + "; bars: ± std of the per-seed differences")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    return save_plot(fig, path)


# ---------------------------------------------------------------------------------------------
# Study bookkeeping and outputs
# ---------------------------------------------------------------------------------------------

@dataclass
class Study:
    name: str
    sid: str
    title: str
    args: argparse.Namespace
    command: str
    out: Path
    started: str
    t0: float = field(default_factory=time.perf_counter)
    state: object = None   # the RunState of its runs (experiments/runstate.py), if resumable
    code: dict | None = None  # code_trees() when it started
    finished: bool = False


def command_line(name: str, argv, data_flag) -> str:
    """The shell command that reproduces this run (with $TENSORGRAD_DATA if it chose the data).
    It holds the real paths, so that it can be run again here; `public_command` is the one to
    show outside this machine."""
    cmd = f"python -m experiments.{name}"
    if argv:
        cmd += " " + shlex.join(argv)
    if data_flag is None and os.environ.get(ENV_VAR):
        cmd = f"{ENV_VAR}={shlex.quote(os.environ[ENV_VAR])} {cmd}"
    return cmd


def _public_path(flag: str, value: str, repo: Path) -> str:
    """A path argument as published: relative to the repository when inside it, else a
    placeholder named after its flag (<data>, <out>, ...); a URL becomes <storage>."""
    if "://" in value:
        return "<storage>"
    if not (value.startswith(("/", "~")) or os.path.isabs(value)):
        return value
    path = Path(os.path.expanduser(value))
    with_repo = os.path.abspath(path)
    if flag not in ("--data", ENV_VAR) and (with_repo == os.fspath(repo)
                                            or with_repo.startswith(os.fspath(repo) + os.sep)):
        return os.path.relpath(with_repo, repo)
    return f"<{flag.lstrip('-').lower().replace('tensorgrad_', '')}>"


def public_command(command: str, repo: Path = REPO) -> str:
    """A recorded command as RESULTS.md and table.md show it: no private path (no home folder,
    no /work/...): `TENSORGRAD_DATA=<data>`, `--data <data>`, other absolute paths relative to
    the repository or as <flag>, URLs as <storage>."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        return command
    out, flag = [], ""
    for token in tokens:
        if token.startswith(f"{ENV_VAR}="):
            out.append(f"{ENV_VAR}=<data>")
        elif token.startswith("--") and "=" in token:
            name, value = token.split("=", 1)
            out.append(f"{name}={_public_path(name, value, repo)}")
        elif token.startswith("-") and not token.lstrip("-")[:1].isdigit():
            out.append(token)
        else:
            out.append(_public_path(flag, token, repo))
        flag = token if token.startswith("--") else flag
    return " ".join(t if "<" in t else shlex.quote(t) for t in out)  # placeholders unquoted


def start(name: str, sid: str, title: str, args, argv, resumable: bool | None = None) -> Study:
    """Begin a study: output folder, exact command line, start time; prints a header. A
    resumable study (default: one whose parser has --restart) opens its run state in
    <out>/state/ (experiments/runstate.py), resumed or fresh."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = output_dir(args, name)
    out.mkdir(parents=True, exist_ok=True)
    study = Study(name, sid, title, args, command_line(name, argv, args.data), out,
                  datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    study.code = code_trees()
    print(f"{sid} {title}\n  command: {study.command}\n  output:  {out}", flush=True)
    if resumable if resumable is not None else hasattr(args, "restart"):
        study.state = RunState.open(out / "state", vars(args), study.command, args.restart)
        if study.state.resumed:
            print(f"  resuming from the run state in {study.state.folder} (--restart starts "
                  f"over)", flush=True)
    _started.append(study)
    return study


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows of the processor."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name") and ":" in line:
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def blas_threads() -> str:
    """BLAS threads numpy's library uses (threadpoolctl if installed; else the limit set in
    OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, else its default: one per core)."""
    try:
        from threadpoolctl import threadpool_info
        pools = [f"{p.get('internal_api', 'blas')} {p['num_threads']}" for p in threadpool_info()
                 if p.get("user_api") == "blas"]
        if pools:
            return ", ".join(pools)
    except Exception:  # noqa: BLE001 - any failure: fall back on the environment
        pass
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name):
            return f"{os.environ[name]} ({name})"
    return f"default (one per core: {os.cpu_count()})"


def versions() -> dict:
    """The software and machine a study ran on, as RESULTS.md reports them."""
    import matplotlib
    return {"python": platform.python_version(), "numpy": np.__version__,
            "matplotlib": matplotlib.__version__, "tensorgrad": tensorgrad.__version__,
            "platform": platform.platform(), "cpus": os.cpu_count(), "cpu": cpu_model(),
            "blas_threads": blas_threads()}


CODE_TREES = ("tensorgrad", "models", "experiments/*.py")  # what a result's code is named by


def _git(repo: Path, *args) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def code_trees(repo: Path = REPO) -> dict | None:
    """The code a result comes from: HEAD's commit, the git tree hashes of tensorgrad/ and
    models/ and a hash of experiments/*.py (their blob hashes), and the tracked files among
    them with uncommitted changes (`dirty`). None when git cannot tell (no repository)."""
    commit = _git(repo, "rev-parse", "HEAD")
    listing = _git(repo, "ls-tree", "HEAD", "experiments/")
    if not commit or listing is None:
        return None
    trees = {name: _git(repo, "rev-parse", f"HEAD:{name}") for name in CODE_TREES[:2]}
    blobs = sorted(line for line in listing.splitlines() if line.endswith(".py"))
    trees["experiments/*.py"] = hashlib.sha1("\n".join(blobs).encode()).hexdigest()
    status = _git(repo, "status", "--porcelain", "--untracked-files=no", "--", "tensorgrad",
                  "models", ":(glob)experiments/*.py")
    dirty = None if status is None else [line[3:] for line in status.splitlines()]
    return {"commit": commit, "trees": trees, "dirty": dirty}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return os.fspath(obj)
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _stored_run(run: dict) -> dict:
    """A run as stored in results.json: the per-update lr list becomes a short summary."""
    history = dict(run["history"])
    lr = history.pop("lr")
    history["lr_summary"] = ({"updates": len(lr), "first": lr[0], "min": min(lr), "max": max(lr)}
                             if lr else None)
    return {**run, "history": history}


def _code_of(study: Study) -> dict | None:
    """The study's code_trees() from its start; if the code changed while it ran, that is
    recorded among its `dirty` entries (reproduce --publish then refuses it)."""
    now = code_trees()
    if study.code is None or now is None:
        return study.code or now
    if now["trees"] != study.code["trees"] or now["commit"] != study.code["commit"]:
        return dict(study.code, dirty=[*(study.code["dirty"] or []),
                                       f"(the code changed while it ran: commit {now['commit']} "
                                       f"at the end)"])
    return study.code


def finish(study: Study, table: str, rows, runs=(), plots=(), data: Data | None = None,
           extra: dict | None = None, summary: str | None = None) -> dict:
    """Write results.json and table.md, print the table, the output paths and `summary` (the
    headline numbers, printed last); return the results dict. A resumed study's wall time
    includes its earlier invocations'; its run state stays (the same command then rewrites
    these outputs from the kept runs)."""
    wall = (time.perf_counter() - study.t0 if study.state is None
            else study.state.elapsed())
    results = {
        "study": study.sid, "name": study.name, "title": study.title,
        "command": study.command,
        "config": {k: v for k, v in vars(study.args).items()},
        "seed": study.args.seed, "quick": bool(study.args.quick),
        "data": None if data is None else {"folder": data.folder, "split": data.split,
                                           "sizes": data.sizes()},
        "versions": versions(), "code": _code_of(study), "started": study.started,
        "wall_time_s": wall,
        "rows": list(rows), "runs": [_stored_run(r) for r in runs],
        "plots": [os.path.relpath(p, study.out) for p in plots], "table": "table.md",
        **(extra or {}),
    }
    write_text(study.out / "results.json", json.dumps(_jsonable(results), indent=1) + "\n")
    quick = " (--quick: tiny data, not comparable)" if study.args.quick else ""
    header = (f"# {study.sid}. {study.title}\n\n`{public_command(study.command)}`  \n"
              f"wall time {wall:.0f} s{quick}\n\n")
    write_text(study.out / "table.md", header + table.rstrip() + "\n")
    print("\n" + table.rstrip() + "\n")
    print(f"wall time {wall:.0f} s")
    print(f"results: {study.out / 'results.json'}\ntable:   {study.out / 'table.md'}")
    for p in plots:
        print(f"plot:    {p}")
    if summary:
        print(summary.rstrip())
    study.finished = True
    return results
