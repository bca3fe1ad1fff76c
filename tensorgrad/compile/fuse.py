"""`fuse(fn)`: run a composition of tensorgrad ops as a single graph node.

The first call with given input shapes records the primitive ops `fn` performs (a trace). Later
calls replay that program directly on numpy arrays, and its backward replays the primitives'
own vjps in reverse: the same derived gradient, without creating a Tensor and a graph node per
primitive. On small mini-batches that bookkeeping costs as much as the arithmetic (batch norm
is eight primitives on 100 x 50 arrays), so fusing such a block makes it several times cheaper.

Rules for `fn`: it takes Tensors (positional) and returns a Tensor, or a tuple whose first item
is the differentiable result and the rest are auxiliary tensors returned without gradient
(batch statistics, say). Every tensorgrad op it calls is recorded and recomputed on each call,
comparisons and the other non-differentiable ops (sign, isnan, logical_*, detach) included;
shapes, dtypes and `len` are static per trace and may be read. A traced tensor has no value:
whatever would freeze the first call's value raises `TraceError` at the line that does it,
naming the function (as JAX's tracer errors do): item(), bool() (so `if x.sum() > 0:`),
float(), int(), numpy(), tolist(), np.asarray(x), `.data`, Tensor(x), indexing with a traced
index, in-place changes, random draws (tg.rand/randn, dropout: draw outside and pass the mask
as an argument), a gradient taken inside, a captured tensor that requires grad (pass it as an
argument) and a traced tensor kept and used after its trace. Captured tensors that do not
require grad, and numpy arrays, are constants of the trace: they must not change between calls.
Keyword arguments are static: each distinct value gets its own trace. Under
`create_graph=True` the backward re-runs `fn` op by op, so higher-order gradients work as
without fusion. In reference mode (`tg.set_fast(False)`, tensorgrad/mode.py) a fused function
calls `fn` op by op, without a trace.

How: trace.py records `fn` as a Program (program.py); compiled.py compiles its forward at
once and each backward on its first call, which probes (plan.py) before the code generator
(codegen.py) writes it, deleting each value after its last use (liveness.py) and calling the
ops' specialised versions where there are some (lowerings.py). This module makes a fused call
one graph node and answers the engine's vjp calls for it.
"""
import functools
import importlib
from itertools import repeat
from operator import attrgetter

import numpy as np

from .. import mode as _mode
from ..autograd import Tensor
from ..autograd.function import Op, passthrough
from .compiled import Compiled
from .trace import TraceError, current_name, trace, trace_error

_t = importlib.import_module("..autograd.tensor", __package__)  # the module
_w = importlib.import_module("..autograd.walk", __package__)
_gm = importlib.import_module("..autograd.grad_mode", __package__)

__all__ = ["fuse", "TraceError"]

_data_of, _requires_grad = attrgetter("data"), attrgetter("requires_grad")
_HITS = _mode.HITS
_shape_dtype = attrgetter("shape", "dtype")


class _Saved:
    """What a fused node keeps for its backward (freed with the node's graph): the program,
    the forward's values, which inputs require grad, and the static keyword arguments."""

    __slots__ = ("program", "vals", "mask", "kw", "reference")

    def __init__(self, program, vals, mask, kw):
        self.program, self.vals, self.mask, self.kw = program, vals, mask, kw
        self.reference = None  # (g, every input's gradient) of the reference walk's last call

    def saved_values(self):
        """(what, array) for each constant and intermediate value kept for the backward (the
        inputs' arrays are the node's own): the walk checks that none was changed in place
        since the node was recorded (autograd/inplace.py). Those a compiled backward reads, or
        every one kept before it is compiled."""
        vals, program = self.vals, self.program.program
        if vals is None:
            return []
        reads = self.program.reads.get(self.mask)
        first = program.first_step
        out = []
        for s in range(program.n_in, len(vals)):
            v = vals[s]
            if v.__class__ is np.ndarray and (reads is None or s in reads):
                what = f"the constant v{s} of its program" if s < first else \
                    f"the value v{s} of its program (step '{program.steps[s - first][0].name}')"
                out.append((what, v))
        return out


def _fused_vjp_all(fn):
    """The gradients for all inputs of a fused node at once (the engine asks once per node)."""
    def vjp_all(xp, g, out, args, retain_graph=True):
        saved, tensors = args[-1], args[:-1]
        if not _mode.FAST and "fused_program" in _mode.OFF:  # made before: fn op by op
            return _fused_grads(fn, xp, g, saved, tensors)
        if not isinstance(g, Tensor):  # (the program gives zeros for unreached inputs)
            vals = saved.vals
            if vals is None:  # handed to a last backward that stopped (an error, Ctrl-C)
                raise _w.GraphFreedError(
                    f"fused[{getattr(fn, '__name__', 'fused')}]: its saved values were freed by "
                    f"an earlier backward that did not finish; run the forward again")
            if not retain_graph:  # the last backward: the program frees each value once used
                saved.vals = None
            return _unshared(saved.program.backward(xp, g, vals, saved.mask,
                                                    consume=not retain_graph), g)
        grads = _graph_grads(fn, tensors, saved.kw, g)  # create_graph: fn op by op
        for i, gi in enumerate(grads):
            if gi is None and saved.mask[i]:  # an input the result does not depend on
                grads[i] = Tensor(np.zeros_like(args[i].data))
        return grads
    return vjp_all


def _fused_vjp(fn):
    """One input's gradient (Op's variadic vjp protocol), which only the reference walk asks
    for, or the fast walk with vjp_all off: the compiled backward, or in reference mode `fn`
    run again op by op on the node's inputs and differentiated by the reference walk. The
    gradients are computed once per incoming gradient and each is handed out once: a leaf may
    keep it and add to it in place, so a later backward through the retained node computes them
    afresh even when it brings the same gradient array."""
    def vjp(xp, g, out, *args, argnum):
        saved, inputs = args[-1], args[:-1]
        cached = saved.reference
        if cached is None or cached[0] is not g or cached[1][argnum] is _HANDED_OUT:
            cached = saved.reference = (g, _fused_grads(fn, xp, g, saved, inputs))
        gi = cached[1][argnum]
        cached[1][argnum] = _HANDED_OUT
        return gi
    return vjp


_HANDED_OUT = object()  # a cached gradient _fused_vjp already returned


def _fused_grads(fn, xp, g, saved, inputs):
    """Every input's gradient of a fused node for the incoming `g`, as a new list."""
    create_graph = isinstance(g, Tensor)
    if not create_graph and saved.vals is not None and "fused_program" not in _mode.OFF:
        return list(_unshared(saved.program.backward(xp, g, saved.vals, saved.mask), g))
    if not create_graph:  # the node's input arrays as new leaves
        inputs = [Tensor._wrap(a).requires_grad_(m) for a, m in zip(inputs, saved.mask)]
    with _gm.enable_grad():
        grads = _graph_grads(fn, inputs, saved.kw, g, create_graph)
    for i, gi in enumerate(grads):
        if gi is None and saved.mask[i]:  # an input the result does not depend on
            grads[i] = Tensor(np.zeros_like(_data_of(inputs[i])))
    if not create_graph:
        grads = [None if gi is None else gi.data for gi in grads]
    return list(grads)


def _unshared(grads, g):
    """Copy any gradient whose memory the incoming `g` or another input's gradient already uses
    (inside a program one array can reach two inputs, through an add say, and `g` itself can
    pass through), so that every gradient is an array nothing else holds (Op.vjp_all's promise:
    the engine hands them to the leaves as they are)."""
    gbase = g if g.base is None else g.base
    bases = [gi if gi.base is None else gi.base for gi in grads if gi is not None]
    ids = set(map(id, bases))
    if len(ids) == len(bases) and id(gbase) not in ids:  # the usual case: nothing to copy
        return grads
    seen = set()
    for i, gi in enumerate(grads):
        if gi is None:
            continue
        base = gi if gi.base is None else gi.base
        if base is gbase or id(base) in seen:
            grads[i] = gi = gi.copy()
            base = gi
        seen.add(id(base))
    return grads


def _graph_grads(fn, tensors, kw, g, create_graph=True):
    """The gradients of `fn`'s result for `tensors` (None for those that do not require grad
    or that it does not depend on), by running fn op by op."""
    wanted = [i for i, t in enumerate(tensors) if t.requires_grad]
    ids = [id(tensors[i]) for i in wanted]
    if len(set(ids)) != len(ids):  # one tensor at several positions: one gradient per position
        tensors = tuple(_t.apply(_ALIAS, (t,), {}) if ids.count(id(t)) > 1 else t
                        for t in tensors)
    result = fn(*tensors, **kw)
    result = result[0] if isinstance(result, tuple) else result
    grads = [None] * len(tensors)
    found = _w.grad(result, [tensors[i] for i in wanted], g, create_graph=create_graph,
                    allow_unused=True)
    for i, gi in zip(wanted, found):
        grads[i] = gi
    return grads


def _reference_call(fn, tensors, kw, wrap_aux):
    """A fused function's call in reference mode: fn op by op. As from a fused node, the
    inputs requiring grad that the result does not depend on get a zero gradient, and the
    auxiliary results carry no gradient."""
    result = fn(*tensors, **kw)
    out, aux = (result[0], result[1:]) if isinstance(result, tuple) else (result, None)
    if isinstance(out, Tensor) and out.requires_grad and _gm._enabled:
        reached = {id(p) for t in _w._graph([out]) for p in t._parents} | {id(out)}
        ignored = [t for t in tensors if t.requires_grad and id(t) not in reached]
        if ignored:
            out = _t.node(_IGNORED_INPUTS, (out, *ignored), [out.data, *map(_data_of, ignored)],
                          list(range(1 + len(ignored))), out.data)
    if aux is None:
        return out
    aux = [a.detach() for a in aux]
    return (out, *(aux if wrap_aux else [a.data for a in aux]))


# the result (input 0) passes its gradient on; the other inputs get zeros
# the same array as a new graph node: a tensor passed at several positions gets a node per position
_ALIAS = Op("alias", lambda x: x, passthrough)
_IGNORED_INPUTS = Op("fused_inputs", None, lambda xp, g, out, *args, argnum:
                     g if argnum == 0 else np.zeros(args[argnum].shape, args[argnum].dtype),
                     variadic=True)


def fuse(fn):
    """Decorator: make `fn` (a composition of tensorgrad ops on Tensor arguments) one graph
    node, traced once per input shapes and dtypes; see the module docstring for its rules."""
    programs = {}
    partial = {}  # the programs traced with some fast paths off, by the set of those paths
    name = getattr(fn, "__name__", "fused")
    vjp_all = _fused_vjp_all(fn)
    op = Op(f"fused[{name}]", None, _fused_vjp(fn), variadic=True, fresh=True,
            vjp_all=vjp_all)

    needs = {}  # requires-grad mask -> positions of the inputs that require grad

    def apply(tensors, kw, wrap_aux):
        if not all(map(isinstance, tensors, repeat(Tensor))):
            i, t = next((i, t) for i, t in enumerate(tensors) if not isinstance(t, Tensor))
            raise TypeError(f"{name} (fused): argument {i} must be a Tensor, got "
                            f"{type(t).__name__}")
        if _t._tracer is not None:  # inside another trace: record our primitives there
            result = fn(*tensors, **kw)
            if wrap_aux or not isinstance(result, tuple):
                return result
            raise trace_error(current_name(), f"{name}'s auxiliary results feed side effects "
                              f"outside the trace (batch-norm running statistics of "
                              f"nn.Sequential's fused layers in training mode)",
                              "they would be applied once, with the first call's values: "
                              "call it outside the fused function, or in eval mode")
        traces = programs
        if not _mode.FAST:  # some or all fast paths off (tensorgrad/mode.py)
            if "fused_program" in _mode.OFF:
                return _reference_call(fn, tensors, kw, wrap_aux)
            traces = partial.setdefault(_mode.OFF, {})  # compiled without the paths off
        _HITS["fused_program"] += 1
        arrays = list(map(_data_of, tensors))
        key = (tuple(map(_shape_dtype, arrays)), tuple(kw.items()))
        entry = traces.get(key)
        if entry is None:
            traced, has_aux, examples = trace(fn, tensors, kw)
            entry = traces[key] = (Compiled(traced, examples), has_aux)
        compiled, has_aux = entry
        mask = tuple(map(_requires_grad, tensors))
        node = True in mask and _gm._enabled and compiled.differentiable(mask)
        vals = compiled.run(arrays, mask if node else None)
        out = vals[compiled.program.result]
        if node:
            need = needs.get(mask)
            if need is None:
                need = needs[mask] = [i for i, m in enumerate(mask) if m]
            saved = _Saved(compiled, vals, mask, kw)
            arrays.append(saved)
            result = _t.node(op, tensors + (saved,), arrays, need, out)
        else:
            result = Tensor._wrap(out)
        if not has_aux:
            return result
        if not wrap_aux:
            return (result, *[vals[j] for j in compiled.program.aux])
        return (result, *[Tensor._wrap(vals[j]) for j in compiled.program.aux])

    @functools.wraps(fn)
    def fused(*tensors, **kw):
        return apply(tensors, kw, True)

    # the same call with the auxiliary results as plain arrays (nn.Sequential's layer chains
    # feed batch-norm statistics straight into in-place updates: no Tensor for each)
    fused.call_raw_aux = lambda tensors, kw: apply(tuple(tensors), kw, False)
    fused.programs = programs  # (Compiled, has_aux) by input shapes/dtypes and keywords
    fused.partial_programs = partial  # those traced with some fast paths off, by those paths
    return fused
