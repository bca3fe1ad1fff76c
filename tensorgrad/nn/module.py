"""`Module` and `Parameter` with PyTorch's conventions; the containers `Sequential`, `ModuleList`,
`ModuleDict` and `ParameterList`.

Assigning a Parameter or a Module to an attribute registers it; `register_buffer` adds state that
is saved but not trained (batch-norm running statistics). Registered objects also live in the
instance `__dict__`, so `self.weight` in a forward is an ordinary (fast) attribute lookup.

`state_dict()` maps dotted names to *copies* of the arrays (numpy ndarrays, unlike PyTorch's
tensors sharing storage), so a saved snapshot never changes when training continues. A module
holding other state (Dropout's random generator) returns it from `get_extra_state()`; it appears
in the state dict under `<name>._extra_state`, as in PyTorch.
"""
import weakref
from collections import OrderedDict, namedtuple

import numpy as np

from .. import mode as _mode
from ..autograd import Tensor
from ..autograd import hooks as _th
from ..compile.flat import SMALL, FlatParams
from . import hooks as _hooks
from .fusion import plan as _fusion_plan

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
_EXTRA = "_extra_state"


class Parameter(Tensor):
    """A Tensor that is a trainable parameter of a Module: it requires grad (float data only).

    Wraps the given array without copying (a Tensor's array is shared, as in PyTorch).
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        super().__init__(data)
        if self.data.dtype.kind != "f":
            raise TypeError(f"Parameter: data must be floating point, got dtype "
                            f"{self.data.dtype} (shape {self.data.shape})")
        self.requires_grad_(requires_grad)

    _flat = None  # the FlatParams whose array holds this parameter (Module.flatten_parameters)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


def _as_buffer(name, value):
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic, int, float, bool)):
        return Tensor(np.asarray(value))
    raise TypeError(f"buffer '{name}': expected a Tensor, an ndarray or None, "
                    f"got {type(value).__name__}")


def _as_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"to(): expected a floating dtype such as np.float32 or 'float64', got "
                        f"{dtype!r} (tensorgrad has no devices)") from None
    if dt.kind != "f":
        raise TypeError(f"to(): parameters must stay floating point, got dtype {dt}")
    return dt


class Module:
    """Base class of every layer and model: subclass it, assign sub-modules and Parameters as
    attributes in `__init__`, and define `forward`. Calling the module calls `forward`.

    `_version` counts the changes to this module's own attributes (assignment, deletion,
    registration, train()/eval(), flatten_parameters(), to()): what was computed from them (a
    fused chain's description of its layers, Sequential's plan) is valid while it holds."""

    training = True
    _version = 0
    _layout = 0  # counts registrations and removals here (Sequential re-plans its chains)

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["training"] = True
        d["_version"] = 0

    # ---- registration ---------------------------------------------------------------------------
    def _registries(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__})")
        return self._parameters, self._buffers, self._modules

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            params, buffers, modules = self._registries("parameters")
            self._forget(name, keep=params)
            params[name] = value
        elif isinstance(value, Module):
            params, buffers, modules = self._registries("modules")
            self._forget(name, keep=modules)
            modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' of "
                                f"{type(self).__name__} (a Parameter or None expected)")
            self._parameters[name] = None
            self._registered()
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' "
                                f"of {type(self).__name__} (a Module or None expected)")
            self._modules[name] = None
            self._registered()
        elif "_buffers" in self.__dict__ and name in self._buffers:
            value = _as_buffer(name, value)
            self._buffers[name] = value
        object.__setattr__(self, name, value)
        self._changed()

    def _changed(self):
        d = self.__dict__
        d["_version"] = d.get("_version", 0) + 1

    def _registered(self):
        """A parameter, buffer or sub-module was (re)registered or removed here."""
        d = self.__dict__
        d["_layout"] = d.get("_layout", 0) + 1
        self._changed()

    def _forget(self, name, keep=None):
        """Drop `name` from the registries (but `keep`, where re-assigning keeps its place)."""
        self._registered()
        for reg in (self._parameters, self._buffers, self._modules):
            if reg is not keep:
                reg.pop(name, None)
        if keep is not self._buffers:
            self._non_persistent.discard(name)

    def __delattr__(self, name):
        if "_parameters" in self.__dict__:
            self._forget(name)
        object.__delattr__(self, name)
        self._changed()

    def register_parameter(self, name, param):
        """Add a parameter (or None, a declared-but-absent parameter such as a missing bias)."""
        _check_name(self, name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter('{name}'): expected a Parameter or None, got "
                            f"{type(param).__name__}")
        self._registries("parameters")
        self._forget(name)
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer: state that is not trained (running statistics). Saved in the state dict
        unless persistent=False; converted by to()/double()/float() when floating point."""
        _check_name(self, name)
        self._registries("buffers")
        self._forget(name)
        tensor = _as_buffer(name, tensor)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name, module):
        """Register a child module under `name` (what attribute assignment does)."""
        _check_name(self, name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}'): expected a Module or None, got "
                            f"{type(module).__name__}")
        self._registries("modules")
        self._forget(name)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    # ---- traversal ------------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix=""):
        """(dotted name, module) for this module and every descendant, each once, depth first."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def memo(self, key, build):
        """`build(self)`, computed once and reused until a parameter, buffer or sub-module is
        registered, replaced or removed in this module's tree (per-step helpers such as the L2
        penalty walk the tree only when it changed). Each module of the tree counts its own
        registrations (`_layout`); the memo keeps the counts it was built at."""
        cache = self.__dict__.get("_memo")
        if cache is None or tuple(m.__dict__.get("_layout", 0) for m in cache[0]) != cache[1]:
            tree = tuple(self.modules())
            cache = (tree, tuple(m.__dict__.get("_layout", 0) for m in tree), {})
            object.__setattr__(self, "_memo", cache)
        value = cache[2].get(key)
        if value is None:
            value = cache[2][key] = build(self)
        return value

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse):
        seen = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in modules:
            for name, t in getattr(m, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) pairs in registration order, shared parameters once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call fn(module) on every child (recursively) then on self; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients --------------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (batch statistics, dropout active) on self and all descendants."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(): mode must be a bool, got {mode!r}")
        for m in self.modules():
            m.__dict__["training"] = mode
            m._changed()
        return self

    def eval(self):
        """Evaluation mode: batch norm uses its running statistics, dropout is the identity."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Turn gradient tracking of every parameter on or off (freeze a model); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: set `.grad` to None (PyTorch's default) or zero it in place."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.data[...] = 0

    # ---- dtype ----------------------------------------------------------------------------------
    def to(self, dtype):
        """Convert floating parameters and buffers (and their grads) to `dtype` in place.

        Parameter objects keep their identity, so an optimizer built before still holds them.
        """
        dt = _as_dtype(dtype)
        tensors = list(self.parameters()) + list(self.buffers())
        flat = {id(t._flat): t._flat.params for t in tensors
                if getattr(t, "_flat", None) is not None and t._flat.valid()}
        for p in self.parameters():
            p.data = p.data.astype(dt, copy=False)
            if p.grad is not None:
                p.grad = Tensor._wrap(p.grad.data.astype(dt, copy=False))
        for b in self.buffers():
            if b.data.dtype.kind == "f":
                b.data = b.data.astype(dt, copy=False)
        for params in flat.values():  # flattened parameters stay flat (in the new dtype)
            if any(p.data.base is not p._flat.data for p in params):
                FlatParams(params)
        for m in self.modules():  # fused chains plan their batch-norm updates anew
            m._changed()
        return self

    def flatten_parameters(self, max_size=SMALL, buffers=True):
        """Store the parameters of this module tree with at most `max_size` elements in one
        flat array per dtype, each `p.data` becoming a view of it (same shape, memory order and
        values), and likewise the buffers (batch norm's running statistics); returns self. SGD
        without momentum then updates the parameters in two numpy calls instead of a few per
        parameter (see compile/flat.py), and fused batch-norm layers update all their running
        statistics at once: on a 9-layer MLP, 34 small parameters and 24 buffers. Hold on to
        parameters and buffers, not to their old `.data` arrays."""
        groups = [list(self.parameters())] + ([list(self.buffers())] if buffers else [])
        for tensors in groups:
            by_dtype = {}
            for t in tensors:
                if t.data.size <= max_size:
                    by_dtype.setdefault(t.data.dtype, []).append(t)
            for same in by_dtype.values():
                if len(same) > 1:
                    FlatParams(same)
        for m in self.modules():  # fused chains plan their batch-norm updates anew
            m._changed()
        return self

    def double(self):
        """float64 parameters and buffers (for finite-difference gradient checks)."""
        return self.to(np.float64)

    def float(self):
        """float32 parameters and buffers (the default)."""
        return self.to(np.float32)

    # ---- state ----------------------------------------------------------------------------------
    def get_extra_state(self):
        """Extra state to save beside parameters and buffers; override together with
        set_extra_state (return an ndarray so the state dict can go to a .npz file)."""
        raise NotImplementedError

    def set_extra_state(self, state):
        raise NotImplementedError

    def _has_extra_state(self):
        return type(self).get_extra_state is not Module.get_extra_state

    def _state_entries(self):
        """(dotted key, owning module, kind, local name) for everything the state dict holds."""
        for prefix, m in self.named_modules():
            pre = f"{prefix}." if prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    yield pre + name, m, "parameter", name
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    yield pre + name, m, "buffer", name
            if m._has_extra_state():
                yield pre + _EXTRA, m, "extra", _EXTRA

    def state_dict(self, keep_vars=False):
        """OrderedDict of dotted name -> copy of the array, for parameters, persistent buffers and
        extra state (keep_vars=True gives the Parameter / buffer Tensors themselves). Copies keep
        each array's memory order, on which the rounding of some fast paths depends."""
        out = OrderedDict()
        for key, m, kind, name in self._state_entries():
            if kind == "extra":
                out[key] = m.get_extra_state()
            else:
                t = getattr(m, name)
                out[key] = t if keep_vars else t.data.copy(order="K")
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from `state_dict` into the parameters and buffers, in place.

        Values are cast to each parameter's dtype (as PyTorch's copy_). A shape mismatch is
        always an error; missing or unexpected keys are an error when strict, otherwise they
        are returned as (missing_keys, unexpected_keys). Nothing is changed if an error is raised.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a dict of name -> array, got "
                            f"{type(state_dict).__name__}")
        entries = list(self._state_entries())
        expected = {key for key, *_ in entries}
        missing = [key for key, *_ in entries if key not in state_dict]
        unexpected = [key for key in state_dict if key not in expected]
        errors = []
        if strict and unexpected:
            errors.append("unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
        if strict and missing:
            errors.append("missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        plan = []
        for key, m, kind, name in entries:
            if key not in state_dict:
                continue
            value = state_dict[key]
            if kind == "extra":
                plan.append((m, kind, name, value))
                continue
            arr = np.asarray(value.data if isinstance(value, Tensor) else value)
            target = getattr(m, name).data
            if arr.shape != target.shape:
                errors.append(f"size mismatch for '{key}': the state dict has shape {arr.shape}, "
                              f"the model has shape {target.shape}")
            elif not np.can_cast(arr.dtype, target.dtype, casting="same_kind"):
                errors.append(f"dtype mismatch for '{key}': cannot copy {arr.dtype} into "
                              f"{target.dtype}")
            else:
                plan.append((m, kind, name, arr))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for m, kind, name, value in plan:
            if kind == "extra":
                m.set_extra_state(value)
            else:
                np.copyto(getattr(m, name).data, value, casting="same_kind")
        return IncompatibleKeys(missing, unexpected)

    def save(self, path):
        """Write `state_dict()` to a .npz file at exactly `path` (see tensorgrad.save)."""
        from ..serialization import save
        save(self, path)

    def load(self, path, strict=True):
        """Load a state dict saved with `save` / tensorgrad.save into this module; returns self."""
        from ..serialization import load
        self.load_state_dict(load(path), strict=strict)
        return self

    def __getstate__(self):
        """The module's attributes without what it cached from them (a Layer's parts,
        Sequential's fused chains): a copy (deepcopy, pickle) builds its own on its first call."""
        state = self.__dict__.copy()
        state.pop("_fused_plan", None)
        state.pop("_parts", None)
        state.pop("_memo", None)
        state.pop("_module_hooks", None)
        return state

    # ---- calling and printing -------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    _module_hooks = None  # its hooks (nn/hooks.py); None without any: __call__'s one check

    def __call__(self, *args, **kwargs):
        if self._module_hooks is None:
            return self.forward(*args, **kwargs)
        return _hooks.call(self, args, kwargs)

    def _hook_dicts(self):
        """This module's ModuleHooks, made at the first registration. A module with hooks runs
        on its own, never inside a fused chain: registering the first and removing the last
        count as changes (`_version`), on which chains re-plan."""
        hooks = self.__dict__.get("_module_hooks")
        if hooks is None:
            ref = weakref.ref(self)

            def emptied():
                module = ref()
                if module is not None:
                    module.__dict__.pop("_module_hooks", None)
                    module._changed()
            hooks = self.__dict__["_module_hooks"] = _hooks.ModuleHooks(emptied)
            self._changed()
        return hooks

    def register_forward_pre_hook(self, hook, *, prepend=False):
        """`hook(module, args)` runs before each forward; it may return new args (a value that
        is not a tuple becomes a 1-tuple). Returns a handle whose `remove()` takes it out."""
        return _th.RemovableHandle(self._hook_dicts().pre, _callable(hook, "pre"), prepend)

    def register_forward_hook(self, hook, *, prepend=False):
        """`hook(module, args, output)` runs after each forward; it may return a new output.
        Returns a handle whose `remove()` takes it out."""
        return _th.RemovableHandle(self._hook_dicts().forward, _callable(hook, "forward"),
                                   prepend)

    def register_full_backward_hook(self, hook, *, prepend=False):
        """`hook(module, grad_input, grad_output)` runs once per backward through a call of this
        module, when the gradients with respect to its positional inputs (grad_input, None for
        one that does not require grad or is no Tensor) are complete; it may return a new
        grad_input tuple, which flows on instead. grad_output: the gradients of the outputs.
        Returns a handle whose `remove()` takes it out."""
        return _th.RemovableHandle(self._hook_dicts().backward, _callable(hook, "full_backward"),
                                   prepend)

    def extra_repr(self):
        """The text inside this module's parentheses in its repr (override in layers)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            body = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _callable(hook, kind):
    if not callable(hook):
        raise TypeError(f"register_{kind}_hook: expected a callable, got {type(hook).__name__}")
    return hook


def _check_name(module, name):
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"{type(module).__name__}: invalid name {name!r} (a non-empty string "
                       f"without '.')")
    if hasattr(type(module), name) and name not in module.__dict__:
        raise KeyError(f"{type(module).__name__}: name '{name}' is already a class attribute")


class Sequential(Module):
    """Modules applied in order: `Sequential(Linear(4, 3), ReLU())`; indexable, len, iter."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, "
                                    f"not a Module")
                self.add_module(str(i), m)

    fuse_layers = True  # run chains of standard layers as one fused node (nn/fusion.py)

    def forward(self, x):
        """Each module in turn; runs of standard layers as fused chains unless `fuse_layers`
        is False or with the fused_chain fast path off (tg.set_fast(False))."""
        if self.fuse_layers and (_mode.FAST or "fused_chain" not in _mode.OFF):
            steps = self.__dict__.get("_fused_plan")
            if steps is None or steps[0] != self._layout:  # a module was added or replaced
                steps = self.__dict__["_fused_plan"] = (self._layout,
                                                        _fusion_plan(self._modules.values()))
            steps = steps[1]
        else:
            steps = self._modules.values()
        for m in steps:
            x = m(x)
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(mods[idx]))
        return mods[_index(self, idx)][1]

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self


def _index(container, idx):
    n = len(container)
    if not isinstance(idx, (int, np.integer)):
        raise TypeError(f"{type(container).__name__} indices must be integers or slices, "
                        f"not {type(idx).__name__}")
    if not -n <= idx < n:
        raise IndexError(f"{type(container).__name__} index {idx} is out of range "
                         f"(length {n})")
    return int(idx) % n


class ModuleList(Module):
    """A list of sub-modules that registers them (so their parameters are found); no forward."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(mods[idx])
        return mods[_index(self, idx)]

    def __setitem__(self, idx, module):
        setattr(self, str(_index(self, idx)), module)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        mods = list(self._modules.values())
        mods.insert(index, module)
        for name in list(self._modules):
            self._forget(name)
            object.__delattr__(self, name)
        for m in mods:
            self.append(m)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(): iterate over it in yours")


class ModuleDict(Module):
    """Sub-modules by name, registered (state dict keys "name.param"), in insertion order; a
    dict's methods, no forward. `modules`: a mapping or an iterable of (name, module) pairs."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        if key not in self._modules:
            raise KeyError(key)
        delattr(self, key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def clear(self):
        for key in list(self._modules):
            del self[key]

    def update(self, modules):
        """Add (or replace) the modules of a mapping or of an iterable of (name, module)."""
        pairs = modules.items() if hasattr(modules, "items") else modules
        for i, pair in enumerate(pairs):
            if isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise ValueError(f"ModuleDict.update: element {i} should be a (name, module) "
                                 f"pair, got {pair!r}")
            self[pair[0]] = pair[1]

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(): call its modules in yours")


def _as_parameter(value, who):
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):  # torch wraps a plain tensor, sharing its data
        return Parameter(value.data)
    if isinstance(value, np.ndarray):
        return Parameter(value)
    raise TypeError(f"{who}: expected a Parameter, a Tensor or an ndarray, got "
                    f"{type(value).__name__}")


class ParameterList(Module):
    """A list of Parameters, registered under "0", "1", ... (their state dict keys); a Tensor
    or an ndarray added to it becomes a Parameter sharing its array, as in torch."""

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __getitem__(self, idx):
        params = list(self._parameters.values())
        if isinstance(idx, slice):
            return ParameterList(params[idx])
        return params[_index(self, idx)]

    def __setitem__(self, idx, value):
        setattr(self, str(_index(self, idx)), _as_parameter(value, "ParameterList"))

    def append(self, value):
        setattr(self, str(len(self)), _as_parameter(value, "ParameterList.append"))
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        return "\n".join(f"({name}): Parameter containing: [{p.dtype} of shape {p.shape}]"
                         for name, p in self._parameters.items())

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList has no forward(): use its parameters in yours")
