"""Training-speed benchmark: tensorgrad against hand-written numpy and PyTorch eager, same run.

    python -m benchmarks.benchmark [--data DIR] [--updates 450] [--best-updates 175]
                                   [--rounds 3] [--networks 3-layer,best] [--quick] [--out DIR]

Times the training updates of four networks, float32, batch norm before ReLU, softmax
cross-entropy, SGD under the cyclical learning rate:
- 3-layer: the course's 3072-50-50-10, batch 100, the L2 term lambda=0.005 in the cost;
- 9-layer: the course's 9-layer network, likewise;
- best: the best MLP's shape (experiments/best_mlp.py) 3072-1024-512-256-10, batch 256, the L2
  term lambda=2.5e-4 (its weight decay 5e-4) in the cost as the course writes it;
- best-momentum: the same network with the L2 term moved into the optimizer: SGD momentum 0.9 and
  weight_decay=2 lambda on the weight matrices (0 on biases and batch norm), as best_mlp trains.
`--updates` (one epoch at batch 100) is the timed count of the first two, `--best-updates` (one
epoch at batch 256) of the others. tensorgrad runs as a user writes it (MLP module,
F.cross_entropy + lam * nn.l2_penalty, SGD, CyclicLR), numpy as the serious baseline of
benchmarks/baselines.py (preallocated buffers, hand-written backward) and, when torch is
installed, PyTorch on CPU with the same number of threads. In each of `--rounds` rounds every
framework gets a fresh model and the same batches, and they take turns every `--chunk` updates
(so that drift in the machine's load hits all alike); the medians of ms/update and the ratios are
printed and written to --out/results.json (default runs/benchmark/, untracked; nothing else is
written).

`--ablate axpy,lowering` (or `all`) measures what fast paths pay: each named path gets a
contestant of its own, tensorgrad with that one path switched off (tg.fast_mode(False,
paths=[...]) around its turns, never inside a timed update), taking turns with the others in the
same rounds; the table gives each one's ms, its ratio to numpy and its change against tensorgrad
with every path on. malloc_tuning is set at import for the whole process and cannot be ablated
in the same run (measure it with TENSORGRAD_FAST_OFF=malloc_tuning in the environment).
"""
import argparse
import contextlib
import json
import os
import platform
import sys
import time

import numpy as np

from benchmarks.baselines import (
    BEST_MLP,
    NINE_LAYER,
    THREE_LAYER,
    NumpyMLP,
    TorchMLP,
    load_cifar10_train,
    numpy_blas_threads,
    timed_updates,
    torch_available,
)


class TensorgradMLP:
    """The benchmark's network in tensorgrad, built from a Spec as every study builds its own."""

    def __init__(self, sizes, lam=0.005, seed=0, eta_min=1e-5, eta_max=1e-1, n_s=2250,
                 sgd_momentum=0.0):
        import tensorgrad as tg
        from experiments.spec import Spec, build
        from tensorgrad import nn
        from tensorgrad.nn import functional as F
        self.tg, self.nn, self.F = tg, nn, F
        # with momentum, the L2 term is the optimizer's weight decay on the weight matrices
        spec = Spec(inputs=sizes[0], widths=list(sizes[1:-1]), classes=sizes[-1], seed=seed,
                    eta_min=eta_min, eta_max=eta_max, n_s=n_s, momentum=sgd_momentum,
                    lam=0.0 if sgd_momentum else lam,
                    weight_decay=2.0 * lam if sgd_momentum else 0.0)
        built = build(spec)   # SGD under CyclicLR (cycle_momentum=False: momentum stays fixed)
        self.model, self.opt, self.sched, self.lam = (built.model, built.optimizer,
                                                      built.scheduler, spec.lam)

    def train_step(self, x, y, lr):
        # the scheduler sets the same triangular lr that timed_updates passes in
        logits = self.model(self.tg.as_tensor(x))  # the batch array itself, as fit passes it
        loss = self.F.cross_entropy(logits, y)
        if self.lam:
            loss = loss + self.lam * self.nn.l2_penalty(self.model)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.item()


def _data(root, n, quick):
    """The first n standardised CIFAR-10 training images when the data is found (root, else
    $TENSORGRAD_DATA) and not quick, else random data of their shape."""
    from tensorgrad.data import find_cifar10
    found = find_cifar10(root)
    if found is not None and not quick:
        x, y, _, _ = load_cifar10_train(found)
        return x[:n], y[:n], f"CIFAR-10 ({found})"
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, 3072), dtype=np.float32), rng.integers(0, 10, n),
            "random data of CIFAR-10's shape")


# name: (layer sizes, batch size, lambda, SGD momentum); momentum > 0 moves the L2 term into the
# optimizer (weight_decay = 2 lambda on the weight matrices)
NETWORKS = {
    "3-layer": (THREE_LAYER, 100, 0.005, 0.0),
    "9-layer": (NINE_LAYER, 100, 0.005, 0.0),
    "best": (BEST_MLP, 256, 2.5e-4, 0.0),
    "best-momentum": (BEST_MLP, 256, 2.5e-4, 0.9),
}


def _networks(p, spec):
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in NETWORKS]
    if not names or unknown:
        p.error(f"--networks: a comma-separated list of {', '.join(NETWORKS)}, got {spec!r}")
    return {n: NETWORKS[n] for n in NETWORKS if n in names}


def _ablated(p, spec):
    """The fast paths --ablate names ('all': every path that can be switched off in-process)."""
    from tensorgrad.mode import PATHS
    if not spec:
        return []
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        return [n for n in PATHS if n != "malloc_tuning"]
    bad = [n for n in names if n not in PATHS or n == "malloc_tuning"]
    if not names or bad:
        p.error(f"--ablate: 'all' or a comma-separated list of fast paths other than "
                f"malloc_tuning (see tg.fast_paths()), got {spec!r}")
    return names


def _turn(fw):
    """The mode a contestant's turn runs in: 'tensorgrad-P' with fast path P switched off."""
    if fw.startswith("tensorgrad-"):
        from tensorgrad.mode import fast_mode
        return fast_mode(False, paths=[fw[len("tensorgrad-"):]])
    return contextlib.nullcontext()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="CIFAR-10 folder (default TENSORGRAD_DATA)")
    p.add_argument("--updates", type=int, default=450,
                   help="timed updates per round of the batch-100 networks (one epoch)")
    p.add_argument("--best-updates", type=int, default=175,
                   help="timed updates per round of the batch-256 networks (one epoch)")
    p.add_argument("--warmup", type=int, default=30, help="untimed updates before each round")
    p.add_argument("--rounds", type=int, default=3, help="fresh models and batch orders")
    p.add_argument("--chunk", type=int, default=50,
                   help="updates a framework runs before the next one takes its turn")
    p.add_argument("--networks", default=",".join(NETWORKS),
                   help=f"comma-separated subset of {', '.join(NETWORKS)} (default: all)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if installed")
    p.add_argument("--ablate", default="",
                   help="fast paths (comma-separated, or 'all') each timed switched off alone, "
                        "as contestants of their own")
    p.add_argument("--quick", action="store_true", help="tiny run for the test suite")
    p.add_argument("--out", default=os.path.join("runs", "benchmark"))
    args = p.parse_args(argv)
    if args.quick:
        args.updates, args.best_updates, args.warmup, args.rounds = 5, 1, 2, 1
    if args.chunk < 1 or args.updates < 1 or args.best_updates < 1 or args.rounds < 1 \
            or args.warmup < 0:
        p.error(f"need --chunk, --updates, --best-updates, --rounds >= 1 and --warmup >= 0, got "
                f"{args.chunk}, {args.updates}, {args.best_updates}, {args.rounds}, "
                f"{args.warmup}")
    nets = _networks(p, args.networks)
    ablated = _ablated(p, args.ablate)
    n = 45000 if not args.quick else 1000
    x, y, source = _data(args.data, n, args.quick)
    threads = numpy_blas_threads()
    use_torch = not args.no_torch and torch_available()  # (importing torch takes seconds)
    print(f"data: {source}, {x.shape[0]} samples; numpy {np.__version__}, BLAS threads "
          f"{threads}; torch: {'yes' if use_torch else 'not installed'}")

    makers = {"tensorgrad": TensorgradMLP, "numpy": NumpyMLP}
    if use_torch:
        makers["torch"] = lambda sizes, lam, sgd_momentum: TorchMLP(
            sizes, lam, num_threads=threads, sgd_momentum=sgd_momentum)
    for path in ablated:
        makers[f"tensorgrad-{path}"] = TensorgradMLP
    medians = {}
    for net, (sizes, batch, lam, momentum) in nets.items():
        n_updates = args.best_updates if sizes == BEST_MLP else args.updates
        runs = {fw: [] for fw in makers}
        for r in range(args.rounds):
            updates = {}
            for fw, make in makers.items():  # each model is built in the mode it runs in
                with _turn(fw):
                    step = make(sizes, lam=lam, sgd_momentum=momentum).train_step
                updates[fw] = timed_updates(step, x, y, batch, args.warmup + n_updates, seed=r)
            for fw, it in updates.items():  # warm up one after the other
                with _turn(fw):
                    for _ in range(args.warmup):
                        next(it)
            done = 0
            while done < n_updates:  # take turns every --chunk updates: drift in machine
                k = min(args.chunk, n_updates - done)  # load hits all frameworks alike
                for fw, it in updates.items():
                    with _turn(fw):
                        runs[fw].extend(next(it) for _ in range(k))
                done += k
            del updates  # free the round's models before the next ones are built
        for fw, ts in runs.items():
            medians[fw, net] = float(np.median(ts))
    rows = []
    print(f"\nmedian ms per update, float32 ({args.rounds} rounds of {args.updates} updates at "
          f"batch 100, {args.best_updates} at batch 256):")
    print("| network | batch | tensorgrad | numpy (by hand) | torch | tensorgrad/numpy "
          "| tensorgrad/torch |")
    print("|---|---|---|---|---|---|---|")
    for net, (sizes, batch, lam, momentum) in nets.items():
        t, npy = medians["tensorgrad", net], medians["numpy", net]
        tor = medians.get(("torch", net))
        row = {"network": net, "sizes": list(sizes), "batch": batch, "lam": lam,
               "sgd_momentum": momentum, "tensorgrad_ms": t, "numpy_ms": npy, "torch_ms": tor,
               "tensorgrad_over_numpy": t / npy,
               "tensorgrad_over_torch": None if tor is None else t / tor}
        rows.append(row)
        tor_s = "-" if tor is None else f"{tor:.3f}"
        ratio_t = "-" if tor is None else f"{t / tor:.2f}"
        print(f"| {net} | {batch} | {t:.3f} | {npy:.3f} | {tor_s} | {t / npy:.2f} | {ratio_t} |")
    ablation = []
    if ablated:
        print("\neach fast path switched off alone (median ms per update; change against "
              "tensorgrad with every path on):")
        print("| path off | network | ms | /numpy | change |")
        print("|---|---|---|---|---|")
    for path in ablated:
        for net in nets:
            t, off, npy = (medians[fw, net] for fw in ("tensorgrad", f"tensorgrad-{path}",
                                                      "numpy"))
            ablation.append({"path": path, "network": net, "ms": off, "over_numpy": off / npy,
                             "change": off / t - 1.0})
            print(f"| {path} | {net} | {off:.3f} | {off / npy:.2f} | {off / t - 1:+.1%} |")
    result = {"command": " ".join(["python -m benchmarks.benchmark"] + (argv or sys.argv[1:])),
              "data": source, "blas_threads": threads, "numpy": np.__version__,
              "python": platform.python_version(), "updates": args.updates,
              "best_updates": args.best_updates, "rounds": args.rounds, "chunk": args.chunk,
              "warmup": args.warmup, "rows": rows, "ablation": ablation,
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
