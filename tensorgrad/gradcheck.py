"""Finite-difference gradient checking: `gradcheck`, `gradgradcheck`, `gradient_errors`.

Central differences in float64 against the analytic gradient. Inputs of up to `max_full`
elements get the whole Jacobian compared, element by element; larger ones a random-direction
check (v^T J u against the difference along u). A mismatch where the left and right one-sided
differences disagree is a kink (the function is not differentiable there): that raises
NondifferentiableError instead of a false gradient failure.
"""
import numpy as np

from .tensor import Tensor, no_grad
from .tensor import grad as _grad

__all__ = ["gradcheck", "gradgradcheck", "gradient_errors", "GradcheckError",
           "NondifferentiableError"]


class GradcheckError(AssertionError):
    """The analytic gradient disagrees with the numerical one."""


class NondifferentiableError(ValueError):
    """The check point is at a kink (left and right derivatives differ): move it and retry."""


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


def _flat_values(fn, inputs):
    # not under no_grad: fn may itself take gradients (gradgradcheck's first derivative)
    return np.concatenate([o.data.astype(np.float64).ravel() for o in _outputs(fn, inputs)])


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


def _raise_or_kink(name, i, index, analytic, numeric, left, right, abs_err, rel_err, atol, rtol,
                   extra=""):
    kink = abs(left - right) > 10 * (atol + rtol * max(abs(left), abs(right)))
    where = f"input {i} ({name}) at index {index}"
    if kink:
        raise NondifferentiableError(
            f"gradcheck: the function is not differentiable at {where}: left derivative "
            f"{left:.6g}, right derivative {right:.6g} (a kink, e.g. relu/abs at 0); "
            f"evaluate away from it")
    raise GradcheckError(
        f"gradcheck failed for {where}{extra}: analytic {analytic:.10g}, numeric {numeric:.10g}; "
        f"max abs error {abs_err:.3g}, max rel error {rel_err:.3g} "
        f"(tolerance atol={atol:g}, rtol={rtol:g})")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, max_full=10000,
              seed=0):
    """Compare analytic and central-difference gradients of `fn(*inputs)` (float64 inputs).

    Returns True when they agree; otherwise raises GradcheckError naming the input, the worst
    index, both values, the max absolute and relative error and the tolerance (or returns False
    when raise_exception=False). Inputs with more than `max_full` elements are checked along a
    random direction instead of element by element.
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_idx = _check_inputs(inputs, "gradcheck")
    try:
        f0 = _flat_values(fn, inputs)
        m = f0.size
        rng = np.random.default_rng(seed)
        full = [inputs[i].data.size <= max_full for i in diff_idx]
        if any(full) and m:
            rows = _analytic_rows(fn, inputs, diff_idx, np.eye(m))
        for pos, i in enumerate(diff_idx):
            x = inputs[i]
            if not full[pos]:
                _check_direction(fn, inputs, diff_idx, pos, i, rng, eps, atol, rtol, f0)
                continue
            n = x.data.size
            analytic = np.stack([r[pos] for r in rows]) if m else np.zeros((0, n))
            plus, minus = np.empty((m, n)), np.empty((m, n))
            for j in range(n):
                idx = np.unravel_index(j, x.shape)
                orig = x.data[idx]
                x.data[idx] = orig + eps
                plus[:, j] = _flat_values(fn, inputs)
                x.data[idx] = orig - eps
                minus[:, j] = _flat_values(fn, inputs)
                x.data[idx] = orig
            numeric = (plus - minus) / (2 * eps)
            err = np.abs(analytic - numeric)
            bad = err > atol + rtol * np.abs(numeric)
            if bad.any():
                score = err / (atol + rtol * np.abs(numeric))
                k, j = np.unravel_index(np.argmax(score), score.shape)
                rel = err / np.maximum(np.abs(numeric), 1e-12)
                left = (f0[k] - minus[k, j]) / eps
                right = (plus[k, j] - f0[k]) / eps
                index = np.unravel_index(j, x.shape) if x.ndim else ()
                _raise_or_kink(_name(x), i, tuple(int(v) for v in index), analytic[k, j],
                               numeric[k, j], left, right, err.max(), rel[bad].max(), atol,
                               rtol, extra=f", output element {k}")
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _name(x):
    return x.name or f"shape {x.shape}"


def _check_direction(fn, inputs, diff_idx, pos, i, rng, eps, atol, rtol, f0):
    """Large input: compare v^T J u with v . (f(x + eps u) - f(x - eps u)) / (2 eps)."""
    x = inputs[i]
    u = rng.standard_normal(x.shape)
    u /= np.linalg.norm(u) or 1.0
    v = rng.standard_normal(f0.size)
    analytic = float(_analytic_rows(fn, inputs, diff_idx, [v])[0][pos] @ u.ravel())
    orig = x.data.copy()
    x.data[...] = orig + eps * u
    fp = _flat_values(fn, inputs)
    x.data[...] = orig - eps * u
    fm = _flat_values(fn, inputs)
    x.data[...] = orig
    numeric = float(v @ (fp - fm)) / (2 * eps)
    err = abs(analytic - numeric)
    if err > atol + rtol * abs(numeric):
        left = float(v @ (f0 - fm)) / eps
        right = float(v @ (fp - f0)) / eps
        _raise_or_kink(_name(x), i, "(random direction)", analytic, numeric, left, right, err,
                       err / max(abs(numeric), 1e-12), atol, rtol)


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, max_full=10000, seed=0):
    """Check second derivatives: gradcheck of (inputs, v) -> d(v . fn(inputs))/d(inputs).

    The vjp is built with create_graph=True, so this verifies that every gradient is itself
    correctly differentiable (Hessian-vector products, gradient penalties).
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff_idx = _check_inputs(inputs, "gradgradcheck")
    rng = np.random.default_rng(seed)
    with no_grad():
        outs = _outputs(fn, inputs)
    if grad_outputs is None:
        grad_outputs = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outs]
    grad_outputs = list(grad_outputs)
    n_in = len(inputs)

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

    return gradcheck(first_derivative, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception, max_full=max_full, seed=seed)


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
