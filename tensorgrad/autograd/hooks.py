"""Gradient hooks: `Tensor.register_hook` and the handles every registration returns.

A hook `fn(grad)` sees a tensor's gradient and may return a replacement (None keeps it), with
PyTorch's semantics. An intermediate's hooks run on its complete gradient when the walk takes
the node (walk.py `_at_node`: a node that has hooks or retains its gradient is marked `_at_node`,
the attribute the walk already reads for retain_grad), before `.grad` is retained and before the
gradient flows on. A leaf's hooks run once per backward on the total of that backward, before it
is added to `.grad`: the walk picks the hooked accumulate (`hooked`) only while some leaf has a
hook (`HOOKED_LEAVES`), one check per backward, so a walk without hooks does no work for them.
"""
import itertools
import weakref

import numpy as np

from . import tracing as _tracing
from .tensor import Tensor

__all__ = ["RemovableHandle", "HookDict", "HOOKED_LEAVES"]

# id(leaf) -> weak reference, for the leaves with at least one hook: the walk's one check (a
# dict: a WeakSet would compare tensors with their elementwise ==)
HOOKED_LEAVES = {}


class HookDict(dict):
    """Hooks by handle id, in registration order; `emptied()` (if set) runs when the last one
    is removed. Weak-referenceable, so a handle keeps no tensor or module alive."""

    __slots__ = ("__weakref__", "emptied")

    def __init__(self, emptied=None):
        super().__init__()
        self.emptied = emptied


class RemovableHandle:
    """What a registration returns (torch.utils.hooks.RemovableHandle): `remove()` takes the
    hook out (removing it again does nothing), as does leaving a `with` block."""

    _ids = itertools.count()

    def __init__(self, hooks, hook, prepend=False):
        self.id = next(RemovableHandle._ids)
        self._hooks = weakref.ref(hooks)
        hooks[self.id] = hook
        if prepend:
            for key in [k for k in hooks if k != self.id]:
                hooks[key] = hooks.pop(key)

    def remove(self):
        hooks = self._hooks()
        if hooks is not None and hooks.pop(self.id, None) is not None and not hooks \
                and hooks.emptied is not None:
            hooks.emptied()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def register_hook(self, hook):
    """Register `hook(grad) -> Tensor or None` on this tensor's gradient; returns a handle
    whose `remove()` takes it out. An intermediate's hooks see its complete gradient before it
    flows on (and before `retain_grad` keeps it); a leaf's see the total of each backward before
    it is added to `.grad`. Several hooks run in registration order, each on the previous one's
    result; under create_graph the gradient carries a graph and a replacement stays
    differentiable."""
    if not self.requires_grad:
        raise RuntimeError(f"register_hook: cannot register a hook on a tensor that doesn't "
                           f"require gradient (shape {self.shape}, dtype {self.dtype})")
    if not callable(hook):
        raise TypeError(f"register_hook: expected a callable hook(grad), got "
                        f"{type(hook).__name__}")
    _tracing.callback("register_hook() registers a gradient hook (a Python callback)")
    hooks, key = self._hooks, id(self)
    if hooks is None:
        self._hooks = hooks = HookDict()
        if self._op is None:
            hooks.emptied = lambda: HOOKED_LEAVES.pop(key, None)
        else:
            self._at_node = True
    if self._op is None and key not in HOOKED_LEAVES:  # (again, after its hooks were removed)
        HOOKED_LEAVES[key] = weakref.ref(self, lambda _: HOOKED_LEAVES.pop(key, None))
    return RemovableHandle(hooks, hook)


Tensor.register_hook = register_hook


def _name(hook):
    return getattr(hook, "__name__", type(hook).__name__)


def run(t, g):
    """`g`, the complete gradient of `t` (an array, or a Tensor under create_graph), through
    t's hooks in order. The hooks see a full-size gradient of their own (a copy: changing it in
    place reaches no other gradient); what they return is checked and copied likewise."""
    graph = isinstance(g, Tensor)
    g = _full(g, t.shape)
    mine = g if graph else Tensor._wrap(np.array(g, dtype=t.dtype))
    out = mine
    for hook in list(t._hooks.values()):
        new = hook(out)
        if new is None:
            continue
        if not isinstance(new, Tensor):
            raise TypeError(f"hook '{_name(hook)}' returned {type(new).__name__}: a gradient "
                            f"hook must return a Tensor or None")
        if new.shape != t.shape:
            raise RuntimeError(f"hook '{_name(hook)}' has changed the size of value: it "
                               f"returned shape {new.shape} for a gradient of shape {t.shape}")
        if new.dtype != t.dtype:
            raise RuntimeError(f"hook '{_name(hook)}' has changed the type of value (was "
                               f"{t.dtype} got {new.dtype})")
        out = new
    if graph:
        return out
    return out.data if out is mine else np.array(out.data)


def _full(g, shape):
    """g broadcast to `shape` if it is a compact gradient (the fast walk keeps a reduction's
    size-1 axes): hooks and module hooks see full-size gradients."""
    if g.shape == shape:
        return g
    if isinstance(g, Tensor):
        from .registry import graph_namespace
        return graph_namespace().broadcast_to(g, shape)
    return np.broadcast_to(g, shape)


def hooked(accumulate):
    """The accumulate hook (walk.Hooks) of a walk where some leaf has hooks: a hooked leaf's
    gradients are summed apart, and at the end of the walk its total goes through its hooks
    and then, as one finished gradient, to `accumulate`'s `add`."""
    def make(xp, fit, results, tids, into_grad, create_graph):
        add, finish = accumulate(xp, fit, results, tids, into_grad, create_graph)
        totals = {}  # id(leaf) -> [leaf, its total so far]

        def add_hooked(t, g, full=None, upstream=None, op=None):
            if not t._hooks or t._op is not None:
                return add(t, g, full, upstream, op)
            g = fit(xp, g, t.data, full)
            entry = totals.get(id(t))
            if entry is None:
                totals[id(t)] = [t, g if create_graph else np.array(g)]
            else:
                entry[1] = entry[1] + g
            return None

        def finish_hooked():
            for t, total in totals.values():
                add(t, run(t, total))
            totals.clear()
            finish()
        return add_hooked, finish_hooked
    return make


def pending(t):
    """The gradient the walk holds for node `t` so far (complete once every node created after
    it was taken), full-size, or None: what a module's backward hook reads of the other inputs
    of its group (nn/hooks.py)."""
    return None if t._g is None else _full(t._g, t.shape)


def set_pending(t, g):
    """Replace the gradient the walk holds for node `t` (an array, or a Tensor under
    create_graph)."""
    t._g = g
