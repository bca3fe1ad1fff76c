"""The Tensor, and how an op is recorded on its output.

A Tensor wraps a numpy array. An op whose inputs require grad records itself on its output
(`_op`, `_parents`, the input arrays and the op's parameters); the walk (walk.py) goes back
through those records. `backward` is installed by walk.py, `register_hook` by hooks.py, the
in-place methods (`add_`, `x += y`, ...) by inplace.py; the operators, the op methods and
`clone` by ops/ (autograd imports no ops).
"""
import itertools
import operator

import numpy as np

from . import grad_mode as _gm

__all__ = ["Tensor", "tensor", "as_tensor", "from_numpy", "apply", "attach", "node", "Size"]

_FLOAT_KINDS = "f"  # gradients exist for real floating point dtypes only


def _to_array(data, dtype):
    """A new array of data's values (a copy, as torch.tensor makes: an in-place change of the
    tensor never reaches the caller's array)."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        arr = np.array(data, dtype=dtype)
    else:  # python scalars, lists: floats default to float32, as in PyTorch
        arr = np.asarray(data, dtype=dtype)
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(np.float32)
    return arr


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    `.data` is the numpy array; `.grad` is filled by `backward()` for leaves that require grad.
    `Tensor(data)` copies data's values, as `tg.tensor` does (`tg.as_tensor` shares memory).
    """

    __array_ufunc__ = None  # numpy defers to our reflected operators: ndarray * Tensor -> Tensor
    __array_priority__ = 1000

    # class-level defaults keep op outputs cheap: a result that needs no graph sets only `data`
    _grad = None        # .grad (the engine writes this slot directly, unchecked)
    requires_grad = False
    _op = None          # the Op that produced this tensor (None for leaves)
    _parents = None     # the op's inputs (Tensors or constants) as passed
    _raw = None         # the same inputs as arrays, for an ordinary backward
    _kw = None          # the op's parameters (axis, shape, ...)
    _g = None           # gradient being accumulated during a backward
    _retains_grad = False
    _hooks = None       # gradient hooks (register_hook, hooks.py): HookDict
    _at_node = False    # the walk hands this node's gradient out: hooks or retain_grad
    _seq = 0
    _need = ()          # positions of the parents that require grad
    _walk = None        # stamp of the last graph walk that visited this node
    name = None

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _to_array(data, dtype)
        if requires_grad:
            self.requires_grad_(True)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"only floating point tensors can require gradients, "
                            f"got dtype {self.data.dtype} (shape {self.data.shape}); "
                            f"convert with .astype(np.float32) or .astype(np.float64) first")
        if not requires_grad and self._op is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    # ---- array-like attributes
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        """numpy's `size` (the number of elements, an int) that is also PyTorch's `size()`: the
        shape, and `size(dim)` one axis's length."""
        return Size(self.data.size, self.data.shape)

    def _set_grad(self, value):
        """`.grad = value`: None, or a Tensor of this tensor's shape and dtype (as in PyTorch)."""
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(value).__name__}")
            if value is self:
                raise RuntimeError("can't assign a tensor as its own grad")
            if value.data.shape != self.data.shape:
                raise RuntimeError(f"assigned grad has data of a different size: grad shape "
                                   f"{value.data.shape}, tensor shape {self.data.shape}")
            if value.data.dtype != self.data.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: grad dtype "
                                   f"{value.data.dtype}, tensor dtype {self.data.dtype}")
        self._grad = value

    # the getter is a C callable: reading .grad costs no Python frame
    grad = property(operator.attrgetter("_grad"), _set_grad, doc=(
        "The gradient accumulated by `backward()` (a Tensor of this shape and dtype), or None."))

    @property
    def is_leaf(self):
        return self._op is None

    @property
    def grad_fn(self):
        return self._op

    def numel(self):
        return self.data.size

    def dim(self):
        return self.data.ndim

    def numpy(self):
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only a tensor with one element can be converted to a "
                             f"Python scalar, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self):
        """The same data, cut from the graph (shares memory, as in PyTorch)."""
        return Tensor._wrap(self.data)

    def retain_grad(self):
        """Keep `.grad` on this non-leaf tensor after backward."""
        self._retains_grad = self._at_node = True

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    __hash__ = object.__hash__  # == is elementwise, identity stays hashable

    def __getstate__(self):
        """A copy or pickle leaves the gradient hooks behind (as torch's deepcopy)."""
        state = self.__dict__
        if "_hooks" in state:
            state = {k: v for k, v in state.items() if k not in ("_hooks", "_at_node")}
            if state.get("_retains_grad"):
                state["_at_node"] = True
        return state

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4,
                               threshold=50, edgeitems=3)
        extra = ""
        if self.data.dtype != np.float32:
            extra += f", dtype={self.data.dtype}"
        if self._op is not None:
            extra += f", grad_fn={self._op.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    @staticmethod
    def _wrap(data):
        """A new leaf around an existing ndarray, with no checks (internal fast path)."""
        t = _new_tensor(Tensor)
        t.data = data
        return t


class Size(int):
    """An int (numpy's `x.size`, the number of elements) that, called, is PyTorch's
    `x.size()`: `x.size()` the shape (a tuple), `x.size(dim)` the length of one axis."""

    def __new__(cls, n, shape):
        self = super().__new__(cls, n)
        self.shape = shape
        return self

    def __call__(self, dim=None):
        if dim is None:
            return self.shape
        nd = len(self.shape)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"size(): dim must be an int, got {type(dim).__name__}")
        if not -max(nd, 1) <= dim < max(nd, 1) or nd == 0:
            raise IndexError(f"size(): dimension out of range (expected to be in range of "
                             f"[{-nd}, {nd - 1}], but got {dim})")
        return self.shape[dim]

    def __reduce__(self):  # copies and pickles are plain ints
        return int, (int(self),)


_new_tensor = object.__new__
_next_seq = itertools.count().__next__  # creation order of recorded nodes = a topological order


def tensor(data, requires_grad=False, dtype=None):
    """Create a leaf Tensor holding a copy of `data` (as torch.tensor does). Python floats/lists
    become float32; numpy arrays keep their dtype."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data, dtype=None):
    """`data` as a Tensor without a copy where possible (torch.as_tensor): a Tensor of that
    dtype is returned as it is, a numpy array of that dtype is shared (an in-place change of the
    tensor changes the array); anything else is converted as by `tg.tensor`."""
    if isinstance(data, Tensor):
        return data if dtype is None or np.dtype(dtype) == data.dtype else data.astype(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype):
        return Tensor._wrap(data)
    return Tensor(data, dtype=dtype)


def from_numpy(array):
    """A Tensor sharing the memory of numpy array `array`, in its dtype (torch.from_numpy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(array).__name__})")
    return Tensor._wrap(array)


# ------------------------------------------------------------------------------------------------
# recording ops
def apply(op, args, kw):
    """Run `op` on its inputs' arrays and, if any input requires grad, record it on the output."""
    raw = []
    need = None  # positions of the inputs that require grad
    i = 0
    for a in args:
        if isinstance(a, Tensor):
            raw.append(a.data)
            if a.requires_grad:
                if need is None:
                    need = [i]
                else:
                    need.append(i)
        else:
            raw.append(a)
        i += 1
    try:
        out = op.forward(*raw, **kw) if kw else op.forward(*raw)
    except Exception as e:
        raise _op_error(op, args, e) from e
    if out.__class__ is not np.ndarray:
        out = np.asarray(out)
    t = _new_tensor(Tensor)
    t.data = out
    if need is not None and _gm._enabled and out.dtype.kind == "f":
        t.requires_grad = True
        t._op = op
        t._parents = args
        t._raw = raw
        t._kw = kw
        t._need = need
        t._seq = _next_seq()
    if _tracer is not None:
        _tracer(op, args, kw, t)
    return t


_tracer = None  # set by a tracer (compile/trace.py) while it records a function's ops


def attach(op, args, out):
    """Wrap an already-computed output, recording `op` if needed (used by custom Functions)."""
    out = np.asarray(out)
    if _gm._enabled and any(isinstance(a, Tensor) and a.requires_grad for a in args):
        return node(op, args, [a.data if isinstance(a, Tensor) else a for a in args],
                    [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad],
                    out)
    return Tensor._wrap(out)


def node(op, parents, raw, need, out):
    """A graph node: `out` produced by `op` from `parents` (their arrays `raw`), whose inputs at
    positions `need` require grad."""
    t = _new_tensor(Tensor)
    t.data = out
    t.requires_grad = True
    t._op = op
    t._parents = parents
    t._raw = raw
    t._kw = {}
    t._need = need
    t._seq = _next_seq()
    return t


def _describe(a):
    if isinstance(a, Tensor):
        return f"Tensor shape {a.shape} {a.dtype}"
    if isinstance(a, np.ndarray):
        return f"ndarray shape {a.shape} {a.dtype}"
    return f"{type(a).__name__} {a!r}" if np.isscalar(a) or a is None else type(a).__name__


def _op_error(op, args, e):
    """Re-raise an op's failure with the op's name and its operands' shapes and dtypes."""
    operands = ", ".join(_describe(a) for a in args)
    msg = f"{op.name}: {e} [operands: {operands}]"
    try:
        return type(e)(msg)
    except Exception:
        return RuntimeError(msg)


