"""Weight initialisation in place, with PyTorch's names (`kaiming_normal_`, `xavier_normal_`, ...).

Every random initialiser takes `generator` (a numpy Generator or an int seed) or `seed`, and
draws from the global generator (`tg.manual_seed`) when given neither; samples
are drawn in float64 and then cast, so a float32 and a float64 model built from the same seed
start from the same values. For a Linear weight of shape (out, in), fan_in = in, fan_out = out.

Naming across the course reports: "He" is `kaiming_normal_` (N(0, 2/fan_in)); the R0 report's
"Xavier" is `lecun_normal_` (N(0, 1/fan_in)); PyTorch's `xavier_normal_` is
N(0, 2/(fan_in+fan_out)).
"""
import math

from ..autograd import Tensor
from ..creation import as_generator

__all__ = ["calculate_gain", "kaiming_normal_", "kaiming_uniform_", "xavier_normal_",
           "xavier_uniform_", "lecun_normal_", "normal_", "uniform_", "zeros_", "ones_",
           "constant_"]


def _rng(generator, seed, who):
    if generator is not None and seed is not None:
        raise TypeError(f"{who}: pass generator= or seed=, not both")
    return as_generator(generator if generator is not None else seed)


def _check(tensor, who):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{who}: expected a Tensor (e.g. a Parameter), got {type(tensor).__name__}")
    if tensor.data.dtype.kind != "f":
        raise TypeError(f"{who}: expected a floating point tensor, got dtype {tensor.dtype}")


def _fans(tensor, who):
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"{who}: fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _kaiming_std(tensor, a, mode, nonlinearity, who):
    """gain / sqrt(fan): the std of He initialisation (`a`: the leaky_relu slope)."""
    fan_in, fan_out = _fans(tensor, who)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{who}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def _fill_normal(tensor, std, mean, rng):
    tensor.data[...] = rng.standard_normal(tensor.shape) * std + mean
    return tensor


def _fill_uniform(tensor, low, high, rng):
    tensor.data[...] = rng.uniform(low, high, tensor.shape)
    return tensor


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gain: 1 (linear, sigmoid), 5/3 (tanh), sqrt(2) (relu),
    sqrt(2 / (1 + slope^2)) (leaky_relu, slope `param`, default 0.01), 3/4 (selu)."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None,
                    seed=None):
    """He initialisation: N(0, gain^2 / fan), by default gain^2 = 2 and fan = fan_in."""
    _check(tensor, "kaiming_normal_")
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    return _fill_normal(tensor, std, 0.0, _rng(generator, seed, "kaiming_normal_"))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None,
                     seed=None):
    """He initialisation, uniform: U(-bound, bound), bound = gain * sqrt(3 / fan) (by default
    sqrt(6 / fan_in)). PyTorch's Linear default is this with a=sqrt(5); tensorgrad's Linear
    is He normal (see `nn.Linear`)."""
    _check(tensor, "kaiming_uniform_")
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return _fill_uniform(tensor, -bound, bound, _rng(generator, seed, "kaiming_uniform_"))


def xavier_normal_(tensor, gain=1.0, generator=None, seed=None):
    """Glorot initialisation as PyTorch defines it: N(0, gain^2 * 2 / (fan_in + fan_out))."""
    _check(tensor, "xavier_normal_")
    fan_in, fan_out = _fans(tensor, "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill_normal(tensor, std, 0.0, _rng(generator, seed, "xavier_normal_"))


def xavier_uniform_(tensor, gain=1.0, generator=None, seed=None):
    """Glorot initialisation, uniform: U(-bound, bound), bound = gain * sqrt(6 / (fan_in +
    fan_out))."""
    _check(tensor, "xavier_uniform_")
    fan_in, fan_out = _fans(tensor, "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _fill_uniform(tensor, -bound, bound, _rng(generator, seed, "xavier_uniform_"))


def lecun_normal_(tensor, generator=None, seed=None):
    """N(0, 1 / fan_in): what the course's R0 report calls "Xavier"."""
    _check(tensor, "lecun_normal_")
    fan_in, _ = _fans(tensor, "lecun_normal_")
    return _fill_normal(tensor, 1.0 / math.sqrt(fan_in), 0.0,
                        _rng(generator, seed, "lecun_normal_"))


def normal_(tensor, mean=0.0, std=1.0, generator=None, seed=None):
    """N(mean, std^2) entries (the course's fixed-sigma initialisation)."""
    _check(tensor, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _fill_normal(tensor, std, mean, _rng(generator, seed, "normal_"))


def uniform_(tensor, a=0.0, b=1.0, generator=None, seed=None):
    """U(a, b) entries."""
    _check(tensor, "uniform_")
    return _fill_uniform(tensor, a, b, _rng(generator, seed, "uniform_"))


def constant_(tensor, val):
    """Fill with `val`."""
    _check(tensor, "constant_")
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    """Fill with zeros (biases, batch-norm beta)."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with ones (batch-norm gamma)."""
    return constant_(tensor, 1.0)
