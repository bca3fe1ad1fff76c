"""Hand-written numpy and PyTorch-eager baselines for the training-speed benchmark.

The benchmark times one epoch of the course's k-layer MLP (batch norm before ReLU on every hidden
layer, softmax cross-entropy, L2 on the weight matrices, plain SGD with a cyclical learning rate),
and the best MLP's shape also with SGD momentum and the weight decay in the optimizer instead.
tensorgrad is compared with two references written here: the fastest plain-numpy step a careful
person writes by hand (preallocated buffers, in-place ufuncs, BLAS with out=), and the same network
written the ordinary way in PyTorch eager on CPU.  `python -m benchmarks.baselines [--data DIR]`
times both and checks that they compute the same thing.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

THREE_LAYER = (3072, 50, 50, 10)
NINE_LAYER = (3072, 50, 30, 20, 20, 10, 10, 10, 10, 10)
BEST_MLP = (3072, 1024, 512, 256, 10)  # the best MLP's shape (experiments/best_mlp.py), batch 256


def numpy_blas_threads() -> int:
    """Number of threads numpy's OpenBLAS uses, asked from the loaded library itself; falls back
    to OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, then to the CPU count (OpenBLAS's default)."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*"))
    if os.path.exists("/proc/self/maps"):
        with open("/proc/self/maps") as maps:
            libs += sorted({line.split()[-1] for line in maps if ".so" in line})
    for path in (p for p in libs if "openblas" in os.path.basename(p).lower()):
        lib = ctypes.CDLL(path)  # already loaded by numpy: dlopen hands back the same library
        for name in ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                     "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, name):
                return int(getattr(lib, name)())
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def cyclic_lr(t: int, eta_min: float, eta_max: float, n_s: int) -> float:
    """Triangular cyclical learning rate at update t: eta_min -> eta_max in n_s updates and back."""
    if n_s < 1:
        raise ValueError(f"cyclic_lr: n_s must be a positive integer, got {n_s}")
    if t < 0:
        raise ValueError(f"cyclic_lr: update index t must be >= 0, got {t}")
    pos = t % (2 * n_s)  # position inside the current cycle
    rise = pos if pos <= n_s else 2 * n_s - pos
    return eta_min + (rise / n_s) * (eta_max - eta_min)


def time_updates(step_fn: Callable[[np.ndarray, np.ndarray, float], float], x: np.ndarray,
                 y: np.ndarray, batch_size: int, n_updates: int, warmup: int, *,
                 eta_min: float = 1e-5, eta_max: float = 1e-1, n_s: int = 2250, seed: int = 0,
                 losses: list[float] | None = None) -> np.ndarray:
    """Run warmup + n_updates calls step_fn(xb, yb, lr); return the last n_updates times in ms.

    Batches are consecutive slices of a permutation drawn from `seed` (a new one each epoch), so
    every framework sees the same batches in the same order; the gather into a reused contiguous
    buffer happens outside the timed region.  The learning rate follows cyclic_lr from t = 0
    (warmup updates included).  If `losses` is a list, every returned loss is appended to it.
    """
    if n_updates < 1 or warmup < 0:
        raise ValueError(f"time_updates: need n_updates >= 1 and warmup >= 0, "
                         f"got {n_updates} and {warmup}")
    times = list(timed_updates(step_fn, x, y, batch_size, warmup + n_updates, eta_min=eta_min,
                               eta_max=eta_max, n_s=n_s, seed=seed, losses=losses))
    return np.array(times[warmup:])


def timed_updates(step_fn: Callable[[np.ndarray, np.ndarray, float], float], x: np.ndarray,
                  y: np.ndarray, batch_size: int, n_updates: int, *, eta_min: float = 1e-5,
                  eta_max: float = 1e-1, n_s: int = 2250, seed: int = 0,
                  losses: list[float] | None = None) -> Iterator[float]:
    """The updates of time_updates one at a time: yields each update's time in ms, so several
    frameworks can take turns every few updates (see benchmarks/benchmark.py)."""
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"time_updates: need x (N, D) and y (N,), got {x.shape} and {y.shape}")
    n = x.shape[0]
    if not 1 <= batch_size <= n:
        raise ValueError(f"time_updates: batch_size {batch_size} not in [1, {n}]")
    if n_updates < 1:
        raise ValueError(f"time_updates: need n_updates >= 1, got {n_updates}")
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    xb = np.empty((batch_size, x.shape[1]), dtype=x.dtype)
    yb = np.empty(batch_size, dtype=y.dtype)
    perm = rng.permutation(n)
    for t in range(n_updates):
        j = t % per_epoch
        if j == 0 and t > 0:
            perm = rng.permutation(n)
        idx = perm[j * batch_size:(j + 1) * batch_size]
        np.take(x, idx, axis=0, out=xb)
        np.take(y, idx, out=yb)
        lr = cyclic_lr(t, eta_min, eta_max, n_s)
        start = time.perf_counter()
        loss = step_fn(xb, yb, lr)
        stop = time.perf_counter()
        if losses is not None:
            losses.append(float(loss))
        yield (stop - start) * 1e3


def _carve(flat: np.ndarray, shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Consecutive contiguous views of `flat` with the given shapes (flat must fit them exactly)."""
    views, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        views.append(flat[at:at + size].reshape(shape))
        at += size
    if at != flat.size:
        raise ValueError(f"_carve: shapes need {at} elements, flat array has {flat.size}")
    return views


def _vector_layout(sizes: Sequence[int]) -> list[tuple[int, ...]]:
    """Shapes of the per-layer vectors in their flat array: (beta, gamma, b) per hidden layer as
    one (3, d) block, (b,) for the last layer.  beta before gamma matches the order in which one
    matmul sums [g, g * s_c] in the batch-norm backward."""
    return [(3, d) for d in sizes[1:-1]] + [(sizes[-1],)]


class _Buffers:
    """Every intermediate array of one NumpyMLP training step for one batch size, allocated once."""

    def __init__(self, sizes: Sequence[int], n: int, dtype: np.dtype, momentum: float):
        outs, hidden = sizes[1:], sizes[1:-1]
        self.s = [np.empty((n, d), dtype) for d in outs]  # pre-activation, centred in BN layers
        self.h = [np.empty((n, d), dtype) for d in hidden]  # ReLU output
        # gx[k][0] is the gradient w.r.t. h_k then s_k; gx[k][1] holds g * s_c (and scratch).
        self.gx = [np.empty((2, n, d), dtype) for d in hidden]
        self.g_out = np.empty((n, outs[-1]), dtype)  # gradient w.r.t. the logits
        self.mask = [np.empty((n, d), bool) for d in hidden]
        self.istd = [np.empty(d, dtype) for d in hidden]
        self.scale = [np.empty(d, dtype) for d in hidden]  # gamma * istd
        self.scale_n = [np.empty(d, dtype) for d in hidden]  # gamma * istd / n
        self.u = [np.empty((2, 1, d), dtype) for d in hidden]
        # Steps (the lr-scaled negative gradients) laid out like the parameters they update.
        self.dw_flat = np.empty(sum(i * o for i, o in zip(sizes[:-1], outs)), dtype)
        self.dW = _carve(self.dw_flat, list(zip(sizes[:-1], outs)))
        self.dp_flat = np.empty(sum(3 * d for d in hidden) + outs[-1], dtype)
        blocks = _carve(self.dp_flat, _vector_layout(sizes))
        self.d_beta_gamma = [blk[:2].reshape(2, 1, -1) for blk in blocks[:-1]]
        self.db = [blk[2].reshape(1, -1) for blk in blocks[:-1]] + [blocks[-1].reshape(1, -1)]
        # Batch statistics [mean, var] per hidden layer, laid out like the running statistics.
        self.stats = np.empty(2 * sum(hidden), dtype)
        blocks = _carve(self.stats, [(2, d) for d in hidden])
        self.mean = [blk[0].reshape(1, -1) for blk in blocks]
        self.var = [blk[1].reshape(1, -1) for blk in blocks]
        self.stats_coef = np.empty_like(self.stats)
        for blk in _carve(self.stats_coef, [(2, d) for d in hidden]):
            blk[0], blk[1] = momentum, momentum * n / (n - 1)  # unbiased running variance
        self.stats_tmp = np.empty_like(self.stats)
        self.zero = np.zeros((), dtype)  # a 0-d array skips the scalar conversion on every call
        self.ones_row = np.ones((1, n), dtype)  # column sums as one small matmul
        self.avg_row = np.full((1, n), 1.0 / n, dtype)  # column means likewise
        self.zmax = np.empty((n, 1), dtype)
        self.zsum = np.empty((n, 1), dtype)
        self.row_start = np.arange(n, dtype=np.intp) * outs[-1]  # flat index of each row's start
        self.flat_idx = np.empty(n, np.intp)
        self.zy = np.empty(n, dtype)


class NumpyMLP:
    """The k-layer batch-norm MLP trained by hand in numpy: forward, backward and SGD in place.

    Weights are stored (fan_in, fan_out) so the forward is X @ W; every hidden layer is
    Linear -> BatchNorm (batch statistics, learnable gamma/beta, PyTorch's running-stat update
    with the unbiased variance) -> ReLU; the last layer is linear.  The loss is the mean softmax
    cross-entropy plus lam * sum ||W||^2 over the weight matrices.  All weight matrices are views
    of one flat array, and all vectors (b, gamma, beta) of another, so the SGD update and the L2
    term cost a few calls for the whole network; assign into them with `[...]`, never rebind.

    sgd_momentum > 0 moves the L2 term into the optimizer, as torch.optim.SGD(momentum=
    sgd_momentum, weight_decay=2 * lam) on the weight matrices (0 on the vectors) does: the loss
    is the cross-entropy alone, v <- sgd_momentum * v + (dL/dp + 2 lam W) and p <- p - lr * v.
    """

    def __init__(self, sizes: Sequence[int], lam: float = 0.005, seed: int = 0,
                 dtype: np.dtype | type = np.float32, momentum: float = 0.1, eps: float = 1e-5,
                 sgd_momentum: float = 0.0):
        sizes = tuple(int(d) for d in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"NumpyMLP: sizes must be >= 2 positive layer widths, got {sizes}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"NumpyMLP: dtype must be float32 or float64, got {self.dtype}")
        self.sizes, self.lam = sizes, float(lam)
        self.momentum, self.eps = float(momentum), float(eps)
        self.sgd_momentum = float(sgd_momentum)
        if not self.sgd_momentum >= 0.0:
            raise ValueError(f"NumpyMLP: sgd_momentum must be >= 0, got {sgd_momentum}")
        shapes = list(zip(sizes[:-1], sizes[1:]))
        self._w_flat = np.empty(sum(i * o for i, o in shapes), self.dtype)
        self.W = _carve(self._w_flat, shapes)
        rng = np.random.default_rng(seed)
        for W, (i, o) in zip(self.W, shapes):
            # He init drawn in float64 then cast, so float32 and float64 models share their start.
            W[...] = rng.standard_normal((i, o)) * np.sqrt(2.0 / i)
        self._p_flat = np.zeros(sum(3 * d for d in sizes[1:-1]) + sizes[-1], self.dtype)
        blocks = _carve(self._p_flat, _vector_layout(sizes))
        self.beta = [blk[0] for blk in blocks[:-1]]
        self.gamma = [blk[1] for blk in blocks[:-1]]
        self.b = [blk[2] for blk in blocks[:-1]] + [blocks[-1]]
        for gamma in self.gamma:
            gamma[...] = 1
        self._running = np.zeros(2 * sum(sizes[1:-1]), self.dtype)
        blocks = _carve(self._running, [(2, d) for d in sizes[1:-1]])
        self.running_mean = [blk[0] for blk in blocks]
        self.running_var = [blk[1] for blk in blocks]
        for var in self.running_var:
            var[...] = 1
        # momentum buffers of the flat weights and vectors; zeros make the first step v = g
        self._vel_w = np.zeros_like(self._w_flat) if self.sgd_momentum else None
        self._vel_p = np.zeros_like(self._p_flat) if self.sgd_momentum else None
        self._buf: _Buffers | None = None

    def _check(self, x: np.ndarray, where: str) -> None:
        if not isinstance(x, np.ndarray) or x.dtype != self.dtype or x.ndim != 2 \
                or x.shape[1] != self.sizes[0]:
            raise TypeError(f"NumpyMLP.{where}: x must be a {self.dtype} array of shape "
                            f"(N, {self.sizes[0]}), got {getattr(x, 'dtype', type(x))} "
                            f"{getattr(x, 'shape', '')}")

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One SGD update on the batch (x, y); returns the loss before the update."""
        self._check(x, "train_step")
        n = x.shape[0]
        if n < 2 or not isinstance(y, np.ndarray) or y.shape != (n,) or y.dtype.kind not in "iu":
            raise ValueError(f"NumpyMLP.train_step: need a batch of >= 2 rows and integer labels "
                             f"of shape ({n},), got x {x.shape}, y {getattr(y, 'shape', y)}")
        if y.min() < 0 or y.max() >= self.sizes[-1]:
            raise ValueError(f"NumpyMLP.train_step: labels must lie in [0, {self.sizes[-1]}), "
                             f"got values from {y.min()} to {y.max()}")
        buf = self._buf
        if buf is None or buf.ones_row.shape[1] != n:
            buf = self._buf = _Buffers(self.sizes, n, self.dtype, self.momentum)
        last = len(self.W) - 1
        inv_n, eps = 1.0 / n, self.eps

        # Forward through the hidden layers: s = h @ W + b, batch norm, ReLU.  The bias b cancels
        # in the normalisation, so it is only added to the batch mean for the running mean.
        h = x
        for k in range(last):
            s, scratch, istd, scale = buf.s[k], buf.gx[k][1], buf.istd[k], buf.scale[k]
            np.matmul(h, self.W[k], out=s)
            np.matmul(buf.avg_row, s, out=buf.mean[k])
            np.subtract(s, buf.mean[k], out=s)  # s now holds the centred pre-activation s_c
            np.multiply(s, s, out=scratch)
            np.matmul(buf.avg_row, scratch, out=buf.var[k])  # population variance normalises
            np.add(buf.var[k][0], eps, out=istd)
            np.sqrt(istd, out=istd)
            np.reciprocal(istd, out=istd)
            np.multiply(self.gamma[k], istd, out=scale)
            h = buf.h[k]
            np.multiply(s, scale, out=h)  # gamma * x_hat = (gamma * istd) * s_c
            np.add(h, self.beta[k], out=h)
            np.maximum(h, buf.zero, out=h)
            np.add(buf.mean[k], self.b[k], out=buf.mean[k])
        # running = (1 - momentum) * running + momentum * [mean, unbiased var], all layers at once
        np.multiply(self._running, 1.0 - self.momentum, out=self._running)
        np.multiply(buf.stats, buf.stats_coef, out=buf.stats_tmp)
        np.add(self._running, buf.stats_tmp, out=self._running)

        # Last layer and softmax cross-entropy: g = (softmax(z) - onehot(y)) / n.
        z, g = buf.s[last], buf.g_out
        np.matmul(h, self.W[last], out=z)
        np.add(z, self.b[last], out=z)
        np.maximum.reduce(z, axis=1, keepdims=True, out=buf.zmax)
        np.subtract(z, buf.zmax, out=z)
        np.exp(z, out=g)
        np.add.reduce(g, axis=1, keepdims=True, out=buf.zsum)
        np.divide(g, buf.zsum, out=g)
        np.add(buf.row_start, y, out=buf.flat_idx)
        np.take(z.reshape(-1), buf.flat_idx, out=buf.zy)
        np.log(buf.zsum, out=buf.zsum)
        cross_entropy = (buf.zsum.sum() - buf.zy.sum()) * inv_n
        if self.sgd_momentum:  # the decay is in the optimizer, not in the cost
            loss = float(cross_entropy)
        else:
            loss = float(cross_entropy + self.lam * np.vdot(self._w_flat, self._w_flat))
        g_flat = g.reshape(-1)
        g_flat[buf.flat_idx] -= 1
        # Plain SGD: backpropagate -lr * dL/dz instead of dL/dz: everything below is linear in
        # it, so each gradient buffer directly holds the SGD step of its parameter. With momentum
        # the buffers hold the gradients (the velocity is kept in gradient units, as torch does).
        np.multiply(g, inv_n if self.sgd_momentum else -lr * inv_n, out=g)

        for layer in range(last, -1, -1):
            h_in = x if layer == 0 else buf.h[layer - 1]
            np.matmul(h_in.T, g, out=buf.dW[layer])
            np.matmul(buf.ones_row, g, out=buf.db[layer])
            if layer == 0:  # the input needs no gradient
                break
            k = layer - 1
            g_k, g_s, s_c = buf.gx[k][0], buf.gx[k][1], buf.s[k]
            istd, scale, scale_n, u = buf.istd[k], buf.scale[k], buf.scale_n[k], buf.u[k]
            np.matmul(g, self.W[layer].T, out=g_k)  # gradient w.r.t. h_k
            np.greater(buf.h[k], buf.zero, out=buf.mask[k])
            np.multiply(g_k, buf.mask[k], out=g_k)  # ReLU backward
            # Batch-norm backward with x_hat = istd * s_c: [d beta, d gamma] are the column sums
            # of [g, g * x_hat], and ds = gamma * istd * (g - mean(g) - x_hat * mean(g * x_hat)).
            np.multiply(g_k, s_c, out=g_s)
            np.matmul(buf.ones_row, buf.gx[k], out=buf.d_beta_gamma[k])
            np.multiply(buf.d_beta_gamma[k][1], istd, out=buf.d_beta_gamma[k][1])
            np.multiply(scale, inv_n, out=scale_n)
            np.multiply(buf.d_beta_gamma[k], scale_n, out=u)
            np.multiply(u[1], istd, out=u[1])
            np.multiply(s_c, u[1], out=g_s)
            np.add(g_s, u[0], out=g_s)
            np.multiply(g_k, scale, out=g_k)
            np.subtract(g_k, g_s, out=g_k)
            g = g_k

        if self.sgd_momentum:
            self._momentum_update(buf, lr)
            return loss
        # SGD: W <- W - lr * (dW + 2 lam W), vectors <- vectors - lr * grad.
        np.multiply(self._w_flat, 1.0 - 2.0 * lr * self.lam, out=self._w_flat)
        np.add(self._w_flat, buf.dw_flat, out=self._w_flat)
        np.add(self._p_flat, buf.dp_flat, out=self._p_flat)
        return loss

    def _momentum_update(self, buf: _Buffers, lr: float) -> None:
        """v <- m v + g (+ 2 lam W on the weights), p <- p - lr v; the gradient buffers, used up,
        serve as scratch, so it is six passes over the weights and no temporary."""
        m, vw, vp, dw, dp = self.sgd_momentum, self._vel_w, self._vel_p, buf.dw_flat, buf.dp_flat
        np.multiply(vw, m, out=vw)
        np.add(vw, dw, out=vw)
        np.multiply(self._w_flat, 2.0 * self.lam, out=dw)
        np.add(vw, dw, out=vw)
        np.multiply(vw, lr, out=dw)
        np.subtract(self._w_flat, dw, out=self._w_flat)
        np.multiply(vp, m, out=vp)
        np.add(vp, dp, out=vp)
        np.multiply(vp, lr, out=dp)
        np.subtract(self._p_flat, dp, out=self._p_flat)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Eval-mode scores (batch norm with the running statistics); allocates, not timed."""
        self._check(x, "logits")
        h = x
        for layer, (W, b) in enumerate(zip(self.W, self.b)):
            h = h @ W + b
            if layer < len(self.W) - 1:
                istd = 1 / np.sqrt(self.running_var[layer] + self.dtype.type(self.eps))
                h = (h - self.running_mean[layer]) * (istd * self.gamma[layer]) + self.beta[layer]
                h = np.maximum(h, 0)
        return h

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class of every row of x, in eval mode."""
        return self.logits(x).argmax(axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows of x whose predicted class equals y, in eval mode."""
        return float((self.predict(x) == y).mean())


class TorchMLP:
    """The same network written the ordinary way in PyTorch eager on CPU (reference only).

    Starts from the same weights as NumpyMLP(sizes, lam, seed, dtype), so both baselines trained
    on the same batches follow the same trajectory up to rounding. sgd_momentum > 0: the L2 term
    leaves the cost for torch.optim.SGD(momentum=sgd_momentum) with weight_decay=2 * lam on the
    weight matrices and 0 on the other parameters.
    """

    def __init__(self, sizes: Sequence[int], lam: float = 0.005, seed: int = 0,
                 dtype: np.dtype | type = np.float32, num_threads: int | None = None,
                 momentum: float = 0.1, eps: float = 1e-5, sgd_momentum: float = 0.0):
        import torch
        from torch import nn

        start = NumpyMLP(sizes, lam, seed, dtype, momentum, eps)
        self.sizes, self.lam = start.sizes, start.lam
        self.num_threads = numpy_blas_threads() if num_threads is None else int(num_threads)
        torch.set_num_threads(self.num_threads)
        self.torch_dtype = {np.dtype(np.float32): torch.float32,
                            np.dtype(np.float64): torch.float64}[start.dtype]
        layers: list[nn.Module] = []
        self.linears: list[nn.Linear] = []
        self.norms: list[nn.BatchNorm1d] = []
        for layer, W in enumerate(start.W):
            lin = nn.Linear(*W.shape, dtype=self.torch_dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W.T.copy()))
                lin.bias.copy_(torch.from_numpy(start.b[layer]))
            layers.append(lin)
            self.linears.append(lin)
            if layer < len(start.W) - 1:
                bn = nn.BatchNorm1d(W.shape[1], eps=eps, momentum=momentum, dtype=self.torch_dtype)
                layers += [bn, nn.ReLU()]
                self.norms.append(bn)
        self.net = nn.Sequential(*layers)
        self.weights = [lin.weight for lin in self.linears]
        self.sgd_momentum = float(sgd_momentum)
        if self.sgd_momentum:
            ids = {id(W) for W in self.weights}
            others = [p for p in self.net.parameters() if id(p) not in ids]
            self.optimizer = torch.optim.SGD(
                [{"params": self.weights, "weight_decay": 2.0 * self.lam},
                 {"params": others, "weight_decay": 0.0}], lr=0.0, momentum=self.sgd_momentum)
        else:
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.0)

    def train_step(self, x: np.ndarray, y: np.ndarray, lr: float) -> float:
        """One SGD update on the numpy batch (x, y); returns the loss before the update."""
        import torch
        import torch.nn.functional as F

        xb, yb = torch.from_numpy(x), torch.from_numpy(y)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.net(xb), yb)
        if not self.sgd_momentum:
            loss = loss + self.lam * sum((W * W).sum() for W in self.weights)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Eval-mode scores (batch norm with the running statistics) as a numpy array."""
        import torch

        self.net.eval()
        try:
            with torch.no_grad():
                return self.net(torch.from_numpy(x)).numpy()
        finally:
            self.net.train()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted class of every row of x, in eval mode."""
        return self.logits(x).argmax(axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of rows of x whose predicted class equals y, in eval mode."""
        return float((self.predict(x) == y).mean())


def torch_available() -> bool:
    """True when torch can be imported (it is a reference here, never a dependency)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def check_numpy_baseline_against_torch(sizes: Sequence[int] = (12, 7, 6, 5, 4), n: int = 9,
                                       steps: int = 2, lr: float = 0.05, lam: float = 0.005,
                                       seed: int = 0, tol: float = 1e-10,
                                       sgd_momentum: float = 0.0) -> dict[str, float]:
    """Train NumpyMLP and TorchMLP in float64 from the same weights on the same tiny batches
    (with the optimizer's momentum and weight decay instead of the L2 term if sgd_momentum > 0).

    Compares every step's loss, then all parameters, running statistics and eval-mode logits;
    raises AssertionError if any differs by more than `tol`.  Returns the largest differences.
    """
    rng = np.random.default_rng(seed)
    ours = NumpyMLP(sizes, lam, seed, np.float64, sgd_momentum=sgd_momentum)
    ref = TorchMLP(sizes, lam, seed, np.float64, num_threads=1, sgd_momentum=sgd_momentum)
    diff = {"loss": 0.0}
    for t in range(steps):
        x = rng.standard_normal((n, sizes[0])) * 3 + 1
        y = rng.integers(0, sizes[-1], n)
        # the second step uses a different lr so the running stats and decay both get exercised
        diff["loss"] = max(diff["loss"], abs(ours.train_step(x, y, lr * (t + 1)) -
                                             ref.train_step(x, y, lr * (t + 1))))
    pairs = {"W": (ours.W, [lin.weight.detach().numpy().T for lin in ref.linears]),
             "b": (ours.b, [lin.bias.detach().numpy() for lin in ref.linears]),
             "gamma": (ours.gamma, [bn.weight.detach().numpy() for bn in ref.norms]),
             "beta": (ours.beta, [bn.bias.detach().numpy() for bn in ref.norms]),
             "running_mean": (ours.running_mean, [bn.running_mean.numpy() for bn in ref.norms]),
             "running_var": (ours.running_var, [bn.running_var.numpy() for bn in ref.norms])}
    for name, (a, b) in pairs.items():
        diff[name] = max((float(np.abs(u - v).max()) for u, v in zip(a, b)), default=0.0)
    x = rng.standard_normal((n, sizes[0]))
    diff["eval_logits"] = float(np.abs(ours.logits(x) - ref.logits(x)).max())
    moved = max(float(np.abs(u - v).max()) for u, v in
                zip(ours.W, NumpyMLP(sizes, lam, seed, np.float64).W))
    bad = {k: v for k, v in diff.items() if not v <= tol}
    if bad or moved < 1e-3:
        raise AssertionError(f"numpy baseline disagrees with torch autograd: {bad} "
                             f"(weights moved by {moved:.3g})")
    return diff


def load_cifar10_train(root: str | os.PathLike | None = None, n_val: int = 5000
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-10's split b as float32 (x_train, y_train, x_val, y_val): the last n_val training
    images for val, read by tensorgrad.data's loader from root (else $TENSORGRAD_DATA; never
    downloaded) and standardised with the training part's per-feature mean and std, as every
    study reads them."""
    from tensorgrad.data import load_cifar10, standardize

    splits = load_cifar10(root, split="b", n_val=n_val, download=False)
    (x, y), (x_val, y_val) = splits.train, splits.val
    x, x_val = standardize(x, x_val)
    return x, y, x_val, y_val


def _time_all(x: np.ndarray, y: np.ndarray, n_updates: int, warmup: int, threads: int,
              use_torch: bool) -> dict[tuple[str, str], float]:
    """Median ms/update of every (framework, network) pair on the data (x, y)."""
    results = {}
    for net_name, sizes in (("3-layer", THREE_LAYER), ("9-layer", NINE_LAYER)):
        models = {"numpy": NumpyMLP(sizes)}
        if use_torch:
            models["torch"] = TorchMLP(sizes, num_threads=threads)
        for fw, model in models.items():
            times = time_updates(model.train_step, x, y, 100, n_updates, warmup)
            results[fw, net_name] = float(np.median(times))
            print(f"  {fw:5s} {net_name}: median {np.median(times):.3f} ms/update "
                  f"(p10 {np.percentile(times, 10):.3f}, p90 {np.percentile(times, 90):.3f})",
                  flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300, help="timed updates per run")
    parser.add_argument("--warmup", type=int, default=30, help="untimed updates before timing")
    parser.add_argument("--data", default=None,
                        help="CIFAR-10 folder for the one-epoch comparison (default "
                             "$TENSORGRAD_DATA; skipped when not found)")
    args = parser.parse_args(argv)

    threads = numpy_blas_threads()
    use_torch = torch_available()
    print(f"numpy {np.__version__}, OpenBLAS threads {threads} "
          f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
    if use_torch:
        import torch
        diff = check_numpy_baseline_against_torch()
        print(f"torch {torch.__version__}, threads {threads}; float64 check vs autograd, "
              f"max |diff|: " + ", ".join(f"{k} {v:.1e}" for k, v in diff.items()))
        diff = check_numpy_baseline_against_torch(steps=3, sgd_momentum=0.9)
        print("  with SGD momentum and weight decay instead of the L2 term, max |diff|: "
              + ", ".join(f"{k} {v:.1e}" for k, v in diff.items()))
    else:
        print("torch not importable: only the numpy baseline runs")

    rng = np.random.default_rng(0)
    x = rng.standard_normal((45000, 3072), dtype=np.float32)
    y = rng.integers(0, 10, 45000)
    print(f"timing on random data {x.shape} float32, batch 100:")
    first = _time_all(x, y, args.updates, args.warmup, threads, use_torch)

    from tensorgrad.data import find_cifar10

    found = find_cifar10(args.data)
    if found is not None:
        xc, yc, xv, yv = load_cifar10_train(found)
        print("one epoch (450 updates) on CIFAR-10, same init and batches for both:")
        for net_name, sizes in (("3-layer", THREE_LAYER), ("9-layer", NINE_LAYER)):
            models = {"numpy": NumpyMLP(sizes)}
            if use_torch:
                models["torch"] = TorchMLP(sizes, num_threads=threads)
            for fw, model in models.items():
                losses: list[float] = []
                time_updates(model.train_step, xc, yc, 100, 450, 0, losses=losses)
                print(f"  {fw:5s} {net_name}: mean loss of the last 50 updates "
                      f"{np.mean(losses[-50:]):.4f}, train accuracy "
                      f"{model.accuracy(xc, yc):.4f}, val accuracy {model.accuracy(xv, yv):.4f}",
                      flush=True)
        del xc, yc, xv, yv
    else:
        print("CIFAR-10 not found (--data or $TENSORGRAD_DATA): skipping the one-epoch "
              "comparison")

    print("timing again:")
    second = _time_all(x, y, args.updates, args.warmup, threads, use_torch)
    print("median ms/update (first run / second run):")
    for key in first:
        print(f"  {key[0]:5s} {key[1]}: {first[key]:.3f} / {second[key]:.3f}")


if __name__ == "__main__":
    main()
