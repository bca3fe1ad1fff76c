"""Training-speed benchmark: tensorgrad against hand-written numpy and PyTorch eager, same run.

    python -m experiments.benchmark [--data DIR] [--updates 450] [--rounds 3] [--quick]

Times one training epoch's updates of the course's 3-layer network (3072-50-50-10, batch norm,
ReLU, batch 100, float32, SGD with the cyclical learning rate and the L2 term lambda=0.005) and of
the 9-layer network, in tensorgrad (MLP module, F.cross_entropy + lam * nn.l2_penalty, SGD,
CyclicLR: batch norm is a composition of Tensor ops), in the serious numpy baseline of
experiments/baselines.py (preallocated buffers, hand-written backward) and, when torch is
installed, in PyTorch on CPU with the same number of threads. In each of `--rounds` rounds every
framework gets a fresh model and the same batches, and they take turns every `--chunk` updates
(so that drift in the machine's load hits all alike); the medians of ms/update and the ratios are
printed and written to experiments/results/benchmark/results.json (or --out).
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from experiments.baselines import (
    NINE_LAYER,
    THREE_LAYER,
    NumpyMLP,
    TorchMLP,
    numpy_blas_threads,
    timed_updates,
    torch_available,
)


class TensorgradMLP:
    """The benchmark's network in tensorgrad, written as a user would write it."""

    def __init__(self, sizes, lam=0.005, seed=0, eta_min=1e-5, eta_max=1e-1, n_s=2250):
        import tensorgrad as tg
        from models.mlp import MLP
        from tensorgrad import nn
        from tensorgrad.nn import functional as F
        from tensorgrad.optim import SGD
        from tensorgrad.optim.lr_scheduler import CyclicLR
        self.tg, self.nn, self.F = tg, nn, F
        self.model = MLP(list(sizes), seed=seed)
        self.opt = SGD(self.model.parameters(), lr=eta_min)
        self.sched = CyclicLR(self.opt, base_lr=eta_min, max_lr=eta_max, step_size_up=n_s)
        self.lam = lam

    def train_step(self, x, y, lr):
        # the scheduler sets the same triangular lr that timed_updates passes in
        logits = self.model(self.tg.Tensor(x))
        loss = self.F.cross_entropy(logits, y) + self.lam * self.nn.l2_penalty(self.model)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.item()


def _data(root, n, quick):
    from tensorgrad.data import find_cifar10, load_cifar10, standardize
    found = None
    try:
        found = find_cifar10(root)
    except Exception:
        found = None
    if found is not None and not quick:
        splits = load_cifar10(root, split="b", download=False)
        (x, y) = splits.train
        (x,) = standardize(x)
        return x[:n], y[:n], f"CIFAR-10 ({found})"
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, 3072), dtype=np.float32), rng.integers(0, 10, n),
            "random data of CIFAR-10's shape")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="CIFAR-10 folder (default TENSORGRAD_DATA)")
    p.add_argument("--updates", type=int, default=450, help="timed updates per round (one epoch)")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3, help="fresh models and batch orders")
    p.add_argument("--chunk", type=int, default=50,
                   help="updates a framework runs before the next one takes its turn")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny run for the test suite")
    p.add_argument("--out", default=os.path.join("runs", "benchmark"))
    args = p.parse_args(argv)
    if args.quick:
        args.updates, args.warmup, args.rounds = 5, 2, 1
    if args.chunk < 1 or args.updates < 1 or args.rounds < 1 or args.warmup < 0:
        p.error(f"need --chunk, --updates, --rounds >= 1 and --warmup >= 0, got {args.chunk}, "
                f"{args.updates}, {args.rounds}, {args.warmup}")
    n = 45000 if not args.quick else 1000
    x, y, source = _data(args.data, n, args.quick)
    threads = numpy_blas_threads()
    use_torch = torch_available() and not args.no_torch
    print(f"data: {source}, {x.shape[0]} samples; numpy {np.__version__}, BLAS threads "
          f"{threads}; torch: {'yes' if use_torch else 'not installed'}")

    nets = {"3-layer": THREE_LAYER, "9-layer": NINE_LAYER}
    makers = {"tensorgrad": TensorgradMLP, "numpy": NumpyMLP}
    if use_torch:
        makers["torch"] = lambda sizes: TorchMLP(sizes, num_threads=threads)
    medians = {}
    for net, sizes in nets.items():
        runs = {fw: [] for fw in makers}
        for r in range(args.rounds):
            updates = {fw: timed_updates(make(sizes).train_step, x, y, 100,
                                         args.warmup + args.updates, seed=r)
                       for fw, make in makers.items()}
            for fw, it in updates.items():  # warm up one after the other
                for _ in range(args.warmup):
                    next(it)
            done = 0
            while done < args.updates:  # take turns every --chunk updates: drift in machine
                k = min(args.chunk, args.updates - done)  # load hits all frameworks alike
                for fw, it in updates.items():
                    runs[fw].extend(next(it) for _ in range(k))
                done += k
        for fw, ts in runs.items():
            medians[fw, net] = float(np.median(ts))
    rows = []
    print(f"\nmedian ms per update, batch 100, float32 ({args.rounds} x {args.updates} updates):")
    print("| network | tensorgrad | numpy (by hand) | torch | tensorgrad/numpy "
          "| tensorgrad/torch |")
    print("|---|---|---|---|---|---|")
    for net in nets:
        t, npy = medians["tensorgrad", net], medians["numpy", net]
        tor = medians.get(("torch", net))
        row = {"network": net, "tensorgrad_ms": t, "numpy_ms": npy, "torch_ms": tor,
               "tensorgrad_over_numpy": t / npy,
               "tensorgrad_over_torch": None if tor is None else t / tor}
        rows.append(row)
        tor_s = "-" if tor is None else f"{tor:.3f}"
        ratio_t = "-" if tor is None else f"{t / tor:.2f}"
        print(f"| {net} | {t:.3f} | {npy:.3f} | {tor_s} | {t / npy:.2f} | {ratio_t} |")
    result = {"command": " ".join(["python -m experiments.benchmark"] + (argv or sys.argv[1:])),
              "data": source, "blas_threads": threads, "numpy": np.__version__,
              "python": platform.python_version(), "updates": args.updates,
              "rounds": args.rounds, "chunk": args.chunk, "warmup": args.warmup, "rows": rows,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if use_torch:
        import torch
        result["torch"] = torch.__version__
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.json")
    from tensorgrad.atomic import write_text
    write_text(path, json.dumps(result, indent=2))
    print(f"\nwritten: {path}")
    return result


if __name__ == "__main__":
    main()
