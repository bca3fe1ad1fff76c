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
import operator

import numpy as np

from .function import Op
from .tensor import Tensor

_t = importlib.import_module(".tensor", __package__)  # the module (tensorgrad.tensor is a function)

__all__ = ["fuse"]


class _Program:
    """The recorded primitives of one trace, over numbered slots: the inputs, then the
    constants, then one slot per recorded op. Step k reads its arguments from its slots."""

    __slots__ = ("n_in", "consts", "steps", "result", "aux", "needs")

    def __init__(self, n_in, consts, steps, result, aux):
        self.n_in, self.consts, self.result, self.aux = n_in, consts, result, aux
        # (op, argument slots, a getter of their values, parameters) per step
        self.steps = [(op, spec, _getter(spec), kw) for op, spec, kw in steps]
        self.needs = {}  # requires-grad mask of the inputs -> per step, which args need grad

    def run(self, arrays):
        vals = arrays + self.consts
        append = vals.append
        for op, _, get, kw in self.steps:
            out = op.forward(*get(vals), **kw) if kw else op.forward(*get(vals))
            append(out if out.__class__ is np.ndarray else np.asarray(out))
        return vals

    def needed(self, mask):
        """For each step, the argument positions whose gradient flows back to an input in mask."""
        plan = self.needs.get(mask)
        if plan is None:
            live = [bool(m) for m in mask] + [False] * len(self.consts)
            plan = []
            for op, spec, _, _ in self.steps:
                pos = tuple(i for i, a in enumerate(spec)
                            if live[a] and (op.variadic or op.vjps[i] is not None))
                plan.append(pos)
                live.append(bool(pos))
            self.needs[mask] = plan
        return plan

    def backward(self, xp, g, vals, mask):
        """Gradients of the result for the inputs flagged in mask (None elsewhere)."""
        grads = [None] * len(vals)
        grads[self.result] = g
        plan = self.needed(mask)
        base = self.n_in + len(self.consts)
        steps = self.steps
        for k in range(len(steps) - 1, -1, -1):
            gk = grads[base + k]
            if gk is None:
                continue
            op, spec, get, kw = steps[k]
            out = vals[base + k]
            if not op.elementwise and gk.shape != out.shape:
                gk = xp.broadcast_to(gk, out.shape)
            raw = get(vals)
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
        return grads[:self.n_in]


def _getter(spec):
    """A fast function: vals -> the tuple of the values at the slots in spec."""
    if len(spec) == 1:
        slot = spec[0]
        return lambda vals: (vals[slot],)
    return operator.itemgetter(*spec)


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
    steps, consts = [], []

    def const(value):
        consts.append(value)
        return ("const", len(consts) - 1)

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
                    spec.append(const(a.data))
            else:
                spec.append(const(a))
        slots[id(out)] = ("step", len(steps))
        keep.append(out)
        steps.append((op, spec, op_kw))

    prev = _t._tracer
    _t._tracer = record
    try:
        with _t.enable_grad():
            result = fn(*leaves, **kw)
    finally:
        _t._tracer = prev
    items = result if isinstance(result, tuple) else (result,)
    n_in, n_const = len(tensors), len(consts)

    def number(slot):  # final slot numbers: inputs, then constants, then steps
        if slot.__class__ is int:
            return slot
        return n_in + slot[1] if slot[0] == "const" else n_in + n_const + slot[1]

    where = []
    for r in items:
        if not isinstance(r, Tensor) or id(r) not in slots:
            raise TypeError(f"fuse({fn.__name__}): the function must return tensors computed "
                            f"by tensorgrad ops from its arguments, got {type(r).__name__}")
        where.append(number(slots[id(r)]))
    steps = [(op, tuple(number(a) for a in spec), op_kw) for op, spec, op_kw in steps]
    return _Program(n_in, consts, steps, where[0], tuple(where[1:])), isinstance(result, tuple)


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
