"""Grad mode: whether ops record a graph (`no_grad`, `enable_grad`, `set_grad_enabled`,
`inference_mode`)."""
import functools

__all__ = ["set_grad_enabled", "no_grad", "enable_grad", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled"]

_enabled = True  # read by the recording of every op (tensor.apply): use is_grad_enabled()
_inference = False  # inside an inference_mode block (no recording is all it changes)


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, mode):
        self.mode = bool(mode)
        self.prev = []

    def __enter__(self):
        global _enabled
        self.prev.append(_enabled)
        _enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _enabled
        _enabled = self.prev.pop()
        return False

    def _fresh(self):
        """A new manager of the same kind and mode (each call of a decorated function enters
        its own, so recursion and threads do not share one stack)."""
        return set_grad_enabled(self.mode)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self._fresh():
                return fn(*args, **kwargs)
        return wrapper


class _BareDecorator:
    """`@no_grad` as well as `@no_grad()` and `with no_grad():`, as PyTorch allows: called on a
    function, the class returns the decorated function."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        if not callable(orig_func):
            raise TypeError(f"{cls.__name__}() takes no arguments (or a function to decorate), "
                            f"got {orig_func!r}")
        return cls()(orig_func)


class no_grad(_BareDecorator, set_grad_enabled):
    """Nothing computed inside records a graph (context manager, or decorator with or without
    parentheses), as in PyTorch."""

    def __init__(self, orig_func=None):
        set_grad_enabled.__init__(self, False)

    def _fresh(self):
        return no_grad()


class enable_grad(_BareDecorator, set_grad_enabled):
    """Turn graph recording back on inside a `no_grad` block."""

    def __init__(self, orig_func=None):
        set_grad_enabled.__init__(self, True)

    def _fresh(self):
        return enable_grad()


class inference_mode(set_grad_enabled):
    """PyTorch's inference mode, which here is exactly `no_grad` (context manager, or decorator
    with or without parentheses). `inference_mode(False)` turns recording on, as PyTorch's does.
    PyTorch's inference tensors (refused later by autograd) have no counterpart: a tensor made
    inside is an ordinary tensor that records nothing."""

    def __new__(cls, mode=True):
        if isinstance(mode, bool):
            return super().__new__(cls)
        if not callable(mode):
            raise TypeError(f"inference_mode: mode must be a bool (or a function to decorate), "
                            f"got {mode!r}")
        return cls()(mode)

    def __init__(self, mode=True):
        super().__init__(not mode)
        self.inference = bool(mode)
        self.prev_inference = []

    def __enter__(self):
        global _inference
        self.prev_inference.append(_inference)
        _inference = self.inference
        return super().__enter__()

    def __exit__(self, *exc):
        global _inference
        _inference = self.prev_inference.pop()
        return super().__exit__(*exc)

    def _fresh(self):
        return inference_mode(self.inference)


def is_grad_enabled():
    return _enabled


def is_inference_mode_enabled():
    """True inside an `inference_mode()` block."""
    return _inference
