"""Grad mode: whether ops record a graph (`no_grad`, `enable_grad`, `set_grad_enabled`)."""
import functools

__all__ = ["set_grad_enabled", "no_grad", "enable_grad", "is_grad_enabled"]

_enabled = True  # read by the recording of every op (tensor.apply): use is_grad_enabled()


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

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return fn(*args, **kwargs)
        return wrapper


class no_grad(set_grad_enabled):
    """Nothing computed inside records a graph (context manager or decorator), as in PyTorch."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Turn graph recording back on inside a `no_grad` block."""

    def __init__(self):
        super().__init__(True)


def is_grad_enabled():
    return _enabled


