"""Code generation: a program's forward and backward as straight-line Python.

One line per primitive and per vjp, over the program's slots (`vN` a value, `gN` a gradient),
so running them costs little more than the numpy calls themselves. What the lines are comes
from the program (program.py), the backward's plan (plan.py: which sites need summing down,
casting or broadcasting, which vjps are lowered) and, for the forward, the example arrays of
the trace (what lowerings.py offers for them, which operands may become typed numbers). Each
line is described with the variables it reads (liveness.Statement), and liveness.py decides
from those where each is deleted. Where the fast paths allow (tensorgrad/mode.py): lowered
forwards and vjps, one-expression lambdas written out in place (inline.py), Python numbers as
0-d arrays, column sums as BLAS products, values deleted after their last use.
"""
import numpy as np

from .. import mode as _mode
from ..autograd.function import passthrough
from ..autograd.xp import dot as _dot
from ..autograd.xp import number as _number
from ..autograd.xp import reduce_to as _reduce_to
from .inline import expression
from .liveness import Statement, values_read, with_frees
from .lowerings import lowering_for

__all__ = ["FREED", "forward_source", "assemble_forward", "backward"]

_HITS = _mode.HITS


class _Freed:
    """What a lean forward returns in place of a slot's value it did not keep."""

    __slots__ = ()

    def __repr__(self):
        return "<freed by a lean forward>"


FREED = _Freed()

# ufuncs for which a Python number operand computes exactly as a 0-d array of the other
# operand's float dtype (NumPy 2 casts the number to it), and the call costs less
_TYPED_NUMBERS = {np.add, np.subtract, np.multiply, np.true_divide, np.maximum, np.minimum}


def _ours(fn):
    """Only tensorgrad's own lambdas are written out: a user's module may have been edited since
    it was imported, and its source on disk would then not be the code that runs."""
    module = getattr(fn, "__module__", None)
    return isinstance(module, str) and module.split(".", 1)[0] == __package__.split(".", 1)[0]


def _call(env, name, fn, parts, kw, off):
    """(source of a call of fn on the names `parts` with the parameters kw, the parts it
    reads): a one-expression lambda is written out in place of the call (inline.py), which
    reads only the parts its body names."""
    named = {}
    for key, value in kw.items():
        env[f"{name}_{key}"] = value
        named[key] = f"{name}_{key}"
    if _ours(fn) and "inlined_lambda" not in off:
        reads = set()
        inlined = expression(fn, parts, named, env, name, reads)
        if inlined is not None:
            _HITS["inlined_lambda"] += 1
            return inlined, reads
    env[name] = fn
    return f"{name}({', '.join(parts + [f'{k}={v}' for k, v in named.items()])})", set(parts)


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


def define(name, lines, env):
    """Compile generated source into a function (its globals: the callables and constants;
    its attribute `source`: the text, to read when debugging)."""
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<fused {name}>", "exec"), env)
    fn = env[name]
    fn.source = source
    return fn


# ---- forward ------------------------------------------------------------------------------------
def forward_source(program, examples, off):
    """(globals, the constants' statements, each step's statements): the body of every forward.
    `examples`: every slot's value in the trace (for lowerings and typed numbers; not kept)."""
    env = {"asarray": np.asarray, "_FREED": FREED}
    n_in = program.n_in
    head, body = [], []
    for j, value in enumerate(program.consts):
        env[f"c{j}"] = value
        head.append(Statement(f"    v{n_in + j} = c{j}", (n_in + j,)))
    for k, (op, spec, kw) in enumerate(program.steps):
        s = program.slot(k)
        fn = op.forward
        low = lowering_for(op) if "lowering" not in off else None
        if low is not None:
            low = low(None, [examples[a] for a in spec], **kw)
            if low is not None:
                fn, kw = low, {}
                _HITS["lowering"] += 1
        args = [f"v{a}" for a in spec]
        slots = dict(zip(args, spec))
        if fn in _TYPED_NUMBERS and "typed_number" not in off:  # (then not reading the slot)
            _typed_numbers(env, k, args, [examples[a] for a in spec])
        text, reads = _call(env, f"f{k}", fn, args, kw, off)
        lines = [Statement(f"    v{s} = {text}", (s, *sorted(slots[a] for a in reads
                                                             if a in slots)))]
        if program.shapes[s] == ():  # ufuncs return numpy scalars for 0-d operands
            lines.append(Statement(f"    v{s} = asarray(v{s})", (s,)))
        body.append(lines)
    return env, head, body


def assemble_forward(program, source, reads):
    """The forward returning every slot (reads None), or only the inputs, constants, results
    and the slots in `reads`, each other intermediate deleted after its last use (FREED in
    its place)."""
    env, head, body = source
    first = program.first_step
    keep = None if reads is None else set(reads) | {program.result, *program.aux}
    n = len(program.shapes)
    kept = [i for i in range(n) if keep is None or i < first or i in keep]
    shown = set(kept)
    returned = Statement("    return [" + ", ".join(f"v{i}" if i in shown else "_FREED"
                                                    for i in range(n)) + "]", tuple(kept))
    lines = [f"def forward({', '.join(f'v{i}' for i in range(program.n_in))}):"]
    lines += with_frees(head + [line for step in body for line in step], returned)
    lines.append(returned.text)
    return define("forward", lines, dict(env))


# ---- backward -----------------------------------------------------------------------------------
def _reduction(env, site, var, slot, shape, target, dtype, full, blas):
    """Source summing `var` of `shape` down to `target` (slot's shape): a product with a ones
    vector for the column sum of a float matrix (the bias and batch-norm gradients) if `blas`,
    else xp.reduce_to."""
    if blas and len(shape) == 2 and dtype.kind == "f" and shape[1:] == target[-1:] and \
            target in ((shape[1],), (1, shape[1])) and (full is None or full == shape):
        env[f"ones{site}"] = np.ones(shape[0], dtype)
        _HITS["blas_reduction"] += 1
        if len(target) == 2:
            env[f"S{slot}"] = target
            return f"dot(ones{site}, {var}).reshape(S{slot})"
        return f"dot(ones{site}, {var})"
    env[f"S{slot}"], env[f"F{site}"] = target, full
    return f"reduce_to({var}, S{slot}, F{site})"


class _Backward:
    """The statements of one backward, as they are written (see `backward`)."""

    def __init__(self, program, plan, off):
        self.program, self.plan, self.off = program, plan, off
        self.env = {"dot": _dot, "reduce_to": _reduce_to, "_HITS": _HITS}
        self.body = []
        self.site = 0  # sites in the order they are written: their constants' names

    def fix(self, key, var, slot, kind, grad=None):
        """The statements that bring `var` (the gradient g`grad`, or the temporary t) to slot's
        shape and dtype at the site `key`, as the plan found it needs."""
        site, self.site = self.site, self.site + 1
        found, shape = self.plan.sites[key], self.program.shapes[slot]
        grads = () if grad is None else (grad,)
        out = [Statement(f"    {var} = {var}.array()", grads=grads)] if found.scaled else []
        if kind in ("broadcast", "full"):
            if found.shape != shape:
                self.env[f"S{slot}"] = shape
                out.append(Statement(f"    {var} = xp.broadcast_to({var}, S{slot})"
                                     + (".copy()" if kind == "full" else ""), grads=grads))
            return out
        if not found.kept:
            reduced = _reduction(self.env, site, var, slot, found.shape, shape, found.dtype,
                                 found.full, "blas_reduction" not in self.off)
            out.append(Statement(f"    {var} = {reduced}", grads=grads))
        if found.dtype != found.target:
            out.append(Statement(f"    {var} = xp.astype({var}, v{slot}.dtype)", (slot,), grads))
        return out

    def vjp(self, k, i, reached):
        """The statements adding step k's gradient for its input i to that input's."""
        op, spec, kw = self.program.steps[k]
        s, a = self.program.slot(k), spec[i]
        fn, params = (op.vjps[0], dict(kw, argnum=i)) if op.variadic else (op.vjps[i], kw)
        low = self.plan.lowered.get((k, i))
        if low is not None:
            fn, params = low, {}
            _HITS["lowering"] += 1
        if fn is passthrough:
            value, values, grads = f"g{s}", (), (s,)
        else:
            parts = ["xp", f"g{s}"] + [f"v{b}" for b in (s,) + spec]
            value, reads = _call(self.env, f"b{k}_{i}", fn, parts, params, self.off)
            values = tuple(sorted({b for b in (s,) + spec if f"v{b}" in reads}))
            grads = (s,) if f"g{s}" in reads else ()
        fixing = self.fix(("in", k, i), "t", a, "reduce")
        if fixing:
            self.body += [Statement(f"    t = {value}", values, grads)] + fixing
            value, values, grads = "t", (), ()
        if a in reached:
            self.body.append(Statement(f"    g{a} = g{a} + {value}", values, (a, *grads)))
        else:
            self.body.append(Statement(f"    g{a} = {value}", values, (a, *grads)))
        reached.add(a)


def backward(program, mask, plan, off):
    """The compiled backward for the inputs flagged in `mask` and the gradients the `plan` was
    probed with: `backward(xp, g, vals, consume=False)` -> every input's gradient (None where
    mask is False); consume: nothing else will read `vals`, so each value is freed after its
    last use (the list is emptied). Its attribute `reads`: the slots whose values it reads."""
    n_in, result = program.n_in, program.result
    reach = program.reach(mask)[1]
    gen = _Backward(program, plan, off)
    # consume: the values live on in the names only, each deleted once used (early_free)
    free = ["    if consume:", "        vals.clear()", "        _HITS['early_free'] += 1"] \
        if "early_free" not in off else []
    head = ["def backward(xp, g, vals, consume=False):",
            f"    {', '.join(f'v{i}' for i in range(len(program.shapes)))}, = vals", *free]
    gen.body.append(Statement(f"    g{result} = g", grads=(result,)))
    reached = {result}  # slots holding a gradient so far
    for k in range(len(program.steps) - 1, -1, -1):
        op = program.steps[k][0]
        s = program.slot(k)
        if s not in reached or not reach[k]:
            continue
        if not op.elementwise:  # a compact gradient meets a shape op
            gen.body += gen.fix(("out", k), f"g{s}", s, "broadcast", s)
        for i in reach[k]:
            gen.vjp(k, i, reached)
    for i in sorted(reached):  # an input's gradient may still be compact: make it full
        if i < n_in:
            gen.body += gen.fix(("grad", i), f"g{i}", i, "full", i)
    gen.env["zeros_like"] = np.zeros_like  # an input the result does not depend on: zeros
    returned = Statement(
        "    return [" + ", ".join(f"g{i}" if i in reached else f"zeros_like(v{i})" if mask[i]
                                   else "None" for i in range(n_in)) + "]",
        tuple(i for i in range(n_in) if i not in reached and mask[i]),
        tuple(i for i in range(n_in) if i in reached))
    compiled = define("backward", head + with_frees(gen.body, returned) + [returned.text],
                      gen.env)
    compiled.reads = values_read(gen.body + [returned])
    return compiled
