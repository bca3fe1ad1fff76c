"""Fast mode and reference mode: the engine's fast paths, named, counted, and switched off.

tensorgrad is fast through fast paths that compute what the textbook engine computes, in another
way (a compiled program, a lazy product, one BLAS pass). `set_fast(False)`, `with
fast_mode(False):` or TENSORGRAD_FAST=0 in the environment (read at import) switch all of them
off: what remains is the reference engine, the specification the fast paths are tested against
(the walk with its reference hooks, tensorgrad/autograd/walk.py). `fast_paths()` lists the fast
paths (the table `PATHS` below) with a counter each. Only the environment can switch off the
allocator tuning (compile/memory.py), which applies to the whole process at import.

One path or a few can be switched off alone, to measure what each one pays or to find which
one a wrong answer comes from: `set_fast(False, paths=["axpy"])`, `with fast_mode(False,
paths=[...]):`, or TENSORGRAD_FAST_OFF=axpy,lowering in the environment (read at import).
Switching a path off switches off the paths that only exist inside it (`PARENT`: the fused
programs' lowerings, say); switched off, each takes its plain code. A feature that needs the
plain code holds paths off apart from what the user asked (`hold_off`: detect_anomaly).

A switched-off path costs one check of the global `FAST` (every path on) per backward,
optimizer step, fused call or layer chain, never one per op: only when it is False are the
paths looked up in `OFF`, and the ops whose plain code differs get it swapped in when the set
of paths changes (`reference_swap`). Compile-time paths are read when a fused function is
traced and compiled, and a fused function keeps its programs for each set of paths apart.
"""
import functools
import os
from typing import NamedTuple

__all__ = ["set_fast", "fast_mode", "is_fast", "fast_paths", "hold_off", "FastPath", "PATHS",
           "PARENT"]

# name -> (one-line purpose, what one hit counts)
PATHS = {
    "fused_program": ("tg.fuse runs a traced composition of ops as one graph node: compiled "
                      "straight-line forward and backward on arrays", "fused call"),
    "fused_chain": ("nn.Sequential runs each run of standard layers (Linear, BatchNorm1d, "
                    "activations) as one fused program", "chain call"),
    "lowering": ("fused programs call ops' versions specialised for their fixed shapes "
                 "(compile/lowerings.py)", "compiled call site"),
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
    "momentum_axpby": ("SGD momentum updates a large parameter's buffer in BLAS passes: "
                       "momentum * buf + g in one, weight decay added in another, no "
                       "direction array", "parameter update"),
    "flat_update": ("SGD without momentum updates all small flattened parameters with a few "
                    "numpy calls", "parameter group step"),
    "batched_running_stats": ("a fused chain updates all its batch-norm running statistics "
                              "in one flat array", "chain call"),
    "prefetch_batch": ("a DataLoader with prefetch_factor > 0 gathers and converts the next "
                       "batches on a background thread while the current one is used", "batch"),
    "malloc_tuning": ("glibc's malloc keeps freed blocks for reuse instead of returning them "
                      "to the kernel", "import"),
}

# path -> the paths it only exists inside: switching one of them off switches it off too
PARENT = {
    "fused_chain": ("fused_program",), "lowering": ("fused_program",),
    "inlined_lambda": ("fused_program",), "typed_number": ("fused_program",),
    "lean_forward": ("fused_program",),
    "early_free": ("fused_program", "vjp_all"),  # (the one backward call of a fused node)
    "batched_running_stats": ("fused_chain",),
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


def _names(paths, where):
    """`paths` (names of PATHS) as a set, or ValueError naming the unknown ones and `where`."""
    if isinstance(paths, str):
        paths = [p for p in paths.split(",") if p.strip()]
    names = {p.strip() for p in paths}
    unknown = sorted(names - set(PATHS))
    if unknown:
        raise ValueError(f"{where}: unknown fast path(s) {', '.join(map(repr, unknown))}; the "
                         f"fast paths are {', '.join(PATHS)}")
    return names


def _closure(names):
    """`names` and every path inside one of them (PARENT), in the table's order."""
    def inside(name):
        return name in names or any(inside(p) for p in PARENT.get(name, ()))
    return frozenset(name for name in PATHS if inside(name))


def _from_environment():
    value = os.environ.get("TENSORGRAD_FAST", "1").strip()
    if value not in ("0", "1", ""):
        raise ValueError(f"TENSORGRAD_FAST={value!r} in the environment: use 0 (reference mode, "
                         f"every fast path off) or 1 (the default)")
    if value == "0":
        return set(PATHS)
    return _names(os.environ.get("TENSORGRAD_FAST_OFF", ""), "TENSORGRAD_FAST_OFF")


_REQUESTED = _from_environment()  # the paths switched off by name (their children follow)
_HELD = {}  # holder -> the paths it keeps off whatever set_fast says (hold_off)
OFF = _closure(_REQUESTED)  # every path switched off: read by fast code when FAST is False
FAST = not OFF  # every path on: the one check fast code makes (`mode.FAST`) per backward, ...
_SWAPS = []  # (object, attribute, path, fast value, plain value)


def is_fast(path=None):
    """True while every fast path is on (the default); with `path`, whether that one is on."""
    if path is None:
        return FAST
    _names([path], "is_fast")
    return path not in OFF


def set_fast(mode, paths=None):
    """Switch every fast path on (True) or off (False: the reference engine), process-wide; with
    `paths` (names, or one comma-separated string) only those, and the paths inside them
    (PARENT). Objects built in fast mode (flat parameters, fused functions and chains,
    optimizers) take the plain path while it is off."""
    if paths is None:
        requested = set() if mode else set(PATHS)
    else:
        names = _names(paths, "set_fast")
        if "malloc_tuning" in names:
            raise ValueError("set_fast: malloc_tuning is set at import, for the whole process: "
                             "switch it off with TENSORGRAD_FAST_OFF=malloc_tuning (or "
                             "TENSORGRAD_KEEP_FREED_MEMORY=0) in the environment")
        requested = _REQUESTED - names if mode else _REQUESTED | names
    _apply(requested)


def _apply(requested):
    global FAST, OFF, _REQUESTED
    _REQUESTED = set(requested)
    OFF = _closure(_REQUESTED.union(*_HELD.values()))
    FAST = not OFF
    for obj, attr, path, fast, plain in _SWAPS:
        setattr(obj, attr, plain if path in OFF else fast)


def hold_off(holder, paths=()):
    """Keep `paths` (and the paths inside them) off while `holder` holds them, whatever
    set_fast and fast_mode say meanwhile (detect_anomaly holds the fused programs off);
    `hold_off(holder)` releases them. is_fast() reports the paths held off as off."""
    if paths:
        _HELD[holder] = _names(paths, "hold_off")
    else:
        _HELD.pop(holder, None)
    _apply(_REQUESTED)


class fast_mode:
    """Context manager (and decorator) running its block with the fast paths on or off:
    `with tg.fast_mode(False): ...` is the reference engine (as JAX's `disable_jit`); with
    `paths`, only those paths (see set_fast)."""

    def __init__(self, mode=True, paths=None):
        self.mode = bool(mode)
        self.paths = None if paths is None else sorted(_names(paths, "fast_mode"))
        self.prev = []

    def __enter__(self):
        self.prev.append(set(_REQUESTED))
        set_fast(self.mode, self.paths)
        return self

    def __exit__(self, *exc):
        _apply(self.prev.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with fast_mode(self.mode, self.paths):
                return fn(*args, **kwargs)
        return wrapper


def reference_swap(obj, path, **plain):
    """While `path` is off, give `obj`'s attributes these values (their current values are the
    fast ones): an op's plain numpy forward, say. Swapped when the set of paths changes, so
    neither mode pays a check per call."""
    if path not in PATHS:
        raise ValueError(f"reference_swap: unknown fast path {path!r}")
    for attr, value in plain.items():
        _SWAPS.append((obj, attr, path, getattr(obj, attr), value))
        if path in OFF:
            setattr(obj, attr, value)
