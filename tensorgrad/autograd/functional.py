"""torch.autograd.functional: jacobian, hessian, vjp, jvp, hvp and vhp of a function of Tensors.

Each runs `func` on detached copies of its inputs (the caller's tensors are left alone; under
create_graph an input that requires grad is cloned instead, so the results stay differentiable
with respect to it) and differentiates with `grad`. A Jacobian takes one reverse pass per output
element (strategy="forward-mode": one jvp per input element); a jvp is the double-vjp trick (the
vjp u -> J^T u is linear in u, so its own vjp with v is J v); a Hessian is the Jacobian of the
gradient. Signatures, return structures and errors follow PyTorch; messages name the function.
"""
import numpy as np

from .grad_mode import enable_grad, is_grad_enabled, set_grad_enabled
from .registry import graph_namespace
from .tensor import Tensor
from .walk import grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]

_OUTPUTS = "outputs of the user-provided function"


# ---- arguments ----------------------------------------------------------------------------------
def _as_tuple(x, arg, fn):
    """(whether x was a tuple, x's Tensors as a tuple); TypeError naming fn and arg otherwise."""
    is_tuple = isinstance(x, tuple)
    items = x if is_tuple else (x,)
    for i, el in enumerate(items):
        if not isinstance(el, Tensor):
            which = f"the value at index {i}" if is_tuple else f"the given {arg}"
            raise TypeError(f"{fn}: the {arg} must be either a Tensor or a tuple of Tensors but "
                            f"{which} has type {type(el).__name__}")
    return is_tuple, items


def _prepare(tensors, create_graph, need_graph, fn, arg):
    """The tensors func (or the vjps) will see: torch's _grad_preprocess. A clone (still in the
    caller's graph) for a tensor that requires grad under create_graph, else a detached leaf
    sharing its memory that requires grad when `need_graph`."""
    out = []
    for i, t in enumerate(tensors):
        if create_graph and t.requires_grad:
            out.append(t.clone())
            continue
        if need_graph and t.dtype.kind != "f":
            raise TypeError(f"{fn}: {arg} {i} has dtype {t.dtype} (shape {t.shape}): only "
                            f"floating point tensors can be differentiated")
        leaf = Tensor._wrap(t.data)
        leaf.requires_grad = need_graph
        out.append(leaf)
    return tuple(out)


def _vector(v, others, is_tuple, create_graph, fn, what):
    """The user's v, checked against the tensors it pairs with (`what`: "output" or "input")."""
    v = _prepare(_as_tuple(v, "v", fn)[1], create_graph, False, fn, "v")
    if len(v) != len(others):
        if is_tuple:
            raise RuntimeError(f"{fn}: v is a tuple of invalid length: should be {len(others)} "
                               f"(one per {what}) but got {len(v)}")
        raise RuntimeError(f"{fn}: the given v should contain a single Tensor (the {what} is "
                           f"one Tensor) but got {len(v)}")
    for i, (el, other) in enumerate(zip(v, others)):
        if el.shape != other.shape:
            entry = f"entry {i} in v" if is_tuple else "v"
            raise RuntimeError(f"{fn}: {entry} has invalid shape: should be {other.shape} (the "
                               f"shape of {what} {i}) but got {el.shape}")
    return v


def _no_vector(tensors, fn, what):
    """v=None is allowed for a single one-element input or output only, as in torch."""
    if len(tensors) != 1 or tensors[0].numel() != 1:
        shapes = ", ".join(str(t.shape) for t in tensors)
        raise RuntimeError(f"{fn}: v can only be None if the {what} is a single Tensor with a "
                           f"single element; got shapes {shapes}")


def _call(func, inputs, fn):
    """func(*inputs) as (whether it returned a tuple, its Tensors)."""
    return _as_tuple(func(*inputs), _OUTPUTS, fn)


def _single_output(func, inputs, strict, fn):
    """func(*inputs), which must be one Tensor of one element (hessian, hvp, vhp)."""
    is_tuple, outputs = _call(func, inputs, fn)
    _check_requires_grad(outputs, "outputs", strict, fn)
    if is_tuple:
        raise RuntimeError(f"{fn}: the function should return a single Tensor, not a tuple of "
                           f"{len(outputs)}")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"{fn}: the Tensor returned by the function should contain a single "
                           f"element, got shape {outputs[0].shape}")
    return outputs


def _check_strategy(strategy, arg, fn):
    if strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError(f'{fn}: {arg} must be "forward-mode" or "reverse-mode", got '
                         f'{strategy!r}')


# ---- strict mode and results --------------------------------------------------------------------
_NOT_REQUIRING = {
    "outputs": "output {i} of the user-provided function does not require gradients. The "
               "outputs must be computed in a differentiable manner from the input when "
               "running in strict mode.",
    "grad_inputs": "the gradient with respect to input {i} is independent of the inputs of the "
                   "user-provided function. This is not allowed in strict mode.",
    "jacobian": "while computing the hessian, found that the jacobian of the user-provided "
                "function with respect to input {i} is independent of the input. This is not "
                "allowed in strict mode. You should ensure that your function is twice "
                "differentiable and that the jacobian depends on the inputs (this would be "
                "violated by a linear function for example).",
}


def _check_requires_grad(tensors, kind, strict, fn):
    """In strict mode, each of `tensors` must exist and require grad (torch's messages)."""
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(f"{fn}: the output of the user-provided function is independent "
                               f"of input {i}. This is not allowed in strict mode.")
        if not t.requires_grad:
            raise RuntimeError(f"{fn}: " + _NOT_REQUIRING[kind].format(i=i))


_INDEPENDENT = {
    "back": "the output of the user-provided function is independent of input {i}",
    "back_trick": "the gradient with respect to the input is independent of entry {i} in the "
                  "grad_outputs when using the double backward trick to compute forward mode "
                  "gradients",
    "double_back": "the jacobian of the user-provided function is independent of input {i}",
    "double_back_trick": "the hessian of the user-provided function is independent of entry {i} "
                         "in the grad_jacobian",
}


def _fill_in_zeros(grads, refs, strict, create_graph, stage, fn):
    """Zeros (of refs[i]'s shape and dtype) for the None gradients; errors in strict mode."""
    out = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(f"{fn}: " + _INDEPENDENT[stage].format(i=i) +
                                   ". This is not allowed in strict mode.")
            g = _zeros(refs[i].shape, refs[i].dtype)
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if stage.startswith("double") else "jacobian"
            raise RuntimeError(f"{fn}: the {what} of the user-provided function is independent "
                               f"of input {i}. This is not allowed in strict mode when "
                               f"create_graph=True.")
        out.append(g)
    return tuple(out)


def _zeros(shape, dtype, requires_grad=False):
    t = Tensor._wrap(np.zeros(shape, dtype))
    t.requires_grad = requires_grad
    return t


def _grads(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """grad of the outputs that require grad (None for every input when none does), with
    allow_unused: torch's _autograd_grad."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    return grad([o for o, _ in pairs], list(inputs), [g for _, g in pairs],
                retain_graph=retain_graph, create_graph=create_graph, allow_unused=True)


def _detach(x, create_graph):
    """Results as returned: cut from the graph unless create_graph (nested tuples kept)."""
    if isinstance(x, tuple):
        return tuple(_detach(el, create_graph) for el in x)
    return x if create_graph else x.detach()


def _unpack(res, tuples):
    """Undo the tuples the arguments were wrapped in: `tuples` is whether the (outer, inner)
    levels were tuples, or one bool for a single level (torch's _tuple_postprocess)."""
    if isinstance(tuples, tuple):
        if not tuples[1]:
            res = tuple(el[0] for el in res)
        if not tuples[0]:
            res = res[0]
    elif not tuples:
        res = res[0]
    return res


def _one_hot(shape, dtype, k):
    e = np.zeros(shape, dtype)
    e.reshape(-1)[k] = 1
    return e


def _assemble(pieces, lead, shape, dtype, create_graph):
    """The Jacobian block of shape lead + shape from its rows (each of shape `shape`; or, moved
    last, its columns: see _jacobian_forward)."""
    if not pieces:
        return _zeros(lead + shape, dtype)
    if create_graph:
        return graph_namespace().stack(pieces).reshape(lead + shape)
    return Tensor._wrap(np.stack([p.data for p in pieces]).reshape(lead + shape))


# ---- the functions ------------------------------------------------------------------------------
def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product of func at inputs.

    v has the outputs' structure and shapes (None only for a single one-element output); the
    product has the inputs' structure. create_graph: the results are differentiable; strict:
    an output independent of an input raises instead of giving zeros.
    """
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _prepare(inputs, create_graph, True, "vjp", "input")
        is_outputs_tuple, outputs = _call(func, inputs, "vjp")
        _check_requires_grad(outputs, "outputs", strict, "vjp")
        if v is not None:
            v = _vector(v, outputs, is_outputs_tuple, create_graph, "vjp", "output")
        else:
            _no_vector(outputs, "vjp", "output of the function")
    with set_grad_enabled(create_graph or is_grad_enabled()):
        res = _grads(outputs, inputs, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, "back", "vjp")
    return (_unpack(_detach(outputs, create_graph), is_outputs_tuple),
            _unpack(_detach(res, create_graph), is_inputs_tuple))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product, by the double-vjp trick.

    v has the inputs' structure and shapes (None only for a single one-element input); the
    product has the outputs' structure.
    """
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _prepare(inputs, create_graph, True, "jvp", "input")
        if v is not None:
            v = _vector(v, inputs, is_inputs_tuple, create_graph, "jvp", "input")
        else:
            _no_vector(inputs, "jvp", "input")
        is_outputs_tuple, outputs = _call(func, inputs, "jvp")
        _check_requires_grad(outputs, "outputs", strict, "jvp")
        us = tuple(_zeros(o.shape, o.dtype, requires_grad=True) for o in outputs)
        grad_inputs = _grads(outputs, inputs, us, create_graph=True)  # J^T u, linear in u
        _check_requires_grad(grad_inputs, "grad_inputs", strict, "jvp")
    with set_grad_enabled(create_graph or is_grad_enabled()):
        res = _grads(grad_inputs, us, v, create_graph=create_graph)
        res = _fill_in_zeros(res, outputs, strict, create_graph, "back_trick", "jvp")
    return (_unpack(_detach(outputs, create_graph), is_outputs_tuple),
            _unpack(_detach(res, create_graph), is_outputs_tuple))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of func at inputs: for output i and input j a Tensor of shape
    outputs[i].shape + inputs[j].shape, in input j's dtype; a tuple over the inputs when they
    are a tuple, over the outputs when func returns one (then a tuple of tuples).

    strategy="reverse-mode" takes one backward per output element, "forward-mode" one jvp
    per input element (fewer when the outputs have more elements than the inputs). vectorize
    is accepted for PyTorch's signature: the rows are computed one at a time either way.
    """
    return _jacobian(func, inputs, create_graph, strict, vectorize, strategy, "jacobian")


def _jacobian(func, inputs, create_graph, strict, vectorize, strategy, fn):
    _check_strategy(strategy, "strategy" if fn == "jacobian" else "outer_jacobian_strategy", fn)
    if strategy == "forward-mode":
        if strict:
            raise RuntimeError(f'{fn}: strict=True and strategy="forward-mode" are not '
                               f'supported together: set strict=False or '
                               f'strategy="reverse-mode"')
        if create_graph:
            raise NotImplementedError(f'{fn}: create_graph=True and strategy="forward-mode" '
                                      f'are not supported together: set create_graph=False or '
                                      f'strategy="reverse-mode"')
        return _jacobian_forward(func, inputs, fn)
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn)
        inputs = _prepare(inputs, create_graph, True, fn, "input")
        is_outputs_tuple, outputs = _call(func, inputs, fn)
        _check_requires_grad(outputs, "outputs", strict, fn)
        if vectorize and strict:
            raise RuntimeError(f"{fn}: strict=True and vectorize=True are not supported "
                               f"together: set strict=False or vectorize=False")
        jac = []
        for i, out in enumerate(outputs):
            rows = tuple([] for _ in inputs)
            for k in range(out.numel() if out.requires_grad else 0):
                seed = _one_hot(out.shape, out.dtype, k)
                vj = _grads((out,), inputs, (seed,), create_graph, retain_graph=True)
                for j, g in enumerate(vj):
                    if g is None:
                        if strict:
                            raise RuntimeError(f"{fn}: output {i} of the user-provided function "
                                               f"is independent of input {j}. This is not "
                                               f"allowed in strict mode.")
                        g = _zeros(inputs[j].shape, inputs[j].dtype)
                    elif strict and create_graph and not g.requires_grad:
                        raise RuntimeError(f"{fn}: the jacobian of the user-provided function "
                                           f"is independent of input {j}. This is not allowed "
                                           f"in strict mode when create_graph=True.")
                    rows[j].append(g)
            jac.append(tuple(_assemble(rows[j], out.shape, x.shape, x.dtype, create_graph)
                             for j, x in enumerate(inputs)))
    return _unpack(_detach(tuple(jac), create_graph), (is_outputs_tuple, is_inputs_tuple))


def _jacobian_forward(func, inputs, fn):
    """The Jacobian column by column: one jvp (double-vjp trick) per input element, all
    sharing one forward and one first backward."""
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn)
        inputs = _prepare(inputs, False, True, fn, "input")
        is_outputs_tuple, outputs = _call(func, inputs, fn)
        us = tuple(_zeros(o.shape, o.dtype, requires_grad=True) for o in outputs)
        grad_inputs = _grads(outputs, inputs, us, create_graph=True)  # J^T u, linear in u
        cols = [[[] for _ in inputs] for _ in outputs]
        for j, (x, g_in) in enumerate(zip(inputs, grad_inputs)):
            for k in range(x.numel()):
                jv = (None,) * len(outputs) if g_in is None else \
                    _grads((g_in,), us, (_one_hot(x.shape, x.dtype, k),), retain_graph=True)
                for i, (out, c) in enumerate(zip(outputs, jv)):
                    cols[i][j].append(_zeros(out.shape, x.dtype) if c is None else c)
    jac = []
    for i, out in enumerate(outputs):
        blocks = []
        for j, x in enumerate(inputs):  # columns first, then moved after the output axes
            block = _assemble(cols[i][j], x.shape, out.shape, x.dtype, False).data
            block = np.moveaxis(block.reshape((x.numel(),) + out.shape), 0, -1)
            blocks.append(Tensor._wrap(np.array(block.reshape(out.shape + x.shape), x.dtype,
                                                order="C")))
        jac.append(tuple(blocks))
    return _unpack(tuple(jac), (is_outputs_tuple, is_inputs_tuple))


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a function with a single one-element output: the Jacobian of its
    gradient. For inputs i and j a Tensor of shape inputs[i].shape + inputs[j].shape; a tuple
    of tuples when the inputs are a tuple."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    _check_strategy(outer_jacobian_strategy, "outer_jacobian_strategy", "hessian")

    def scalar(*inp):
        return _single_output(func, inp, strict, "hessian")[0].reshape(())

    def gradient(*inp):
        jac = _jacobian(scalar, inp, True, False, False, "reverse-mode", "hessian")
        _check_requires_grad(jac, "jacobian", strict, "hessian")
        return jac

    res = _jacobian(gradient, inputs, create_graph, strict, vectorize, outer_jacobian_strategy,
                    "hessian")
    return _unpack(res, (is_inputs_tuple, is_inputs_tuple))


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H): the vector-Hessian product of a function with a single
    one-element output; v and the product have the inputs' structure and shapes."""
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v): the Hessian-vector product, by the double-vjp trick (H v and
    v^T H agree for a twice continuously differentiable function: vhp is cheaper)."""
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


def _hessian_product(func, inputs, v, create_graph, strict, fn):
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn)
        inputs = _prepare(inputs, create_graph, True, fn, "input")
        if v is not None:
            v = _vector(v, inputs, is_inputs_tuple, create_graph, fn, "input")
        else:
            _no_vector(inputs, fn, "input")
        outputs = _single_output(func, inputs, strict, fn)
        jac = _grads(outputs, inputs, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict, fn)
        if fn == "hvp":  # differentiate u -> H^T u (linear in u) with v: H v
            us = tuple(_zeros(x.shape, x.dtype, requires_grad=True) for x in inputs)
            back, wrt, stage = _grads(jac, inputs, us, create_graph=True), us, "double_back_trick"
        else:
            back, wrt, stage = jac, inputs, "double_back"
    with set_grad_enabled(create_graph or is_grad_enabled()):
        res = _grads(back, wrt, v, create_graph=create_graph)
        res = _fill_in_zeros(res, inputs, strict, create_graph, stage, fn)
    return (_unpack(_detach(outputs, create_graph), False),
            _unpack(_detach(res, create_graph), is_inputs_tuple))
