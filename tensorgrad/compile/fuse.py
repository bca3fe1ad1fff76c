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

How: the trace runs `fn` on `_Traced` tensors (its leaves, and every op's output switches to that
class), whose `.data` only the engine's own readers get (`apply`, and the functions marked
`static_read` that look at shapes and dtypes only); the eager path is untouched.
"""
import functools
import importlib
import linecache
import os
import re
import sys
from itertools import repeat
from operator import attrgetter

import numpy as np

from .. import mode as _mode
from ..autograd import Tensor
from ..autograd.function import Function, Op, passthrough
from ..autograd.xp import Scaled as _Scaled
from ..autograd.xp import dot as _dot
from ..autograd.xp import number as _number
from ..autograd.xp import reduce_to as _reduce_to
from .inline import expression

_t = importlib.import_module("..autograd.tensor", __package__)  # the module
_w = importlib.import_module("..autograd.walk", __package__)
_gm = importlib.import_module("..autograd.grad_mode", __package__)

__all__ = ["fuse", "TraceError"]

_data_of, _requires_grad = attrgetter("data"), attrgetter("requires_grad")
_HITS = _mode.HITS
_shape_dtype = attrgetter("shape", "dtype")


class _Program:
    """The recorded primitives of one trace, over numbered slots: the inputs, then the
    constants, then one slot per recorded op. Forward and backward are compiled once into
    straight-line Python (one line per primitive and per vjp), so running them costs little
    more than the numpy calls themselves; where an op offers a version specialised for the
    program's fixed shapes (Op.lower), that version is called instead.

    Once a backward is compiled for a requires-grad mask, later forwards for that mask keep
    only the slots it reads (and the results): every other intermediate is freed after its last
    use, as are the backward's own temporaries, so the next arrays reuse memory still in cache
    (the 9-layer MLP's program makes 392 kB of intermediates; its backward reads 130)."""

    __slots__ = ("n_in", "consts", "steps", "shapes", "result", "aux", "forward", "backwards",
                 "lean", "reads", "float_result", "_differentiable", "off", "_source")

    def __init__(self, n_in, consts, steps, shapes, result, aux, examples):
        """`examples`: every slot's value in the trace (for Op.lower; not kept)."""
        self.n_in, self.consts, self.steps, self.shapes = n_in, consts, steps, shapes
        self.result, self.aux = result, aux
        self.off = _mode.OFF  # the fast paths switched off when traced: compiled without them
        self.float_result = np.asarray(examples[result]).dtype.kind == "f"
        self._differentiable = {}  # requires-grad mask -> differentiable(mask)
        self._source = self._forward_source(examples)
        self.forward = self._assemble_forward(None)  # keeps every slot
        self.backwards = {}  # (mask, gradient shape and dtype) -> compiled backward
        self.lean = {}  # mask (None: no backward will run) -> forward keeping what it needs
        self.reads = {}  # mask -> the slots its compiled backwards read

    def differentiable(self, mask):
        """Whether a gradient reaches the (float) result from the inputs flagged in `mask`:
        through ops with vjps, not only through comparisons, sign, detach, ..."""
        known = self._differentiable.get(mask)
        if known is None:
            known = self._differentiable[mask] = \
                self.float_result and self._reach(mask)[0][self.result]
        return known

    def _reach(self, mask):
        """(per slot: whether it depends on an input flagged in mask through ops with a vjp,
        per step: the positions of its inputs a gradient must reach). Steps without vjps
        (comparisons, sign, detach) pass no gradient on."""
        live = [bool(m) for m in mask] + [False] * len(self.consts)
        plans = []
        for op, spec, _ in self.steps:
            plans.append(tuple(i for i, a in enumerate(spec)
                               if live[a] and (op.variadic or op.vjps[i] is not None)))
            live.append(bool(plans[-1]))
        return live, plans

    def run(self, arrays, mask=None):
        """The slots' values for these input arrays: every one until a backward for `mask` is
        compiled, then those it reads (the others are _FREED); mask None: no backward will
        run, only the results are kept."""
        forward = self.lean.get(mask)
        if forward is None:
            if mask is not None or "lean_forward" in self.off:
                return self.forward(*arrays)
            forward = self.lean[None] = self._assemble_forward(set())
        _HITS["lean_forward"] += 1
        return forward(*arrays)

    def backward(self, xp, g, vals, mask, consume=False):
        """Gradients of the result for the inputs flagged in mask (None elsewhere); consume:
        nothing else will read `vals`, so each value is freed after its last use (the list is
        emptied).

        The first call for a mask and gradient shape runs a probing version that notes, at every
        place where a vjp's result might need summing down, casting or broadcasting, what it
        actually needed; then a version without the checks is compiled (the shapes only depend
        on the shapes, which the key fixes), with column sums as direct BLAS products."""
        key = (mask, g.shape, g.dtype)
        compiled = self.backwards.get(key)
        if compiled is None:
            if any(v is _FREED for v in vals):  # a lean forward's values: this backward may
                vals = self.forward(*vals[:self.n_in])  # read others, so compute them again
            seen = {}
            grads = self._compile_backward(mask, seen)(xp, g, vals)
            compiled = self.backwards[key] = self._compile_backward(mask, None, seen, vals, xp)
            reads = self.reads.setdefault(mask, set())
            reads |= compiled.reads
            if "lean_forward" not in self.off:
                self.lean[mask] = self._assemble_forward(reads)
            return grads
        return compiled(xp, g, vals, consume)

    def _call(self, env, name, fn, spec, kw, extra=(), args=None):
        """Source of a call of fn on the names `extra`, then the slots in spec (or the names
        `args`), with the parameters kw: a one-expression lambda is written out in place of
        the call (see tensorgrad/compile/inline.py)."""
        parts = list(extra) + ([f"v{a}" for a in spec] if args is None else list(args))
        named = {}
        for key, value in kw.items():
            env[f"{name}_{key}"] = value
            named[key] = f"{name}_{key}"
        inlined = expression(fn, parts, named, env, name) \
            if _ours(fn) and "inlined_lambda" not in self.off else None
        if inlined is not None:
            _HITS["inlined_lambda"] += 1
            return inlined
        env[name] = fn
        return f"{name}({', '.join(parts + [f'{k}={v}' for k, v in named.items()])})"

    def _forward_source(self, examples):
        """(globals, the lines computing each step's slot): the body of every forward."""
        env = {"asarray": np.asarray, "_FREED": _FREED}
        n_in, n_const = self.n_in, len(self.consts)
        head, body = [], []
        for j, value in enumerate(self.consts):
            env[f"c{j}"] = value
            head.append(f"    v{n_in + j} = c{j}")
        for k, (op, spec, kw) in enumerate(self.steps):
            s = n_in + n_const + k
            fn = op.forward
            if op.lower is not None and "lowering" not in self.off:
                low = op.lower(None, [examples[a] for a in spec], **kw)
                if low is not None:
                    fn, kw = low, {}
                    _HITS["lowering"] += 1
            args = [f"v{a}" for a in spec]
            if fn in _TYPED_NUMBERS and "typed_number" not in self.off:
                _typed_numbers(env, k, args, [examples[a] for a in spec])
            lines = [f"    v{s} = {self._call(env, f'f{k}', fn, spec, kw, args=args)}"]
            if self.shapes[s] == ():  # ufuncs return numpy scalars for 0-d operands
                lines.append(f"    v{s} = asarray(v{s})")
            body.append(lines)
        return env, head, body

    def _assemble_forward(self, reads):
        """The forward returning every slot (reads None), or only the inputs, constants, results
        and the slots in `reads`, each other intermediate deleted after its last use (_FREED
        in its place)."""
        env, head, body = self._source
        first = self.n_in + len(self.consts)  # the slot of step 0
        keep = None if reads is None else set(reads) | {self.result, *self.aux}
        lines = [f"def forward({', '.join(f'v{i}' for i in range(self.n_in))}):"] + head
        for step in body:
            lines += step
        slots = (f"v{i}" if keep is None or i < first or i in keep else "_FREED"
                 for i in range(len(self.shapes)))
        lines.append(f"    return [{', '.join(slots)}]")
        return _define("forward", _free_temporaries(lines, 1), dict(env))

    def _compile_backward(self, mask, probe=None, seen=None, vals=None, xp=None):
        """Source of the backward for `mask`: with `probe` (a dict to fill) every check records
        what it met; with `seen` (a filled one) each check becomes what it met, or nothing, and
        each vjp the op's lowering for the arrays it met (the probe's gradients and `vals`,
        with `xp` to run the lowered vjp once and see what it returns)."""
        n_in, n_const = self.n_in, len(self.consts)
        plans = self._reach(mask)[1]
        env = {"_probe": _probe_site, "_seen": probe, "dot": _dot, "reduce_to": _reduce_to,
               "_HITS": _HITS}
        # consume: the values live on in the names only, each deleted once used (early_free)
        free = ["    if consume:", "        vals.clear()", "        _HITS['early_free'] += 1"] \
            if "early_free" not in self.off else []
        lines = ["def backward(xp, g, vals, consume=False):",
                 f"    {', '.join(f'v{i}' for i in range(len(self.shapes)))}, = vals",
                 *free, f"    g{self.result} = g"]
        reached = {self.result}  # slots holding a gradient so far

        def fix(site, var, slot, kinds, full=None, met=None):
            """The lines that bring `var` to slot's shape (and dtype) at this site; `full`: the
            shape a compact `var` stands for (see xp.reduce_to); `met`: what a lowered vjp
            returned here (instead of what the probe saw)."""
            env[f"S{slot}"], env[f"F{site}"] = self.shapes[slot], full
            if probe is not None:
                return [f"    {var} = _probe(_seen, {site}, {var}, S{slot}, "
                        f"{'v%d.dtype' % slot if 'dtype' in kinds else 'None'}, {kinds!r}, "
                        f"F{site})"]
            if met is not None:  # note what it needs as the probe does; of the input's own
                full = None if met.shape == self.shapes[slot] else full  # shape: summed already
                _probe_site(seen, site, met, self.shapes[slot], vals[slot].dtype, kinds, full)
            shape, dtype = seen[site]
            out = [f"    {var} = {var}.array()"] if (site, "scaled") in seen else []
            if kinds[0] in ("broadcast", "full"):
                if shape != self.shapes[slot]:
                    out.append(f"    {var} = xp.broadcast_to({var}, S{slot})"
                               + (".copy()" if kinds[0] == "full" else ""))
                return out
            if not seen[site, "kept"]:
                out.append(f"    {var} = "
                           f"{_reduction(env, site, shape, self.shapes[slot], dtype, full, blas)}"
                           .replace("$", var).replace("S_", f"S{slot}"))
            if dtype != seen[site, "target"]:
                out.append(f"    {var} = xp.astype({var}, v{slot}.dtype)")
            return out

        blas = "blas_reduction" not in self.off
        site = 0
        for k in range(len(self.steps) - 1, -1, -1):
            op, spec, kw = self.steps[k]
            s = n_in + n_const + k
            if s not in reached or not plans[k]:
                continue
            if not op.elementwise:  # a compact gradient meets a shape op
                lines += fix(site, f"g{s}", s, ("broadcast",))
                site += 1
            if op.lower is not None and probe is not None:  # what the vjps will be given
                lines.append(f"    _seen['g', {k}] = g{s}")
            for i in plans[k]:
                a = spec[i]
                fn, extra_kw = (op.vjps[0], dict(kw, argnum=i)) if op.variadic else (op.vjps[i], kw)
                met = None
                if op.lower is not None and probe is None and "lowering" not in self.off:
                    examples = [seen["g", k], vals[s]] + [vals[b] for b in spec]
                    low = op.lower(i, examples, **kw)
                    if low is not None:  # its result may differ in shape: fix what it returns
                        fn, extra_kw, met = low, {}, low(xp, *examples)
                        _HITS["lowering"] += 1
                if fn is passthrough:
                    value = f"g{s}"
                else:
                    value = self._call(env, f"b{k}_{i}", fn, (s,) + spec, extra_kw,
                                       ("xp", f"g{s}"))
                fixing = fix(site, "t", a, ("reduce", "dtype"),
                             self.shapes[s] if op.elementwise else None, met)
                site += 1
                if fixing:
                    lines += [f"    t = {value}"] + fixing
                    value = "t"
                lines.append(f"    g{a} = {value}" if a not in reached else
                             f"    g{a} = g{a} + {value}")
                reached.add(a)
        for i in sorted(reached):  # an input's gradient may still be compact: make it full
            if i < n_in:
                lines += fix(site, f"g{i}", i, ("full",))
                site += 1
        env["zeros_like"] = np.zeros_like  # an input the result does not depend on: zeros
        grads = ", ".join(f"g{i}" if i in reached else f"zeros_like(v{i})" if mask[i] else "None"
                          for i in range(n_in))
        lines.append(f"    return [{grads}]")
        compiled = _define("backward", _free_temporaries(lines, 2 + len(free)), env)
        compiled.reads = {int(v) for line in lines[2 + len(free):] for v in _SLOT.findall(line)}
        return compiled


# ufuncs for which a Python number operand computes exactly as a 0-d array of the other
# operand's float dtype (NumPy 2 casts the number to it), at 0.4-0.6 us less per call
_TYPED_NUMBERS = {np.add, np.subtract, np.multiply, np.true_divide, np.maximum, np.minimum}


def _typed_numbers(env, k, args, examples):
    """Replace, in step k's call, Python number operands (eps, a mean's 1/n) by xp.number
    0-d arrays when the array operands are all of one float dtype."""
    dtypes = {e.dtype for e in examples if isinstance(e, np.ndarray)}
    if len(dtypes) != 1 or next(iter(dtypes)).kind != "f":
        return
    dtype = dtypes.pop()
    for i, e in enumerate(examples):
        if e.__class__ in (int, float):
            env[f"n{k}_{i}"] = _number(e, dtype)
            args[i] = f"n{k}_{i}"
            _HITS["typed_number"] += 1


def _ours(fn):
    """Only tensorgrad's own lambdas are written out: a user's module may have been edited since
    it was imported, and its source on disk would then not be the code that runs."""
    module = getattr(fn, "__module__", None)
    return isinstance(module, str) and module.split(".", 1)[0] == __package__.split(".", 1)[0]


def _probe_site(seen, site, t, shape, dtype, kinds, full):
    """A check of the probing backward: note what `t` was, then fix it as the engine does."""
    if t.__class__ is _Scaled:  # a lazy product (the L2 term's gradient): computed here, where
        seen[site, "scaled"] = True  # other gradients may be added to it
        t = t.array()
    seen[site] = (t.shape, t.dtype)
    if kinds[0] == "broadcast":
        return t if t.shape == shape else np.broadcast_to(t, shape)
    if kinds[0] == "full":
        return t if t.shape == shape else np.broadcast_to(t, shape).copy()
    reduced = t if t.shape == shape and (full is None or full == shape) else \
        _reduce_to(t, shape, full)
    seen[site, "kept"], seen[site, "target"] = reduced is t, dtype
    return reduced if reduced.dtype == dtype else reduced.astype(dtype)


def _reduction(env, site, shape, target, dtype, full, blas=True):
    """Source summing `$` of `shape` down to `target`: a product with a ones vector for the
    column sum of a float matrix (the bias and batch-norm gradients) if `blas`, else
    reduce_to."""
    if blas and len(shape) == 2 and dtype.kind == "f" and shape[1:] == target[-1:] and \
            target in ((shape[1],), (1, shape[1])) and (full is None or full == shape):
        env[f"ones{site}"] = np.ones(shape[0], dtype)
        _HITS["blas_reduction"] += 1
        return f"dot(ones{site}, $)" + (".reshape(S_)" if len(target) == 2 else "")
    return f"reduce_to($, S_, F{site})"


_SLOT, _NAME = re.compile(r"\bv(\d+)\b"), re.compile(r"\b[gv]\d+\b")


class _Freed:
    """What a lean forward returns in place of a slot's value it did not keep."""

    __slots__ = ()

    def __repr__(self):
        return "<freed by a lean forward>"


_FREED = _Freed()


def _free_temporaries(lines, start):
    """`lines` with `del gN` (a gradient) or `del vN` (a value) after the last line (from
    `start`, before the return) that mentions it: each is freed as soon as it is used up, not
    at the return (a value only if nothing else holds it: the caller's inputs and constants,
    the backward's `vals` unless `consume`). The forward's and the backward's source alike."""
    last = {}
    for i in range(start, len(lines) - 1):
        for name in _NAME.findall(lines[i]):
            last[name] = i
    for name in _NAME.findall(lines[-1]):  # returned: kept
        last.pop(name, None)
    after = {}
    for name, i in last.items():
        after.setdefault(i, []).append(name)
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i in after:
            out.append(f"    del {', '.join(sorted(after[i]))}")
    return out


def _define(name, lines, env):
    """Compile generated source into a function (its globals: the callables and constants)."""
    exec(compile("\n".join(lines) + "\n", f"<fused {name}>", "exec"), env)
    return env[name]


class _Saved:
    """What a fused node keeps for its backward (freed with the node's graph): the program,
    the forward's values, which inputs require grad, and the static keyword arguments."""

    __slots__ = ("program", "vals", "mask", "kw", "reference")

    def __init__(self, program, vals, mask, kw):
        self.program, self.vals, self.mask, self.kw = program, vals, mask, kw
        self.reference = None  # (g, every input's gradient) of the reference walk's last call


# ------------------------------------------------------------------------------------------------
# traced tensors: no value outside the engine
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


_STATIC = set()  # code objects that read a traced tensor's .data only for its shape or dtype
_WHY = {}  # code object of a reader -> what its read means (the error's wording)


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
    _STATIC.update(_codes(fn))
    return fn


def value_read(what, why):
    """Decorator: `fn` reads the values of the tensors it is given, which a traced tensor
    refuses with a TraceError saying `what` was done and `why` a trace cannot record it (the
    function is returned as is)."""
    def mark(fn):
        _WHY.update(dict.fromkeys(_codes(fn), (what, why)))
        return fn
    return mark


_SKIPPED = {"tensorgrad", "numpy"}  # packages whose frames are not the user's line
_STDLIB = os.path.dirname(os.__file__) + os.sep


def _not_users(frame):
    """Whether `frame` runs tensorgrad's, numpy's or the standard library's code (copy,
    functools, ...)."""
    top = frame.f_globals.get("__name__", "").partition(".")[0]
    return top in _SKIPPED or (top in sys.stdlib_module_names and
                               frame.f_code.co_filename.startswith(_STDLIB))


def _user_line():
    """'file:line' and the source text of the innermost frame outside tensorgrad, numpy and
    the standard library: the user's line that caused the error."""
    frame = inner = sys._getframe(1)
    while frame is not None and _not_users(frame):
        frame = frame.f_back
    frame = frame or inner
    code = frame.f_code
    text = linecache.getline(code.co_filename, frame.f_lineno).strip()
    return f"{code.co_filename}:{frame.f_lineno}" + (f": {text}" if text else "")


_NO_VALUE = ("inside a fused function a tensor has no value: fuse records the ops once per "
             "input shapes and replays them, so a value read here would stay its first call's "
             "value on every later call. Compute with tensor ops instead (tg.where for a "
             "branch), or call the function without fuse")


def _trace_error(name, what, why=_NO_VALUE):
    """The TraceError for `what` done while tracing the function `name`, at the user's line."""
    return TraceError(f"fuse({name}): {what}\n  at {_user_line()}\n{why[0].upper()}{why[1:]}.")


def _current_name():
    """The name of the function being traced."""
    state = getattr(_t._tracer, "trace", None)
    return "?" if state is None else state.name


def random_draw(what):
    """Raise TraceError if a trace is recording: `what` draws random numbers (tg.randn, a
    dropout mask), which the program would replay as the first call's draw."""
    if _t._tracer is not None:
        raise _trace_error(_current_name(), f"{what} draws random numbers inside the trace",
                           "the program would replay the first call's draw on every call, and "
                           "recording it would need a generator inside the program: draw "
                           "outside the fused function and pass the result as an argument "
                           "(for dropout: the mask, from F.dropout_mask)")


def _reader(code):
    """Who read a traced value, for the message: the tensorgrad function's qualified name."""
    return getattr(code, "co_qualname", code.co_name)


class _Traced(Tensor):
    """A tensor of a trace (its leaves and every op's output): the engine reads its array, user
    code may read only its shape and dtype. Anything that would read its value, change it in
    place or keep it past the trace raises TraceError (see the module docstring). Tensors
    become traced by a class switch inside the trace, so the eager path pays nothing."""

    _trace = None  # the _TraceState

    @property
    def data(self):
        code = sys._getframe(1).f_code
        if code in _STATIC or (code is _APPLY and self._trace.active):
            return self.__dict__["data"]
        if not self._trace.active:
            raise self._leaked()
        why = _WHY.get(code)
        if why is not None:
            raise _trace_error(self._trace.name, why[0], why[1])
        inside = code.co_filename.startswith(_PACKAGE_DIR)
        raise self._error(".data of a traced tensor" +
                          (f" (read by tensorgrad's {_reader(code)})" if inside else ""))

    @data.setter
    def data(self, value):
        raise self._error("assigning .data of a traced tensor (an in-place change)")

    def _error(self, what, why=_NO_VALUE):
        if not self._trace.active:
            return self._leaked()
        return _trace_error(self._trace.name, what, why)

    def _leaked(self):
        return _trace_error(self._trace.name, "a tensor of its trace is used after the trace "
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


_NONDIFF = {}  # (function, number of inputs) -> the Op recording it in a program


def record_nondiff(fn, args, kw, name=None):
    """Inside a trace: fn on the arrays of `args` as a recorded step without gradient (a
    comparison, sign, detach): the program recomputes it on every call, the backward skips it
    (its vjps are None), and it creates no graph node."""
    op = _NONDIFF.get((fn, len(args)))
    if op is None:
        op = _NONDIFF[fn, len(args)] = Op(name or getattr(fn, "__name__", "nondiff"), fn,
                                          *[None] * len(args))
    arrays = [a.__dict__["data"] if a.__class__ is _Traced else
              a.data if isinstance(a, Tensor) else a for a in args]
    out = fn(*arrays, **kw)
    t = Tensor._wrap(out if out.__class__ is np.ndarray else np.asarray(out))
    _t._tracer(op, args, kw, t)
    return t


def _trace(fn, tensors, kw):
    """Run fn on fresh traced leaves (requiring grad like the real inputs) and record its
    primitives."""
    state = _TraceState(getattr(fn, "__name__", "fused"))
    leaves = []
    for t in tensors:
        leaf = Tensor._wrap(t.data)
        leaf.requires_grad = t.requires_grad
        leaf._trace = state
        leaf.__class__ = _Traced
        leaves.append(leaf)
    slots = {id(x): i for i, x in enumerate(leaves)}
    keep = list(leaves)  # keep recorded tensors alive so their ids stay unique
    steps, consts, out_shapes = [], [], []

    def const(value):
        consts.append(value)
        return ("const", len(consts) - 1)

    def record(op, args, op_kw, out):
        spec = []
        for a in args:
            if isinstance(a, Tensor):
                slot = slots.get(id(a))
                if slot is not None:
                    spec.append(slot)
                elif a.__class__ is _Traced:  # from another trace, kept past its end
                    raise a._leaked()
                elif a.requires_grad:
                    raise _trace_error(state.name, f"op '{op.name}' used a tensor that requires "
                                       f"grad but is not an argument of the function (shape "
                                       f"{a.shape})", "its gradient would be lost: pass it as "
                                       "an argument")
                else:
                    spec.append(const(a.data))
            else:
                spec.append(const(a))
        out._trace = state
        out.__class__ = _Traced
        slots[id(out)] = ("step", len(steps))
        keep.append(out)
        steps.append((op, spec, op_kw))
        out_shapes.append(out.__dict__["data"].shape)

    record.trace = state
    prev = _t._tracer
    _t._tracer = record
    try:
        with _gm.enable_grad():
            result = fn(*leaves, **kw)
    finally:
        _t._tracer = prev
        state.active = False
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
    shapes = [t.data.shape for t in tensors] + [np.shape(c) for c in consts] + out_shapes
    examples = [t.data for t in tensors] + consts + [keep[len(tensors) + k].__dict__["data"]
                                                     for k in range(len(steps))]
    return (_Program(n_in, consts, steps, shapes, where[0], tuple(where[1:]), examples),
            isinstance(result, tuple))


def _fused_vjp_all(fn):
    """The gradients for all inputs of a fused node at once (the engine asks once per node)."""
    def vjp_all(xp, g, out, args, retain_graph=True):
        saved, tensors = args[-1], args[:-1]
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
    run again op by op on the node's inputs and differentiated by the reference walk; once
    per incoming gradient."""
    def vjp(xp, g, out, *args, argnum):
        saved, inputs = args[-1], args[:-1]
        if saved.reference is None or saved.reference[0] is not g:
            create_graph = isinstance(g, Tensor)
            if not create_graph and saved.vals is not None and "fused_program" not in _mode.OFF:
                grads = _unshared(saved.program.backward(xp, g, saved.vals, saved.mask), g)
                saved.reference = (g, grads)
                return grads[argnum]
            if not create_graph:  # the node's input arrays as new leaves
                inputs = [Tensor._wrap(a).requires_grad_(m) for a, m in zip(inputs, saved.mask)]
            with _gm.enable_grad():
                grads = _graph_grads(fn, inputs, saved.kw, g, create_graph)
            for i, gi in enumerate(grads):
                if gi is None and saved.mask[i]:  # an input the result does not depend on
                    grads[i] = Tensor(np.zeros_like(_data_of(inputs[i])))
            if not create_graph:
                grads = [None if gi is None else gi.data for gi in grads]
            saved.reference = (g, grads)
        return saved.reference[1][argnum]
    return vjp


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
            raise _trace_error(_current_name(), f"{name}'s auxiliary results feed side effects "
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
            entry = traces[key] = _trace(fn, tensors, kw)
        program, has_aux = entry
        mask = tuple(map(_requires_grad, tensors))
        node = True in mask and _gm._enabled and program.differentiable(mask)
        vals = program.run(arrays, mask if node else None)
        out = vals[program.result]
        if node:
            need = needs.get(mask)
            if need is None:
                need = needs[mask] = [i for i, m in enumerate(mask) if m]
            saved = _Saved(program, vals, mask, kw)
            arrays.append(saved)
            result = _t.node(op, tensors + (saved,), arrays, need, out)
        else:
            result = Tensor._wrap(out)
        if not has_aux:
            return result
        if not wrap_aux:
            return (result, *[vals[j] for j in program.aux])
        return (result, *[Tensor._wrap(vals[j]) for j in program.aux])

    @functools.wraps(fn)
    def fused(*tensors, **kw):
        return apply(tensors, kw, True)

    # the same call with the auxiliary results as plain arrays (nn.Sequential's layer chains
    # feed batch-norm statistics straight into in-place updates: no Tensor for each)
    fused.call_raw_aux = lambda tensors, kw: apply(tuple(tensors), kw, False)
    fused.programs = programs  # the traces, by input shapes/dtypes and keyword arguments
    fused.partial_programs = partial  # those traced with some fast paths off, by those paths
    return fused
