"""A traced program as plain data: what `fuse` records once per input shapes, before any code.

The program's values live in numbered slots: the inputs (0 .. n_in - 1), then the constants (the
arrays and numbers the traced function used that are not inputs), then one slot per recorded
step. A step is `(op, spec, params)`: `op` (an autograd Op) applied to the slots in `spec` with
the static parameters `params`. The passes (liveness.py, plan.py, codegen.py) read this and never
change it.
"""

__all__ = ["Program"]


class Program:
    """The recorded primitives of one trace over numbered slots (see the module docstring):
    `n_in` inputs, `consts` (their values), `steps`, every slot's shape in `shapes`, the slot of
    the differentiable `result` and those of the auxiliary results `aux`."""

    __slots__ = ("n_in", "consts", "steps", "shapes", "result", "aux")

    def __init__(self, n_in, consts, steps, shapes, result, aux):
        self.n_in, self.consts, self.steps, self.shapes = n_in, consts, steps, shapes
        self.result, self.aux = result, aux

    @property
    def first_step(self):
        """The slot of step 0 (the slots before it are the inputs and constants)."""
        return self.n_in + len(self.consts)

    def slot(self, k):
        """The slot step k writes."""
        return self.n_in + len(self.consts) + k

    def reach(self, mask):
        """(per slot: whether it depends on an input flagged in mask through ops with a vjp,
        per step: the positions of its inputs a gradient must reach). Steps without vjps
        (comparisons, sign, detach) pass no gradient on."""
        live = [bool(m) for m in mask] + [False] * len(self.consts)
        plans = []
        for op, spec, _ in self.steps:
            plans.append(tuple(i for i, a in enumerate(spec)
                               if live[a] and (op.variadic or op.vjps[i] is not None)))
            live.append(bool(plans[-1]))
        return live, plans

    def __repr__(self):
        lines = [f"Program({self.n_in} inputs, {len(self.consts)} constants, "
                 f"{len(self.steps)} steps, result v{self.result}"
                 + (f", aux {', '.join(f'v{a}' for a in self.aux)}" if self.aux else "") + ")"]
        for j, value in enumerate(self.consts):
            shown = f"array {value.shape} {value.dtype}" if hasattr(value, "shape") else \
                repr(value)
            lines.append(f"  v{self.n_in + j} = {shown}")
        for k, (op, spec, params) in enumerate(self.steps):
            args = ", ".join([f"v{a}" for a in spec] + [f"{n}={v!r}" for n, v in params.items()])
            lines.append(f"  v{self.slot(k)} = {op.name}({args})")
        return "\n".join(lines)
