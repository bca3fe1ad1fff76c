"""S3: the reports' lambda searches, as plain loops over fit, with their own grids and settings.

    python -m experiments.lambda_search                     # every stage
    python -m experiments.lambda_search --stage r1_fine

Stages (split (b): 45,000 train / 5,000 val unless stated; the reports' numbers in REPORT):
  r2_coarse_45k  2-layer, 10 lambdas log-uniform in [1e-6, 1e-1] (drawn with --seed), R2's
                 stated batch 100, n_s 450, 2 cycles (1,800 updates), on 45,000 images
  r2_coarse_10k  the same lambdas and updates on 10,000 images (split (a)): R2's "18 epochs"
                 of 100 updates each. The table says which reading matches R2's range.
  r2_fine        2-layer, lambda 0.0002..0.0009 step 0.0001, batch 90, n_s 1000, 2 cycles
  r1_coarse      3-layer 50-50 with BN, lambda 0.01..0.06 step 0.01, n_s 2250, 2 cycles
  r1_fine        3-layer BN, lambda in {0.0051, 0.0063, 0.0069, 0.0094, 0.0134, 0.0154}
  r1_best        3-layer BN, the report's best lambda 0.0134 -> test accuracy, --seeds seeds
  r2_final       2-layer, lambda 0.0008, 3 cycles, 49,000 train / 1,000 val (batch 90 and n_s
                 1000 of the fine stage: STUDIES.md gives no others), --seeds seeds
The searches (coarse and fine stages) are grids of one run per lambda (seed --seed); the finals
compare one number with a report's, over --seeds seeds (mean ± std, ddof=1).
"""
import argparse
import dataclasses
from dataclasses import dataclass

import numpy as np

from tensorgrad.plotting import plot_search

from . import common, spec
from .reproduce import THRESHOLD

NAME, SID, TITLE = "lambda_search", "S3", "Lambda searches"
TWO, THREE = [50], [50, 50]   # hidden widths
STAGES = ["r2_coarse_45k", "r2_coarse_10k", "r2_fine", "r1_coarse", "r1_fine", "r1_best",
          "r2_final"]
COARSE = ("r2_coarse_45k", "r2_coarse_10k")   # R2's coarse stage in its two readings
# The reports' numbers, the one place they are written: stage -> (source, metric, low, high)
# of the stage's accuracies (low == high: one number). Both coarse readings compare with R2's
# one coarse range.
REPORT = {
    "r2_coarse": ("R2", "val", 0.352, 0.460),
    "r2_fine": ("R2", "val", 0.513, 0.526),
    "r1_coarse": ("R1", "test", 0.505, 0.525),
    "r1_fine": ("R1", "val", 0.532, 0.543),
    "r1_best": ("R1", "test", 0.527, 0.527),
    "r2_final": ("R2", "test", 0.5147, 0.5147),
}


def report_of(name: str) -> tuple:
    return REPORT["r2_coarse" if name in COARSE else name]


def report_pct(value) -> str:
    """A report's number as a percentage with the digits it was given ('46.0', '51.47')."""
    text = f"{100 * value:.2f}"
    return text[:-1] if text.endswith("0") else text


def report_text(name: str, lam=None) -> str:
    source, metric, low, high = report_of(name)
    span = report_pct(low) if low == high else f"{report_pct(low)}-{report_pct(high)}"
    return f"{metric} {span}% ({source}" + (f", lambda {lam:g})" if lam is not None else ")")


@dataclass
class Stage:
    """One stage: the network, data, schedule overrides and lambdas it runs, and its seeds
    (None: a grid, one run per lambda at --seed)."""
    hidden: list
    bn: bool
    split: str
    n_val: int
    overrides: dict
    lams: list
    seeds: list | None = None

    def net(self) -> str:
        return "3-layer 50-50 BN" if self.bn else "2-layer 50, no BN"


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--stage", choices=[*STAGES, "all"], default="all",
                   help="the stage to run (see above), or all of them")
    common.add_seeds_flag(p, what="final stage (r1_best, r2_final)")
    spec.add_recipe_flags(p)
    positive, non_negative = common.positive_int, common.non_negative_float
    p.add_argument("--r2-coarse-range", type=common.positive_float, nargs=2,
                   default=[1e-6, 1e-1], metavar=("LOW", "HIGH"),
                   help="range of R2's coarse lambdas (drawn log-uniformly)")
    for flag, kind, default, text in [
            ("r2-coarse-count", positive, 10, "lambdas drawn in R2's coarse stage"),
            ("r2-coarse-n-s", positive, 450, "n_s of R2's coarse stage (R2: step size 450)"),
            ("r2-coarse-batch", positive, 100, "batch size of R2's coarse stage"),
            ("r2-fine-batch", positive, 90, "batch size of R2's fine and final stages"),
            ("r2-fine-n-s", positive, 1000, "n_s of R2's fine and final stages"),
            ("r2-final-lam", non_negative, 0.0008, "lambda of R2's final run"),
            ("r2-final-cycles", positive, 3, "cycles of R2's final run"),
            ("r2-final-n-val", positive, 1000,
             "validation images of R2's final run (the rest train)"),
            ("r1-n-s", positive, 2250, "n_s of R1's stages"),
            ("r1-best-lam", non_negative, 0.0134,
             "R1's best lambda, trained and tested in stage r1_best")]:
        p.add_argument(f"--{flag}", type=kind, default=default, help=text)
    p.add_argument("--cycles", type=positive, default=2, help="cycles of every stage but r2_final")
    return p


def stage_settings(args) -> dict:
    """name -> Stage, as STUDIES.md gives them (--quick: at most 3 lambdas, n_s QUICK_N_S)."""
    low, high = np.log10(args.r2_coarse_range)
    coarse = np.sort(10 ** np.random.default_rng(args.seed).uniform(low, high,
                                                                    args.r2_coarse_count))
    r1 = dict(n_s=args.r1_n_s, cycles=args.cycles)
    fine2 = dict(n_s=args.r2_fine_n_s, batch_size=args.r2_fine_batch)
    coarse2 = dict(n_s=args.r2_coarse_n_s, batch_size=args.r2_coarse_batch, cycles=args.cycles)
    seeds = common.seed_list(args)
    stages = {
        "r2_coarse_45k": Stage(TWO, False, "b", 5000, coarse2, coarse.tolist()),
        "r2_coarse_10k": Stage(TWO, False, "a", 5000, coarse2, coarse.tolist()),
        "r2_fine": Stage(TWO, False, "b", 5000, dict(fine2, cycles=args.cycles),
                         [round(0.0001 * k, 4) for k in range(2, 10)]),
        "r1_coarse": Stage(THREE, True, "b", 5000, r1, [round(0.01 * k, 2) for k in range(1, 7)]),
        "r1_fine": Stage(THREE, True, "b", 5000, r1,
                         [0.0051, 0.0063, 0.0069, 0.0094, 0.0134, 0.0154]),
        "r1_best": Stage(THREE, True, "b", 5000, r1, [args.r1_best_lam], seeds),
        "r2_final": Stage(TWO, False, "b", args.r2_final_n_val,
                          dict(fine2, cycles=args.r2_final_cycles), [args.r2_final_lam], seeds),
    }
    if args.quick:  # a few values, tiny cycles
        for st in stages.values():
            st.lams = st.lams[::-(-len(st.lams) // 3)]
            st.overrides = dict(st.overrides, n_s=min(st.overrides["n_s"], common.QUICK_N_S))
    return stages


def stage_specs(name: str, st: Stage, args) -> list:
    """The runs of a stage: (lambda, seed) for every lambda and seed."""
    return [spec.Spec.from_args(args, split=st.split, widths=st.hidden, batch_norm=st.bn,
                                n_val=st.n_val, lam=lam, seed=seed, **st.overrides,
                                label=f"{name} lambda {lam:.4g}, seed {seed}")
            for lam in st.lams for seed in (st.seeds or [args.seed])]


def coarse_verdict(spans: dict) -> str:
    """Which coarse reading matches R2's range: the one whose lowest and highest accuracy are
    nearer R2's (the larger of the two gaps, in points), computed from the runs."""
    _, metric, low, high = REPORT["r2_coarse"]
    gaps = {name: (100 * (lo - low), 100 * (hi - high)) for name, (lo, hi) in spans.items()}
    worst = {name: max(abs(g) for g in pair) for name, pair in gaps.items()}
    parts = [f"{name} {metric} {common.pct(spans[name][0])}-{common.pct(spans[name][1])}% "
             f"(ends {gaps[name][0]:+.1f} / {gaps[name][1]:+.1f} points)" for name in spans]
    text = f"R2's coarse {metric} range {report_pct(low)}-{report_pct(high)}% against " + \
        "; ".join(parts) + ". "
    if len(spans) < 2:
        return text + "Run both readings to say which one matches."
    best = min(worst, key=worst.get)
    within = worst[best] <= THRESHOLD
    return text + (f"The {best.rsplit('_', 1)[1]} reading matches R2's range "
                   + (f"(both ends within {THRESHOLD:g} points)." if within else
                      f"better, though not within {THRESHOLD:g} points at both ends."))


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    low, high = args.r2_coarse_range
    if low >= high:
        parser.error(f"argument --r2-coarse-range: LOW must be below HIGH, got {low:g} {high:g}")
    study = common.start(NAME, SID, TITLE, args, argv)
    settings = stage_settings(args)
    names = STAGES if args.stage == "all" else [args.stage]
    specs, keys = {}, {}  # one run per configuration: r1_best repeats r1_fine's at 0.0134
    for name in names:
        for s in stage_specs(name, settings[name], args):
            key = repr(dataclasses.replace(s, label=""))
            specs.setdefault(key, s)
            keys.setdefault(name, []).append(key)
    order = sorted(specs, key=lambda k: (specs[k].split, -specs[k].n_val))  # one load a split
    done = dict(zip(order, spec.run_all([specs[k] for k in order], args)))
    runs, rows, sections, plots, spans = [], [], [], [], {}
    for name in names:
        st = settings[name]
        stage_runs = [dict(done[key], label=f"{name} lambda {done[key]['config']['lam']:.4g}, "
                                            f"seed {done[key]['config']['seed']}",
                           stage=name, lam=done[key]["config"]["lam"]) for key in keys[name]]
        runs += stage_runs
        cfg0, sizes = stage_runs[0]["config"], stage_runs[0]["data"]["sizes"]
        setting = (f"{st.net()}, split ({st.split}): {common.sizes_text(sizes)}, batch "
                   f"{cfg0['batch_size']}, n_s {cfg0['n_s']}, {cfg0['cycles']} cycles")
        if st.seeds is None:
            section, row = grid_stage(name, st, stage_runs, setting, study, plots, spans)
        else:
            section, row = final_stage(name, st, stage_runs, setting, study, plots)
        rows.append(row)
        sections.append(section)
    if spans:  # the coarse readings: which one matches R2's range, computed from the runs
        verdict = coarse_verdict(spans)
        for row in rows:
            if row["label"].startswith(COARSE):
                row["note"] = f"{row['note']}; {verdict}" if row.get("note") else verdict
        sections.insert(0, f"### Which reading of R2's coarse stage matches\n\n{verdict}")
    table = "Accuracy in %.\n\n" + "\n\n".join(sections)
    return common.finish(study, table, rows, runs, plots)


def grid_stage(name, st, stage_runs, setting, study, plots, spans):
    """A search stage: one run per lambda (a single seed), its span beside the report's."""
    source, metric, lo, hi = report_of(name)
    lams = [run["lam"] for run in stage_runs]
    seed = stage_runs[0]["config"]["seed"]
    accs = {k: [r["final"].get(f"{k}_acc") for r in stage_runs] for k in ("train", "val", "test")}
    if len(lams) > 1:
        series = {"val": accs["val"]} if metric == "val" else {"val": accs["val"],
                                                              "test": accs["test"]}
        plots.append(plot_search(lams, series, study.out / f"{name}_search.png",
                                 title=f"{SID} {name}: accuracy vs lambda (seed {seed})"))
    else:
        plots.extend(common.run_plots(stage_runs[0], study.out, name,
                                      title=f"{name}: lambda {lams[0]:g}, seed {seed}"))
    best = int(np.argmax([-1 if a is None else a for a in accs["val"]]))
    ours = [a for a in accs[metric] if a is not None]
    span = (f"{metric} {common.pct(min(ours))}-{common.pct(max(ours))}%" if len(ours) > 1
            else f"{metric} {common.pct(ours[0], digits=2)}%")
    if name in COARSE:
        spans[name] = (min(ours), max(ours))
    grid = f"a grid of {len(lams)} lambdas, one run each (seed {seed}: single-seed search)"
    row = common.result_row(
        f"{name}: {setting}, {grid}", {metric: max(ours)}, {metric: hi},
        ours_text=span + (f" (best val at lambda {lams[best]:.4g})" if len(lams) > 1 else ""),
        report_text=report_text(name), compare=metric,
        note="delta on the best value of the stage" if len(lams) > 1 else None)
    head = (f"### {name}: {setting}; {grid}\n\n"
            f"Report: {report_text(name)}. Ours ({metric}): {span}.\n\n")
    return head + common.markdown_table(
        ["lambda", "train", "val", "test"],
        [[f"{lam:.4g}" + (" (best val)" if j == best and len(lams) > 1 else "")]
         + [common.pct(accs[k][j], digits=2) for k in ("train", "val", "test")]
         for j, lam in enumerate(lams)]), row


def final_stage(name, st, stage_runs, setting, study, plots):
    """A final stage: one lambda over the seeds, mean ± std (ddof=1) beside the report's."""
    source, metric, lo, hi = report_of(name)
    lam = stage_runs[0]["lam"]
    plots.extend(common.run_plots(stage_runs[0], study.out, name,
                                  title=f"{name}: lambda {lam:g}, "
                                        f"seed {stage_runs[0]['config']['seed']}"))
    seeds = common.seeds_text(r["config"]["seed"] for r in stage_runs)
    row = common.seed_row(f"{name}: {setting}, lambda {lam:.4g} ({seeds})", stage_runs,
                          {metric: hi}, report_text=report_text(name, lam), compare=metric)
    std = row["std"] or {}
    head = (f"### {name}: {setting}, lambda {lam:.4g}; {seeds}\n\n"
            f"Report: {report_text(name, lam)}. Ours ({metric}, mean ± std, ddof=1): "
            f"{common.pct(row['ours'][metric], std.get(metric), 2)}%.\n\n")
    lines = [[r["config"]["seed"]] + [common.pct(r["final"].get(f"{k}_acc"), digits=2)
                                      for k in ("train", "val", "test")] for r in stage_runs]
    lines.append(["mean ± std"] + [common.pct(row["ours"].get(k), std.get(k), 2)
                                   for k in ("train", "val", "test")])
    return head + common.markdown_table(["seed", "train", "val", "test"], lines), row


if __name__ == "__main__":
    common.run_cli(main)
