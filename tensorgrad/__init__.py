"""tensorgrad: a numpy autograd framework for small-batch MLP work, readable and fast.

    import tensorgrad as tg
    x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum(); y.backward(); x.grad   # 2x
"""
import sys as _sys

import numpy as _np

from . import autograd, nn, ops, optim, viz  # noqa: E402
from .autograd import (
                       GraphFreedError,
                       Tensor,
                       as_tensor,
                       detect_anomaly,
                       enable_grad,
                       from_numpy,
                       grad,
                       inference_mode,
                       is_anomaly_check_nan_enabled,
                       is_anomaly_enabled,
                       is_grad_enabled,
                       is_inference_mode_enabled,
                       no_grad,
                       set_grad_enabled,
                       tensor,
)
from .autograd import registry as _registry
from .autograd.function import Function, FunctionCtx, Op
from .compile import memory  # noqa: F401  (first: tunes malloc before the big arrays come)
from .compile.fuse import TraceError, fuse
from .creation import (
                       arange,
                       as_generator,
                       default_generator,
                       eye,
                       full,
                       full_like,
                       get_rng_state,
                       initial_seed,
                       manual_seed,
                       ones,
                       ones_like,
                       rand,
                       randint,
                       randn,
                       randperm,
                       set_rng_state,
                       zeros,
                       zeros_like,
)
from .gradcheck import (
                       GradcheckError,
                       NondifferentiableError,
                       gradcheck,
                       gradgradcheck,
                       gradient_errors,
)
from .mode import FastPath, fast_mode, fast_paths, is_fast, set_fast
from .ops import *  # noqa: F401,F403  (every op as a function: tg.exp(x), tg.sum(x, axis=0), ...)
from .ops import DIFFERENTIABLE
from .serialization import load, save

_registry.expose(_sys.modules[__name__])  # and the ops registered later

float32, float64, int64, bool_ = _np.float32, _np.float64, _np.int64, _np.bool_
__version__ = "0.1.0"
