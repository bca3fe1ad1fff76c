"""Finite-difference gradient checking: `gradcheck`, `gradgradcheck`, `gradient_errors`.

What `gradcheck(fn, inputs)` checks, in float64, and raises GradcheckError for:
- every input that requires grad is finite (no NaN or inf), since the check point must be;
- fn's outputs at the check point are finite;
- the analytic derivative (tg.grad of each output element; an unused input counts as zeros) is
  finite, and so is the central difference (f(x + eps) - f(x - eps)) / 2 eps, which is not where
  fn has a pole or a domain edge within eps of x;
- the two agree within atol + rtol * |numeric|: element by element (the whole Jacobian) for
  inputs of up to `max_full` elements, along one random direction u with random output weights v
  (v^T J u) for larger ones.
What it does not check: inputs that do not require grad (constants such as a -inf mask are left
alone: a NaN there shows in the output), other points than the one given, the `.grad`
accumulation of backward(), and in random-direction mode an error orthogonal to u or v.
A mismatch where the left and right one-sided differences disagree is a kink (fn is not
differentiable there): that raises NondifferentiableError instead of a false gradient failure.

`gradgradcheck` checks fn's inputs and outputs are finite, then runs the same checks on the first
derivative (inputs, v) -> d(v . fn(inputs))/d(inputs) built with create_graph=True; its messages
say "gradgradcheck (second order check)". A failing derivative that does not reach the input
through the graph at all is named as such: fn (or a custom Function's backward) computed it with
numpy on `.data` or detach() instead of Tensor ops.
"""
import numpy as np

from .autograd import Tensor, no_grad
from .autograd import grad as _grad

__all__ = ["gradcheck", "gradgradcheck", "gradient_errors", "GradcheckError",
           "NondifferentiableError"]


class GradcheckError(AssertionError):
    """The analytic gradient disagrees with the numerical one, or either is not finite."""


class NondifferentiableError(ValueError):
    """The check point is at a kink (left and right derivatives differ): move it and retry."""


class _Labels:
    """How messages name the check and its inputs and outputs (first or second order)."""

    def __init__(self, who, input_label, output_label, graph_hint):
        self.who = who
        self.input = input_label      # i -> "input 0"
        self.output = output_label    # o -> "output 0"
        self.graph_hint = graph_hint  # the likely cause when an output is off the graph


def _first_order_labels(inputs):
    return _Labels("gradcheck", lambda i: f"input {i}", lambda o: f"output {o}",
                   "did fn compute it with numpy on .data (or detach()) instead of Tensor ops?")


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o if isinstance(o, Tensor) else Tensor(np.asarray(o, dtype=np.float64))
            for o in outs]


def _numeric_gradient(fn, inputs, x, offsets, weights, eps):
    """Centred-difference gradient of scalar fn with respect to x, element by element."""
    gn = np.empty(x.shape, dtype=x.data.dtype)
    for idx in np.ndindex(*x.shape):
        orig = x.data[idx]
        total = 0
        for k, w in zip(offsets, weights):
            x.data[idx] = orig + k * eps
            total = total + w * fn(*inputs).data.reshape(())
        x.data[idx] = orig
        gn[idx] = total / eps
    return gn


def _flat(outs):
    return np.concatenate([o.data.astype(np.float64).ravel() for o in outs])


def _flat_values(fn, inputs):
    # not under no_grad: fn may itself take gradients (gradgradcheck's first derivative)
    return _flat(_outputs(fn, inputs))


def _check_inputs(inputs, who):
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64:
            raise TypeError(f"{who}: input {i} has dtype {x.dtype}; finite differences need "
                            f"float64 inputs (use .astype(np.float64) / tg.tensor(..., "
                            f"dtype=np.float64))")
    idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not idx:
        raise ValueError(f"{who}: no input requires grad, nothing to check")
    return idx


def _first_nonfinite(a):
    """Flat index of a's first NaN or inf, or None."""
    bad = np.flatnonzero(~np.isfinite(a))
    return int(bad[0]) if bad.size else None


def _index(shape, flat):
    return tuple(int(v) for v in np.unravel_index(flat, shape)) if len(shape) else ()


def _output_at(shapes, k):
    """(output number, index within it) of element k of the concatenated outputs."""
    for o, shape in enumerate(shapes):
        size = int(np.prod(shape, dtype=np.int64))
        if k < size:
            return o, _index(shape, k)
        k -= size
    raise IndexError(k)


def _require_finite_inputs(inputs, diff_idx, labels):
    for i in diff_idx:
        k = _first_nonfinite(inputs[i].data)
        if k is not None:
            index = _index(inputs[i].shape, k)
            raise GradcheckError(
                f"{labels.who}: {_describe(labels, inputs, i)} is {inputs[i].data[index]} at index "
                f"{index}; "
                f"the check point must be finite")


def _require_finite_outputs(values, shapes, labels, where="at the check point"):
    k = _first_nonfinite(values)
    if k is not None:
        o, index = _output_at(shapes, k)
        raise GradcheckError(f"{labels.who}: {labels.output(o)} is {values[k]} at index {index} "
                             f"{where}")


def _analytic_rows(fn, inputs, diff_idx, seeds):
    """d(seed . outputs)/d(input) for each seed vector; a None gradient counts as zeros."""
    outs = _outputs(fn, inputs)
    live = [o for o in outs if o.requires_grad]
    diff_inputs = [inputs[i] for i in diff_idx]
    rows = []
    for seed in seeds:
        parts, start = [], 0
        gos, roots = [], []
        for o in outs:
            piece = seed[start:start + o.data.size].reshape(o.shape)
            start += o.data.size
            if o.requires_grad:
                roots.append(o)
                gos.append(piece.astype(o.dtype))
        if not live:
            grads = [None] * len(diff_inputs)
        else:
            grads = _grad(roots, diff_inputs, grad_outputs=gos, retain_graph=True,
                          allow_unused=True)
        for x, g in zip(diff_inputs, grads):
            parts.append(np.zeros(x.data.size) if g is None else g.data.ravel())
        rows.append(parts)
    return rows


def _graph_hint(fn, inputs, i, o, labels):
    """Why a mismatch may be: output o of fn (None: every output) does not reach input i
    through the graph, although its value changes with it. "" when it does reach it."""
    outs = _outputs(fn, inputs)
    roots = [d for d in (outs if o is None else [outs[o]]) if d.requires_grad]
    if roots and _grad(roots, [inputs[i]], grad_outputs=[np.ones(d.shape) for d in roots],
                       allow_unused=True)[0] is not None:
        return ""
    subject, verb = ("the outputs", "do not") if o is None else (labels.output(o), "does not")
    return (f"; {subject} {verb} depend on {labels.input(i)} through the graph, only "
            f"numerically: {labels.graph_hint}")


def _raise_or_kink(labels, where, analytic, numeric, left, right, abs_err, rel_err, atol, rtol,
                   hint=""):
    kink = abs(left - right) > 10 * (atol + rtol * max(abs(left), abs(right)))
    if kink:
        raise NondifferentiableError(
            f"{labels.who}: the function is not differentiable at {where}: left derivative "
            f"{left:.6g}, right derivative {right:.6g} (a kink, e.g. relu/abs at 0); "
            f"evaluate away from it")
    raise GradcheckError(
        f"{labels.who} failed for {where}: analytic {analytic:.10g}, numeric {numeric:.10g}; "
        f"max abs error {abs_err:.3g}, max rel error {rel_err:.3g} "
        f"(tolerance atol={atol:g}, rtol={rtol:g}){hint}")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, max_full=10000,
              seed=0):
    """Compare analytic and central-difference gradients of `fn(*inputs)` (float64 inputs).

    Returns True when they agree; otherwise raises GradcheckError naming the input, the worst
    index, both values, the max absolute and relative error and the tolerance, or saying which
    input, output or derivative (analytic or numeric) is NaN or inf (or returns False when
    raise_exception=False). Inputs with more than `max_full` elements are checked along a
    random direction instead of element by element. The module docstring lists exactly what is
    and is not checked.
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_idx = _check_inputs(inputs, "gradcheck")
    try:
        _check(fn, inputs, diff_idx, _first_order_labels(inputs), eps, atol, rtol, max_full,
               seed)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _check(fn, inputs, diff_idx, labels, eps, atol, rtol, max_full, seed):
    """gradcheck's body: raises GradcheckError (or NondifferentiableError) on the first failure."""
    _require_finite_inputs(inputs, diff_idx, labels)
    outs = _outputs(fn, inputs)
    shapes = [o.shape for o in outs]
    f0 = _flat(outs)
    _require_finite_outputs(f0, shapes, labels)
    m = f0.size
    rng = np.random.default_rng(seed)
    full = [inputs[i].data.size <= max_full for i in diff_idx]
    if any(full) and m:
        rows = _analytic_rows(fn, inputs, diff_idx, np.eye(m))
    for pos, i in enumerate(diff_idx):
        x = inputs[i]
        if not full[pos]:
            _check_direction(fn, inputs, diff_idx, pos, i, rng, eps, atol, rtol, f0, shapes,
                             labels)
            continue
        n = x.data.size
        analytic = np.stack([r[pos] for r in rows]) if m else np.zeros((0, n))
        _require_finite_jacobian(analytic, "analytic", shapes, inputs, i, labels)
        plus, minus = np.empty((m, n)), np.empty((m, n))
        for j in range(n):
            idx = np.unravel_index(j, x.shape)
            orig = x.data[idx]
            x.data[idx] = orig + eps
            plus[:, j] = _flat_values(fn, inputs)
            x.data[idx] = orig - eps
            minus[:, j] = _flat_values(fn, inputs)
            x.data[idx] = orig
        with np.errstate(over="ignore", invalid="ignore"):
            numeric = (plus - minus) / (2 * eps)
        _require_finite_jacobian(numeric, "numeric", shapes, inputs, i, labels, plus, minus,
                                 eps)
        err = np.abs(analytic - numeric)
        bad = err > atol + rtol * np.abs(numeric)
        if bad.any():
            score = err / (atol + rtol * np.abs(numeric))
            k, j = np.unravel_index(np.argmax(score), score.shape)
            rel = err / np.maximum(np.abs(numeric), 1e-12)
            left = (f0[k] - minus[k, j]) / eps
            right = (plus[k, j] - f0[k]) / eps
            o, out_index = _output_at(shapes, k)
            where = (f"{_describe(labels, inputs, i)} at index {_index(x.shape, j)}, "
                     f"{labels.output(o)} at index {out_index}")
            _raise_or_kink(labels, where, analytic[k, j], numeric[k, j], left, right, err.max(),
                           rel[bad].max(), atol, rtol, _graph_hint(fn, inputs, i, o, labels))


def _require_finite_jacobian(jac, kind, shapes, inputs, i, labels, plus=None, minus=None,
                             eps=None):
    """Jacobian block (outputs x elements of input i) of the given kind has no NaN or inf."""
    k = _first_nonfinite(jac)
    if k is None:
        return
    k, j = np.unravel_index(k, jac.shape)
    o, out_index = _output_at(shapes, k)
    msg = (f"{labels.who}: the {kind} derivative of {labels.output(o)} at index {out_index} "
           f"with respect to {_describe(labels, inputs, i)} at index "
           f"{_index(inputs[i].shape, j)} is "
           f"{jac[k, j]}")
    if kind == "numeric":
        msg += (f": the output is {plus[k, j]} at x + eps and {minus[k, j]} at x - eps "
                f"(eps={eps:g}); {_NOT_FINITE_NEARBY}")
    raise GradcheckError(msg)


_NOT_FINITE_NEARBY = ("the function is not finite within eps of the check point (a pole, or the "
                      "edge of a domain such as sqrt's or log's): move the point or reduce eps")


def _name(x):
    return x.name or f"shape {x.shape}"


def _describe(labels, inputs, i):
    return f"{labels.input(i)} ({_name(inputs[i])})"


def _check_direction(fn, inputs, diff_idx, pos, i, rng, eps, atol, rtol, f0, shapes, labels):
    """Large input: compare v^T J u with v . (f(x + eps u) - f(x - eps u)) / (2 eps)."""
    x = inputs[i]
    u = rng.standard_normal(x.shape)
    u /= np.linalg.norm(u) or 1.0
    v = rng.standard_normal(f0.size)
    row = _analytic_rows(fn, inputs, diff_idx, [v])[0][pos]
    j = _first_nonfinite(row)
    if j is not None:
        raise GradcheckError(
            f"{labels.who}: the analytic derivative of the outputs (weighted by a random vector) "
            f"with respect to {_describe(labels, inputs, i)} at index {_index(x.shape, j)} is "
            f"{row[j]}")
    analytic = float(row @ u.ravel())
    orig = x.data.copy()
    x.data[...] = orig + eps * u
    fp = _flat_values(fn, inputs)
    x.data[...] = orig - eps * u
    fm = _flat_values(fn, inputs)
    x.data[...] = orig
    with np.errstate(over="ignore", invalid="ignore"):
        numeric = float(v @ (fp - fm)) / (2 * eps)
    if not np.isfinite(numeric):
        where = f"{labels.who}: the numeric derivative along a random direction of " \
                f"{_describe(labels, inputs, i)} is {numeric}"
        for values, side in ((fp, "x + eps u"), (fm, "x - eps u")):
            k = _first_nonfinite(values)
            if k is not None:
                o, index = _output_at(shapes, k)
                raise GradcheckError(f"{where}: {labels.output(o)} is {values[k]} at index "
                                     f"{index} at {side} (eps={eps:g}); {_NOT_FINITE_NEARBY}")
        raise GradcheckError(f"{where}: the difference of the outputs at x +- eps u overflows "
                             f"(eps={eps:g})")
    err = abs(analytic - numeric)
    if err > atol + rtol * abs(numeric):
        left = float(v @ (f0 - fm)) / eps
        right = float(v @ (fp - f0)) / eps
        _raise_or_kink(labels, f"{_describe(labels, inputs, i)} (random direction)", analytic,
                       numeric, left, right, err, err / max(abs(numeric), 1e-12), atol, rtol,
                       _graph_hint(fn, inputs, i, None, labels))


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, max_full=10000, seed=0):
    """Check second derivatives: gradcheck of (inputs, v) -> d(v . fn(inputs))/d(inputs).

    The vjp is built with create_graph=True, so this verifies that every gradient is itself
    correctly differentiable (Hessian-vector products, gradient penalties). fn's inputs and
    outputs must be finite; failures of the second-order check say "second order check" and
    name the first derivative (the gradient of input i) and, for its inputs, the original
    inputs and the grad_outputs v.
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_idx = _check_inputs(inputs, "gradgradcheck")
    labels = _Labels("gradgradcheck", lambda i: f"input {i}", lambda o: f"output {o}", None)
    n_in = len(inputs)
    try:
        _require_finite_inputs(inputs, diff_idx, labels)
        rng = np.random.default_rng(seed)
        with no_grad():
            outs = _outputs(fn, inputs)
        _require_finite_outputs(_flat(outs), [o.shape for o in outs], labels)
        if grad_outputs is None:
            grad_outputs = [Tensor(rng.standard_normal(o.shape), requires_grad=True)
                            for o in outs]
        grad_outputs = list(grad_outputs)

        def first_derivative(*args):
            xs, vs = args[:n_in], args[n_in:]
            outs = _outputs(fn, xs)
            roots = [o for o in outs if o.requires_grad]
            gos = [v for o, v in zip(outs, vs) if o.requires_grad]
            diff = [xs[i] for i in diff_idx]
            if not roots:
                return tuple(Tensor(np.zeros(x.shape)) for x in diff)
            gs = _grad(roots, diff, grad_outputs=gos, create_graph=True, allow_unused=True)
            return tuple(Tensor(np.zeros(x.shape)) if g is None else g for x, g in zip(diff, gs))

        args = tuple(inputs) + tuple(grad_outputs)
        second = _Labels(
            "gradgradcheck (second order check)",
            lambda i: labels.input(i) if i < n_in else f"grad_output {i - n_in}",
            lambda o: f"the first derivative (gradient of input {diff_idx[o]})",
            "did a custom Function's backward compute with numpy on .data (or detach()) "
            "instead of Tensor ops?")
        _check(first_derivative, args, _check_inputs(args, "gradgradcheck"), second, eps, atol,
               rtol, max_full, seed)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradient_errors(fn, inputs, names=None, eps=1e-6, floor=1e-6, stencil=2,
                    numeric_dtype=None):
    """Per-input error table of a scalar function's gradient, as the course reports show it.

    For each input that requires grad: the maximum over its elements of the relative error
    |ga - gn| / max(floor, |ga| + |gn|) and of the absolute error |ga - gn|, plus the largest
    analytic gradient magnitude. `stencil` is the centred difference used for gn: 2 points,
    (f(x+h) - f(x-h)) / 2h, or 4 points, (f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / 12h,
    whose O(h^4) truncation error allows a larger h and so less round-off: it resolves
    elements whose true gradient is itself tiny. `numeric_dtype=np.longdouble` evaluates the
    finite differences with the inputs in extended precision (numpy promotes the rest of the
    computation), so their round-off (~1e-19 / h) no longer masks the float64 analytic
    gradient's own accuracy. Returns a list of dicts (one row per input).
    """
    if stencil not in (2, 4):
        raise ValueError(f"gradient_errors: stencil must be 2 or 4, got {stencil}")
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_idx = _check_inputs(inputs, "gradient_errors")
    out = fn(*inputs)
    if out.data.size != 1:
        raise ValueError(f"gradient_errors: fn must return a scalar, got shape {out.shape}")
    analytic = _grad(out, [inputs[i] for i in diff_idx], allow_unused=True)
    offsets, weights = ((1, -1), (0.5, -0.5)) if stencil == 2 else \
        ((-2, -1, 1, 2), (1 / 12, -8 / 12, 8 / 12, -1 / 12))
    originals = [inputs[i].data for i in diff_idx]
    if numeric_dtype is not None:
        for i in diff_idx:
            inputs[i].data = inputs[i].data.astype(numeric_dtype)
    try:
        numeric = [_numeric_gradient(fn, inputs, inputs[i], offsets, weights, eps)
                   for i in diff_idx]
    finally:
        for i, orig in zip(diff_idx, originals):
            inputs[i].data = orig
    rows = []
    for pos, i in enumerate(diff_idx):
        x = inputs[i]
        ga = np.zeros(x.shape) if analytic[pos] is None else analytic[pos].data
        gn = numeric[pos].astype(np.float64)
        abs_err = np.abs(ga - gn)
        rel_err = abs_err / np.maximum(floor, np.abs(ga) + np.abs(gn))
        name = names[pos] if names is not None else _name(x)
        rows.append({"name": name, "shape": tuple(x.shape), "max_rel_error": float(rel_err.max()),
                     "max_abs_error": float(abs_err.max()),
                     "max_abs_grad": float(np.abs(ga).max())})
    return rows
