"""S2: the two-layer network (50 hidden, no batch norm) with cyclical learning rates.

    python -m experiments.two_layer_cyclic                  # the three settings of STUDIES.md
    python -m experiments.two_layer_cyclic --setting b_ns2250 --seeds 1

Settings (R2, R1; the reports' numbers in SETTINGS): split (a), lambda 0.01, n_s 500, 1 cycle;
the same with n_s 800 and 3 cycles; split (b), lambda 0.005, n_s 2250, 2 cycles. Each setting
runs with the same --seeds seeds (default 0, 1, 2) and is reported as mean ± std (ddof=1), the
per-seed values in results.json. --lam / --n-s / --cycles override the settings' own values.
"""
import argparse

from . import common, spec

NAME, SID, TITLE = "two_layer_cyclic", "S2", "Two-layer network with cyclical learning rates"

# The settings and the reports' numbers for them: the one place they are written.
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
    common.add_seeds_flag(p)
    p.add_argument("--hidden", type=common.positive_int, default=50, help="hidden units")
    spec.add_recipe_flags(p)
    p.add_argument("--lam", type=common.non_negative_float, default=None,
                   help="override the settings' lambda")
    p.add_argument("--n-s", type=common.positive_int, default=None,
                   help="override the settings' n_s")
    p.add_argument("--cycles", type=common.positive_int, default=None,
                   help="override the settings' cycles")
    return p


def setting_values(name: str, args) -> tuple:
    """(lambda, n_s, cycles) a setting runs with: its own, or the flags' overrides; --quick's
    n_s."""
    s = SETTINGS[name]
    lam = s["lam"] if args.lam is None else args.lam
    n_s = s["n_s"] if args.n_s is None else args.n_s
    cycles = s["cycles"] if args.cycles is None else args.cycles
    return lam, (min(n_s, common.QUICK_N_S) if args.quick else n_s), cycles


def setting_label(name: str, args) -> str:
    """What a setting runs, as its row says: split, lambda, n_s and cycles."""
    lam, n_s, cycles = setting_values(name, args)
    return (f"split ({SETTINGS[name]['split']}), lambda {lam:g}, n_s {n_s}, {cycles} "
            f"cycle{'s' * (cycles > 1)}")


def build_specs(args) -> list:
    """One run per (setting, seed); every setting runs the same seeds."""
    names = list(SETTINGS) if args.setting == "all" else [args.setting]
    specs = []
    for name in names:
        lam, n_s, cycles = setting_values(name, args)
        for seed in common.seed_list(args):
            specs.append(spec.Spec.from_args(
                args, split=SETTINGS[name]["split"], widths=[args.hidden], batch_norm=False,
                lam=lam, n_s=n_s, cycles=cycles, seed=seed,
                label=f"{setting_label(name, args)}, seed {seed}", tags={"setting": name}))
    return specs


def split_text(run) -> str:
    """The split a run trained on, with its sizes: 'split (a): 10,000 train / 10,000 val'."""
    return f"split ({run['data']['split']}): {common.sizes_text(run['data']['sizes'])}"


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    specs = build_specs(args)
    runs, rows, table_rows, plots = spec.run_all(specs, args), [], [], []
    names = list(dict.fromkeys(s.tags["setting"] for s in specs))
    seeds, splits = common.seed_list(args), {}
    for name in names:
        s, label = SETTINGS[name], setting_label(name, args)
        group = [r for r in runs if r["config"]["tags"]["setting"] == name]
        for run in group:
            run["setting"] = name
        first = group[0]
        plots += common.run_plots(first, study.out, name,
                                  title=f"2-layer, {label}, seed {first['config']['seed']}")
        report_text = ", ".join(f"{k} {common.pct(s['report'][k], digits=2)}"
                                for k in ("train", "val", "test") if k in s["report"])
        row = common.seed_row(f"2-layer, {label} ({common.seeds_text(seeds)})", group,
                              s["report"], report_text=f"{report_text}% ({s['source']})",
                              note=split_text(first))
        splits.setdefault(s["split"], split_text(first))
        rows.append(row)
        std = row["std"] or {}
        table_rows.append([label] + [
            f"{common.pct(row['ours'].get(k), std.get(k), 2)} "
            f"({common.pct(s['report'].get(k), digits=2)})" for k in ("train", "val", "test")]
            + [" / ".join(common.pct(row["per_seed"]["test"][seed], digits=2) for seed in seeds),
               s["source"]])
    data = common.load_data(args, split=SETTINGS[names[-1]]["split"])
    table = (f"Accuracy in %, ours as mean ± std (ddof=1) over {common.seeds_text(seeds)} (the "
             f"same seeds in every row), the report's in brackets. 2-layer, {args.hidden} "
             f"hidden, no BN, He init, batch {args.batch_size}, eta "
             f"{args.eta_min:g}..{args.eta_max:g}; {', '.join(splits.values())}.\n\n"
             + common.markdown_table(["setting", "train", "val", "test",
                                      "test per seed", "report"], table_rows))
    return common.finish(study, table, rows, runs, plots, data)


if __name__ == "__main__":
    common.run_cli(main)
