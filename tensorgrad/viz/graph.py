"""The recorded graph behind a Tensor as plain drawing data: boxes, arrows and clusters.

`read(t, params)` follows the records the engine keeps on each op's output (`_op`, `_parents`)
from `t` back to its leaves, without touching them: no stamp, no gradient, nothing freed, so a
backward afterwards is the one it would have been. A fused node (`tg.fuse`, a fused
`nn.Sequential` chain) becomes a cluster of the primitives its traced Program recorded. Boxes
come in topological order (every box after the boxes it reads) with ids numbered in that
order, so the same graph always gives the same data.
"""
import itertools
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .. import mode as _mode
from ..autograd import GraphFreedError, Tensor
from ..compile import fuse as _fuse

__all__ = ["Box", "Cluster", "Graph", "read"]

OP, PARAMETER, CONSTANT = "op", "parameter", "constant"  # the kinds of box


class Box(NamedTuple):
    """One box: `id` (a DOT identifier), `kind` (OP, PARAMETER: a leaf that requires grad, or
    CONSTANT), its label's `lines`, whether it is the drawn tensor (`output`) and the id of the
    cluster it sits in (None outside any)."""

    id: str
    kind: str
    lines: tuple
    output: bool = False
    cluster: str = None


class Cluster(NamedTuple):
    """A fused node: its `id` (`cluster_...`, as DOT wants) and its label's `lines`."""

    id: str
    lines: tuple


class Graph(NamedTuple):
    """`boxes` in topological order, `edges` (from id, to id) in the order found, `clusters`."""

    boxes: list
    edges: list
    clusters: list


def _describe(shape, dtype):
    return f"{tuple(shape)} {np.dtype(dtype)}"


def _drawn(a):
    """Whether an operand is drawn: a Tensor, or an array with at least one axis (numbers and
    index tuples are parameters of the op, not boxes)."""
    return isinstance(a, Tensor) or (isinstance(a, np.ndarray) and a.ndim > 0)


def _freed(t):
    return GraphFreedError(
        f"viz: the graph of this tensor was freed by backward (at op '{t._op.name}', shape "
        f"{t.shape}): its records are gone. Draw it before calling backward, or pass "
        f"retain_graph=True to that backward")


def _names(params):
    """{id(tensor): 'name' (names joined by ', ' for a tensor given twice)} from `params`."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise TypeError(f"viz: params must be a dict of name -> Tensor (such as "
                        f"dict(model.named_parameters())), got {type(params).__name__}")
    names = {}
    for name, p in params.items():
        if not isinstance(p, Tensor):
            raise TypeError(f"viz: params[{name!r}] must be a Tensor, got {type(p).__name__}")
        names[id(p)] = f"{names[id(p)]}, {name}" if id(p) in names else str(name)
    return names


def _ops(t):
    """The recorded nodes reachable from t, in creation order (a topological order)."""
    found, stack, seen = [], [t], {id(t)}
    while stack:
        node = stack.pop()
        if node._op is None:
            continue
        if node._parents is None:
            raise _freed(node)
        found.append(node)
        for p in node._parents:
            if isinstance(p, Tensor) and id(p) not in seen:
                seen.add(id(p))
                stack.append(p)
    return sorted(found, key=lambda n: n._seq)


def _saved(node):
    """The fused program's saved record of a fused node, or None for any other node."""
    last = node._parents[-1] if node._parents else None
    return last if isinstance(last, _fuse._Saved) else None


def _dtypes(program, saved, inputs):
    """Every slot's dtype of a fused node's program: from the values its forward kept, or, where
    a lean forward freed some, by running the primitives again on the node's input arrays."""
    vals = saved.vals
    if vals is not None and all(isinstance(v, np.ndarray) for v in vals[program.first_step:]):
        return [np.asarray(v).dtype for v in vals]
    values = list(inputs) + list(program.consts)
    hits = dict(_mode.HITS)
    try:
        with np.errstate(all="ignore"):
            for op, spec, params in program.steps:
                values.append(np.asarray(op.forward(*[values[a] for a in spec], **params)))
    finally:  # a forward may count a fast path's hit (tg.fast_paths): drawing counts none
        _mode.HITS.update(hits)
    return [np.asarray(v).dtype for v in values]


def read(t, params=None):
    """The graph that produced Tensor `t` as a Graph (see the module docstring). `params`:
    {name: Tensor}, whose names label those leaves. Raises GraphFreedError for a graph a
    backward without retain_graph has freed."""
    if not isinstance(t, Tensor):
        raise TypeError(f"viz: expected the Tensor whose graph to draw, got {type(t).__name__}")
    names = _names(params)
    boxes, edges, clusters = [], [], []
    out_of = {}  # id(tensor or array) -> the id of the box that holds it
    count = itertools.count()

    def operand(a):
        """The box id of an op's operand (a new leaf box the first time), or None if not drawn."""
        key = id(a)
        if key in out_of or not _drawn(a):
            return out_of.get(key)
        if isinstance(a, Tensor):
            name = names.get(key, a.name)
            kind = PARAMETER if a.requires_grad else CONSTANT
            data = a.data
        else:
            name, kind, data = None, CONSTANT, a
        lines = ((name,) if name else ("constant",) if kind == CONSTANT else ()) + \
            (_describe(data.shape, data.dtype),)
        box_id = out_of[key] = f"n{next(count)}"
        boxes.append(Box(box_id, kind, lines, output=a is t))
        return box_id

    def edge(src, dst):
        if src is not None and (src, dst) not in seen_edges:
            seen_edges.add((src, dst))
            edges.append((src, dst))

    seen_edges = set()
    if t._op is None:  # a leaf: one box
        operand(t)
        return Graph(boxes, edges, clusters)
    for node in _ops(t):
        parents = node._parents
        saved = _saved(node)
        program = None if saved is None else saved.program.program
        if program is None or program.result < program.first_step:
            sources = [operand(p) for p in parents]
            box_id = out_of[id(node)] = f"n{next(count)}"
            boxes.append(Box(box_id, OP, (node._op.name, _describe(node.shape, node.dtype)),
                             output=node is t))
            for src in sources:
                edge(src, box_id)
            continue
        inputs = parents[:-1]
        sources = [operand(p) for p in inputs]
        base = f"n{next(count)}"
        cluster = f"cluster_{base}"
        clusters.append(Cluster(cluster, (node._op.name, f"{len(program.steps)} primitives")))
        dtypes = _dtypes(program, saved, node._raw[:-1])
        slot_box = dict(enumerate(sources))  # slot -> box id
        for j, value in enumerate(program.consts):
            slot = program.n_in + j
            if _drawn(value):
                slot_box[slot] = f"{base}c{j}"
                boxes.append(Box(slot_box[slot], CONSTANT,
                                 ("constant", _describe(value.shape, value.dtype)),
                                 cluster=cluster))
        for k, (op, spec, _) in enumerate(program.steps):
            slot = program.slot(k)
            slot_box[slot] = f"{base}s{k}"
            boxes.append(Box(slot_box[slot], OP, (op.name, _describe(program.shapes[slot],
                                                                     dtypes[slot])),
                             output=node is t and slot == program.result, cluster=cluster))
            for a in spec:
                edge(slot_box.get(a), slot_box[slot])
        out_of[id(node)] = slot_box[program.result]
    return Graph(boxes, edges, clusters)
