"""S6: each change the reports tried, one at a time, against a baseline run with the same seeds.

    python -m experiments.improvements                    # both parts, 2 one-thread workers
    python -m experiments.improvements --part s4          # only the S4-settings part

Every configuration runs with the same seeds (--seed onwards, --seeds of them: 0, 1, 2 by
default), so a change is compared with its baseline seed by seed: the tables give each
configuration's mean ± std (ddof=1) and the change's effect as the mean ± std of its per-seed
differences from the baseline; results.json keeps every seed's numbers.

Part s4: the baseline is S4's 3-layer 50-50 BN run (split b, lambda 0.005, SGD + cyclic
1e-5..1e-1, n_s 2250, 2 cycles, He init, batch 100); each change (CHANGES) replaces one thing.
Part r3: R3's own settings, SGD with a constant learning rate for 10 epochs (REPORT):
  - R3's changes (batch norm after the activation, Gaussian noise, Leaky ReLU, ELU), each at
    the three (eta, lambda) settings R3 tried it at, beside our baseline at the same setting
    and R3's number (split b: R3 does not state the split of these runs);
  - R3's random-search top three, retrained at their own (eta, lambda) on the whole training
    set (split c, 50,000 images), beside R3's retrained test accuracies.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from matplotlib.figure import Figure

from . import common, spec

NAME, SID, TITLE = "improvements", "S6", "Improvements of the reports, one change at a time"
SEEDS = 3   # seeds per configuration (--seeds)

# Every number of the reports this study uses (../shared/STUDIES.md, S6), and nowhere else.
REPORT = {
    # the three (eta, lambda) R3 tried each change at; the activations' third at lambda 1e-4
    "r3_settings": ((0.0349, 1e-5), (0.0080, 1e-6), (0.0129, 1e-5)),
    "r3_activation_lam3": 1e-4,
    "r3_epochs": 10,
    # R3's test accuracy of each change at those settings (R3 gives no baseline at them)
    "r3_changes": {"bn_after": (0.433, 0.392, 0.438), "noise": (0.497, 0.513, 0.443),
                   "leaky_relu": (0.4833, 0.4743, 0.4232), "elu": (0.4839, 0.4335, 0.4779)},
    # R3's random-search top three, (eta, lambda) and the test accuracy of each retrained for
    # 10 epochs on the whole training set
    "r3_top3": (((0.0316, 1.55e-4), 0.5086), ((0.0139, 1.06e-6), 0.5069),
                ((0.00654, 6.43e-4), 0.5086)),
}
R3_ETA = REPORT["r3_settings"][0][0]   # the constant learning rate tried at S4's settings
S4_UPDATES = 2 * 2250 * 2              # S4's schedule: 2 cycles of n_s 2250
S4_EPOCHS = S4_UPDATES // 450          # a constant rate for the same updates (450 an epoch)

# key -> (what the change is and whose it is, Spec overrides of the baseline)
CHANGES = {
    "baseline": ("baseline: BN before ReLU, He init", {}),
    "bn_after": ("batch norm after the activation (R3)", {"bn_position": "after"}),
    "dropout": ("dropout 0.1 after each hidden layer (R0's keep 0.9)", {"dropout": 0.1}),
    "flip20": ("flip 20% of images (R0)", {"flip": 0.2}),
    "blur": ("blur 50%, sigma ~ U(0, 0.5) (R0)", {"blur": 0.5}),
    "noise": ("Gaussian noise, 0.1 × batch std (our choice; R3 gives no fraction)",
              {"noise": 0.1}),
    "translate": ("translation ±2 px (ours)", {"shift": 2}),
    "jitter": ("brightness/contrast jitter 0.2 (ours)", {"jitter": 0.2}),
    "adagrad": ("AdaGrad instead of SGD, same cyclic lr (R0)", {"optimizer": "adagrad"}),
    "leaky_relu": ("Leaky ReLU, a = 0.01 (R3)", {"activation": "leaky_relu",
                                                  "negative_slope": 0.01}),
    "elu": ("ELU, a = 0.01 (R3)", {"activation": "elu", "alpha": 0.01}),
    "lecun": ("lecun init N(0, 1/in) (R0's \"Xavier\")", {"init": "lecun"}),
    "constant_lr": (f"constant lr {R3_ETA:g} (R3's) instead of cyclic, the same "
                    f"{S4_UPDATES} updates", {"eta": R3_ETA, "epochs": S4_EPOCHS}),
}
R3_CHANGES = ["bn_after", "noise", "leaky_relu", "elu"]
R0_ONLY = ("dropout", "flip20", "blur", "adagrad", "lecun")  # R0 gives no number for these alone


# ---------------------------------------------------------------------------------------------
# Statistics over seeds (common.mean_std and common.paired_delta)
# ---------------------------------------------------------------------------------------------

def seed_values(runs, key="test_acc") -> dict:
    """{seed: final[key]} of runs, None for a run that diverged (or has no such number)."""
    return {r["config"]["seed"]: (None if r["diverged"] else r["final"].get(key)) for r in runs}


def stats(values_by_seed: dict):
    """(mean, std) over the seeds with a number; (None, None) if none has one."""
    values = [v for v in values_by_seed.values() if v is not None]
    return common.mean_std(values) if values else (None, None)


def paired(a_by_seed: dict, b_by_seed: dict):
    """paired_delta over the seeds where both arms have a number; (None, None) if none."""
    if set(a_by_seed) != set(b_by_seed):
        raise ValueError(f"paired: the two arms ran different seeds: {sorted(a_by_seed)} and "
                         f"{sorted(b_by_seed)}")
    both = [s for s in a_by_seed if a_by_seed[s] is not None and b_by_seed[s] is not None]
    if not both:
        return None, None
    return common.paired_delta({s: a_by_seed[s] for s in both},
                               {s: b_by_seed[s] for s in both})


def with_seeds(row: dict, **values_by_seed) -> dict:
    """row with the per-seed numbers behind its mean ± std, as common.result_row keeps them
    (branch course22): per_seed {split: {seed: fraction}} (a diverged run left out) and seeds
    (every seed that ran)."""
    row["per_seed"] = {k: {s: v for s, v in d.items() if v is not None}
                       for k, d in values_by_seed.items()}
    row["seeds"] = sorted({s for d in values_by_seed.values() for s in d})
    return row


def points_text(delta, std=None) -> str:
    """A difference of fractions in percentage points: '+0.42 ± 0.31'; '—' for None."""
    if delta is None:
        return "—"
    return f"{100 * delta:+.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def per_seed_text(values_by_seed: dict) -> str:
    """Per-seed percentages: '53.10 / 52.88 / 53.41' (seeds in order; 'diverged' for None)."""
    return " / ".join("diverged" if values_by_seed[s] is None
                      else f"{100 * values_by_seed[s]:.2f}" for s in sorted(values_by_seed))


# ---------------------------------------------------------------------------------------------
# What a run ran, in words
# ---------------------------------------------------------------------------------------------

_ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "Leaky ReLU", "elu": "ELU", "tanh": "tanh",
                "sigmoid": "sigmoid"}
_OPTIMIZERS = {"sgd": "SGD", "adagrad": "AdaGrad", "adam": "Adam", "rmsprop": "RMSprop",
               "adamw": "AdamW"}


def describe(s: spec.Spec, widths: bool = True, eta_lam: bool = True) -> str:
    """What a Spec trains, in words: network, init, optimizer and schedule, lambda, batch,
    augmentation and data split (a row's label says what it ran from this). widths=False
    leaves out the layers' widths, eta_lam=False a constant eta and lambda (for a table whose
    rows give them)."""
    hidden = s.hidden()
    act = _ACTIVATIONS[s.activation] + {"leaky_relu": f" (a {s.negative_slope:g})",
                                        "elu": f" (a {s.alpha:g})"}.get(s.activation, "")
    init = {"he": "He init", "lecun": "lecun init N(0, 1/in)", "xavier": "Xavier init"}.get(
        s.init) or f"init N(0, {s.init_std:g}²)"
    net = [f"{len(hidden) + 1}-layer" + (f" {'-'.join(map(str, hidden))}" if widths else ""),
           f"BN {s.bn_position} {act}" if s.batch_norm else f"no BN, {act}", init]
    if s.dropout:
        net.append(f"dropout {s.dropout:g}")
    opt = _OPTIMIZERS[s.optimizer] + (f" momentum {s.momentum:g}" if s.momentum else "")
    kind = s.kind()
    if kind == "constant":
        sched = f"constant lr {s.eta:g} for {s.epochs} epochs" if eta_lam else \
            f"constant lr (each row's eta) for {s.epochs} epochs"
    elif kind == "cyclic":
        sched = f"cyclic lr {s.eta_min:g}..{s.eta_max:g}, n_s {s.n_s}, {s.cycles} cycles"
    else:
        sched = f"{kind} lr peaking at {s.eta_max:g}, {s.epochs} epochs"
    train = [f"{opt} {sched}", f"lambda {s.lam:g}" if eta_lam else "each row's lambda",
             f"batch {s.batch_size}"]
    augment = [text for on, text in (
        (s.flip, f"flip {100 * s.flip:g}%"),
        (s.blur, f"blur {100 * s.blur:g}% (sigma ~ U(0, {s.blur_sigma:g}))"),
        (s.noise, f"noise {s.noise:g} × batch std"), (s.shift, f"shift ±{s.shift} px"),
        (s.jitter, f"jitter {s.jitter:g}")) if on]
    split = {"a": "split a (10,000 / 10,000)",
             "b": f"split b ({s.n_val:,} {s.val_choice} val images)",
             "c": "split c (all 50,000, no val)"}[s.split]
    return ", ".join(net + train + augment + [split])


def differences(s: spec.Spec, base: spec.Spec) -> str:
    """The training options in which s differs from base, as 'name=value'."""
    a, b = dataclasses.asdict(s), dataclasses.asdict(base)
    return ", ".join(f"{k}={a[k]!r}" for k in spec.OPTIONS
                     if k != "seed" and a[k] != b[k]) or "—"


# ---------------------------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser(NAME, __doc__.split("\n")[0])
    p.add_argument("--part", choices=["s4", "r3", "both"], default="both",
                   help="s4: each change at S4's settings; r3: R3's settings; both")
    p.add_argument("--changes", nargs="+", choices=list(CHANGES), default=list(CHANGES),
                   help="changes of part s4 (the baseline always runs)")
    common.add_seeds_flag(p, default=SEEDS, what="configuration")
    common.add_parallel_args(p)
    return p


def s4_variants(args):
    """Part s4: the baseline and each change, every one with the same seeds."""
    n_s = common.QUICK_N_S if args.quick else 2250
    keys = ["baseline"] + [k for k in args.changes if k != "baseline"]
    out = []
    for key in keys:
        desc, over = CHANGES[key]
        if args.quick and "epochs" in over:
            over = {**over, "epochs": 2}
        for seed in common.seed_list(args):
            out.append(spec.Spec(lam=0.005, n_s=n_s, cycles=2, seed=seed,
                                 label=f"S4 settings: {desc}, seed {seed}",
                                 tags={"part": "s4", "change": key}, **over))
    return out


def r3_settings(change):
    """R3's three (eta, lambda) settings of a change (activations: lambda 1e-4 in the third)."""
    settings = list(REPORT["r3_settings"])
    if change in ("leaky_relu", "elu"):
        settings[2] = (settings[2][0], REPORT["r3_activation_lam3"])
    return settings


def baseline_settings():
    """Every (eta, lambda) one of R3's changes ran at: our baseline runs at each."""
    return list(dict.fromkeys(st for key in R3_CHANGES for st in r3_settings(key)))


def r3_variants(args):
    """Part r3: our baseline at every setting of R3's changes, each change at its three, and
    R3's random-search top three on split c; constant lr, the same seeds everywhere."""
    epochs = 2 if args.quick else REPORT["r3_epochs"]
    cells = [("baseline", i, st) for i, st in enumerate(baseline_settings())]
    cells += [(key, i, st) for key in R3_CHANGES for i, st in enumerate(r3_settings(key))]
    out = []
    for key, i, (eta, lam) in cells:
        desc, over = CHANGES[key]
        for seed in common.seed_list(args):
            out.append(spec.Spec(
                lam=lam, eta=eta, epochs=epochs, seed=seed,
                label=f"R3 (eta {eta:g}, lambda {lam:g}): {desc}, seed {seed}",
                tags={"part": "r3", "change": key, "setting": i, "eta": eta, "lam": lam},
                **over))
    for i, ((eta, lam), _) in enumerate(REPORT["r3_top3"]):
        for seed in common.seed_list(args):
            out.append(spec.Spec(
                split="c", lam=lam, eta=eta, epochs=epochs, seed=seed,
                label=f"R3 random-search #{i + 1} (eta {eta:g}, lambda {lam:g}) retrained, "
                      f"seed {seed}",
                tags={"part": "r3_top3", "rank": i + 1, "eta": eta, "lam": lam}))
    return out


def spec_of(run) -> spec.Spec:
    """The Spec a run ran (from its stored config)."""
    config = {k: v for k, v in run["config"].items() if k != "dims"}
    return spec.Spec.of(config)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def _groups(runs, key):
    out = {}
    for r in runs:
        out.setdefault(key(r["config"]["tags"]), []).append(r)
    return out


def _seed_note(group) -> str:
    n = len(group)
    seeds = ", ".join(str(s) for s in sorted(r["config"]["seed"] for r in group))
    return f"{n} seed{'s' * (n > 1)} ({seeds})"


def s4_table(args, runs):
    """Part s4's table and rows; deltas: {change: (mean, std) of the paired differences}."""
    groups = _groups(runs, lambda t: t["change"])
    base_runs = groups["baseline"]
    base_spec = spec_of(base_runs[0])
    base_test = seed_values(base_runs)
    lines, rows, deltas = [], [], {}
    for key, group in groups.items():
        test, val = seed_values(group), seed_values(group, "val_acc")
        (t, t_sd), (v, v_sd) = stats(test), stats(val)
        d, d_sd = (None, None) if key == "baseline" else paired(test, base_test)
        deltas[key] = (d, d_sd)
        desc = CHANGES[key][0]
        ran = spec_of(group[0])
        lines.append([desc, differences(ran, base_spec) if key != "baseline" else "—",
                      common.pct(v, v_sd, 2), common.pct(t, t_sd, 2),
                      "—" if key == "baseline" else points_text(d, d_sd), per_seed_text(test)])
        row = common.result_row(
            f"S6 S4 settings: {desc}; ran {describe(ran)} ({_seed_note(group)})",
            {"val": v, "test": t}, None, std={"val": v_sd, "test": t_sd},
            report_text=("R0 used it without an isolated number" if key in R0_ONLY else "—"),
            note=None if key == "baseline" else
            f"{points_text(d, d_sd)} points of test accuracy vs the baseline, paired over "
            f"{_seed_note(group)}")
        row["paired"] = (None if key == "baseline" else
                         {"against": "baseline", "mean": d, "std": d_sd})
        rows.append(with_seeds(row, test=test, val=val))
    table = (f"Part s4: each change alone against the baseline, every configuration run with "
             f"the same {_seed_note(base_runs)}; accuracy in %, mean ± std (ddof=1); the change's "
             f"effect is the mean ± std of its per-seed test differences from the baseline. "
             f"Baseline: {describe(base_spec)}.\n\n"
             + common.markdown_table(["change", "differs from the baseline in", "val", "test",
                                      "test − baseline (paired)", "test per seed"], lines))
    return table, rows, deltas


def r3_table(args, runs):
    """Part r3's two tables (R3's changes at their settings; R3's retrained top three) and
    their rows."""
    cells = _groups([r for r in runs if r["config"]["tags"]["part"] == "r3"],
                    lambda t: (t["change"], t["eta"], t["lam"]))
    lines, rows = [], []
    for (eta, lam) in baseline_settings():
        base = cells[("baseline", eta, lam)]
        base_test = seed_values(base)
        b, b_sd = stats(base_test)
        ran = spec_of(base[0])
        lines.append([CHANGES["baseline"][0], f"{eta:g}", f"{lam:g}", common.pct(b, b_sd, 2),
                      "—", "— (none given)", "—"])
        row = common.result_row(
            f"S6 R3 settings (eta {eta:g}, lambda {lam:g}): {CHANGES['baseline'][0]}; ran "
            f"{describe(ran)} ({_seed_note(base)})", {"test": b}, None, std={"test": b_sd},
            report_text="— (R3 gives no baseline at this setting)")
        rows.append(with_seeds(row, test=base_test))
        for key in R3_CHANGES:
            settings = r3_settings(key)
            if (eta, lam) not in settings:
                continue
            group = cells[(key, eta, lam)]
            test = seed_values(group)
            t, t_sd = stats(test)
            d, d_sd = paired(test, base_test)
            rep = REPORT["r3_changes"][key][settings.index((eta, lam))]
            lines.append([CHANGES[key][0], f"{eta:g}", f"{lam:g}", common.pct(t, t_sd, 2),
                          points_text(d, d_sd), common.pct(rep, digits=2),
                          points_text(None if t is None else t - rep)])
            ran = spec_of(group[0])
            row = common.result_row(
                f"S6 R3 settings (eta {eta:g}, lambda {lam:g}): {CHANGES[key][0]}; ran "
                f"{describe(ran)} ({_seed_note(group)})", {"test": t}, {"test": rep},
                std={"test": t_sd},
                report_text=f"test {common.pct(rep, digits=2)}% (R3; R3 gives no baseline at "
                            f"this setting)",
                note=f"{points_text(d, d_sd)} points vs our baseline at the same setting, paired "
                     f"over {_seed_note(group)}")
            row["paired"] = {"against": "baseline at the same setting", "mean": d, "std": d_sd}
            rows.append(with_seeds(row, test=test))
    some = cells[("baseline", *baseline_settings()[0])]
    table = (f"Part r3, R3's changes: each at the (eta, lambda) settings R3 tried it at, beside "
             f"our baseline at the same setting and seeds ({_seed_note(some)}). Baseline: "
             f"{describe(spec_of(some[0]), eta_lam=False)} (R3 does not state the split of "
             f"these runs). Test accuracy in %, mean ± std (ddof=1). R3 gives no "
             f"baseline at these settings (its retrained baselines, below, ran at other "
             f"settings), so a change's effect can be read only from our paired runs.\n\n"
             + common.markdown_table(["configuration", "eta", "lambda", "ours (test)",
                                      "ours − our baseline (paired)", "R3 (test)",
                                      "ours − R3"], lines))
    top = sorted((r for r in runs if r["config"]["tags"]["part"] == "r3_top3"),
                 key=lambda r: r["config"]["tags"]["rank"])
    if top:
        top_lines = []
        for rank, group in _groups(top, lambda t: t["rank"]).items():
            (eta, lam), rep = REPORT["r3_top3"][rank - 1]
            test = seed_values(group)
            t, t_sd = stats(test)
            top_lines.append([rank, f"{eta:g}", f"{lam:g}", common.pct(t, t_sd, 2),
                              per_seed_text(test), common.pct(rep, digits=2),
                              points_text(None if t is None else t - rep)])
            ran = spec_of(group[0])
            row = common.result_row(
                f"S6 R3 random-search #{rank} retrained (eta {eta:g}, lambda {lam:g}): "
                f"{CHANGES['baseline'][0]}; ran {describe(ran)} ({_seed_note(group)})",
                {"test": t}, {"test": rep}, std={"test": t_sd},
                report_text=f"test {common.pct(rep, digits=2)}% (R3's #{rank}, retrained)")
            rows.append(with_seeds(row, test=test))
        ran = spec_of(top[0])
        table += (f"\n\nPart r3, R3's random-search top three, retrained at their own (eta, "
                  f"lambda): {describe(ran, eta_lam=False)} (the whole training set, as R3), "
                  f"{_seed_note(_groups(top, lambda t: t['rank'])[1])}; test accuracy in %. "
                  f"STUDIES.md gives these three settings and their retrained accuracies only: "
                  f"not their accuracies in the search itself, nor the search's trials, eta "
                  f"sub-ranges or network widths, so the search is not re-run and the nets "
                  f"are our 3-layer 50-50.\n\n"
                  + common.markdown_table(["R3 rank", "eta", "lambda", "ours (test)",
                                           "ours per seed", "R3 (test)", "ours − R3"],
                                          top_lines))
    return table, rows


# ---------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------

def plot_deltas(deltas, path, seeds):
    """Each change's paired test difference from the baseline, with its std as error bar."""
    keys = [k for k in deltas if k != "baseline" and deltas[k][0] is not None]
    fig = Figure(figsize=(8, 0.45 * len(keys) + 1.5))
    ax = fig.subplots()
    vals = [100 * deltas[k][0] for k in keys]
    errs = [100 * (deltas[k][1] or 0.0) for k in keys]
    ax.barh(range(len(keys)), vals, xerr=errs, capsize=3,
            color=["tab:green" if v > 0 else "tab:red" for v in vals])
    ax.set_yticks(range(len(keys)), [CHANGES[k][0] for k in keys], fontsize="small")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"test accuracy − baseline (points; mean ± std over {seeds})")
    ax.set_title("S6: one change at a time (S4 settings)")
    ax.grid(alpha=0.3, axis="x")
    return common.save_plot(fig, path)


def plot_r3(runs, path):
    """Left: R3's changes and our baseline at R3's settings (mean ± std; black: R3's numbers).
    Right: R3's retrained top three, ours beside R3's."""
    cells = _groups([r for r in runs if r["config"]["tags"]["part"] == "r3"],
                    lambda t: (t["change"], t["setting"]))
    top = _groups([r for r in runs if r["config"]["tags"]["part"] == "r3_top3"],
                  lambda t: t["rank"])
    fig = Figure(figsize=(13, 4.2))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1.2]})
    keys = ["baseline"] + R3_CHANGES
    width = 0.8 / len(keys)
    for j, key in enumerate(keys):
        got = [stats(seed_values(cells.get((key, i), []))) for i in range(3)]
        xs = np.arange(3) + (j - len(keys) / 2 + 0.5) * width
        ax.bar(xs, [100 * (m if m is not None else np.nan) for m, _ in got], width,
               yerr=[100 * (s or 0.0) for _, s in got], capsize=2,
               label=CHANGES[key][0].split(" (")[0].split(",")[0])
        if key in REPORT["r3_changes"]:
            ax.scatter(xs, [100 * v for v in REPORT["r3_changes"][key]], marker="_", s=200,
                       color="black", zorder=3, label="R3" if j == 1 else None)
    lam3 = REPORT["r3_activation_lam3"]
    ax.set_xticks(range(3), [f"eta {e:g}\nlambda {lam:g}"
                             + (f"\n(activations: {lam3:g})" if i == 2 else "")
                             for i, (e, lam) in enumerate(REPORT["r3_settings"])])
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize="x-small", ncol=3)
    ax.set_title("R3's changes at R3's settings (ours: mean ± std; black: R3)")
    ax.grid(alpha=0.3, axis="y")
    ranks = sorted(top)
    got = [stats(seed_values(top[k])) for k in ranks]
    ax2.bar(np.arange(len(ranks)), [100 * (m if m is not None else np.nan) for m, _ in got],
            0.6, yerr=[100 * (s or 0.0) for _, s in got], capsize=3, label="ours")
    ax2.scatter(np.arange(len(ranks)), [100 * REPORT["r3_top3"][k - 1][1] for k in ranks],
                marker="_", s=300, color="black", zorder=3, label="R3")
    ax2.set_xticks(range(len(ranks)), [f"#{k}\neta {REPORT['r3_top3'][k - 1][0][0]:g}\n"
                                       f"lambda {REPORT['r3_top3'][k - 1][0][1]:g}"
                                       for k in ranks], fontsize="small")
    ax2.set_title("R3's retrained top three")
    ax2.legend(fontsize="x-small")
    ax2.grid(alpha=0.3, axis="y")
    for a in (ax, ax2):
        a.set_ylim(bottom=max(0, a.get_ylim()[0]))
    return common.save_plot(fig, path)


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    study = common.start(NAME, SID, TITLE, args, argv)
    variants = ((s4_variants(args) if args.part in ("s4", "both") else [])
                + (r3_variants(args) if args.part in ("r3", "both") else []))
    runs = spec.run_all(variants, args, args.workers, args.threads)
    tables, rows, plots = [], [], []
    s4 = [r for r in runs if r["config"]["tags"]["part"] == "s4"]
    r3 = [r for r in runs if r["config"]["tags"]["part"] in ("r3", "r3_top3")]
    summary = []
    if s4:
        table, s4_rows, deltas = s4_table(args, s4)
        tables.append(table)
        rows += s4_rows
        base = [r for r in s4 if r["config"]["tags"]["change"] == "baseline"]
        plots.append(plot_deltas(deltas, study.out / "s4_deltas.png", _seed_note(base)))
        plots += common.run_plots(s4[0], study.out, "baseline", title=s4[0]["label"])
        best = max((k for k in deltas if k != "baseline" and deltas[k][0] is not None),
                   key=lambda k: deltas[k][0], default=None)
        if best:
            summary.append(f"best single change at S4 settings: {CHANGES[best][0]} "
                           f"({points_text(*deltas[best])} points, paired over {_seed_note(base)})")
    if r3:
        table, r3_rows = r3_table(args, r3)
        tables.append(table)
        rows += r3_rows
        plots.append(plot_r3(r3, study.out / "r3_settings.png"))
    data = common.load_data(args, "b") if args.workers <= 1 else None
    return common.finish(study, "\n\n".join(tables), rows, runs, plots, data,
                         summary="\n".join(summary))


if __name__ == "__main__":
    common.run_cli(main)
