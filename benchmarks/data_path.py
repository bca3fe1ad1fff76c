"""Wall time per update in `fit` on the main job's setting, through each data path of issue 19.

    python -m benchmarks.data_path --alternations 5            # interleaved A/B, medians
    python -m benchmarks.data_path --alternations 3 --full     # whole main-job fits
    python -m benchmarks.data_path --variant prefetch          # one process, one JSON line

The setting is `python -m experiments.k_layer_bn --layers 3 --bn --seeds 1`'s run (3072-50-50-10
with batch norm, batch 100, SGD with the cyclic learning rate, lambda 0.005, float32, split b),
built by the study's own code; the BLAS threads are whatever the environment gives (the main
job sets none). Variants (the same batches, bit for bit, in each):
- float32: the old path, standardised float32 arrays, no prefetching (prefetch_factor=0);
- lean: uint8 images read through ImageArray(Normalize), no prefetching (prefetch_factor=0);
- prefetch: the same, prefetching 2 batches ahead (prefetch_factor=2);
- float32-prefetch: the float32 arrays, prefetching 2 batches ahead.
Each variant runs in a process of its own; the driver alternates them (the order rotating) and
prints every process's figure, then the medians (--interleave: all variants in one process,
taking turns fit by fit, against the host's slow phases). Without --full a process times `--rounds`
fits of `--updates` updates each (after a 100-update warm-up fit; the final measurement only
sees 100 images, so the figure is the updates' own), and reports their median in ms per update
of wall time. With --full it times one whole fit of the job (9,000 updates and its 20
measurements of 50,000 images) and reports that fit's wall time per update plus a sha256 of the
final weights and history, which must be the same for every variant.
"""
import argparse
import hashlib
import json
import math
import statistics
import subprocess
import sys
import time

import numpy as np

VARIANTS = ["float32", "lean", "prefetch", "float32-prefetch"]


def _setting(data_dir):
    from experiments import common, k_layer_bn, spec
    argv = ["--layers", "3", "--bn", "--seeds", "1", "--no-progress"]
    args = k_layer_bn.build_parser().parse_args(argv + (["--data", data_dir] if data_dir else []))
    s = spec.Spec.from_args(args, widths=k_layer_bn.HIDDEN[3], batch_norm=True, n_s=args.n_s,
                            seed=args.seed, label="3-layer with BN, seed 0",
                            tags={"layers": 3, "batch_norm": True})
    return s, common.load_data(args, split="b")


def run_variant(variant, updates, rounds, full, data_dir):
    s, data = _setting(data_dir)
    one = _timer(variant, s, data)
    return _measure(one, variant, updates, rounds, full, s.updates(len(data.train[1])))


def _timer(variant, s, data):
    """one(n, whole) -> (ms per update, digest, history) of a fit of n updates on `variant`."""
    from experiments import spec
    from tensorgrad.data import DataLoader
    from tensorgrad.train import evaluate, fit

    train, val = data.train, data.val
    if variant.startswith("float32"):
        train = (np.asarray(train[0]), train[1])
        val = (np.asarray(val[0]), val[1])
    prefetch = 2 if variant.endswith("prefetch") else 0

    def one(n, whole):
        loader = DataLoader(train, batch_size=s.batch_size, shuffle=True, seed=s.seed,
                            drop_last=s.drop_last, prefetch_factor=prefetch)
        built = spec.build(s, len(loader), data.norm)
        kw = (dict(val_data=val, measure_every=s.measure_every) if whole else
              dict(train_eval_data=(train[0][:100], train[1][:100]), measure_every=n))
        t0 = time.perf_counter()
        history = fit(built.model, built.optimizer, loader, epochs=math.ceil(n / len(loader)),
                      scheduler=built.scheduler, l2=s.lam, augment=built.augment, max_updates=n,
                      label_smoothing=s.label_smoothing, progress=False, **kw)
        seconds = time.perf_counter() - t0
        h = history.to_dict()
        h.pop("wall_time")
        digest = hashlib.sha256(json.dumps(h, sort_keys=True).encode())
        for name, value in built.model.state_dict().items():
            digest.update(name.encode() + np.ascontiguousarray(value).tobytes())
        if not whole:
            return seconds / n * 1e3, digest.hexdigest()[:16], h
        return seconds / n * 1e3, digest.hexdigest()[:16], h, evaluate(
            built.model, *data.test, l2=s.lam)["acc"]

    return one


def _measure(one, variant, updates, rounds, full, job_updates):
    from tensorgrad.mode import fast_paths
    one(100, False)  # warm-up: tracing, first allocations
    fast_paths(reset=True)
    if full:
        ms, digest, h, test_acc = one(job_updates, True)
        out = {"ms_per_update": ms, "sha256": digest, "val_acc": h["metrics"]["val_acc"][-1],
               "test_acc": test_acc}
    else:
        runs = [one(updates, False) for _ in range(rounds)]
        out = {"ms_per_update": statistics.median(r[0] for r in runs),
               "rounds": [round(r[0], 4) for r in runs]}
    out.update(variant=variant, prefetched=fast_paths()["prefetch_batch"].hits)
    return out


def interleave(variants, updates, rounds, data_dir):
    """All variants in this process, taking turns fit by fit (the order rotating), so that a
    slow phase of the host hits each alike; prints each turn, then the medians."""
    s, data = _setting(data_dir)
    timers = {v: _timer(v, s, data) for v in variants}
    for one in timers.values():
        one(100, False)
    figures = {v: [] for v in variants}
    for i in range(rounds):
        order = variants[i % len(variants):] + variants[:i % len(variants)]
        turn = {}
        for v in order:
            turn[v] = round(timers[v](updates, False)[0], 4)
            figures[v].append(turn[v])
        print(f"round {i + 1}: {json.dumps(turn)}", flush=True)
    print("medians (ms per update): " + ", ".join(
        f"{v} {statistics.median(f):.4f}" for v, f in figures.items()), flush=True)


def drive(args):
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {unknown}; the variants are {VARIANTS}")
    figures = {v: [] for v in variants}
    for i in range(args.alternations):
        order = variants[i % len(variants):] + variants[:i % len(variants)]
        for v in order:
            cmd = [sys.executable, "-m", "benchmarks.data_path", "--variant", v, "--updates",
                   str(args.updates), "--rounds", str(args.rounds)] + (
                ["--full"] if args.full else []) + (["--data", args.data] if args.data else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            figures[v].append(result["ms_per_update"])
            print(f"alternation {i + 1}: {json.dumps(result)}", flush=True)
    print("medians (ms per update): " + ", ".join(
        f"{v} {statistics.median(f):.4f}" for v, f in figures.items()), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.data_path",
                                description=__doc__.split("\n")[0])
    p.add_argument("--variant", choices=VARIANTS, help="run this variant here and print JSON")
    p.add_argument("--variants", default="float32,lean,prefetch",
                   help="the variants the driver alternates, comma-separated")
    p.add_argument("--alternations", type=int, default=5)
    p.add_argument("--updates", type=int, default=2000, help="updates per timed fit")
    p.add_argument("--rounds", type=int, default=3, help="timed fits per process")
    p.add_argument("--full", action="store_true", help="time the job's whole fit instead")
    p.add_argument("--interleave", action="store_true",
                   help="all --variants in one process, taking turns fit by fit")
    p.add_argument("--data", default=None, help="CIFAR-10 folder (default: TENSORGRAD_DATA)")
    args = p.parse_args(argv)
    if args.interleave:
        interleave(args.variants.split(","), args.updates, args.rounds, args.data)
    elif args.variant:
        print(json.dumps(run_variant(args.variant, args.updates, args.rounds, args.full,
                                     args.data)))
    else:
        drive(args)


if __name__ == "__main__":
    main()
