"""tensorgrad.compile.blas.axpy: y += a * x in place, for every size, layout and dtype pair."""
import contextlib
import ctypes
import glob
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensorgrad.compile import blas
from tensorgrad.compile.blas import BIG, HAVE_BLAS, axpy
from tensorgrad.testing import shapes


@given(shape=shapes(), dtype=st.sampled_from([np.float32, np.float64]),
       a=st.floats(-2, 2), layout=st.sampled_from(["c", "transposed", "broadcast"]))
def test_axpy_matches_numpy_in_place(shape, dtype, a, layout):
    rng = np.random.default_rng(0)
    y = rng.standard_normal(shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    if layout == "transposed" and y.ndim >= 2:
        y = np.ascontiguousarray(y.T).T  # same shape, not C-contiguous: numpy fallback
    if layout == "broadcast":
        x = np.broadcast_to(x.reshape(-1)[:1].reshape((1,) * len(shape)), shape)
    expected = y + dtype(a) * x
    before = y
    axpy(a, x, y)
    assert y is before  # updated in place
    np.testing.assert_allclose(y, expected, rtol=1e-6 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)


def test_axpy_mixed_dtypes_fall_back_to_numpy():
    y = np.ones(4, np.float32)
    axpy(0.5, np.arange(4, dtype=np.float64), y)
    np.testing.assert_array_equal(y, np.array([1, 1.5, 2, 2.5], np.float32))


def _openblas_set_threads():
    """numpy's own OpenBLAS `set_num_threads` (what `compile.blas` calls), or None."""
    here = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(here, "libscipy_openblas*"))):
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.argtypes, fn.restype = [ctypes.c_int], None
                return fn
    return None


@contextlib.contextmanager
def blas_threads(n):
    """numpy's OpenBLAS with n threads inside the block (the process-wide setting put back)."""
    set_threads = _openblas_set_threads()
    if not HAVE_BLAS or set_threads is None:
        pytest.skip("numpy's OpenBLAS (and its thread control) not found")
    before = blas._threads()
    set_threads(n)
    try:
        yield
    finally:
        set_threads(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("threads", [1, 2])
def test_axpy_on_large_arrays_matches_numpy(dtype, order, threads):
    with blas_threads(threads):
        _large_axpy_matches_numpy(dtype, order)


def _large_axpy_matches_numpy(dtype, order):
    rng = np.random.default_rng(1)
    shape = (BIG // 50 + 7, 50)  # above the size where numpy's BLAS is called
    y = np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)
    x = np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)
    expected = y - 0.25 * x
    before = y
    axpy(-0.25, x, y)
    assert y is before
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    other = np.asarray(x, order="F" if order == "C" else "C")  # other layout: numpy fallback
    axpy(0.25, other, y)
    np.testing.assert_allclose(y, expected + 0.25 * x, rtol=1e-6, atol=1e-6)


def test_numpy_blas_is_found_on_pip_numpy():
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                  "libscipy_openblas*"))
    assert HAVE_BLAS == bool(libs)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("writeable", [True, False])
def test_address_is_the_arrays_data_pointer(order, writeable):
    a = np.asarray(np.arange(12.0).reshape(3, 4), order=order)
    a.flags.writeable = writeable
    assert blas._address(a) == a.ctypes.data



def _layouts(a):
    """Copies of `a` in C order, in Fortran order and as a strided (non-contiguous) view."""
    strided = np.empty((a.shape[0], 2 * a.shape[1]), a.dtype)[:, ::2]
    strided[...] = a
    return {"C": np.array(a, order="C"), "F": np.array(a, order="F"), "strided": strided}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_axpy_bits_do_not_depend_on_memory_layout(dtype, threads):
    """The new bits of y depend on the values only, never on the operands' memory orders (C,
    Fortran, strided, broadcast): a checkpoint that comes back in another order than the live
    arrays cannot change a training run."""
    with blas_threads(threads):
        _bits_do_not_depend_on_memory_layout(dtype)


def _bits_do_not_depend_on_memory_layout(dtype):
    rng = np.random.default_rng(2)
    shape = (BIG // 50 + 7, 50)
    y0 = rng.standard_normal(shape).astype(dtype)
    for x0, broadcast in ((rng.standard_normal(shape).astype(dtype), None),
                          (np.repeat(rng.standard_normal((1, 50)).astype(dtype), shape[0], 0),
                           "broadcast")):
        xs = _layouts(x0)
        if broadcast:
            xs[broadcast] = np.broadcast_to(x0[:1], shape)
        expected = None
        for ny in ("C", "F", "strided"):
            for nx, x in xs.items():
                y = _layouts(y0)[ny]
                axpy(-0.3, x, y)
                expected = y.tobytes() if expected is None else expected
                assert y.tobytes() == expected, (ny, nx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axpy_beyond_the_cache_takes_the_blas_pass_on_one_thread(dtype, monkeypatch):
    """With one BLAS thread, numpy's two passes stay for arrays that fit a core's cache (the
    3-layer network's 3072 x 50 weight), and arrays beyond it (the best MLP's 3072 x 1024 weight)
    take the one BLAS pass (0.5 vs 1.2 ms)."""
    calls = []
    real = blas._AXPY[np.dtype(dtype)] if HAVE_BLAS else None

    def spy(n, *args):
        calls.append(n)
        return real(n, *args)
    with blas_threads(1):
        monkeypatch.setitem(blas._AXPY, np.dtype(dtype), spy)
        for n in (BIG, 3072 * 50, 3072 * 1024):
            y, x = np.ones(n, dtype), np.full(n, 2.0, dtype)
            axpy(0.5, x, y)
            np.testing.assert_array_equal(y, np.full(n, 2.0, dtype))
    assert calls == [3072 * 1024]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_axpy_bits_do_not_depend_on_the_blas_thread_count(dtype):
    """A weight beyond the cache is updated with the same bits on one thread as on two."""
    rng = np.random.default_rng(3)
    x, y0 = rng.standard_normal((2, 3072 * 1024 + 5)).astype(dtype)
    results = []
    for threads in (1, 2):
        with blas_threads(threads):
            y = y0.copy()
            axpy(-0.37, x, y)
            results.append(y.tobytes())
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_axpy_is_the_plain_two_pass_update_within_rounding(dtype):
    """The one BLAS pass (one rounding per element, a fused multiply-add) against numpy's
    y + a * x (two roundings): within 4 ulp of the larger of |y| and |a x| in every element."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(3072 * 1024).astype(dtype)
    y = rng.standard_normal(3072 * 1024).astype(dtype)
    y[:100] = -0.5 * x[:100]  # exact cancellation
    a = dtype(0.5)
    plain = y + a * x
    scale = np.maximum(np.abs(y), np.abs(a * x))
    axpy(0.5, x, y)
    assert np.all(np.abs(y - plain) <= 4 * np.spacing(scale))


def _axpby_bound(a, x, b, y):
    """4 ulp of |a x| + |b y|: the one BLAS pass and numpy's y *= b; y += a * x round their
    terms differently, never by more than that."""
    return 4 * np.spacing(np.abs(a * x) + np.abs(b * y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("n", [100, BIG // 50 + 7, 3072 * 1024 // 50])
@pytest.mark.parametrize("threads", [1, 2])
def test_axpby_is_numpys_scale_then_add_within_4_ulp(dtype, order, n, threads):
    rng = np.random.default_rng(5)
    y = np.asarray(rng.standard_normal((n, 50)), dtype=dtype, order=order)
    x = np.asarray(rng.standard_normal((n, 50)), dtype=dtype, order=order)
    x[:3] = y[:3] * dtype(0.9)  # cancellation: a x = -b y
    a, b = -1.0, 0.9
    plain = y * dtype(b)
    plain += dtype(a) * x
    bound = _axpby_bound(dtype(a), x, dtype(b), y)
    before = y
    with blas_threads(threads):
        small = not blas.one_pass(y)
        blas.axpby(a, x, b, y)
    assert y is before  # in place
    if small:  # numpy's own two passes: the same calls, the same bits
        assert y.tobytes() == plain.tobytes()
    assert np.all(np.abs(y - plain) <= bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axpby_bits_do_not_depend_on_memory_layout(dtype):
    rng = np.random.default_rng(6)
    shape = (3072 * 1024 // 50, 50)  # one BLAS pass on any thread count
    y0, x0 = rng.standard_normal((2,) + shape).astype(dtype)
    expected = None
    for ny in ("C", "F", "strided"):
        for nx, x in _layouts(x0).items():
            y = _layouts(y0)[ny]
            blas.axpby(0.7, x, 0.9, y)
            got = np.ascontiguousarray(y).tobytes()
            expected = got if expected is None else expected
            assert got == expected, (ny, nx)
