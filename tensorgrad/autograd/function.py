"""How an operation is defined: `Op` for the built-in primitives, `Function` for users' custom ops.

A primitive pairs a forward on numpy arrays with one vector-Jacobian product per input, written
once against an array namespace `xp`: plain numpy in an ordinary backward, tensorgrad itself under
`create_graph=True`, so every gradient is itself differentiable at no cost to first-order speed.
"""
import numpy as np

from . import grad_mode as _gm
from . import tensor as _t
from .registry import register

__all__ = ["Op", "Function", "FunctionCtx"]

_NOKW = {}  # shared empty parameter dict (never mutated)


def passthrough(xp, g, out, *inputs, **params):
    """The vjp of an input the output passes on unchanged (a + b for a and b, a bias): `g`
    itself. Fused programs see this function and skip the call."""
    return g


class Op:
    """A differentiable primitive: `forward(*arrays, **params)` and its vjps.

    Each vjp has the signature ``vjp(xp, g, out, *inputs, **params)`` and returns the gradient for
    its input (any shape that broadcasts to the input: the engine sums it back). `out` is the
    op's output and `inputs` its inputs: arrays in an ordinary backward, Tensors under
    create_graph. With ``variadic=True`` there is a single vjp that also receives ``argnum=i``.

    ``method=True`` (or a method name, or a tuple of them) registers the op as a public op with
    that Tensor method, ``public=True`` without one (registry.py): tensorgrad.ops,
    `DIFFERENTIABLE`, the Tensor methods and the array namespaces all come from the registry.
    Without either the op is internal (a public wrapper registers itself instead).

    ``elementwise=True`` promises that the vjps are correct for any `g` that merely broadcasts
    to the output's shape: the engine then hands them the compact gradient a reduction produced
    (a scalar for `loss.sum()`) instead of materialising it, which saves full-size passes.
    """

    __slots__ = ("name", "forward", "vjps", "variadic", "elementwise", "fresh", "vjp_all")

    def __init__(self, name, forward, *vjps, variadic=False, elementwise=False, fresh=None,
                 vjp_all=None, method=False, public=False):
        self.name = name
        self.forward = forward
        self.vjps = vjps
        self.variadic = variadic
        self.elementwise = elementwise
        # the vjps return arrays nothing else holds (or the incoming gradient itself, or a view
        # of it): a leaf may keep them as its .grad. True for the built-in ops and fused ones;
        # not for a custom Function, whose backward may return any array.
        self.fresh = forward is not None if fresh is None else fresh
        # optionally vjp_all(xp, g, out, inputs, retain_graph) -> every input's gradient in one
        # call (a fused node computes them together); the engine then calls it once instead of
        # the vjps. retain_graph False: no later backward goes through this node, so what the op
        # saved may be freed as it goes. In an ordinary backward its gradients must already have
        # their input's shape and dtype and be arrays nothing else holds (views of such
        # allowed), or lazy xp.Scaled products: a leaf keeps them as they are.
        self.vjp_all = vjp_all
        if method or public:
            register(self, method=method)

    def __call__(self, *args, **params):
        return _t.apply(self, args, params or _NOKW)

    def __repr__(self):
        return f"Op({self.name})"


class FunctionCtx:
    """The `ctx` of a custom Function: stash what backward needs (`save_for_backward`)."""

    def __init__(self):
        self.saved_tensors = ()
        self.needs_input_grad = ()

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


class Function:
    """Base class for custom differentiable ops, used like `torch.autograd.Function`.

    Subclass it with static methods ``forward(ctx, *inputs)`` (inputs arrive as Tensors, computed
    without recording a graph; return a Tensor or an array) and ``backward(ctx, grad_output)``
    (return one gradient per input, None where there is none: a floating point gradient of the
    input's shape, or of a larger shape the input broadcasts to, which is summed down as in
    PyTorch; any other shape or dtype raises). Call it as ``MyOp.apply(*inputs)``.
    Under `create_graph`, backward runs with grad recording on, so if it is written with Tensor ops
    the custom op supports higher-order derivatives too.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define backward(ctx, grad_output)")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, _t.Tensor) and a.requires_grad for a in args)
        wrapped = [_t.Tensor(a) if _is_array(a) else a for a in args]
        with _gm.no_grad():
            out = cls.forward(ctx, *wrapped)
        out = out.data if isinstance(out, _t.Tensor) else out
        op = Op(cls.__name__, None, _function_vjp(cls, ctx, len(args)), variadic=True)
        return _t.attach(op, args, out)


def _is_array(a):
    return hasattr(a, "__array__") and not isinstance(a, _t.Tensor)


def _function_vjp(cls, ctx, n_inputs):
    """Adapt a Function's all-inputs backward to the engine's per-input vjp calls (run once),
    checking each gradient against its input (see _fit_gradient)."""
    cache = [None, None]  # [the grad_output last seen, the gradients backward returned for it]

    def vjp(xp, g, out, *inputs, argnum):
        if cache[0] is not g:
            create_graph = isinstance(g, _t.Tensor)
            g_t = g if create_graph else _t.Tensor(g)
            with _gm.set_grad_enabled(create_graph):
                grads = cls.backward(ctx, g_t)
            if not isinstance(grads, tuple):
                grads = (grads,)
            if len(grads) != n_inputs:
                raise RuntimeError(f"{cls.__name__}.backward returned {len(grads)} gradients "
                                   f"for {n_inputs} inputs")
            cache[:] = [g, grads]
        gi = cache[1][argnum]
        if gi is None:
            raise RuntimeError(f"{cls.__name__}.backward returned None for input {argnum}, "
                               f"which requires grad")
        if isinstance(g, _t.Tensor):
            gi = gi if isinstance(gi, _t.Tensor) else _t.Tensor(gi)
        else:  # a copy: backward may return an array it keeps (a saved tensor), and a leaf
            # keeps what it is given (the walk adds the L2 term's lazy gradient into it in place)
            gi = np.array(gi.data if isinstance(gi, _t.Tensor) else gi)
        return _fit_gradient(xp, cls, argnum, gi, inputs[argnum])

    return vjp


def _fit_gradient(xp, cls, i, gi, x):
    """The gradient `gi` a Function's backward returned for its input `x` (arrays, or Tensors
    under create_graph), as PyTorch takes it: a floating point array of x's shape, or of a larger
    shape x broadcasts to (then summed down to x's); anything else raises. The engine casts a
    float of another precision to x's dtype."""
    if gi.dtype.kind != "f":
        raise RuntimeError(f"Function {cls.__name__}.backward returned an invalid gradient at "
                           f"index {i} - got dtype {gi.dtype} but expected a floating point "
                           f"gradient for input {i} (dtype {x.dtype}, shape {x.shape})")
    if gi.shape != x.shape:
        try:
            expands = np.broadcast_shapes(x.shape, gi.shape) == gi.shape
        except ValueError:
            expands = False
        if not expands:
            raise RuntimeError(f"Function {cls.__name__}.backward returned an invalid gradient "
                               f"at index {i} - got {gi.shape} but expected shape compatible "
                               f"with {x.shape} (input {i}'s shape, or a larger one it "
                               f"broadcasts to)")
        gi = xp.sum_to(gi, x.shape)
    return gi
