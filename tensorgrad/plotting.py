"""Figures of the course reports as PNG files: training curves, learning rate, lambda searches.

Every function takes a `train.History` (or its `to_dict()`, e.g. read back from results.json) and
a file path, writes one image and returns the path. Figures are drawn with matplotlib's
object-oriented API on the Agg canvas, so nothing here needs a display or touches pyplot's global
backend. Files are written atomically (tensorgrad.atomic): a failure leaves the previous image.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .atomic import atomic_write

__all__ = ["plot_curves", "plot_lr", "plot_search", "plot_side_by_side", "plot_compare",
           "save_figure"]

_PANELS = (("cost", "cost"), ("loss", "loss"), ("acc", "accuracy"))
_COLORS = {"train": "tab:blue", "val": "tab:orange"}


def _as_dict(history, who):
    """The dict form of a History (or a dict already holding 'steps' and 'metrics')."""
    if hasattr(history, "to_dict"):
        history = history.to_dict()
    if not isinstance(history, Mapping) or "steps" not in history or "metrics" not in history:
        raise TypeError(f"{who}: expected a History or its to_dict() (keys 'steps', 'metrics'), "
                        f"got {type(history).__name__}")
    return history


def _xs(history, x, who):
    if x not in ("step", "epoch"):
        raise ValueError(f"{who}: x must be 'step' or 'epoch', got {x!r}")
    return history["steps"] if x == "step" else history["epochs"]


def save_figure(fig, path) -> Path:
    """Render a matplotlib Figure with the Agg canvas (no pyplot, no display) to a PNG at `path`,
    creating its folder; every plot of the package and the experiments goes through here."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with atomic_write(path) as f:  # the format from the suffix, as savefig does with a name
        fig.savefig(f, format=path.suffix[1:].lower() or None, dpi=110)
    return path


def _draw_metric(ax, history, name, xs, label_prefix=""):
    """Train and val curves of one metric; returns how many curves were drawn."""
    ax.ticklabel_format(axis="y", useOffset=False)  # a flat loss stays readable (2.3026, ...)
    drawn = 0
    for split in ("train", "val"):
        ys = history["metrics"].get(f"{split}_{name}")
        if ys:
            ax.plot(xs, ys, color=_COLORS[split], label=f"{label_prefix}{split}")
            drawn += 1
    return drawn


def plot_curves(history, path, title=None, x="step") -> Path:
    """Cost, loss and accuracy of train and val against the update step: one PNG, 3 panels."""
    h = _as_dict(history, "plot_curves")
    xs = _xs(h, x, "plot_curves")
    if not xs:
        raise ValueError("plot_curves: the history has no measurements")
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3)
    for ax, (key, label) in zip(axes, _PANELS):
        if _draw_metric(ax, h, key, xs):
            ax.legend()
        ax.set_title(label)
        ax.set_xlabel("update step" if x == "step" else "epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_lr(history, path, title=None) -> Path:
    """The learning rate used by each update."""
    h = _as_dict(history, "plot_lr")
    lr = h.get("lr") or []
    if not lr:
        raise ValueError("plot_lr: the history holds no per-update learning rates ('lr')")
    fig = Figure(figsize=(6.5, 3.5))
    ax = fig.subplots()
    ax.plot(range(1, len(lr) + 1), lr, color="tab:green")
    ax.set_xlabel("update step")
    ax.set_ylabel("learning rate")
    ax.set_title(title or "learning rate per update")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_search(values, accuracies, path, title=None, xlabel="lambda",
                ylabel="validation accuracy", log=True) -> Path:
    """Accuracy against a searched hyperparameter (log x axis by default).

    accuracies: one sequence (drawn as `ylabel`) or a mapping {series name: sequence}, each the
    same length as values.
    """
    values = [float(v) for v in values]
    series = dict(accuracies) if isinstance(accuracies, Mapping) else {ylabel: accuracies}
    if not values:
        raise ValueError("plot_search: no values to plot")
    for name, ys in series.items():
        if len(ys) != len(values):
            raise ValueError(f"plot_search: series {name!r} has {len(ys)} points for "
                             f"{len(values)} values")
    if log and min(values) <= 0:
        raise ValueError(f"plot_search: a log axis needs positive values, got {min(values)}")
    order = sorted(range(len(values)), key=values.__getitem__)
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for name, ys in series.items():
        ax.plot([values[i] for i in order], [ys[i] for i in order], marker="o", label=name)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel if len(series) == 1 else "accuracy")
    if len(series) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_side_by_side(panels: Mapping, path, metric="loss", ncols=2, title=None, x="step",
                      sharey=True) -> Path:
    """One panel per run ({panel title: history}), each with the train and val `metric`."""
    if not panels:
        raise ValueError("plot_side_by_side: no panels")
    items = [(name, _as_dict(h, "plot_side_by_side")) for name, h in panels.items()]
    ncols = max(1, min(int(ncols), len(items)))
    nrows = math.ceil(len(items) / ncols)
    fig = Figure(figsize=(5 * ncols, 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    for ax, (name, h) in zip(axes.flat, items):
        if _draw_metric(ax, h, metric, _xs(h, x, "plot_side_by_side")):
            ax.legend(fontsize="small")
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("update step" if x == "step" else "epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(items):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_compare(runs: Mapping, path, metrics: Sequence[str] = ("loss", "acc"), split="val",
                 title=None, x="epoch") -> Path:
    """Several runs ({label: history}) overlaid, one panel per metric of the given split."""
    if not runs:
        raise ValueError("plot_compare: no runs")
    if split not in ("train", "val"):
        raise ValueError(f"plot_compare: split must be 'train' or 'val', got {split!r}")
    items = [(label, _as_dict(h, "plot_compare")) for label, h in runs.items()]
    fig = Figure(figsize=(5.5 * len(metrics), 3.8))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        for label, h in items:
            ys = h["metrics"].get(f"{split}_{metric}")
            if ys:
                ax.plot(_xs(h, x, "plot_compare"), ys, label=label)
        ax.set_xlabel("update step" if x == "step" else "epoch")
        ax.set_ylabel(f"{split} {dict(_PANELS).get(metric, metric)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
