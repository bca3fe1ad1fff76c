"""Micro-timings behind the library's design choices, each against the plain alternative.

    python -m benchmarks.micro [--only NAME,...] [--repeat 7] [--out DIR]

Each case times a choice the code makes (a dispatch-free numpy call, a cached 0-d constant, one
BLAS pass, ...) and the plain way it replaced, on the shapes of a training step, and prints
median microseconds per call over `--repeat` repeats (each repeat: the best of several timeit
loops, so a busy machine inflates it less). docs/performance.md gives the figures with this
command; the docstrings only say what each choice does. The BLAS cases run in subprocesses with
OPENBLAS_NUM_THREADS set, one and two threads. --out DIR (default runs/micro/, untracked) gets
results.json.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import timeit

import numpy as np

CASES = {}


def case(name, where):
    """Register a case: a function returning {variant: seconds per call}."""
    def add(fn):
        CASES[name] = (where, fn)
        return fn
    return add


NUMBER = None  # calls per timeit loop (--number); None: timeit's autorange (loops of 0.2 s)


def per_call(stmt, repeat, **names):
    """Median over `repeat` of the best of 3 timeit loops, in seconds per call."""
    timer = timeit.Timer(stmt, globals=names)
    number = NUMBER or timer.autorange()[0]
    return statistics.median(min(timer.repeat(3, number)) / number for _ in range(repeat))


@case("dispatch", "autograd/xp.py: dot, concatenate without the __array_function__ wrapper")
def _dispatch(repeat):
    a, b = np.ones((100, 50), np.float32), np.ones((50, 10), np.float32)
    parts = [np.ones(10, np.float32)] * 4
    dot, cat = np.dot._implementation, np.concatenate._implementation
    return {"np.dot": per_call("f(a, b)", repeat, f=np.dot, a=a, b=b),
            "dot._implementation": per_call("f(a, b)", repeat, f=dot, a=a, b=b),
            "np.concatenate": per_call("f(p)", repeat, f=np.concatenate, p=parts),
            "concatenate._implementation": per_call("f(p)", repeat, f=cat, p=parts)}


@case("typed_number", "autograd/xp.py number(), compile's typed_number: a 0-d array constant")
def _typed_number(repeat):
    x = np.ones((100, 50), np.float32)
    two = np.array(2.0, np.float32)
    return {"x * 2.0 (Python float)": per_call("x * 2.0", repeat, x=x),
            "x * number(2.0)": per_call("x * two", repeat, x=x, two=two)}


@case("zeros_of", "autograd/xp.py zeros_of: maximum against a full zeros array")
def _zeros_of(repeat):
    x = np.random.default_rng(0).standard_normal((100, 50)).astype(np.float32)
    z0, zf = np.zeros((), np.float32), np.zeros((100, 50), np.float32)
    return {"maximum(x, 0-d zero)": per_call("m(x, z)", repeat, m=np.maximum, x=x, z=z0),
            "maximum(x, zeros_of)": per_call("m(x, z)", repeat, m=np.maximum, x=x, z=zf)}


@case("inline", "compile/inline.py: a lambda written out instead of called")
def _inline(repeat):
    g, b = np.ones((100, 50), np.float32), np.ones((100, 50), np.float32)
    f = lambda g, b: g * b  # noqa: E731  (what an Op's vjp is)
    return {"call the lambda": per_call("f(g, b)", repeat, f=f, g=g, b=b),
            "written out": per_call("g * b", repeat, g=g, b=b)}


@case("flat_update", "compile/flat.py: SGD over the 9-layer MLP's 34 small arrays")
def _flat(repeat):
    rng = np.random.default_rng(0)
    sizes = [50] * 24 + [10] * 2 + [50 * 50] * 8
    ps = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    gs = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    flat_p, flat_g = np.concatenate(ps), np.concatenate(gs)

    def per_param():
        for p, g in zip(ps, gs):
            p -= 0.01 * (g + 0.005 * p)

    def flat():
        flat_p.__isub__(0.01 * (np.concatenate(gs, out=flat_g) + 0.005 * flat_p))
    return {"per parameter (34 x 3 calls)": per_call("f()", repeat, f=per_param),
            "one flat array": per_call("f()", repeat, f=flat)}


@case("take", "nn/functional.py one-hot rows: table.take(y, axis=0) vs table[y]")
def _take(repeat):
    table = np.eye(10, dtype=np.float32)
    y = np.random.default_rng(0).integers(0, 10, 100)
    return {"table[y]": per_call("t[y]", repeat, t=table, y=y),
            "table.take(y, axis=0)": per_call("t.take(y, axis=0)", repeat, t=table, y=y)}


@case("weight_layout", "nn/layers.py Linear: x @ W.T with W stored in (in, out) order")
def _layout(repeat):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 3072)).astype(np.float32)
    w_out_in = rng.standard_normal((50, 3072)).astype(np.float32)  # (out, in) in memory
    w_in_out = np.ascontiguousarray(w_out_in.T).T  # (out, in) shape, (in, out) memory order
    return {"(out, in) memory: x @ W.T": per_call("x @ w.T", repeat, x=x, w=w_out_in),
            "(in, out) memory: x @ W.T": per_call("x @ w.T", repeat, x=x, w=w_in_out)}


@case("address", "compile/blas.py _address: a data pointer for the BLAS call")
def _address(repeat):
    import ctypes
    a = np.ones((3072, 50), np.float32)
    return {"a.ctypes.data": per_call("a.ctypes.data", repeat, a=a),
            "ctypes buffer view": per_call("addr(byte.from_buffer(a))", repeat, a=a,
                                           addr=ctypes.addressof, byte=ctypes.c_byte)}


@case("fused_block", "nn/fusion.py: Linear -> BatchNorm1d -> ReLU forward + backward, batch 100")
def _fused_block(repeat):
    import tensorgrad as tg
    from tensorgrad import nn
    rng = np.random.default_rng(0)
    x = tg.tensor(rng.standard_normal((100, 50)).astype(np.float32))
    block = nn.Sequential(nn.Linear(50, 50, seed=0), nn.BatchNorm1d(50), nn.ReLU())

    def step():
        block(x).sum().backward()

    out = {}
    for label, on in (("fused chain", True), ("layer by layer", False)):
        with tg.fast_mode(on, paths=["fused_chain"]):
            step()  # (the chain's trace and compiled code, made once)
            out[label] = per_call("f()", repeat, f=step)
    return out


def _axpy_case(repeat):
    """axpy's one BLAS pass vs numpy's two, on the 3-layer's first weight and the best MLP's."""
    from tensorgrad.compile import blas
    rng = np.random.default_rng(0)
    fn = blas._AXPY.get(np.dtype(np.float32))
    out = {}
    for shape in ((3072, 50), (3072, 1024)):
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.standard_normal(shape).astype(np.float32)
        tag = "x".join(map(str, shape))
        out[f"{tag} two passes"] = per_call("f(-1e-3, x, y)", repeat, f=blas.two_pass, x=x, y=y)
        if fn is not None:
            out[f"{tag} one BLAS pass"] = per_call("f(fn, y.size, (-1e-3,), x, (), y)", repeat,
                                                   f=blas._blas_pass, fn=fn, x=x, y=y)
    return out


def _in_subprocess(threads, repeat):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    code = (f"import json; from benchmarks.micro import _axpy_case; "
            f"print(json.dumps(_axpy_case({repeat})))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {f"{k}, {threads} thread{'s' if threads > 1 else ''}": v
            for k, v in json.loads(done.stdout).items()}


@case("axpy", "compile/blas.py: y += a * x in one BLAS pass vs numpy's two, 1 and 2 threads")
def _axpy(repeat):
    return {**_in_subprocess(1, repeat), **_in_subprocess(2, repeat)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated case names (default: all)")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--number", type=int, default=None,
                   help="calls per timing loop (default: as many as take 0.2 s)")
    p.add_argument("--out", default=os.path.join("runs", "micro"))
    args = p.parse_args(argv)
    global NUMBER
    NUMBER = args.number
    names = [n for n in args.only.split(",") if n] or list(CASES)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        p.error(f"unknown case(s) {unknown}; known: {sorted(CASES)}")
    results = {}
    for name in names:
        where, fn = CASES[name]
        timings = fn(args.repeat)
        results[name] = {"where": where, "us_per_call": {k: v * 1e6 for k, v in timings.items()}}
        print(f"{name}: {where}")
        for variant, us in results[name]["us_per_call"].items():
            print(f"    {variant:40s} {us:10.2f} us")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"command": " ".join(["python -m benchmarks.micro", *(argv or sys.argv[1:])]),
                   "repeat": args.repeat, "cases": results}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
