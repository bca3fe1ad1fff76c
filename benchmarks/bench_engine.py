"""Engine cost: tensorgrad forward+backward against the same computation written in numpy.

    python -m benchmarks.bench_engine [--repeats 2000]

Prints median times and ratios for (1) ((x @ w).relu().sum()) with x 100x3072 float32 (no grad)
and w 3072x50 (grad), against numpy's forward matmul + relu and dW = x.T @ mask; (2) the per-op
overhead of a small op (a * b on 100x50 arrays, forward + backward) beside numpy's own multiply.
"""
import argparse
import time

import numpy as np

import tensorgrad as tg


def median_us(fn, repeats, warmup=50):
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e6)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=2000)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((100, 3072), dtype=np.float32)
    w_np = rng.standard_normal((3072, 50), dtype=np.float32) * 0.02
    x, w = tg.tensor(x_np), tg.tensor(w_np, requires_grad=True)

    def tg_step():
        w.grad = None
        (x @ w).relu().sum().backward()

    def np_step():
        h = x_np @ w_np
        np.maximum(h, 0, out=h)
        h.sum()
        mask = (h > 0).astype(np.float32)
        return x_np.T @ mask

    tg_step()
    assert np.allclose(w.grad.data, np_step(), rtol=1e-4, atol=1e-3)
    t_tg, t_np = median_us(tg_step, args.repeats), median_us(np_step, args.repeats)
    print(f"relu(x @ w).sum() fwd+bwd: tensorgrad {t_tg:8.1f} us   numpy {t_np:8.1f} us   "
          f"ratio {t_tg / t_np:.3f}")

    a_np = rng.standard_normal((100, 50), dtype=np.float32)
    b_np = rng.standard_normal((100, 50), dtype=np.float32)
    a, b = tg.tensor(a_np, requires_grad=True), tg.tensor(b_np, requires_grad=True)
    ones = np.ones((100, 50), dtype=np.float32)

    def tg_mul():
        a.grad = b.grad = None
        (a * b).backward(ones)

    def np_mul():  # the same arithmetic: product, then both input gradients
        a_np * b_np
        ones * b_np
        ones * a_np

    t_tg, t_np = median_us(tg_mul, args.repeats), median_us(np_mul, args.repeats)
    t_one = median_us(lambda: a_np * b_np, args.repeats)
    print(f"a * b (100x50) fwd+bwd:    tensorgrad {t_tg:8.1f} us   numpy {t_np:8.1f} us   "
          f"overhead {t_tg - t_np:.1f} us   (one numpy multiply: {t_one:.1f} us)")


if __name__ == "__main__":
    main()
