"""Stateless layer functions with PyTorch's names (`import tensorgrad.nn.functional as F`).

Everything here is a composition of tensorgrad ops (no hand-written backward), kept to as few
ops as possible because each op costs Python overhead on small batches.
"""
import numpy as np

from ..autograd import Tensor, as_tensor
from ..autograd.tracing import random_draw, static_read, value_read
from ..compile.fuse import fuse
from ..creation import as_generator
from ..ops import elu, leaky_relu, linear, log_softmax, relu, sigmoid, softmax, square, tanh, vdot
from ..ops import mean as _mean

__all__ = ["linear", "relu", "leaky_relu", "elu", "tanh", "sigmoid", "softmax", "log_softmax",
           "cross_entropy", "nll_loss", "batch_norm", "dropout"]

_REDUCTIONS = ("mean", "sum", "none")


def _data(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


@static_read
def _meta(x):
    """The array of `x` for its shape and dtype only (so a traced tensor allows the read)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _check_logits(x, who, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{who}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    shape = _meta(x).shape
    if len(shape) != 2:
        raise ValueError(f"{who}: expected input of shape (N, C), got shape {shape}")
    return shape


@value_read("integer class labels as a traced tensor",
            "cross_entropy and nll_loss read them to build one-hot weights, which would stay "
            "the first call's: pass one-hot (or soft) float targets of shape (N, C) instead")
def _labels(target, shape, who):
    """Integer class labels as an int array of shape (N,), range-checked."""
    y = target.data if isinstance(target, Tensor) else np.asarray(target)
    n, c = shape
    if y.shape != (n,):
        raise ValueError(f"{who}: integer targets must have shape ({n},) for input of shape "
                         f"{shape}, got {y.shape}")
    if n and (np.minimum.reduce(y) < 0 or np.maximum.reduce(y) >= c):  # ufuncs: no wrapper
        bad = y[(y < 0) | (y >= c)][0]
        raise IndexError(f"{who}: target label {bad} is out of range for {c} classes")
    return y


def _weighted_sum(logp, weights, reduction):
    """-sum_c weights[i, c] * logp[i, c] per row, then reduced. `weights` is a numpy array we own
    (scaled in place) or a Tensor; a product with it is cheaper than indexing (no scatter-add
    in the backward) and serves labels, one-hot and soft targets alike."""
    n = logp.shape[0]
    scale = -1.0 / n if reduction == "mean" else -1.0
    if isinstance(weights, Tensor):
        weights = weights * scale
    else:
        weights *= scale
    if reduction == "none":
        return (logp * weights).sum(axis=1)
    return vdot(logp, weights)  # one BLAS dot: no product temporary, one graph node


_TARGET_ROWS = {}  # (C, dtype, smoothing) -> read-only C x C table of target rows


def _one_hot(y, n, c, dtype, smoothing=0.0):
    """(1 - smoothing) * one_hot(y) + smoothing / C, as a fresh array of `dtype` (a numpy
    dtype): rows of a cached C x C table, picked by one take (which copies)."""
    key = (c, dtype, smoothing)
    table = _TARGET_ROWS.get(key)
    if table is None:
        table = np.full((c, c), smoothing / c, dtype=dtype)
        table[np.diag_indices(c)] += 1.0 - smoothing
        table.flags.writeable = False
        _TARGET_ROWS[key] = table
    return table.take(y, axis=0)  # a fresh array, as table[y] but faster


def nll_loss(input, target, *, reduction="mean"):
    """Negative log-likelihood of integer labels given log-probabilities of shape (N, C)."""
    n, c = _check_logits(input, "nll_loss", reduction)
    dtype = _meta(target).dtype
    if dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class labels, got dtype {dtype}")
    y = _labels(target, (n, c), "nll_loss")
    return _weighted_sum(input, _one_hot(y, n, c, _meta(input).dtype), reduction)


def cross_entropy(input, target, *, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits (N, C), as torch.nn.functional.cross_entropy.

    `target` is either integer class labels (N,) or class probabilities (N, C) (one-hot or soft,
    float). log_softmax makes it stable for huge logits; its gradient is (softmax - target) / N
    for reduction='mean'. With label_smoothing=e the target becomes (1 - e) * target + e / C.
    Computed as log_softmax, a product with the (scaled) target and a sum: three ops.
    """
    n, c = _check_logits(input, "cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    # a constant target as its array (a traced one stays a tensor: an input of the trace)
    t = target.data if target.__class__ is Tensor and not target.requires_grad else target
    t_data = _meta(t)  # for its shape and dtype
    dtype = _meta(input).dtype
    if t_data.dtype.kind in "iu":
        y = _labels(t, (n, c), "cross_entropy")
        weights = _one_hot(y, n, c, dtype, label_smoothing)
    elif t_data.shape == (n, c):
        if isinstance(t, Tensor):
            weights = t * (1.0 - label_smoothing) + label_smoothing / c if label_smoothing else t
        else:
            weights = np.array(t, dtype=dtype)  # a copy: scaled in place below
            if label_smoothing:
                weights *= 1.0 - label_smoothing
                weights += label_smoothing / c
    else:
        raise ValueError(f"cross_entropy: target must be integer labels of shape ({n},) or "
                         f"float class probabilities of shape ({n}, {c}); got shape "
                         f"{t_data.shape} dtype {t_data.dtype}")
    return _weighted_sum(log_softmax(input, axis=1), weights, reduction)


@value_read("batch_norm(training=True) updating running statistics inside the trace",
            "they would be updated once, with the first call's batch statistics: use "
            "F.batch_norm_batch_stats and update them outside, or pass running_mean and "
            "running_var as None")
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over the batch axis of (N, C) (or N and L of (N, C, L)) input.

    training=True: normalise with the batch mean and biased (population) variance; if running
    statistics are given (arrays or Tensors), update them in place with
    r = (1 - momentum) * r + momentum * s, using the UNBIASED batch variance, as PyTorch does.
    training=False: normalise with running_mean / running_var.
    The output is (x - mean) * (weight / sqrt(var + eps)) + bias.
    """
    x = _batch_input(input)
    c = x.shape[1]
    shape = (c,)
    for v in (running_mean, running_var, weight, bias):
        if v is not None and getattr(v, "shape", None) != shape:
            _check_feature_shape(x.shape, running_mean, running_var, weight, bias)
    wide = x.ndim == 3  # per-channel vectors must broadcast as (C, 1)
    if training:
        out, mean, var = batch_norm_batch_stats(input, weight, bias, eps=eps)
        if running_mean is not None:
            update_running(_data(running_mean), mean.data, momentum)
        if running_var is not None:
            update_running(_data(running_var), var.data, momentum)
        return out
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: training=False needs running_mean and running_var")
    # arrays: the statistics take no part in a graph here (traces use batch_norm_running_stats)
    return _normalize_running(input, _data(running_mean), _data(running_var), weight, bias,
                              wide=wide, eps=eps)


def _batch_input(input):
    """The array of batch norm's input (for its shape), checked to be (N, C) or (N, C, L)."""
    x = _meta(input)
    if x.ndim not in (2, 3):
        raise ValueError(f"batch_norm: expected input of shape (N, C) or (N, C, L), got "
                         f"{x.shape}")
    return x


def update_running(running, batch, momentum):
    """The running-statistics update, running = (1 - momentum) * running + momentum * batch, in
    place on the array `running` (one statistic, or several stacked in one flat array); `batch`
    is an array of the same size, taken in running's dtype. The only place running statistics
    are computed: BatchNorm1d's update, its batched form and `batch_norm` call it."""
    batch = batch.reshape(running.shape).astype(running.dtype, copy=False)
    running *= 1.0 - momentum
    running += batch * momentum


def batch_norm_batch_stats(input, weight=None, bias=None, *, eps=1e-5):
    """Training-mode batch norm as a pure composition: (output, batch mean, UNBIASED batch
    variance), the statistics for the running averages (BatchNorm1d's function in training;
    `batch_norm` is the same with the update). One fused node when weight and bias are both
    given or both None."""
    x = _batch_input(input)
    c = x.shape[1]
    if any(v is not None and getattr(v, "shape", None) != (c,) for v in (weight, bias)):
        _check_feature_shape(x.shape, None, None, weight, bias)
    count = x.size // c
    if count < 2:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                         f"training, got input of shape {x.shape}")
    kw = {"axes": 0 if x.ndim == 2 else (0, 2), "wide": x.ndim == 3, "eps": eps}
    if (weight is None) != (bias is None):  # one without the other: the plain composition
        return _normalize(input, weight, bias, **kw)
    args = (input,) if weight is None else (input, weight, bias)
    if not all(isinstance(a, Tensor) for a in args):
        args = tuple(map(as_tensor, args))
    return _normalize_fused(*args, **kw)


def batch_norm_running_stats(input, running_mean, running_var, weight=None, bias=None, *,
                             eps=1e-5):
    """Eval-mode batch norm: normalise with the running statistics (Tensors: a pure
    composition whose trace reads their current values)."""
    x = _batch_input(input)
    _check_feature_shape(x.shape, running_mean, running_var, weight, bias)
    return _normalize_running(input, running_mean, running_var, weight, bias,
                              wide=x.ndim == 3, eps=eps)


def _normalize_running(x, running_mean, running_var, weight, bias, *, wide, eps):
    """(x - running_mean) * (weight / sqrt(running_var + eps)) + bias. With Tensor statistics
    these are Tensor ops, so a trace reads the buffers' current values on every replay."""
    if wide:  # per-channel vectors broadcast as (C, 1)
        running_mean, running_var = running_mean.reshape(-1, 1), running_var.reshape(-1, 1)
    inv = (running_var + eps) ** -0.5
    if weight is not None:
        inv = (weight.reshape(-1, 1) if wide else weight) * inv
    out = (x - running_mean) * inv
    return out if bias is None else out + (bias.reshape(-1, 1) if wide else bias)


def _check_feature_shape(shape, running_mean, running_var, weight, bias):
    c = shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if v is not None and np.shape(v) != (c,):
            raise ValueError(f"batch_norm: input of shape {shape} has {c} features, but "
                             f"{name} has shape {np.shape(v)} (expected ({c},))")


def _normalize(x, weight=None, bias=None, *, axes, wide, eps):
    """(x - mean) * (weight / sqrt(var + eps)) + bias with the batch mean and biased variance
    over `axes`; returns the output, the mean and the UNBIASED variance (n / (n - 1) times the
    biased one: the running statistics' input). The variance is the mean of the squared centred
    input, which the output needs anyway (fewer passes than `var(x)`)."""
    mu = _mean(x, axis=axes, keepdims=wide)
    xc = x - mu
    var = _mean(square(xc), axis=axes, keepdims=wide)
    inv = (var + eps) ** -0.5
    if weight is not None:
        inv = (weight.reshape(-1, 1) if wide else weight) * inv
    out = xc * inv
    if bias is not None:
        out = out + (bias.reshape(-1, 1) if wide else bias)
    shape = x.shape
    count = shape[0] * (shape[2] if wide else 1)
    return out, mu, var * (count / (count - 1))


# the same primitives as one graph node (see tensorgrad/compile/fuse.py): its gradient is still
# derived from theirs, only without a Tensor and a node per primitive on every batch; inside a
# trace (a fused layer chain) its primitives are recorded there
_normalize_fused = fuse(_normalize)


def dropout(input, p=0.5, training=True, generator=None):
    """Zero each element with probability p and scale the kept ones by 1 / (1 - p) (inverted
    dropout, as PyTorch); identity when not training. `generator`: numpy Generator or seed
    (None draws from a fresh, unseeded one)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p (the probability of dropping) must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    x = _meta(input)
    return input * dropout_mask(x.shape, p, x.dtype, as_generator(generator))


def dropout_mask(shape, p, dtype, rng):
    """Array of 0 (probability p) and 1 / (1 - p), of `dtype`, drawn from the Generator `rng`."""
    random_draw("dropout")
    dtype = np.dtype(dtype)
    if p >= 1.0:
        return np.zeros(shape, dtype=dtype)
    draw = rng.random(shape, dtype=dtype if dtype in (np.float32, np.float64) else np.float64)
    keep = draw >= p
    return np.multiply(keep, dtype.type(1.0 / (1.0 - p)), dtype=dtype)
