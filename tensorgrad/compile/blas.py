"""`axpy(a, x, y)`: y += a * x in place, and `axpby(a, x, b, y)`: y = a * x + b * y (SGD's
momentum buffer), each in one pass for large arrays, through the BLAS numpy itself is linked to
(its OpenBLAS, so the same thread pool as its matrix products).

numpy needs a temporary and two passes for y += a * x. On the large arrays of a training step
(a 3072 x 50 weight and its gradient) each pass costs, and the arrays were just written by the
BLAS threads of a matrix product. Calling numpy's own BLAS matters: scipy's BLAS brings a second
OpenBLAS thread pool whose idle threads spin against numpy's. Where that library is not found
(a numpy built on another BLAS), or for small arrays or mixed dtypes, numpy's two passes are used;
also with one BLAS thread on arrays that fit a core's cache (a rule measured inside training
steps, where the arrays were just written by a product's threads). Beyond the cache (LARGE)
the one pass wins on one thread too, so arrays that large take it whatever the thread count
(and their new bits do not depend on it).
Timings: docs/performance.md (`python -m benchmarks.micro --only axpy`).
"""
import ctypes
import glob
import os

import numpy as np

__all__ = ["axpy", "axpby", "one_pass", "two_pass", "HAVE_BLAS"]

BIG = 1 << 14  # elements; below this the ctypes call costs more than the pass it saves
LARGE = 1 << 19  # elements (2 MB of float32, a core's L2 cache): one BLAS pass on any threads


def _load():
    here = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(here, "libscipy_openblas*"))):
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: the same library and thread pool
        except OSError:
            continue
        found = {"axpy": {}, "axpby": {}}
        for name, ctype in (("s", ctypes.c_float), ("d", ctypes.c_double)):
            for routine, scalars in (("axpy", [ctype]), ("axpby", [ctype, ctype])):
                for symbol, int_t in ((f"scipy_cblas_{name}{routine}64_", ctypes.c_int64),
                                      (f"scipy_cblas_{name}{routine}", ctypes.c_int)):
                    fn = getattr(lib, symbol, None)
                    if fn is not None:  # (n, a, x, incx, y, incy); axpby: (n, a, x, incx, b, ...)
                        fn.restype = None
                        fn.argtypes = [int_t, ctype, ctypes.c_void_p, int_t] + scalars[1:] + \
                            [ctypes.c_void_p, int_t]
                        found[routine][np.dtype(ctype)] = fn
                        break
        if found["axpy"]:
            for symbol in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads"):
                threads = getattr(lib, symbol, None)
                if threads is not None:
                    threads.restype = ctypes.c_int
                    return found["axpy"], found["axpby"], threads
    return {}, {}, None


_AXPY, _AXPBY, _threads = _load()
HAVE_BLAS = bool(_AXPY)


def _large_enough(n):
    """Whether n elements are worth one BLAS pass rather than numpy's two (see the docstring)."""
    return n >= LARGE or (n >= BIG and _threads() > 1)


def one_pass(y):
    """Whether `axpy` and `axpby` update `y` in one BLAS pass (when x has y's dtype), rather
    than with numpy's two: large enough, and the library found."""
    return _large_enough(y.size) and y.dtype in _AXPY and y.dtype in _AXPBY and \
        y.flags.writeable


def axpy(a, x, y):
    """y += a * x in place (x of y's shape or broadcasting to it); one BLAS pass when possible.

    The new bits of y depend on the values, the dtype, the size and the number of BLAS threads,
    never on the memory layouts: the BLAS pass computes each element as one fused multiply-add
    wherever it sits, so x is first brought to y's memory order (a copy, only when they differ)
    and a strided y is updated through a contiguous copy, rather than falling back to numpy's
    two roundings. A checkpoint restored in another order cannot change a training run."""
    n = y.size
    fn = _AXPY.get(y.dtype) if _large_enough(n) else None
    if fn is not None and x.dtype == y.dtype and y.flags.writeable:
        _blas_pass(fn, n, (a,), x, (), y)
    else:
        two_pass(a, x, y)


def two_pass(a, x, y):
    """y += a * x as numpy computes it (a temporary, two passes): axpy's fallback, and what the
    optimizers and the backward call with the axpy fast path off (tensorgrad/mode.py)."""
    if a == 1.0:
        y += x
    elif a == -1.0:
        y -= x
    else:
        y += a * x


def axpby(a, x, b, y):
    """y = a * x + b * y in place (x of y's shape or broadcasting to it), in one BLAS pass when
    `one_pass(y)` and x has y's dtype; else numpy's `y *= b` then `y += a * x`. Memory layouts
    never change the new bits (see `axpy`)."""
    fn = _AXPBY.get(y.dtype)
    if fn is not None and x.dtype == y.dtype and one_pass(y):
        _blas_pass(fn, y.size, (a,), x, (b,), y)
    else:
        y *= b
        axpy(a, x, y)


def _blas_pass(fn, n, before_x, x, after_x, y):
    """fn(n, *before_x, x, 1, *after_x, y, 1): one BLAS pass (axpy, axpby), on x in y's memory
    order and on a contiguous y."""
    flags = y.flags
    order = "C" if flags.c_contiguous else "F" if flags.f_contiguous else None
    target = y if order is not None else np.array(y, order="C")  # strided: through a copy
    order = order or "C"
    if x.shape != y.shape:
        x = np.broadcast_to(x, y.shape)
    if not (x.flags.c_contiguous if order == "C" else x.flags.f_contiguous):
        x = np.array(x, order=order)
    fn(n, *before_x, _address(x), 1, *after_x, _address(target), 1)
    if target is not y:
        y[...] = target


def _address(a):
    """The data pointer of a contiguous array: through ctypes' buffer view of it (cheaper than
    building a.ctypes), or a.ctypes.data when numpy does not lend it as writable."""
    try:
        return ctypes.addressof(ctypes.c_byte.from_buffer(a if a.flags.c_contiguous else a.T))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data
