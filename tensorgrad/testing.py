"""Hypothesis strategies and assertions to property-test ops, yours or the library's.

    from tensorgrad.testing import assert_op_gradients, assert_op_matches, tensors, axes
    from tensorgrad.testing import broadcastable_tensors
    def test_my_op():
        assert_op_gradients(my_op, tensors(low=0.5))                 # gradcheck + gradgradcheck
        assert_op_gradients(tg.mul, broadcastable_tensors(2))         # shapes that broadcast
        assert_op_gradients(tg.sum, tensors(), axis=lambda x: axes(x.ndim))
        assert_op_matches(tg.sum, np.sum, tensors(), axis=lambda x: axes(x.ndim))  # forward

Values are float64, bounded, and kept away from kinks (`avoid=(0,)` for relu/abs) so that
finite differences are meaningful. Needs hypothesis (the `test` extra).

`programs()` draws random compositions of the registered ops (and of yours, as ProgramOp), and
`assert_program_modes_agree(program, seed)` runs one eagerly, fused (tg.fuse) and in reference
mode (tg.fast_mode(False)) and compares values and first- and second-order gradients: the
fast layer against the specification (tests/compile/test_equivalence.py).
"""
from contextlib import nullcontext

import numpy as np
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from .autograd import Tensor
from .autograd.registry import DIFFERENTIABLE, REGISTRY
from .gradcheck import gradcheck, gradgradcheck
from .mode import fast_mode, fast_paths

__all__ = ["shapes", "broadcastable_shapes", "arrays", "tensors", "broadcastable_tensors",
           "axes", "assert_op_gradients", "assert_op_matches", "programs", "registered_builders",
           "Program", "Input", "Step", "ProgramOp", "FEATURES", "assert_program_modes_agree",
           "ModesDisagree"]


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes, including 0-d and size-1 axes by default."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Tuples of `num_shapes` shapes that broadcast together (size-1 and missing axes)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side).map(lambda bs: bs.input_shapes)


def _push_away(v, avoid, gap):
    for k in avoid:
        if abs(v - k) < gap:
            v = k + gap if v >= k else k - gap
    return v


@st.composite
def arrays(draw, shape=None, low=-2.0, high=2.0, dtype=np.float64, avoid=(), gap=0.1,
           distinct=False):
    """Float arrays with values in [low, high], at least `gap` away from each point in `avoid`.

    `shape` may be a tuple or a strategy (default: `shapes()`). With distinct=True every pair
    of values differs by at least `gap` (no ties for max/min/sort-like ops).
    """
    if shape is None:
        shape = shapes()
    if isinstance(shape, SearchStrategy):
        shape = draw(shape)
    n = int(np.prod(shape))
    if distinct:
        if n and (high - low) / gap < n:
            raise ValueError(f"arrays: cannot fit {n} distinct values {gap} apart in "
                             f"[{low}, {high}]")
        base = low + gap * np.arange(n) + draw(st.floats(0, max(0.0, (high - low) - gap * n)))
        order = draw(st.permutations(range(n))) if n else []
        vals = base[np.asarray(order, dtype=int)] if n else base
        return np.asarray(vals, dtype=dtype).reshape(shape)
    elements = st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False,
                         allow_subnormal=False, width=64)
    if avoid:
        elements = elements.map(lambda v: _push_away(v, avoid, gap))
    return draw(hnp.arrays(dtype=dtype, shape=shape, elements=elements))


def tensors(shape=None, requires_grad=True, **array_kwargs):
    """Tensors (float64, requiring grad by default) over `arrays(shape, **array_kwargs)`."""
    return arrays(shape, **array_kwargs).map(lambda a: Tensor(a, requires_grad=requires_grad))


def broadcastable_tensors(num=2, min_dims=0, max_dims=3, max_side=4, **array_kwargs):
    """A tuple of `num` tensors whose shapes broadcast together."""
    @st.composite
    def draw_tuple(draw):
        shps = draw(broadcastable_shapes(num, min_dims=min_dims, max_dims=max_dims,
                                         max_side=max_side))
        return tuple(draw(tensors(s, **array_kwargs)) for s in shps)
    return draw_tuple()


def axes(ndim, allow_none=True, allow_tuple=True, allow_negative=True):
    """Valid `axis` arguments for an ndim-dimensional input: None, an int, or a tuple of ints."""
    options = []
    if allow_none:
        options.append(st.none())
    if ndim > 0:
        lo = -ndim if allow_negative else 0
        options.append(st.integers(lo, ndim - 1))
        if allow_tuple:
            options.append(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                                    unique=True).map(tuple))
    return st.one_of(*options) if options else st.none()


def assert_op_gradients(op, *inputs, gradgrad=True, eps=1e-6, atol=1e-5, rtol=1e-3,
                        max_examples=None, **params):
    """Property: `op` passes gradcheck (and gradgradcheck) on every generated input.

    `inputs` are strategies, one per positional argument; a strategy that draws a tuple (such as
    broadcastable_tensors) supplies several arguments. `params` are keyword arguments of `op`:
    a strategy, a constant, or a function of the drawn inputs returning a strategy (for
    arguments that depend on them, e.g. ``axis=lambda x: axes(x.ndim)``).
    """
    @_given_arguments(inputs, params, max_examples)
    def check(args, kw):
        def f(*xs):
            return op(*xs, **kw)

        gradcheck(f, args, eps=eps, atol=atol, rtol=rtol)
        if gradgrad:
            gradgradcheck(f, args, eps=eps, atol=atol, rtol=rtol)

    check()


def assert_op_matches(op, reference, *inputs, rtol=1e-12, atol=1e-12, max_examples=None,
                      **params):
    """Property: `op`'s forward equals `reference` (the numpy function it mirrors, called with
    the drawn tensors' arrays and the same parameters) in shape, dtype and values (float64,
    within rtol / atol). `inputs` and `params` as in `assert_op_gradients`."""
    @_given_arguments(inputs, params, max_examples)
    def check(args, kw):
        got = op(*args, **kw)
        with np.errstate(all="ignore"):
            want = np.asarray(reference(*[a.data if isinstance(a, Tensor) else a for a in args],
                                        **kw))
        assert isinstance(got, Tensor), f"{op} returned {type(got).__name__}, not a Tensor"
        assert got.shape == want.shape, f"shape {got.shape}, numpy's {want.shape}"
        assert got.dtype == want.dtype, f"dtype {got.dtype}, numpy's {want.dtype}"
        np.testing.assert_allclose(got.data, want, rtol=rtol, atol=atol)

    check()


def _given_arguments(inputs, params, max_examples):
    """Decorator: run `check(args, kwargs)` over hypothesis draws of `inputs` (strategies, one
    per positional argument, or drawing a tuple of several) and `params` (keyword arguments: a
    strategy, a constant, or a function of the drawn inputs returning a strategy)."""
    extra = {} if max_examples is None else {"max_examples": max_examples}

    def decorate(check):
        @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                        HealthCheck.data_too_large], **extra)
        @given(st.data())
        def run(data):
            args = []
            for i, s in enumerate(inputs):
                v = data.draw(s, label=f"input {i}")
                args.extend(v if isinstance(v, tuple) else [v])
            kw = {}
            for k, v in params.items():
                if isinstance(v, SearchStrategy):
                    v = data.draw(v, label=k)
                elif callable(v):
                    v = data.draw(v(*args), label=k)
                kw[k] = v
            check(args, kw)
        return run
    return decorate


# ------------------------------------------------------------------------------------------------
# random programs of the registered ops, run eagerly, fused and in reference mode
FEATURES = ("broadcasting", "reduction_axis", "keepdims", "indexing", "integer_array_index",
            "where", "shared", "zero_dim", "linear_bn_relu", "dropout", "l2_penalty",
            "aliased_input")
"""What `programs()` records in `Program.features` (besides 'float32' and 'nn_modules')."""

_INF = float("inf")


def _literal(value):
    """Python source for a step's argument or parameter (numpy arrays and dtypes included)."""
    if isinstance(value, np.ndarray):
        return f"np.array({value.tolist()!r}, dtype={value.dtype.name!r})"
    if isinstance(value, tuple):
        inner = ", ".join(map(_literal, value))
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return f"[{', '.join(map(_literal, value))}]"
    if isinstance(value, slice):
        return f"slice({value.start!r}, {value.stop!r}, {value.step!r})"
    if isinstance(value, float):
        return repr(float(value))
    return repr(value)


class Input:
    """An argument of a Program: `kind` 'value' (a tensor, sign flips allowed), 'param' (a
    layer's parameter: an nn.Parameter), 'variance' (batch norm's running variance, in
    [0.5, 2], requires no grad) or 'mask' (a dropout mask drawn from `seed` with drop
    probability `p`, requires no grad). `order` 'F' stores it in Fortran order. `alias`:
    the name of an earlier input whose tensor this argument is too (f(x, x))."""

    __slots__ = ("name", "shape", "dtype", "kind", "requires_grad", "order", "p", "seed",
                 "alias")

    def __init__(self, name, shape, dtype="float64", kind="value", requires_grad=True, order="C",
                 p=None, seed=None, alias=None):
        self.name, self.shape, self.dtype = name, tuple(shape), np.dtype(dtype).name
        self.kind, self.order, self.p, self.seed, self.alias = kind, order, p, seed, alias
        self.requires_grad = bool(requires_grad) and kind not in ("mask", "variance")

    def __repr__(self):
        extra = "" if self.kind == "value" else f", kind={self.kind!r}"
        extra += "" if self.requires_grad or self.kind in ("mask", "variance") else \
            ", requires_grad=False"
        extra += "" if self.order == "C" else f", order={self.order!r}"
        extra += "" if self.kind != "mask" else f", p={self.p!r}, seed={self.seed!r}"
        extra += "" if self.alias is None else f", alias={self.alias!r}"
        return f"Input({self.name!r}, {self.shape!r}, {self.dtype!r}{extra})"

    def draw(self, rng):
        """A fresh value: uniform in [-2, 2] (a variance in [0.5, 2]; a mask: always the one
        its seed gives)."""
        if self.kind == "mask":
            from .nn.functional import dropout_mask
            return dropout_mask(self.shape, self.p, self.dtype, np.random.default_rng(self.seed))
        low = 0.5 if self.kind == "variance" else -2.0
        a = rng.uniform(low, 2.0, self.shape).astype(self.dtype)
        return np.asfortranarray(a) if self.order == "F" else a


class Step:
    """One op of a Program: `out = op(*args, **params)`; an argument is the name of an input
    or an earlier step, or a constant (a number)."""

    __slots__ = ("out", "op", "args", "params")

    def __init__(self, out, op, args, **params):
        self.out, self.op, self.args, self.params = out, op, tuple(args), params

    def __repr__(self):
        return self._repr()

    def _repr(self, width=None):
        """The source; its parameters on a second line if the first would pass `width`."""
        head = f"Step({self.out!r}, {self.op!r}, {_literal(self.args)}"
        params = ", ".join(f"{k}={_literal(v)}" for k, v in self.params.items())
        if not params:
            return head + ")"
        if width is not None and len(head) + len(params) + 3 > width:
            return f"{head},\n             {params})"
        return f"{head}, {params})"

    def source(self):
        args = [a if isinstance(a, str) else _literal(a) for a in self.args]
        args += [f"{k}={_literal(v)}" for k, v in self.params.items()]
        return f"{self.out} = {self.op}({', '.join(args)})"


class ProgramOp:
    """An op of your own for `programs(extra_ops=[...])`: `fn(*tensors)` of `arity` tensors,
    elementwise (the result has the broadcast shape of its arguments).

    `domain`: the interval its arguments must lie in (the program maps them there first:
    (0.1, inf) for a log, say); `range`: the interval of its result over that domain.
    `fusable=False` if it cannot run under tg.fuse (a custom tg.Function); `exact=True` if it
    runs the same numpy calls in every mode, so results must agree bitwise.
    """

    def __init__(self, name, fn, arity=1, domain=(-3.0, 3.0), range=(-10.0, 10.0),
                 fusable=True, exact=False):
        if arity not in (1, 2):
            raise ValueError(f"ProgramOp {name!r}: arity must be 1 or 2, got {arity}")
        self.name, self.fn, self.arity = name, fn, arity
        self.domain, self.range = tuple(map(float, domain)), tuple(map(float, range))
        self.fusable, self.exact = fusable, exact

    def __repr__(self):
        return f"<ProgramOp {self.name}>"


def _index(idx):
    """An index as stored in a step (lists for integer arrays) as numpy takes it."""
    if isinstance(idx, tuple):
        return tuple(_index(i) for i in idx)
    return np.asarray(idx) if isinstance(idx, list) else idx


BATCH_CONDITION = 4.0, 0.1
"""What a drawn program's batch norm (and float32 variance) may meet, per feature: values at
most 4 standard deviations from zero, and a standard deviation of at least 0.1
(Program.well_conditioned)."""


def _batch_conditioned(args, bias):
    """Whether h = linear(x, w, b), batch norm's input, is as BATCH_CONDITION asks."""
    from .ops import linear
    x, w, b = _chain_args(args, bias, True)[:3]
    h = linear(x, w, b).data.astype(np.float64)
    std = np.sqrt(h.var(axis=0) + 1e-5)
    ratio, least = BATCH_CONDITION
    return bool(np.all(np.abs(h) <= ratio * std) and np.all(std >= least))


def _spread(x, axis):
    """Whether x is spread along `axis` as BATCH_CONDITION asks of batch norm's batches: a
    float32 variance loses digits to the rounding of the mean otherwise."""
    x = x.astype(np.float64)
    if _count(x.shape, axis) < 2:
        return True
    std = x.std(axis=axis, keepdims=True)
    ratio, least = BATCH_CONDITION
    return bool(np.all(np.abs(x.mean(axis=axis, keepdims=True)) <= ratio * std) and
                np.all(std >= least))


def _chain_args(args, bias, training):
    """(x, weight, bias, gamma, beta, running mean, running variance) of a chain's arguments."""
    x, w, *rest = args
    b, rest = (rest[0], rest[1:]) if bias else (None, rest)
    gamma, beta, *stats = rest
    return (x, w, b, gamma, beta) + (tuple(stats) if not training else (None, None))


def _chain(*args, form="functional", bias=True, training=True):
    """Linear -> BatchNorm1d -> ReLU, functional forms: batch statistics in training, the
    running statistics (arguments) in eval mode."""
    from .nn import functional as F
    x, w, b, gamma, beta, mean, var = _chain_args(args, bias, training)
    h = F.linear(x, w, b)
    if training:
        return F.relu(F.batch_norm(h, None, None, gamma, beta, training=True))
    return F.relu(F.batch_norm_running_stats(h, mean, var, gamma, beta))


def _run_table():
    """How a step runs where it is not the registered op's function called as stored."""
    import tensorgrad as tg
    return dict(
        permute=lambda x, axes: x.permute(*axes),
        expand=lambda x, sizes: x.expand(*sizes),
        getitem=lambda x, index: tg.getitem(x, _index(index)),
        unindex=lambda g, index, shape: tg.unindex(g, _index(index), shape),
        concatenate=lambda *xs, axis: tg.concatenate(xs, axis=axis),
        stack=lambda *xs, axis: tg.stack(xs, axis=axis),
        dropout=lambda x, mask, p, seed, form: x * mask,
        linear_bn_relu=_chain,
    )


_RUN = {}


class Program:
    """A random composition of tensorgrad ops, drawn by `programs()`.

    `program(*tensors)` runs it as a pure function of its inputs (what tg.fuse traces: a
    dropout mask is an input); `program.eager(*tensors)` runs the same maths with the forms
    the draw chose (nn.Sequential of Linear, BatchNorm1d and ReLU modules; nn.Dropout or
    F.dropout with the mask's seed). `draw_values(rng)` gives fresh input arrays,
    `leaves(arrays)` fresh tensors of them. `features` names what it uses (see FEATURES);
    `exact`: every mode runs the same numpy calls, so results must agree bitwise. Its repr is
    the Python that rebuilds it (for an @example).
    """

    def __init__(self, inputs, steps, result, features=(), exact=False, ops=()):
        self.inputs, self.steps, self.result = list(inputs), list(steps), result
        self.features, self.exact = frozenset(features), bool(exact)
        self.ops = {op.name: op for op in ops}  # extra ops (ProgramOp) by name
        self.fusable = all(self.ops[s.op].fusable for s in self.steps if s.op in self.ops)
        self._modules = {}  # step name -> nn modules of the eager forms, built on first use

    def __repr__(self):
        inputs = "".join(f"\n        {i!r}," for i in self.inputs)
        steps = "".join(f"\n        {s._repr(76)}," for s in self.steps)
        ops = f",\n    ops=[{', '.join(self.ops)}]" if self.ops else ""
        features, line = [], "       "
        for f in sorted(self.features):  # wrapped at 100 columns, as the tests' source is
            if len(line) + len(f) > 80:
                features.append(line)
                line = "       "
            line += f" {f!r},"
        features = "(\n" + "\n".join(features + [line]) + "\n    )" if self.features else "()"
        return (f"Program(\n    inputs=[{inputs}\n    ],\n    steps=[{steps}\n    ],\n"
                f"    result={self.result!r}, exact={self.exact!r}, features={features}{ops})")

    def source(self):
        """The program as Python-like code (for failure messages)."""
        lines = [f"def program({', '.join(i.name for i in self.inputs)}):"]
        lines += [f"    # {i!r}" for i in self.inputs]
        lines += [f"    {s.source()}" for s in self.steps]
        return "\n".join(lines + [f"    return {self.result}"])

    def _fn(self, name):
        if name in self.ops:
            return self.ops[name].fn
        if not _RUN:
            _RUN.update(_run_table())
        fn = _RUN.get(name)
        return fn if fn is not None else REGISTRY[name].fn  # (looked up: ops come and go)

    def _execute(self, tensors, eager, conditions=None):
        if len(tensors) != len(self.inputs):
            raise TypeError(f"program takes {len(self.inputs)} tensors, got {len(tensors)}")
        env = {i.name: t for i, t in zip(self.inputs, tensors)}
        for s in self.steps:
            args = [env[a] if isinstance(a, str) else a for a in s.args]
            if conditions is not None and s.op == "linear_bn_relu" and s.params["training"]:
                conditions.append(_batch_conditioned(args, s.params["bias"]))
            if conditions is not None and s.op in ("var", "std") and args[0].dtype == np.float32:
                conditions.append(_spread(args[0].data, s.params["axis"]))
            form = s.params.get("form")
            if eager and (s.op == "dropout" and form != "mask" or form == "nn"):
                env[s.out] = self._eager_form(s, args)
            else:
                env[s.out] = self._fn(s.op)(*args, **s.params)
        return env[self.result]

    def __call__(self, *tensors):
        return self._execute(tensors, eager=False)

    def eager(self, *tensors):
        """The same result, with nn modules / seeded dropout where the program chose them."""
        return self._execute(tensors, eager=True)

    def _eager_form(self, step, args):
        from . import nn
        from .nn import functional as F
        p = step.params
        if step.op == "dropout":
            if p["form"] == "module":
                return nn.Dropout(p["p"], seed=p["seed"])(args[0])
            return F.dropout(args[0], p["p"], training=True, generator=p["seed"])
        # linear_bn_relu as nn.Sequential(Linear, BatchNorm1d, ReLU)
        x, w, b, gamma, beta, mean, var = _chain_args(args, p["bias"], p["training"])
        seq = self._modules.get(step.out)
        if seq is None:
            fout, fin = w.shape
            seq = self._modules[step.out] = nn.Sequential(
                nn.Linear(fin, fout, bias=p["bias"], dtype=w.dtype),
                nn.BatchNorm1d(fout, dtype=w.dtype), nn.ReLU())
        seq[0].weight = w
        if b is not None:
            seq[0].bias = b
        seq[1].weight, seq[1].bias = gamma, beta
        seq.train(p["training"])
        if not p["training"]:
            seq[1].running_mean.data[...] = mean.data
            seq[1].running_var.data[...] = var.data
        return seq(x)

    def fused(self):
        """A new tg.fuse of the program (its own trace cache)."""
        from .compile.fuse import fuse

        def program(*tensors):
            return self(*tensors)
        return fuse(program)

    def well_conditioned(self, arrays):
        """Whether batch norm meets well spread batches only (BATCH_CONDITION), and so do
        float32 variances: a batch far off zero for its spread loses digits to the rounding of
        its mean, a narrow one has large gradients, and runs that round differently then
        disagree in the result."""
        if not any(s.op in ("linear_bn_relu", "var", "std") for s in self.steps):
            return True
        from .autograd import no_grad
        conditions = []
        with no_grad(), np.errstate(all="ignore"):
            self._execute([Tensor(a) for a in arrays], False, conditions)
        return all(conditions)

    def draw_values(self, rng, tries=100):
        """Fresh input arrays (numpy Generator `rng`), well conditioned (redrawn up to `tries`
        times)."""
        for _ in range(tries):
            arrays = self._aliased([i.draw(rng) for i in self.inputs])
            if self.well_conditioned(arrays):
                break
        return arrays

    def flip_signs(self, arrays, rng, tries=100):
        """`arrays` with the signs of random elements of every value and parameter flipped
        (well conditioned: the flips are redrawn up to `tries` times)."""
        for _ in range(tries):
            out = []
            for i, a in zip(self.inputs, arrays):
                if i.kind in ("value", "param"):
                    flip = rng.random(a.shape) < 0.5
                    a = np.array(np.where(flip, -a, a), dtype=a.dtype, order=i.order)
                out.append(a)
            out = self._aliased(out)
            if self.well_conditioned(out):
                break
        return out

    def leaves(self, arrays):
        """Fresh leaf tensors of `arrays` (Parameters for layer parameters)."""
        from .nn import Parameter
        out, named = [], {}
        for i, a in zip(self.inputs, arrays):
            if i.alias is not None:
                out.append(named[i.alias])
                continue
            a = a.copy(order="K")
            out.append(Parameter(a) if i.kind == "param" else
                       Tensor(a, requires_grad=i.requires_grad))
            named[i.name] = out[-1]
        return out

    def _aliased(self, arrays):
        """`arrays` with each alias's array its input's."""
        named = {i.name: a for i, a in zip(self.inputs, arrays)}
        return [named[i.alias] if i.alias is not None else a
                for i, a in zip(self.inputs, arrays)]


class _Node:
    """What the strategy knows of a value while drawing: its shape, dtype, an example value
    (for the shapes of later steps), bounds on every value it can take, and whether its
    values are generic (no ties or copies by construction) and depend on an input that
    requires grad."""

    __slots__ = ("name", "example", "lo", "hi", "generic", "grad")

    def __init__(self, name, example, lo, hi, generic, grad):
        self.name, self.example, self.lo, self.hi = name, example, float(lo), float(hi)
        self.generic, self.grad = generic, grad

    @property
    def shape(self):
        return self.example.shape

    @property
    def ndim(self):
        return self.example.ndim

    @property
    def size(self):
        return self.example.size

    @property
    def mag(self):
        return max(abs(self.lo), abs(self.hi))


_NO_GRADIENT = ("greater", "less", "greater_equal", "less_equal")
_MAX_SIZE = 256  # elements of any value of a drawn program (keeps each run quick)
_SCALES = (0.5, 0.25, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)


def _interval_mul(a, b):
    corners = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
    return min(corners), max(corners)


class _Builder:
    """Draws a program step by step (see `programs`); every op keeps its operands inside the
    domain where it is well conditioned by first applying a bounding or positive-making op."""

    def __init__(self, draw, dtype, extra, exact_only=False):
        self.draw, self.dtype, self.extra = draw, np.dtype(dtype), {op.name: op for op in extra}
        self.exact_only = exact_only  # draw no broadcasting (see `partner`)
        self.inputs, self.steps, self.nodes, self.pool = [], [], {}, []
        self.uses, self.features, self.exact, self.count = {}, set(), True, 0
        self.aliases = {}  # an aliased input's name -> its input's name
        self.run = Program([], [], None, ops=extra)._fn

    # ---- values
    def _name(self, prefix):
        self.count += 1
        return f"{prefix}{self.count - 1}"

    def fresh(self, shape, kind="value", requires_grad=None, order="C", **mask):
        """A new input of `shape`, values in [-2, 2]."""
        name = self._name("m" if kind == "mask" else "w" if kind == "param" else "x")
        if requires_grad is None:
            requires_grad = kind == "param" or not self.inputs or \
                self.draw(st.sampled_from([True, True, True, False]))
        if kind == "param" and len(shape) == 2:
            order = self.draw(st.sampled_from(["C", "F"]))
        inp = Input(name, shape, self.dtype.name, kind, requires_grad, order, **mask)
        self.inputs.append(inp)
        if kind == "mask":
            example, lo, hi = inp.draw(None), 0.0, 1.0 / (1.0 - mask["p"])
        else:
            example, lo, hi = np.full(shape, 0.5, self.dtype), -2.0, 2.0
        node = self.nodes[name] = _Node(name, Tensor(example), lo, hi, kind != "mask",
                                        inp.requires_grad)
        if kind == "value":
            self.pool.append(node)
        if shape == ():
            self.features.add("zero_dim")
        return node

    def alias(self, x):
        """A new argument holding the tensor of the input `x` (a second name for it)."""
        name = self._name("a")
        i = next(i for i in self.inputs if i.name == x.name)
        self.inputs.append(Input(name, i.shape, i.dtype, i.kind, i.requires_grad, i.order,
                                 alias=x.name))
        self.aliases[name] = x.name
        self.features.add("aliased_input")
        node = self.nodes[name] = _Node(name, x.example, x.lo, x.hi, x.generic, x.grad)
        return node

    def emit(self, op, args, lo, hi, generic=False, exact=True, pool=True, **params):
        """Append the step op(*args, **params) (args: nodes or constants) and return its node."""
        name = self._name("v")
        values = [a.example if isinstance(a, _Node) else a for a in args]
        from .autograd import no_grad
        with no_grad(), np.errstate(all="ignore"):
            example = self.run(op)(*values, **params)
        for a in args:
            if isinstance(a, _Node):
                key = self.aliases.get(a.name, a.name)  # (an alias is its input's tensor)
                n = self.uses[key] = self.uses.get(key, 0) + 1
                if n == 2:
                    self.features.add("shared")
                if n >= 3:  # three gradients for one value: the order of the sum may differ
                    self.exact = False
                if a.shape == ():
                    self.features.add("zero_dim")
        self.exact &= exact
        if op == "sum_squares" and all(a.name[0] != "v" for a in args):
            self.features.add("l2_penalty")  # of leaves: their gradients are lazy products
        grad = op not in _NO_GRADIENT and any(isinstance(a, _Node) and a.grad for a in args)
        self.steps.append(Step(name, op, [a.name if isinstance(a, _Node) else a for a in args],
                               **params))
        node = self.nodes[name] = _Node(name, example, lo, hi, generic, grad)
        if pool and example.dtype == self.dtype:
            self.pool.append(node)
        return node

    def pick(self, ok=lambda n: True, fresh_shape=None):
        """An earlier value satisfying `ok` (first the results nothing used yet, the most
        recent first), or a new input."""
        found = [n for n in reversed(self.pool) if ok(n)]
        found.sort(key=lambda n: n.name in self.uses or n.name[0] != "v")  # (stable)
        if fresh_shape is not None and (not found or self.draw(st.integers(0, 3)) == 0):
            return self.fresh(self.draw(fresh_shape) if isinstance(fresh_shape, SearchStrategy)
                              else fresh_shape)
        return self.draw(st.sampled_from(found)) if found else None

    def operand(self, min_ndim=0, ok=lambda n: True):
        return self.pick(lambda n: n.ndim >= min_ndim and ok(n), shapes(min_dims=min_ndim))

    def bounded(self, x, m):
        """x scaled into [-m, m] if it may leave it."""
        if x.mag <= m:
            return x
        c = next((s for s in _SCALES if s * x.mag <= m), m / x.mag)
        return self.emit("mul", (x, c), x.lo * c, x.hi * c, x.generic)

    def positive(self, x, low=0.1, high=10.0):
        """x, or a positive function of it with values in [low, high] (high >= low + 1)."""
        if low <= x.lo and x.hi <= high:
            return x
        how = self.draw(st.sampled_from(["exp", "square", "sigmoid", "abs"]))
        if how == "exp":
            x = self.bounded(x, min(2.0, -np.log(low), np.log(high)))
            return self.emit("exp", (x,), np.exp(x.lo), np.exp(x.hi), x.generic)
        if how == "sigmoid":
            s = self.emit("sigmoid", (x,), 0.0, 1.0, x.generic)
        else:
            x = self.bounded(x, min(3.0, np.sqrt(high - low) if how == "square" else high - low))
            s = self.emit(how, (x,), 0.0, x.mag ** (2 if how == "square" else 1))
        return self.emit("add", (s, low), low, s.hi + low, how == "sigmoid" and x.generic)

    def into(self, x, lo, hi):
        """x, or tanh(x) mapped affinely into [lo, hi] (infinite ends become finite)."""
        lo_ = lo if lo > -_INF else (min(hi, 3.0) - 6.0 if hi < _INF else -3.0)
        hi_ = hi if hi < _INF else lo_ + 6.0
        if lo_ <= x.lo and x.hi <= hi_:
            return x
        t = self.emit("tanh", (x,), -1.0, 1.0, x.generic)
        half, mid = 0.49 * (hi_ - lo_), 0.5 * (hi_ + lo_)
        t = self.emit("mul", (t, half), -half, half, x.generic)
        return self.emit("add", (t, mid), mid - half, mid + half, x.generic)

    def partner(self, x, consts=(0.5, -1.5, 2.0), shape=None):
        """A second operand for x (or for values of `shape`): an earlier value that broadcasts
        with it, a new input of a shape that does, or a number."""
        shape = x.shape if shape is None else shape
        how = self.draw(st.sampled_from(["fresh", "node", "const"] if consts else
                                         ["fresh", "node"]))
        if how == "const":
            return self.draw(st.sampled_from(consts))
        if how == "node":
            n = self.pick(lambda n: n.shape == shape if self.exact_only else
                          _broadcasts(n.shape, shape) and
                          _size(np.broadcast_shapes(n.shape, shape)) <= _MAX_SIZE)
            if n is not None:
                return n
        return self.fresh(shape if self.exact_only else
                          self.draw(hnp.broadcastable_shapes(shape, max_dims=3, max_side=4)))

    def elementwise(self, op, args, lo, hi, generic=False, exact=True, **params):
        """An elementwise step: notes broadcasting (whose gradient sums are not exact)."""
        out = np.broadcast_shapes(*[a.shape for a in args if isinstance(a, _Node)])
        if any(isinstance(a, _Node) and a.shape != out for a in args):
            self.features.add("broadcasting")
            exact = False
        nodes = [a for a in args if isinstance(a, _Node)]
        if len(nodes) == 2 and nodes[0] is nodes[1]:
            generic = False  # x - x, x / x: constant
        return self.emit(op, args, lo, hi, generic, exact, **params)


def _broadcasts(a, b):
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


def _size(shape):
    return int(np.prod(shape)) if shape else 1


# ---- the ops a program draws from: a builder per built-in op (registered_builders) ------------
def _unary(op, bound, interval, generic=True, **params):
    """A builder of op(x): x bounded by `bound`, the result's interval from x's."""
    def build(b):
        x = b.bounded(b.operand(), bound)
        lo, hi = interval(x.lo, x.hi, **params)
        return b.emit(op, (x,), lo, hi, generic and x.generic, **params)
    return build


def _on_positive(op, interval):
    def build(b):
        x = b.positive(b.operand())
        lo, hi = interval(x.lo, x.hi)
        return b.emit(op, (x,), lo, hi, x.generic)
    return build


def _square_bounds(lo, hi):
    return (0.0 if lo <= 0 <= hi else min(lo * lo, hi * hi)), max(lo * lo, hi * hi)


def _leaky_relu(b):
    x = b.bounded(b.operand(), 10.0)
    s = b.draw(st.sampled_from([0.01, 0.2]))
    return b.emit("leaky_relu", (x,), min(x.lo, s * x.lo), max(x.hi, s * x.hi), x.generic,
                  negative_slope=s)


def _elu(b):
    x = b.bounded(b.operand(), 10.0)
    a = b.draw(st.sampled_from([1.0, 0.5]))
    return b.emit("elu", (x,), min(0.0, a * np.expm1(x.lo)), max(x.hi, 0.0), x.generic,
                  alpha=a)


def _softplus(b):
    x = b.bounded(b.operand(), 10.0)
    beta = b.draw(st.sampled_from([1.0, 1.5]))  # beta x stays below the threshold (20): no kink
    lo, hi = (np.logaddexp(0.0, beta * v) / beta for v in (x.lo, x.hi))
    return b.emit("softplus", (x,), lo, hi, x.generic, beta=beta)


def _clip(b):
    x = b.bounded(b.operand(), 10.0)
    lo, hi = b.draw(st.sampled_from([(-1.0, 1.0), (None, 0.5), (-0.5, None)]))
    out = (max(x.lo, lo) if lo is not None else x.lo, min(x.hi, hi) if hi is not None else x.hi)
    return b.emit("clip", (x,), min(out), max(out), a_min=lo, a_max=hi)


def _pow(b):
    x = b.operand()
    e = b.draw(st.sampled_from([2, 3, 0.5, -0.5, -1.5, "tensor"]))
    if e in (2, 3):
        x = b.bounded(x, 3.0)
        corners = [x.lo ** e, x.hi ** e] + ([0.0] if x.lo < 0 < x.hi else [])
        return b.emit("pow", (x, e), min(corners), max(corners), e == 3 and x.generic)
    x = b.positive(x, 0.2, 5.0)
    if e == "tensor":  # a ** y elementwise, with broadcasting
        y = b.partner(x, consts=())
        y = b.bounded(y, 1.5)
        e_lo, e_hi = y.lo, y.hi
        args = (x, y)
    else:
        e_lo = e_hi = e
        args = (x, e)
    corners = [base ** ex for base in (x.lo, x.hi) for ex in (e_lo, e_hi)]
    return b.elementwise("pow", args, min(corners), max(corners))


def _astype(b):
    """A round trip through the other float dtype (the program keeps one dtype)."""
    x = b.operand()
    other = "float32" if b.dtype == np.float64 else "float64"
    y = b.emit("astype", (x,), x.lo, x.hi, x.generic, pool=False, dtype=other)
    return b.emit("astype", (y,), x.lo, x.hi, x.generic, dtype=b.dtype.name)


def _binary(op):
    """A builder of op(x, y) (y: `partner` of x unless given), each operand bounded, a divisor
    made positive."""
    def build(b, x=None, y=None):
        x = b.bounded(b.operand() if x is None else x, 10.0)
        y = b.partner(x) if y is None else y
        if isinstance(y, _Node):
            y = b.positive(y, 0.25, 10.0) if op == "div" else b.bounded(y, 10.0)
        if b.draw(st.booleans()) and not isinstance(y, _Node):
            x, y = y, x  # the number first: 1.5 - x
        xi = (x.lo, x.hi) if isinstance(x, _Node) else (x, x)
        yi = (y.lo, y.hi) if isinstance(y, _Node) else (y, y)
        if op == "div":
            if not (yi[0] >= 0.25 or yi[1] <= -0.25):  # a divisor that may come near 0
                y = b.positive(y, 0.25, 10.0)
                yi = (y.lo, y.hi)
            lo, hi = _interval_mul(xi, (1 / yi[1], 1 / yi[0]))
        elif op == "add":
            lo, hi = xi[0] + yi[0], xi[1] + yi[1]
        elif op == "sub":
            lo, hi = xi[0] - yi[1], xi[1] - yi[0]
        elif op == "mul":
            lo, hi = _interval_mul(xi, yi)
        elif op == "maximum":
            lo, hi = max(xi[0], yi[0]), max(xi[1], yi[1])
        else:
            lo, hi = min(xi[0], yi[0]), min(xi[1], yi[1])
        generic = op in ("add", "sub", "mul", "div") and all(
            a.generic for a in (x, y) if isinstance(a, _Node))
        return b.elementwise(op, (x, y), lo, hi, generic)
    return build


def _where(b):
    a = b.bounded(b.operand(), 10.0)
    c = b.partner(a, consts=(0.0, 0.5, -0.5))
    cmp = b.draw(st.sampled_from(["greater", "less", "greater_equal", "less_equal"]))
    cond = b.emit(cmp, (a, c), 0, 1, pool=False)
    x = a if b.draw(st.booleans()) else b.bounded(b.partner(cond, consts=()), 10.0)
    y = b.partner(cond, consts=(0.0, 1.0), shape=np.broadcast_shapes(cond.shape, x.shape))
    y = b.bounded(y, 10.0) if isinstance(y, _Node) else y
    yi = (y.lo, y.hi) if isinstance(y, _Node) else (y, y)
    b.features.add("where")
    return b.elementwise("where", (cond, x, y), min(x.lo, yi[0]), max(x.hi, yi[1]))


def _count(shape, axis):
    if axis is None:
        return _size(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes])) if axes else 1


def _reduction(op):
    """A builder of op(x, axis, keepdims); axis 'any' (drawn), 'some' (not None) or None (all
    axes), keepdims None (drawn) or a bool."""
    def build(b, axis="any", keepdims=None):
        min_ndim = 1 if axis == "some" else 0
        ok = lambda n: True  # noqa: E731
        if op in ("var", "std"):  # no copies (a variance of 0), in float32 inputs only
            ok = lambda n: n.generic and (b.dtype == np.float64 or n.name[0] == "x") and (  # noqa
                op == "var" or n.ndim >= 1 and max(n.shape) >= 2)
        x = b.pick(lambda n: n.ndim >= min_ndim and ok(n))
        if x is None:
            x = b.fresh(b.draw(shapes(min_dims=1, min_side=2) if op == "std" else
                               shapes(min_dims=min_ndim)))
        x = b.bounded(x, 10.0)
        if axis in ("some", "any"):
            axis = b.draw(axes(x.ndim, allow_none=axis == "any"))
        if op == "std" and _count(x.shape, axis) < 2:
            axis = None
        keepdims = b.draw(st.booleans()) if keepdims is None else keepdims
        n = _count(x.shape, axis)
        params = dict(axis=axis, keepdims=keepdims)
        if op in ("var", "std"):
            params["ddof"] = b.draw(st.sampled_from([0, 1])) if n >= 2 else 0
        lo, hi = {"sum": (n * min(x.lo, 0), n * max(x.hi, 0)), "mean": (x.lo, x.hi),
                  "max": (x.lo, x.hi), "min": (x.lo, x.hi),
                  "logsumexp": (x.lo, x.hi + np.log(n)),
                  "var": (0.0, (x.hi - x.lo) ** 2 * 2), "std": (0.0, (x.hi - x.lo) * 1.5)}[op]
        if x.ndim and axis is not None:
            b.features.add("reduction_axis")
        if x.ndim and keepdims:
            b.features.add("keepdims")
        return b.emit(op, (x,), lo, hi, exact=op in ("max", "min"), **params)
    return build


def _softmax(op):
    def build(b):
        if b.draw(st.integers(0, 3)) == 0:  # class scores: a batch of rows of a few columns
            c = b.draw(st.integers(2, 3))
            x, axis = b.fresh((4 * c + b.draw(st.integers(0, 2)), c)), 1
        else:
            x = b.bounded(b.operand(), 10.0)
            axis = b.draw(st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1))
        if x.ndim:
            b.features.add("reduction_axis")
        lo = 0.0 if op == "softmax" else x.lo - x.hi - np.log(max(x.size, 1))
        return b.emit(op, (x,), lo, 1.0 if op == "softmax" else 0.0, exact=False, axis=axis)
    return build


def _sum_squares(b):
    xs = [b.bounded(b.operand(), 5.0) for _ in range(b.draw(st.integers(1, 3)))]
    return b.emit("sum_squares", xs, 0.0, sum(x.size * x.mag ** 2 for x in xs), exact=False)


def _l2_penalty(b):
    """x + lambda * sum_squares(inputs): the course's L2 term, on inputs (leaves) that other
    steps use as well, so their gradients meet the penalty's."""
    leaves = [b.nodes[i.name] for i in b.inputs if i.requires_grad]
    used = [n for n in leaves if n.name in b.uses] or leaves
    ws = b.draw(st.lists(st.sampled_from(used), min_size=1, max_size=3, unique_by=id))
    penalty = b.emit("sum_squares", ws, 0.0, sum(w.size * w.mag ** 2 for w in ws), exact=False)
    lam = b.draw(st.sampled_from([0.005, 0.1]))
    penalty = b.emit("mul", (penalty, lam), 0.0, penalty.hi * lam)
    x = b.bounded(b.operand(), 10.0)
    return b.elementwise("add", (x, penalty), x.lo, x.hi + penalty.hi)


def _vdot(b):
    x = b.bounded(b.operand(), 5.0)
    y = b.pick(lambda n: n.shape == x.shape, x.shape)
    y = b.bounded(y, 5.0)
    return b.emit("vdot", (x, y), -x.size * x.mag * y.mag, x.size * x.mag * y.mag, exact=False)


def _same(op, min_ndim, params, generic=True, exact=True, max_ndim=None, bounds=None):
    """A builder of a step that moves values around (shape ops): `params(b, x)` draws its
    parameters; `bounds(x, params)` gives the result's interval where it is not x's (a sum, a
    padding)."""
    def build(b):
        x = b.operand(min_ndim, ok=lambda n: max_ndim is None or n.ndim <= max_ndim)
        kw = params(b, x)
        if kw is None:
            return None
        lo, hi = (x.lo, x.hi) if bounds is None else bounds(x, kw)
        return b.emit(op, (x,), lo, hi, generic and x.generic, exact, **kw)
    return build


def _summed_bounds(x, kw):
    """The interval of sum_to(x, shape): each result sums size(x) / size(shape) values."""
    n = x.size // _size(kw["shape"])
    return n * min(x.lo, 0.0), n * max(x.hi, 0.0)


def _padded_bounds(x, kw):
    return min(x.lo, 0.0), max(x.hi, 0.0)


def _reshape_params(b, x):
    divs = [d for d in range(1, x.size + 1) if x.size % d == 0]
    return dict(shape=(b.draw(st.sampled_from(divs)), -1))


def _broadcast_target(b, x):
    lead = (b.draw(st.integers(1, 3)),) if x.ndim < 3 else ()
    shape = lead + tuple(b.draw(st.integers(1, 3)) if s == 1 else s for s in x.shape)
    b.features.add("broadcasting")
    return shape if _size(shape) <= _MAX_SIZE else None


def _sum_to_params(b, x):
    drop = b.draw(st.integers(0, x.ndim))
    return dict(shape=tuple(1 if b.draw(st.booleans()) else s for s in x.shape[drop:]))


def _squeeze_params(b, x):
    ones = [i for i, s in enumerate(x.shape) if s == 1]
    return dict(axis=b.draw(st.sampled_from([None] + ones)))


def _index_strategy(shape, integer_array=None):
    """Indices of an array of `shape` (ndim >= 1) selecting at least one element: an int, a
    slice, an integer array with repeats, a boolean mask, and tuples with None / Ellipsis."""
    n0 = shape[0]
    arrays = st.lists(st.integers(-n0, n0 - 1), min_size=1, max_size=5)
    if integer_array:
        return arrays
    step = st.sampled_from([1, 2, -1])
    slices = st.tuples(st.integers(0, n0 - 1), step).map(
        lambda t: slice(t[0], None, t[1]) if t[1] > 0 else slice(t[0], None, -1))
    options = [st.integers(-n0, n0 - 1), slices, arrays,
               st.lists(st.booleans(), min_size=n0, max_size=n0).filter(any).map(np.array),
               st.tuples(st.integers(0, n0 - 1), st.just(None)),
               st.just((Ellipsis, None))]
    if len(shape) >= 2:
        n1 = shape[1]
        options.append(st.tuples(slices, st.integers(-n1, n1 - 1)))
        options.append(st.tuples(st.just(slice(None)), arrays.map(
            lambda a: [i % n1 for i in a])))
    return st.one_of(options)


def _getitem(b, integer_array=None):
    x = b.operand(1)
    index = b.draw(_index_strategy(x.shape, integer_array))
    b.features.add("indexing")
    items = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, list) for i in items):
        b.features.add("integer_array_index")
    generic = x.generic and not any(isinstance(i, list) for i in items)
    return b.emit("getitem", (x,), x.lo, x.hi, generic, index=index)


def _unindex(b):
    x = b.operand(1)
    n0 = b.draw(st.integers(1, 4))
    if b.draw(st.booleans()):
        index, shape = b.draw(st.integers(0, n0 - 1)), (n0,) + x.shape
    else:
        index = b.draw(st.lists(st.integers(0, n0 - 1), min_size=x.shape[0],
                                max_size=x.shape[0]))
        shape = (n0,) + x.shape[1:]
    if _size(shape) > _MAX_SIZE:
        return None
    b.features.add("indexing")
    if isinstance(index, list):
        b.features.add("integer_array_index")
    k = x.shape[0]
    return b.emit("unindex", (x,), k * min(x.lo, 0), k * max(x.hi, 0), index=index, shape=shape)


def _concatenate(op):
    def build(b):
        x = b.operand(1 if op == "concatenate" else 0)
        if op == "concatenate":
            axis = b.draw(st.integers(0, x.ndim - 1))
            shape = x.shape[:axis] + (b.draw(st.integers(1, 3)),) + x.shape[axis + 1:]
        else:
            axis = b.draw(st.integers(-(x.ndim + 1), x.ndim))
            shape = x.shape
        ys = [b.pick(lambda n: n.shape == shape, shape) for _ in range(b.draw(st.integers(1, 2)))]
        if _size(shape) * (len(ys) + 1) > _MAX_SIZE:
            return None
        args = [x] + [b.bounded(y, x.mag if x.mag >= 1 else 2.0) for y in ys]
        lo, hi = min(a.lo for a in args), max(a.hi for a in args)
        return b.emit(op, args, lo, hi, False, axis=axis)
    return build


def _pad_params(b, x):
    width = tuple((b.draw(st.integers(0, 2)), b.draw(st.integers(0, 2))) for _ in x.shape)
    if _size(tuple(s + lo + hi for s, (lo, hi) in zip(x.shape, width))) > _MAX_SIZE:
        return None
    return dict(pad_width=width)


def _matmul(b):
    x = b.bounded(b.operand(1, ok=lambda n: n.ndim <= 3), 3.0)
    k = x.shape[-1]
    kinds = [(k,), (k, b.draw(st.integers(1, 4)))]
    if x.ndim == 2:
        kinds.append((2, k, b.draw(st.integers(1, 3))))
    y = b.pick(lambda n: n.shape in kinds, b.draw(st.sampled_from(kinds)))
    y = b.bounded(y, 3.0)
    m = k * x.mag * y.mag
    if y.ndim == 3 and not x.ndim == 2:
        return None
    return b.emit("matmul", (x, y), -m, m, exact=False)


def _linear(b):
    x = b.bounded(b.operand(1), 3.0)
    fin, fout = x.shape[-1], b.draw(st.integers(1, 4))
    if _size(x.shape[:-1] + (fout,)) > _MAX_SIZE:
        return None
    w = b.fresh((fout, fin), kind="param")
    bias = b.fresh((fout,), kind="param") if b.draw(st.booleans()) else None
    m = fin * x.mag * 2 + 2
    return b.emit("linear", (x, w) + ((bias,) if bias is not None else ()), -m, m, exact=False)


def _linear_bn_relu(b):
    """Linear -> BatchNorm1d -> ReLU on a new (N, in) input or a value of that shape; batch
    norm in training (batch statistics: float64 only, see `programs`) or eval mode (the
    running statistics as inputs)."""
    n, fin, fout = b.draw(st.integers(2, 5)), b.draw(st.integers(1, 4)), b.draw(st.integers(1, 4))
    x = b.pick(lambda v: v.ndim == 2 and v.shape[0] >= 2 and v.generic, (n, fin))
    x = b.bounded(x, 3.0)
    bias = b.draw(st.booleans())
    training = b.dtype == np.float64 and b.draw(st.sampled_from([True, True, False]))
    params = [b.fresh((fout, x.shape[1]), kind="param")]
    params += [b.fresh((fout,), kind="param") for _ in range(3 if bias else 2)]
    if not training:
        params += [b.fresh((fout,), requires_grad=False), b.fresh((fout,), kind="variance")]
    form = b.draw(st.sampled_from(["functional", "nn"]))
    b.features.add("linear_bn_relu")
    if form == "nn":
        b.features.add("nn_modules")
    h = x.shape[1] * x.mag * 2.0 + 2.0  # |linear(x)|
    hi = 2.0 * np.sqrt(x.shape[0]) + 2.0 if training else (h + 2.0) * 2.0 / np.sqrt(0.5) + 2.0
    return b.emit("linear_bn_relu", [x] + params, 0.0, hi, exact=False, form=form, bias=bias,
                  training=training)


def _dropout(b):
    x = b.operand()
    p, seed = b.draw(st.sampled_from([0.5, 0.2, 0.9])), b.draw(st.integers(0, 2 ** 16))
    mask = b.fresh(x.shape, kind="mask", p=p, seed=seed)
    form = b.draw(st.sampled_from(["mask", "module", "functional"]))
    b.features.add("dropout")
    s = 1.0 / (1.0 - p)
    return b.emit("dropout", (x, mask), min(0.0, x.lo * s), max(0.0, x.hi * s), p=p,
                  seed=seed, form=form)


def _shared(b):
    """A value used twice: an op on an earlier value and itself (or something made of it)."""
    earlier = b.pick(lambda n: (n.name in b.uses) != b.exact_only)  # exact: a third use is not
    x = b.bounded(earlier or b.operand(), 5.0)
    op = b.draw(st.sampled_from(["mul", "add", "sub", "maximum", "div"]))
    y = x if op != "div" else b.positive(x, 0.25, 10.0)
    if op != "div" and b.draw(st.booleans()):
        y = b.emit("tanh", (x,), -1.0, 1.0, x.generic)
    return _binary(op)(b, x, y)


def _aliased_input(b):
    """One tensor passed as two arguments (f(x, x)), each used: a fused program gets the same
    tensor in two places and gives it two gradients."""
    inputs = [b.nodes[i.name] for i in b.inputs if i.kind != "mask" and i.alias is None]
    x = b.draw(st.sampled_from(inputs))
    y = b.alias(x)
    if b.draw(st.booleans()):  # something made of x meets y
        x = b.emit("tanh", (x,), -1.0, 1.0, x.generic)
    return _binary(b.draw(st.sampled_from(["mul", "add", "sub", "maximum"])))(b, x, y)


def _zero_dim(b):
    """A 0-d value meeting a larger one: a 0-d input, or a full reduction."""
    if b.exact_only:  # 0-d with 0-d: no broadcasting
        return _binary(b.draw(st.sampled_from(["add", "mul", "sub"])))(
            b, b.pick(lambda n: n.shape == (), ()), b.fresh(()))
    x = b.operand()
    if b.draw(st.booleans()):
        s = b.fresh(())
    else:
        s = _reduction(b.draw(st.sampled_from(["sum", "mean", "max"])))(b, axis=None,
                                                                         keepdims=False)
    return _binary(b.draw(st.sampled_from(["add", "mul", "sub"])))(b, x, b.bounded(s, 5.0))


def _broadcasting(b):
    x = b.operand()
    if x.ndim < 3 and b.draw(st.booleans()):
        shape = (b.draw(st.integers(2, 3)),) + x.shape
    elif x.ndim:
        axis = b.draw(st.integers(0, x.ndim - 1))
        shape = x.shape[:axis] + (1 if x.shape[axis] > 1 else 2,) + x.shape[axis + 1:]
    else:
        shape = (b.draw(st.integers(2, 3)),)
    return _binary(b.draw(st.sampled_from(["add", "mul", "sub", "div"])))(b, x, b.fresh(shape))


_exp = _unary("exp", 3.0, lambda lo, hi: (np.exp(lo), np.exp(hi)))
BUILDERS = {
    "add": _binary("add"), "sub": _binary("sub"), "mul": _binary("mul"), "div": _binary("div"),
    "pow": _pow, "square": _unary("square", 4.0, _square_bounds, generic=False),
    "rsqrt": _on_positive("rsqrt", lambda lo, hi: (hi ** -0.5, lo ** -0.5)),
    "matmul": _matmul, "neg": _unary("neg", 1e9, lambda lo, hi: (-hi, -lo)),
    "exp": _exp, "log": _on_positive("log", lambda lo, hi: (np.log(lo), np.log(hi))),
    "sqrt": _on_positive("sqrt", lambda lo, hi: (lo ** 0.5, hi ** 0.5)),
    "abs": _unary("abs", 10.0, lambda lo, hi: (0.0, max(-lo, hi)), generic=False),
    "tanh": _unary("tanh", 1e9, lambda lo, hi: (np.tanh(lo), np.tanh(hi))),
    "sigmoid": _unary("sigmoid", 1e9, lambda lo, hi: (0.0, 1.0)),
    "relu": _unary("relu", 10.0, lambda lo, hi: (max(lo, 0.0), max(hi, 0.0)), generic=False),
    "leaky_relu": _leaky_relu, "elu": _elu, "softplus": _softplus,
    "maximum": _binary("maximum"), "minimum": _binary("minimum"), "where": _where,
    "clip": _clip,
    "sum": _reduction("sum"), "sum_squares": _sum_squares, "mean": _reduction("mean"),
    "var": _reduction("var"), "std": _reduction("std"), "max": _reduction("max"),
    "min": _reduction("min"), "logsumexp": _reduction("logsumexp"),
    "softmax": _softmax("softmax"), "log_softmax": _softmax("log_softmax"),
    "reshape": _same("reshape", 0, _reshape_params),
    "transpose": _same("transpose", 0, lambda b, x: dict(
        axes=tuple(b.draw(st.permutations(range(x.ndim)))))),
    "permute": _same("permute", 0, lambda b, x: dict(
        axes=tuple(b.draw(st.permutations(range(x.ndim)))))),
    "swapaxes": _same("swapaxes", 1, lambda b, x: dict(
        axis1=b.draw(st.integers(0, x.ndim - 1)), axis2=b.draw(st.integers(-x.ndim, x.ndim - 1)))),
    "matrix_transpose": _same("matrix_transpose", 2, lambda b, x: {}),
    "flatten": _same("flatten", 1, lambda b, x: dict(
        start_dim=b.draw(st.integers(0, x.ndim - 1)))),
    "broadcast_to": _same("broadcast_to", 0, lambda b, x: (
        lambda s: None if s is None else dict(shape=s))(_broadcast_target(b, x)),
        generic=False, exact=False, max_ndim=3),
    "expand": _same("expand", 0, lambda b, x: (
        lambda s: None if s is None else dict(sizes=s))(_broadcast_target(b, x)),
        generic=False, exact=False, max_ndim=3),
    "sum_to": _same("sum_to", 0, _sum_to_params, generic=False, exact=False,
                    bounds=_summed_bounds),
    "squeeze": _same("squeeze", 0, _squeeze_params),
    "unsqueeze": _same("unsqueeze", 0, lambda b, x: dict(
        axis=b.draw(st.integers(-(x.ndim + 1), x.ndim))), max_ndim=3),
    "expand_dims": _same("expand_dims", 0, lambda b, x: dict(
        axis=b.draw(st.integers(0, x.ndim))), max_ndim=3),
    "getitem": _getitem, "unindex": _unindex,
    "concatenate": _concatenate("concatenate"), "stack": _concatenate("stack"),
    "pad": _same("pad", 1, _pad_params, generic=False, bounds=_padded_bounds),
    "astype": _astype, "linear": _linear, "vdot": _vdot,
}
"""How `programs()` draws each built-in op (registered_builders adds ops registered without one)."""

EXACT_OPS = frozenset(BUILDERS) - {
    "sum", "sum_squares", "mean", "var", "std", "logsumexp", "softmax", "log_softmax", "vdot",
    "matmul", "linear", "broadcast_to", "expand", "sum_to"}
"""The ops that run the same numpy calls in every mode (no sums): a program of these alone,
without broadcasting, must give bitwise equal results."""
_EXACT_FEATURES = ("indexing", "integer_array_index", "where", "shared", "zero_dim", "dropout",
                   "aliased_input")

_FEATURE_BUILDERS = {
    "broadcasting": _broadcasting,
    "reduction_axis": lambda b: _reduction(b.draw(st.sampled_from(
        ["sum", "mean", "var", "max", "min", "logsumexp"])))(b, axis="some"),
    "keepdims": lambda b: _reduction(b.draw(st.sampled_from(
        ["sum", "mean", "var", "max", "logsumexp"])))(b, axis="some", keepdims=True),
    "indexing": _getitem,
    "integer_array_index": lambda b: _getitem(b, integer_array=True),
    "where": _where, "shared": _shared, "zero_dim": _zero_dim,
    "linear_bn_relu": _linear_bn_relu, "dropout": _dropout, "l2_penalty": _l2_penalty,
    "aliased_input": _aliased_input,
}


def _extra_builder(op):
    def build(b):
        x = b.into(b.bounded(b.operand(), 10.0), *op.domain)
        args = [x]
        if op.arity == 2:
            y = b.partner(x, consts=())
            args.append(b.into(b.bounded(y, 10.0), *op.domain))
        b.exact &= op.exact
        return b.elementwise(op.name, args, *op.range)
    return build


def registered_builders():
    """{name: builder} of every registered differentiable op (tg.DIFFERENTIABLE), the op set
    `programs()` draws from: BUILDERS's, else a generic one (`_registered_builder`)."""
    out = {}
    for name, fn in DIFFERENTIABLE.items():
        build = BUILDERS.get(name) or _registered_builder(name, fn)
        if build is not None:
            out[name] = build
    return out


def _registered_builder(name, op):
    """A builder for a registered elementwise Op of one or two inputs that BUILDERS has none
    for (a new op): its operands mapped into [-1, 1], its result's interval measured on a grid
    there and widened by a tenth. None for any other op: write it a builder in BUILDERS."""
    if not getattr(op, "elementwise", False) or op.variadic or len(op.vjps) not in (1, 2):
        return None
    grid = np.linspace(-1.0, 1.0, 101)
    with np.errstate(all="ignore"):
        values = np.asarray(op.forward(*np.meshgrid(*[grid] * len(op.vjps))))
    if not np.isfinite(values).all():
        return None
    lo, hi = float(values.min()), float(values.max())
    pad = 0.1 * (hi - lo) + 1e-3
    return _extra_builder(ProgramOp(name, op, arity=len(op.vjps), domain=(-1.0, 1.0),
                                    range=(lo - pad, hi + pad)))


@st.composite
def programs(draw, max_steps=6, dtypes=("float64", "float32"), ops=None, extra_ops=(),
             features=FEATURES, exact=None):
    """Random programs of the registered ops (see `Program`), for checking that every way of
    running them agrees (`assert_program_modes_agree`) or any property of your own.

    A program has inputs of 0 to 3 dimensions (float64 or float32: one of `dtypes` per
    program) and applies up to `max_steps` ops drawn from `ops` (names of registered ops;
    default all of tg.DIFFERENTIABLE, see `registered_builders`), plus steps for each of
    `features` the draw picks: broadcasting, reductions with an axis and keepdims, indexing
    with ints, slices and integer arrays, comparisons with `where`, a value used twice, 0-d
    tensors, Linear -> BatchNorm1d -> ReLU (nn modules or functional forms, training or eval
    mode), seeded dropout, the L2 term sum_squares of inputs, and one tensor passed as two inputs.
    `exact=True` draws only ops that run the same numpy calls in every mode, without
    broadcasting or a value used three times (None: a quarter of the programs, flagged `exact`
    when they are).

    Operands are first mapped where each op is well conditioned (log and sqrt of values
    >= 0.1, divisors >= 0.25, exp of |x| <= 3) whatever the signs of the inputs, and batch
    norm gets well spread batches (Program.well_conditioned). In float32 programs batch norm
    uses running statistics (eval mode): with batch statistics its gradients cancel (for a
    batch of two they are zero), and two orders of summation then differ by far more than
    float32's 4 ulp (float64's 1e-12 leaves room for it).

    Your own elementwise ops join with `extra_ops` (ProgramOp); `ops=()` draws only them (and
    the features):

        softplus = ProgramOp("softplus", lambda x: tg.log(1 + tg.exp(x)), domain=(-5, 5),
                             range=(0, 6))
        @given(programs(ops=(), extra_ops=[softplus]), st.integers(0, 2**32 - 1))
        def test_softplus_in_programs(program, seed):
            assert_program_modes_agree(program, seed)

    (An @example of a program with extra ops needs `ops=[softplus]` added to its repr.)
    """
    dtype = draw(st.sampled_from(list(dtypes)))
    asked_exact = exact is True
    if exact is None:
        exact = draw(st.sampled_from([False, False, False, True]))
    b = _Builder(draw, dtype, extra_ops, exact)
    registered = registered_builders()
    names = registered if ops is None else ops
    builders = {name: registered[name] for name in names if not exact or name in EXACT_OPS}
    builders.update({op.name: _extra_builder(op) for op in extra_ops if op.exact or not exact})
    if exact:
        features = [f for f in features if f in _EXACT_FEATURES]
    plan = draw(st.lists(st.sampled_from(sorted(builders)), max_size=max_steps)) \
        if builders else []
    # each feature in half the programs (the chain, in three quarters)
    plan += [("feature", f) for f in features
             if draw(st.sampled_from([True, True, True, False] if f == "linear_bn_relu" else
                                     [True, False]))]
    if not plan:
        plan = [next(iter(builders))] if builders else [("feature", features[0])]
    plan = draw(st.permutations(plan))
    b.fresh(draw(shapes()))
    last = None
    for item in plan:
        build = _FEATURE_BUILDERS[item[1]] if isinstance(item, tuple) else builders[item]
        node = build(b)
        last = node if node is not None else last
    if last is None:  # every op declined: one simple step
        last = b.emit("tanh", (b.pool[-1],), -1.0, 1.0)
    if not last.grad:  # the result must depend on an input that requires grad
        x = b.fresh(last.shape, requires_grad=True)
        last = b.elementwise("add", (last, x), last.lo + x.lo, last.hi + x.hi)
    unused = [n for n in b.pool if n is not last and n.name not in b.uses and
              n.name not in {i.name for i in b.inputs}]
    if unused and not exact and draw(st.booleans()):  # fold in what nothing used
        for n in unused:
            s = b.emit("mean", (n,), n.lo, n.hi, exact=False, axis=None, keepdims=False)
            last = b.elementwise("add", (last, s), last.lo + s.lo, last.hi + s.hi)
    if last.shape == ():
        b.features.add("zero_dim")
    if b.dtype == np.float32:
        b.features.add("float32")
    if asked_exact and not b.exact:  # (a value drawn for a third use): not what was asked
        reject()
    return Program(b.inputs, b.steps, last.name, b.features, b.exact, extra_ops)


# ---- running a program every way and comparing ---------------------------------------------------
def _hits():
    """{fast path: hits so far} (tg.fast_paths)."""
    return {name: p.hits for name, p in fast_paths().items()}


class _Outcome:
    """A run of a program: its value (with and without grad mode) and its gradients for the
    inputs that require grad, by backward(), by two backward() calls (the first retaining the
    graph: each .grad doubles), by grad(), by grad(create_graph=True), and the second order:
    the gradient of sum(grad * u) for fixed directions u (none when the result needs no
    gradient)."""

    def __init__(self, fn, program, arrays, gout, directions, second_order):
        from .autograd import grad, no_grad
        leaves = program.leaves(arrays)
        wanted = [i for i, t in enumerate(leaves) if t.requires_grad]
        out = fn(*leaves)
        self.value = np.array(out.data, copy=True)
        self.requires_grad = np.array(out.requires_grad)
        self.backward, self.twice, self.grad = [], [], []
        self.create_graph = self.second = None
        self.no_grad_value = self.value
        if not out.requires_grad:  # a result of constants, comparisons, ...
            return
        out.backward(gout)
        self.backward = [_array(leaves[i].grad, leaves[i]) for i in wanted]
        leaves = program.leaves(arrays)
        out = fn(*leaves)
        out.backward(gout, retain_graph=True)
        out.backward(gout)
        self.twice = [_array(leaves[i].grad, leaves[i]) for i in wanted]
        leaves = program.leaves(arrays)
        self.grad = [_array(g, leaves[i]) for i, g in zip(wanted, grad(
            fn(*leaves), [leaves[i] for i in wanted], gout, allow_unused=True))]
        with no_grad():
            self.no_grad_value = np.array(fn(*program.leaves(arrays)).data, copy=True)
        if not second_order:
            return
        leaves = program.leaves(arrays)
        xs = [leaves[i] for i in wanted]
        first = grad(fn(*leaves), xs, gout, create_graph=True, allow_unused=True)
        self.create_graph = [_array(g, x) for g, x in zip(first, xs)]
        total = None
        for g, u in zip(first, directions):
            if g is not None and g.requires_grad:
                term = (g * u).sum()
                total = term if total is None else total + term
        if total is None:  # the gradient is constant: no second order
            self.second = [np.zeros_like(x.data) for x in xs]
        else:
            self.second = [_array(g, x) for g, x in zip(grad(total, xs, allow_unused=True), xs)]

    def items(self):
        yield "value", [self.value]
        yield "result's requires_grad", [self.requires_grad]
        yield "value under no_grad()", [self.no_grad_value]
        yield "backward() gradient", self.backward
        yield _TWICE, self.twice
        yield "grad() gradient", self.grad
        if self.second is not None:
            yield "grad(create_graph=True) gradient", self.create_graph
            yield "second-order gradient", self.second


_TWICE = "gradient of two backward() calls"


def _array(t, like):
    """A gradient as an array: None (an input the result does not reach) as zeros."""
    if t is None:
        return np.zeros_like(like.data)
    return np.array(t.data if isinstance(t, Tensor) else t, copy=True)


class ModesDisagree(AssertionError):
    """Two ways of running one program gave different results."""


def _compare(got, want, exact, ulps=4, exact_value=None):
    """None if `got` agrees with `want` (bitwise if `exact`, else within 1e-12 in float64 or
    `ulps` ulp in float32, at the array's scale), else how they differ. `exact_value()`: the
    quantity computed in float64, for float32 results more than `ulps` apart."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return f"shape/dtype {got.shape} {got.dtype} vs {want.shape} {want.dtype}"
    if exact or got.dtype.kind != "f":
        if np.array_equal(got, want, equal_nan=True):
            return None
        diff = np.abs(got.astype(np.float64) - want)
        at = tuple(int(i) for i in np.unravel_index(np.nanargmax(diff), diff.shape))
        return f"not bitwise equal: max |diff| {np.nanmax(diff):.3g} at {at}"
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    if got.dtype == np.float32:
        try:
            np.testing.assert_array_max_ulp(got, want, maxulp=ulps)
            return None
        except AssertionError:
            pass
        # an element far below the array's scale (a sum that cancelled) counts its ulps there
        ulp = np.spacing(np.maximum(np.abs(want), np.float32(scale))).astype(np.float64)
        diff = np.abs(got.astype(np.float64) - want)
        if (diff <= ulps * ulp).all():
            return None
        why = f"more than {ulps} ulp apart (float32, scale {scale:.3g}): max |diff| " \
              f"{diff.max():.3g} = {np.max(diff / ulp):.3g} ulp"
        if exact_value is None:
            return why
        # rounded on either side of the exact value: each within `ulps` of the float64 result
        truth = exact_value()
        off, ref_off = (np.max(np.abs(a.astype(np.float64) - truth) / ulp) for a in (got, want))
        if off <= ulps and ref_off <= ulps:
            return None
        return f"{why}; {off:.3g} and {ref_off:.3g} ulp from the float64 result"
    bad = ~(np.abs(got - want) <= 1e-12 * scale + 1e-12 * np.abs(want))
    if bad.any():
        return f"not within 1e-12 (float64, scale {scale:.3g}): max |diff| " \
               f"{np.max(np.abs(got - want)):.3g}, {int(bad.sum())} of {bad.size} elements"
    return None


def assert_program_modes_agree(program, seed=0, calls=3, second_order=True):
    """Run `program` eagerly in fast mode, fused (tg.fuse, fast mode) and in reference mode
    (tg.fast_mode(False): the textbook engine), on `calls` sets of input values drawn from
    `seed` (the last flips the signs of random elements of the first), and assert that the
    values and the gradients (backward(), grad(), grad(create_graph=True), second order)
    agree with the reference: bitwise when the program is `exact` (the same numpy calls run
    in every mode), else within 1e-12 of the largest magnitude (float64) or 4 ulp (float32;
    ulps counted at the array's scale where an element is below it, and two results rounded
    on either side of the exact value pass when each is within 4 ulp of the program run in
    float64). The gradient of two backward() calls adds each leaf's terms in an order the
    mode chooses: never bitwise, and 8 ulp in float32. The fused function is traced once, on
    the first call, and replayed after. Raises ModesDisagree naming the program, the call, the
    quantity and the modes.
    """
    from .autograd import no_grad
    rng = np.random.default_rng(seed)
    values = [program.draw_values(rng) for _ in range(max(calls - 1, 1))]
    if calls > 1:
        values.append(program.flip_signs(values[0], rng))
    fused = program.fused() if program.fusable else None
    reference = fast_mode(False)
    for k, arrays in enumerate(values):
        k = f"call {k}" + (" (the signs of call 0 flipped)" if calls > 1 and
                           k == len(values) - 1 else "")
        wanted = [a for i, a in zip(program.inputs, arrays) if i.requires_grad]
        runs = {}
        with no_grad():
            probe = program(*program.leaves(arrays))
        gout = rng.uniform(-1.0, 1.0, probe.shape).astype(probe.dtype)
        directions = [rng.uniform(-1.0, 1.0, a.shape).astype(a.dtype) for a in wanted]
        ways = [("reference", reference, program.eager), ("eager", None, program.eager)]
        if fused is not None:
            ways += [("fused", None, fused), ("fused in reference mode", reference, fused)]
        for name, mode, fn in ways:
            hits = _hits() if mode is reference else None
            try:
                with mode or nullcontext():
                    runs[name] = _Outcome(fn, program, arrays, gout, directions, second_order)
            except Exception as e:
                if not runs:  # the first way failed: the program itself is wrong
                    raise
                raise ModesDisagree(_report(program, seed, k, None, name, ways[0][0],
                                            repr(e))) from e
            ran = hits and {p for p, n in _hits().items() if n > hits[p]}
            if ran:
                raise ModesDisagree(_report(program, seed, k, None, name, name,
                                            f"fast paths ran in reference mode: {sorted(ran)}"))
        base = "reference"
        for what, arrays_ in runs[base].items():
            for a in arrays_:
                if a.dtype.kind == "f" and not np.isfinite(a).all():
                    raise ModesDisagree(_report(program, seed, k, what, base, base,
                                                "the reference is not finite: the program "
                                                "left its well-conditioned domain"))
        twin = {}  # the program in float64 on the same values, in reference mode (lazily)

        def exact_value(what, i, arrays=arrays, gout=gout, directions=directions, twin=twin):
            if not twin:
                with reference:
                    twin.update(_Outcome(program, program, [a.astype(np.float64) for a in arrays],
                                         gout.astype(np.float64),
                                         [d.astype(np.float64) for d in directions],
                                         second_order).items())
            return twin[what][i]

        for name, run in runs.items():
            if name == base:
                continue
            for (what, got), (_, want) in zip(run.items(), runs[base].items()):
                if len(got) != len(want):
                    raise ModesDisagree(_report(program, seed, k, what, name, base,
                                                f"{len(got)} vs {len(want)} arrays"))
                twice = what == _TWICE  # two sums, added in an order each mode chooses
                for i, (g, w) in enumerate(zip(got, want)):
                    why = _compare(g, w, program.exact and not twice, 8 if twice else 4,
                                   lambda what=what, i=i: exact_value(what, i))
                    if why is not None:
                        label = what if len(want) == 1 and what[0] in "vr" else \
                            f"{what} of input {i}"
                        raise ModesDisagree(_report(program, seed, k, label, name, base, why))


def _report(program, seed, call, what, got, want, why):
    where = f"{call}, seed {seed}"
    head = f"{got} ({where}): {why}" if got == want else \
        f"{got} raised where {want} ran ({where}): {why}" if what is None else \
        f"{got} and {want} disagree on the {what} ({where}): {why}"
    return f"{head}\n{program.source()}\nas an @example: program={program!r}, seed={seed}"
