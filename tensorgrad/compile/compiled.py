"""A traced program with the functions compiled from it, each compiled when first needed.

The forward is compiled with the trace. A backward is compiled per requires-grad mask and
incoming gradient shape and dtype: its first call probes (plan.py) and gives the gradients, and
the code generator (codegen.py) writes the backward the probe's plan calls for. Once a backward
is compiled for a mask, later forwards for that mask keep only the slots it reads (and the
results): every other intermediate is freed after its last use, as are the backward's own
temporaries, so the next arrays reuse memory still in cache.
"""
import numpy as np

from .. import mode as _mode
from . import codegen
from .plan import probe

__all__ = ["Compiled"]

_HITS = _mode.HITS


class Compiled:
    """`program` (a Program) with its compiled forwards and backwards (see the module
    docstring), compiled without the fast paths that were off when it was traced."""

    __slots__ = ("program", "off", "float_result", "forward", "backwards", "lean", "reads",
                 "_differentiable", "_source")

    def __init__(self, program, examples):
        """`examples`: every slot's value in the trace (for lowerings; not kept)."""
        self.program = program
        self.off = _mode.OFF  # the fast paths switched off when traced: compiled without them
        self.float_result = np.asarray(examples[program.result]).dtype.kind == "f"
        self._differentiable = {}  # requires-grad mask -> differentiable(mask)
        self._source = codegen.forward_source(program, examples, self.off)
        self.forward = codegen.assemble_forward(program, self._source, None)  # every slot
        self.backwards = {}  # (mask, gradient shape and dtype) -> compiled backward
        self.lean = {}  # mask (None: no backward will run) -> forward keeping what it needs
        self.reads = {}  # mask -> the slots its compiled backwards read

    def differentiable(self, mask):
        """Whether a gradient reaches the (float) result from the inputs flagged in `mask`:
        through ops with vjps, not only through comparisons, sign, detach, ..."""
        known = self._differentiable.get(mask)
        if known is None:
            known = self._differentiable[mask] = \
                self.float_result and self.program.reach(mask)[0][self.program.result]
        return known

    def run(self, arrays, mask=None):
        """The slots' values for these input arrays: every one until a backward for `mask` is
        compiled, then those it reads (the others are codegen.FREED); mask None: no backward
        will run, only the results are kept."""
        forward = self.lean.get(mask)
        if forward is None:
            if mask is not None or "lean_forward" in self.off:
                return self.forward(*arrays)
            forward = self.lean[None] = codegen.assemble_forward(self.program, self._source,
                                                                 set())
        _HITS["lean_forward"] += 1
        return forward(*arrays)

    def backward(self, xp, g, vals, mask, consume=False):
        """Gradients of the result for the inputs flagged in mask (None elsewhere); consume:
        nothing else will read `vals`, so each value is freed after its last use (the list is
        emptied). The first call for a mask and gradient shape and dtype probes (plan.py); the
        later ones run the backward compiled from the probe's plan."""
        key = (mask, g.shape, g.dtype)
        compiled = self.backwards.get(key)
        if compiled is None:
            if any(v is codegen.FREED for v in vals):  # a lean forward's values: this backward
                vals = self.forward(*vals[:self.program.n_in])  # may read others: recompute
            grads, plan = probe(self.program, mask, xp, g, vals, "lowering" not in self.off)
            compiled = self.backwards[key] = codegen.backward(self.program, mask, plan,
                                                              self.off)
            reads = self.reads.setdefault(mask, set())
            reads |= compiled.reads
            if "lean_forward" not in self.off:
                self.lean[mask] = codegen.assemble_forward(self.program, self._source, reads)
            return grads
        return compiled(xp, g, vals, consume)
