"""S5: sensitivity to the initial weights' scale, with and without batch norm (R1).

    python -m experiments.init_sensitivity
    python -m experiments.init_sensitivity --inits 1e-3 he --no-bn

3-layer 50-50, lambda 0.0134, split (b), n_s 2250, 2 cycles; weights N(0, sigma^2) for sigma
1e-1, 1e-3, 1e-4, and He (N(0, 2 / fan_in)) for comparison, each with and without batch norm on
the same --seeds seeds (default 0, 1, 2): R1's 4 x 2 table beside ours (mean ± std, ddof=1),
with BN minus without BN per init (mean ± std of the per-seed differences, plotted with error
bars), and the loss curves of the first seed's runs side by side.
"""
import argparse

from tensorgrad.plotting import plot_lr, plot_side_by_side

from . import common, spec

NAME, SID, TITLE = "init_sensitivity", "S5", "Sensitivity to initialisation"
# R1's numbers, the one place they are written: init -> (test accuracy without BN, with BN)
REPORT = {0.1: (0.515, 0.528), 1e-3: (0.100, 0.528), 1e-4: (0.100, 0.527), "he": (0.517, 0.527)}


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--inits", type=common.init_value, nargs="+", default=[0.1, 1e-3, 1e-4, "he"],
                   help="weight std sigmas and/or 'he'")
    common.add_bn_flag(p)
    common.add_seeds_flag(p, what="cell, with and without BN")
    spec.add_recipe_flags(p, lam=0.0134, n_s=2250, cycles=2)
    return p


def bn_word(bn) -> str:
    return "with" if bn else "without"


def build_specs(args) -> list:
    """One run per (init, BN, seed): the two BN arms of an init share their seeds and differ
    only in batch_norm."""
    n_s = min(args.n_s, common.QUICK_N_S) if args.quick else args.n_s
    return [spec.Spec.from_args(args, batch_norm=bn, n_s=n_s, seed=seed,
                                **spec.init_fields(init),
                                label=f"{common.init_name(init)}, {bn_word(bn)} BN, seed {seed}",
                                tags={"init": common.init_name(init), "batch_norm": bn})
            for init in args.inits for bn in sorted(common.bn_choice(args.bn))
            for seed in common.seed_list(args)]


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    data = common.load_data(args, split="b")
    n_s = min(args.n_s, common.QUICK_N_S) if args.quick else args.n_s
    bns = sorted(common.bn_choice(args.bn))  # without BN first, as in R1's table
    seeds = common.seed_list(args)
    runs = spec.run_all(build_specs(args), args)
    rows, cells, panels, groups, deltas, entries = [], {}, {}, {}, {}, []
    for init in args.inits:
        for bn in bns:
            group = [r for r in runs if r["config"]["tags"] == {"init": common.init_name(init),
                                                                "batch_norm": bn}]
            groups[(init, bn)] = group
            for run in group:
                run.update(init=init, batch_norm=bn)
            panels[f"{common.init_name(init)}, {bn_word(bn)} BN, seed {seeds[0]}"] = \
                group[0]["history"]
            rep = None if init not in REPORT else REPORT[init][int(bn)]
            row = common.seed_row(f"3-layer, {common.init_name(init)} init, {bn_word(bn)} BN "
                                  f"({common.seeds_text(seeds)})", group,
                                  None if rep is None else {"test": rep}, keys=("test",),
                                  report_text=None if rep is None else
                                  f"test {common.pct(rep)}% (R1)")
            rows.append(row)
            std = (row["std"] or {}).get("test")
            cells[(init, bn)] = f"{common.pct(row['ours']['test'], std, 2)} ({common.pct(rep)})"
        if len(bns) == 2:
            pair = [common.by_seed(groups[(init, bn)]) for bn in (True, False)]
            report = None if init not in REPORT else REPORT[init][1] - REPORT[init][0]
            row = common.delta_row(f"3-layer, {common.init_name(init)} init: with BN − without "
                                   f"BN ({common.seeds_text(seeds)})", *pair, report_delta=report)
            rows.append(row)
            mean, std = row["ours"]["test"], (row["std"] or {}).get("test")
            deltas[init] = f"{common.points(mean, std)} ({common.points(report)})"
            entries.append((common.init_name(init), mean, std))
    heads = ["init"] + [f"{bn_word(bn)} BN" for bn in bns] + (
        ["with − without BN (points)"] if deltas else [])
    table = (f"Test accuracy in %, ours as mean ± std (ddof=1) over {common.seeds_text(seeds)} "
             f"(the same seeds in every cell), R1's in brackets; with BN minus without BN as "
             f"the mean ± std of the per-seed differences (R1's difference in brackets). "
             f"3-layer 50-50, lambda {args.lam:g}, split (b): {common.sizes_text(data)}, n_s "
             f"{n_s}, {args.cycles} cycles, batch {args.batch_size}.\n\n"
             + common.markdown_table(heads, [[common.init_name(init)]
                                             + [cells[(init, bn)] for bn in bns]
                                             + ([deltas[init]] if deltas else [])
                                             for init in args.inits]))
    plots = [plot_side_by_side(panels, study.out / "loss_curves.png", metric="loss",
                               ncols=len(bns), sharey=False,
                               title=f"S5: train and val loss per initialisation (seed "
                                     f"{seeds[0]})"),
             *([plot_lr(runs[0]["history"], study.out / "lr.png")] if runs[0]["history"]["lr"]
               else [])]
    if entries:
        plots.append(common.plot_deltas(entries, study.out / "bn_deltas.png",
                                        f"S5: test accuracy with BN minus without "
                                        f"({common.seeds_text(seeds)})"))
    summary = "Test accuracy (mean ± std):\n" + "\n".join(
        f"  {common.init_name(init)}: "
        + ", ".join(f"{bn_word(bn)} BN {cells[(init, bn)]}" for bn in bns)
        + (f"; with − without BN {deltas[init]} points" if deltas else "")
        for init in args.inits)
    return common.finish(study, table, rows, runs, plots, data, summary=summary)


if __name__ == "__main__":
    common.run_cli(main)
