"""Neural-network building blocks with PyTorch's names: Module, Parameter, layers, containers.

    from tensorgrad import nn
    import tensorgrad.nn.functional as F
    model = nn.Sequential(nn.Linear(3072, 50), nn.BatchNorm1d(50), nn.ReLU(), nn.Linear(50, 10))
    loss = F.cross_entropy(model(x), y) + lam * nn.l2_penalty(model)
"""
from . import functional, init, layers, loss, utils
from .layers import *  # noqa: F403 (every layer: the names in layers.__all__)
from .loss import *  # noqa: F403 (every loss module: the names in loss.__all__)
from .module import (
    IncompatibleKeys,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    ParameterList,
    Sequential,
)
from .regularization import l2_param_groups, l2_penalty, l2_weights

__all__ = ["Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "IncompatibleKeys", *layers.__all__, *loss.__all__,
           "functional", "init", "utils", "l2_penalty", "l2_weights", "l2_param_groups"]
