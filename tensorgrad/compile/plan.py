"""Probing: run a program's backward once on real arrays and note what each place needs.

A vjp may return a gradient of another shape than its input's (a broadcast operand's, a compact
one from a reduction: see xp.reduce_to), of another dtype, or a lazy xp.Scaled product, and a
shape op may be handed a compact gradient it must see in full. Which of these happen depends on
the shapes and dtypes only, which a compiled backward's key fixes, so `probe` runs the backward
once, op by op, on the example arrays, checking at every such place (a *site*) as the general
engine does, and returns the gradients with a `Plan`: per site what it met, and per vjp the
lowering (lowerings.py) to call instead of the general function, if any. The code generator
(codegen.py) then writes only the fixes each site needed.

Sites are keyed by what they check: ("out", k) the gradient handed to step k (a shape op),
("in", k, i) the gradient step k's vjp returns for its input i, ("grad", i) input i's final
gradient, which must be a full array of its own.
"""
from typing import NamedTuple

import numpy as np

from ..autograd.function import passthrough
from ..autograd.xp import Scaled, reduce_to
from .lowerings import lowering_for

__all__ = ["Site", "Plan", "probe"]


class Site(NamedTuple):
    """What the check at one site met, and what it needs."""

    shape: tuple  # the gradient's shape there
    dtype: np.dtype  # and dtype
    scaled: bool  # a lazy xp.Scaled product, computed there (other gradients add to it)
    kept: bool = True  # ("in" sites) already of the input's shape: no summing down
    target: np.dtype = None  # ("in" sites) the input's dtype, which the gradient is cast to
    full: tuple = None  # ("in" sites) the shape a compact gradient stands for (xp.reduce_to)


class Plan(NamedTuple):
    """The probe's findings for one backward (a requires-grad mask, a gradient shape/dtype)."""

    sites: dict  # site key -> Site
    lowered: dict  # (step, input position) -> the lowered vjp to call there


def _check(sites, key, t, shape, dtype, kind, full=None):
    """Note at site `key` what `t` is, then bring it to `shape` (and `dtype`) as the general
    engine does: "broadcast" a compact gradient for a shape op, "full" an input's gradient as
    an array of its own, "reduce" a vjp's result summed down and cast to its input's."""
    scaled = t.__class__ is Scaled
    if scaled:
        t = t.array()
    if kind == "broadcast":
        sites[key] = Site(t.shape, t.dtype, scaled)
        return t if t.shape == shape else np.broadcast_to(t, shape)
    if kind == "full":
        sites[key] = Site(t.shape, t.dtype, scaled)
        return t if t.shape == shape else np.broadcast_to(t, shape).copy()
    reduced = t if t.shape == shape and (full is None or full == shape) else \
        reduce_to(t, shape, full)
    sites[key] = Site(t.shape, t.dtype, scaled, reduced is t, dtype, full)
    return reduced if reduced.dtype == dtype else reduced.astype(dtype)


def probe(program, mask, xp, g, vals, lowering=True):
    """(the gradients of the program's result for the inputs flagged in `mask`, None
    elsewhere; the Plan): the backward run op by op on `vals` (every slot's value) and the
    incoming gradient `g`. `lowering`: look for lowered vjps (each is run once on the arrays
    it would meet, to see what it returns)."""
    shapes, n_in = program.shapes, program.n_in
    reach = program.reach(mask)[1]
    sites, lowered = {}, {}
    grads = {program.result: g}
    for k in range(len(program.steps) - 1, -1, -1):
        op, spec, kw = program.steps[k]
        s = program.slot(k)
        gs = grads.pop(s, None)  # complete: every step reading slot s came later
        if gs is None or not reach[k]:
            continue
        if not op.elementwise:  # a compact gradient meets a shape op
            gs = _check(sites, ("out", k), gs, shapes[s], None, "broadcast")
        low = lowering_for(op) if lowering else None
        args = (vals[s], *[vals[b] for b in spec])
        for i in reach[k]:
            a = spec[i]
            fn, params = (op.vjps[0], dict(kw, argnum=i)) if op.variadic else (op.vjps[i], kw)
            value = gs if fn is passthrough else fn(xp, gs, *args, **params)
            full = shapes[s] if op.elementwise else None
            t = _check(sites, ("in", k, i), value, shapes[a], vals[a].dtype, "reduce", full)
            specialised = None if low is None else low(i, [gs, *args], **kw)
            if specialised is not None:  # its result may differ in shape: plan for what it
                met = specialised(xp, gs, *args)  # returns (of the input's shape: summed)
                _check(sites, ("in", k, i), met, shapes[a], vals[a].dtype, "reduce",
                       None if met.shape == shapes[a] else full)
                lowered[k, i] = specialised
            grads[a] = t if a not in grads else grads[a] + t
    for i in sorted(grads):  # an input's gradient may still be compact: make it full
        if i < n_in:
            grads[i] = _check(sites, ("grad", i), grads[i], shapes[i], None, "full")
    out = [grads[i] if i in grads else np.zeros_like(vals[i]) if mask[i] else None
           for i in range(n_in)]
    return out, Plan(sites, lowered)
