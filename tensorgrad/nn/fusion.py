"""Run a chain of standard layers (Linear, BatchNorm1d, activations) as one fused graph node.

`nn.Sequential` hands every run of two or more such layers to a `Chain`: their functional forms
are composed and traced by `compile.fuse`, so a hidden block of the k-layer MLP (Linear ->
BatchNorm1d -> ReLU) is one node with one compiled forward and backward instead of three nodes,
three module calls and their bookkeeping (measured: 85 vs 140 us forward + backward per block at
batch 100). The maths is unchanged: gradients are still derived from the traced ops.

A layer joins a chain when its exact class is registered here (`fusable`) with a method
`_fused_part()` returning (function, tensors, static parameters as (name, value) pairs,
after): `function(x, *tensors, **params)` is a pure composition of tensorgrad ops returning y,
or (y, *aux) when `after` is (callable, len(aux)[, batched]) that applies the layer's side
effects outside the trace (batch norm's running averages) from those aux arrays, where
`batched(modules)` may return one function doing it for several layers of the chain at once
(or None when it cannot); else after is None.
Subclasses run their own forward, never a chain. In reference mode (`tg.set_fast(False)`)
Sequential runs every layer on its own.
"""
from ..autograd import Tensor
from ..compile.fuse import fuse
from ..mode import HITS as _HITS
from .module import module_version

__all__ = ["fusable", "Chain", "plan"]

_FUSABLE = set()


def fusable(cls):
    """Class decorator: `cls` (exactly, not its subclasses) may run inside a fused chain."""
    _FUSABLE.add(cls)
    return cls


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


class _Spec(tuple):
    """A chain's static description (what fuse keys its traces on): hashed once, not per call."""

    def __hash__(self):
        h = self.__dict__.get("hash")
        if h is None:
            h = self.__dict__["hash"] = tuple.__hash__(self)
        return h


class Chain:
    """Consecutive fusable modules called as one fused function (see the module docstring).

    What the modules contribute (functions, tensors, static parameters, side effects) is asked
    once and reused until an attribute of any module is set (`module_version`): a 9-layer
    chain has 27 modules, and asking them on every call cost 15-20 us."""

    def __init__(self, modules):
        self.modules = list(modules)
        self.fused = fuse(_run)  # its own trace cache: one program per chain and input shape
        self._prepared = None  # (module_version, per-module forward?, spec, tensors, effects)

    def _prepare(self):
        if any("forward" in m.__dict__ for m in self.modules):  # set on an instance: honour it
            return True, None, None, None
        spec, tensors, afters = [], [], []
        for m in self.modules:
            fn, ts, params, after = m._fused_part()
            spec.append((fn, len(ts), params))
            tensors += ts
            if after is not None:
                afters.append(after)
        return False, _Spec(spec), tuple(tensors), _effects(afters)

    def __call__(self, x):
        prepared = self._prepared
        if prepared is None or prepared[0] != module_version[0]:
            prepared = self._prepared = (module_version[0], *self._prepare())
        _, each, spec, tensors, effects = prepared
        if each:
            for m in self.modules:
                x = m(x)
            return x
        if not isinstance(x, Tensor):
            x = Tensor(x)
        _HITS["fused_chain"] += 1
        out = self.fused.call_raw_aux((x,) + tensors, {"spec": spec})
        if effects is None:
            return out
        effects(out[1:])
        return out[0]


def _effects(afters):
    """One function applying the layers' side effects from the chain's aux outputs, or None:
    a `batched` updater for all of them when every layer offers the same one and it accepts
    these layers, else each layer's own `after` on its share of the aux tensors."""
    if not afters:
        return None
    batched = afters[0][2] if len(afters[0]) > 2 else None
    if batched is not None and all(a[2:] == (batched,) for a in afters):
        update = batched([a[0].__self__ for a in afters])
        if update is not None:
            return update
    counts = [n for _, n, *_ in afters]

    def each(aux):
        at = 0
        for (after, *_), n in zip(afters, counts):
            after(*aux[at:at + n])
            at += n
    return each


def plan(modules):
    """The modules in order, with each run of two or more fusable ones replaced by a Chain."""
    steps, run = [], []
    for m in list(modules) + [None]:
        if m is not None and type(m) in _FUSABLE:
            run.append(m)
            continue
        steps += [Chain(run)] if len(run) > 1 else run
        run = []
        if m is not None:
            steps.append(m)
    return steps
