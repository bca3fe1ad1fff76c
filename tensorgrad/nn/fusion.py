"""Run a chain of layers (Linear, BatchNorm1d, activations) as one fused graph node.

`nn.Sequential` hands every run of two or more fusable layers to a `Chain`. A layer is fusable
when it follows the Layer contract (nn/layers.py) without overriding `forward`: `parts()` gives
its pure function, tensors and static parameters, and `update(*aux)` its state change from the
function's auxiliary outputs. A chain composes the functions and traces the composition with
`compile.fuse`, so a hidden block of the k-layer MLP (Linear -> BatchNorm1d -> ReLU) is one
node with one compiled forward and backward instead of three nodes and three module calls;
then it applies each layer's update from the program's auxiliary outputs. The maths is the
layers' own: gradients are derived from the traced ops, and `forward` runs the same functions.

This module needs nothing from the rest of nn: it asks modules for `fusable`, `parts`,
`update`, `batched_update`, `_version` and `_module_hooks` by name. A module with hooks
(nn/hooks.py) runs on its own: a chain holding one splits around it while it has them (its
`_version` moves when it gets its first hook and loses its last). In reference mode
(`tg.set_fast(False)`, or the fused_chain path off) Sequential runs every layer on its own,
and a Chain called directly runs the composition of its layers' functions op by op.
"""
from operator import attrgetter

from .. import mode as _mode
from ..autograd import Tensor, as_tensor
from ..compile.fuse import fuse
from ..mode import HITS as _HITS

__all__ = ["Chain", "plan"]

_version = attrgetter("_version")


def _run(x, *tensors, spec):
    """The composed chain: each (function, number of tensors, params) of `spec` in turn."""
    aux, at = [], 0
    for fn, n, params in spec:
        y = fn(x, *tensors[at:at + n], **dict(params))
        at += n
        if isinstance(y, tuple):
            x = y[0]
            aux.extend(y[1:])
        else:
            x = y
    return (x, *aux) if aux else x


def _named(modules):
    """_run under the members' class names ("Linear+BatchNorm1d+ReLU"): the fused op's name in
    graph drawings and error messages."""
    def chain(x, *tensors, spec):
        return _run(x, *tensors, spec=spec)
    chain.__name__ = "+".join(type(m).__name__ for m in modules)
    return chain


class _Spec(tuple):
    """A chain's static description (what fuse keys its traces on): hashed once, not per call."""

    def __hash__(self):
        h = self.__dict__.get("hash")
        if h is None:
            h = self.__dict__["hash"] = tuple.__hash__(self)
        return h


class Chain:
    """Consecutive fusable modules called as one fused function (see the module docstring).

    What the modules contribute (functions, tensors, static parameters, updates) is asked once
    and reused while none of them has had an attribute set: each module counts its own
    attribute assignments (`Module._version`, which train()/eval() and flatten_parameters also
    move), and the chain compares its members' counts with those it asked at."""

    def __init__(self, modules):
        self.modules = tuple(modules)
        self.fused = fuse(_named(self.modules))  # its own trace cache: a program per input shape
        self._versions = None  # the members' `_version`s when _prepared was built
        self._prepared = None  # (per-module forward?, spec, tensors, updates)

    def _prepare(self):
        if any("forward" in m.__dict__ for m in self.modules):  # set on an instance: honour it
            return self.modules, None, None, None
        if not all(map(_unhooked, self.modules)):  # a member has hooks: split around it
            return plan(self.modules, _unhooked), None, None, None
        spec, tensors, updates = [], [], []
        for m in self.modules:
            fn, ts, params, aux = m.parts()
            spec.append((fn, len(ts), params))
            tensors += ts
            if aux:
                updates.append((m, aux))
        return (), _Spec(spec), tuple(tensors), _updates(updates)

    def __call__(self, x):
        versions = tuple(map(_version, self.modules))
        if versions != self._versions:
            self._prepared, self._versions = self._prepare(), versions
        steps, spec, tensors, updates = self._prepared
        if steps:
            for m in steps:
                x = m(x)
            return x
        if not isinstance(x, Tensor):
            x = as_tensor(x)
        if not _mode.FAST and "fused_chain" in _mode.OFF:  # the composition, op by op
            out = _run(x, *tensors, spec=spec)
            if updates is None:
                return out
            updates([a.data for a in out[1:]])
            return out[0]
        _HITS["fused_chain"] += 1
        out = self.fused.call_raw_aux((x,) + tensors, {"spec": spec})
        if updates is None:
            return out
        updates(out[1:])
        return out[0]


def _updates(layers):
    """One function applying the layers' updates from the chain's aux outputs, or None: the
    `batched_update` of all of them when they share one and it accepts these layers, else each
    layer's own `update` on its share of the aux arrays. `layers`: (module, its aux count)."""
    if not layers:
        return None
    batched = type(layers[0][0]).batched_update
    if batched is not None and all(type(m).batched_update is batched for m, _ in layers):
        update = batched([m for m, _ in layers])
        if update is not None:
            return update
    updates = [(m.update, n) for m, n in layers]

    def each(aux):
        at = 0
        for update, n in updates:
            update(*aux[at:at + n])
            at += n
    return each


def _fusable(m):
    return getattr(m, "fusable", False) is True


def _unhooked(m):
    return getattr(m, "_module_hooks", None) is None


def plan(modules, fusable=_fusable):
    """The modules in order, with each run of two or more fusable ones replaced by a Chain
    (Sequential's plan; a chain whose member has hooks splits with `fusable=_unhooked`)."""
    steps, run = [], []
    for m in list(modules) + [None]:
        if m is not None and fusable(m):
            run.append(m)
            continue
        steps += [Chain(run)] if len(run) > 1 else run
        run = []
        if m is not None:
            steps.append(m)
    return steps
