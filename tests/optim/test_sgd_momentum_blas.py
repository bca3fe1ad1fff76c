"""SGD's momentum update of a large parameter in BLAS passes (fast path `momentum_axpby`):
buf <- momentum * buf + (1 - dampening) * (g + weight_decay * p) without the direction array,
proven equal to reference mode's plain numpy update step by step, within 4 ulp of its terms."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.compile import blas
from tensorgrad.optim import SGD

SHAPE = (512, 1024)  # a Linear weight (out, in) stored (in, out): 2 MB of float32, one BLAS pass


def _param(rng, dtype):
    p = tg.Tensor(np.asarray(rng.standard_normal(SHAPE[::-1]), dtype=dtype).T,
                  requires_grad=True)
    assert p.data.flags.f_contiguous and p.data.size >= blas.LARGE
    return p


def _step(p, opt, grad, buf, fast):
    """One step from the given state (parameter value, momentum buffer, gradient)."""
    p.grad = tg.Tensor(grad.copy(order="K"))
    opt.state[p] = {"momentum_buffer": buf.copy(order="K")}
    with tg.fast_mode(fast):
        opt.step()
    return p.data.copy(order="K"), opt.state[p]["momentum_buffer"].copy(order="K")


@pytest.mark.skipif(not blas.HAVE_BLAS, reason="numpy's OpenBLAS not found")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dampening, weight_decay, nesterov", [
    (0.0, 5e-4, False), (0.3, 5e-4, False), (0.0, 0.0, False), (0.0, 5e-4, True)])
def test_large_momentum_update_is_the_reference_update_within_4_ulp(dtype, dampening,
                                                                   weight_decay, nesterov):
    rng = np.random.default_rng(0)
    p = _param(rng, dtype)
    lr, m = 0.05, 0.9
    opt = SGD([p], lr=lr, momentum=m, dampening=dampening, weight_decay=weight_decay,
              nesterov=nesterov)
    start = p.data.copy(order="K")
    for t in range(3):
        grad = np.asarray(rng.standard_normal(SHAPE[::-1]), dtype=dtype).T
        buf = np.asarray(rng.standard_normal(SHAPE[::-1]), dtype=dtype).T
        grad[0, :5] = -(weight_decay * start[0, :5] + m / (1 - dampening) * buf[0, :5])
        tg.fast_paths(reset=True)
        p.data[...] = start
        fast_p, fast_buf = _step(p, opt, grad, buf, True)
        assert tg.fast_paths()["momentum_axpby"].hits == 1
        p.data[...] = start
        ref_p, ref_buf = _step(p, opt, grad, buf, False)
        assert tg.fast_paths()["momentum_axpby"].hits == 1  # none in reference mode
        d = (1 - dampening) * grad
        terms = np.abs(m * buf) + np.abs(d) + np.abs((1 - dampening) * weight_decay * start)
        assert np.all(np.abs(fast_buf - ref_buf) <= 4 * np.spacing(terms.astype(dtype)))
        step = lr * (np.abs(ref_buf) + (np.abs(d) + m * np.abs(ref_buf) if nesterov else 0))
        bound = 4 * np.spacing(np.maximum(np.abs(start), step).astype(dtype)) + \
            lr * np.abs(fast_buf - ref_buf) * (1 + m * nesterov)
        assert np.all(np.abs(fast_p - ref_p) <= bound)
        assert fast_p.flags.f_contiguous and fast_buf.flags.f_contiguous
        start = ref_p


@pytest.mark.skipif(not blas.HAVE_BLAS, reason="numpy's OpenBLAS not found")
def test_momentum_weight_decay_trains_like_reference_mode_in_float64():
    """Ten steps of momentum and weight decay on a large weight: fast and reference mode end
    within rounding of each other."""
    rng = np.random.default_rng(1)
    target = rng.standard_normal(SHAPE)
    results = []
    for fast in (True, False):
        p = _param(np.random.default_rng(2), np.float64)
        opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
        with tg.fast_mode(fast):
            for _ in range(10):
                opt.zero_grad()
                ((p - tg.Tensor(target)) ** 2).mean().backward()
                opt.step()
        results.append(p.data)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-14)


def test_small_parameters_keep_numpys_update_bit_for_bit():
    """Below one BLAS pass the buffer update is numpy's own buf *= m; buf += g: the same calls
    as reference mode, so the same bits."""
    rng = np.random.default_rng(3)
    out = []
    for fast in (True, False):
        p = tg.Tensor(rng.standard_normal((20, 30)).astype(np.float32), requires_grad=True)
        p.data[...] = np.arange(600, dtype=np.float32).reshape(20, 30) / 7
        opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4)
        with tg.fast_mode(fast):
            for t in range(3):
                p.grad = tg.Tensor(np.full((20, 30), 0.1 * (t + 1), np.float32))
                opt.step()
        out.append((p.data.tobytes(), opt.state[p]["momentum_buffer"].tobytes()))
    assert out[0] == out[1]
