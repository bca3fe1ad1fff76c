"""S3: the reports' lambda searches, as plain loops over fit, with their own grids and settings.

    python -m experiments.lambda_search                     # every stage
    python -m experiments.lambda_search --stage r1_fine

Stages (split (b): 45,000 train / 5,000 val unless stated):
  r2_coarse  2-layer, 10 lambdas log-uniform in [1e-6, 1e-1] (drawn with --seed), 2 cycles,
             n_s 900 (STUDIES.md gives none: 2 epochs per half cycle, 2 * 45000 / 100)
  r2_fine    2-layer, lambda 0.0002..0.0009 step 0.0001, batch 90, n_s 1000, 2 cycles
  r1_coarse  3-layer 50-50 with BN, lambda 0.01..0.06 step 0.01, n_s 2250, 2 cycles
  r1_fine    3-layer BN, lambda in {0.0051, 0.0063, 0.0069, 0.0094, 0.0134, 0.0154}
  r1_best    3-layer BN, the report's best lambda 0.0134 -> test accuracy
  r2_final   2-layer, lambda 0.0008, 3 cycles, 49,000 train / 1,000 val (batch 90 and n_s 1000
             of the fine stage: STUDIES.md gives no others)
"""
import argparse
import dataclasses

import numpy as np

from tensorgrad.plotting import plot_search

from . import common, spec

NAME, SID, TITLE = "lambda_search", "S3", "Lambda searches"
TWO, THREE = [50], [50, 50]   # hidden widths
STAGES = ["r2_coarse", "r2_fine", "r1_coarse", "r1_fine", "r1_best", "r2_final"]


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--stage", choices=[*STAGES, "all"], default="all",
                   help="the stage to run (see above), or all of them")
    spec.add_recipe_flags(p)
    positive, non_negative = common.positive_int, common.non_negative_float
    p.add_argument("--r2-coarse-range", type=common.positive_float, nargs=2,
                   default=[1e-6, 1e-1], metavar=("LOW", "HIGH"),
                   help="range of R2's coarse lambdas (drawn log-uniformly)")
    for flag, kind, default, text in [
            ("r2-coarse-count", positive, 10, "lambdas drawn in R2's coarse stage"),
            ("r2-coarse-n-s", positive, 900, "n_s of R2's coarse stage"),
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
    """name -> (hidden widths, batch_norm, n_val, Spec overrides, lambdas, report metric, report
    (lo, hi), report text). The reports' numbers are accuracies on `report metric`."""
    low, high = np.log10(args.r2_coarse_range)
    coarse = np.sort(10 ** np.random.default_rng(args.seed).uniform(low, high,
                                                                    args.r2_coarse_count))
    r1 = dict(n_s=args.r1_n_s, cycles=args.cycles)
    fine2 = dict(n_s=args.r2_fine_n_s, batch_size=args.r2_fine_batch)
    return {
        "r2_coarse": (TWO, False, 5000, dict(n_s=args.r2_coarse_n_s, cycles=args.cycles),
                      coarse.tolist(), "val", (0.352, 0.460), "val 35.2-46.0%"),
        "r2_fine": (TWO, False, 5000, dict(fine2, cycles=args.cycles),
                    [round(0.0001 * k, 4) for k in range(2, 10)], "val", (0.513, 0.526),
                    "val 51.3-52.6%"),
        "r1_coarse": (THREE, True, 5000, r1, [round(0.01 * k, 2) for k in range(1, 7)], "test",
                      (0.505, 0.525), "test 50.5-52.5%"),
        "r1_fine": (THREE, True, 5000, r1, [0.0051, 0.0063, 0.0069, 0.0094, 0.0134, 0.0154],
                    "val", (0.532, 0.543), "val 53.2-54.3%"),
        "r1_best": (THREE, True, 5000, r1, [args.r1_best_lam], "test", (0.527, 0.527),
                    "test 52.7% (lambda 0.0134)"),
        "r2_final": (TWO, False, args.r2_final_n_val, dict(fine2, cycles=args.r2_final_cycles),
                     [args.r2_final_lam], "test", (0.5147, 0.5147), "test 51.47% (lambda 0.0008)"),
    }


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
        hidden, bn, n_val, overrides, lams, *_ = settings[name]
        if args.quick:  # a few values, tiny cycles
            lams = lams[::-(-len(lams) // 3)]
            overrides = dict(overrides, n_s=min(overrides["n_s"], common.QUICK_N_S))
        for lam in lams:
            s = spec.Spec.from_args(args, widths=hidden, batch_norm=bn, n_val=n_val, lam=lam,
                                    **overrides, label=f"{name} lambda {lam:.4g}")
            key = repr(dataclasses.replace(s, label=""))
            specs.setdefault(key, s)
            keys.setdefault(name, []).append(key)
    done = dict(zip(specs, spec.run_all(list(specs.values()), args)))
    runs, rows, sections, plots = [], [], [], []
    for name in names:
        _, bn, n_val, _, _, metric, (lo, hi), report_text = settings[name]
        stage_runs = [dict(done[key], label=f"{name} lambda {done[key]['config']['lam']:.4g}",
                           stage=name, lam=done[key]["config"]["lam"]) for key in keys[name]]
        lams = [run["lam"] for run in stage_runs]
        data = common.load_data(args, split="b", n_val=n_val)
        runs += stage_runs
        accs = {k: [r["final"].get(f"{k}_acc") for r in stage_runs]
                for k in ("train", "val", "test")}
        if len(lams) > 1:
            series = {"val": accs["val"]} if metric == "val" else {"val": accs["val"],
                                                                  "test": accs["test"]}
            plots.append(plot_search(lams, series, study.out / f"{name}_search.png",
                                     title=f"{SID} {name}: accuracy vs lambda"))
        else:
            plots += common.run_plots(stage_runs[0], study.out, name,
                                      title=f"{name}: lambda {lams[0]:g}")
        best = int(np.argmax(accs["val"]))
        ours = [a for a in accs[metric] if a is not None]
        span = (f"{metric} {common.pct(min(ours))}-{common.pct(max(ours))}%" if len(ours) > 1
                else f"{metric} {common.pct(ours[0], digits=2)}%")
        rows.append(common.result_row(
            name, {metric: max(ours)}, {metric: hi},
            ours_text=span + (f" (best val at lambda {lams[best]:.4g})" if len(lams) > 1 else ""),
            report_text=report_text, compare=metric,
            note="delta on the best value of the stage" if len(lams) > 1 else None))
        cfg0 = stage_runs[0]["config"]
        head = (f"### {name}: {'3-layer 50-50 BN' if bn else '2-layer 50, no BN'}, "
                f"{data.sizes()['train']} train / {data.sizes()['val']} val, batch "
                f"{cfg0['batch_size']}, n_s {cfg0['n_s']}, {cfg0['cycles']} cycles\n\n"
                f"Report: {report_text}. Ours ({metric}): {span}.\n\n")
        sections.append(head + common.markdown_table(
            ["lambda", "train", "val", "test"],
            [[f"{lam:.4g}" + (" (best val)" if j == best and len(lams) > 1 else "")]
             + [common.pct(accs[k][j], digits=2) for k in ("train", "val", "test")]
             for j, lam in enumerate(lams)]))
    table = "Accuracy in %.\n\n" + "\n\n".join(sections)
    return common.finish(study, table, rows, runs, plots)


if __name__ == "__main__":
    common.run_cli(main)
