"""Liveness: which values each statement of a compiled program reads, and where each is last used.

The code generator (codegen.py) describes every line it writes as a `Statement`: its text and
the program variables it reads or writes, by slot: `values` for the forward's slot values
(`vN`), `grads` for the backward's gradients (`gN`). From those declarations alone, not from
the text, this module finds each variable's last use, so the generated function can delete it
right there (numpy then reuses the memory for the next array while it is still in cache), and
which slot values a compiled backward reads, which is what a lean forward must keep for it.
"""
from typing import NamedTuple

__all__ = ["Statement", "last_uses", "with_frees", "values_read"]


class Statement(NamedTuple):
    """One generated line and the variables it mentions (reads or assigns), by slot."""

    text: str
    values: tuple = ()  # slots of the values vN it mentions
    grads: tuple = ()  # slots of the gradients gN it mentions


def _names(statement):
    return [f"v{s}" for s in statement.values] + [f"g{s}" for s in statement.grads]


def last_uses(body, returned):
    """{index in body: the variable names last mentioned there}, for every variable but those
    the `returned` statement mentions (kept for the caller)."""
    last = {}
    for i, statement in enumerate(body):
        for name in _names(statement):
            last[name] = i
    for name in _names(returned):
        last.pop(name, None)
    after = {}
    for name, i in last.items():
        after.setdefault(i, []).append(name)
    return {i: sorted(names) for i, names in after.items()}


def with_frees(body, returned):
    """The lines of `body` with `del` of each variable after its last use (see last_uses):
    a value only if nothing else holds it, which the caller decides by what it passes (the
    inputs and constants a forward returns, the backward's `vals` unless consumed)."""
    after = last_uses(body, returned)
    lines = []
    for i, statement in enumerate(body):
        lines.append(statement.text)
        if i in after:
            lines.append(f"    del {', '.join(after[i])}")
    return lines


def values_read(statements):
    """The slots whose values the statements read."""
    return {s for statement in statements for s in statement.values}
