"""The op registry: every public op once, and everything that lists ops derived from it.

An op registers itself where it is defined (tensorgrad/ops/*.py): `Op(..., method=True)` for a
primitive that is its own public function, `@register(method=True)` on a Python wrapper around
one (axis arguments, defaults), `alias(name, fn)` for a second name. From here come
tensorgrad.ops's functions and `__all__`, `DIFFERENTIABLE`, the Tensor methods, and the names
of the array namespaces vjps run against: xp.numpy_ns and xp.reference_ns in an ordinary
backward (xp.py's fast versions where it has one, else the op's forward on arrays) and the
create_graph namespace, tensorgrad.ops, which hands itself over with `set_graph_namespace`
(autograd never imports ops).
"""
import types
from contextlib import contextmanager

from . import grad_mode as _gm
from . import tensor as _t
from . import xp as _xp

__all__ = ["register", "alias", "unregister", "scope", "DIFFERENTIABLE", "REGISTRY", "expose",
           "set_graph_namespace", "graph_namespace"]

_NOKW = {}  # shared empty parameter dict (never mutated)

REGISTRY = {}
"""{public name: Entry} of every registered op, alias and non-differentiable function."""

DIFFERENTIABLE = {}
"""{name: public function} of the differentiable ops (aliases not repeated): each one is
property-tested by tests/ops (gradcheck, gradgradcheck, its numpy reference)."""

_public = []  # modules that expose every public function (tensorgrad.ops, tensorgrad)
_graph = []  # [the create_graph namespace]


class Entry:
    """One registered name: its public function, the Tensor methods it installed and what it
    added to the array namespaces (so that `unregister` takes exactly that back)."""

    __slots__ = ("name", "fn", "methods", "listed", "added")

    def __init__(self, name, fn, methods, listed):
        self.name, self.fn, self.methods, self.listed = name, fn, methods, listed
        self.added = []  # (namespace, name) pairs set for this entry

    def __repr__(self):
        return f"Entry({self.name!r}, methods={self.methods})"


def _is_op(fn):
    return hasattr(fn, "vjps") and hasattr(fn, "forward") and fn.forward is not None


def _method(fn):
    """The Tensor method for `fn`: an Op applied to self (and further inputs), a Python function
    bound as it is (self its first argument)."""
    if _is_op(fn):
        if len(fn.vjps) == 1 and not fn.variadic:
            return lambda self, **params: _t.apply(fn, (self,), params or _NOKW)
        return lambda self, *args, **params: _t.apply(fn, (self,) + args, params or _NOKW)
    if isinstance(fn, types.FunctionType):
        return fn
    return lambda self, *args, **kwargs: fn(self, *args, **kwargs)


def _on_arrays(fn):
    """The array version of a public function for the ordinary backward's namespaces: an Op's
    forward (looked up at each call: reference mode swaps some), or the function run without
    recording a graph on the arrays. Correct, not tuned: xp.py holds the fast versions of
    what the built-in vjps call."""
    if _is_op(fn):
        return lambda *arrays, **params: fn.forward(*arrays, **params)

    def on_arrays(*args, **kwargs):
        with _gm.no_grad():
            out = fn(*args, **kwargs)
        return out.data if isinstance(out, _t.Tensor) else out
    on_arrays.__name__ = getattr(fn, "__name__", "on_arrays")
    return on_arrays


def register(fn=None, *, name=None, method=False, differentiable=True):
    """Register `fn` as the public op `name` (default fn.__name__, or an Op's name); returns fn.

    method: True (a Tensor method of the same name), a method name, or a tuple of them.
    differentiable=False: a public function outside `DIFFERENTIABLE` (comparisons, sign).
    Used as a decorator with or without arguments: ``@register(method=True)``.
    """
    if fn is None:
        return lambda f: register(f, name=name, method=method, differentiable=differentiable)
    return _add(fn, name, method, listed=bool(differentiable))


def alias(name, fn, method=False):
    """A second public name for a registered op (numpy's `negative` for `neg`), not listed again
    in DIFFERENTIABLE; `method` as in `register`."""
    return _add(fn, name, method, listed=False)


def _add(fn, name, method, listed):
    if name is None:
        name = fn.name if _is_op(fn) else fn.__name__
    if name in REGISTRY:
        raise ValueError(f"op {name!r} is registered already ({REGISTRY[name].fn!r})")
    if method is True:
        methods = (name,)
    else:
        methods = (method,) if isinstance(method, str) else tuple(method or ())
    taken = [m for m in methods if hasattr(_t.Tensor, m)]
    if taken:
        raise ValueError(f"op {name!r}: Tensor already has an attribute {taken[0]!r}")
    clash = [ns.__name__ for ns in _public if getattr(ns, name, fn) is not fn]
    if clash:
        raise ValueError(f"op {name!r}: {clash[0]} has another {name!r} already")
    entry = REGISTRY[name] = Entry(name, fn, methods, listed)
    for m in methods:
        setattr(_t.Tensor, m, _method(fn))
    if listed:
        DIFFERENTIABLE[name] = fn
    for ns in (_xp.numpy_ns, _xp.reference_ns):
        if not hasattr(ns, name):  # xp.py's own (faster) version stays
            setattr(ns, name, _on_arrays(fn))
            entry.added.append((ns, name))
    for ns in _public:
        _expose(ns, entry)
    return fn


def _expose(ns, entry):
    setattr(ns, entry.name, entry.fn)
    entry.added.append((ns, entry.name))
    names = getattr(ns, "__all__", None)
    if isinstance(names, list) and entry.name not in names:
        names.append(entry.name)


def unregister(name):
    """Take a registered name back: its Tensor methods, its DIFFERENTIABLE entry and the names
    it added to the namespaces."""
    entry = REGISTRY.pop(name)
    for m in entry.methods:
        delattr(_t.Tensor, m)
    DIFFERENTIABLE.pop(name, None)
    for ns, n in entry.added:
        if hasattr(ns, n):
            delattr(ns, n)
        names = getattr(ns, "__all__", None)
        if isinstance(names, list) and n in names:
            names.remove(n)


@contextmanager
def scope():
    """Whatever is registered inside the block is unregistered at its end (tests' throwaway
    ops)."""
    before = set(REGISTRY)
    try:
        yield
    finally:
        for name in [n for n in reversed(REGISTRY) if n not in before]:
            unregister(name)


def expose(ns):
    """Give the module `ns` every registered op's public function, now and later (tensorgrad)."""
    if ns not in _public:
        _public.append(ns)
        for entry in REGISTRY.values():
            _expose(ns, entry)


def set_graph_namespace(ns):
    """Make `ns` (tensorgrad.ops, at its import) the namespace vjps run against under
    create_graph: it receives every registered op's public function, now and later."""
    _graph[:] = [ns]
    expose(ns)


def graph_namespace():
    """The create_graph namespace (tensorgrad.ops)."""
    if not _graph:
        raise RuntimeError("no create_graph namespace registered: import tensorgrad.ops")
    return _graph[0]
