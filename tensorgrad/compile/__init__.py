"""The speed machinery, apart from the maths: fused programs (trace, plan, codegen), lowerings,
inlining, BLAS helpers, flat parameter storage and malloc tuning. Every piece is a fast path
that `tg.set_fast(False)` (tensorgrad/mode.py) switches off."""
from . import accumulate  # noqa: F401  (installs the graph walk's fast hooks)
