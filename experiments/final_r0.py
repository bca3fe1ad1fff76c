"""S6: R0's final recipe on all 50,000 training images, 4 cycles of n_s 2500, 3 seeds.

    python -m experiments.final_r0

R0's best configuration: 3 layers 50-30 with batch norm, lambda 0.014, AdaGrad driven by the
cyclical schedule (1e-5..1e-1), dropout 0.1 after each hidden layer, per-batch augmentation
(20% of images flipped, 50% blurred with sigma ~ U(0, 0.5)), lecun init N(0, 1/in) (R0's
"Xavier"), batch 100, split (c), 4 cycles with n_s 2500 (40 epochs). Split (c) has no
validation part: the test set is measured once per epoch for the figure (cost, loss, accuracy
and learning rate per epoch), and nothing is chosen from it. Seeds 0, 1 and 2 by default
(--seeds): the row gives their mean ± std (ddof=1), results.json each seed's numbers.
"""
from __future__ import annotations

import argparse

from matplotlib.figure import Figure

from . import common, spec
from .improvements import describe, per_seed_text, points_text, seed_values, stats, with_seeds

NAME, SID, TITLE = "final_r0", "S6", "R0's final recipe on all 50,000 images"
REPORT = {"test": 0.5213}   # R0's final test accuracy (../shared/STUDIES.md, S6)


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--lam", type=common.non_negative_float, default=0.014,
                   help="L2 coefficient lambda")
    p.add_argument("--n-s", type=common.positive_int, default=2500,
                   help="CyclicLR step_size_up (updates per half cycle)")
    p.add_argument("--cycles", type=common.positive_int, default=4,
                   help="number of cycles (2 n_s updates each)")
    common.add_seeds_flag(p, what="run of the recipe")
    common.add_parallel_args(p)
    return p


def recipe(args, seed, updates_per_epoch):
    """R0's final recipe; split c has no validation images, so the test set gives the curves."""
    return spec.Spec(
        split="c", widths=[50, 30], lam=args.lam, optimizer="adagrad", dropout=0.1, flip=0.2,
        blur=0.5, init="lecun", n_s=common.QUICK_N_S if args.quick else args.n_s,
        cycles=args.cycles, seed=seed, measure_every=updates_per_epoch, test_curve=True,
        label=f"R0 final recipe, seed {seed}")


def plot_epochs(run, path, title):
    """Cost, loss, accuracy (train and test) and learning rate against the epoch."""
    h = run["history"]
    fig = Figure(figsize=(16, 3.8))
    axes = fig.subplots(1, 4)
    for ax, key in zip(axes, ("cost", "loss", "acc")):
        for part, color in (("train", "tab:blue"), ("test", "tab:orange")):
            ys = h["metrics"].get(f"{part}_{key}")
            if ys:
                ax.plot(h["epochs"], ys, color=color, marker=".", label=part)
        ax.set_title({"acc": "accuracy"}.get(key, key))
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    lr = h["lr"]
    per_epoch = h["steps"][0] / h["epochs"][0] if h["epochs"] and h["epochs"][0] else 1
    axes[3].plot([(i + 1) / per_epoch for i in range(len(lr))], lr, color="tab:green")
    axes[3].set_title("learning rate")
    axes[3].set_xlabel("epoch")
    axes[3].grid(alpha=0.3)
    fig.suptitle(title)
    return common.save_plot(fig, path)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    data = common.load_data(args, "c")
    per_epoch = -(-len(data.train[1]) // 100)
    variants = [recipe(args, seed, per_epoch) for seed in common.seed_list(args)]
    runs = spec.run_all(variants, args, args.workers, args.threads)
    train, test = seed_values(runs, "train_acc"), seed_values(runs)
    (tr, tr_sd), (te, te_sd) = stats(train), stats(test)
    rep = REPORT["test"]
    seeds = ", ".join(str(r["config"]["seed"]) for r in runs)
    setting = f"{describe(variants[0])} ({runs[0]['epochs']} epochs)"
    lines = [[r["config"]["seed"], common.pct(train[r["config"]["seed"]], digits=2),
              common.pct(test[r["config"]["seed"]], digits=2), f"{r['wall_time']:.0f}"]
             for r in runs]
    lines.append([f"mean ± std ({len(runs)} seeds)", common.pct(tr, tr_sd, 2),
                  common.pct(te, te_sd, 2), ""])
    table = (f"{setting}; accuracy in %, std with ddof=1. R0: test "
             f"{common.pct(rep, digits=2)}%; ours − R0: "
             f"{points_text(None if te is None else te - rep, te_sd)} points.\n\n"
             + common.markdown_table(["seed", "train", "test", "wall s"], lines))
    row = common.result_row(
        f"S6 R0 final recipe; ran {setting}, seeds {seeds}", {"train": tr, "test": te},
        {"test": rep}, std={"train": tr_sd, "test": te_sd},
        report_text=f"test {common.pct(rep, digits=2)}% (R0)")
    with_seeds(row, train=train, test=test)
    plots = [plot_epochs(runs[0], study.out / "final_r0_epochs.png",
                         f"R0's final recipe, seed {runs[0]['config']['seed']}")]
    return common.finish(study, table, [row], runs, plots, data,
                         summary=f"Test accuracy {common.pct(te, te_sd, 2)}% over seeds {seeds} "
                                 f"({per_seed_text(test)}; R0: {common.pct(rep, digits=2)}%)")


if __name__ == "__main__":
    common.run_cli(main)
