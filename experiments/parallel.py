"""Whether parallel one-BLAS-thread runs pay off here, and the studies' total wall time.

    python -m experiments.parallel --speed         # two S4 runs: one at a time (2 threads) vs
                                                  # side by side (1 thread each)
    python -m experiments.parallel --total         # sum the wall times of every finished study

The S6 studies are dozens of small trainings, which experiments.spec.run_all runs in worker
processes (tensorgrad.processes); --speed times the two ways of running two of them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tensorgrad.atomic import write_text

from . import common, spec
from .reproduce import wall_seconds

# ---------------------------------------------------------------------------------------------
# Speed measurement and total wall time
# ---------------------------------------------------------------------------------------------

def speed(args) -> dict:
    """Two S4 3-layer BN runs: one at a time with 2 BLAS threads vs side by side, 1 thread each."""
    n_s = common.QUICK_N_S if args.quick else args.n_s
    runs = [spec.Spec(n_s=n_s, seed=s, label=f"S4 3-layer BN, seed {s}") for s in (0, 1)]
    modes = {"one at a time, 2 BLAS threads": (1, 2), "side by side, 1 BLAS thread each": (2, 1)}
    out = {}
    for name, (workers, threads) in modes.items():
        t0 = time.perf_counter()
        results = spec.run_all(runs, args, workers=workers, threads=threads, here=False)
        wall = time.perf_counter() - t0
        load = max(r["worker"]["data_load_time"] for r in results)
        train = [r["wall_time"] for r in results]
        out[name] = {"workers": workers, "threads": threads, "wall_time_s": wall,
                     "data_load_s": load, "train_s": train,
                     # both runs' training, without the data loading
                     "training_wall_s": sum(train) if workers == 1 else max(train),
                     "test_acc": [r["final"]["test_acc"] for r in results]}
        print(f"{name}: {wall:.0f} s for both runs, {out[name]['training_wall_s']:.0f} s of it "
              f"training (data loading {load:.0f} s per worker; runs "
              f"{', '.join(f'{t:.0f} s' for t in train)})", flush=True)
    names = list(modes)
    faster = min(names, key=lambda n: out[n]["training_wall_s"])
    out["faster"] = faster
    out["load_avg_at_end"] = os.getloadavg()
    return out


def total_wall_time(root=common.RESULTS_ROOT) -> dict:
    """{study name: wall time} of every full-run results.json under root, and their sum; a
    search counts its trials by their own times, over every invocation (reproduce's)."""
    times = {}
    for path in sorted(root.glob("*/results.json")):
        results = json.loads(path.read_text())
        if not results.get("quick") and results.get("wall_time_s") is not None:
            times[path.parent.name] = wall_seconds(results)
    return {"studies": times, "total_s": sum(times.values())}


def build_parser() -> argparse.ArgumentParser:
    p = common.study_parser("parallel", __doc__.split("\n")[0],
                            resumable=False)  # a timing: its runs are not kept
    p.add_argument("--speed", action="store_true", help="measure the two ways of running")
    p.add_argument("--total", action="store_true",
                   help="sum the wall times of the published studies (experiments/results/)")
    p.add_argument("--n-s", type=common.positive_int, default=2250,
                   help="n_s of the two timed S4 runs (2 cycles each; S4's own is 2250)")
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    out = {}
    if args.speed:
        folder = common.output_dir(args, "parallel")
        folder.mkdir(parents=True, exist_ok=True)
        out["speed"] = speed(args)
        out["command"] = common.command_line("parallel", list(sys.argv[1:] if argv is None
                                                             else argv), args.data)
        out["quick"] = bool(args.quick)
        write_text(folder / "speed.json", json.dumps(common._jsonable(out), indent=1) + "\n")
        print(f"faster: {out['speed']['faster']}\nresults: {folder / 'speed.json'}")
    if args.total:
        out["total"] = total_wall_time()
        for name, t in out["total"]["studies"].items():
            print(f"  {name}: {t:.0f} s")
        print(f"total: {out['total']['total_s']:.0f} s ({out['total']['total_s'] / 60:.1f} min)")
    if not (args.speed or args.total):
        p.error("give --speed and/or --total")
    return out


if __name__ == "__main__":
    common.run_cli(main)
