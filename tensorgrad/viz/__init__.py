"""Drawing the recorded graph: `to_dot(t, params)` gives Graphviz DOT text of the graph that
produced Tensor `t`, `draw(t, "graph.png" | "graph.svg", params)` writes its picture (Graphviz
when installed, else matplotlib). Fused nodes are drawn as clusters of their primitives.

    import tensorgrad as tg
    print(tg.viz.to_dot(loss, params=dict(model.named_parameters())))
    tg.viz.draw(loss, "graph.svg", params=dict(model.named_parameters()))

`python -m tensorgrad.viz OUT.png` draws a small MLP's loss graph (the README's picture).
"""
from .dot import to_dot
from .picture import draw

__all__ = ["to_dot", "draw"]
