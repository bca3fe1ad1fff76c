"""The reverse-mode graph walk: `Tensor.backward` and `grad`.

backward walks the recorded graph iteratively from the output, calling each op's vjps only for
inputs on a path to a tensor that asked for a gradient. `_reference_backward` is the textbook
walk (the specification); `_backward` is the same walk with the engine's fast paths.
"""
import heapq
import operator

import numpy as np

from .. import mode as _mode
from ..compile.blas import axpy, two_pass
from . import grad_mode as _gm
from .grad_mode import set_grad_enabled
from .tensor import Tensor, _new_tensor
from .xp import Scaled as _Scaled

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


def _reference_backward(roots, grad_roots, targets, retain_graph, create_graph, accumulate):
    """The textbook reverse-mode walk, the specification of `backward()` and `grad` (reference
    mode runs it; the fast walk `_backward` must give the same gradients).

    1. Order the recorded nodes reachable from the roots so that every node comes before the
       nodes it was computed from (reverse creation order: an op's output is created after
       its inputs). 2. Give each root its gradient. 3. For each node in that order, call one
       vjp per input that requires grad, with the node's full gradient, and undo broadcasting
       (sum the result back to the input's shape). 4. Accumulate: an input that is a node adds
       it to that node's gradient; a leaf gets it in `.grad` (accumulate=True, backward) or in
       the results (accumulate=False, grad: {id(target): gradient}, no `.grad` touched).
    With `targets`, only paths that lead to a target are walked and only targets (and tensors
    that `retain_grad()`) receive gradients. Without retain_graph each node's saved inputs are
    dropped once used, so a second walk raises GraphFreedError. Under create_graph the vjps run
    on Tensors with tensorgrad's ops (xp), so the gradients are differentiable themselves.
    """
    xp = _namespace(create_graph, fast=False)
    tids = None if targets is None else {id(t) for t in targets}
    grads, results = {}, {}  # id(node) -> its gradient so far; id(target) -> its gradient

    def deliver(t, g):
        """A finished gradient for a leaf, a target or a tensor that asked to retain it."""
        if not create_graph:
            g = np.array(g)  # an array of its own, never a view of another gradient
        if not accumulate:
            if id(t) in tids:
                results[id(t)] = results[id(t)] + g if id(t) in results else g
        elif tids is None or id(t) in tids or t._retains_grad:
            if create_graph:
                g = g if isinstance(g, Tensor) else Tensor._wrap(g)
                t._grad = g if t._grad is None else t._grad + g
            else:
                t._grad = Tensor._wrap(g if t._grad is None else np.asarray(t._grad.data + g))

    def fit(gi, x):
        """Undo broadcasting: `gi` summed (or, if smaller, spread) to x's shape, in x's dtype."""
        if gi.shape != x.shape:
            full = np.broadcast_shapes(gi.shape, x.shape)
            gi = xp.sum_to(xp.broadcast_to(gi, full), x.shape)
        return gi if gi.dtype == x.dtype else xp.astype(gi, x.dtype)

    for r, g in _seeds(roots, grad_roots, create_graph, xp):
        if r._op is None:
            deliver(r, g)
        else:
            grads[id(r)] = grads[id(r)] + g if id(r) in grads else g
    order = sorted(_graph(roots), key=_seq_of, reverse=True)  # raises if a node was freed
    needed = None  # with targets: the nodes with a path to one
    if tids is not None:
        needed = set()
        for t in reversed(order):
            if any(isinstance(p, Tensor) and (id(p) in tids or id(p) in needed)
                   for p in t._parents):
                needed.add(id(t))
    with set_grad_enabled(True if create_graph else _gm._enabled):
        for t in order:
            g = grads.pop(id(t), None)
            if g is None:  # no gradient reached this node
                continue
            if t._retains_grad or (tids is not None and id(t) in tids):
                deliver(t, g)
            if needed is None or id(t) in needed:
                op, parents = t._op, t._parents
                args, out = (parents, t) if create_graph else (t._raw, t.data)
                for i in t._need:
                    p = parents[i]
                    if needed is not None and id(p) not in needed and id(p) not in tids:
                        continue
                    if op.variadic:
                        gi = op.vjps[0](xp, g, out, *args, argnum=i, **t._kw)
                    else:
                        gi = op.vjps[i](xp, g, out, *args, **t._kw)
                    gi = fit(gi, p)
                    if p._op is None:
                        deliver(p, gi)
                    else:
                        grads[id(p)] = grads[id(p)] + gi if id(p) in grads else gi
            if not retain_graph:
                t._parents = t._raw = None
    return results


def _backward(roots, grad_roots, targets, retain_graph, create_graph, accumulate):
    """Core of `Tensor.backward` and `grad`.

    Nodes are processed in decreasing creation order (`_seq`) from a heap: a node enters it when
    its first gradient arrives and leaves it after all its consumers (created later) have added
    theirs, so no separate topological sort is needed and nodes no gradient reaches are skipped.

    accumulate=True (backward): add gradients into `.grad` of the leaves that require grad (only
    those in `targets` if given) and of non-leaves that `retain_grad()`. accumulate=False (grad):
    return {id(target): gradient} for the targets and touch no `.grad`.
    """
    fast = accumulate and targets is None and not create_graph  # the ordinary training backward
    owned = set()  # ids of .grad arrays this walk allocated (safe to accumulate into in place)
    fresh, use_all, add_lazy = fast, True, _add_lazy  # fast paths the walk itself takes
    if not _mode.FAST:  # some or all fast paths off (tensorgrad/mode.py)
        off = _mode.OFF
        if _WALK_PATHS <= off:
            return _reference_backward(roots, grad_roots, targets, retain_graph, create_graph,
                                       accumulate)
        fresh = fast and "fresh_gradient" not in off
        use_all = "vjp_all" not in off
        if "inplace_accumulate" in off:
            owned = _NOTHING_OWNED
        if "axpy" in off:
            add_lazy = _add_lazy_two_pass
    xp = _namespace(create_graph)
    tids = None if targets is None else {id(t) for t in targets}
    results = {}

    def deliver(t, g, upstream=None):
        """Hand a finished gradient to `t`: into results (grad) or into t.grad (backward).

        `g` may alias `upstream` (the gradient flowing into the op that produced it: add, reshape
        and friends pass it through) and then must be copied before a leaf keeps it. A fresh
        array the walk computed is owned: kept as is, and later arrivals add into it in place.
        A 0-d `g` may be a numpy scalar (what ufuncs return for 0-d operands): a leaf keeps an
        array, since later terms are added into what it keeps in place.
        """
        if g.shape != t.data.shape:  # a compact gradient becomes full-size at delivery
            g = xp.broadcast_to(g, t.data.shape)
            _HITS["compact_gradient"] += 1
        if not accumulate:
            if id(t) in tids:
                prev = results.get(id(t))
                results[id(t)] = g if prev is None else prev + g
            return
        if tids is not None and id(t) not in tids and not t._retains_grad:
            return
        if create_graph:
            g = g if isinstance(g, Tensor) else Tensor._wrap(g)
            t._grad = g if t._grad is None else t._grad + g
            return
        current = t._grad
        if current is not None and id(current.data) in owned:
            current.data += g  # our own buffer from this walk: accumulate in place
            _HITS["inplace_accumulate"] += 1
            return
        if current is not None:
            g = current.data + g
            if g.__class__ is not np.ndarray:
                g = np.asarray(g)  # the sum of 0-d arrays is a scalar
        elif g.__class__ is not np.ndarray:
            g = np.array(g)
        elif upstream is None or not g.flags.writeable or np.may_share_memory(g, upstream):
            g = g.copy()  # the caller's array, a broadcast, or a pass-through of one
        t._grad = Tensor._wrap(g)
        owned.add(id(g))

    heap = []  # (-seq, node) of the nodes holding a pending gradient in ._g
    lazy = {}  # id(leaf) -> (leaf, [xp.Scaled, ...]) waiting for another gradient (fast only)
    n_all = n_fresh = n_lazy = 0  # fast paths taken (tg.fast_paths), counted once at the end
    for r, g in _seeds(roots, grad_roots, create_graph, xp):
        if r._op is None:  # a root that is itself a leaf: gets a copy, never the caller's array
            deliver(r, g)
        elif r._g is None:
            r._g = g
            _heappush(heap, (-r._seq, r))
        else:
            r._g = r._g + g

    needed = None
    if tids is not None:  # only walk the paths that lead to a requested input
        needed = set()
        for t in sorted(_graph(roots), key=_seq_of):
            for p in t._parents:
                if isinstance(p, Tensor) and (id(p) in tids or id(p) in needed):
                    needed.add(id(t))
                    break
    mode = set_grad_enabled(True) if create_graph else None
    if mode is not None:
        mode.__enter__()
    try:
        while heap:
            t = _heappop(heap)[1]
            g = t._g
            t._g = None
            parents = t._parents
            if parents is None:
                raise _freed(t)
            if t._retains_grad or (tids is not None and id(t) in tids):
                deliver(t, g)  # (no upstream given: always copied)
            if needed is not None and id(t) not in needed:
                if not retain_graph:
                    t._parents = t._raw = None
                continue
            op = t._op
            if create_graph:
                args, out = parents, t
            else:
                args, out = t._raw, t.data
            if not op.elementwise and g.shape != out.shape:
                g = xp.broadcast_to(g, out.shape)  # a compact gradient meets a shape op
                _HITS["compact_gradient"] += 1
            kw = t._kw
            vjps = op.vjps
            every = None
            if op.vjp_all is not None and use_all:
                every = op.vjp_all(xp, g, out, args, retain_graph)
                n_all += 1
            for i in t._need:
                p = parents[i]
                if needed is not None and not (id(p) in needed or id(p) in tids):
                    continue
                if every is not None:
                    gi = every[i]
                    if fresh and p._op is None and p._grad is None and gi.__class__ is np.ndarray \
                            and gi.flags.writeable:  # (a fused program may return a broadcast)
                        p._grad = w = _new_tensor(Tensor)  # an array of its own: keep it
                        # (shape, dtype and ownership: see Op.vjp_all)
                        w.data = gi
                        owned.add(id(gi))
                        n_fresh += 1
                        if lazy and id(p) in lazy:
                            add_lazy(lazy.pop(id(p))[1], gi)
                        continue
                elif op.variadic:
                    gi = vjps[0](xp, g, out, *args, argnum=i, **kw)
                elif kw:
                    gi = vjps[i](xp, g, out, *args, **kw)
                else:
                    gi = vjps[i](xp, g, out, *args)
                pdata = p.data
                if gi.__class__ is _Scaled:  # x * s, not computed yet (see xp.Scaled)
                    if fast and p._op is None and p._grad is None and gi.dtype == pdata.dtype:
                        lazy.setdefault(id(p), (p, []))[1].append(gi)  # wait for another gradient
                        n_lazy += 1
                        continue
                    gi = gi.array()  # (its dtype may follow s's: cast below)
                if gi.shape != pdata.shape or (op.elementwise and gi.shape != out.shape):
                    # undo broadcasting (compact axes may stay; see xp.reduce_to)
                    if op.elementwise and gi.shape != out.shape:
                        _HITS["compact_gradient"] += 1
                    gi = xp.reduce_to(gi, pdata.shape, out.shape if op.elementwise else None)
                if gi.dtype != pdata.dtype:
                    gi = xp.astype(gi, pdata.dtype)
                if p._op is not None:
                    pg = p._g
                    if pg is None:
                        p._g = gi
                        _heappush(heap, (-p._seq, p))
                    else:
                        p._g = pg + gi
                elif fresh and p._grad is None and gi.shape == pdata.shape and gi is not g \
                        and gi.base is None and op.fresh and gi.__class__ is np.ndarray:
                    p._grad = Tensor._wrap(gi)  # a fresh array from a built-in vjp: keep it
                    owned.add(id(gi))
                    n_fresh += 1
                    if lazy and id(p) in lazy:
                        add_lazy(lazy.pop(id(p))[1], gi)
                else:
                    deliver(p, gi, g)
                    if lazy and id(p) in lazy:
                        add_lazy(lazy.pop(id(p))[1], p._grad.data)  # owned after deliver
            if not retain_graph:
                t._parents = t._raw = None
        for p, pending in lazy.values():  # no other gradient came: compute them now
            total = pending[0].array()  # a fresh array: the leaf keeps it (p._grad is None)
            if total.__class__ is not np.ndarray or total.dtype != p.data.dtype:
                total = np.asarray(total, p.data.dtype)  # a 0-d scalar, or in s's wider dtype
            add_lazy(pending[1:], total)
            p._grad = Tensor._wrap(total)
    finally:
        for _, t in heap:  # an error stopped the walk: drop the pending gradients
            t._g = None
        _HITS["vjp_all"] += n_all
        _HITS["fresh_gradient"] += n_fresh
        _HITS["lazy_scaled"] += n_lazy
        if mode is not None:
            mode.__exit__(None, None, None)
    return results


_heappush, _heappop = heapq.heappush, heapq.heappop
_seq_of = operator.attrgetter("_seq")


def _add_lazy(pending, into):
    """into += x * s for every deferred xp.Scaled gradient, in place (one pass each)."""
    _HITS["axpy"] += len(pending)
    for sc in pending:
        axpy(float(sc.scale), sc.x, into)


def _add_lazy_two_pass(pending, into):
    """_add_lazy with the axpy fast path off: numpy's two passes."""
    for sc in pending:
        two_pass(float(sc.scale), sc.x, into)


class _NothingOwned:
    """The walk's `owned` set with inplace_accumulate off: it never holds a .grad array, so a
    later gradient of a leaf is added into a new array."""

    __slots__ = ()

    def add(self, key):
        pass

    def __contains__(self, key):
        return False


_NOTHING_OWNED = _NothingOwned()
# the paths the fast walk takes itself: with all of them off, backward is the reference walk
_WALK_PATHS = frozenset({"compact_gradient", "vjp_all", "fresh_gradient", "inplace_accumulate",
                         "lazy_scaled"})


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
