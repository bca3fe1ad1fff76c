"""The hook points a tracer uses, declared where the ops are defined.

A tracer (tensorgrad/compile/trace.py) records the ops a function performs by setting the
`_tracer` hook of autograd/tensor.py, which `apply` calls with every op it runs. The ops and
layers declare here, beside their code, what the tracer needs to know about them:

- `static_read`: a function that reads a tensor's array for its shape, dtype or flags only, which
  a traced tensor (one without a value) allows;
- `value_read(what, why)`: a function that reads a tensor's values, which a traced tensor refuses
  with an error saying what was done and why a trace cannot record it;
- `record_nondiff`: how a call without gradient (a comparison, sign, detach) is recorded while a
  trace is active;
- `random_draw`: a call that draws random numbers, which a trace refuses;
- `in_place`: an in-place change of a tensor (`add_`, `x += y`), which a trace refuses;
- `callback`: a Python callback on the way (a gradient hook, a module's hooks), which a trace
  refuses.

Nothing here depends on the tracer: it reads the registries and provides the hook's methods.
"""
import importlib

import numpy as np

from .function import Op
from .tensor import Tensor

__all__ = ["static_read", "value_read", "record_nondiff", "random_draw", "in_place", "callback",
           "STATIC_READERS", "VALUE_READERS"]

_t = importlib.import_module(".tensor", __package__)  # the module (its `_tracer` hook)

STATIC_READERS = set()  # code objects that read a tensor's .data only for its shape or dtype
VALUE_READERS = {}  # code object of a reader -> (what it does, why a trace cannot record it)


def _codes(fn):
    """The code objects of `fn` and of the functions, comprehensions and lambdas inside it."""
    stack, out = [fn.__code__], []
    while stack:
        code = stack.pop()
        out.append(code)
        stack += [c for c in code.co_consts if isinstance(c, type(code))]
    return out


def static_read(fn):
    """Decorator: `fn` reads the arrays of the tensors it is given for their shape, dtype or
    flags only, so it may read a traced tensor's `.data` (the function is returned as is)."""
    STATIC_READERS.update(_codes(fn))
    return fn


def value_read(what, why):
    """Decorator: `fn` reads the values of the tensors it is given, which a traced tensor
    refuses with a TraceError saying `what` was done and `why` a trace cannot record it (the
    function is returned as is)."""
    def mark(fn):
        VALUE_READERS.update(dict.fromkeys(_codes(fn), (what, why)))
        return fn
    return mark


def random_draw(what):
    """Called by whatever draws random numbers (tg.randn, a dropout mask): an active trace
    refuses it, since its program would replay the first call's draw."""
    tracer = _t._tracer
    if tracer is not None:
        tracer.random_draw(what)


def in_place(what):
    """Called by every in-place change (autograd/inplace.py): an active trace refuses it, since
    its program would not replay the change."""
    tracer = _t._tracer
    if tracer is not None:
        tracer.in_place(what)


def callback(what):
    """Called where Python code would run in the middle of the ops (a gradient hook registered,
    a module with hooks called): an active trace refuses it, since its program would not call
    that code again."""
    tracer = _t._tracer
    if tracer is not None:
        tracer.callback(what)


_NONDIFF = {}  # (function, number of inputs) -> the Op recording it in a trace


def record_nondiff(fn, args, kw, name=None):
    """Inside a trace: fn on the arrays of `args` as a recorded op without gradient (a
    comparison, sign, detach): the trace's program recomputes it on every call, its backward
    skips it (its vjps are None), and it creates no graph node."""
    op = _NONDIFF.get((fn, len(args)))
    if op is None:
        op = _NONDIFF[fn, len(args)] = Op(name or getattr(fn, "__name__", "nondiff"), fn,
                                          *[None] * len(args))
    out = fn(*[_array(a) if isinstance(a, Tensor) else a for a in args], **kw)
    t = Tensor._wrap(out if out.__class__ is np.ndarray else np.asarray(out))
    _t._tracer(op, args, kw, t)
    return t


def _array(t):
    """A tensor's array as the engine reads it (a traced tensor refuses `.data` to others)."""
    d = t.__dict__
    return d["data"] if "data" in d else t.data
