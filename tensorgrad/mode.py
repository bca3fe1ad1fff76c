"""Fast mode and reference mode: the engine's fast paths, named, counted, and switched off together.

tensorgrad is fast through fast paths that compute what the textbook engine computes, in another
way (a compiled program, a lazy product, one BLAS pass). `set_fast(False)`, `with
fast_mode(False):` or TENSORGRAD_FAST=0 in the environment (read at import) switch all of them
off: what remains is the reference engine, the specification the fast paths are tested against
(the walk is `tensorgrad.tensor._reference_backward`). `fast_paths()` lists the fast paths (the
table `PATHS` below) with a counter each. Only the environment variable can switch off the
allocator tuning (memory.py), which applies to the whole process at import.

A switched-off path costs one check of the global `FAST` per backward, optimizer step, fused
call or layer chain, never one per op: the ops whose plain forward differs get it swapped in
when the mode changes (`reference_swap`).
"""
import functools
import os
from typing import NamedTuple

__all__ = ["set_fast", "fast_mode", "is_fast", "fast_paths", "FastPath", "PATHS"]

# name -> (one-line purpose, what one hit counts)
PATHS = {
    "fused_program": ("tg.fuse runs a traced composition of ops as one graph node: compiled "
                      "straight-line forward and backward on arrays", "fused call"),
    "fused_chain": ("nn.Sequential runs each run of standard layers (Linear, BatchNorm1d, "
                    "activations) as one fused program", "chain call"),
    "lowering": ("fused programs call ops' versions specialised for their fixed shapes "
                 "(Op.lower)", "compiled call site"),
    "inlined_lambda": ("fused programs write one-expression forwards and vjps out in their "
                       "source instead of calling them", "compiled call site"),
    "typed_number": ("fused programs pass Python numbers as cached 0-d arrays of the "
                     "operand's dtype", "compiled operand"),
    "lean_forward": ("a fused forward keeps only the values its compiled backward reads and "
                     "frees the others after their last use", "fused call"),
    "early_free": ("a fused backward frees each saved value and gradient once used (graph "
                   "not retained)", "fused backward"),
    "blas_reduction": ("sums as BLAS products: a float matrix's row or column sums and "
                       "means with a cached constant vector, sum_squares as dot(x, x)",
                       "call or compiled site"),
    "matmul_dispatch": ("2-D products through numpy's C dot when small, into a fresh array "
                        "with matmul when large", "choice"),
    "narrow_row_max": ("row maxima of a narrow matrix (softmax over classes) reduced from a "
                       "transposed copy", "call"),
    "pow_primitive": ("x ** 2, x ** 0.5 and x ** -0.5 as the primitives square, sqrt and "
                      "rsqrt instead of the general power", "call"),
    "compact_gradient": ("a reduction's gradient keeps its size-1 axes; broadcast only where "
                         "an op or a leaf needs the full shape", "broadcast"),
    "vjp_all": ("one call computes all inputs' gradients of a node (a fused node, "
                "sum_squares)", "node"),
    "fresh_gradient": ("a leaf keeps the fresh array a vjp returned as its .grad, without "
                       "a copy", "leaf"),
    "inplace_accumulate": ("later gradients of a leaf are added in place into the .grad "
                           "array the same backward allocated", "addition"),
    "lazy_scaled": ("the L2 term's gradient x * s stays unevaluated and is folded into the "
                    "leaf's other gradient in one pass", "gradient"),
    "axpy": ("y += a * x in place, in one BLAS pass for large arrays (optimizer updates, "
             "folded L2 gradients)", "update"),
    "flat_update": ("SGD without momentum updates all small flattened parameters with a few "
                    "numpy calls", "parameter group step"),
    "batched_running_stats": ("a fused chain updates all its batch-norm running statistics "
                              "in one flat array", "chain call"),
    "malloc_tuning": ("glibc's malloc keeps freed blocks for reuse instead of returning them "
                      "to the kernel", "import"),
}

HITS = dict.fromkeys(PATHS, 0)  # the counters: fast code does HITS[name] += 1


class FastPath(NamedTuple):
    """One fast path as `fast_paths()` reports it: `hits` counts `per` (a fused call, a leaf,
    ...) since the last reset."""

    purpose: str
    per: str
    hits: int


def fast_paths(reset=False):
    """{name: FastPath(purpose, per, hits)} for every fast path, in the table's order; with
    reset=True the counters start again from 0 (after this snapshot)."""
    out = {name: FastPath(purpose, per, HITS[name]) for name, (purpose, per) in PATHS.items()}
    if reset:
        for name in HITS:
            HITS[name] = 0
    return out


def _from_environment():
    value = os.environ.get("TENSORGRAD_FAST", "1").strip()
    if value not in ("0", "1", ""):
        raise ValueError(f"TENSORGRAD_FAST={value!r} in the environment: use 0 (reference mode, "
                         f"every fast path off) or 1 (the default)")
    return value != "0"


FAST = _from_environment()  # read by the fast code as `mode.FAST`: one check per backward, ...
_SWAPS = []  # (object, attribute, fast value, reference value)


def is_fast():
    """True while the fast paths are on (the default), False in reference mode."""
    return FAST


def set_fast(mode):
    """Switch every fast path on (True) or off (False: the reference engine), process-wide.
    Objects built in fast mode (flat parameters, fused functions and chains, optimizers) take
    the plain path while it is off."""
    global FAST
    FAST = bool(mode)
    for obj, attr, fast, plain in _SWAPS:
        setattr(obj, attr, fast if FAST else plain)


class fast_mode:
    """Context manager (and decorator) running its block with the fast paths on or off:
    `with tg.fast_mode(False): ...` is the reference engine (as JAX's `disable_jit`)."""

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self.prev = []

    def __enter__(self):
        self.prev.append(FAST)
        set_fast(self.mode)
        return self

    def __exit__(self, *exc):
        set_fast(self.prev.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with fast_mode(self.mode):
                return fn(*args, **kwargs)
        return wrapper


def reference_swap(obj, **plain):
    """In reference mode, give `obj`'s attributes these values (their current values are the
    fast ones): an op's plain numpy forward, say. Swapped when the mode changes, so neither
    mode pays a check per call."""
    for attr, value in plain.items():
        _SWAPS.append((obj, attr, getattr(obj, attr), value))
        if not FAST:
            setattr(obj, attr, value)
