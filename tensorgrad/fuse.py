"""`fuse(fn)`: run a composition of tensorgrad ops as a single graph node.

The first call with given input shapes records the primitive ops `fn` performs (a trace). Later
calls replay that program directly on numpy arrays, and its backward replays the primitives'
own vjps in reverse: the same derived gradient, without creating a Tensor and a graph node per
primitive. On small mini-batches that bookkeeping costs as much as the arithmetic (batch norm
is eight primitives on 100 x 50 arrays), so fusing such a block makes it several times cheaper.

Rules for `fn`: it takes Tensors (positional) and returns a Tensor, or a tuple whose first item
is the differentiable result and the rest are auxiliary tensors returned without gradient
(batch statistics, say). It must perform the same ops for the same input shapes (no branching
on values), and use only its arguments and constants that never change between calls. Keyword
arguments are static: each distinct value gets its own trace. Under `create_graph=True` the
backward re-runs `fn` op by op, so higher-order gradients work as without fusion.
"""
import functools
import importlib

import numpy as np

from .function import Op
from .tensor import Tensor

_t = importlib.import_module(".tensor", __package__)  # the module (tensorgrad.tensor is a function)

__all__ = ["fuse"]


class _Program:
    """The recorded primitives of one trace: slots 0..n_in-1 are the inputs, then one slot per
    recorded op; each op's arguments are slot numbers or `_Const` values."""

    __slots__ = ("n_in", "steps", "result", "aux", "needs")

    def __init__(self, n_in, steps, result, aux):
        self.n_in, self.steps, self.result, self.aux = n_in, steps, result, aux
        self.needs = {}  # requires-grad mask of the inputs -> per step, which args need grad

    def run(self, arrays):
        vals = list(arrays)
        append = vals.append
        for op, spec, kw in self.steps:
            raw = [vals[a] if a.__class__ is int else a.value for a in spec]
            out = op.forward(*raw, **kw) if kw else op.forward(*raw)
            append(out if out.__class__ is np.ndarray else np.asarray(out))
        return vals

    def needed(self, mask):
        """For each step, the argument positions whose gradient flows back to an input in mask."""
        plan = self.needs.get(mask)
        if plan is None:
            live = [bool(m) for m in mask]  # slot -> depends on an input that requires grad
            plan = []
            for op, spec, kw in self.steps:
                pos = tuple(i for i, a in enumerate(spec) if a.__class__ is int and live[a]
                            and (op.variadic or op.vjps[i] is not None))
                plan.append(pos)
                live.append(bool(pos))
            self.needs[mask] = plan
        return plan

    def backward(self, xp, g, vals, mask):
        """Gradients of the result for the inputs flagged in mask (None elsewhere)."""
        grads = [None] * len(vals)
        grads[self.result] = g
        plan = self.needed(mask)
        n_in = self.n_in
        for k in range(len(self.steps) - 1, -1, -1):
            gk = grads[n_in + k]
            if gk is None:
                continue
            grads[n_in + k] = None
            op, spec, kw = self.steps[k]
            out = vals[n_in + k]
            if not op.elementwise and gk.shape != out.shape:
                gk = xp.broadcast_to(gk, out.shape)
            raw = [vals[a] if a.__class__ is int else a.value for a in spec]
            vjps = op.vjps
            for i in plan[k]:
                if op.variadic:
                    gi = vjps[0](xp, gk, out, *raw, argnum=i, **kw)
                else:
                    gi = vjps[i](xp, gk, out, *raw, **kw) if kw else vjps[i](xp, gk, out, *raw)
                target = raw[i]
                if gi.shape != target.shape:
                    gi = xp.reduce_to(gi, target.shape)
                if gi.dtype != target.dtype:
                    gi = xp.astype(gi, target.dtype)
                slot = spec[i]
                prev = grads[slot]
                grads[slot] = gi if prev is None else prev + gi
        return grads[:n_in]


class _Const:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class _Saved:
    """What a fused node keeps for its backward (freed with the node's graph): the program,
    the forward's values, and the gradients computed for one output gradient (the engine asks
    for them one input at a time)."""

    __slots__ = ("program", "vals", "mask", "kw", "g", "grads")

    def __init__(self, program, vals, mask, kw):
        self.program, self.vals, self.mask, self.kw = program, vals, mask, kw
        self.g = self.grads = None


def _trace(fn, tensors, kw):
    """Run fn on fresh leaves (requiring grad like the real inputs) and record its primitives."""
    leaves = [Tensor._wrap(t.data) for t in tensors]
    for leaf, t in zip(leaves, tensors):
        leaf.requires_grad = t.requires_grad
    slots = {id(x): i for i, x in enumerate(leaves)}
    keep = list(leaves)  # keep recorded tensors alive so their ids stay unique
    steps = []

    def record(op, args, op_kw, out):
        spec = []
        for a in args:
            if isinstance(a, Tensor):
                if id(a) in slots:
                    spec.append(slots[id(a)])
                elif a.requires_grad:
                    raise ValueError(f"fuse({fn.__name__}): op '{op.name}' used a tensor that "
                                     f"requires grad but is not an argument of the function "
                                     f"(shape {a.shape}); pass it as an argument")
                else:
                    spec.append(_Const(a.data))
            else:
                spec.append(_Const(a))
        slots[id(out)] = len(tensors) + len(steps)
        keep.append(out)
        steps.append((op, tuple(spec), op_kw))

    prev = _t._tracer
    _t._tracer = record
    try:
        with _t.enable_grad():
            result = fn(*leaves, **kw)
    finally:
        _t._tracer = prev
    items = result if isinstance(result, tuple) else (result,)
    where = []
    for r in items:
        if not isinstance(r, Tensor) or id(r) not in slots:
            raise TypeError(f"fuse({fn.__name__}): the function must return tensors computed "
                            f"by tensorgrad ops from its arguments, got {type(r).__name__}")
        where.append(slots[id(r)])
    return _Program(len(tensors), steps, where[0], tuple(where[1:])), isinstance(result, tuple)


def _fused_vjp(fn):
    def vjp(xp, g, out, *args, argnum):
        saved = args[-1]
        if saved.g is not g:
            tensors = args[:-1]
            if isinstance(g, Tensor):  # create_graph: differentiate fn op by op
                saved.grads = _graph_grads(fn, tensors, saved.kw, g)
            else:
                saved.grads = saved.program.backward(xp, g, saved.vals, saved.mask)
            saved.g = g
        gi = saved.grads[argnum]
        if gi is None:  # an input the result does not depend on
            gi = np.zeros_like(args[argnum]) if not isinstance(g, Tensor) else \
                _t.Tensor(np.zeros_like(args[argnum].data))
        return gi
    return vjp


def _graph_grads(fn, tensors, kw, g):
    result = fn(*tensors, **kw)
    result = result[0] if isinstance(result, tuple) else result
    wanted = [i for i, t in enumerate(tensors) if t.requires_grad]
    grads = [None] * len(tensors)
    found = _t.grad(result, [tensors[i] for i in wanted], g, create_graph=True,
                    allow_unused=True)
    for i, gi in zip(wanted, found):
        grads[i] = gi
    return grads


def fuse(fn):
    """Decorator: make `fn` (a composition of tensorgrad ops on Tensor arguments) one graph
    node, traced once per input shapes and dtypes; see the module docstring for its rules."""
    programs = {}
    name = getattr(fn, "__name__", "fused")
    op = Op(f"fused[{name}]", None, _fused_vjp(fn), variadic=True)

    @functools.wraps(fn)
    def fused(*tensors, **kw):
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name} (fused): argument {i} must be a Tensor, got "
                                f"{type(t).__name__}")
        if _t._tracer is not None:  # inside another trace: record our primitives there
            return fn(*tensors, **kw)
        arrays = [t.data for t in tensors]
        key = (tuple([(a.shape, a.dtype) for a in arrays]), tuple(kw.items()))
        entry = programs.get(key)
        if entry is None:
            entry = programs[key] = _trace(fn, tensors, kw)
        program, has_aux = entry
        vals = program.run(arrays)
        out = vals[program.result]
        need = [i for i, t in enumerate(tensors) if t.requires_grad]
        if need and _t._grad_enabled and out.dtype.kind == "f":
            saved = _Saved(program, vals, tuple(t.requires_grad for t in tensors), kw)
            arrays.append(saved)
            result = _t.node(op, tensors + (saved,), arrays, need, out)
        else:
            result = Tensor._wrap(out)
        if not has_aux:
            return result
        return (result,) + tuple(Tensor._wrap(vals[j]) for j in program.aux)

    fused.programs = programs  # the traces, by input shapes/dtypes and keyword arguments
    return fused
