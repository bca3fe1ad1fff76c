"""Whole-network gradient check of the course's MLP (study S1): one row per parameter.

    rows = mlp_gradient_table([20, 15, 10], batch_norm=True)
    print(format_gradient_table(rows))
"""
import numpy as np

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F

from .mlp import MLP

__all__ = ["mlp_gradient_table", "format_gradient_table", "REL_TOL", "ABS_TOL_VANISHING",
           "KINK_MARGIN"]

REL_TOL = 1e-6             # target for every parameter: max relative error below this
ABS_TOL_VANISHING = 1e-8   # ... or, where the true gradient is zero, max absolute error below this
KINK_MARGIN = 1e-3  # samples are redrawn until every activation input is this far from 0


def mlp_gradient_table(layers_dims, batch_norm, n=10, lam=0.01, seed=0, eps=1e-5, stencil=4,
                       numeric_dtype=np.longdouble, **mlp_kwargs):
    """Compare analytic and centred-difference gradients of cost = cross_entropy + lam * L2 for a
    float64 MLP(layers_dims, batch_norm) in training mode on n random samples (all from `seed`).

    Two limits of central differences shape the settings. A step that moves a ReLU input across 0
    gives a wrong numerical gradient, so the n samples are redrawn (deterministically) until every
    activation input is at least KINK_MARGIN from 0. Round-off in a float64 cost (~1e-16
    relative) gives a 2-point difference an absolute error of about 1e-16 / h, so an element
    whose gradient is itself tiny (~1e-5) would show a relative error near 1e-6 however correct
    the analytic gradient is. So by default the numerical side is the 4-point centred difference
    (O(h^4), h = 1e-5) evaluated in extended precision (numeric_dtype=np.longdouble): its error
    (~1e-13) is far below the float64 analytic gradient's, which is what the table then
    measures. stencil=2, eps=1e-5, numeric_dtype=None is the course's own float64 check.

    Returns one dict per parameter (in model order): name (course name: W1, b1, gamma1, beta1,
    ...), param (dotted name), shape, max_rel_error, max_abs_error, max_abs_grad, vanishing
    (True for a bias feeding a batch norm, whose true gradient is 0) and ok (max_rel_error <
    REL_TOL, or max_abs_error < ABS_TOL_VANISHING for a vanishing gradient).
    """
    if mlp_kwargs.get("dropout", 0.0):
        raise ValueError("mlp_gradient_table: dropout makes the cost random; check without it")
    model = MLP(layers_dims, batch_norm=batch_norm, seed=seed, **mlp_kwargs).double().train()
    rng = np.random.default_rng(seed)
    y = rng.integers(0, layers_dims[-1], size=n)
    x = _away_from_kinks(model, rng, (n, layers_dims[0]))
    named = list(model.named_parameters())
    params = [p for _, p in named]

    def cost(*_):
        return F.cross_entropy(model(x), y) + lam * nn.l2_penalty(model)

    course = model.course_names()
    rows = tg.gradient_errors(cost, params, names=[course[name] for name, _ in named], eps=eps,
                              stencil=stencil, numeric_dtype=numeric_dtype)
    layers = list(model)
    for row, (name, _) in zip(rows, named):
        index, kind = name.split(".")
        i = int(index)
        feeds_bn = (kind == "bias" and isinstance(layers[i], nn.Linear) and i + 1 < len(layers)
                    and isinstance(layers[i + 1], nn.BatchNorm1d))
        row["param"] = name
        row["vanishing"] = feeds_bn
        row["ok"] = (row["max_abs_error"] < ABS_TOL_VANISHING if feeds_bn
                     else row["max_rel_error"] < REL_TOL)
    return rows


def _away_from_kinks(model, rng, shape, tries=100):
    """Standard normal samples whose activation inputs all lie at least KINK_MARGIN from 0."""
    for _ in range(tries):
        x = rng.standard_normal(shape)
        h, margin = x, np.inf
        with tg.no_grad():
            for m in model:
                if isinstance(m, _ACTIVATION_TYPES):
                    margin = min(margin, float(np.abs(h.data).min()))
                h = m(h)
        if margin >= KINK_MARGIN:
            return x
    raise RuntimeError(f"mlp_gradient_table: no sample batch of shape {shape} kept every "
                       f"activation input {KINK_MARGIN} away from 0 in {tries} draws (is a "
                       f"whole layer dead, feeding exact zeros on? try another seed)")


_ACTIVATION_TYPES = (nn.ReLU, nn.LeakyReLU, nn.ELU)


def format_gradient_table(rows):
    """The rows as a Markdown table (parameter, shape, max relative / absolute error, status)."""
    out = ["| parameter | shape | max rel. error | max abs. error | max abs. grad | ok |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        note = " (vanishing: abs. error checked)" if r["vanishing"] else ""
        out.append(f"| {r['name']} | {'x'.join(map(str, r['shape']))} | {r['max_rel_error']:.2e} "
                   f"| {r['max_abs_error']:.2e} | {r['max_abs_grad']:.2e} | "
                   f"{'yes' if r['ok'] else 'NO'}{note} |")
    return "\n".join(out)
