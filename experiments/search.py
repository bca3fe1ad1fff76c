"""Hyper-parameter search over any training option: grid, random (coarse-to-fine) or TPE.

    python -m experiments.search --space r4_grid --workers 2          # S7: R4's 14 x 14 grid
    python -m experiments.search --space r0_tpe --workers 2           # S6: R0's TPE search
    python -m experiments.search --space my_space.json --sampler random --trials 30
    python -m experiments.search --space r0_tpe --storage postgresql://user:pw@host/db

--trials is the total over all workers and machines. The study lives in --storage (default
<out>/study.journal); running the same command again continues it, and on other machines the
same command with the same postgresql:// storage joins it. After the search the best
configurations (--final-top; the preset's, R4's top three for r4_grid) are retrained on the
larger split (a -> b, b -> c) and tested: the rows compare test accuracy with the report's
test accuracy and validation with validation. A search runs one seed (--seed) and says so.

A spec file is JSON: either a bare space {"lam": {"type": "loguniform", "low": 1e-3, "high":
1e-1}, "depth": {"type": "int", "low": 2, "high": 5}} or a preset-like object {"space": ...,
"fixed": {training options}, "sampler": ..., "trials": ..., "pruner": ..., "refine": {"trials":
.., "sampler": .., "factor": .., "fix": [..], "space": {..}}, "final": {training options},
"final_top": N}.
Searchable and fixed training options are the fields of experiments.spec.Spec.

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
import shutil
import sys
import time
from pathlib import Path

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

from . import common, interrupts, runstate, spec

NAME = "search"
TRAIN_EVAL = 5000   # training accuracy is measured on this many training images (speed)


def options(fixed: dict, params: dict | None = None) -> spec.Spec:
    """The Spec of a trial: the fixed options, then the trial's parameters (names checked)."""
    return spec.Spec.of({"eval_train": TRAIN_EVAL, **fixed, **(params or {})})


def objective(params, trial, fixed, data_args, progress=False):
    """The search objective: final validation accuracy of one training run (pruned by the
    trial's pruner on the validation accuracy at each measurement)."""
    o = options(fixed, params)
    if o.split == "c":
        raise ValueError("the search needs validation data: split 'c' has none")
    run = spec.run(o, spec.load_for(o, data_args), callbacks=[trial.pruning_callback("val_acc")],
                   progress=progress, test=False, keep_diverged=False)
    history = run["history"]
    trial.set_user_attr("train_acc", run["final"].get("train_acc"))
    trial.set_user_attr("updates", history["steps"][-1] if history["steps"] else 0)
    return run["final"].get("val_acc")


# ---------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------

PRESETS = {
    # S7 (R4): 3-layer BN, constant eta, 10 epochs; 14 x 14 log grid, then 20 eta values at the
    # best lambda, on split (a); R4 does not state its split, so the top three are retrained on
    # split (b) and tested (STUDIES.md), their test against R4's test.
    "r4_grid": dict(
        sid="S7", title="R4's grid search of (lambda, eta)",
        space={"lam": LogUniform(1e-8, 1e-4, num=14), "eta": LogUniform(1e-6, 1e-2, num=14)},
        fixed=dict(split="a", widths="50-50", batch_norm=True, epochs=10, init="he"),
        sampler="grid", trials=None, pruner="none",
        refine=Refine(sampler="grid", fix=("lam",), space={"eta": LogUniform(0.02, 0.1, num=20)}),
        final=dict(split="b"), final_top=3,
        report={"who": "R4", "split_stated": False, "runs": 196, "hours": 7,
                "top": ({"eta": 0.02785, "lam": 2.03e-8, "test": 0.418},
                        {"eta": 0.02, "lam": 2.03e-8, "test": 0.4157},
                        {"eta": 0.02, "lam": 2e-7, "test": 0.412})}),
    # S6 (R0): TPE over lambda and depth of the r0 family, ~20 trials; AdaGrad on the cyclical
    # schedule, dropout 0.1, flip 20% + blur 50% sigma U(0, 0.5), "Xavier" = lecun init.
    "r0_tpe": dict(
        sid="S6", title="R0's TPE search of (lambda, depth)",
        space={"lam": LogUniform(1e-2, 8e-2), "depth": Int(3, 9)},
        fixed=dict(split="b", widths="r0", batch_norm=True, dropout=0.1, optimizer="adagrad",
                   n_s=2250, cycles=2, init="lecun", flip=0.2, blur=0.5, blur_sigma=0.5),
        sampler="tpe", trials=20, pruner="median", refine=None,
        final=dict(split="c", cycles=4, n_s=2500), final_top=1,
        report={"who": "R0", "trials": 20, "val_choice": "random",
                "best": {"lam": 0.014, "depth": 3, "val": 0.506},
                "final": {"test": 0.5213, "split": "c", "cycles": 4, "n_s": 2500}}),
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
                    final_top=1, report=None, name=path.stem)
    unknown = set(raw) - {"space", "fixed", "sampler", "trials", "pruner", "refine", "final",
                          "final_top", "title"}
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
                final=raw.get("final", {}), final_top=raw.get("final_top", 1), report=None,
                name=path.stem)


def _probes(param) -> list:
    """Values that stand for a search parameter when checking a space: every value of a small
    grid (Choice, Int, a numbered grid), else the ends of its range."""
    values = param.grid()
    if values is not None and len(values) <= 64:
        return list(values)
    return [param.low, param.high]


def check_space_options(space: dict, fixed: dict, refine=None) -> None:
    """Refuse, before the first trial, a space the training options cannot take: each probe
    value of each parameter (and, up to 4096 points, their combinations) must give a valid
    Spec with the fixed options. ValueError names the point and the reason."""
    spaces = [space] + ([{**space, **refine.space}] if refine is not None and refine.space
                        else [])
    for current in spaces:
        probes = {name: _probes(param) for name, param in current.items()}
        for name, values in probes.items():
            for v in values:
                try:
                    spec.check_option(name, v)
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
                if options(fixed, point).split == "c":
                    raise ValueError("split 'c' has no validation data to search on")
            except (ValueError, TypeError) as exc:
                where = ", ".join(f"{k}={v!r}" for k, v in point.items())
                raise ValueError(f"the point {where} cannot be trained with the fixed options: "
                                 f"{exc}; fix the others with --set OPTION=VALUE or search "
                                 f"them too") from None


def pruner_options(name: str, o: spec.Spec, space: dict, n_train: int) -> dict:
    """Don't judge a trial in its first half (median) / rungs at 1/9, 1/3 of the run (halving),
    when the number of updates does not depend on the searched parameters."""
    schedule = {"eta", "epochs", "n_s", "cycles", "batch_size", "split", "n_val"}
    updates = None if schedule & set(space) else o.updates(n_train)
    if name == "median":
        return {"n_warmup_steps": updates // 2} if updates else {}
    if name == "halving":
        return {"min_resource": max(1, updates // 9), "reduction_factor": 3} if updates else {}
    return {}


def _n_train(o: spec.Spec, data_args: dict) -> int:
    if data_args["quick"]:  # tiny data: look
        return len(spec.load_for(o, data_args).train[1])
    return {"a": 10000, "b": 50000 - o.n_val, "c": 50000}[o.split]


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0], folder="search_<study-name>",
                            resumable=False)  # the storage keeps the trials
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
    p.add_argument("--set", dest="fixed", type=spec.setting, action="append", default=[],
                   metavar="OPTION=VALUE",
                   help="fix a training option (a field of experiments.spec.Spec), e.g. --set "
                        "epochs=5; repeatable")
    p.add_argument("--heartbeat", type=common.positive_int, default=10,
                   help="seconds between heartbeats of a running trial (postgresql only; a "
                        "trial silent for 4 heartbeats is re-queued)")
    p.add_argument("--storage-retry-seconds", type=common.non_negative_float,
                   default=STORAGE_RETRY_SECONDS,
                   help="how long an unreachable storage (database down or restarting, journal "
                        "file gone) is retried, with backoff, before the search stops with a "
                        "message; the same command then resumes it")
    p.add_argument("--restart", action="store_true",
                   help="start the search over: remove its journal (<out>/study.journal) and "
                        "the final run's checkpoint (<out>/state/); "
                        "refused with --storage (delete the study there yourself)")
    p.add_argument("--no-final", dest="final", action="store_false",
                   help="skip retraining the best configurations on the larger split")
    p.add_argument("--final-split", choices=["b", "c"], default=None,
                   help="split of the final runs (default: the preset's, else a->b, b->c)")
    p.add_argument("--final-top", type=common.positive_int, default=None,
                   help="how many of the best configurations are retrained and tested "
                        "(default: the preset's: 3 for r4_grid, 1 for r0_tpe and files)")
    return p


def _quick(fixed: dict) -> dict:
    """--quick: tiny schedules."""
    return {**fixed, "n_s": min(fixed.get("n_s", 2250), common.QUICK_N_S),
            "epochs": min(fixed.get("epochs", 10), 2)}


def final_run(o: spec.Spec, data_args: dict, progress: bool, state=None, rank: int = 1) -> dict:
    """Retrain o (the search's rank-th configuration, on its final split) and test it, as the
    reports do; checkpointed in the folder `state` (keyed by its Spec), where a re-run resumes
    it."""
    o = dataclasses.replace(o, label="best configuration, retrained" if rank == 1 else
                            f"configuration #{rank} of the search, retrained")
    checkpoint = None
    if state is not None:
        state.mkdir(parents=True, exist_ok=True)
        checkpoint = state / f"final-{runstate.spec_key(o)}.ckpt"
    run = spec.run(o, spec.load_for(o, data_args), progress=progress, checkpoint=checkpoint)
    print(f"final run #{rank} (split {o.split}): {common.accuracy_text(run['final'])} "
          f"({run['wall_time']:.0f} s)", flush=True)
    return run


def ranked(records, k: int) -> list[dict]:
    """The k best completed trials of distinct parameters, best first (ties: earlier stage,
    then earlier trial, as top_table orders them)."""
    out = []
    for r in sorted((r for r in records if r["state"] == "COMPLETE" and r["value"] is not None),
                    key=lambda r: (-r["value"], r["stage"], r["number"])):
        if len(out) < k and all(r["params"] != o["params"] for o in out):
            out.append(r)
    return out


def _params_text(params: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in params.items())


def _rows(preset, result, finals, search_split, seed) -> list[dict]:
    """The rows against the report: the best trial's validation accuracy where the report
    gives a validation number, and each retrained configuration's test accuracy against the
    report's test accuracy of the same rank (never validation against test)."""
    rep = preset.get("report") or {}
    who, best = rep.get("who", "report"), result.best
    rows = []
    if "best" in rep and best:
        b = rep["best"]
        where = _params_text({k: v for k, v in b.items() if k != "val"})
        rows.append(common.result_row(
            f"{preset['sid']} {preset['name']}: best trial of the search (one run, seed "
            f"{seed}), val on split {search_split}",
            {"val": best["value"]}, {"val": b["val"]},
            ours_text=f"val {common.pct(best['value'], digits=2)}% "
                      f"({_params_text(best['params'])})",
            report_text=f"val {common.pct(b['val'], digits=1)}% ({where}; {who}'s best of "
                        f"~{rep['trials']} trials)", compare="val"))
    top = rep.get("top", ())
    for rank, run in enumerate(finals, 1):
        params = run["params"]
        test = run["final"].get("test_acc")
        report, report_text = None, "—"
        if rank <= len(top):
            t = top[rank - 1]
            report = {"test": t["test"]}
            report_text = (f"test {common.pct(t['test'], digits=2)}% ({who}'s #{rank}, at "
                           f"{_params_text({k: v for k, v in t.items() if k != 'test'})}"
                           + ("; split not stated" if rep.get("split_stated") is False
                              else "") + ")")
        elif rank == 1 and "final" in rep:
            f = rep["final"]
            report = {"test": f["test"]}
            report_text = (f"test {common.pct(f['test'], digits=2)}% ({who}'s best retrained: "
                           f"{_params_text({k: v for k, v in f.items() if k != 'test'})})")
        rows.append(common.result_row(
            f"{preset['sid']} {preset['name']}: #{rank} of the search ({_params_text(params)}; "
            f"val {common.pct(run['search_value'], digits=2)}% on split {search_split}), "
            f"retrained on split {run['data']['split']} (one run, seed {run['config']['seed']})",
            {"test": test}, report, ours_text=common.accuracy_text(run["final"]),
            report_text=report_text, compare="test"))
    return rows


_PRUNERS = {
    "none": "none: every trial runs to its end",
    "median": "median (Optuna's MedianPruner): a trial stops when its validation accuracy at a "
              "measurement is below the median of the earlier trials' at the same update",
    "halving": "successive halving (Optuna's SuccessiveHalvingPruner)",
}


def _param_text(name, p) -> str:
    """A search parameter in words, its lowest value (the floor) first."""
    kind = type(p).__name__
    if kind in ("LogUniform", "Uniform"):
        how = "log-uniform" if kind == "LogUniform" else "uniform"
        grid = f", {p.num} grid points" if p.num else ""
        return f"{name} {how} from {p.low:g} (the floor) to {p.high:g}{grid}"
    if kind == "Int":
        return f"{name} integers {p.low}..{p.high}" + (f" step {p.step}" if p.step > 1 else "")
    return f"{name} one of {list(p.values)}"


def _validation_text(o: spec.Spec) -> str:
    if o.split == "a":
        return "split a: trained on data_batch_1 (10,000), validated on data_batch_2 (10,000)"
    where = "the last" if o.val_choice == "last" else "a random draw of"
    return (f"split b: validated on {where} {o.n_val:,} training images, trained on the "
            f"other {50000 - o.n_val:,}")


def setting_text(preset, space, fixed, sampler, pruner, pruner_opts, refine, top,
                 final_split) -> str:
    """What the search ran, from its settings: one seed, the space (with each floor), the
    second stage, the pruner, the validation split, the fixed options and the retraining."""
    o = options(fixed)
    parts = [f"One seed ({o.seed}): a search, each configuration run once. Searched "
             f"({sampler}): " + "; ".join(_param_text(k, p) for k, p in space.items()) + "."]
    if refine is not None:
        fine = ", ".join(_param_text(k, p) for k, p in refine.space.items())
        parts.append(f"Then {refine.trials or 'all'} {refine.sampler or sampler} trials"
                     + (f" with {', '.join(refine.fix)} fixed at the best" if refine.fix else "")
                     + (f", {fine}" if fine else "") + ".")
    warm = pruner_opts.get("n_warmup_steps")
    parts.append(f"Pruner: {_PRUNERS.get(pruner, pruner)}"
                 + (f", not before update {warm}" if warm else "") + ".")
    parts.append(f"Validation: {_validation_text(o)}.")
    rep = preset.get("report") or {}
    if o.split == "b" and rep.get("val_choice") and rep["val_choice"] != o.val_choice:
        parts.append(f"{rep['who']}'s validation images were the {rep['val_choice']} "
                     f"{o.n_val:,}, ours the {o.val_choice} {o.n_val:,} (val_choice).")
    parts.append("Fixed options: " + ", ".join(f"{k}={v!r}" for k, v in fixed.items())
                 + " (the others at experiments.spec.Spec's defaults).")
    final = {**(preset.get("final") or {}), "split": final_split}
    if top:
        parts.append(f"The best {top} configuration{'s' * (top > 1)} by validation accuracy "
                     f"{'are' if top > 1 else 'is'} retrained (one run each, the same seed) with "
                     + ", ".join(f"{k}={v!r}" for k, v in final.items()) + " and tested once.")
    if rep.get("split_stated") is False:
        parts.append(f"{rep['who']} does not state its split: we search on split {o.split} "
                     f"and compare the configurations retrained on split {final_split}: their "
                     f"test accuracy against {rep['who']}'s.")
    if "runs" in rep:
        parts.append(f"{rep['who']}: {rep['runs']} runs in about {rep['hours']} hours.")
    return " ".join(parts)


def _checked(parser, func, *args):
    """func(*args), or the parser's error (exit status 2) naming what was wrong."""
    try:
        return func(*args)
    except (OSError, ValueError, TypeError) as exc:
        parser.error(str(exc))


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = _checked(parser, load_preset, args.space)
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
    unknown = sorted(set(space) - set(spec.OPTIONS))
    if unknown:
        parser.error(f"--space {args.space}: {unknown} are not training options; known: "
                     f"{sorted(spec.OPTIONS)}")
    try:
        for name, value in fixed.items():
            spec.check_option(name, value)
        options(fixed)
    except (ValueError, TypeError) as exc:
        parser.error(f"fixed training options {fixed}: {exc}")
    top = preset.get("final_top", 1)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        parser.error(f"--space {args.space}: final_top must be a positive integer, got {top!r}")
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
    if args.restart and args.storage:
        parser.error("--restart removes the default journal only; with --storage, delete the "
                     "study from that storage yourself")
    study = common.start(NAME, preset["sid"], preset["title"], args, argv, resumable=False)
    if args.restart:
        for path in study.out.glob("study.journal*"):
            path.unlink()
        shutil.rmtree(study.out / "state", ignore_errors=True)
        print(f"  --restart: removed the journal in {study.out}", flush=True)
    storage = StorageSpec(args.storage or os.fspath(study.out / "study.journal"),
                          heartbeat=args.heartbeat, grace=4 * args.heartbeat,
                          retry_seconds=args.storage_retry_seconds)
    with _resumable(study, storage):
        data_args = common.data_args(args)
        o = options(fixed)
        pruner_opts = pruner_options(pruner, o, space, _n_train(o, data_args))
        print(f"  workers: {args.workers}, sampler {sampler}, pruner {pruner}, storage "
              f"{storage.describe()}", flush=True)
        result = run_search(
            objective, space, storage=storage, study_name=study_name, trials=trials,
            sampler=sampler, workers=args.workers, pruner=pruner,
            pruner_options=pruner_opts, seed=args.seed,
            refine=refine, objective_kwargs={"fixed": fixed, "data_args": data_args,
                                             "progress": args.progress and args.workers == 1})
        best = result.best
        final_split = args.final_split or preset["final"].get("split") or \
            {"a": "b", "b": "c"}[o.split]
        top = (args.final_top or preset.get("final_top") or 1) if args.final else 0
        finals = []
        for rank, record in enumerate(ranked(result.records, top), 1):
            final_opts = {**fixed, **preset["final"], **record["params"], "split": final_split}
            if args.quick:
                final_opts = _quick(final_opts)
            run = final_run(options(final_opts), data_args, args.progress,
                            study.out / "state", rank)
            finals.append({**run, "rank": rank, "params": record["params"],
                           "search_value": record["value"]})
        plots = [] if best is None else [
            plot_params(result.records, space, study.out / "params.png",
                        title=f"{study_name}: validation accuracy per parameter"),
            plot_best_so_far(result.records, study.out / "best_so_far.png",
                             title=f"{study_name}: best so far")]
        if finals:
            plots += common.run_plots(finals[0], study.out, "final", title="best configuration")
        states = {}
        for r in result.records:
            states[r["state"]] = states.get(r["state"], 0) + 1
        rows = _rows(preset, result, finals, o.split, o.seed)
        span = span_seconds(result.records) or 0.0
        busy = sum(r["duration_s"] or 0.0 for r in result.records)
        retrain = sum(f["wall_time"] for f in finals)
        # a resumed search ran its earlier trials in earlier invocations: count them too
        total = max(time.perf_counter() - study.t0, span + retrain)
        table = "\n\n".join([
            f"Search: {sampler}, {len(result.records)} trials "
            f"({', '.join(f'{v} {k.lower()}' for k, v in sorted(states.items()))}), "
            f"{args.workers} worker(s) here; search wall time {result.wall_time:.0f} s in this "
            f"run, {span:.0f} s from the first trial's start to the last one's end (a resumed "
            f"study counts its earlier runs too); {busy:.0f} s of trials in all; "
            f"{retrain:.0f} s of retraining; {total:.0f} s in all, trials included.",
            setting_text(preset, space, fixed, sampler, pruner, pruner_opts, refine, top,
                         final_split),
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
                            "trial_seconds": busy, "retrain_seconds": retrain,
                            "total_wall_s": total},
                 "trials": result.records, "best": best}
        summary = (f"best: {best['params']} val {100 * best['value']:.2f}%" if best else
                   f"no trial completed ({states.get('FAIL', 0)} failed, "
                   f"{states.get('PRUNED', 0)} pruned): see the reasons above")
        return common.finish(study, table, rows, finals, plots, extra=extra, summary=summary)


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
