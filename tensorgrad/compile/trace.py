"""Tracing: record the primitive ops a function performs as a Program (program.py).

The trace runs the function on `_Traced` tensors (its leaves, and every op's output switches to
that class), through the `_tracer` hook of autograd/tensor.py that `apply` calls with each op it
runs. A traced tensor has no value: its `.data` only the engine's own readers get (`apply`, and
the functions marked `static_read` in autograd/tracing.py, which look at shapes and dtypes only).
Whatever would freeze the first call's value raises TraceError at the user's line that does it,
naming the function (as JAX's tracer errors do); the functions marked `value_read` say what they
did and why. The eager path is untouched: tensors become traced by a class switch inside the
trace.
"""
import importlib
import os
import sys

import numpy as np

from ..autograd import Tensor
from ..autograd.function import Function
from ..autograd.sites import user_line
from ..autograd.tracing import (
    STATIC_READERS,
    VALUE_READERS,
    record_nondiff,
    static_read,
    value_read,
)
from .program import Program

_t = importlib.import_module("..autograd.tensor", __package__)  # the module
_w = importlib.import_module("..autograd.walk", __package__)
_gm = importlib.import_module("..autograd.grad_mode", __package__)

__all__ = ["TraceError", "trace", "trace_error", "current_name"]


class TraceError(RuntimeError):
    """A fused function did something its trace cannot record: read a traced tensor's value
    (item(), bool(), .data, ...), changed one in place, drew random numbers, or used a tensor
    that requires grad without taking it as an argument. The message names the function and
    the line."""


class _TraceState:
    """One trace: the fused function's name, and whether it is still recording."""

    __slots__ = ("name", "active")

    def __init__(self, name):
        self.name, self.active = name, True


_NO_VALUE = ("inside a fused function a tensor has no value: fuse records the ops once per "
             "input shapes and replays them, so a value read here would stay its first call's "
             "value on every later call. Compute with tensor ops instead (tg.where for a "
             "branch), or call the function without fuse")


def trace_error(name, what, why=_NO_VALUE):
    """The TraceError for `what` done while tracing the function `name`, at the user's line."""
    return TraceError(f"fuse({name}): {what}\n  at {user_line()}\n{why[0].upper()}{why[1:]}.")


def current_name():
    """The name of the function being traced."""
    state = getattr(_t._tracer, "state", None)
    return "?" if state is None else state.name


def _reader(code):
    """Who read a traced value, for the message: the tensorgrad function's qualified name."""
    return getattr(code, "co_qualname", code.co_name)


class _Traced(Tensor):
    """A tensor of a trace (its leaves and every op's output): the engine reads its array, user
    code may read only its shape and dtype. Anything that would read its value, change it in
    place or keep it past the trace raises TraceError (fuse.py lists what). Tensors
    become traced by a class switch inside the trace, so the eager path pays nothing."""

    _trace = None  # the _TraceState

    @property
    def data(self):
        code = sys._getframe(1).f_code
        if code in STATIC_READERS or (code is _APPLY and self._trace.active):
            return self.__dict__["data"]
        if not self._trace.active:
            raise self._leaked()
        why = VALUE_READERS.get(code)
        if why is not None:
            raise trace_error(self._trace.name, why[0], why[1])
        inside = code.co_filename.startswith(_PACKAGE_DIR)
        raise self._error(".data of a traced tensor" +
                          (f" (read by tensorgrad's {_reader(code)})" if inside else ""))

    @data.setter
    def data(self, value):
        raise self._error("assigning .data of a traced tensor (an in-place change)")

    def _error(self, what, why=_NO_VALUE):
        if not self._trace.active:
            return self._leaked()
        return trace_error(self._trace.name, what, why)

    def _leaked(self):
        return trace_error(self._trace.name, "a tensor of its trace is used after the trace "
                            "ended", "a traced tensor was kept (in a global, a closure, an "
                            "attribute) and holds only its first call's value: return what you "
                            "need from the fused function instead")

    def item(self):
        raise self._error("item() of a traced tensor")

    def tolist(self):
        raise self._error("tolist() of a traced tensor")

    def numpy(self):
        raise self._error("numpy() of a traced tensor")

    def __array__(self, dtype=None, copy=None):
        raise self._error("np.asarray() / np.array() of a traced tensor")

    def __bool__(self):
        raise self._error("bool() of a traced tensor (Python control flow on its value: if, "
                          "while, and, or, not)")

    def __float__(self):
        raise self._error("float() of a traced tensor")

    def __int__(self):
        raise self._error("int() of a traced tensor")

    def __index__(self):
        raise self._error("a traced tensor used as a Python integer (an index, a range)")

    def __setitem__(self, index, value):
        raise self._error("item assignment to a traced tensor (an in-place change)",
                          "tensors do not support in-place changes inside a fused function: "
                          "build the new value with ops (tg.where, tg.concatenate)")

    def requires_grad_(self, requires_grad=True):
        raise self._error("requires_grad_() of a traced tensor (an in-place change)",
                          "which inputs require grad is decided by the fused function's "
                          "arguments: set it on them before the call")

    def retain_grad(self):
        raise self._error("retain_grad() of a traced tensor",
                          "a fused function's intermediate tensors are not graph nodes once it "
                          "is compiled: return the tensor as a result to get its gradient")

    def backward(self, *args, **kwargs):
        raise self._error("backward() inside the trace", _WHY_GRAD)

    def __reduce_ex__(self, protocol):
        raise self._error("copying or pickling a traced tensor (copy, deepcopy, pickle)",
                          "the copy would hold the first call's value: use the tensor itself, "
                          "or x.clone()")

    def detach(self):
        """A gradient-free step of the program (the same array, as in PyTorch)."""
        return record_nondiff(_identity, (self,), {}, "detach")

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        name = self._trace.name if self._trace is not None else "?"
        return (f"tensor(<traced by fuse({name})>, shape={self.shape}, dtype={self.dtype}"
                f"{extra})")


_WHY_IN_PLACE = ("tensors do not support in-place changes inside a fused function: the program "
                 "records values, not changes of them, so it would not replay the change. Build "
                 "the new value with ops instead (x = x + y rather than x += y)")
_WHY_GRAD = ("a fused function is differentiated as a whole: take the gradient of its result "
             "outside it")
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # tensorgrad/
_APPLY = _t.apply.__code__  # the engine's own reader: it records what it computes
for _f in (Tensor.shape.fget, Tensor.ndim.fget, Tensor.dtype.fget, Tensor.size.fget,
           Tensor.numel, Tensor.dim, Tensor.__len__):
    static_read(_f)
value_read("Tensor(x) / tg.tensor(x) of a traced tensor", "it would copy the first call's value "
           "into a constant of the trace: use the tensor itself, or x.clone()")(_t._to_array)
value_read("a gradient (tg.grad) taken inside the trace", _WHY_GRAD)(_w._backward)
for _f in (_t.attach, Function.apply.__func__):
    value_read("a custom tg.Function inside the trace", "fuse records tensorgrad's ops only: "
               "call it outside the fused function")(_f)
del _f




def _identity(x):
    return x


class _Recorder:
    """The `_tracer` hook while a trace runs: records each op `apply` runs as a step over slots
    (an input's position, ("const", j) or ("step", k); numbered finally by `trace`)."""

    __slots__ = ("state", "slots", "keep", "steps", "consts", "out_shapes")

    def __init__(self, state, leaves):
        self.state = state
        self.slots = {id(x): i for i, x in enumerate(leaves)}
        self.keep = list(leaves)  # keep recorded tensors alive so their ids stay unique
        self.steps, self.consts, self.out_shapes = [], [], []

    def _const(self, value):
        self.consts.append(value)
        return ("const", len(self.consts) - 1)

    def __call__(self, op, args, op_kw, out):
        spec = []
        for a in args:
            if isinstance(a, Tensor):
                slot = self.slots.get(id(a))
                if slot is not None:
                    spec.append(slot)
                elif a.__class__ is _Traced:  # from another trace, kept past its end
                    raise a._leaked()
                elif a.requires_grad:
                    raise trace_error(self.state.name, f"op '{op.name}' used a tensor that "
                                      f"requires grad but is not an argument of the function "
                                      f"(shape {a.shape})", "its gradient would be lost: pass "
                                      "it as an argument")
                else:
                    spec.append(self._const(a.data))
            else:
                spec.append(self._const(a))
        out._trace = self.state
        out.__class__ = _Traced
        self.slots[id(out)] = ("step", len(self.steps))
        self.keep.append(out)
        self.steps.append((op, spec, op_kw))
        self.out_shapes.append(out.__dict__["data"].shape)

    def random_draw(self, what):
        """A random draw inside the trace (autograd/tracing.py's hook): refused."""
        raise trace_error(self.state.name, f"{what} draws random numbers inside the trace",
                          "the program would replay the first call's draw on every call, and "
                          "recording it would need a generator inside the program: draw "
                          "outside the fused function and pass the result as an argument "
                          "(for dropout: the mask, from F.dropout_mask)")

    def in_place(self, what):
        """An in-place change inside the trace (autograd/tracing.py's hook): refused."""
        raise trace_error(self.state.name, f"{what}() changes a tensor in place (an augmented "
                          f"assignment such as x += y calls it)", _WHY_IN_PLACE)

    def callback(self, what):
        """Python code between the ops (autograd/tracing.py's hook): refused."""
        raise trace_error(self.state.name, what, "a fused program would not call it again: "
                          "register hooks outside the fused function, or fuse less")


def trace(fn, tensors, kw):
    """Run fn on fresh traced leaves (requiring grad like the real inputs) and record its
    primitives: (the Program, whether fn returned a tuple, every slot's value in this run)."""
    state = _TraceState(getattr(fn, "__name__", "fused"))
    leaves = []
    for t in tensors:
        leaf = Tensor._wrap(t.data)
        leaf.requires_grad = t.requires_grad
        leaf._trace = state
        leaf.__class__ = _Traced
        leaves.append(leaf)
    record = _Recorder(state, leaves)
    prev = _t._tracer
    _t._tracer = record
    try:
        with _gm.enable_grad():
            result = fn(*leaves, **kw)
    finally:
        _t._tracer = prev
        state.active = False
    items = result if isinstance(result, tuple) else (result,)
    n_in, n_const, slots = len(tensors), len(record.consts), record.slots

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
    steps = [(op, tuple(number(a) for a in spec), op_kw) for op, spec, op_kw in record.steps]
    consts = record.consts
    shapes = [t.data.shape for t in tensors] + [np.shape(c) for c in consts] + record.out_shapes
    examples = [t.data for t in tensors] + consts + [record.keep[n_in + k].__dict__["data"]
                                                     for k in range(len(steps))]
    program = Program(n_in, consts, steps, shapes, where[0], tuple(where[1:]))
    return program, isinstance(result, tuple), examples
