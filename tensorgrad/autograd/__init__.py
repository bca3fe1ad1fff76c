"""Reverse-mode autodiff: the Tensor, grad mode, the graph walk, and how ops are defined."""
from . import functional, inplace  # noqa: F401  (inplace installs add_, x += y, ... on Tensor)
from .anomaly import (
    AnomalyError,
    detect_anomaly,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    set_detect_anomaly,
)
from .function import Function, FunctionCtx, Op
from .grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .tensor import Tensor, as_tensor, from_numpy, tensor
from .walk import GraphFreedError, grad

__all__ = ["Tensor", "tensor", "as_tensor", "from_numpy", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "grad", "GraphFreedError", "inference_mode",
           "is_inference_mode_enabled", "Function", "FunctionCtx", "Op", "functional",
           "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "AnomalyError"]
