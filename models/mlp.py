"""The course's k-layer MLP (Linear -> BatchNorm -> activation per hidden layer) and its presets.

    from models import MLP, mlp_preset
    model = MLP([3072, 50, 50, 10])                 # He init, batch norm before ReLU
    model = mlp_preset("nine_layer", batch_norm=False, seed=0)
"""
import numpy as np

from tensorgrad import nn
from tensorgrad.creation import child_seed

__all__ = ["MLP", "presets", "mlp_preset", "ACTIVATIONS", "INITS"]

ACTIVATIONS = {
    "relu": lambda slope, alpha: nn.ReLU(),
    "leaky_relu": lambda slope, alpha: nn.LeakyReLU(slope),
    "elu": lambda slope, alpha: nn.ELU(alpha),
    "tanh": lambda slope, alpha: nn.Tanh(),
    "sigmoid": lambda slope, alpha: nn.Sigmoid(),
}

INITS = {
    "he": lambda w, std, rng: nn.init.kaiming_normal_(w, generator=rng),
    "xavier": lambda w, std, rng: nn.init.xavier_normal_(w, generator=rng),
    "lecun": lambda w, std, rng: nn.init.lecun_normal_(w, generator=rng),
    "normal": lambda w, std, rng: nn.init.normal_(w, std=std, generator=rng),
}


class MLP(nn.Sequential):
    """k-layer fully connected network; `dims` = [input, hidden..., classes], k = len(dims) - 1.

    Hidden layer: Linear -> BatchNorm1d -> activation (bn_position='before', the course's), or
    Linear -> activation -> BatchNorm1d ('after'); then Dropout(dropout) when dropout > 0.
    The last layer is a Linear giving the scores. Weights: `init` in 'he' (N(0, 2/fan_in)),
    'xavier' (PyTorch's, N(0, 2/(fan_in+fan_out))), 'lecun' (N(0, 1/fan_in), R0's "Xavier") or
    'normal' (N(0, init_std^2)); biases zero. `seed` (int or Generator) fixes the weights and the
    dropout masks (None: a child seed of the global generator, `tg.manual_seed`); the weights
    do not depend on `dropout` or `batch_norm` for a given seed.
    `bn_eps` and `bn_momentum` go to every BatchNorm1d (PyTorch's meaning: momentum is the weight
    of the new batch in the running averages, None a cumulative average).
    It is a Sequential: model[0] is the first Linear, parameters are named '0.weight', ...
    """

    def __init__(self, dims, batch_norm=True, bn_position="before", activation="relu",
                 dropout=0.0, init="he", init_std=None, seed=None, negative_slope=0.01,
                 alpha=1.0, dtype=None, bn_eps=1e-5, bn_momentum=0.1):
        dims = _check_dims(dims)
        _check_bn(bn_eps, bn_momentum)
        if bn_position not in ("before", "after"):
            raise ValueError(f"MLP: bn_position must be 'before' or 'after', got {bn_position!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATIONS)}, got "
                             f"{activation!r}")
        if init not in INITS:
            raise ValueError(f"MLP: init must be one of {sorted(INITS)}, got {init!r}")
        if (init == "normal") != (init_std is not None):
            raise ValueError(f"MLP: init_std goes with init='normal' (and only with it); got "
                             f"init={init!r}, init_std={init_std!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLP: dropout (probability of dropping) must be in [0, 1), got "
                             f"{dropout}")
        init_rng, dropout_seeds = _streams(seed, len(dims) - 2)
        layers = []
        for k, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            linear = nn.Linear(d_in, d_out, seed=init_rng, dtype=dtype)  # He init
            if init != "he":
                INITS[init](linear.weight, init_std, init_rng)
            layers.append(linear)
            if k == len(dims) - 2:
                break
            act = ACTIVATIONS[activation](negative_slope, alpha)
            bn = ([nn.BatchNorm1d(d_out, eps=bn_eps, momentum=bn_momentum, dtype=dtype)]
                  if batch_norm else [])
            layers += bn + [act] if bn_position == "before" else [act] + bn
            if dropout > 0:
                layers.append(nn.Dropout(dropout, seed=dropout_seeds[k]))
        super().__init__(*layers)
        self.dims = dims
        self.config = dict(batch_norm=batch_norm, bn_position=bn_position, activation=activation,
                           dropout=dropout, init=init, init_std=init_std, bn_eps=bn_eps,
                           bn_momentum=bn_momentum)
        self.flatten_parameters()  # biases, BN scales, narrow weights: one array, one update

    @property
    def linears(self):
        """The Linear layers in order (the course's W1, b1 ... Wk, bk)."""
        return [m for m in self if isinstance(m, nn.Linear)]

    def course_names(self):
        """{dotted parameter name: course name} - W1, b1, gamma1, beta1, ..., Wk, bk."""
        names, k = {}, 0
        for i, m in enumerate(self):
            if isinstance(m, nn.Linear):
                k += 1
                names[f"{i}.weight"], names[f"{i}.bias"] = f"W{k}", f"b{k}"
            elif isinstance(m, nn.BatchNorm1d):
                names[f"{i}.weight"], names[f"{i}.bias"] = f"gamma{k}", f"beta{k}"
        return names


def _streams(seed, n_hidden):
    """Independent random streams from one seed: the weights' Generator and one seed per
    dropout layer (so adding dropout or batch norm never changes the initial weights)."""
    if seed is None:
        seed = child_seed()
    elif isinstance(seed, np.random.Generator):
        seed = seed.integers(0, 2 ** 63, size=4).tolist()
    init_seq, dropout_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_seq), dropout_seq.spawn(n_hidden)


def _check_bn(eps, momentum):
    def number(v):
        return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)
    if not number(eps) or not 0 < eps < np.inf:
        raise ValueError(f"MLP: bn_eps must be a finite number > 0, got {eps!r}")
    if momentum is not None and (not number(momentum) or not 0 <= momentum <= 1):
        raise ValueError(f"MLP: bn_momentum must be a number in [0, 1] or None, got "
                         f"{momentum!r}")


def _check_dims(dims):
    dims = list(dims)
    if not 2 <= len(dims) <= 21:
        raise ValueError(f"MLP: dims needs 2 to 21 sizes (1 to 20 layers), got {len(dims)}: "
                         f"{dims}")
    for d in dims:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
            raise ValueError(f"MLP: every size in dims must be a positive integer, got {dims}")
    return [int(d) for d in dims]


_R0_WIDTHS = [50, 30, 20, 20, 10, 10, 10, 10]

presets = {
    "two_layer": [3072, 50, 10],
    "three_layer": [3072, 50, 50, 10],
    "nine_layer": [3072, 50, 30, 20, 20, 10, 10, 10, 10, 10],
    # R0: k-layer nets cut from the widths above (3-layer = 50-30, ..., 9-layer = all eight)
    **{f"r0_{k}": [3072, *_R0_WIDTHS[:k - 1], 10] for k in range(3, 10)},
}


def mlp_preset(name, **kwargs):
    """An MLP with the dims of a named preset (see `presets`); kwargs go to MLP."""
    if name not in presets:
        raise KeyError(f"mlp_preset: unknown preset {name!r}; known: {sorted(presets)}")
    return MLP(presets[name], **kwargs)
