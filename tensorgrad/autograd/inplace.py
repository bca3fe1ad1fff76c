"""In-place operations (`add_`, `x += y`, ...) and the version counters that keep a graph honest
about them, as in PyTorch.

An in-place op writes into the tensor's existing array, so views of it (flat parameter storage,
`detach()`, reshapes) see the change. Under `no_grad`, or when nothing involved requires grad,
that is all it does. In grad mode:
- on a leaf that requires grad it raises, as PyTorch does;
- otherwise it is recorded: the new value is computed out of place with tensor ops from `old`, a
  tensor holding a copy of the value before the change and the graph fields the tensor had (its
  node), then written into the array, and the tensor object takes the new node's graph fields.
  The graph links tensor objects, so an op recorded earlier on this tensor would now lead to
  the new node: it saved the array that changed, and the check below refuses it.

Every in-place change bumps the version of the array that owns the memory (a view's `.base`):
views and detached tensors share their base's version (`Tensor._version`). A graph node saves
its inputs' arrays and its output (a fused node also the intermediate values its backward
reads, `saved_values`). Nothing is stamped when an op is recorded: a node's creation number
(`_seq`) already orders it against the changes, each of which records the number it happened
at. The walk checks a node only if the latest change came after the node was recorded
(`last_change`, one comparison per node taken by the walk), and then raises if any value it
saved lives in an array changed since, naming the op.
"""
import weakref

import numpy as np

from . import grad_mode as _gm
from . import tensor as _t
from .registry import graph_namespace
from .tensor import Tensor
from .tracing import in_place

__all__ = ["modify", "bump", "version", "check_saved", "last_change"]

last_change = -1  # the creation number (_seq) at the latest in-place change; -1: none yet

# the graph fields of a tensor: what a recorded in-place op moves from the tensor to `old`, and
# from the new node to the tensor (`_site`: where detect_anomaly saw the op created)
_GRAPH = ("requires_grad", "_op", "_parents", "_raw", "_kw", "_need", "_seq", "_site")


class _Version:
    """The version counter of one array that owns its memory: how many in-place changes it had
    and the creation number at the latest one (`seq`)."""

    __slots__ = ("ref", "count", "seq")

    def __init__(self, base, key):
        self.ref = weakref.ref(base, lambda ref: _forget(key, ref))
        self.count = 0
        self.seq = -1


_VERSIONS = {}  # id(the array owning the memory) -> its _Version, while that array lives


def _forget(key, ref):
    v = _VERSIONS.get(key)
    if v is not None and v.ref is ref:
        del _VERSIONS[key]


def _owner(a):
    """The array that owns a's memory (a itself, or its base; numpy collapses view chains)."""
    while True:
        base = a.base
        if base is None or not isinstance(base, np.ndarray):
            return a
        a = base


def _entry(a):
    base = _owner(a)
    v = _VERSIONS.get(id(base))
    return v if v is not None and v.ref() is base else None


def version(a):
    """How many in-place changes the memory of array `a` had (shared by all its views)."""
    v = _entry(a)
    return 0 if v is None else v.count


def bump(a):
    """Count an in-place change of array `a` (its owner's version) at a new creation number."""
    global last_change
    base = _owner(a)
    key = id(base)
    v = _VERSIONS.get(key)
    if v is None or v.ref() is not base:
        v = _VERSIONS[key] = _Version(base, key)
    v.count += 1
    v.seq = last_change = _t._next_seq()


def check_saved(t):
    """Raise if a value node `t` saved for its backward (its inputs' arrays, its output, the
    values a fused node keeps) was changed in place after `t` was recorded."""
    for i, a in enumerate(t._raw):
        if isinstance(a, np.ndarray):
            _check(t, a, f"its input {i}")
        else:
            values = getattr(a, "saved_values", None)  # a fused node's (compile/fuse.py)
            if values is not None:
                for what, v in values():
                    _check(t, v, what)
    _check(t, t.data, "its output")


def _check(t, a, what):
    v = _entry(a)
    if v is not None and v.seq > t._seq:
        raise RuntimeError(
            f"one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: {what} (shape {a.shape}, {a.dtype}), saved by op "
            f"'{t._op.name}', was changed in place after the op was recorded (its memory is "
            f"now at version {v.count}). Hint: change a clone() instead, or do the in-place "
            f"change before the op uses the tensor")


# ---- the in-place change ------------------------------------------------------------------------
def modify(self, name, operands, write, build, casting="same_kind"):
    """Change tensor `self` in place and return it: `write(array)` updates its array with numpy
    when nothing is recorded; when the change is recorded (grad mode and something requires
    grad), `build(old, *operands)` computes the new value with tensor ops (see the module
    docstring), cast into self's dtype with `casting`."""
    in_place(name)  # a fuse trace refuses it: its program would not replay the change
    data = self.data
    if _gm._enabled:
        if self.requires_grad:
            if self._op is None:
                raise RuntimeError(f"a leaf Variable that requires grad is being used in an "
                                   f"in-place operation ({name}): change it under "
                                   f"tg.no_grad(), as an optimizer does, or change a clone()")
            return _record(self, name, operands, build, casting)
        if data.dtype.kind == "f" and any(isinstance(o, Tensor) and o.requires_grad
                                          for o in operands):
            return _record(self, name, operands, build, casting)
    write(data)
    bump(data)
    return self


def _record(self, name, operands, build, casting):
    """The recorded in-place change (see the module docstring)."""
    data = self.data
    snap = np.array(data, order="K")  # the value before: the recorded op's input
    old = Tensor._wrap(snap)
    fields = self.__dict__
    for k in _GRAPH:
        if k in fields:
            setattr(old, k, fields[k])
    args = []
    for o in operands:
        if o is self:
            o = old
        elif isinstance(o, (Tensor, np.ndarray)):
            arr = o.data if isinstance(o, Tensor) else o
            if np.may_share_memory(arr, data):
                if arr is not data or getattr(o, "requires_grad", False):
                    raise RuntimeError(
                        f"{name}: unsupported operation: some elements of the input tensor and "
                        f"the written-to tensor refer to a single memory location. Please "
                        f"clone() the tensor before performing the operation.")
                o = Tensor._wrap(snap)  # the same array without grad (a detached self)
        args.append(o)
    new = build(old, *args)
    if new.data.shape != data.shape:
        raise ValueError(f"{name}: output with shape {data.shape} doesn't match the broadcast "
                         f"shape {new.data.shape}")
    np.copyto(data, new.data, casting=casting)
    bump(data)
    got = new.__dict__
    for k in _GRAPH:
        if k in got:
            fields[k] = got[k]
        else:
            fields.pop(k, None)
    if "_hooks" in fields and old._op is not None:  # hooks registered before the change see
        old._hooks, old._at_node = fields.pop("_hooks"), True  # the value before it (torch)
        self._at_node = self._retains_grad
    if self._op is not None:
        self._seq = _t._next_seq()  # after the change: the new node saved nothing it changed
    return self


# ---- the methods --------------------------------------------------------------------------------
def _array(x):
    return x.data if isinstance(x, Tensor) else x


def _mask(old):
    """All False, old's shape: where(_mask(old), old, value) is `value` with a zero gradient
    for old (fill_, zero_, copy_ recorded in the graph)."""
    return np.zeros(old.shape, bool)


def _arith(name, ufunc, op):
    def method(self, other, *, alpha=1):
        def write(data):
            o = _array(other)
            ufunc(data, o if alpha == 1 else np.multiply(o, alpha), out=data,
                  casting="same_kind")
        return modify(self, name, (other,), write,
                      lambda old, o: op(old, o if alpha == 1 else o * alpha))
    method.__name__ = method.__qualname__ = name
    return method


def _scale(name, ufunc, op):
    def method(self, other):
        def write(data):
            ufunc(data, _array(other), out=data, casting="same_kind")
        return modify(self, name, (other,), write, op)
    method.__name__ = method.__qualname__ = name
    return method


add_ = _arith("add_", np.add, lambda a, b: a + b)
add_.__doc__ = "self += alpha * other, in place (PyTorch's add_)."
sub_ = _arith("sub_", np.subtract, lambda a, b: a - b)
sub_.__doc__ = "self -= alpha * other, in place (PyTorch's sub_)."
mul_ = _scale("mul_", np.multiply, lambda a, b: a * b)
mul_.__doc__ = "self *= other, in place."
div_ = _scale("div_", np.true_divide, lambda a, b: a / b)
div_.__doc__ = "self /= other, in place (true division)."


def fill_(self, value):
    """Every element set to `value` (a number or a 0-d tensor), in place."""
    def write(data):
        data[...] = _array(value)
    return modify(self, "fill_", (value,), write,
                  lambda old, v: graph_namespace().where(_mask(old), old, v))


def zero_(self):
    """Every element set to 0, in place."""
    def write(data):
        data[...] = 0
    return modify(self, "zero_", (), write,
                  lambda old: graph_namespace().where(_mask(old), old, 0))


def copy_(self, src):
    """src's values (broadcast to self's shape, converted to self's dtype) copied in."""
    def write(data):
        np.copyto(data, _array(src), casting="unsafe")
    return modify(self, "copy_", (src,), write,
                  lambda old, s: graph_namespace().where(_mask(old), old, s), casting="unsafe")


def clamp_(self, min=None, max=None):
    """Values limited to [min, max], in place (also `clip_`)."""
    if min is None and max is None:
        raise ValueError("clamp_: give at least one of min / max")

    def write(data):
        np.clip(data, _array(min), _array(max), out=data)
    return modify(self, "clamp_", (min, max), write, lambda old, lo, hi: old.clip(lo, hi))


def _install():
    T = Tensor
    T.add_, T.sub_, T.mul_, T.div_ = add_, sub_, mul_, div_
    T.fill_, T.zero_, T.copy_, T.clamp_, T.clip_ = fill_, zero_, copy_, clamp_, clamp_
    T.__iadd__, T.__isub__, T.__imul__, T.__itruediv__ = add_, sub_, mul_, div_
    T._version = property(lambda self: version(self.data), doc=(
        "How many in-place changes this tensor's memory had (shared with its views)."))


_install()
