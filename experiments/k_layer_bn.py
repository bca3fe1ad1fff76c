"""S4: deeper networks with and without batch normalisation (R1), plus R4's constant-lr curves.

    python -m experiments.k_layer_bn --layers 3            # 3-layer 50-50, with and without BN
    python -m experiments.k_layer_bn                       # 3- and 9-layer
    python -m experiments.k_layer_bn --layers 9 --bn --r4

Split (b), lambda 0.005, n_s 2250, 2 cycles, He init, batch 100, eta 1e-5..1e-1. Every network
runs with and without batch norm on the same --seeds seeds (default 0, 1, 2), reported as mean ±
std (ddof=1), and BN minus no BN as the mean ± std of the per-seed differences. R1's 3-layer
result without BN was at lambda 0.0134 (--r1-lam): that network also runs there, on the same
seeds, for the comparison with R1. --r4 adds R4's curves (single seed): a 3-layer network with
and without BN at a constant learning rate (0.01) for 10 epochs, from He init and from
N(0, 0.01^2) (R4 does not state its init or lr), and the 2-layer network with and without BN at
eta 2e-4, 2e-2, 5e-2.
"""
import argparse

from tensorgrad.plotting import plot_compare, plot_side_by_side

from . import common, spec

NAME, SID, TITLE = "k_layer_bn", "S4", "Deeper networks with and without batch norm"
HIDDEN = {2: [50], 3: [50, 50], 9: [50, 30, 20, 20, 10, 10, 10, 10]}
# The reports' numbers, the one place they are written: (layers, batch_norm, lambda) ->
# (numbers, source, remark). "main" is the table's lambda (0.005), "r1" R1's 0.0134.
REPORT = {
    (3, True, "main"): ({"test": 0.532}, "R1", "course text ~53.5%, R1's 6 repeats ~54% at best"),
    (3, False, "r1"): ({"test": 0.517}, "R1", None),
    (9, False, "main"): ({"train": 0.533, "val": 0.473, "test": 0.466}, "R1", None),
    (9, True, "main"): ({"train": 0.585, "val": 0.518, "test": 0.510}, "R1", None),
}
R4_TEXT = {
    "three": "R4: with BN the network learns from the start; without BN only after ~17 epochs",
    "two": "R4: curves only (2-layer with vs without BN at eta 2e-4, 2e-2, 5e-2)",
}
SPLITS = ("train", "val", "test")


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--layers", type=int, nargs="+", choices=[3, 9], default=[3, 9],
                   help="networks to train: 3 (3072-50-50-10) and/or 9 layers")
    common.add_bn_flag(p)
    common.add_seeds_flag(p, what="network, with and without BN")
    spec.add_recipe_flags(p, lam=0.005, n_s=2250, cycles=2)
    p.add_argument("--r1-lam", type=common.non_negative_float, default=0.0134,
                   help="lambda of R1's 3-layer result without BN: the 3-layer network "
                        "without BN also runs at it")
    p.add_argument("--r4", action="store_true", help="also run R4's constant-lr curves")
    p.add_argument("--r4-eta", type=common.positive_float, default=0.01,
                   help="constant lr of R4's 3-layer runs (STUDIES.md does not give R4's)")
    p.add_argument("--r4-inits", type=common.init_value, nargs="+", default=["he", 0.01],
                   help="weight inits of R4's 3-layer runs: 'he' and/or sigmas (R4's is not "
                        "stated; with He init both nets learn at once)")
    p.add_argument("--r4-two-layer-etas", type=common.positive_float, nargs="+",
                   default=[2e-4, 2e-2, 5e-2],
                   help="constant lrs of R4's 2-layer runs, with and without BN")
    p.add_argument("--r4-epochs", type=common.positive_int, default=10,
                   help="epochs of every R4 run")
    p.add_argument("--r4-lam", type=common.non_negative_float, default=0.0,
                   help="lambda of the R4 runs (R4's grid used lambda <= 1e-4)")
    return p


def bn_text(bn):
    return "with BN" if bn else "without BN"


def configs(args) -> list:
    """(layers, batch_norm, lambda kind) of the main table: every network with and/or without
    BN at --lam ('main'), and the 3-layer network without BN at R1's lambda ('r1') unless
    --r1-lam is --lam (then the main row is at R1's setting)."""
    out = [(k, bn, "main") for k in args.layers for bn in common.bn_choice(args.bn)]
    if 3 in args.layers and False in common.bn_choice(args.bn) and args.r1_lam != args.lam:
        out.append((3, False, "r1"))
    return out


def lam_of(args, kind) -> float:
    return args.lam if kind == "main" else args.r1_lam


def report_of(args, layers, bn, kind):
    """(numbers, text) of R1's result for this row: the 'r1' entry is the main row's too when
    --r1-lam is --lam."""
    key = (layers, bn, kind)
    if key not in REPORT and kind == "main" and args.r1_lam == args.lam:
        key = (layers, bn, "r1")
    if key not in REPORT:
        return None, None
    numbers, source, remark = REPORT[key]
    lam = f", at lambda {lam_of(args, key[2]):g}" if key[2] == "r1" else ""
    text = ", ".join(f"{k} {common.pct(numbers[k])}" for k in SPLITS if k in numbers)
    return numbers, f"{text}% ({source}{lam}{'; ' + remark if remark else ''})"


def net_label(layers, bn, kind, args) -> str:
    """A row's network, with its lambda when it is not the table's."""
    return (f"{layers}-layer {bn_text(bn)}"
            + (f", lambda {lam_of(args, kind):g} (R1's setting)" if kind == "r1" else ""))


def main_specs(args) -> list:
    """One run per (network, BN, lambda, seed): the arms compared share their seeds and differ
    only in batch_norm (or lam, for R1's setting)."""
    n_s = min(args.n_s, common.QUICK_N_S) if args.quick else args.n_s
    return [spec.Spec.from_args(args, widths=HIDDEN[layers], batch_norm=bn, n_s=n_s,
                                lam=lam_of(args, kind), seed=seed,
                                label=f"{net_label(layers, bn, kind, args)}, seed {seed}",
                                tags={"layers": layers, "batch_norm": bn, "lam": kind})
            for layers, bn, kind in configs(args) for seed in common.seed_list(args)]


def main_table(args, study, data):
    n_s = min(args.n_s, common.QUICK_N_S) if args.quick else args.n_s
    seeds = common.seed_list(args)
    runs, rows, table_rows, plots = spec.run_all(main_specs(args), args), [], [], []
    groups, headline = {}, []
    for layers, bn, kind in configs(args):
        group = [r for r in runs
                 if r["config"]["tags"] == {"layers": layers, "batch_norm": bn, "lam": kind}]
        groups[(layers, bn, kind)] = group
        for run in group:
            run.update(layers=layers, batch_norm=bn)
        stem = f"{layers}layer_{'bn' if bn else 'nobn'}" + ("_r1lam" if kind == "r1" else "")
        plots += common.run_plots(group[0], study.out, stem,
                                  title=f"{net_label(layers, bn, kind, args)}, "
                                        f"seed {group[0]['config']['seed']}")
        report, report_text = report_of(args, layers, bn, kind)
        net = net_label(layers, bn, kind, args)
        note = (f"R1 gives no number for this network at lambda {lam_of(args, kind):g}: the row "
                f"is compared with its other arm (with BN − without BN, paired by seed)"
                if report is None else None)
        row = common.seed_row(f"{net} ({common.seeds_text(seeds)})", group, report,
                              report_text=report_text, note=note)
        rows.append(row)
        std = row["std"] or {}
        table_rows.append([net] + [common.pct(row["ours"].get(k), std.get(k), 2) for k in SPLITS]
                          + [" / ".join(common.pct(row["per_seed"]["test"][s], digits=2)
                                        for s in seeds), report_text or "—"])
        headline.append(f"  {net}: {common.pct(row['ours']['test'], std.get('test'), 2)}%")
    delta_rows, delta_lines, entries = bn_deltas(args, groups, seeds)
    rows += delta_rows
    if entries:
        plots.append(common.plot_deltas(entries, study.out / "bn_deltas.png",
                                        f"{SID}: with BN minus without BN (lambda {args.lam:g}, "
                                        f"{common.seeds_text(seeds)})"))
        headline += [f"  {r['label']}: {r['ours_text']}" for r in delta_rows]
    table = (f"Accuracy in %, mean ± std (ddof=1) over {common.seeds_text(seeds)}, the same "
             f"seeds in every row. Split (b): {common.sizes_text(data)}, lambda {args.lam:g} "
             f"unless the row says otherwise, n_s {n_s}, {args.cycles} cycles, He init, batch "
             f"{args.batch_size}.\n\n"
             + common.markdown_table(["network", "train", "val", "test", "test per seed",
                                      "report"], table_rows))
    if delta_lines:
        table += (f"\n\nWith BN minus without BN at lambda {args.lam:g}, in points: mean ± std "
                  f"(ddof=1) of the per-seed differences (seeds paired), R1's difference "
                  f"where both its numbers are at this lambda.\n\n"
                  + common.markdown_table(["network", "train", "val", "test",
                                           "test per seed", "R1 (test)"], delta_lines))
    return (runs, rows, table, plots,
            f"Test accuracy (mean ± std over {common.seeds_text(seeds)}):\n" + "\n".join(headline))


def bn_deltas(args, groups, seeds):
    """BN minus no BN per network at --lam, paired by seed: rows, table lines, plot entries."""
    rows, lines, entries = [], [], []
    for layers in args.layers:
        pair = groups.get((layers, True, "main")), groups.get((layers, False, "main"))
        if not all(pair):
            continue
        diffs = {k: common.paired_delta(*(common.by_seed(g, f"{k}_acc") for g in pair))
                 for k in SPLITS}
        with_bn, without = (report_of(args, layers, bn, "main")[0] for bn in (True, False))
        report = (with_bn["test"] - without["test"]) if with_bn and without else None
        note = (None if report is not None else
                f"R1's {layers}-layer numbers with and without BN are not at the same lambda: "
                f"no report difference to compare")
        row = common.delta_row(f"{layers}-layer: with BN − without BN, lambda {args.lam:g} "
                               f"({common.seeds_text(seeds)})",
                               *(common.by_seed(g, "test_acc") for g in pair),
                               report_delta=report, note=note)
        rows.append(row)
        lines.append([f"{layers}-layer"] + [common.points(*diffs[k]) for k in SPLITS]
                     + [" / ".join(common.points(d) for d in row["per_seed"]["test"].values()),
                        common.points(report)])
        entries += [(f"{layers}-layer {k}", *diffs[k]) for k in SPLITS]
    return rows, lines, entries


def at_epoch(history, epoch):
    """Validation accuracy at the first measurement at or after `epoch` (else the last)."""
    accs = history["metrics"].get("val_acc") or [None]
    i = next((i for i, e in enumerate(history["epochs"]) if e >= epoch - 1e-9), len(accs) - 1)
    return accs[i]


def r4_curves(args, study, data):
    """R4: constant learning rate, BN vs no BN: the 3-layer net, then the 2-layer net per eta."""
    rows, plots, lines = [], [], []
    epochs = 2 if args.quick else args.r4_epochs
    batches = -(-len(data.train[1]) // args.batch_size)
    every = max(1, batches // 4)  # 4 measurements per epoch
    jobs = ([("three", 3, args.r4_eta, init) for init in args.r4_inits]
            + [("two", 2, eta, "he") for eta in args.r4_two_layer_etas])
    specs = [spec.Spec.from_args(
        args, widths=HIDDEN[layers], batch_norm=bn, lam=args.r4_lam, eta=eta, epochs=epochs,
        measure_every=every, **spec.init_fields(init),
        label=f"R4 {layers}-layer, constant eta {eta:g}, {common.init_name(init)} init, "
              f"{bn_text(bn)}") for _, layers, eta, init in jobs for bn in (True, False)]
    runs = spec.run_all(specs, args)
    for (part, layers, eta, init), pair in zip(jobs, zip(runs[::2], runs[1::2])):
        setting = f"{layers}-layer, constant eta {eta:g}, {common.init_name(init)} init"
        for run, bn in zip(pair, (True, False)):
            run.update(part=f"r4_{part}", layers=layers, batch_norm=bn, eta=eta, init=init)
        pair = dict(zip(("with BN", "without BN"), pair))
        stem = f"r4_{layers}layer_eta{eta:g}" + ("" if init == "he" else f"_sigma{init:g}")
        plots.append(plot_compare({k: r["history"] for k, r in pair.items()},
                                  study.out / f"{stem}.png", metrics=("loss", "acc"),
                                  title=f"{setting}: val curves"))
        first = {k: at_epoch(r["history"], 1) for k, r in pair.items()}
        last = {k: r["final"].get("val_acc") for k, r in pair.items()}
        rows.append(common.result_row(
            f"R4 {setting}, {epochs} epochs (seed {args.seed}: curves, single-seed)",
            {"val": last["with BN"]},
            ours_text=(f"val after 1 / {epochs} epochs: with BN {common.pct(first['with BN'])} / "
                       f"{common.pct(last['with BN'])}, without {common.pct(first['without BN'])}"
                       f" / {common.pct(last['without BN'])}"),
            report_text=R4_TEXT[part]))
        lines.append([f"{layers}-layer", f"{eta:g}", common.init_name(init)] + [
            f"{common.pct(first[k])} / {common.pct(last[k])}" for k in ("with BN", "without BN")])
    two = [r for r in runs if r["part"] == "r4_two"]
    if two:
        plots.append(plot_side_by_side(
            {f"eta {r['eta']:g}, {bn_text(r['batch_norm'])}": r["history"] for r in two},
            study.out / "r4_2layer_loss.png", metric="loss", x="epoch",
            title="R4: 2-layer, constant learning rate: loss"))
    table = (f"R4 part: constant learning rate, {epochs} epochs, lambda {args.r4_lam:g}, batch "
             f"{args.batch_size}, one run per setting (seed {args.seed}: curves, single-seed); "
             f"val accuracy in % after 1 epoch / after the last.\n"
             f"{R4_TEXT['three']}.\n\n"
             + common.markdown_table(["network", "eta", "init", "with BN", "without BN"], lines))
    return runs, rows, table, plots


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    data = common.load_data(args, split="b")
    runs, rows, table, plots, headline = main_table(args, study, data)
    if args.r4:
        r4_runs, r4_rows, r4_table, r4_plots = r4_curves(args, study, data)
        runs, rows, plots = runs + r4_runs, rows + r4_rows, plots + r4_plots
        table += "\n\n" + r4_table
    return common.finish(study, table, rows, runs, plots, data, summary=headline)


if __name__ == "__main__":
    common.run_cli(main)
