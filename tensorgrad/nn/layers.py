"""Layers: Linear, BatchNorm1d, Dropout, the activations, Identity and Flatten (PyTorch's names).

Every forward is a short composition of tensorgrad ops; see `functional.py` for the maths.
"""
import json

import numpy as np

from .. import mode as _mode
from .. import ops
from ..autograd import Tensor
from ..autograd.xp import concatenate
from ..creation import as_generator
from ..mode import HITS as _HITS
from ..ops._base import shape_of
from . import functional as F
from . import init
from .fusion import fusable
from .module import Module, Parameter

__all__ = ["Linear", "BatchNorm1d", "Dropout", "ReLU", "LeakyReLU", "ELU", "Tanh", "Sigmoid",
           "Identity", "Flatten"]


def _float_dtype(dtype, who):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f":
        raise TypeError(f"{who}: dtype must be floating point, got {dt}")
    return dt


def _positive_int(value, name, who):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {value!r}")
    return int(value)


@fusable
class Linear(Module):
    """y = x W^T + b, weight of shape (out_features, in_features) as in PyTorch, computed by the
    engine's single fused `linear` op.

    Initialisation differs from PyTorch's uniform default on purpose: the weight is He normal,
    N(0, 2 / in_features) (`init.kaiming_normal_`), which the course uses, and the bias is zero.
    `seed` is an int or a numpy Generator (None: fresh randomness).
    """

    def __init__(self, in_features, out_features, bias=True, seed=None, dtype=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        dt = _float_dtype(dtype, "Linear")
        # shape (out, in) as in PyTorch, stored in (in, out) memory order (a transposed view):
        # x @ W^T is then a plain product, 20-25% faster in BLAS at mini-batch sizes
        self.weight = Parameter(np.empty((self.in_features, self.out_features), dtype=dt).T)
        if bias:
            self.bias = Parameter(np.zeros(self.out_features, dtype=dt))
        else:
            self.register_parameter("bias", None)
        init.kaiming_normal_(self.weight, generator=as_generator(seed))

    def forward(self, x):
        return ops.linear(x, self.weight, self.bias)

    def _fused_part(self):  # see fusion.py
        tensors = (self.weight,) if self.bias is None else (self.weight, self.bias)
        return ops.linear, tensors, (), None

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


@fusable
class BatchNorm1d(Module):
    """Batch normalisation of (N, C) or (N, C, L) input, with PyTorch's semantics.

    Training: normalise with the batch mean and biased variance; update `running_mean` and
    `running_var` (with the unbiased variance) as r = (1 - momentum) * r + momentum * batch
    (the course's "keep 0.9 of the old average" is momentum=0.1; momentum=None is a cumulative
    average) and count `num_batches_tracked`. Eval: normalise with the running statistics.
    Learnable `weight` (gamma, init 1) and `bias` (beta, init 0) when affine.
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

    def forward(self, x):
        """Input (N, C) or (N, C, L) with C = num_features. Refused input changes no state: it is
        checked first, and the counter moves only once the running statistics have."""
        batch_stats = self.training or not self.track_running_stats
        _check_input(x, self.num_features, batch_stats)
        momentum = self.momentum
        tracking = self.training and self.track_running_stats
        if tracking and momentum is None:  # cumulative moving average over this batch too
            momentum = 1.0 / (float(self.num_batches_tracked.data) + 1.0)
        # without running statistics, batch statistics are used in eval mode too (as PyTorch)
        out = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                           batch_stats, 0.0 if momentum is None else momentum, self.eps)
        if tracking:
            self.num_batches_tracked.data += 1
        return out

    def _fused_part(self):  # see fusion.py: the same maths as forward, as a pure composition
        wb = (self.weight, self.bias) if self.affine else ()
        params = (("eps", self.eps), ("num_features", self.num_features))
        if not self.training and self.track_running_stats:
            return _batch_norm_running, (self.running_mean, self.running_var) + wb, params, None
        if not self.track_running_stats:
            return _batch_norm_output, wb, params, None
        return _batch_norm_batch, wb, params, (self._track, 2, BatchNorm1d._track_all)

    def _track(self, mean, var):
        """Training-mode side effects of forward, from a fused chain's batch statistics
        (arrays)."""
        self.num_batches_tracked.data += 1
        momentum = self.momentum
        if momentum is None:
            momentum = 1.0 / float(self.num_batches_tracked.data)
        F.update_running(self.running_mean, self.running_var, mean, var, momentum)

    @staticmethod
    def _track_all(layers):
        """`_track` of several layers at once: a function of their stats (mean, var of each in
        turn) that updates all running statistics with five numpy calls instead of eight per
        layer, when they and the counters sit in flat arrays in that order (`flatten_parameters`)
        and share one momentum; else None. A fused chain asks once per module_version; the
        function checks that the flat arrays are still in place on every call."""
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
        keep = 1.0 - momentum

        def update(stats):
            # an array was replaced, or this fast path is off (tensorgrad/mode.py): one at a time
            if not (flat.valid() and counts.valid()) or \
                    not _mode.FAST and "batched_running_stats" in _mode.OFF:
                for i, m in enumerate(layers):
                    m._track(stats[2 * i], stats[2 * i + 1])
                return
            _HITS["batched_running_stats"] += 1
            counts.data += 1
            new = flat.grad  # scratch of the flat array's size
            concatenate(stats, axis=None, out=new, casting="same_kind")
            new *= momentum
            flat.data *= keep
            flat.data += new
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


# BatchNorm1d's parts of a fused chain (see `_fused_part`): its checks, then the functional form
def _batch_norm_batch(x, *weight_bias, eps, num_features):
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

    Masks come from the layer's own numpy Generator (`seed`: int or Generator). Its state is
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
        self.generator = as_generator(seed)

    def forward(self, x):
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


@fusable
class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x):
        return ops.relu(x)

    def _fused_part(self):  # see fusion.py
        return ops.relu, (), (), None


@fusable
class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    def _fused_part(self):  # see fusion.py
        return ops.leaky_relu, (), (("negative_slope", self.negative_slope),), None

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


@fusable
class ELU(Module):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x):
        return ops.elu(x, self.alpha)

    def _fused_part(self):  # see fusion.py
        return ops.elu, (), (("alpha", self.alpha),), None

    def extra_repr(self):
        return f"alpha={self.alpha}"


@fusable
class Tanh(Module):
    def forward(self, x):
        return ops.tanh(x)

    def _fused_part(self):  # see fusion.py
        return ops.tanh, (), (), None


@fusable
class Sigmoid(Module):
    def forward(self, x):
        return ops.sigmoid(x)

    def _fused_part(self):  # see fusion.py
        return ops.sigmoid, (), (), None


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
