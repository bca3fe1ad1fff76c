"""Gradient clipping and parameter <-> vector conversion, as PyTorch's ``torch.nn.utils``.

    loss.backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # a 0-d Tensor
    optimizer.step()

Everything here works in place on the existing arrays: the gradients that clipping scales and
the parameters that `vector_to_parameters` writes keep their arrays, so flat parameter storage
(`Module.flatten_parameters`, tensorgrad/compile/flat.py) and the optimizers' caches stay valid.
"""
import math

import numpy as np

from ..autograd import Tensor
from ..ops.shape import concatenate

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "parameters_to_vector", "vector_to_parameters"]


def _as_list(parameters):
    """A single Tensor or an iterable of them (a generator is consumed once)."""
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _vector_norm(x, norm_type):
    """torch.linalg.vector_norm of the flattened array `x` (float64 sums for float64 input)."""
    a = np.abs(np.ravel(x))
    if norm_type == math.inf:
        return a.max() if a.size else np.zeros((), a.dtype)
    if norm_type == -math.inf:
        return a.min() if a.size else np.asarray(np.inf, a.dtype)
    if norm_type == 0:
        return np.asarray(np.count_nonzero(a), a.dtype)
    if norm_type == 1:
        return a.sum()
    if norm_type == 2:
        return np.sqrt(np.dot(a, a))
    return (a ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of the norms of `tensors` (arrays or Tensors), i.e. the norm of all their
    entries as one vector, as a 0-d Tensor (float32 0 when there are none). ``foreach`` is
    accepted for PyTorch's signature and ignored."""
    arrays = [t.data if isinstance(t, Tensor) else np.asarray(t) for t in _as_list(tensors)]
    if not arrays:
        return Tensor(np.zeros((), np.float32))
    norm_type = float(norm_type)
    dtype = np.result_type(*arrays)
    norms = np.array([_vector_norm(a, norm_type) for a in arrays], dtype=dtype)
    total = np.asarray(_vector_norm(norms, norm_type), dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
            f"so it cannot be clipped. To disable this error and scale the gradients by the "
            f"non-finite norm anyway, set `error_if_nonfinite=False`")
    return Tensor(total)


def _grad_arrays(parameters):
    return [p.grad.data for p in parameters if p.grad is not None]


def _scale_in_place(p, coef):
    g = p.grad.data
    if g.flags.writeable:
        np.multiply(g, coef, out=g, casting="unsafe")
    else:  # a read-only gradient (e.g. a broadcast the user set): replaced by a scaled copy
        p.grad.data = (g * coef).astype(g.dtype)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Multiply every gradient of `parameters` in place by min(1, max_norm / (total_norm +
    1e-6)), `total_norm` (a number or 0-d Tensor) given, e.g. by `get_total_norm`."""
    parameters = [p for p in _as_list(parameters) if p.grad is not None]
    if not parameters:
        return
    total = total_norm.data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    coef = np.minimum(float(max_norm) / (total + 1e-6), 1.0)
    if isinstance(total_norm, Tensor):  # computed in the norm's dtype, as PyTorch does
        coef = coef.astype(total.dtype)
    for p in parameters:
        _scale_in_place(p, coef)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale the gradients of `parameters` in place so that their total norm (the norm of all
    gradient entries as one vector, `norm_type` 2, 1, inf, ...) is at most `max_norm`.

    As PyTorch: every gradient is multiplied by min(1, max_norm / (total + 1e-6)), parameters
    without a gradient are skipped, and the total norm before clipping is returned as a 0-d
    Tensor. A NaN or infinite total raises RuntimeError with ``error_if_nonfinite=True``;
    otherwise the gradients are scaled by it anyway (they become NaN or 0). ``foreach`` is
    accepted and ignored."""
    parameters = _as_list(parameters)
    total = get_total_norm(_grad_arrays(parameters), norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient entry of `parameters` into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is None:
            continue
        g = p.grad.data
        if g.flags.writeable:
            np.clip(g, -clip_value, clip_value, out=g)
        else:
            p.grad.data = np.clip(g, -clip_value, clip_value)


def parameters_to_vector(parameters):
    """All parameters flattened (row-major) and concatenated into one new 1-d Tensor;
    differentiable, as PyTorch's."""
    parameters = _as_list(parameters)
    if not parameters:
        raise ValueError("parameters_to_vector: no parameters given")
    return concatenate([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-d `vec` into `parameters`, in their order and
    row-major, writing into each parameter's existing array (cast to its dtype).

    Unlike PyTorch, which points each ``param.data`` at a view of `vec`, the parameters keep
    their arrays: flat parameter storage and the optimizers' state stay attached, and a later
    change to `vec` does not reach them. The sizes must add up to ``vec.size``."""
    if isinstance(vec, Tensor):
        vec = vec.data
    elif not isinstance(vec, np.ndarray):
        raise TypeError(f"vector_to_parameters: expected a Tensor, got {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: expected a 1-d vector, got shape {vec.shape}")
    parameters = _as_list(parameters)
    needed = sum(p.data.size for p in parameters)
    if needed != vec.size:
        raise ValueError(f"vector_to_parameters: the parameters hold {needed} values, the "
                         f"vector {vec.size}")
    at = 0
    for p in parameters:
        n = p.data.size
        p.data[...] = vec[at:at + n].reshape(p.data.shape)
        at += n
