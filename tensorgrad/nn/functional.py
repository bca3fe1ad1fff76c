"""Stateless layer functions with PyTorch's names (`import tensorgrad.nn.functional as F`).

Everything here is a composition of tensorgrad ops (no hand-written backward), kept to as few
ops as possible because each op costs Python overhead on small batches.
"""
import importlib
import math
import warnings

import numpy as np

from ..autograd import Tensor, as_tensor
from ..autograd.tracing import random_draw, static_read, value_read
from ..compile.fuse import fuse
from ..creation import as_generator
from ..ops import (
    abs,
    clip,
    elu,
    erf,
    leaky_relu,
    linear,
    log,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    softplus,
    square,
    tanh,
    vdot,
)
from ..ops import mean as _mean

__all__ = ["linear", "relu", "leaky_relu", "elu", "tanh", "sigmoid", "softmax", "log_softmax",
           "gelu", "silu", "softplus", "layer_norm", "one_hot",
           "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "batch_norm", "dropout"]

_REDUCTIONS = ("mean", "sum", "none")
_t = importlib.import_module("..autograd.tensor", __package__)  # (its `_tracer` hook)


def _data(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


@static_read
def _meta(x):
    """The array of `x` for its shape and dtype only (so a traced tensor allows the read)."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _check_reduction(reduction, who):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{who}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_logits(x, who, reduction):
    _check_reduction(reduction, who)
    shape = _meta(x).shape
    if len(shape) != 2:
        raise ValueError(f"{who}: expected input of shape (N, C), got shape {shape}")
    return shape


@value_read("integer class labels as a traced tensor",
            "cross_entropy and nll_loss read them to build one-hot weights, which would stay "
            "the first call's: pass one-hot (or soft) float targets of shape (N, C) instead")
def _labels(target, shape, who, ignore_index=-100):
    """Integer class labels as an int array of shape (N,), range-checked, and the boolean mask
    of the labels equal to `ignore_index` (None when there are none)."""
    y = target.data if isinstance(target, Tensor) else np.asarray(target)
    n, c = shape
    if y.shape != (n,):
        raise ValueError(f"{who}: integer targets must have shape ({n},) for input of shape "
                         f"{shape}, got {y.shape}")
    if n and (np.minimum.reduce(y) < 0 or np.maximum.reduce(y) >= c):  # ufuncs: no wrapper
        ignored = y == ignore_index
        bad = ((y < 0) | (y >= c)) & ~ignored
        if bad.any():
            raise IndexError(f"{who}: target label {y[bad][0]} is out of range for {c} classes "
                             f"(labels are 0..{c - 1}, or ignore_index={ignore_index} to skip "
                             f"a sample)")
        return y, ignored
    if 0 <= ignore_index < c:
        ignored = y == ignore_index
        return y, ignored if ignored.any() else None
    return y, None


def _class_weight(weight, c, who, dtype):
    """The per-class weight as an array of `dtype` and shape (C,), or None."""
    if weight is None:
        return None
    w = np.asarray(_data(weight))
    if w.shape != (c,):
        raise ValueError(f"{who}: weight must have one entry per class, shape ({c},), got "
                         f"shape {w.shape}")
    return w.astype(dtype, copy=False)


def _label_rows(y, ignored, shape, dtype, smoothing, weight):
    """The target rows of integer labels (one-hot, smoothed, times the class weight; zero for
    ignored labels) as a fresh array, and the divisor of reduction='mean': the number of kept
    samples, or the sum of their labels' weights (torch's weighted mean)."""
    n, c = shape
    if ignored is not None:
        y = np.where(ignored, 0, y)
    rows = _one_hot(y, n, c, dtype, smoothing)
    if weight is not None:
        rows *= weight
    if ignored is None:
        return rows, (n if weight is None else float(weight.take(y).sum(dtype=np.float64)))
    rows[ignored] = 0
    kept = ~ignored
    if weight is None:
        return rows, int(np.count_nonzero(kept))
    return rows, float(weight.take(y[kept]).sum(dtype=np.float64))


def _weighted_sum(logp, weights, reduction, count):
    """-sum_c weights[i, c] * logp[i, c] per row, then reduced (the mean divides by `count`).
    `weights` is a numpy array we own (scaled in place) or a Tensor; a product with it is
    cheaper than indexing (no scatter-add in the backward) and serves labels, one-hot and soft
    targets alike."""
    scale = -1.0 / count if reduction == "mean" and count else -1.0
    if isinstance(weights, Tensor):
        weights = weights * scale
    else:
        weights *= scale
    if reduction == "none":
        return (logp * weights).sum(axis=1)
    if reduction == "mean" and not count:  # every label ignored: nan with zero gradient, as torch
        return vdot(logp, weights) + math.nan
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


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of integer labels given log-probabilities of shape (N, C), as
    torch.nn.functional.nll_loss: -weight[y_i] * input[i, y_i] per sample, labels equal to
    `ignore_index` skipped, and reduction='mean' divides by the kept samples' total weight."""
    n, c = _check_logits(input, "nll_loss", reduction)
    dtype = _meta(target).dtype
    if dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class labels, got dtype {dtype}")
    dtype = _meta(input).dtype
    y, ignored = _labels(target, (n, c), "nll_loss", ignore_index)
    rows, count = _label_rows(y, ignored, (n, c), dtype, 0.0,
                              _class_weight(weight, c, "nll_loss", dtype))
    return _weighted_sum(input, rows, reduction, count)


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy of logits (N, C), as torch.nn.functional.cross_entropy.

    `target` is either integer class labels (N,) or class probabilities (N, C) (one-hot or soft,
    float). log_softmax makes it stable for huge logits; its gradient is (softmax - target) / N
    for reduction='mean'. With label_smoothing=e the target becomes (1 - e) * target + e / C.
    `weight` (C,) scales each class's term; with labels, reduction='mean' divides by the sum of
    the kept labels' weights (torch's weighted mean), with probabilities by N. Labels equal to
    `ignore_index` (-100 by default) are skipped (probability targets ignore it, as torch).
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
    w = None if weight is None else _class_weight(weight, c, "cross_entropy", dtype)
    if t_data.dtype.kind in "iu":
        y, ignored = _labels(t, (n, c), "cross_entropy", ignore_index)
        weights, count = _label_rows(y, ignored, (n, c), dtype, label_smoothing, w)
    elif t_data.shape == (n, c):
        count = n
        if isinstance(t, Tensor):
            weights = t * (1.0 - label_smoothing) + label_smoothing / c if label_smoothing else t
            if w is not None:
                weights = weights * w
        else:
            weights = np.array(t, dtype=dtype)  # a copy: scaled in place below
            if label_smoothing:
                weights *= 1.0 - label_smoothing
                weights += label_smoothing / c
            if w is not None:
                weights *= w
    else:
        raise ValueError(f"cross_entropy: target must be integer labels of shape ({n},) or "
                         f"float class probabilities of shape ({n}, {c}); got shape "
                         f"{t_data.shape} dtype {t_data.dtype}")
    return _weighted_sum(log_softmax(input, axis=1), weights, reduction, count)


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def _check_pair(input, target, who, reduction, same_shape=False):
    """The reduction and the shapes of an elementwise loss: a target of another shape is
    broadcast with a warning (mse_loss, l1_loss) or refused (the binary cross-entropies), as
    torch does."""
    _check_reduction(reduction, who)
    a, b = _meta(input).shape, _meta(target).shape
    if a != b:
        if same_shape:
            raise ValueError(f"{who}: target shape {b} must equal the input shape {a}")
        warnings.warn(f"{who}: target shape {b} differs from the input shape {a}; they are "
                      f"broadcast, which is likely a mistake", UserWarning, stacklevel=3)


def mse_loss(input, target, *, reduction="mean"):
    """Mean (or sum, or each) of the squared differences (input - target) ** 2."""
    _check_pair(input, target, "mse_loss", reduction)
    return _reduce(square(input - target), reduction)


def l1_loss(input, target, *, reduction="mean"):
    """Mean (or sum, or each) of the absolute differences |input - target| (gradient 0 where
    they are equal, as torch)."""
    _check_pair(input, target, "l1_loss", reduction)
    return _reduce(abs(input - target), reduction)


def _check_probabilities(input, who):
    x = _data(input)
    if x.size and not (np.minimum.reduce(x, axis=None) >= 0
                       and np.maximum.reduce(x, axis=None) <= 1):
        bad = x[~((x >= 0) & (x <= 1))].flat[0]
        raise ValueError(f"{who}: input values must be probabilities in [0, 1], got {bad}")


def binary_cross_entropy(input, target, weight=None, *, reduction="mean"):
    """-weight * (target * log(input) + (1 - target) * log(1 - input)) for probabilities
    `input`, each logarithm clamped at -100 as torch's (so 0 and 1 give a finite loss).
    Input values outside [0, 1] raise (checked eagerly, not inside a fused trace)."""
    _check_pair(input, target, "binary_cross_entropy", reduction, same_shape=True)
    if _t._tracer is None:
        _check_probabilities(input, "binary_cross_entropy")
    tiny = float(np.finfo(_meta(input).dtype).smallest_subnormal)  # log(tiny) < -100
    log_p = clip(log(clip(input, tiny)), -100.0)  # (0 gives -100 and a zero gradient, no nan)
    log_q = clip(log(clip(1 - input, tiny)), -100.0)
    loss = log_q * (target - 1) - log_p * target
    return _reduce(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction="mean",
                                     pos_weight=None):
    """binary_cross_entropy(sigmoid(input), target), computed stably from the logits as torch:
    (1 - target) * x + (1 + (pos_weight - 1) * target) * softplus(-x). `pos_weight` weighs the
    positive term per class (it broadcasts along the last axis), `weight` each element."""
    _check_pair(input, target, "binary_cross_entropy_with_logits", reduction, same_shape=True)
    neg_log_sigmoid = softplus(-input, threshold=math.inf)  # -log(sigmoid(x))
    if pos_weight is not None:
        neg_log_sigmoid = neg_log_sigmoid * (target * (pos_weight - 1) + 1)
    loss = input * (1 - target) + neg_log_sigmoid
    return _reduce(loss if weight is None else loss * weight, reduction)


@value_read("one_hot of a traced tensor",
            "its integer result would stay the first call's: compute it outside the fused "
            "function and pass it in")
def one_hot(tensor, num_classes=-1):
    """Integer labels of any shape -> int64 tensor of shape (*shape, num_classes) with a 1 at
    each label (num_classes=-1: the largest label + 1), as torch.nn.functional.one_hot."""
    y = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if y.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class labels, got dtype {y.dtype}")
    if num_classes == -1:
        if not y.size:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor")
        num_classes = int(y.max()) + 1
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)].flat[0]
        raise ValueError(f"one_hot: class value {bad} is out of range for num_classes="
                         f"{num_classes} (values must be in 0..{num_classes - 1})")
    out = (y[..., None] == np.arange(num_classes)).astype(np.int64)
    return Tensor._wrap(out)


_SQRT1_2 = math.sqrt(0.5)
_TANH_SCALE = math.sqrt(2.0 / math.pi)


def gelu(input, approximate="none"):
    """x * Phi(x) (Phi the standard normal CDF, through erf), or with approximate='tanh'
    0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), as torch.nn.functional.gelu."""
    if approximate == "none":
        return input * 0.5 * (erf(input * _SQRT1_2) + 1.0)
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * _TANH_SCALE
        return input * 0.5 * (tanh(inner) + 1.0)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input):
    """x * sigmoid(x) (swish)."""
    return input * sigmoid(input)


def _shape_tuple(normalized_shape):
    if isinstance(normalized_shape, (int, np.integer)):
        return (int(normalized_shape),)
    return tuple(int(s) for s in normalized_shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing dimensions `normalized_shape` (mean and biased variance of
    each sample), then scale by `weight` and shift by `bias` (both of that shape), as
    torch.nn.functional.layer_norm."""
    ns = _shape_tuple(normalized_shape)
    shape = _meta(input).shape
    k = len(ns)
    if not k or len(shape) < k or shape[len(shape) - k:] != ns:
        raise ValueError(f"layer_norm: input of shape {shape} does not end in normalized_shape "
                         f"{ns}")
    for name, v in (("weight", weight), ("bias", bias)):
        if v is not None and _meta(v).shape != ns:
            raise ValueError(f"layer_norm: {name} must have shape {ns} (normalized_shape), got "
                             f"{_meta(v).shape}")
    axes = tuple(range(len(shape) - k, len(shape)))
    xc = input - _mean(input, axis=axes, keepdims=True)
    out = xc * (_mean(square(xc), axis=axes, keepdims=True) + eps) ** -0.5
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


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
    (None draws from the global generator, `tg.manual_seed`)."""
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
