"""The graph walk's fast hooks (tensorgrad/autograd/walk.py, `Hooks`), installed at import.

- `expand` and `fit`: a reduction's compact gradient (size-1 axes where a full one would repeat
  a value) flows through elementwise ops and is broadcast only where an op or a leaf needs the
  full shape (compact_gradient; switched off, the namespace's reduce_to spreads it at once).
- `accumulator(off, training)`: how a gradient reaches a leaf. A leaf keeps the fresh array a
  vjp returned as its .grad (fresh_gradient); later gradients are added in place into the array
  this walk gave it (inplace_accumulate); the L2 term's lazy product x * s (xp.Scaled) waits for
  the leaf's other gradient and is folded into it in one pass (lazy_scaled, axpy).
A path switched off (tensorgrad/mode.py) takes the plain way in its hook: a copy, a new array
for a sum, the product computed at once, numpy's two passes.
"""
import sys

import numpy as np

from .. import mode as _mode
from ..autograd import walk as _walk
from ..autograd.tensor import Tensor, _new_tensor
from ..autograd.xp import Scaled
from .blas import axpy, two_pass

__all__ = ["expand", "fit", "accumulator"]

_HITS = _mode.HITS
_ndarray = np.ndarray


def expand(xp, g, shape):
    """A compact gradient meets an op that needs its full gradient: broadcast (a view)."""
    _HITS["compact_gradient"] += 1
    return xp.broadcast_to(g, shape)


def fit(xp, gi, x, full):
    """`gi` summed to x's shape and dtype (a lazy product computed first). Where x was
    broadcast, a compact `gi` of an elementwise op stands for `full`: reduce_to counts its
    copies instead of spreading it (see xp.reduce_to)."""
    if gi.__class__ is Scaled:
        gi = gi.array()  # (its dtype may follow s's: cast below)
    shape = gi.shape
    if shape != x.shape or (full is not None and shape != full):
        if full is not None and shape != full:
            _HITS["compact_gradient"] += 1
        gi = xp.reduce_to(gi, x.shape, full)
    return gi if gi.dtype == x.dtype else xp.astype(gi, x.dtype)


def accumulator(off, training):
    """The accumulate hook (walk.Hooks) with the fast paths in `off` switched off. `training`:
    the ordinary backward (every leaf's .grad, no create_graph), the only walk where a leaf
    keeps a fresh array or a lazy product waits; in the others each gradient is fitted and
    delivered (`deliver`)."""
    fresh = training and "fresh_gradient" not in off
    inplace = "inplace_accumulate" not in off
    trust_all = "vjp_all" not in off  # an op's vjp_all ran: its gradients are arrays of their own
    add_lazy = _add_lazy_two_pass if "axpy" in off else _add_lazy

    def make(xp, fit, results, tids, into_grad, create_graph):
        owned = set() if inplace else _NOTHING_OWNED  # ids of .grad arrays this walk made
        lazy = {}  # id(leaf) -> (leaf, [xp.Scaled, ...]) waiting for another gradient

        def deliver(t, g, upstream=None):
            """Hand a finished gradient to `t`: into results (grad) or into t.grad (backward).

            `g` may alias `upstream` (the gradient flowing into the op that produced it: add,
            reshape and friends pass it through) and then must be copied before a leaf keeps
            it. A fresh array the walk computed is owned: kept as is, and later arrivals add
            into it in place. A 0-d `g` may be a numpy scalar (what ufuncs return for 0-d
            operands): a leaf keeps an array, since later terms are added into it in place.
            """
            if g.shape != t.data.shape:  # a compact gradient becomes full-size at delivery
                g = xp.broadcast_to(g, t.data.shape)
                _HITS["compact_gradient"] += 1
            if not into_grad:
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
                if g.__class__ is not _ndarray:
                    g = np.asarray(g)  # the sum of 0-d arrays is a scalar
            elif g.__class__ is not _ndarray:
                g = np.array(g)
            elif upstream is None or not g.flags.writeable or np.may_share_memory(g, upstream):
                g = g.copy()  # the caller's array, a broadcast, or a pass-through of one
            t._grad = Tensor._wrap(g)
            owned.add(id(g))

        kept = [0]  # leaves that kept a fresh array (counted once, at the end)

        def keep(p, gi):
            """p, a leaf without a gradient, keeps the fresh array gi as its .grad."""
            p._grad = w = _new_tensor(Tensor)
            w.data = gi
            owned.add(id(gi))
            kept[0] += 1
            if lazy and id(p) in lazy:
                add_lazy(lazy.pop(id(p))[1], gi)

        def add_training(p, gi, full=None, upstream=None, op=None):
            if upstream is None:  # a seed or a retained gradient: copied
                return deliver(p, gi)
            if p._grad is None:
                cls = gi.__class__
                if cls is _ndarray:
                    if fresh and trust_all and op.vjp_all is not None and gi.flags.writeable:
                        # an array of its own (shape, dtype, ownership: see Op.vjp_all): kept
                        return keep(p, gi)
                elif cls is Scaled and gi.dtype == p.data.dtype:  # x * s, not computed yet
                    lazy.setdefault(id(p), (p, []))[1].append(gi)  # wait for another gradient
                    _HITS["lazy_scaled"] += 1
                    return
            x = p.data
            if gi.__class__ is not _ndarray or gi.shape != x.shape or gi.dtype != x.dtype or \
                    (full is not None and gi.shape != full):
                gi = fit(xp, gi, x, full)
            if fresh and p._grad is None and gi.shape == x.shape and gi is not upstream and \
                    gi.base is None and op.fresh and gi.__class__ is _ndarray:
                return keep(p, gi)  # a fresh array from a built-in vjp
            deliver(p, gi, upstream)
            if lazy and id(p) in lazy:
                add_lazy(lazy.pop(id(p))[1], p._grad.data)  # owned after deliver

        def finish():
            _HITS["fresh_gradient"] += kept[0]
            for p, pending in lazy.values():  # no other gradient came: compute them now
                total = pending[0].array()  # a fresh array: the leaf keeps it
                if total.__class__ is not _ndarray or total.dtype != p.data.dtype:
                    total = np.asarray(total, p.data.dtype)  # a 0-d scalar, or in s's dtype
                add_lazy(pending[1:], total)
                p._grad = Tensor._wrap(total)

        if not training:
            def add(t, g, full=None, upstream=None, op=None):
                if upstream is not None:
                    g = fit(xp, g, t.data, full)
                deliver(t, g, upstream)
            return add, _nothing
        return add_training, finish

    return make


def _nothing():
    pass


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
_walk.install(sys.modules[__name__])
