"""What a search leaves behind: one record per trial, a top-k table and two kinds of plots.

A record is a plain dict (JSON-ready): study, stage, number, state (COMPLETE, PRUNED, FAIL,
RUNNING, WAITING), value, params, duration_s, started / finished (ISO times), reason (why it
failed or was pruned), retry_of / retried_as (the re-queue links of trials whose worker died),
worker, last_step and last_reported (the last value given to the pruner) and the objective's
own user_attrs.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["trial_records", "best_record", "span_seconds", "top_table", "plot_params",
           "plot_best_so_far"]

_INTERNAL = ("reason", "interrupted", "retry_of", "worker")


def _finite(v):
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def trial_records(study, stage=0) -> list[dict]:
    """One record per trial of an Optuna study, in trial-number order."""
    trials = study.get_trials(deepcopy=False)
    retried_as = {}
    for t in trials:
        history = t.system_attrs.get("retry_history")
        if history:
            retried_as[history[-1]] = t.number
    out = []
    for t in trials:
        attrs = dict(t.user_attrs)
        reason = attrs.get("reason")
        if t.state.name == "FAIL" and reason is None:
            reason = "its worker stopped while running it"
        if t.number in retried_as:
            reason = f"{reason}; re-queued as trial {retried_as[t.number]}"
        steps = t.intermediate_values
        last = max(steps) if steps else None
        out.append({
            "study": study.study_name, "stage": stage, "number": t.number,
            "state": t.state.name,
            "value": _finite(t.value) if t.state.name == "COMPLETE" else None,
            "params": dict(t.params),
            "duration_s": t.duration.total_seconds() if t.duration is not None else None,
            "started": _iso(t.datetime_start), "finished": _iso(t.datetime_complete),
            "reason": reason, "retry_of": attrs.get("retry_of"),
            "retried_as": retried_as.get(t.number), "worker": attrs.get("worker"),
            "last_step": last, "last_reported": None if last is None else _finite(steps[last]),
            "user_attrs": {k: v for k, v in attrs.items() if k not in _INTERNAL},
        })
    return out


def _iso(when):
    return None if when is None else when.isoformat(timespec="milliseconds")


def span_seconds(records):
    """Seconds from the first trial's start to the last trial's end (over all runs that
    worked on the study: the search's wall time even when it was resumed)."""
    import datetime
    starts = [r["started"] for r in records if r["started"]]
    ends = [r["finished"] for r in records if r["finished"]]
    if not starts or not ends:
        return None
    return (datetime.datetime.fromisoformat(max(ends))
            - datetime.datetime.fromisoformat(min(starts))).total_seconds()


def best_record(records):
    """The COMPLETE record with the largest value (the earliest on ties), or None."""
    done = [r for r in records if r["state"] == "COMPLETE" and r["value"] is not None]
    return max(done, key=lambda r: (r["value"], -r["stage"], -r["number"])) if done else None


def _format(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def top_table(records, k=10, value_name="value", value_format=lambda v: f"{v:.4f}") -> str:
    """Markdown table of the k best COMPLETE trials: rank, stage:trial, parameters, value."""
    done = sorted((r for r in records if r["state"] == "COMPLETE" and r["value"] is not None),
                  key=lambda r: (-r["value"], r["stage"], r["number"]))[:k]
    names = list(dict.fromkeys(n for r in done for n in r["params"]))
    lines = ["| rank | trial | " + " | ".join(names) + f" | {value_name} | time (s) |",
             "|" + "---|" * (len(names) + 4)]
    for i, r in enumerate(done, 1):
        cells = [_format(r["params"].get(n, "—")) for n in names]
        t = "—" if r["duration_s"] is None else f"{r['duration_s']:.0f}"
        lines.append(f"| {i} | {r['stage'] + 1}:{r['number']} | " + " | ".join(cells)
                     + f" | {value_format(r['value'])} | {t} |")
    return "\n".join(lines)


def _figure(size):
    from matplotlib.figure import Figure
    return Figure(figsize=size)


def _save(fig, path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=110)
    return path


_STAGE_COLORS = ("tab:blue", "tab:orange")


def plot_params(records, space, path, ylabel="validation accuracy", title=None) -> Path:
    """The value of every trial against each searched parameter that varied, one panel each
    (log axis for log-scaled parameters). Completed trials are dots, pruned ones crosses at
    the last value they reported; stage 2 is drawn in a second colour."""
    names = [n for n in space
             if len({repr(r["params"].get(n)) for r in records if n in r["params"]}) > 1]
    if not names:
        raise ValueError("plot_params: no searched parameter took more than one value")
    fig = _figure((4.2 * len(names), 3.8))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        categorical = not all(isinstance(r["params"].get(name), (int, float))
                              for r in records if name in r["params"])
        levels = sorted({str(r["params"][name]) for r in records if name in r["params"]})
        for stage in sorted({r["stage"] for r in records}):
            for state, y_key, marker in (("COMPLETE", "value", "o"),
                                         ("PRUNED", "last_reported", "x")):
                pts = [(r["params"][name], r[y_key]) for r in records
                       if r["stage"] == stage and r["state"] == state and name in r["params"]
                       and r[y_key] is not None]
                if not pts:
                    continue
                xs = [levels.index(str(x)) if categorical else x for x, _ in pts]
                label = f"stage {stage + 1} {'complete' if state == 'COMPLETE' else 'pruned'}"
                ax.scatter(xs, [y for _, y in pts], marker=marker, alpha=0.8, label=label,
                           color=_STAGE_COLORS[stage % 2])
        if categorical:
            ax.set_xticks(range(len(levels)), levels)
        elif getattr(space[name], "log", False):
            ax.set_xscale("log")
            ax.tick_params(axis="x", which="both", labelrotation=30)  # minor labels may crowd
        ax.set_xlabel(name)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_best_so_far(records, path, ylabel="validation accuracy", title=None) -> Path:
    """Each completed trial's value and the best so far, against the trial's position in the
    search (stage 1's trials, then stage 2's)."""
    ordered = sorted(records, key=lambda r: (r["stage"], r["number"]))
    xs, ys, best, bests = [], [], None, []
    for i, r in enumerate(ordered, 1):
        if r["state"] == "COMPLETE" and r["value"] is not None:
            xs.append(i)
            ys.append(r["value"])
            best = r["value"] if best is None else max(best, r["value"])
            bests.append(best)
    if not xs:
        raise ValueError("plot_best_so_far: no completed trial")
    fig = _figure((6.5, 4))
    ax = fig.subplots()
    ax.scatter(xs, ys, s=14, color="tab:gray", alpha=0.7, label="trial")
    ax.step(xs, bests, where="post", color="tab:red", label="best so far")
    n1 = sum(r["stage"] == 0 for r in ordered)
    if n1 < len(ordered):
        ax.axvline(n1 + 0.5, color="tab:orange", ls="--", lw=1, label="stage 2 starts")
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return _save(fig, path)
