"""The recorded graph as a picture (`tg.viz.draw`): Graphviz's `dot` when it is on PATH, else a
layered drawing with matplotlib, so that drawing always works.

The matplotlib drawing places each box on a layer by its depth (a leaf just above the first op
that reads it), orders every layer by the mean position of its neighbours (a few sweeps down
and up, a cluster's boxes kept together) and routes an arrow that skips layers through a point
on each layer it crosses. matplotlib is imported only here, when a picture is drawn, and renders
on the Agg canvas: no pyplot, no display. The file is replaced atomically (tensorgrad.atomic).
"""
import io
import os
import shutil
import subprocess

from ..atomic import write_bytes
from .dot import STYLE, fill, render
from .graph import CONSTANT, read

__all__ = ["draw"]

_FORMATS = ("png", "svg")
_FONT = 7.5  # points
_CHAR = 0.602 * _FONT / 72  # inches: the width of a monospaced character
_LINE = 1.25 * _FONT / 72  # inches: one line of a label
_PAD_X, _PAD_Y = 0.12, 0.08  # inches around a label inside its box
_GAP_X, _GAP_Y = 0.25, 0.42  # inches between boxes of a layer, between layers
_DUMMY = 0.06  # inches: the width an arrow passing through a layer takes in it
_SWEEPS = 4
_DPI = 150
_MAX_PIXELS = 30000  # per side of a PNG (matplotlib refuses more than 2**16)


def draw(t, path, params=None):
    """Write the graph that produced Tensor `t` (boxes and labels as `to_dot`'s) to `path`, a
    .png or .svg file: with Graphviz's `dot` when it is on PATH, else a layered matplotlib
    drawing. Returns `path`. A graph freed by backward raises GraphFreedError."""
    fmt = os.path.splitext(os.fspath(path))[1][1:].lower()
    if fmt not in _FORMATS:
        raise ValueError(f"viz.draw: path must end in .png or .svg, got path={path!r}")
    graph = read(t, params)
    dot = shutil.which("dot")
    data = _graphviz(dot, render(graph), fmt) if dot else _layered(graph, fmt)
    write_bytes(path, data)
    return path


def _graphviz(dot, text, fmt):
    """The picture Graphviz's `dot` makes of DOT `text` (read from stdin, written to stdout)."""
    proc = subprocess.run([dot, f"-T{fmt}"], input=text.encode(), capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"viz.draw: Graphviz's {dot} -T{fmt} failed (exit status "
                           f"{proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


# ---- the layered layout -------------------------------------------------------------------------
def _layers(graph):
    """{box id: layer}: an op one below its lowest input, a box without inputs (a leaf) just
    above the first box that reads it."""
    inputs = {b.id: [] for b in graph.boxes}
    readers = {b.id: [] for b in graph.boxes}
    for src, dst in graph.edges:
        inputs[dst].append(src)
        readers[src].append(dst)
    layer = {}
    for b in graph.boxes:  # topological order
        layer[b.id] = 1 + max((layer[s] for s in inputs[b.id]), default=-1)
    for b in graph.boxes:
        if not inputs[b.id] and readers[b.id]:
            layer[b.id] = min(layer[r] for r in readers[b.id]) - 1
    return layer


def _size(lines):
    return (max(len(line) for line in lines) * _CHAR + 2 * _PAD_X,
            len(lines) * _LINE + 2 * _PAD_Y)


def _layout(graph):
    """(positions {item: (x, y)}, sizes {item: (w, h)}, paths [the items of an edge, in
    order], rows [the items of each layer], clusters {item: cluster id or None}), in inches,
    layer 0 on top; the items are the box ids and a point per layer an edge crosses."""
    layer = _layers(graph)
    cluster = {b.id: b.cluster for b in graph.boxes}
    size = {b.id: _size(b.lines) for b in graph.boxes}
    rows = [[] for _ in range(max(layer.values()) + 1)]
    for b in graph.boxes:
        rows[layer[b.id]].append(b.id)
    paths = []
    for n, (src, dst) in enumerate(graph.edges):
        path = [src]
        same = cluster[src] if cluster[src] == cluster[dst] else None
        for k in range(layer[src] + 1, layer[dst]):  # a point on each layer the arrow crosses
            dummy = ("edge", n, k)
            rows[k].append(dummy)
            cluster[dummy], size[dummy] = same, (_DUMMY, 0.0)
            path.append(dummy)
        paths.append(path + [dst])
    up, down = {}, {}  # item -> its neighbours on the layer above / below
    for path in paths:
        for a, b in zip(path, path[1:]):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
    order = {}

    def place(row):
        for i, item in enumerate(row):
            order[item] = i

    def sweep(row, neighbours):
        mean = {item: sum(order[n] for n in neighbours[item]) / len(neighbours[item])
                if neighbours.get(item) else order[item] for item in row}
        block = {}  # a cluster's items stay together, at their mean place
        for item in row:
            block.setdefault(cluster[item], []).append(mean[item])
        row.sort(key=lambda item: (mean[item] if cluster[item] is None else
                                   sum(block[cluster[item]]) / len(block[cluster[item]]),
                                   str(cluster[item]), mean[item]))
        place(row)

    for row in rows:
        place(row)
    for _ in range(_SWEEPS):
        for row in rows[1:]:
            sweep(row, up)
        for row in reversed(rows[:-1]):
            sweep(row, down)
    x, y, top = {}, {}, 0.0
    for k, row in enumerate(rows):  # down: each box below the mean of its inputs
        wanted = [sum(x[n] for n in up[item]) / len(up[item]) if up.get(item) else None
                  for item in row]
        x.update(zip(row, _spread(row, wanted, size)))
        height = max((size[item][1] for item in row), default=0.0)
        y.update((item, -(top + height / 2)) for item in row)
        top += height + _GAP_Y
    for row in reversed(rows[:-1]):  # up: a leaf above the mean of its readers
        wanted = [x[item] if up.get(item) or not down.get(item) else
                  sum(x[n] for n in down[item]) / len(down[item]) for item in row]
        x.update(zip(row, _spread(row, wanted, size)))
    return {item: (x[item], y[item]) for item in x}, size, paths, rows, cluster


def _spread(row, wanted, size):
    """x of each item of a row, in order: as near its `wanted` x (None: no wish) as the items
    before it allow, then all shifted so that the mean offset from the wishes is zero."""
    placed, at = [], None
    for item, w in zip(row, wanted):
        width = size[item][0]
        left = None if at is None else at + _GAP_X + width / 2
        placed.append(left if w is None else w if left is None else max(w, left))
        if placed[-1] is None:
            placed[-1] = 0.0
        at = placed[-1] + width / 2
    known = [p - w for p, w in zip(placed, wanted) if w is not None]
    shift = sum(known) / len(known) if known else (placed[0] + placed[-1]) / 2
    return [p - shift for p in placed]


def _shade(ax, c, rows, pos, size, cluster, colour):
    """Cluster `c` as bands, one per layer it has boxes on: each spans the whole cluster's width
    but stops short of the other boxes of its layer, so that none of them looks inside."""
    from matplotlib.patches import Rectangle

    def edge(i, side):
        return pos[i][0] + side * size[i][0] / 2

    spans = []
    for row in rows:
        at = [k for k, i in enumerate(row) if cluster[i] == c.id]
        if at:
            members = row[at[0]:at[-1] + 1]
            spans.append((row, at[0], at[-1],
                          min(edge(i, -1) for i in members) - _PAD_X,
                          max(edge(i, 1) for i in members) + _PAD_X,
                          max(pos[i][1] + size[i][1] / 2 for i in members) + _GAP_Y / 2,
                          min(pos[i][1] - size[i][1] / 2 for i in members) - _GAP_Y / 2))
    left, right = min(s[3] for s in spans), max(s[4] for s in spans)
    for n, (row, first, last, x0, x1, y0, y1) in enumerate(spans):
        if first == 0:
            x0 = left
        else:
            x0 = min(x0, max(left, edge(row[first - 1], 1) + _GAP_X / 2))
        if last == len(row) - 1:
            x1 = right
        else:
            x1 = max(x1, min(right, edge(row[last + 1], -1) - _GAP_X / 2))
        if n == 0:  # room for the label
            y0 += _LINE
            ax.text(x0 + 0.05, y0 - 0.03, " ".join(c.lines), ha="left", va="top",
                    fontsize=_FONT, family="monospace", color="#8b6914", zorder=1)
        ax.add_patch(Rectangle((x0, y1), x1 - x0, y0 - y1, facecolor=colour, edgecolor="none",
                               zorder=0))


def _layered(graph, fmt):
    """The picture of a Graph drawn with matplotlib (see the module docstring), as bytes."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path

    pos, size, paths, rows, cluster = _layout(graph)
    margin = 0.3
    left = min(pos[i][0] - size[i][0] / 2 for i in pos) - margin
    right = max(pos[i][0] + size[i][0] / 2 for i in pos) + margin
    bottom = min(pos[i][1] - size[i][1] / 2 for i in pos) - margin
    top = max(pos[i][1] + size[i][1] / 2 for i in pos) + margin + _LINE
    width, height = right - left, top - bottom
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.axis("off")

    for c in graph.clusters:
        _shade(ax, c, rows, pos, size, cluster, STYLE["cluster"][0])
    for path in paths:
        (x0, y0), (x1, y1) = pos[path[0]], pos[path[-1]]
        points = [(x0, y0 - size[path[0]][1] / 2)] + [pos[d] for d in path[1:-1]] + \
            [(x1, y1 + size[path[-1]][1] / 2)]
        ax.add_patch(FancyArrowPatch(path=Path(points), arrowstyle="-|>", mutation_scale=8,
                                     linewidth=0.7, color="dimgray", zorder=2))
    for b in graph.boxes:
        (x, y), (w, h) = pos[b.id], size[b.id]
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                    boxstyle="round,pad=0,rounding_size=0.05",
                                    facecolor=fill(b),
                                    edgecolor="black", linewidth=1.6 if b.output else 0.7,
                                    linestyle="--" if b.kind == CONSTANT else "-", zorder=3))
        ax.text(x, y, "\n".join(b.lines), ha="center", va="center", fontsize=_FONT,
                family="monospace", linespacing=1.25,
                color="dimgray" if b.kind == CONSTANT else "black", zorder=4)
    buffer = io.BytesIO()
    with rc_context({"svg.fonttype": "none"}):  # an SVG's labels stay text: searchable
        fig.savefig(buffer, format=fmt, dpi=min(_DPI, _MAX_PIXELS / max(width, height)))
    return buffer.getvalue()
