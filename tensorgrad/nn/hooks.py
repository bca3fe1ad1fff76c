"""Module hooks with PyTorch's semantics: forward pre-hooks, forward hooks and full backward hooks.

A module with hooks keeps them in `_module_hooks` (None otherwise: `Module.__call__`'s one
check) and runs through `call`. A full backward hook sees the gradients with respect to the
module's positional inputs and outputs: as torch's BackwardHookFunction, the call passes its
inputs that require grad, and then its outputs, through an identity node each, and a gradient
hook (autograd/hooks.py) on those nodes reads their gradients. The identity nodes of one group
(inputs or outputs) are created one after the other, so when the walk takes the first of them,
every node created after it has been taken and the group's gradients are all complete: the
module's hooks run there, once per backward, and their replacements go to the group's nodes.
"""
import importlib
import weakref

from ..autograd import Op, Tensor
from ..autograd import hooks as _th
from ..autograd import tracing as _tracing
from ..autograd.function import passthrough
from ..autograd.grad_mode import is_grad_enabled

_t = importlib.import_module("..autograd.tensor", __package__)  # the module (its `_tracer`)

__all__ = ["ModuleHooks", "call"]

_identity = Op("backward_hook", lambda x: x, passthrough, elementwise=True)


class ModuleHooks:
    """A module's hooks by kind, each a HookDict (registration order). `emptied` runs when the
    last one of any kind is removed."""

    __slots__ = ("pre", "forward", "backward")

    def __init__(self, emptied):
        def check():
            if not (self.pre or self.forward or self.backward):
                emptied()
        self.pre, self.forward, self.backward = (_th.HookDict(check) for _ in range(3))


def call(module, args, kwargs):
    """`module(*args, **kwargs)` with its hooks: pre-hooks (may replace args), forward, forward
    hooks (may replace the output), and the backward hooks' identity nodes around it."""
    hooks = module._module_hooks
    if _t._tracer is not None:
        _tracing.callback(f"{type(module).__name__} has hooks (Python callbacks) and is called")
    for hook in list(hooks.pre.values()):
        new = hook(module, args)
        if new is not None:
            args = new if isinstance(new, tuple) else (new,)
    backward = None
    if hooks.backward and is_grad_enabled():
        backward = _Backward(module, list(hooks.backward.values()))
        args = backward.wrap_inputs(args)
    out = module.forward(*args, **kwargs)
    for hook in list(hooks.forward.values()):
        new = hook(module, args, out)
        if new is not None:
            out = new
    if backward is not None:
        out = backward.wrap_outputs(out)
    return out


class _Group:
    """Identity nodes created one after the other; `done(grads)` runs when the walk takes the
    first of them with the gradients of all (None where one gets none) and may return
    replacements. Once per backward: the nodes it saw holding a gradient are skipped after.
    It holds its nodes weakly (their hooks hold it)."""

    def __init__(self, nodes, done):
        self.nodes, self.done, self.skip = [weakref.ref(n) for n in nodes], done, set()
        for i, node in enumerate(nodes):
            node.register_hook(lambda g, i=i: self.at(i, g))

    def at(self, i, g):
        if i in self.skip:
            self.skip.discard(i)
            return None
        nodes = [ref() for ref in self.nodes]
        grads = [g if j == i else None if n is None else _grad(n) for j, n in enumerate(nodes)]
        self.skip = {j for j, gj in enumerate(grads) if gj is not None and j != i}
        new = self.done(grads)
        if new is None:
            return None
        for j in self.skip:
            _th.set_pending(nodes[j], _raw(new[j], nodes[j]))
        return new[i] if new[i] is not None else _zeros(nodes[i], like=g)


def _grad(node):
    g = _th.pending(node)
    if g is None or isinstance(g, Tensor):
        return g
    return Tensor._wrap(g.copy())


def _raw(g, node):
    """A replacement as the walk holds it: an array, or a Tensor under create_graph."""
    if g is None:
        g = _zeros(node, like=node._g)
    return g if isinstance(node._g, Tensor) else g.data.copy()


def _zeros(node, like):
    """No gradient for `node` (a None replacement): zeros, as the walk cannot drop it."""
    return like * 0 if isinstance(like, Tensor) else Tensor._wrap(node.data * 0)


class _Backward:
    """One call's backward hooks: the identity nodes of its inputs and outputs (see the module
    docstring). The hooks run at the inputs' group, or at the outputs' when no input requires
    grad (grad_input all None then, as torch)."""

    def __init__(self, module, hooks):
        self.module, self.hooks = module, hooks
        self.n_args, self.positions, self.grad_output = 0, [], None
        self.n_out, self.out_positions = 1, []

    @staticmethod
    def _wrap(values, positions, at):
        """Each Tensor of `values` that requires grad replaced by an identity node (in place),
        its position noted; `at` runs when the gradients of all of them are complete."""
        nodes = []
        for k, v in enumerate(values):
            if isinstance(v, Tensor) and v.requires_grad:
                values[k] = _identity(v)
                positions.append(k)
                nodes.append(values[k])
        if nodes:
            _Group(nodes, at)

    def wrap_inputs(self, args):
        self.n_args = len(args)
        args = list(args)
        self._wrap(args, self.positions, self.at_inputs)
        return tuple(args)

    def wrap_outputs(self, out):
        single = isinstance(out, Tensor)
        outs = [out] if single else list(out) if isinstance(out, tuple) else None
        if outs is None:
            raise TypeError(f"{type(self.module).__name__}: a full backward hook needs the "
                            f"module to return a Tensor or a tuple, got {type(out).__name__}")
        self.n_out = len(outs)
        self._wrap(outs, self.out_positions, self.at_outputs)
        return outs[0] if single else tuple(outs)

    def at_outputs(self, grads):
        self.grad_output = _placed(self.n_out, self.out_positions, grads)
        if not self.positions:  # no input requires grad: the hooks run here
            self.run((None,) * self.n_args)
        return None

    def at_inputs(self, grads):
        new = self.run(_placed(self.n_args, self.positions, grads))
        return None if new is None else [new[k] for k in self.positions]

    def run(self, grad_input):
        """The module's backward hooks in order, each seeing the previous one's grad_input; the
        final one if any hook replaced it, else None."""
        grad_output = self.grad_output
        if grad_output is None:
            grad_output = (None,) * self.n_out
        self.grad_output = None
        replaced = False
        for hook in self.hooks:
            new = hook(self.module, grad_input, grad_output)
            if new is None:
                continue
            new = tuple(new) if isinstance(new, (tuple, list)) else (new,)
            if len(new) != len(grad_input):
                raise RuntimeError(f"{type(self.module).__name__}: backward hook returned an "
                                   f"invalid number of grad_input, got {len(new)}, but expected "
                                   f"{len(grad_input)}")
            for k, (g, old) in enumerate(zip(new, grad_input)):
                if g is not None and old is not None and (not isinstance(g, Tensor) or
                                                          g.shape != old.shape or
                                                          g.dtype != old.dtype):
                    raise RuntimeError(
                        f"{type(self.module).__name__}: backward hook returned, for grad_input "
                        f"{k}, {_what(g)} where the gradient has shape {old.shape} and dtype "
                        f"{old.dtype}")
            grad_input, replaced = new, True
        return grad_input if replaced else None


def _placed(n, positions, grads):
    """A tuple of n, grads[j] at positions[j] and None elsewhere (a group's gradients in the
    call's argument or output order)."""
    out = [None] * n
    for k, g in zip(positions, grads):
        out[k] = g
    return tuple(out)


def _what(g):
    return f"a Tensor of shape {g.shape} and dtype {g.dtype}" if isinstance(g, Tensor) else \
        type(g).__name__
