"""Layers: Linear, BatchNorm1d, LayerNorm, Dropout, the activations (ReLU ... GELU, SiLU, Softplus,
Softmax, LogSoftmax), Identity and Flatten (PyTorch's names).

A `Layer` is described once, by a pure function and a state update (see `Layer`): its eager
`forward` and the fused chains of `nn.Sequential` (nn/fusion.py) are both built from that
description. The maths itself is in `functional.py`.

Adding an activation is a class with its op and, if any, the names of its static parameters
(this module's Softplus is exactly this, with a threshold too):

    class Softplus(Layer):  # log(1 + exp(beta x)) / beta
        function = staticmethod(ops.softplus)
        static = ("beta",)

        def __init__(self, beta=1.0):
            super().__init__()
            self.beta = float(beta)

and its name in `__all__` (nn/__init__.py re-exports it).
"""
import json
import warnings
from typing import NamedTuple

import numpy as np

from .. import mode as _mode
from .. import ops
from ..autograd import Tensor
from ..autograd.xp import concatenate
from ..creation import as_generator, child_generator
from ..mode import HITS as _HITS
from ..ops._base import shape_of
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["Layer", "Parts", "Linear", "BatchNorm1d", "LayerNorm", "Dropout", "ReLU", "LeakyReLU",
           "ELU", "Tanh", "Sigmoid", "GELU", "SiLU", "Softplus", "Softmax", "LogSoftmax",
           "Identity", "Flatten"]


class Parts(NamedTuple):
    """What a Layer computes, as `Layer.parts()` returns it: y = function(x, *tensors,
    **dict(params)), or (y, *aux) with `aux` auxiliary arrays after y, which `update` takes."""

    function: object
    tensors: tuple = ()
    params: tuple = ()  # (name, value) pairs: static, hashable (a fused chain keys traces on them)
    aux: int = 0


class Layer(Module):
    """A module described once: `parts()` gives a pure function of the input and some tensors
    (a composition of tensorgrad ops, so `compile.fuse` can trace it) and `update(*aux)` applies
    the layer's state change from the function's auxiliary outputs (numpy arrays: batch norm's
    batch statistics). `forward` runs the function eagerly and applies the update; a fused chain
    (nn/fusion.py) composes the functions of several layers into one traced program and applies
    each update from the program's auxiliary outputs. Both run the same maths.

    The default `parts()` is `function` (a class attribute), the tensor attributes named in
    `tensors` and the static attributes named in `static`; `extra_repr` lists the static ones.
    `parts()` may read only the module's attributes: forward and chains ask it again only when
    one of them is set (`Module._version`).
    A layer whose `batched_update(layers)` returns a function may have the updates of several
    such layers of a chain applied at once (`BatchNorm1d`). A subclass that overrides `forward`,
    or a class with `fusable = False`, runs on its own, never in a chain.
    """

    function = None
    tensors = ()  # names of the tensor attributes passed after x
    static = ()  # names of the static parameters passed as keyword arguments
    fusable = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.forward is not Layer.forward:  # its own forward is not described by parts()
            cls.fusable = False

    def parts(self):
        return Parts(type(self).function, tuple(getattr(self, n) for n in self.tensors),
                     tuple((n, getattr(self, n)) for n in self.static))

    def update(self, *aux):
        """The state change from the function's auxiliary outputs (none by default)."""

    batched_update = None  # optional: staticmethod(layers) -> function(aux of all) or None

    def forward(self, x):
        d = self.__dict__
        cached = d.get("_parts")
        if cached is None or cached[0] != d["_version"]:  # asked again when an attribute is set
            function, tensors, params, aux = self.parts()
            cached = d["_parts"] = (d["_version"], function, tensors, dict(params), aux)
        _, function, tensors, kwargs, aux = cached
        y = function(x, *tensors, **kwargs)
        if not aux:
            return y
        self.update(*[a.data for a in y[1:]])
        return y[0]

    def extra_repr(self):
        return ", ".join(f"{n}={getattr(self, n)}" for n in self.static)


def _float_dtype(dtype, who):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f":
        raise TypeError(f"{who}: dtype must be floating point, got {dt}")
    return dt


def _positive_int(value, name, who):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return int(value)


class Linear(Layer):
    """y = x W^T + b, weight of shape (out_features, in_features) as in PyTorch, computed by the
    engine's single fused `linear` op.

    Initialisation differs from PyTorch's uniform default on purpose: the weight is He normal,
    N(0, 2 / in_features) (`init.kaiming_normal_`), which the course uses, and the bias is zero.
    `seed` is an int or a numpy Generator (None: the global generator, `tg.manual_seed`).
    """

    def __init__(self, in_features, out_features, bias=True, seed=None, dtype=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        dt = _float_dtype(dtype, "Linear")
        # shape (out, in) as in PyTorch, stored in (in, out) memory order (a transposed view):
        # x @ W^T is then a plain product, faster in BLAS at mini-batch sizes
        self.weight = Parameter(np.empty((self.in_features, self.out_features), dtype=dt).T)
        if bias:
            self.bias = Parameter(np.zeros(self.out_features, dtype=dt))
        else:
            self.register_parameter("bias", None)
        init.kaiming_normal_(self.weight, generator=as_generator(seed))

    def parts(self):  # the bias is optional: not the default parts()
        bias = self.bias
        return Parts(ops.linear, (self.weight,) if bias is None else (self.weight, bias))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class BatchNorm1d(Layer):
    """Batch normalisation of (N, C) or (N, C, L) input, with PyTorch's semantics.

    Training: normalise with the batch mean and biased variance; update `running_mean` and
    `running_var` (with the unbiased variance) as r = (1 - momentum) * r + momentum * batch
    (the course's "keep 0.9 of the old average" is momentum=0.1; momentum=None is a cumulative
    average) and count `num_batches_tracked`. Eval: normalise with the running statistics.
    Learnable `weight` (gamma, init 1) and `bias` (beta, init 0) when affine.

    As a Layer: in training with running statistics its function returns (y, batch mean,
    unbiased batch variance) and `update` folds those into the running statistics with
    `F.update_running`, the one place they are computed (`F.batch_norm` and the batched update
    of several layers call it too). Refused input changes no state: the function checks it
    before the update can run.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        self.num_features = c = _positive_int(num_features, "num_features", "BatchNorm1d")
        if eps <= 0:
            raise ValueError(f"BatchNorm1d: eps must be > 0, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNorm1d: momentum must be in [0, 1] or None, got {momentum}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dt = _float_dtype(dtype, "BatchNorm1d")
        if affine:
            self.weight = Parameter(np.ones(c, dtype=dt))
            self.bias = Parameter(np.zeros(c, dtype=dt))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype=dt))
            self.register_buffer("running_var", np.ones(c, dtype=dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def parts(self):
        """Input (N, C) or (N, C, L) with C = num_features. Without running statistics, batch
        statistics are used in eval mode too (as PyTorch)."""
        wb = (self.weight, self.bias) if self.affine else ()
        params = (("eps", self.eps), ("num_features", self.num_features))
        if not self.track_running_stats:
            return Parts(_batch_norm_output, wb, params)
        if not self.training:
            return Parts(_batch_norm_running, (self.running_mean, self.running_var) + wb, params)
        return Parts(_batch_norm_batch, wb, params, aux=2)

    def update(self, mean, var):
        """Fold the batch mean and unbiased variance into the running statistics."""
        momentum = self.momentum
        if momentum is None:  # cumulative moving average over this batch too
            momentum = 1.0 / (float(self.num_batches_tracked.data) + 1.0)
        F.update_running(self.running_mean.data, mean, momentum)
        F.update_running(self.running_var.data, var, momentum)
        self.num_batches_tracked.data += 1

    @staticmethod
    def batched_update(layers):
        """`update` of several layers at once: a function of their statistics (mean, var of each
        in turn) that applies `F.update_running` once to all running statistics stacked, when
        they and the counters sit in flat arrays in that order (`flatten_parameters`) and share
        one momentum; else None. The function checks on every call that the flat arrays are
        still in place, and falls back to each layer's `update` when not (or when the
        "batched_running_stats" fast path is off)."""
        first = layers[0]
        flat, counts = getattr(first.running_mean, "_flat", None), \
            getattr(first.num_batches_tracked, "_flat", None)
        momentum = first.momentum
        if flat is None or counts is None or momentum is None or not (
                len(flat.params) == 2 * len(layers) == 2 * len(counts.params)
                and all(m.momentum == momentum and flat.params[2 * i] is m.running_mean
                        and flat.params[2 * i + 1] is m.running_var
                        and counts.params[i] is m.num_batches_tracked
                        for i, m in enumerate(layers))):
            return None

        def update(stats):
            if not (flat.valid() and counts.valid()) or \
                    not _mode.FAST and "batched_running_stats" in _mode.OFF:
                for i, m in enumerate(layers):
                    m.update(stats[2 * i], stats[2 * i + 1])
                return
            _HITS["batched_running_stats"] += 1
            stacked = flat.grad  # scratch of the flat array's size and dtype
            concatenate(stats, axis=None, out=stacked, casting="same_kind")
            F.update_running(flat.data, stacked, momentum)
            counts.data += 1
        return update

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


def _check_input(x, num_features, batch_stats):
    """BatchNorm1d's checks of its input, before any state changes (in a fused chain: once, when
    it is traced for an input shape)."""
    shape = shape_of(x)
    if len(shape) not in (2, 3):
        raise ValueError(f"BatchNorm1d: expected input of shape (N, C) or (N, C, L), got {shape}")
    if shape[1] != num_features:
        raise ValueError(f"BatchNorm1d: input of shape {shape} has {shape[1]} features, but "
                         f"num_features is {num_features}")
    if batch_stats and shape[0] * (shape[2] if len(shape) == 3 else 1) < 2:
        raise ValueError(f"BatchNorm1d: expected more than 1 value per channel when training, "
                         f"got input of shape {shape}")


# BatchNorm1d's functions (see `parts`): its checks, then the functional form
def _batch_norm_batch(x, *weight_bias, eps, num_features):
    """(y, batch mean, unbiased batch variance)."""
    _check_input(x, num_features, True)
    return F.batch_norm_batch_stats(x, *weight_bias, eps=eps)


def _batch_norm_output(x, *weight_bias, eps, num_features):
    return _batch_norm_batch(x, *weight_bias, eps=eps, num_features=num_features)[0]


def _batch_norm_running(x, running_mean, running_var, *weight_bias, eps, num_features):
    _check_input(x, num_features, False)
    return F.batch_norm_running_stats(x, running_mean, running_var, *weight_bias, eps=eps)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p (PyTorch's meaning:
    the course's "keep probability 0.9" is Dropout(0.1)) and scale the rest by 1 / (1 - p);
    the identity in eval mode.

    Masks come from the layer's own numpy Generator (`seed`: int or Generator; None: a child
    seed of the global generator, drawn at construction, so `tg.manual_seed` fixes it). Its
    state is
    part of the module's state dict under `<name>._extra_state` (PyTorch's extra-state hook;
    a 0-d string array holding the bit generator state as JSON), so saving and loading a model
    checkpoint also restores the exact sequence of future masks.
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p (the probability of dropping) must be in [0, 1], "
                             f"got {p}")
        self.p = float(p)
        self.generator = child_generator(seed)

    def forward(self, x):
        # not a Layer: a fused chain could only take the mask as an input drawn per call for a
        # shape known inside its trace, so Dropout runs on its own, between chains
        if not self.training or self.p == 0.0:
            return x
        data = x if isinstance(x, Tensor) else np.asarray(x)  # for its shape and dtype
        return x * F.dropout_mask(data.shape, self.p, data.dtype, self.generator)

    def get_extra_state(self):
        return np.array(json.dumps(self.generator.bit_generator.state, default=_jsonable))

    def set_extra_state(self, state):
        if isinstance(state, np.ndarray):
            state = state.item()
        if isinstance(state, (str, bytes)):
            state = json.loads(state)
        if not isinstance(state, dict) or "bit_generator" not in state:
            raise ValueError(f"Dropout.set_extra_state: expected a numpy bit generator state, "
                             f"got {type(state).__name__}")
        kind = state["bit_generator"]
        if type(self.generator.bit_generator).__name__ != kind:
            bit_generator = getattr(np.random, kind, None)
            if bit_generator is None:
                raise ValueError(f"Dropout.set_extra_state: unknown bit generator {kind!r}")
            self.generator = np.random.Generator(bit_generator())
        self.generator.bit_generator.state = state

    def extra_repr(self):
        return f"p={self.p}"


def _jsonable(obj):
    if isinstance(obj, np.ndarray):  # MT19937 keeps its key as an array
        return obj.tolist()
    if isinstance(obj, np.integer):
        return int(obj)
    raise TypeError(f"Dropout: cannot store {type(obj).__name__} in the generator state")


class ReLU(Layer):
    """max(x, 0)."""

    function = staticmethod(ops.relu)


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x otherwise."""

    function = staticmethod(ops.leaky_relu)
    static = ("negative_slope",)

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)


class ELU(Layer):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    function = staticmethod(ops.elu)
    static = ("alpha",)

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)


class Tanh(Layer):
    function = staticmethod(ops.tanh)


class Sigmoid(Layer):
    function = staticmethod(ops.sigmoid)


class GELU(Layer):
    """x * Phi(x), Phi the standard normal CDF (erf); approximate='tanh': torch's tanh form."""

    function = staticmethod(F.gelu)
    static = ("approximate",)

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate


class SiLU(Layer):
    """x * sigmoid(x). `inplace` is accepted for torch's signature; the output is always a new
    tensor."""

    function = staticmethod(F.silu)

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)


class Softplus(Layer):
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold."""

    function = staticmethod(ops.softplus)
    static = ("beta", "threshold")

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = float(beta), float(threshold)


def _implicit_dim(x, dim, who):
    """torch's choice for dim=None (deprecated there too): 0 for 0-, 1- and 3-d input, else 1."""
    if dim is not None:
        return dim
    ndim = len(shape_of(x))
    warnings.warn(f"{who}: implicit dimension choice (dim=None) is deprecated, as in torch; "
                  f"pass dim", UserWarning, stacklevel=5)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax(x, *, dim):
    return ops.softmax(x, axis=_implicit_dim(x, dim, "Softmax"))


def _log_softmax(x, *, dim):
    return ops.log_softmax(x, axis=_implicit_dim(x, dim, "LogSoftmax"))


class Softmax(Layer):
    """exp(x) / sum(exp(x)) along `dim`."""

    function = staticmethod(_softmax)
    static = ("dim",)

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim


class LogSoftmax(Layer):
    """x - logsumexp(x) along `dim`."""

    function = staticmethod(_log_softmax)
    static = ("dim",)

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim


class LayerNorm(Layer):
    """Layer normalisation over the trailing dimensions `normalized_shape` (each sample's mean
    and biased variance), with learnable `weight` (init 1) and `bias` (init 0) of that shape
    when elementwise_affine (bias=False: no bias), as torch.nn.LayerNorm. No running
    statistics: the same in training and eval."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else \
            tuple(normalized_shape)
        self.normalized_shape = tuple(_positive_int(s, "normalized_shape", "LayerNorm")
                                      for s in shape)
        if eps <= 0:
            raise ValueError(f"LayerNorm: eps must be > 0, got {eps}")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        dt = _float_dtype(dtype, "LayerNorm")
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dt))
        else:
            self.register_parameter("weight", None)
        if elementwise_affine and bias:
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dt))
        else:
            self.register_parameter("bias", None)

    def parts(self):  # weight and bias are optional: not the default parts()
        weight, bias = self.weight, self.bias
        return Parts(_layer_norm, tuple(t for t in (weight, bias) if t is not None),
                     (("normalized_shape", self.normalized_shape), ("eps", self.eps),
                      ("affine", (weight is not None, bias is not None))))

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


def _layer_norm(x, *weight_bias, normalized_shape, eps, affine):
    """LayerNorm's function: its tensors are the weight and bias it has (`affine` says which)."""
    it = iter(weight_bias)
    weight = next(it) if affine[0] else None
    bias = next(it) if affine[1] else None
    return F.layer_norm(x, normalized_shape, weight, bias, eps)


class Identity(Module):
    """Returns its input (a placeholder layer); ignores constructor arguments, as in PyTorch."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Merge dimensions start_dim..end_dim (by default all but the batch dimension)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return ops.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
