"""S2: the two-layer network (50 hidden, no batch norm) with cyclical learning rates.

    python -m experiments.two_layer_cyclic                  # the three settings of STUDIES.md
    python -m experiments.two_layer_cyclic --setting b_ns2250

Settings (R2, R1): split (a), lambda 0.01, n_s 500, 1 cycle -> 45.9%; the same with n_s 800 and
3 cycles -> 46.45%; split (b), lambda 0.005, n_s 2250, 2 cycles -> 61.2 / 53.8 / 52.3%.
--lam / --n-s / --cycles override the chosen settings' own values.
"""
import argparse

from . import common, spec

NAME, SID, TITLE = "two_layer_cyclic", "S2", "Two-layer network with cyclical learning rates"

SETTINGS = {
    "a_ns500": dict(split="a", lam=0.01, n_s=500, cycles=1, report={"test": 0.459}, source="R2"),
    "a_ns800": dict(split="a", lam=0.01, n_s=800, cycles=3, report={"test": 0.4645}, source="R2"),
    "b_ns2250": dict(split="b", lam=0.005, n_s=2250, cycles=2,
                     report={"train": 0.612, "val": 0.538, "test": 0.523}, source="R1"),
}


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--setting", choices=[*SETTINGS, "all"], default="all",
                   help="which of the three settings to run")
    p.add_argument("--hidden", type=common.positive_int, default=50, help="hidden units")
    spec.add_recipe_flags(p)
    p.add_argument("--lam", type=common.non_negative_float, default=None,
                   help="override the settings' lambda")
    p.add_argument("--n-s", type=common.positive_int, default=None,
                   help="override the settings' n_s")
    p.add_argument("--cycles", type=common.positive_int, default=None,
                   help="override the settings' cycles")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    names = list(SETTINGS) if args.setting == "all" else [args.setting]
    specs = []
    for name in names:
        s = SETTINGS[name]
        lam = s["lam"] if args.lam is None else args.lam
        n_s = s["n_s"] if args.n_s is None else args.n_s
        cycles = s["cycles"] if args.cycles is None else args.cycles
        if args.quick:
            n_s = min(n_s, common.QUICK_N_S)
        plural = "s" if cycles > 1 else ""
        label = f"split ({s['split']}), lambda {lam:g}, n_s {n_s}, {cycles} cycle{plural}"
        specs.append(spec.Spec.from_args(args, split=s["split"], widths=[args.hidden],
                                         batch_norm=False, lam=lam, n_s=n_s, cycles=cycles,
                                         label=label, tags={"setting": name}))
    runs, rows, table_rows, plots = spec.run_all(specs, args), [], [], []
    for run in runs:
        name, label = run["config"]["tags"]["setting"], run["label"]
        s = SETTINGS[name]
        run["setting"] = name
        plots += common.run_plots(run, study.out, name, title=f"2-layer, {label}")
        f, rep = run["final"], s["report"]
        ours = {k: f.get(f"{k}_acc") for k in ("train", "val", "test")}
        table_rows.append([label] + [
            f"{common.pct(ours[k], digits=2)} ({common.pct(rep.get(k), digits=2)})"
            for k in ("train", "val", "test")] + [s["source"]])
        rows.append(common.result_row(f"2-layer, {label}", ours, rep))
    data = common.load_data(args, split=SETTINGS[names[-1]]["split"])
    table = ("Accuracy in %, ours (report's in brackets). 2-layer, "
             f"{args.hidden} hidden, no BN, He init, batch {args.batch_size}, eta "
             f"{args.eta_min:g}..{args.eta_max:g}.\n\n"
             + common.markdown_table(["setting", "train", "val", "test", "report"], table_rows))
    return common.finish(study, table, rows, runs, plots, data)


if __name__ == "__main__":
    common.run_cli(main)
