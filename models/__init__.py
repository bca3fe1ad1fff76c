"""Models built on tensorgrad.nn: the course's k-layer MLP, its named presets, gradient checks."""
from .checks import format_gradient_table, mlp_gradient_table
from .mlp import ACTIVATIONS, INITS, MLP, mlp_preset, presets

__all__ = ["MLP", "presets", "mlp_preset", "ACTIVATIONS", "INITS", "mlp_gradient_table",
           "format_gradient_table"]
