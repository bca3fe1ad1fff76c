"""S5: sensitivity to the initial weights' scale, with and without batch norm (R1).

    python -m experiments.init_sensitivity
    python -m experiments.init_sensitivity --inits 1e-3 he --no-bn

3-layer 50-50, lambda 0.0134, split (b), n_s 2250, 2 cycles; weights N(0, sigma^2) for sigma
1e-1, 1e-3, 1e-4, and He (N(0, 2 / fan_in)) for comparison, each with and without batch norm:
R1's 4 x 2 table beside ours, and the loss curves of all runs side by side.
"""
import argparse

from tensorgrad.plotting import plot_lr, plot_side_by_side

from . import common, spec

NAME, SID, TITLE = "init_sensitivity", "S5", "Sensitivity to initialisation"
REPORT = {  # init -> (test accuracy without BN, with BN), R1
    0.1: (0.515, 0.528), 1e-3: (0.100, 0.528), 1e-4: (0.100, 0.527), "he": (0.517, 0.527)}


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--inits", type=common.init_value, nargs="+", default=[0.1, 1e-3, 1e-4, "he"],
                   help="weight std sigmas and/or 'he'")
    common.add_bn_flag(p)
    spec.add_recipe_flags(p, lam=0.0134, n_s=2250, cycles=2)
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    data = common.load_data(args, split="b")
    n_s = min(args.n_s, common.QUICK_N_S) if args.quick else args.n_s
    bns = sorted(common.bn_choice(args.bn))  # without BN first, as in R1's table
    jobs = [(init, bn) for init in args.inits for bn in bns]
    specs = [spec.Spec.from_args(args, batch_norm=bn, n_s=n_s, **spec.init_fields(init),
                                 label=f"{common.init_name(init)}, "
                                       f"{'with' if bn else 'without'} BN")
             for init, bn in jobs]
    runs, rows, cells, panels = spec.run_all(specs, args), [], {}, {}
    for (init, bn), run in zip(jobs, runs):
        run.update(init=init, batch_norm=bn)
        panels[run["label"]] = run["history"]
        report = REPORT.get(init)
        ours = run["final"].get("test_acc")
        rep = None if report is None else report[int(bn)]
        cells[(init, bn)] = (f"{common.pct(ours, digits=2)} "
                             f"({common.pct(rep) if rep is not None else '—'})")
        rows.append(common.result_row(run["label"], {"test": ours},
                                      None if rep is None else {"test": rep}))
    heads = ["init"] + [f"{'with' if bn else 'without'} BN" for bn in bns]
    table = (f"Test accuracy in %, ours (R1's in brackets). 3-layer 50-50, lambda {args.lam:g}, "
             f"split (b), n_s {n_s}, {args.cycles} cycles, batch {args.batch_size}.\n\n"
             + common.markdown_table(heads, [[common.init_name(init)]
                                             + [cells[(init, bn)] for bn in bns]
                                             for init in args.inits]))
    plots = [plot_side_by_side(panels, study.out / "loss_curves.png", metric="loss",
                               ncols=len(bns), sharey=False,
                               title="S5: train and val loss per initialisation"),
             *([plot_lr(runs[0]["history"], study.out / "lr.png")] if runs[0]["history"]["lr"]
               else [])]
    summary = "Test accuracy:\n" + "\n".join(
        f"  {common.init_name(init)}: "
        + ", ".join(f"{'with' if bn else 'without'} BN {cells[(init, bn)]}" for bn in bns)
        for init in args.inits)
    return common.finish(study, table, rows, runs, plots, data, summary=summary)


if __name__ == "__main__":
    common.run_cli(main)
