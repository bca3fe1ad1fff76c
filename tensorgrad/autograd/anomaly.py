"""Anomaly detection: `detect_anomaly()` and `set_detect_anomaly()`, as torch.autograd's.

While it is on, the forward records on each graph node the user's line that created it
(sites.py), and every backward checks what each vjp returns: the first gradient holding nan or
inf computed from a finite incoming gradient and finite inputs raises `AnomalyError`, naming the
op, the input and that line. With `check_forward=True` each op's output is checked as it is
computed too. Fused programs and chains run op by op meanwhile (the `fused_program` path is held
off, tensorgrad/mode.py), so the error names a primitive op.

Off, it costs nothing per op: turning it on swaps recording versions of the functions that
record an op (tensor.apply and tensor.attach, and the names `bind` lists they are bound to
elsewhere) in, turning it off swaps the plain ones back; the walk reads `ENABLED` once per
backward. The mode is process-wide, as grad mode here and torch's anomaly mode.
"""
import functools
import math

import numpy as np

from .. import mode as _mode
from . import tensor as _t
from .sites import user_line
from .xp import Scaled

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "AnomalyError"]

ENABLED = False  # read by the walk once per backward (walk._backward)
_check_nan = True
_check_forward = False
_BOUND = [(_t, "apply", "apply"), (_t, "attach", "attach")]  # (module, name, which function)
_plain = {}  # which -> the plain function, while the recording ones are swapped in
_in_vjp = []  # (op name, its site) of the vjps running now: ops they create belong to them


class AnomalyError(RuntimeError):
    """A nan or inf that detect_anomaly() caught where it first appeared: in a gradient a vjp
    returned (`input`: which input's gradient) or, with check_forward, in an op's output
    (`input` None). `op` names the op, `kind` is 'nan' or 'inf', `site` the user's line that
    created the op (None when it was created outside detect_anomaly)."""

    def __init__(self, message, op, kind, input=None, site=None):
        super().__init__(message)
        self.op, self.kind, self.input, self.site = op, kind, input, site


def is_anomaly_enabled():
    """True while anomaly detection is on."""
    return ENABLED


def is_anomaly_check_nan_enabled():
    """Whether the backward checks gradients for nan and inf when anomaly detection is on."""
    return _check_nan


def _state():
    return ENABLED, _check_nan, _check_forward


def _set(enabled, check_nan, check_forward):
    global ENABLED, _check_nan, _check_forward
    enabled = bool(enabled)
    _check_nan, _check_forward = bool(check_nan), bool(check_forward)
    if enabled == ENABLED:
        return
    if enabled:
        _plain.update((which, getattr(_t, which)) for which in ("apply", "attach"))
        for module, name, which in _BOUND:
            setattr(module, name, _RECORDING[which])
        _mode.hold_off("detect_anomaly", ["fused_program"])
    else:
        for module, name, which in _BOUND:
            setattr(module, name, _plain[which])
        _mode.hold_off("detect_anomaly")
    ENABLED = enabled


def bind(module, name, which="apply"):
    """Declare that `module.name` holds tensor's `which` ('apply' or 'attach'), bound at import
    for speed: anomaly detection swaps it along with tensor's."""
    _BOUND.append((module, name, which))
    if ENABLED:
        setattr(module, name, _RECORDING[which])


class set_detect_anomaly:
    """Anomaly detection on or off at once (`mode`), as torch.autograd.set_detect_anomaly; used
    as a context manager, the previous state comes back at its end."""

    def __init__(self, mode, check_nan=True, *, check_forward=False):
        self.prev = _state()
        _set(mode, check_nan, check_forward)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(*self.prev)
        return False


class detect_anomaly:
    """Context manager (and decorator) with anomaly detection on, as
    torch.autograd.detect_anomaly: ops record the user's line that created them, and a backward
    raises AnomalyError at the first vjp that returns nan or inf from finite values
    (check_nan=False: lines recorded, nothing checked). check_forward=True also checks every
    op's output as it is computed (not in torch: `where(x > 0, log(x), 0)` is valid code)."""

    def __init__(self, check_nan=True, check_forward=False):
        self.check_nan, self.check_forward = bool(check_nan), bool(check_forward)
        self.prev = []

    def __enter__(self):
        self.prev.append(_state())
        _set(True, self.check_nan, self.check_forward)
        return self

    def __exit__(self, *exc):
        _set(*self.prev.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan, self.check_forward):
                return fn(*args, **kwargs)
        return wrapper


# ---- the forward: where each op was created ----------------------------------------------------
def _site():
    """Where an op being recorded now was created: the user's line, and for an op a vjp runs
    (a create_graph backward, a fused node's ops run again) that vjp's op and where it was
    created."""
    line = user_line()
    if _in_vjp:
        name, site = _in_vjp[-1]
        line += f", in the backward of op '{name}' (created at {site or 'an unrecorded site'})"
    return line


def _recording_apply(op, args, kw):
    t = _plain["apply"](op, args, kw)
    if t._op is not None:
        t._site = _site()
    if _check_forward and not _in_vjp and _t._tracer is None:
        _check_output(op.name, (*args, *kw.values()), t)
    return t


def _recording_attach(op, args, out):
    t = _plain["attach"](op, args, out)
    if t._op is not None:
        t._site = _site()
    if _check_forward and not _in_vjp:
        _check_output(op.name, args, t)
    return t


_RECORDING = {"apply": _recording_apply, "attach": _recording_attach}


def _check_output(name, inputs, t):
    kind = _nonfinite(t)
    if kind is not None and all(_nonfinite(a) is None for a in inputs):
        site = user_line()
        raise AnomalyError(f"op '{name}' returned {kind} values in its output (shape {t.shape}, "
                           f"{t.dtype}) from finite inputs\n  at {site}", name, kind, None, site)


# ---- the backward: each vjp's result checked ---------------------------------------------------
def checking(hooks):
    """The walk's hooks with a `gradients` that checks what the vjps return (see the module
    docstring); the walk asks for them once per backward while anomaly detection is on."""
    gradients = hooks.gradients

    def checked(xp, t, g, out, args, need, retain_graph):
        _in_vjp.append((t._op.name, getattr(t, "_site", None)))
        try:
            grads = gradients(xp, t, g, out, args, need, retain_graph)
        finally:
            _in_vjp.pop()
        if _check_nan:
            finite_in = None  # the incoming gradient and the inputs: scanned once, if needed
            for i in need:
                kind = _nonfinite(grads[i])
                if kind is None:
                    continue
                if finite_in is None:
                    finite_in = _nonfinite(g) is None and all(_nonfinite(a) is None
                                                              for a in args)
                if finite_in:
                    raise _backward_error(t, i, kind, grads[i])
        return grads

    return hooks._replace(gradients=checked)


def _backward_error(t, i, kind, gi):
    name, site = t._op.name, getattr(t, "_site", None)
    where = (f"The op was created at {site}" if site is not None else
             "Its creation site was not recorded: the forward ran outside detect_anomaly() "
             "(run it inside too to see the line)")
    return AnomalyError(f"Function '{name}' returned {kind} values in its output {i}: the "
                        f"gradient for input {i} (shape {gi.shape}, {gi.dtype}), computed from "
                        f"a finite incoming gradient and finite inputs.\n  {where}",
                        name, kind, i, site)


def _nonfinite(x):
    """'nan' or 'inf' if x (a Tensor, an array, a lazy product, a number, a sequence of them)
    holds such a value, else None; anything else counts as finite."""
    if isinstance(x, _t.Tensor):
        d = x.__dict__  # (a traced tensor's array, which only the engine may read)
        x = d["data"] if "data" in d else x.data
    elif x.__class__ is Scaled:
        x = x.array()
    if isinstance(x, (np.ndarray, np.generic)):
        if x.dtype.kind not in "fc" or np.isfinite(x).all():
            return None
        return "nan" if np.isnan(x).any() else "inf"
    if isinstance(x, (float, complex)):
        return None if math.isfinite(abs(x)) else ("nan" if x != x else "inf")
    if isinstance(x, (list, tuple)):
        return next((k for k in map(_nonfinite, x) if k is not None), None)
    return None
