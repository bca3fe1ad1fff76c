"""Run every study (S1-S7 and the best MLP) from one commit and write RESULTS.md: ours beside
the reports'.

    python -m experiments.reproduce --estimate             # time estimate of a full run, from
                                                           # --quick runs of every part
    python -m experiments.reproduce --only S2 k_layer_bn   # some parts (ids or folders)
    python -m experiments.reproduce                        # every part; run it again to resume
    python -m experiments.reproduce --reuse --publish      # publish the finished parts

Each part (a row of STUDIES) runs in this process through its study's main(), writing into
<out-root>/<folder>/ (default runs/, untracked; runs/quick/ with --quick), and RESULTS.md goes
beside them. Running the same command again resumes: every study keeps its finished runs and
the run in flight in its run state (a search, its journal), so only what is missing trains;
--reuse reads a finished part's results.json without calling the study at all.

Before a full run starts it prints a time estimate of the parts it will run, from their
--quick timings (<out-root>/quick/<folder>/results.json); --estimate makes the missing ones
(each part with --quick) and prints the estimate only.

Only --publish touches the repository: on a tree without uncommitted changes, and only when
every part it would list ran from HEAD's code (the tree hashes of tensorgrad/ and models/ and a
hash of experiments/*.py, recorded in each results.json), it copies each part's evidence
(results.json, table.md, plots; never a journal, lock or run-state file) into the tracked
experiments/results/ and rewrites experiments/RESULTS.md from everything published there.
The reasons for gaps are data (gap_notes.json): written after the runs, they change no part's
code hash.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from tensorgrad.atomic import write_bytes, write_text

from . import common, interrupts

SIDE_BY_SIDE = ["--workers", "2", "--threads", "1"]  # faster here: experiments/parallel.py --speed
# (results folder, module, id, extra flags of the full reproduction): one resumable part each.
# A new part, or a study's new flag, is one more row or one more flag here.
STUDIES = [
    ("gradcheck_table", "gradcheck_table", "S1", []),
    ("two_layer_cyclic", "two_layer_cyclic", "S2", []),
    ("lambda_search", "lambda_search", "S3", []),
    ("k_layer_bn", "k_layer_bn", "S4", ["--r4"]),
    ("init_sensitivity", "init_sensitivity", "S5", []),
    ("improvements", "improvements", "S6", SIDE_BY_SIDE),
    ("architectures", "architectures", "S6", ["--parts", "r3", "wide", *SIDE_BY_SIDE]),
    ("architectures_r0", "architectures", "S6", ["--parts", "r0_s4", "r0_recipe",
                                                  *SIDE_BY_SIDE]),
    ("final_r0", "final_r0", "S6", []),
    ("search_r0_tpe", "search", "S6", ["--space", "r0_tpe", "--workers", "2"]),
    ("search_r4_grid", "search", "S7", ["--space", "r4_grid", "--workers", "2"]),
    ("best_mlp", "best_mlp", "S6+", ["--workers", "1"]),
]
THRESHOLD = 1.5  # percentage points: a larger gap from the report needs a reason backed by a run
# parts that train nothing (gradient checks): not dry-run for the estimate, which would run
# them whole; their last full run's wall time stands for theirs (else their quick one's)
UNTRAINED = {"gradcheck_table"}

DATA_CAVEAT = (
    "This CIFAR-10 copy is decoded from quality-75 JPEGs (`tensorgrad.data.build_cifar10`), so "
    "every image differs slightly from the official pixels, and its training images are in "
    "another order than the official batches: data_batch_1 (split a's training images) and the "
    "last 5,000 training images (split b's validation images) are other images than the "
    "reports'. The test batch holds the official test images (decoded from JPEG too).")


# ---------------------------------------------------------------------------------------------
# Reasons for gaps: notes backed by runs
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Note:
    """A row's reason for its gap, backed by runs: `backing` names the rows that show it, as
    (results folder, regular expression matched at the start of a row label), each of which
    must exist in the results RESULTS.md is written from. `text` holds no number of its own:
    the backing rows' numbers are formatted in when RESULTS.md is written ({0}: the first
    backing row's numbers as its table shows them; {0.test}, {0.val}, {0.train}: one accuracy
    in %, with its ± std when the row has one)."""
    text: str
    backing: tuple = ()


NOTES_FILE = Path(__file__).with_name("gap_notes.json")


def load_notes(path: Path = NOTES_FILE) -> dict:
    """(results folder, regular expression matched at the start of a row label; the first match
    wins) -> Note, from gap_notes.json. A row more than THRESHOLD points from its report without
    a note, or whose note's backing rows are missing, is marked unexplained in RESULTS.md. The
    notes are data, not code: written after the runs they explain, they change no part's code
    hash."""
    return {(n["folder"], n["label"]): Note(n["text"], tuple(map(tuple, n["backing"])))
            for n in json.loads(path.read_text())}


NOTES = load_notes()


class Cited:
    """A backing row as a note formats it in: {0} its numbers as shown, {0.test} one of them."""

    def __init__(self, row: dict):
        self.row = row

    def __format__(self, spec: str) -> str:
        return self.row["ours_text"]

    def __getattr__(self, name: str) -> str:
        ours, std = self.row.get("ours") or {}, self.row.get("std") or {}
        if name in ("train", "val", "test") and ours.get(name) is not None:
            return common.pct(ours[name], std.get(name), digits=2)
        raise AttributeError(f"row {self.row['label']!r} has no {name} number")


def find_row(all_results: dict, folder: str, pattern: str) -> dict | None:
    """The first row of folder's results whose label matches pattern at its start."""
    results = all_results.get(folder)
    if not results or "error" in results:
        return None
    return next((r for r in results.get("rows", []) if re.match(pattern, r["label"])), None)


def flagged(row: dict) -> bool:
    """More than THRESHOLD points from its report, or a gradient check above its target."""
    return ((row.get("delta") is not None and abs(row["delta"]) > THRESHOLD)
            or (row.get("ours") or {}).get("ok") is False)


def explain(folder: str, row: dict, all_results: dict, quick: bool = False):
    """(gap status, reason or None) of one row: status 'within 1.5', 'explained' or
    'unexplained' ('—' without a report number; tiny --quick data: no status, no notes). A
    note counts only when every row it names is there; otherwise the row is unexplained and
    the missing backing is printed."""
    if quick:
        return "—", None
    key = next((k for k in NOTES if k[0] == folder and re.match(k[1], row["label"])), None)
    reason, missing = None, None
    if key is not None:
        note = NOTES[key]
        cited = [find_row(all_results, f, p) for f, p in note.backing]
        absent = [f"{f} / {p}" for (f, p), r in zip(note.backing, cited) if r is None]
        if absent:
            missing = f"note's backing run missing: {'; '.join(absent)}"
        elif not note.backing:
            missing = "the note names no backing run"
        else:
            try:
                reason = note.text.format(*map(Cited, cited))
            except (AttributeError, IndexError, KeyError) as exc:
                missing = f"note's backing run lacks a number: {exc}"
        if missing:
            print(f"warning: {folder} / {row['label']}: {missing}", file=sys.stderr, flush=True)
    if not flagged(row):
        if row.get("delta") is not None:
            return f"within {THRESHOLD:g}", reason
        return ("within target" if (row.get("ours") or {}).get("ok") else "—"), reason
    if reason:
        return "explained", reason
    return "unexplained", f"unexplained ({missing})" if missing else "unexplained"


# ---------------------------------------------------------------------------------------------
# Wall times
# ---------------------------------------------------------------------------------------------

def _time(text):
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def trial_seconds(trials) -> float:
    """Seconds during which at least one of a search's trials ran (the union of their start to
    end intervals, over every invocation that worked on the search)."""
    spans = sorted((a, b) for t in trials
                   for a, b in [(_time(t.get("started")), _time(t.get("finished")))]
                   if a is not None and b is not None and b >= a)
    total, end = 0.0, -math.inf
    for a, b in spans:
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def wall_seconds(results: dict) -> float:
    """A part's whole wall time. A study's results.json has it (a resumed study counts its
    earlier invocations); a search's counts only its last invocation, so its trials' time,
    from their own start and end times, replaces the search time of that invocation."""
    wall = float(results.get("wall_time_s") or 0.0)
    search = results.get("search")
    if search:
        here = float(search.get("wall_time_s") or 0.0)
        trials = trial_seconds(results.get("trials") or []) or float(search.get("span_s") or 0)
        wall += max(here, trials) - here
    return wall


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.2f} h"


# ---------------------------------------------------------------------------------------------
# Time estimate: quick timings scaled by the parts' updates
# ---------------------------------------------------------------------------------------------

ESTIMATE_HOW = (
    "an estimate, not a measurement: each part's --quick run time is split into training (its "
    "runs' and trials' own times, over its workers) and the rest (start, data, evaluation, "
    "plots); the training part's updates are scaled by the ratio of the full run's updates to "
    "the quick run's, its measurements by the ratio of the images they evaluate (both counted "
    "from the part's Specs, built by its study without training; a search's trials are timed "
    "whole and all counted in full, pruned or not), the rest is counted once; loading the full "
    "data set is not in it")


def _split_sizes(split: str, n_val: int) -> dict:
    """A full split's sizes, as a run records them (Data.sizes): split a trains on
    data_batch_1 and validates on data_batch_2, b keeps the last n_val for validation, c has
    none."""
    n_train, n_v = {"a": (10000, 10000), "b": (50000 - n_val, n_val), "c": (50000, None)}[split]
    return {"train": n_train, "val": n_v, "test": 10000}


def _n_train(s) -> int:
    """Training images of a Spec's split in a full run."""
    return _split_sizes(s.split, s.n_val)["train"]


def _dry_data(args, split: str = "b", n_val: int = 5000, val_choice: str = "last"):
    """common.Data with the full split's sizes and no pixels (no image is read)."""
    sizes = _split_sizes(split, n_val)

    def part(n):
        return None if n is None else (np.zeros((n, 0), np.float32), np.zeros(n, np.int64))
    return common.Data(train=part(sizes["train"]), val=part(sizes["val"]),
                       test=part(sizes["test"]), folder="(dry run)", split=split)


def _dry_run_result(s, n_train: int, test: bool = True) -> dict:
    """What spec.run returns, for a run that is counted and not trained (every accuracy 0.1)."""
    updates = s.updates(n_train)
    per_epoch = s.per_epoch(n_train)
    epochs = math.ceil(updates / per_epoch)
    parts = ("train", "val", "test") if test else ("train", "val")  # spec.run(test=False)
    metrics = {f"{p}_{m}": [0.1] for p in parts for m in ("acc", "loss", "cost")}
    return {"label": s.label, "config": {**dataclasses.asdict(s), "dims": s.dims()},
            "data": {"folder": "(dry run)", "split": s.split,
                     "sizes": _split_sizes(s.split, s.n_val)}, "updates": updates,
            "epochs": epochs, "updates_done": updates, "epochs_done": epochs,
            "final": {k: v[-1] for k, v in metrics.items()},
            "history": {"lr": [s.eta or s.eta_max], "steps": [updates], "epochs": [epochs],
                        "metrics": metrics, "stopped_early": False, "wall_time": [0.0]},
            "diverged": False, "train_time": 0.0, "eval_time": 0.0, "wall_time": 0.0,
            "cpu_time": 0.0, "parameters": 0, "resumed_from": None,
            "worker": {"pid": os.getpid(), "blas_threads": None, "data_load_time": 0.0},
            "stopped_by_time_limit": False, "schedule_resized": [], "schedule_epochs": s.epochs,
            "within_limit": True}


@contextlib.contextmanager
def _replaced(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _measured_images(s) -> int:
    """Images a full run of s evaluates in its measurements (fit's): the training images it
    measures and the validation (or, with test_curve, test) images, at every measurement."""
    from tensorgrad.train import default_measure_every

    from . import spec
    sizes = _split_sizes(s.split, s.n_val)
    n_train = sizes["train"]
    per_epoch = s.per_epoch(n_train)
    updates = s.updates(n_train)
    every = s.measure_every or default_measure_every(
        spec.build_training(s, per_epoch)[2], per_epoch)
    measurements = -(-updates // every)  # at every `every` updates and at the last
    train_eval = n_train if s.eval_train is None else min(s.eval_train, n_train)
    other = sizes["test"] if s.test_curve else (sizes["val"] or 0)
    return measurements * (train_eval + other)


def count_updates(module: str, argv: list) -> dict:
    """{'runs', 'updates', 'measured_images', 'complete'} of a full invocation
    `python -m experiments.<module>
    argv`, counted without training: the study is run with spec.run_all and spec.run (and a
    search's run_search) replaced by ones that only count the Specs they are given and return
    placeholder results, data of the full sizes without images, and no plot written.
    'complete' is False when the study stopped before its end (its later runs not counted)."""
    from tensorgrad import plotting
    from tensorgrad.search import Refine, fine_space, grid_size

    from . import search, spec
    counted = {"runs": 0, "updates": 0, "measured_images": 0, "complete": False}

    def add(s, count=1, measured=True):
        counted["runs"] += count
        counted["updates"] += count * s.updates(_n_train(s))
        if measured:  # (a search's trials are timed whole)
            counted["measured_images"] += count * _measured_images(s)

    def run_all(specs, args, *a, test=True, **k):
        specs = list(specs)
        for s in specs:
            add(s)
        return [_dry_run_result(s, _n_train(s), test) for s in specs]

    def run(s, data, *a, test=True, **k):
        add(s)
        return _dry_run_result(s, len(data.train[1]), test)

    def run_search(objective, space, *, trials=None, refine=None, objective_kwargs=None,
                   study_name="search", **k):
        fixed = (objective_kwargs or {}).get("fixed", {})
        params = {name: search._probes(p)[0] for name, p in space.items()}
        records = []
        stages = [(space, trials)]
        if isinstance(refine, Refine):
            stages.append((fine_space(space, params, refine), refine.trials))
        for stage, (current, n) in enumerate(stages):
            n = grid_size(current) if n is None else n
            probes = {name: search._probes(p) for name, p in current.items()}
            points = [{k: v[i % len(v)] for k, v in probes.items()} for i in range(n)]
            add(search.options(fixed, points[0]), n, measured=False)
            records += [{"study": study_name, "stage": stage, "number": i, "state": "COMPLETE",
                         "value": 0.1, "params": points[i], "duration_s": 0.0, "started": None,
                         "finished": None, "reason": None, "retry_of": None, "retried_as": None,
                         "worker": None, "last_step": None, "last_reported": 0.1,
                         "user_attrs": {}} for i in range(n)]
        return SimpleNamespace(records=records, best=records[0] if records else None,
                               stages=[], wall_time=0.0)

    def finish(*a, **k):
        counted["complete"] = True
        return {}

    started = len(common._started)
    with contextlib.ExitStack() as stack:
        for obj, name, value in [(spec, "run_all", run_all), (spec, "run", run),
                                 (search, "run_search", run_search),
                                 (common, "load_data", _dry_data), (common, "finish", finish),
                                 (plotting, "save_figure", lambda fig, path: Path(path))]:
            stack.enter_context(_replaced(obj, name, value))
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        try:
            importlib.import_module(f"experiments.{module}").main(list(argv))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - counted so far; said so
            counted["stopped"] = f"{type(exc).__name__}: {exc}"
        finally:
            del common._started[started:]
    return counted


def quick_timing(results: dict) -> dict:
    """A quick run's seconds and counts: {'wall', 'train' (its training share of the wall
    time, measurements included), 'measure' (the measurements' share), 'updates',
    'measured_images', 'started'}; a search's trials count whole as training."""
    runs = [r for r in results.get("runs") or [] if r]
    updates = sum(r.get("updates_done") or r.get("updates") or 0 for r in runs)
    train = sum(r.get("train_time") or 0.0 for r in runs)
    measure = sum(r.get("measure_time") or 0.0 for r in runs)
    images = sum(r.get("measured_images") or 0 for r in runs)
    for t in results.get("trials") or []:
        updates += (t.get("user_attrs") or {}).get("updates") or t.get("last_step") or 0
        train += t.get("duration_s") or 0.0
    workers = max(1, int((results.get("config") or {}).get("workers") or 1))
    wall = wall_seconds(results)
    train = min(wall, train / workers)
    return {"wall": wall, "train": train, "measure": min(train, measure / workers),
            "updates": updates, "measured_images": images, "started": results.get("started")}


def estimate_seconds(quick: dict, full_updates: int, full_images: int = 0) -> float:
    """The rest of the quick run once, plus its updates' time scaled by the updates and its
    measurements' time by the images they evaluate."""
    if not quick["updates"]:
        return quick["wall"]
    measure = quick.get("measure", 0.0) if quick.get("measured_images") else 0.0
    updates = quick["train"] - measure
    return (quick["wall"] - quick["train"] + updates * full_updates / quick["updates"]
            + (measure * full_images / quick["measured_images"] if measure else 0.0))


def last_full_run(name: str, root: Path) -> dict | None:
    """The part's last full results: under root, else the published ones (None if neither)."""
    return next((r for r in (read_results(d / name / "results.json", False)
                             for d in (root, common.RESULTS_ROOT)) if r), None)


def full_argv(extra, args, out: Path) -> list:
    """A part's full (not --quick) flags as reproduce runs it, writing into `out`."""
    return study_argv(extra, argparse.Namespace(**{**vars(args), "quick": False,
                                                   "restart": False, "progress": False}),
                      out, default_root=False)


def print_estimate(parts, args, quick_root: Path, run_missing: bool) -> float | None:
    """Print the time estimate of the full run of `parts` (results folders) and return its
    total in seconds (None when no part has a quick timing). run_missing: run the parts that
    have no quick timing with --quick first (into quick_root); else say how to get one."""
    lines, total, missing = [], 0.0, []
    with tempfile.TemporaryDirectory(prefix="reproduce-estimate-") as tmp:
        for name, module, sid, extra in STUDIES:
            if name not in parts:
                continue
            quick = read_results(quick_root / name / "results.json", True)
            if quick is None and run_missing:
                quick_args = argparse.Namespace(**{**vars(args), "quick": True})
                result = run_part(name, module, extra, quick_args, quick_root / name,
                                  default_root=False)
                quick = None if "error" in result else result
            if quick is None:
                missing.append((name, sid))
                failed = (f" (its quick run failed: {result['error']})"
                          if run_missing else "")
                lines.append(f"  {sid} {name}: no quick timing in {quick_root / name}{failed}")
                continue
            timing = quick_timing(quick)
            full = last_full_run(name, quick_root.parent)
            if name in UNTRAINED:
                seconds = timing["wall"] if full is None else wall_seconds(full)
                total += seconds
                lines.append(f"  {sid} {name}: no training; "
                             + (f"its quick run's {seconds:.1f} s (no full run to read)"
                                if full is None else
                                f"its last full run's time ({full.get('started')})")
                             + f" -> about {minutes(seconds)}")
                continue
            count = count_updates(module, full_argv(extra, args, Path(tmp) / name))
            seconds = estimate_seconds(timing, count["updates"], count["measured_images"])
            total += seconds
            partial = ("" if count["complete"] else
                       f" (at least: counting stopped at {count.get('stopped', 'its end')})")
            scaled = ("" if count["updates"] and timing["updates"] else
                      " (no training to scale: the quick time as it is)")
            before = ("" if full is None else
                      f" (its last full run, {len(full.get('runs') or [])} runs of "
                      f"{(full.get('code') or {}).get('commit', 'older code')[:12]}, took "
                      f"{minutes(wall_seconds(full))})")
            lines.append(f"  {sid} {name}: {count['runs']} runs, {count['updates']:,} updates"
                         f"{partial}; quick run of {timing['started']}: "
                         f"{timing['wall']:.1f} s, {timing['updates']:,} updates{scaled} -> "
                         f"about {minutes(seconds)}{before}")
    print(f"Time estimate of the full run ({ESTIMATE_HOW}):", *lines, sep="\n", flush=True)
    if missing:
        ids = " ".join(name for name, _ in missing)
        print(f"  no estimate for {', '.join(sid for _, sid in missing)}: `python -m "
              f"experiments.reproduce --estimate --only {ids}` runs them with --quick first "
              f"(seconds to a minute each)", flush=True)
    if len(missing) == len(lines):
        return None
    print(f"  total: about {minutes(total)}"
          + (" (parts without a quick timing not counted)" if missing else ""), flush=True)
    return total


# ---------------------------------------------------------------------------------------------
# Command line and running the parts
# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.reproduce",
                                description=__doc__.split("\n")[0] + " "
                                + __doc__.split("\n")[1],
                                formatter_class=common.HelpFormatter)
    p.add_argument("--data", default=None, help="CIFAR-10 folder, passed to every study")
    p.add_argument("--quick", action="store_true",
                   help="tiny runs (tests), into runs/quick/ unless --out-root is given")
    p.add_argument("--out-root", default=None,
                   help="folder of the studies' outputs and RESULTS.md; default runs/ "
                        "(runs/quick/ with --quick), untracked; quick timings for the estimate "
                        "are read from <out-root>/quick/")
    p.add_argument("--reuse", action="store_true",
                   help="read a part's existing results.json instead of calling its study "
                        "(without it a finished part is called again and resumes: nothing "
                        "trains again, its outputs are rewritten)")
    p.add_argument("--only", nargs="+", default=None, metavar="PART",
                   help="run only these parts: study ids (S1-S7, S6+) or results folders "
                        f"({', '.join(f for f, _, _, _ in STUDIES)}); RESULTS.md still lists "
                        "the others' existing results")
    p.add_argument("--estimate", action="store_true",
                   help="only print the time estimate of the chosen parts' full run, running "
                        "each part that has no quick timing with --quick first")
    p.add_argument("--publish", action="store_true",
                   help="then copy every full part's evidence (and the benchmark's, from "
                        "<out-root>/benchmark) into the tracked experiments/results/ and rewrite "
                        "experiments/RESULTS.md; refused with --quick, while tracked files "
                        "have uncommitted changes, and when a part it would list ran from "
                        "other code than HEAD's")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bars during training")
    p.add_argument("--restart", action="store_true",
                   help="start every study it runs over, removing its run state (by default "
                        "the same command continues where it stopped: finished runs are "
                        "kept, the run in flight resumes from its checkpoint)")
    return p


def selected(only):
    """The results folders of the parts named by --only (ids, folders or modules)."""
    if not only:
        return {folder for folder, _, _, _ in STUDIES}
    chosen = set()
    for o in only:
        found = {folder for folder, module, sid, _ in STUDIES
                 if o.lower() in (folder.lower(), module.lower(), sid.lower())}
        if not found:
            raise ValueError(f"argument --only: unknown part {o!r}; choose from "
                             f"{[f for f, _, _, _ in STUDIES]} or S1-S7, S6+")
        chosen |= found
    return chosen


def read_results(path: Path, quick: bool):
    """A study's results.json if it exists and is of the wanted kind (quick or full), else None."""
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    return results if bool(results.get("quick")) == quick else None


def study_argv(extra, args, out: Path, default_root: bool, own_folder: bool = True) -> list:
    """The study's flags: its own extra ones plus those reproduce was given (--out whenever the
    results folder is not the study's default one)."""
    argv = list(extra)
    if args.data is not None:
        argv += ["--data", args.data]
    if args.quick:
        argv.append("--quick")
    if not default_root or not own_folder:
        argv += ["--out", os.fspath(out)]
    if not args.progress:
        argv.append("--no-progress")
    if args.restart:
        argv.append("--restart")
    return argv


_progress = {}  # main's command, output root, study running and studies finished, for the message


def run_part(name, module, extra, args, out: Path, default_root: bool) -> dict:
    """Run one part through its study's main() (resuming from its run state); its results, or
    {'command', 'error'} when it failed (one failing part must not lose the others')."""
    study = study_argv(extra, args, out, default_root, own_folder=name == module)
    print(f"\n===== python -m experiments.{module} {shlex.join(study)}", flush=True)
    _progress["running"] = name
    try:  # an interruption leaves "running" set: the message names the part in flight
        results = importlib.import_module(f"experiments.{module}").main(study)
        _progress.setdefault("done", []).append(name)
        outcome = dict(results, _dir=os.fspath(out))
    except common.ResumeRefused:  # another command's state: the user must choose
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in RESULTS.md
        traceback.print_exc()
        outcome = {"command": common.command_line(module, study, args.data),
                   "error": f"{type(exc).__name__}: {exc}"}
    _progress["running"] = None
    return outcome


def interrupted_message(exc) -> str:
    """What a stopped reproduction kept, and the command that goes on without redoing it."""
    how = interrupts.signal_name(exc)
    if "command" not in _progress:
        return f"interrupted ({how}) before any study began; nothing was written."
    done = ", ".join(_progress["done"]) or "none"
    running = _progress.get("running")
    where = f" during {running}" if running else ""
    flight = f", {running} resumes its run in flight" if running else ""
    command = common.resume_command(_progress["command"])
    return (f"interrupted ({how}){where}; RESULTS.md was not written. Every study keeps its "
            f"run state under {_progress['root']}/<study>/state (finished studies this run: "
            f"{done}); the same command resumes: `{command}` (finished runs are not run "
            f"again{flight}; --reuse also skips whole finished studies).")


# ---------------------------------------------------------------------------------------------
# RESULTS.md
# ---------------------------------------------------------------------------------------------

def fmt_delta(row):
    d = row.get("delta")
    if d is None:
        return "—"
    mark = " (!)" if abs(d) > THRESHOLD else ""
    on = row.get("compare")
    text = row.get("delta_text") or f"{d:+.1f}"  # with its error bar when the row has seeds
    return f"{text}{mark}" + (f" ({on})" if on not in (None, "test") else "")


def section(sid, name, results, where: Path, all_results: dict):
    """The RESULTS.md section of one part."""
    if results is None:
        return f"## {sid}. {name}\n\nNot run (no results.json found).\n"
    if "error" in results:
        return (f"## {sid}. {name}\n\n**Failed**: `{common.public_command(results['command'])}`"
                f"\n\n```\n{results['error']}\n```\n")
    quick = bool(results.get("quick"))
    table = os.path.relpath(Path(results["_dir"]) / "table.md", where)
    wall, trials = wall_seconds(results), ""
    if results.get("search"):
        searched = wall - results["wall_time_s"] + (results["search"].get("wall_time_s") or 0)
        trials = (f", its search's trials included ({minutes(searched)} by their own start "
                  f"and end times, over every invocation)")
    code = results.get("code") or {}
    lines = [f"## {results['study']}. {results['title']} ({name})", "",
             f"Command: `{common.public_command(results['command'])}`  ",
             f"Ran from: commit {code.get('commit', 'unknown')}; wall time {minutes(wall)}"
             f"{trials}. Full tables and plots: [{table}]({table})", ""]
    rows, explained = results["rows"], []
    cells = []
    for r in rows:
        status, reason = explain(name, r, all_results, quick)
        cells.append([r["label"], r["ours_text"], r["report_text"], fmt_delta(r), status])
        parts = [t for t in (r.get("note"), reason) if t]
        if parts:
            explained.append((r["label"], "; ".join(parts)))
    lines.append(common.markdown_table(["row", "ours", "report", "Δ points", "gap"], cells))
    notes = {}  # note text -> labels of the rows it explains (one line for shared notes)
    for label, text in explained:
        notes.setdefault(text, []).append(label)
    if notes:
        lines += ["", "Notes:", *(f"- {'; '.join(labels)}: {text}."
                                  for text, labels in notes.items())]
    return "\n".join(lines) + "\n"


def _wall_by_id(all_results):
    """Wall seconds summed per study id (S1 ... S7, S6+), in the order of STUDIES."""
    seconds = {}
    for folder, _, sid, _ in STUDIES:
        r = all_results.get(folder)
        if r and "error" not in r:
            seconds[sid] = seconds.get(sid, 0.0) + wall_seconds(r)
    return seconds


def machine_text(v: dict) -> str:
    return (f"{v.get('cpu', 'CPU not recorded')}, {v.get('cpus')} cores ({v.get('platform')}); "
            f"Python {v.get('python')}, numpy {v.get('numpy')} (BLAS threads: "
            f"{v.get('blas_threads', 'not recorded')}), tensorgrad {v.get('tensorgrad')}")


def write_report(path: Path, all_results, command: str, quick: bool, elapsed: float) -> Path:
    """RESULTS.md: a header (commit, date, machine, versions, wall times, data and its caveat)
    and one section per part."""
    studies = {n: r for n, r in all_results.items() if r and "error" not in r}
    total = sum(wall_seconds(r) for r in studies.values())
    head_code = common.code_trees()
    commits = {}
    for name, r in studies.items():
        commits.setdefault((r.get("code") or {}).get("commit") or "not recorded",
                           []).append(name)
    machines = {}
    for name, r in studies.items():
        machines.setdefault(machine_text(r.get("versions") or {}), []).append(name)
    if not machines:
        machines[machine_text(common.versions())] = ["this report"]
    by_id = _wall_by_id(all_results)
    head = [
        "# Results: the course studies reproduced with tensorgrad", "",
        f"Written by `{common.public_command(command)}` on "
        f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}, from commit "
        f"{head_code['commit'] if head_code else 'unknown (no git)'}."
        + (" **--quick: tiny data, the numbers mean nothing.**" if quick else ""), "",
        "Commits the parts ran from: " + "; ".join(
            f"commit {c} ({', '.join(names)})" for c, names in commits.items()) + ".", "",
        "Machine: " + "; ".join(
            text + (f" ({', '.join(names)})" if len(machines) > 1 else "")
            for text, names in machines.items()) + ".", "",
        f"Total wall time of the studies: {minutes(total)}, searches' trials included ("
        + ", ".join(f"{sid} {minutes(s)}" for sid, s in by_id.items())
        + "; per part: "
        + ", ".join(f"{r['study']} {n} {minutes(wall_seconds(r))}" for n, r in studies.items())
        + f"); this invocation took {minutes(elapsed)}.", "",
        f"Data: CIFAR-10 from `{common.ENV_VAR}=<data>` (or `--data <data>`). {DATA_CAVEAT}", "",
        "Accuracies in %. Report numbers from the course reports R0-R4 as listed in "
        "STUDIES.md. Δ = ours − report in percentage points, on test accuracy unless marked; "
        f"(!) marks |Δ| > {THRESHOLD}. The gap column says whether such a row is explained by "
        "a note whose backing run is in these results, or unexplained.", "",
    ]
    body = [section(sid, folder, all_results.get(folder), path.parent, all_results)
            for folder, _, sid, _ in STUDIES]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "\n".join(head) + "\n" + "\n".join(body))
    return path


# ---------------------------------------------------------------------------------------------
# Publishing
# ---------------------------------------------------------------------------------------------

EVIDENCE = (".json", ".md", ".png")  # what --publish copies: results, tables, plots


def uncommitted_changes() -> list[str] | None:
    """Tracked files of the repository with uncommitted changes (None: git cannot tell)."""
    try:
        proc = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                              cwd=common.REPO, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return [line[3:] for line in proc.stdout.splitlines()] if proc.returncode == 0 else None


def code_differences(results: dict, head: dict) -> str | None:
    """Why a part's results do not come from HEAD's code (None when they do)."""
    code = results.get("code")
    if not code or not code.get("trees"):
        return "records no tree hashes (run before they were recorded)"
    if code.get("dirty"):
        return f"ran with uncommitted changes in {', '.join(code['dirty'])}"
    differ = [f"{tree} ({code['trees'].get(tree, 'none')[:12]} there, "
              f"{head['trees'][tree][:12]} at HEAD)" for tree in common.CODE_TREES
              if code["trees"].get(tree) != head["trees"][tree]]
    if differ:
        return (f"ran from commit {code.get('commit')}, whose code differs from HEAD's: "
                + "; ".join(differ))
    return None


def stale_parts(candidates: dict) -> list[str]:
    """Each part to be listed whose code is not HEAD's, as 'folder (path): why'."""
    head = common.code_trees()
    if head is None or head.get("dirty") is None:
        return ["git cannot tell HEAD's code (is this a git checkout?)"]
    out = []
    for name, results in candidates.items():
        why = code_differences(results, head)
        if why:
            where = os.path.relpath(Path(results["_dir"]) / "results.json", common.REPO)
            out.append(f"{name} ({where}): {why}")
    return out


def benchmark_results(root: Path):
    """<root>/benchmark/results.json of a full `python -m benchmarks.benchmark --out
    <root>/benchmark` run (its default folder is runs/benchmark), else None."""
    path = root / "benchmark" / "results.json"
    if not path.is_file():
        return None
    results = json.loads(path.read_text())
    quick = "--quick" in str(results.get("command", "")).split()
    return None if quick else dict(results, _dir=os.fspath(path.parent))


def publish(all_results) -> list[str]:
    """Copy each full study's evidence (EVIDENCE files: never a journal, lock, checkpoint or
    the run state in state/) into experiments/results/<study>/, replacing what was published
    there before."""
    published = []
    for name in [*(folder for folder, _, _, _ in STUDIES), "benchmark"]:
        results = all_results.get(name)
        if not results or "error" in results or results.get("quick"):
            continue
        source, target = Path(results["_dir"]), common.RESULTS_ROOT / name
        if source.resolve() != target.resolve():
            files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in EVIDENCE
                           and "state" not in p.relative_to(source).parts[:1])
            if target.exists():
                shutil.rmtree(target)
            for path in files:
                (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                write_bytes(target / path.relative_to(source), path.read_bytes())
        published.append(name)
    return published


def published_results() -> dict:
    """Every part's published results (experiments/results/<folder>/results.json), or None."""
    return {name: r and dict(r, _dir=os.fspath(common.RESULTS_ROOT / name))
            for name, _, _, _ in STUDIES
            for r in [read_results(common.RESULTS_ROOT / name / "results.json", False)]}


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        todo = selected(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    if args.estimate and (args.quick or args.publish):
        parser.error("--estimate estimates a full run from quick ones and runs nothing else; "
                     "leave out --quick and --publish")
    if args.publish:
        if args.quick:
            parser.error("--publish: quick runs (tiny data) are never published; run without "
                         "--quick")
        changes = uncommitted_changes()
        if changes:
            parser.error(f"--publish: tracked files have uncommitted changes "
                         f"({', '.join(changes[:5])}{', ...' if len(changes) > 5 else ''}); "
                         f"commit them first, so that the published evidence belongs to a commit")
    command = common.command_line("reproduce", list(sys.argv[1:] if argv is None else argv),
                                  args.data)
    t0 = time.perf_counter()
    default_root = args.out_root is None
    root = Path(args.out_root) if args.out_root else (
        common.QUICK_ROOT if args.quick else common.RUNS_ROOT)
    quick_root = root if args.quick else root / "quick"
    if args.estimate:
        _progress.update(command=command, root=quick_root, done=[], running=None)
        total = print_estimate(todo, args, quick_root, run_missing=True)
        return {"path": None, "results": {}, "failed": [] if total is not None else ["estimate"],
                "estimate_s": total}
    all_results, run = {}, []
    for name, _, _, _ in STUDIES:
        existing = read_results(root / name / "results.json", args.quick)
        if name not in todo or (args.reuse and existing is not None):
            all_results[name] = existing and dict(existing, _dir=os.fspath(root / name))
        else:
            run.append(name)
    if not args.quick and run:
        print_estimate(set(run), args, quick_root, run_missing=False)
    _progress.update(command=command, root=root, done=[], running=None)
    for name, module, sid, extra in STUDIES:
        if name not in run:
            if all_results.get(name) is not None and name in todo:
                print(f"{sid}: reusing {root / name / 'results.json'}", flush=True)
            continue
        all_results[name] = run_part(name, module, extra, args, root / name, default_root)
    path = write_report(root / "RESULTS.md", all_results, command, args.quick,
                        time.perf_counter() - t0)
    print(f"\nwrote {path}")
    failed = [n for n, r in all_results.items() if r and "error" in r]
    outcome = {"path": path, "results": all_results, "failed": failed}
    if args.publish and failed:
        print(f"nothing published: {', '.join(failed)} failed", flush=True)
    elif args.publish:
        ours = {n: r for n, r in all_results.items() if r and not r.get("quick")}
        kept = {n: r for n, r in published_results().items() if r and n not in ours}
        stale = stale_parts({**kept, **ours})
        if stale:
            print("error: --publish refused: these parts did not run from HEAD's code (the "
                  "tree hashes of " + ", ".join(common.CODE_TREES) + "): "
                  + "; ".join(stale) + ". Run them again from HEAD (`python -m "
                  "experiments.reproduce --only PART`), then publish", file=sys.stderr,
                  flush=True)
            return dict(outcome, refused=stale)
        published = publish({**all_results, "benchmark": benchmark_results(root)})
        print(f"published {', '.join(published) or 'nothing'} into {common.RESULTS_ROOT}")
        path = write_report(common.EXPERIMENTS / "RESULTS.md", published_results(), command,
                            False, time.perf_counter() - t0)
        print(f"wrote {path}")
        outcome["path"] = path
    return outcome


def succeeded(outcome) -> bool:
    return not outcome["failed"] and not outcome.get("refused")


if __name__ == "__main__":
    common.run_cli(main, succeeded, interrupted_message)
