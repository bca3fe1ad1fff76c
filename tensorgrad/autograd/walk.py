"""The reverse-mode graph walk: `Tensor.backward` and `grad`.

`_backward` walks the recorded graph iteratively from the output, calling each op's vjps only for
inputs on a path to a tensor that asked for a gradient. The walk is written once; the fast paths
come in through a few named hooks it calls (`Hooks`): with the reference ones (`REFERENCE`,
reference mode) it is the textbook walk, the specification; the fast ones are installed by
tensorgrad/compile/accumulate.py.
"""
import heapq
import operator
from typing import Callable, NamedTuple

import numpy as np

from .. import mode as _mode
from . import anomaly as _anomaly
from . import hooks as _tensor_hooks
from . import inplace as _inplace
from .grad_mode import set_grad_enabled
from .tensor import Tensor

__all__ = ["grad", "GraphFreedError"]

_HITS = _mode.HITS  # fast paths' counters (tg.fast_paths)


class GraphFreedError(RuntimeError):
    """Backward through a graph whose saved values were freed by an earlier backward."""


def _graph(roots):
    """The recorded nodes reachable from `roots` (used by `grad` to find the paths that lead to
    the requested inputs; an ordinary backward discovers the graph as it goes)."""
    stamp = object()
    nodes = []
    stack = [r for r in roots if r._op is not None]
    while stack:
        t = stack.pop()
        if t._walk is stamp:
            continue
        t._walk = stamp
        if t._parents is None:
            raise _freed(t)
        nodes.append(t)
        parents = t._parents
        for i in t._need:
            p = parents[i]
            if p._op is not None and p._walk is not stamp:
                stack.append(p)
    return nodes


def _freed(t):
    return GraphFreedError(
        f"trying to backward through the graph a second time (at op '{t._op.name}', shape "
        f"{t.shape}): its saved values were freed by the first backward; pass "
        f"retain_graph=True to the first backward if you need to go through it again")


_xp = {}


def _namespace(create_graph, fast=True):
    """numpy for an ordinary backward (its fast helpers, or plain numpy in reference mode),
    tensorgrad's own ops under create_graph (see xp.py)."""
    if not _xp:
        from .registry import graph_namespace
        from .xp import numpy_ns, reference_ns
        ops = graph_namespace()  # tensorgrad.ops, registered at its import
        _xp[False, True], _xp[False, False], _xp[True, True] = numpy_ns, reference_ns, ops
        _xp[True, False] = ops
    return _xp[create_graph, fast]


def _seeds(roots, grad_roots, create_graph, xp):
    """(root, its gradient) pairs: `gradient=` / `grad_outputs=` checked against the root's
    shape and cast to its dtype (a Tensor under create_graph), or ones for a scalar root."""
    out = []
    for r, g in zip(roots, grad_roots):
        if g is None:
            if r.data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; "
                                   f"this output has shape {r.shape}: pass gradient= (backward) "
                                   f"or grad_outputs= (grad)")
            g = np.array(1, r.data.dtype) if r.data.ndim == 0 else np.ones(r.shape, r.dtype)
        elif isinstance(g, Tensor):
            g = g if create_graph else g.data
        else:
            g = np.asarray(g, dtype=r.dtype)
        if g.shape != r.shape:
            raise RuntimeError(f"gradient shape {g.shape} does not match the output shape "
                               f"{r.shape}")
        if g.dtype != r.dtype:  # a Tensor of another dtype (an array was converted above)
            g = xp.astype(g, r.dtype)
        if create_graph and not isinstance(g, Tensor):
            g = Tensor._wrap(g)
        out.append((r, g))
    return out


class Hooks(NamedTuple):
    """The points where `_backward` lets a fast path in: plain functions, looked up once per
    walk. `REFERENCE` below is the textbook version of each (the specification); the fast ones
    are the op's own declarations (vjp_all) and tensorgrad/compile/accumulate.py's (`install`).

    gradients(xp, t, g, out, args, need, retain_graph) -> grads, grads[i] the gradient of input
        i of node t for each i in `need`, given the node's gradient g. Without retain_graph no
        later walk comes through t: what the op saved may be freed as it goes (vjp_all's
        early_free); the walk itself drops t's inputs once it is done with t.
    expand(xp, g, shape) -> g broadcast to the op's output shape (never called by the
        reference walk, whose gradients always have their node's shape).
    fit(xp, gi, x, full) -> gi summed to the shape of the input array x, in x's dtype (undoing
        broadcasting); `full` is the op's output shape when it is elementwise, else None.
    accumulate(xp, fit, results, tids, into_grad, create_graph) -> (add, finish), made once per
        walk: add(t, g, full=None, upstream=None, op=None) hands a gradient to a leaf, a target
        or a retained node (`upstream`: the op's gradient g, which g may alias; None for a
        finished gradient that is copied), finish() runs when the walk is done.
    """

    gradients: Callable
    expand: Callable
    fit: Callable
    accumulate: Callable


def _backward(roots, grad_roots, targets, retain_graph, create_graph, accumulate, hooks=None):
    """The walk behind `Tensor.backward` and `grad`; with `REFERENCE` hooks (reference mode) it
    is the textbook reverse-mode walk, the specification of both.

    1. Give each root its gradient. 2. Take the nodes holding a gradient latest first (reverse
    creation order is a topological order: an op's output is created after its inputs), so a
    node's gradient is complete when it is taken. 3. Get the gradient of each of its inputs
    that requires grad (`gradients`: one vjp each) and fit it to the input's shape (`fit`:
    undo broadcasting). 4. An input that is a node adds it to its own gradient and waits for its
    turn; a leaf gets it through `accumulate`: into `.grad` (accumulate=True, backward) or the
    results (accumulate=False, grad: {id(target): gradient}, no `.grad` touched).
    With `targets`, only paths that lead to a target are walked and only targets (and tensors
    that `retain_grad()`) receive gradients. A node's gradient hooks run on its complete
    gradient when it is taken, a leaf's on its total (`_at_node`, hooks.py). Without
    retain_graph each node's saved inputs are dropped once used, so a second walk raises
    GraphFreedError. A node recorded before the latest in-place change checks that what it
    saved was not changed since (inplace.py). Under create_graph the vjps run on Tensors with
    tensorgrad's ops (xp), so the gradients are differentiable themselves.
    """
    if hooks is None:  # the current mode's (reference mode: REFERENCE)
        hooks = _hooks(accumulate and targets is None and not create_graph)
    xp = _namespace(create_graph, fast=hooks.fit is not _fit)  # (REFERENCE's, hooked or not)
    hooks = _anomaly.checking(hooks) if _anomaly.ENABLED else hooks  # detect_anomaly()
    gradients, expand, fit = hooks.gradients, hooks.expand, hooks.fit
    tids = None if targets is None else {id(t) for t in targets}
    results = {}
    add, finish = hooks.accumulate(xp, fit, results, tids, accumulate, create_graph)
    heap = []  # (-seq, node) of the nodes holding a gradient in ._g
    for r, g in _seeds(roots, grad_roots, create_graph, xp):
        if r._op is None:
            add(r, g)
        elif r._g is None:
            r._g = g
            _heappush(heap, (-r._seq, r))
        else:
            r._g = r._g + g
    needed = None if tids is None else _needed(roots, tids)  # the nodes on a path to a target
    changed = _inplace.last_change  # nodes recorded before it may have lost a saved value
    mode = set_grad_enabled(True) if create_graph else None
    if mode is not None:
        mode.__enter__()
    try:
        while heap:
            t = _heappop(heap)[1]
            g, t._g = t._g, None
            parents = t._parents
            if parents is None:
                raise _freed(t)
            if t._at_node or (tids is not None and id(t) in tids):  # hooks, retain_grad
                g = _at_node(t, g, add, tids)
            need = t._need
            if needed is not None:
                need = [i for i in need if id(parents[i]) in needed or id(parents[i]) in tids] \
                    if id(t) in needed else ()
            if need:
                if t._seq < changed:
                    _inplace.check_saved(t)
                op = t._op
                args, out = (parents, t) if create_graph else (t._raw, t.data)
                if g.shape != out.shape and not op.elementwise:
                    g = expand(xp, g, out.shape)
                full = out.shape if op.elementwise else None
                grads = gradients(xp, t, g, out, args, need, retain_graph)
                for i in need:
                    p = parents[i]
                    if p._op is None:
                        add(p, grads[i], full, g, op)
                    elif p._g is None:
                        p._g = fit(xp, grads[i], p.data, full)
                        _heappush(heap, (-p._seq, p))
                    else:
                        p._g = p._g + fit(xp, grads[i], p.data, full)
            if not retain_graph:
                t._parents = t._raw = None
        finish()
    finally:
        for _, t in heap:  # an error stopped the walk: drop the pending gradients
            t._g = None
        if mode is not None:
            mode.__exit__(None, None, None)
    return results


def _needed(roots, tids):
    """The ids of the recorded nodes with a path to a target."""
    needed = set()
    for t in sorted(_graph(roots), key=_seq_of):
        if any(isinstance(p, Tensor) and (id(p) in tids or id(p) in needed) for p in t._parents):
            needed.add(id(t))
    return needed


def _at_node(t, g, add, tids):
    """Node t's complete gradient through its hooks (hooks.py), then kept where asked: as its
    .grad (retain_grad) or a result of grad (a target); the walk goes on with what the hooks
    returned."""
    if t._hooks:
        g = _tensor_hooks.run(t, g)
    if t._retains_grad or (tids is not None and id(t) in tids):
        add(t, g)
    return g


# ---- the reference hooks: the textbook walk -----------------------------------------------------
def _vjps(xp, t, g, out, args, need, retain_graph):
    """One vjp call per input in `need`."""
    op, kw, grads = t._op, t._kw, {}
    for i in need:
        if op.variadic:
            grads[i] = op.vjps[0](xp, g, out, *args, argnum=i, **kw)
        else:
            grads[i] = op.vjps[i](xp, g, out, *args, **kw)
    return grads


def _fit(xp, gi, x, full):
    """Undo broadcasting: `gi` summed (or, if smaller, spread) to x's shape, in x's dtype."""
    if gi.shape != x.shape:
        gi = xp.sum_to(xp.broadcast_to(gi, np.broadcast_shapes(gi.shape, x.shape)), x.shape)
    return gi if gi.dtype == x.dtype else xp.astype(gi, x.dtype)


def _copy_and_add(xp, fit, results, tids, into_grad, create_graph):
    """Each gradient fitted and copied (never a view of another), then added to what the
    tensor has: its `.grad` (backward) or its entry in the results (grad)."""
    def add(t, g, full=None, upstream=None, op=None):
        g = fit(xp, g, t.data, full)
        if not create_graph:
            g = np.array(g)  # an array of its own, never a view of another gradient
        if not into_grad:
            if id(t) in tids:
                results[id(t)] = results[id(t)] + g if id(t) in results else g
        elif tids is None or id(t) in tids or t._retains_grad:
            if create_graph:
                g = g if isinstance(g, Tensor) else Tensor._wrap(g)
                t._grad = g if t._grad is None else t._grad + g
            else:
                t._grad = Tensor._wrap(g if t._grad is None else np.asarray(t._grad.data + g))
    return add, _nothing


def _nothing():
    pass


def _broadcast(xp, g, shape):
    return xp.broadcast_to(g, shape)


REFERENCE = Hooks(gradients=_vjps, expand=_broadcast, fit=_fit, accumulate=_copy_and_add)


def _vjps_all(xp, t, g, out, args, need, retain_graph):
    """An op's combined vjp (Op.vjp_all) where it has one: every input's gradient in one call,
    freeing what the op saved as it goes unless retain_graph."""
    vjp_all = t._op.vjp_all
    if vjp_all is None:
        return _vjps(xp, t, g, out, args, need, retain_graph)
    _HITS["vjp_all"] += 1
    return vjp_all(xp, g, out, args, retain_graph)


# ---- choosing the hooks -------------------------------------------------------------------------
_FAST = []  # the fast hooks' module (tensorgrad/compile/accumulate.py), once installed
_CHOSEN = {}  # (paths off, training) -> Hooks
# the paths the walk's hooks take: with all of them off, backward is the reference walk
_WALK_PATHS = frozenset({"compact_gradient", "vjp_all", "fresh_gradient", "inplace_accumulate",
                         "lazy_scaled"})


def install(fast):
    """Install the fast hooks: `fast` has expand, fit and accumulator(off, training) -> the
    accumulate hook with the fast paths in `off` switched off (see Hooks)."""
    _FAST[:] = [fast]
    _CHOSEN.clear()


def _hooks(training):
    """The hooks of a walk in the current mode; `training`: the ordinary backward (every
    leaf's .grad, no create_graph), where leaves may keep fresh arrays and lazy products.
    While some leaf has a gradient hook, their variant that runs it (hooks.py `hooked`)."""
    hooked = bool(_tensor_hooks.HOOKED_LEAVES)  # gradient hooks' one check per backward
    key = (_mode.OFF, training, hooked)
    hooks = _CHOSEN.get(key)
    if hooks is None:
        off = _mode.OFF
        if _WALK_PATHS <= off or not _FAST:
            hooks = REFERENCE
        else:
            fast = _FAST[0]
            hooks = Hooks(gradients=_vjps if "vjp_all" in off else _vjps_all,
                          expand=fast.expand, fit=fast.fit,
                          accumulate=fast.accumulator(off, training))
        if hooked:
            hooks = hooks._replace(accumulate=_tensor_hooks.hooked(hooks.accumulate))
        _CHOSEN[key] = hooks
    return hooks


def _reference_backward(roots, grad_roots, targets, retain_graph, create_graph, accumulate):
    """The textbook walk whatever the mode (reference mode's): `_backward` with REFERENCE."""
    return _backward(roots, grad_roots, targets, retain_graph, create_graph, accumulate,
                     REFERENCE)


_heappush, _heappop = heapq.heappush, heapq.heappop
_seq_of = operator.attrgetter("_seq")


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a tuple (PyTorch's grad).

    With create_graph=True the returned gradients carry a graph themselves, so they can be
    differentiated again (grad of grad, Hessian-vector products, gradient penalties).
    """
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    for i, o in enumerate(outputs):
        if not o.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad and has no graph")
    if retain_graph is None:
        retain_graph = create_graph
    results = _backward(outputs, grad_outputs, targets=inputs, retain_graph=retain_graph,
                        create_graph=create_graph, accumulate=False)
    out = []
    for i, x in enumerate(inputs):
        g = results.get(id(x))
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {x.shape}) was not used in the graph "
                                   f"of the outputs; pass allow_unused=True to get None for it")
            out.append(None)
        else:
            out.append(g if isinstance(g, Tensor) else Tensor._wrap(np.asarray(g)))
    return tuple(out)


def backward(self, gradient=None, retain_graph=False, create_graph=False, inputs=None):
    """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad."""
    if not self.requires_grad:
        raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                           "(did an input have requires_grad=True? was it built under "
                           "no_grad()?)")
    _backward([self], [gradient], targets=inputs, retain_graph=retain_graph or create_graph,
              create_graph=create_graph, accumulate=True)



Tensor.backward = backward
