"""S6: architecture searches of the reports (R3's widths, R0's depths), wider nets they never tried.

    python -m experiments.architectures                        # every part, 2 one-thread workers
    python -m experiments.architectures --parts r3 r0_recipe

Parts:
  r3          R3's grid, 3-layer h1 in 50..100 x h2 in 35..50 (step 5), plus R3's 4-layer nets
              (95, 90, 75), (85, 35, 25), (95, 45, 40), at R3's best listed setting: constant
              eta 0.0349, lambda 1e-5, 10 epochs, batch 100, split b (R3: 51.0-52.4%, best
              (85, 35); 4-layer best (95, 90, 75) 52.54%).
  r0_s4       R0's depth family (3-layer 50-30 ... 9-layer 50-30-20-20-10-10-10-10) at S4's
              settings (SGD + cyclic, lambda 0.005, He, n_s 2250, 2 cycles, no dropout or
              augmentation), split b.
  r0_recipe   the same family at R0's own recipe (AdaGrad + cyclic, lambda 0.014, dropout 0.1,
              20% flips + 50% blur, lecun init, n_s 2250, 2 cycles), split b with 5,000 random
              val images as R0 (R0: 3-layer val 50.6%, 9-layer val 34.5%).
  wide        wider nets at S4's settings: 3-layer 100-100, 200-200, 500-500, 1000-1000 and
              4-layer 500-250-125.
"""
from __future__ import annotations

import argparse

import numpy as np
from matplotlib.figure import Figure

from . import common, spec

NAME, SID, TITLE = "architectures", "S6", "Architectures: R3's widths, R0's depths, wider nets"
R3_ETA, R3_LAM, R3_EPOCHS = 0.0349, 1e-5, 10
H1, H2 = list(range(50, 101, 5)), list(range(35, 51, 5))
R3_FOUR = {(95, 90, 75): 0.5254, (85, 35, 25): 0.5136, (95, 45, 40): 0.5217}
R0_REPORT = {3: ("val 50.6% (R0, its best, lambda 0.014)", 0.506),
             9: ("val 34.5% (R0)", 0.345)}
WIDE = [[100, 100], [200, 200], [500, 500], [1000, 1000], [500, 250, 125]]
PARTS = ["r3", "r0_s4", "r0_recipe", "wide"]


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS,
                   help="parts of the study to run")
    common.add_parallel_args(p)
    return p


def variants_of(args, part):
    quick = args.quick
    n_s = common.QUICK_N_S if quick else 2250
    seed = args.seed
    if part == "r3":
        h1s, h2s = (H1[:2], H2[:2]) if quick else (H1, H2)
        epochs = 2 if quick else R3_EPOCHS
        shapes = [[a, b] for a in h1s for b in h2s] + [list(k) for k in R3_FOUR][:1 if quick else 3]
        return [spec.Spec(widths=h, lam=R3_LAM, eta=R3_ETA, epochs=epochs, seed=seed,
                          label=f"R3 grid {'-'.join(map(str, h))}",
                          tags={"part": part, "hidden": h}) for h in shapes]
    if part in ("r0_s4", "r0_recipe"):
        depths = [3, 4] if quick else range(3, 10)
        own = part == "r0_recipe"
        extra = (dict(lam=0.014, optimizer="adagrad", dropout=0.1, flip=0.2, blur=0.5,
                      init="lecun", val_choice="random") if own else dict(lam=0.005))
        return [spec.Spec(widths="r0", depth=k, n_s=n_s, cycles=2, seed=seed,
                          label=f"R0 {k}-layer ({'R0 recipe' if own else 'S4 settings'})",
                          tags={"part": part, "layers": k}, **extra) for k in depths]
    if part == "wide":
        shapes = [[64, 64]] if quick else WIDE
        return [spec.Spec(widths=h, lam=0.005, n_s=n_s, cycles=2, seed=seed,
                          label=f"wide {'-'.join(map(str, h))} (S4 settings)",
                          tags={"part": part, "hidden": h}) for h in shapes]
    raise ValueError(part)


def test_of(run):
    return None if run["diverged"] else run["final"]["test_acc"]


def r3_tables(runs):
    grid = {tuple(r["config"]["tags"]["hidden"]): r for r in runs}
    h1s = sorted({h[0] for h in grid if len(h) == 2})
    h2s = sorted({h[1] for h in grid if len(h) == 2})
    lines = [[f"h1 {a}"] + [common.pct(test_of(grid[(a, b)]), digits=2) if (a, b) in grid else ""
                            for b in h2s] for a in h1s]
    three = {h: test_of(r) for h, r in grid.items() if len(h) == 2}
    best = max(three, key=lambda h: three[h] or 0) if three else None
    vals = [v for v in three.values() if v is not None]
    rows = []
    if vals:
        rows.append(common.result_row(
            f"R3 grid 3-layer h1 {h1s[0]}..{h1s[-1]} x h2 {h2s[0]}..{h2s[-1]} ({len(vals)} nets), "
            f"eta {R3_ETA:g}, lambda {R3_LAM:g}, {R3_EPOCHS} epochs",
            {"test": max(vals)}, {"test": 0.524},
            ours_text=f"test {100 * min(vals):.1f}-{100 * max(vals):.1f}%, best {best} "
                      f"{100 * three[best]:.2f}%, (85, 35) "
                      f"{common.pct(three.get((85, 35)), digits=2)}%",
            report_text="test 51.0-52.4%, best (85, 35) (R3)"))
    four_lines = []
    for h, rep in R3_FOUR.items():
        if h in grid:
            acc = test_of(grid[h])
            four_lines.append([", ".join(map(str, h)), common.pct(acc, digits=2),
                               f"{100 * rep:.2f}"])
            rows.append(common.result_row(f"R3 4-layer {h}, eta {R3_ETA:g}, lambda {R3_LAM:g}, "
                                          f"{R3_EPOCHS} epochs", {"test": acc}, {"test": rep},
                                          report_text=f"test {100 * rep:.2f}% (R3)"))
    table = (f"Part r3: R3's grid, test accuracy in %, constant eta {R3_ETA:g}, lambda "
             f"{R3_LAM:g}, {R3_EPOCHS} epochs, batch 100, BN, He, split b (R3: 51.0-52.4%, "
             f"best (85, 35)).\n\n"
             + common.markdown_table(["3-layer"] + [f"h2 {b}" for b in h2s], lines)
             + "\n\n" + common.markdown_table(["4-layer", "ours (test)", "R3 (test)"], four_lines))
    return table, rows, (h1s, h2s, grid)


def r0_table(runs, part):
    own = part == "r0_recipe"
    lines, rows = [], []
    for r in sorted(runs, key=lambda r: r["config"]["tags"]["layers"]):
        k = r["config"]["tags"]["layers"]
        f = r["final"]
        report_text, rep = R0_REPORT.get(k, ("—", None))
        lines.append([f"{k}-layer", "-".join(map(str, r["config"]["dims"][1:-1])),
                      common.pct(f.get("val_acc"), digits=2),
                      common.pct(f.get("test_acc"), digits=2),
                      report_text if own else "—"])
        rows.append(common.result_row(
            f"R0 depth family {k}-layer, {'R0 recipe' if own else 'S4 settings'}",
            {"val": f.get("val_acc"), "test": f.get("test_acc")},
            {"val": rep} if own and rep else None, report_text=report_text if own else "—",
            compare="val" if own and rep else None))
    what = ("R0's recipe: AdaGrad + cyclic, lambda 0.014, dropout 0.1, flip 20% + blur 50%, lecun "
            "init, n_s 2250, 2 cycles" if own else
            "S4 settings: SGD + cyclic, lambda 0.005, He, n_s 2250, 2 cycles")
    table = (f"Part {part}: R0's depth family, {what}, split b; accuracy in %.\n\n"
             + common.markdown_table(["network", "hidden", "val", "test", "report"], lines))
    return table, rows


def wide_table(runs):
    lines, rows = [], []
    for r in runs:
        h = r["config"]["tags"]["hidden"]
        dims = r["config"]["dims"]
        f = r["final"]
        lines.append(["-".join(map(str, h)),
                      f"{sum(a * b for a, b in zip(dims[:-1], dims[1:])) / 1e6:.2f}",
                      common.pct(f.get("train_acc"), digits=2),
                      common.pct(f.get("val_acc"), digits=2),
                      common.pct(f.get("test_acc"), digits=2), f"{r['wall_time']:.0f}"])
        rows.append(common.result_row(f"wider net {'-'.join(map(str, h))}, S4 settings",
                                      {k: f.get(f"{k}_acc") for k in ("train", "val", "test")},
                                      None, report_text="— (not tried by the reports)"))
    table = ("Part wide: wider nets at S4's settings (SGD + cyclic 1e-5..1e-1, lambda 0.005, n_s "
             "2250, 2 cycles, He, BN, batch 100, split b); accuracy in %.\n\n"
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
    ax.set_title("R3's 3-layer grid (ours)")
    return common.save_plot(fig, path)


def plot_depth(parts, path):
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for part, runs in parts.items():
        runs = sorted(runs, key=lambda r: r["config"]["tags"]["layers"])
        ks = [r["config"]["tags"]["layers"] for r in runs]
        ax.plot(ks, [100 * (r["final"].get("val_acc") or np.nan) for r in runs], marker="o",
                label={"r0_s4": "S4 settings", "r0_recipe": "R0's recipe"}[part] + " (val)")
    ax.scatter(list(R0_REPORT), [100 * v[1] for v in R0_REPORT.values()], marker="x",
               color="black", label="R0 (val)", zorder=3)
    ax.set_xlabel("layers")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("R0's depth family")
    ax.legend()
    ax.grid(alpha=0.3)
    return common.save_plot(fig, path)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    tables, rows, plots, runs = [], [], [], []
    depth = {}
    # R0's own recipe draws its 5,000 validation images at random (val_choice), as R0 did
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
