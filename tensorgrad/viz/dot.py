"""The recorded graph as Graphviz DOT text (`tg.viz.to_dot`), akin to torchviz's `make_dot`.

Ops are white boxes, leaves that require grad (parameters) blue, constants grey and dashed, the
drawn tensor green; a fused node is a shaded `subgraph cluster_...` of its primitives. Arrows go
from an op's inputs to the op.
"""
from .graph import CONSTANT, OP, PARAMETER, read

__all__ = ["to_dot", "render", "fill", "STYLE"]

# fill colour and other DOT attributes by kind of box (the matplotlib drawing uses the colours)
STYLE = {
    OP: ("#ffffff", 'style="rounded,filled"'),
    PARAMETER: ("#add8e6", "style=filled"),
    CONSTANT: ("#e5e5e5", 'style="filled,dashed", fontcolor="#404040"'),
    "output": ("#caff70", 'style="rounded,filled", penwidth=2'),
    "cluster": ("#fff8d0", 'style="rounded,filled"; color="#daa520"'),
}


def _escape(text):
    """`text` for a DOT double-quoted string: backslashes and quotes escaped, so that Graphviz
    shows them as they are, and control characters (line breaks included) made spaces."""
    text = "".join(c if c >= " " else " " for c in str(text))
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _label(lines):
    """A quoted label of several lines, joined by DOT's centred line break."""
    return '"' + "\\n".join(map(_escape, lines)) + '"'


def fill(box):
    """A box's fill colour: its kind's, or the drawn tensor's when that is an op."""
    return STYLE["output" if box.output and box.kind == OP else box.kind][0]


def _style(box):
    attrs = STYLE["output" if box.output and box.kind == OP else box.kind][1]
    return f'fillcolor="{fill(box)}", {attrs}' + (", penwidth=2" if box.output and
                                                   box.kind != OP else "")


def render(graph):
    """DOT text of a Graph (graph.py): boxes outside clusters, then each cluster with its own,
    then the edges, each in the graph's order."""
    lines = ["digraph tensorgrad {",
             '  node [shape=box, fontname="Helvetica", fontsize=10];',
             "  edge [arrowsize=0.7];"]
    for box in graph.boxes:
        if box.cluster is None:
            lines.append(f"  {box.id} [label={_label(box.lines)}, {_style(box)}];")
    fill, attrs = STYLE["cluster"]
    for cluster in graph.clusters:
        lines.append(f"  subgraph {cluster.id} {{")
        lines.append(f'    label={_label(cluster.lines)}; fillcolor="{fill}"; '
                     f"{attrs};")
        for box in graph.boxes:
            if box.cluster == cluster.id:
                lines.append(f"    {box.id} [label={_label(box.lines)}, {_style(box)}];")
        lines.append("  }")
    for src, dst in graph.edges:
        lines.append(f"  {src} -> {dst};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(t, params=None):
    """Graphviz DOT text of the graph that produced Tensor `t`: a box per op (its name, output
    shape and dtype) and per leaf (shape, dtype, and its name when `params`, a dict name ->
    Tensor such as `dict(model.named_parameters())`, holds it), arrows from inputs to ops, each
    fused node a cluster of its primitives. Drawing changes nothing in the graph; a graph freed
    by backward raises GraphFreedError."""
    return render(read(t, params))
