"""S6: architecture searches of the reports (R3's widths, R0's depths), wider nets they never tried.

    python -m experiments.architectures                        # every part, 2 one-thread workers
    python -m experiments.architectures --parts r3 r0_recipe

A row compared with a report's number runs with --seeds seeds (0, 1, 2 by default) and gives
mean ± std (ddof=1); the grid, the depth sweeps and the wide nets run one seed (--seed) each.

Parts:
  r3          R3's architecture search at the (eta, lambda) R3 states for it, (0.0129, 1e-4)
              (its figure captions, for the 4-layer nets; R3 does not state the 3-layer grid's,
              and we run the grid at the same setting), SGD with a constant lr for 10 epochs,
              batch 100, BN, He, split b: the 3-layer grid h1 in 50..100 x h2 in 35..50 (step 5)
              and R3's 4-layer nets (95, 90, 75), (85, 35, 25), (95, 45, 40).
  r0_s4       R0's depth family (3-layer 50-30 ... 9-layer 50-30-20-20-10-10-10-10) at S4's
              settings (SGD + cyclic, lambda 0.005, He, n_s 2250, 2 cycles), split b.
  r0_recipe   the same family at R0's own recipe (AdaGrad + cyclic, lambda 0.014, dropout 0.1,
              20% flips + 50% blur, lecun init, n_s 2250, 2 cycles), split b with 5,000 random
              val images as R0; and R0's two reported trials at their own lambda: the 3-layer at
              0.014 (R0's best) and the 9-layer at 0.081 (R0's trial 16).
  wide        wider nets at S4's settings: 3-layer 100-100, 200-200, 500-500, 1000-1000 and
              4-layer 500-250-125.
"""
from __future__ import annotations

import argparse

import numpy as np
from matplotlib.figure import Figure

from . import common, spec
from .improvements import (
    describe,
    per_seed_text,
    points_text,
    seed_values,
    spec_of,
    stats,
    with_seeds,
)

NAME, SID, TITLE = "architectures", "S6", "Architectures: R3's widths, R0's depths, wider nets"

# Every number of the reports this study uses (../shared/STUDIES.md, S6), and nowhere else.
REPORT = {
    "r3_setting": (0.0129, 1e-4),   # (eta, lambda) of R3's architecture search
    "r3_epochs": 10,
    # R3's 3-layer grid: h1 and h2 ranges (step 5) and the range of its test accuracies
    "r3_grid": {"h1": (50, 100), "h2": (35, 50), "step": 5, "test": (0.510, 0.524),
                "best": (85, 35)},
    "r3_four": {(95, 90, 75): 0.5254, (85, 35, 25): 0.5136, (95, 45, 40): 0.5217},  # test
    # R0's trials: layers -> (lambda, val accuracy, which trial)
    "r0_trials": {3: (0.014, 0.506, "R0's best of ~20 TPE trials"),
                  9: (0.081, 0.345, "R0's trial 16")},
}
R0_LAM = REPORT["r0_trials"][3][0]   # R0's recipe's lambda, its best
_GRID = REPORT["r3_grid"]
H1 = list(range(_GRID["h1"][0], _GRID["h1"][1] + 1, _GRID["step"]))
H2 = list(range(_GRID["h2"][0], _GRID["h2"][1] + 1, _GRID["step"]))
WIDE = [[100, 100], [200, 200], [500, 500], [1000, 1000], [500, 250, 125]]
PARTS = ["r3", "r0_s4", "r0_recipe", "wide"]
R0_RECIPE = dict(optimizer="adagrad", dropout=0.1, flip=0.2, blur=0.5, init="lecun",
                 val_choice="random")


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS,
                   help="parts of the study to run")
    common.add_seeds_flag(p, what="row compared with a report's number")
    common.add_parallel_args(p)
    return p


def _name(h) -> str:
    return "-".join(map(str, h))


def variants_of(args, part):
    """The Specs of one part; every Spec once (a sweep's seed-0 run that a 3-seed row also
    needs is the same run)."""
    quick = args.quick
    n_s = common.QUICK_N_S if quick else 2250
    seeds = common.seed_list(args)
    if part == "r3":
        eta, lam = REPORT["r3_setting"]
        epochs = 2 if quick else REPORT["r3_epochs"]
        h1s, h2s = (H1[:2], H2[:2]) if quick else (H1, H2)
        grid = [spec.Spec(widths=[a, b], lam=lam, eta=eta, epochs=epochs, seed=args.seed,
                          label=f"R3 grid {a}-{b}, seed {args.seed}",
                          tags={"part": part, "kind": "grid", "hidden": [a, b]})
                for a in h1s for b in h2s]
        four = [spec.Spec(widths=list(h), lam=lam, eta=eta, epochs=epochs, seed=seed,
                          label=f"R3 4-layer {_name(h)}, seed {seed}",
                          tags={"part": part, "kind": "four", "hidden": list(h)})
                for h in list(REPORT["r3_four"])[:1 if quick else None] for seed in seeds]
        return grid + four
    if part == "r0_s4":
        depths = [3, 4] if quick else range(3, 10)
        return [spec.Spec(widths="r0", depth=k, lam=0.005, n_s=n_s, cycles=2, seed=args.seed,
                          label=f"R0 {k}-layer (S4 settings), seed {args.seed}",
                          tags={"part": part, "layers": k, "lam": 0.005}) for k in depths]
    if part == "r0_recipe":
        depths = [3, 4] if quick else range(3, 10)
        runs = {(k, R0_LAM, args.seed) for k in depths}
        runs |= {(k, lam, seed) for k, (lam, _, _) in REPORT["r0_trials"].items()
                 for seed in seeds}
        return [spec.Spec(widths="r0", depth=k, lam=lam, n_s=n_s, cycles=2, seed=seed,
                          label=f"R0 {k}-layer (R0 recipe, lambda {lam:g}), seed {seed}",
                          tags={"part": part, "layers": k, "lam": lam}, **R0_RECIPE)
                for k, lam, seed in sorted(runs)]
    if part == "wide":
        shapes = [[64, 64]] if quick else WIDE
        return [spec.Spec(widths=h, lam=0.005, n_s=n_s, cycles=2, seed=args.seed,
                          label=f"wide {_name(h)} (S4 settings), seed {args.seed}",
                          tags={"part": part, "hidden": h}) for h in shapes]
    raise ValueError(f"variants_of: unknown part {part!r}; known: {PARTS}")


def test_of(run):
    return None if run["diverged"] else run["final"]["test_acc"]


def _seeds(group) -> str:
    seeds = sorted(r["config"]["seed"] for r in group)
    return f"{len(seeds)} seed{'s' * (len(seeds) > 1)} ({', '.join(map(str, seeds))})"


def r3_tables(runs):
    grid = {tuple(r["config"]["tags"]["hidden"]): r for r in runs
            if r["config"]["tags"]["kind"] == "grid"}
    four = {}
    for r in runs:
        if r["config"]["tags"]["kind"] == "four":
            four.setdefault(tuple(r["config"]["tags"]["hidden"]), []).append(r)
    h1s = sorted({h[0] for h in grid})
    h2s = sorted({h[1] for h in grid})
    lines = [[f"h1 {a}"] + [common.pct(test_of(grid[(a, b)]), digits=2) if (a, b) in grid else ""
                            for b in h2s] for a in h1s]
    three = {h: test_of(r) for h, r in grid.items()}
    vals = [v for v in three.values() if v is not None]
    rows, tables = [], []
    rep = REPORT["r3_grid"]
    rep_best = tuple(rep["best"])
    rep_text = f"test {common.pct(rep['test'][0])}-{common.pct(rep['test'][1])}%, best {rep_best}"
    if grid:
        first = spec_of(next(iter(grid.values())))
        seed = first.seed
        if vals:
            best = max((h for h in three if three[h] is not None), key=three.get)
            rows.append(common.result_row(
                f"S6 R3 grid 3-layer h1 {h1s[0]}..{h1s[-1]} x h2 {h2s[0]}..{h2s[-1]} "
                f"({len(grid)} nets, one seed ({seed}) each: a grid); ran "
                f"{describe(first, widths=False)}",
                {"test": max(vals)}, {"test": rep["test"][1]},
                ours_text=f"test {100 * min(vals):.1f}-{100 * max(vals):.1f}%, best {best} "
                          f"{common.pct(three[best], digits=2)}%" + (
                              f", {rep_best} {common.pct(three[rep_best], digits=2)}%"
                              if three.get(rep_best) is not None else ""),
                report_text=f"{rep_text} (R3)",
                note="the best of a grid of single runs against R3's best: both picked for "
                     "doing well"))
        tables.append(
            f"Part r3: R3's 3-layer grid, one seed ({seed}) per net (a grid), test accuracy "
            f"in %; {describe(first, widths=False)} "
            f"(R3's architecture-search setting; R3: {rep_text}).\n\n"
            + common.markdown_table(["3-layer"] + [f"h2 {b}" for b in h2s], lines))
    if four:
        four_lines = []
        for h, group in four.items():
            test = seed_values(group)
            t, t_sd = stats(test)
            r3 = REPORT["r3_four"][h]
            four_lines.append([", ".join(map(str, h)), common.pct(t, t_sd, 2),
                               per_seed_text(test), common.pct(r3, digits=2),
                               points_text(None if t is None else t - r3)])
            row = common.result_row(
                f"S6 R3 4-layer {h}; ran {describe(spec_of(group[0]))} ({_seeds(group)})",
                {"test": t}, {"test": r3}, std={"test": t_sd},
                report_text=f"test {common.pct(r3, digits=2)}% (R3)")
            rows.append(with_seeds(row, test=test))
        group = next(iter(four.values()))
        tables.append(
            f"R3's 4-layer nets, {_seeds(group)} each, test accuracy in %, mean ± std "
            f"(ddof=1); {describe(spec_of(group[0]), widths=False)}.\n\n"
            + common.markdown_table(["4-layer", "ours (test)", "ours per seed", "R3 (test)",
                                     "ours − R3"], four_lines))
    return "\n\n".join(tables), rows, (h1s, h2s, grid)


def r0_table(runs, part):
    """The depth sweep (one seed per depth) and, for R0's recipe, R0's two trials with
    their seeds."""
    own = part == "r0_recipe"
    sweep_seed = min(r["config"]["seed"] for r in runs)
    lam0 = R0_LAM if own else 0.005
    sweep = sorted((r for r in runs if r["config"]["seed"] == sweep_seed
                    and r["config"]["tags"]["lam"] == lam0),
                   key=lambda r: r["config"]["tags"]["layers"])
    lines, rows = [], []
    for r in sweep:
        k, f = r["config"]["tags"]["layers"], r["final"]
        lines.append([f"{k}-layer", _name(r["config"]["dims"][1:-1]),
                      common.pct(f.get("val_acc"), digits=2),
                      common.pct(f.get("test_acc"), digits=2)])
        rows.append(common.result_row(
            f"S6 R0 depth family {k}-layer, {'R0 recipe' if own else 'S4 settings'}, lambda "
            f"{lam0:g}, one seed ({sweep_seed}): a sweep; ran {describe(spec_of(r))}",
            {"val": f.get("val_acc"), "test": f.get("test_acc")}, None, report_text="—"))
    what = describe(spec_of(sweep[0])).split(", ", 1)[1] if sweep else ""  # depths vary
    table = (f"Part {part}: R0's depth family, one seed ({sweep_seed}) per depth (a sweep); "
             f"{what}; accuracy in %.\n\n"
             + common.markdown_table(["network", "hidden", "val", "test"], lines))
    if own:
        trial_lines = []
        for k, (lam, rep, which) in REPORT["r0_trials"].items():
            group = [r for r in runs if r["config"]["tags"]["layers"] == k
                     and r["config"]["tags"]["lam"] == lam]
            if not group:
                continue
            val, test = seed_values(group, "val_acc"), seed_values(group)
            (v, v_sd), (t, t_sd) = stats(val), stats(test)
            trial_lines.append([f"{k}-layer", f"{lam:g}", common.pct(v, v_sd, 2),
                                per_seed_text(val), common.pct(t, t_sd, 2),
                                f"{common.pct(rep, digits=1)} ({which})",
                                points_text(None if v is None else v - rep)])
            row = common.result_row(
                f"S6 R0 {k}-layer, R0 recipe at lambda {lam:g} ({which}); ran "
                f"{describe(spec_of(group[0]))} ({_seeds(group)})",
                {"val": v, "test": t}, {"val": rep}, std={"val": v_sd, "test": t_sd},
                report_text=f"val {common.pct(rep, digits=1)}% ({which}, lambda {lam:g})",
                compare="val")
            rows.append(with_seeds(row, val=val, test=test))
        if trial_lines:
            group = [r for r in runs if r["config"]["tags"]["layers"] == 3
                     and r["config"]["tags"]["lam"] == R0_LAM]
            table += (f"\n\nR0's two reported trials at their own lambda, {_seeds(group)} each "
                      f"(R0's numbers are validation accuracy, on 5,000 random images; ours "
                      f"too), mean ± std (ddof=1).\n\n"
                      + common.markdown_table(["network", "lambda", "val", "val per seed",
                                               "test", "R0 (val)", "ours − R0 (val)"],
                                              trial_lines))
    return table, rows


def wide_table(runs):
    lines, rows = [], []
    for r in runs:
        h = r["config"]["tags"]["hidden"]
        dims = r["config"]["dims"]
        f = r["final"]
        lines.append([_name(h), f"{sum(a * b for a, b in zip(dims[:-1], dims[1:])) / 1e6:.2f}",
                      common.pct(f.get("train_acc"), digits=2),
                      common.pct(f.get("val_acc"), digits=2),
                      common.pct(f.get("test_acc"), digits=2), f"{r['wall_time']:.0f}"])
        rows.append(common.result_row(
            f"S6 wider net {_name(h)}, S4 settings, one seed ({r['config']['seed']}); ran "
            f"{describe(spec_of(r))}",
            {k: f.get(f"{k}_acc") for k in ("train", "val", "test")}, None,
            report_text="— (not tried by the reports)"))
    what = describe(spec_of(runs[0])).split(", ", 1)[1]  # the nets vary
    table = (f"Part wide: wider nets at S4's settings, one seed ({runs[0]['config']['seed']}) "
             f"each; {what}; accuracy in %.\n\n"
             + common.markdown_table(["hidden", "M weights", "train", "val", "test", "wall s"],
                                     lines))
    return table, rows


def plot_grid(h1s, h2s, grid, path):
    z = np.array([[100 * (test_of(grid[(a, b)]) or np.nan) if (a, b) in grid else np.nan
                   for b in h2s] for a in h1s])
    fig = Figure(figsize=(5, 6))
    ax = fig.subplots()
    im = ax.imshow(z, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(h2s)), h2s)
    ax.set_yticks(range(len(h1s)), h1s)
    ax.set_xlabel("h2")
    ax.set_ylabel("h1")
    for i in range(len(h1s)):
        for j in range(len(h2s)):
            if np.isfinite(z[i, j]):
                ax.text(j, i, f"{z[i, j]:.1f}", ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(im, ax=ax, label="test accuracy (%)")
    ax.set_title("R3's 3-layer grid (ours, one seed)")
    return common.save_plot(fig, path)


def plot_depth(parts, path):
    """Validation accuracy against depth: each sweep (one seed), R0's trials (x) and ours at
    R0's trials' lambda (mean ± std over the seeds)."""
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for part, runs in parts.items():
        seed = min(r["config"]["seed"] for r in runs)
        lam0 = R0_LAM if part == "r0_recipe" else 0.005
        sweep = sorted((r for r in runs if r["config"]["seed"] == seed
                        and r["config"]["tags"]["lam"] == lam0),
                       key=lambda r: r["config"]["tags"]["layers"])
        ax.plot([r["config"]["tags"]["layers"] for r in sweep],
                [100 * (r["final"].get("val_acc") or np.nan) for r in sweep], marker="o",
                label={"r0_s4": "S4 settings", "r0_recipe": "R0's recipe"}[part]
                + f" (val, seed {seed}, lambda {lam0:g})")
        if part == "r0_recipe":
            for k, (lam, _, _) in REPORT["r0_trials"].items():
                group = [r for r in runs if r["config"]["tags"]["layers"] == k
                         and r["config"]["tags"]["lam"] == lam]
                if group:
                    m, s = stats(seed_values(group, "val_acc"))
                    ax.errorbar([k + 0.1], [100 * (m if m is not None else np.nan)],
                                yerr=[100 * (s or 0.0)], fmt="s", color="tab:red", capsize=3,
                                label="R0's recipe at R0's trial's lambda (mean ± std)"
                                if k == 3 else None)
    trials = REPORT["r0_trials"]
    ax.scatter(list(trials), [100 * v[1] for v in trials.values()], marker="x", color="black",
               label="R0 (val)", zorder=3)
    ax.set_xlabel("layers")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("R0's depth family")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return common.save_plot(fig, path)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    tables, rows, plots = [], [], []
    depth = {}
    variants = [v for part in args.parts for v in variants_of(args, part)]
    runs = spec.run_all(variants, args, args.workers, args.threads)
    by_part = {}
    for r in runs:
        by_part.setdefault(r["config"]["tags"]["part"], []).append(r)
    for part in PARTS:
        if part not in by_part:
            continue
        if part == "r3":
            table, part_rows, grid = r3_tables(by_part[part])
            plots.append(plot_grid(*grid, study.out / "r3_grid.png"))
        elif part == "wide":
            table, part_rows = wide_table(by_part[part])
        else:
            table, part_rows = r0_table(by_part[part], part)
            depth[part] = by_part[part]
        tables.append(table)
        rows += part_rows
    if depth:
        plots.append(plot_depth(depth, study.out / "r0_depth.png"))
    return common.finish(study, "\n\n".join(tables), rows, runs, plots, None)


if __name__ == "__main__":
    common.run_cli(main)
