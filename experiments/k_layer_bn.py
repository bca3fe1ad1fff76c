"""S4: deeper networks with and without batch normalisation (R1), plus R4's constant-lr curves.

    python -m experiments.k_layer_bn --layers 3            # 3-layer 50-50, with and without BN
    python -m experiments.k_layer_bn                       # 3- and 9-layer
    python -m experiments.k_layer_bn --layers 9 --bn --r4

Split (b), lambda 0.005, n_s 2250, 2 cycles, He init, batch 100, eta 1e-5..1e-1. Runs with batch
norm (the key rows) are repeated over --seeds seeds and reported as mean ± std; runs without
over --seeds-no-bn. --r4 adds R4's curves: a 3-layer network with and without BN at a constant
learning rate (0.01) for 10 epochs, from He init and from N(0, 0.01^2) (R4 does not state its
init or lr), and the 2-layer network with and without BN at eta 2e-4, 2e-2, 5e-2.
"""
import argparse

from tensorgrad.plotting import plot_compare, plot_side_by_side

from . import common, spec

NAME, SID, TITLE = "k_layer_bn", "S4", "Deeper networks with and without batch norm"
HIDDEN = {2: [50], 3: [50, 50], 9: [50, 30, 20, 20, 10, 10, 10, 10]}
REPORT = {  # (layers, batch_norm) -> (numbers, text)
    (3, False): ({"test": 0.517}, "test 51.7% (R1, at lambda 0.0134)"),
    (3, True): ({"test": 0.532},
                "test 53.2% (R1; course text ~53.5%, R1's 6 repeats ~54% at best)"),
    (9, False): ({"train": 0.533, "val": 0.473, "test": 0.466}, None),
    (9, True): ({"train": 0.585, "val": 0.518, "test": 0.510}, None),
}
R4_TEXT = {
    "three": "R4: with BN the network learns from the start; without BN only after ~17 epochs",
    "two": "R4: curves only (2-layer with vs without BN at eta 2e-4, 2e-2, 5e-2)",
}


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--layers", type=int, nargs="+", choices=[3, 9], default=[3, 9],
                   help="networks to train: 3 (3072-50-50-10) and/or 9 layers")
    common.add_bn_flag(p)
    p.add_argument("--seeds", type=common.positive_int, default=3,
                   help="seeds per configuration with BN")
    p.add_argument("--seeds-no-bn", type=common.positive_int, default=1,
                   help="seeds per configuration without BN")
    spec.add_recipe_flags(p, lam=0.005, n_s=2250, cycles=2)
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


def main_table(args, study):
    configs = [(k, bn) for k in args.layers for bn in common.bn_choice(args.bn)]
    n_s = min(args.n_s, common.QUICK_N_S) if args.quick else args.n_s
    specs = [spec.Spec.from_args(args, widths=HIDDEN[layers], batch_norm=bn, n_s=n_s,
                                 seed=args.seed + s,
                                 label=f"{layers}-layer {bn_text(bn)}, seed {args.seed + s}",
                                 tags={"layers": layers, "batch_norm": bn})
             for layers, bn in configs for s in range(args.seeds if bn else args.seeds_no_bn)]
    runs, rows, table_rows, plots, headline = spec.run_all(specs, args), [], [], [], []
    for layers, bn in configs:
        group = [r for r in runs if r["config"]["tags"] == {"layers": layers, "batch_norm": bn}]
        for run in group:
            run.update(layers=layers, batch_norm=bn)
        plots += common.run_plots(group[0], study.out, f"{layers}layer_{'bn' if bn else 'nobn'}",
                                  title=f"{layers}-layer {bn_text(bn)}, seed {args.seed}")
        stats = common.summarize(group)
        ours = {k: stats[f"{k}_acc"][0] for k in ("train", "val", "test")}
        std = ({k: stats[f"{k}_acc"][1] for k in ("train", "val", "test")}
               if len(group) > 1 else None)
        report, report_text = REPORT[(layers, bn)]
        net = f"{layers}-layer {bn_text(bn)}"
        table_rows.append([net, len(group)] + [common.pct(ours[k], std and std[k], 2)
                                               for k in ("train", "val", "test")]
                          + [report_text or " / ".join(common.pct(report[k]) for k in
                                                       ("train", "val", "test"))])
        note = ("R1's 3-layer no-BN number is at lambda 0.0134, ours at lambda "
                f"{args.lam:g}" if (layers, bn) == (3, False) else None)
        rows.append(common.result_row(
            f"{net} ({len(group)} seed{'s' * (len(group) > 1)})", ours, report,
            report_text=report_text, std=std, note=note))
        headline.append(f"  {net}: {common.pct(ours['test'], std and std['test'], 2)}%"
                        + (f" (mean ± std over {len(group)} seeds)" if len(group) > 1 else ""))
    table = (f"Accuracy in %, mean ± std over seeds where more than one. Split (b), lambda "
             f"{args.lam:g}, n_s {n_s}, {args.cycles} cycles, He init, batch {args.batch_size}.\n\n"
             + common.markdown_table(["network", "seeds", "train", "val", "test",
                                      "report (train / val / test)"], table_rows))
    return runs, rows, table, plots, "Test accuracy:\n" + "\n".join(headline)


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
            f"R4 {setting}, {epochs} epochs",
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
             f"{args.batch_size}; val accuracy in % after 1 epoch / after the last.\n"
             f"{R4_TEXT['three']}.\n\n"
             + common.markdown_table(["network", "eta", "init", "with BN", "without BN"], lines))
    return runs, rows, table, plots


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    data = common.load_data(args, split="b")
    runs, rows, table, plots, headline = main_table(args, study)
    if args.r4:
        r4_runs, r4_rows, r4_table, r4_plots = r4_curves(args, study, data)
        runs, rows, plots = runs + r4_runs, rows + r4_rows, plots + r4_plots
        table += "\n\n" + r4_table
    return common.finish(study, table, rows, runs, plots, data, summary=headline)


if __name__ == "__main__":
    common.run_cli(main)
