"""Reference mode: `tg.set_fast(False)` / `tg.fast_mode(False)` / TENSORGRAD_FAST=0 switch every
fast path off, leaving the textbook engine; `tg.fast_paths()` names and counts the fast paths.

Each test that asserts counters above 0 takes its literal list from `EXPECTED`, and
`test_every_fast_path_is_asserted_by_some_test` fails when a fast path is in no list.
"""
import ast
import gc
import importlib
import inspect
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import tensorgrad as tg
from models.mlp import MLP, presets
from tensorgrad import nn
from tensorgrad.nn import functional as F
from tensorgrad.optim import SGD
from tensorgrad.optim.lr_scheduler import CyclicLR

_walk = importlib.import_module("tensorgrad.autograd.walk")
README = pathlib.Path(__file__).resolve().parents[2] / "README.md"

# the fast paths each scenario below must take (and, in fast mode, no others)
EXPECTED = {
    "momentum_training": [
        "fused_program", "fused_chain", "lowering", "inlined_lambda", "typed_number",
        "lean_forward", "early_free", "blas_reduction", "vjp_all", "fresh_gradient",
        "lazy_scaled", "axpy", "momentum_axpby",
        "batched_running_stats",
    ],
    "plain_sgd_training": [  # SGD without momentum: the flat update as well
        "fused_program", "fused_chain", "lowering", "inlined_lambda", "typed_number",
        "lean_forward", "early_free", "blas_reduction", "vjp_all", "fresh_gradient",
        "lazy_scaled", "axpy", "flat_update",
        "batched_running_stats",
    ],
    "sum_of_a_leaf": ["compact_gradient"],  # x.sum(): the gradient stays (1, 1) until x
    "leaf_used_twice": ["compact_gradient", "fresh_gradient", "inplace_accumulate"],
    "loader_epoch": ["prefetch_batch"],  # a DataLoader's `for` loop: batches prepared ahead
    "import": ["malloc_tuning"],
}


@pytest.fixture(autouse=True)
def _start_fast():
    """Every test starts in fast mode (also under TENSORGRAD_FAST=0) and ends in the mode it
    found."""
    with tg.fast_mode(True):
        yield


def _hit():
    return {name for name, path in tg.fast_paths().items() if path.hits > 0}


# ---- the switch -------------------------------------------------------------------------------
def test_set_fast_and_is_fast():
    assert tg.is_fast()
    try:
        tg.set_fast(False)
        assert not tg.is_fast()
    finally:
        tg.set_fast(True)
    assert tg.is_fast()


def test_fast_mode_context_manager_and_decorator_restore_the_mode():
    with tg.fast_mode(False):
        assert not tg.is_fast()
        with tg.fast_mode(True):
            assert tg.is_fast()
        assert not tg.is_fast()
    assert tg.is_fast()

    @tg.fast_mode(False)
    def inside():
        return tg.is_fast()

    assert inside() is False and tg.is_fast()
    with pytest.raises(ZeroDivisionError):
        with tg.fast_mode(False):
            1 / 0
    assert tg.is_fast()


def test_fast_paths_lists_each_path_with_a_purpose_and_a_counter():
    paths = tg.fast_paths()
    assert "fused_program" in paths
    for name, path in paths.items():
        assert isinstance(path, tg.FastPath) and path.purpose and path.per, name
        assert isinstance(path.hits, int) and path.hits >= 0, name
    tg.sum_squares(tg.tensor([1.0, 2.0], requires_grad=True)).backward()
    assert tg.fast_paths(reset=True)["vjp_all"].hits > 0  # the snapshot before the reset
    assert all(path.hits == 0 for path in tg.fast_paths().values())


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "TENSORGRAD_FAST_OFF": "", **env})


GLIBC = sys.platform.startswith("linux") and __import__("platform").libc_ver()[0] == "glibc"
_IMPORT_REPORT = ("import tensorgrad as tg; print(tg.is_fast(), tg.memory.APPLIED, "
                  "sorted(n for n, p in tg.fast_paths().items() if p.hits))")
_COMPUTE = ("import numpy as np, tensorgrad as tg; x = tg.tensor(np.ones((50, 4)), "
            "requires_grad=True); ((tg.softmax(x, axis=1).sum(axis=0) ** 2).sum() "
            "+ tg.sum_squares(x)).backward(); "
            "print(sorted(n for n, p in tg.fast_paths().items() if p.hits))")


def test_environment_variable_switches_everything_off_at_import():
    out = _run(_IMPORT_REPORT, TENSORGRAD_FAST="0")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "[]"]  # no malloc tuning either
    fast, ref = _run(_COMPUTE, TENSORGRAD_FAST="1"), _run(_COMPUTE, TENSORGRAD_FAST="0")
    assert fast.returncode == ref.returncode == 0, fast.stderr + ref.stderr
    assert "blas_reduction" in fast.stdout and ref.stdout.split() == ["[]"]


@pytest.mark.skipif(not GLIBC, reason="malloc tuning only exists on glibc")
def test_the_import_tunes_malloc_in_fast_mode_and_counts_it():
    out = _run(_IMPORT_REPORT, TENSORGRAD_FAST="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["True", "True"]
    assert eval(out.stdout.split(maxsplit=2)[2]) == EXPECTED["import"]


def test_set_fast_later_leaves_the_allocator_as_the_import_set_it():
    tuned = tg.memory.APPLIED
    with tg.fast_mode(False):
        assert tg.memory.APPLIED is tuned


@pytest.mark.parametrize("value", ["yes", "off", "2"])
def test_an_unknown_value_of_the_environment_variable_is_refused(value):
    run = _run("import tensorgrad", TENSORGRAD_FAST=value)
    assert run.returncode != 0 and f"TENSORGRAD_FAST={value!r}" in run.stderr


# ---- the reference walk -----------------------------------------------------------------------
def _lines(fn):
    """Lines of `fn`'s source but its docstring (nested helpers included)."""
    source = inspect.getsource(fn)
    body = ast.parse(source).body[0].body
    doc = body[0] if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        else None
    return len(source.splitlines()) - (0 if doc is None else doc.end_lineno - doc.lineno + 1)


# the readable core: the walk and its reference hooks (what a newcomer reads)
CORE = ["_backward", "_needed", "_vjps", "_fit", "_copy_and_add", "_broadcast"]


def test_the_reference_walk_with_its_hooks_is_at_most_120_lines():
    lines = {name: _lines(getattr(_walk, name)) for name in CORE}
    assert sum(lines.values()) <= 120, f"the reference walk has {lines} lines"


def test_reference_mode_walks_with_the_reference_hooks(monkeypatch):
    calls = []
    real = _walk._copy_and_add
    monkeypatch.setattr(_walk, "REFERENCE", _walk.REFERENCE._replace(
        accumulate=lambda *a: calls.append(1) or real(*a)))
    monkeypatch.setattr(_walk, "_CHOSEN", {})
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert calls == []
    with tg.fast_mode(False):
        (x * x).sum().backward()
        tg.grad((x * 3.0).sum(), x)
    assert calls == [1, 1]
    np.testing.assert_array_equal(x.grad.data, [4.0, 8.0])
    gc.collect()  # a hooked leaf of an earlier test, in a reference cycle, would choose hooks.py's
    with tg.fast_mode(False, paths=sorted(_walk._WALK_PATHS)):  # the walk's paths off alone
        assert _walk._hooks(True) is _walk.REFERENCE


def test_reference_mode_raises_the_same_error_for_a_freed_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    for fast in (True, False):
        with tg.fast_mode(fast):
            y = (x.exp() * 2.0).sum()
            y.backward()
            with pytest.raises(tg.GraphFreedError, match="second time"):
                y.backward()


def test_reference_gradients_are_arrays_of_their_own_in_the_inputs_shape():
    """No compact gradient and no shared array: x.sum()'s gradient is a writable (3, 4) array."""
    x = tg.tensor(np.ones((3, 4)), requires_grad=True)
    with tg.fast_mode(False):
        x.sum().backward()
        (g,) = tg.grad(x.sum(), x)
    for got in (x.grad.data, g.data):
        assert got.shape == (3, 4) and got.flags.writeable and got.base is None
        np.testing.assert_array_equal(got, np.ones((3, 4)))


# ---- counters in small scenarios --------------------------------------------------------------
def test_the_gradient_of_a_sum_stays_compact_in_fast_mode_only():
    x = tg.tensor(np.ones((3, 4)), requires_grad=True)
    tg.fast_paths(reset=True)
    x.sum().backward()
    assert _hit() == set(EXPECTED["sum_of_a_leaf"])
    tg.fast_paths(reset=True)
    with tg.fast_mode(False):
        x.sum().backward()
    assert _hit() == set()
    np.testing.assert_array_equal(x.grad.data, np.full((3, 4), 2.0))


def test_a_leaf_used_twice_accumulates_in_place_in_fast_mode_only():
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = tg.tensor(np.ones((2, 3)), requires_grad=False)
    tg.fast_paths(reset=True)
    (x * y + x.exp()).sum().backward()
    assert _hit() == set(EXPECTED["leaf_used_twice"])
    fast = x.grad.data
    x.grad = None
    tg.fast_paths(reset=True)
    with tg.fast_mode(False):
        (x * y + x.exp()).sum().backward()
    assert _hit() == set()
    np.testing.assert_array_equal(x.grad.data, fast)  # the same numpy calls: the same bits


# ---- the 9-layer MLP training step ------------------------------------------------------------
def _train(model, opt, sched, steps, seed=0, lam=0.005):
    """`steps` updates of the benchmark's training step (cross-entropy + lam * L2, CyclicLR)
    on random CIFAR-shaped batches; returns the costs."""
    rng = np.random.default_rng(seed)
    dtype = model[0].weight.dtype
    costs = []
    for _ in range(steps):
        x = tg.tensor(rng.standard_normal((100, 3072)).astype(dtype))
        y = rng.integers(0, 10, 100)
        cost = F.cross_entropy(model(x), y) + lam * nn.l2_penalty(model)
        opt.zero_grad()
        cost.backward()
        opt.step()
        sched.step()
        costs.append(cost.item())
    return costs


def _setup(momentum, dtype=np.float32):
    """The benchmark's 9-layer network: batch norm, fused Sequential, flat parameters."""
    model = MLP(presets["nine_layer"], seed=0, dtype=dtype)
    opt = SGD(model.parameters(), lr=1e-5, momentum=momentum)
    sched = CyclicLR(opt, base_lr=1e-5, max_lr=1e-1, step_size_up=2250)
    return model, opt, sched


def _state(model, opt):
    """Every parameter, buffer and momentum buffer, by name."""
    out = {name: np.array(v) for name, v in model.state_dict().items()}
    names = {id(p): name for name, p in model.named_parameters()}
    for p, s in opt.state.items():
        for key, value in s.items():
            out[f"{names[id(p)]}.{key}"] = np.array(value)
    return out


@pytest.mark.parametrize("momentum, scenario", [(0.9, "momentum_training"),
                                                (0.0, "plain_sgd_training")])
def test_three_training_steps_take_exactly_the_expected_fast_paths(momentum, scenario):
    model, opt, sched = _setup(momentum)
    assert model[0].weight._flat is None and model[1].weight._flat is not None  # flattened
    tg.fast_paths(reset=True)
    _train(model, opt, sched, 3)
    assert _hit() == set(EXPECTED[scenario])

    model, opt, sched = _setup(momentum)
    tg.fast_paths(reset=True)
    with tg.fast_mode(False):
        _train(model, opt, sched, 3)
    assert {name: path.hits for name, path in tg.fast_paths().items() if path.hits} == {}


def test_a_loader_epoch_takes_the_prefetch_path_only_in_fast_mode():
    """A DataLoader's `for` loop with prefetch_factor prepares its batches on a background
    thread (one hit per batch); in reference mode, or with the path off alone, it gathers them
    itself: the same batches (tests/data/test_prefetch.py checks them bit for bit)."""
    from tensorgrad.data import DataLoader
    x = np.arange(120, dtype=np.float32).reshape(30, 4)
    tg.fast_paths(reset=True)
    fast = list(DataLoader(x, batch_size=10, seed=0, prefetch_factor=2))
    assert _hit() == set(EXPECTED["loader_epoch"])
    assert tg.fast_paths()["prefetch_batch"].hits == 3
    for off in (None, ["prefetch_batch"]):
        tg.fast_paths(reset=True)
        with tg.fast_mode(False, paths=off):
            plain = list(DataLoader(x, batch_size=10, seed=0, prefetch_factor=2))
        assert _hit() == set()
        for a, b in zip(fast, plain, strict=True):
            np.testing.assert_array_equal(a, b, strict=True)


@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_fast_and_reference_training_agree_in_float64(momentum):
    fast_model, fast_opt, sched = _setup(momentum, np.float64)
    fast_costs = _train(fast_model, fast_opt, sched, 3)
    with tg.fast_mode(False):
        ref_model, ref_opt, sched = _setup(momentum, np.float64)
        ref_costs = _train(ref_model, ref_opt, sched, 3)
    np.testing.assert_allclose(fast_costs, ref_costs, rtol=1e-12, atol=1e-12)
    fast, ref = _state(fast_model, fast_opt), _state(ref_model, ref_opt)
    assert fast.keys() == ref.keys() and len(fast) > 50
    for name in ref:
        np.testing.assert_allclose(fast[name], ref[name], rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_model_trained_fast_then_in_reference_mode_takes_the_plain_path(momentum):
    """Flat parameters, fused chains and programs, momentum buffers built in fast mode, trained
    on with the fast paths off: no counter moves, and the result is the reference run's."""
    model, opt, sched = _setup(momentum, np.float64)
    costs = _train(model, opt, sched, 2)
    tg.fast_paths(reset=True)
    with tg.fast_mode(False):
        costs += _train(model, opt, sched, 2, seed=1)
    assert _hit() == set()

    with tg.fast_mode(False):
        ref_model, ref_opt, ref_sched = _setup(momentum, np.float64)
        ref_costs = _train(ref_model, ref_opt, ref_sched, 2)
        ref_costs += _train(ref_model, ref_opt, ref_sched, 2, seed=1)
    np.testing.assert_allclose(costs, ref_costs, rtol=1e-12, atol=1e-12)
    ref = _state(ref_model, ref_opt)
    for name, value in _state(model, opt).items():
        np.testing.assert_allclose(value, ref[name], rtol=1e-12, atol=1e-12, err_msg=name)
    assert model[1].weight.data.base is model[1].weight._flat.data  # still a view of it


def test_a_fused_node_recorded_fast_is_differentiated_by_the_reference_walk():
    """A graph built in fast mode (one fused chain node), its backward in reference mode: the
    chain is run again op by op and differentiated by the reference walk."""
    model, _, _ = _setup(0.0, np.float64)
    x = tg.tensor(np.random.default_rng(0).standard_normal((100, 3072)))
    y = np.random.default_rng(1).integers(0, 10, 100)

    def cost():
        return F.cross_entropy(model(x), y) + 0.005 * nn.l2_penalty(model)

    cost().backward()
    fast = {name: p.grad.data.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    graph = cost()  # (training mode: batch statistics, so the same gradients)
    tg.fast_paths(reset=True)
    with tg.fast_mode(False):
        graph.backward()
    assert _hit() == set()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.data, fast[name], rtol=1e-12, atol=1e-12,
                                   err_msg=name)


# ---- one path switched off alone ---------------------------------------------------------------
# the paths whose switch-off runs the same numpy arithmetic (only calls, names and memory differ):
# bitwise the fast result; the others within 1e-12 in float64
BITWISE = ["inlined_lambda", "typed_number", "lean_forward", "early_free",
           "compact_gradient", "vjp_all", "fresh_gradient", "inplace_accumulate", "flat_update",
           "batched_running_stats", "prefetch_batch"]
SWITCHABLE = [name for name in tg.fast_paths() if name != "malloc_tuning"]  # (at import only)


def _inside(path):
    """`path` and the paths that only exist inside it (tg.mode.PARENT), by their definition."""
    return {name for name in tg.fast_paths()
            if name == path or path in _ancestors(name)}


def _ancestors(name):
    out = set()
    for parent in tg.mode.PARENT.get(name, ()):
        out |= {parent} | _ancestors(parent)
    return out


@pytest.fixture(scope="module")
def fast_plain_sgd_run():
    """The benchmark's training step (SGD without momentum), 3 steps in float64, all fast."""
    with tg.fast_mode(True):
        model, opt, sched = _setup(0.0, np.float64)
        costs = _train(model, opt, sched, 3)
    return costs, _state(model, opt)


def _assert_same(got, want, bitwise, what):
    if bitwise:
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("path", SWITCHABLE)
def test_one_fast_path_switched_off_alone_is_not_taken_and_changes_no_result(
        path, fast_plain_sgd_run):
    """3 training steps with `path` off: its counter (and those of the paths inside it) stays
    0, every other path the step takes still counts, and the result is fast mode's."""
    fast_costs, fast = fast_plain_sgd_run
    F._normalize_fused.partial_programs.clear()  # traced afresh: compile-time counters count
    with tg.fast_mode(False, paths=[path]):
        assert not tg.is_fast() and not tg.is_fast(path)
        assert all(tg.is_fast(name) for name in set(SWITCHABLE) - _inside(path))
        model, opt, sched = _setup(0.0, np.float64)
        tg.fast_paths(reset=True)
        costs = _train(model, opt, sched, 3)
        hit = _hit()
    assert tg.is_fast()
    off = _inside(path)
    assert not hit & off, sorted(hit & off)
    assert set(EXPECTED["plain_sgd_training"]) - off <= hit, \
        sorted(set(EXPECTED["plain_sgd_training"]) - off - hit)
    bitwise = path in BITWISE
    _assert_same(costs, fast_costs, bitwise, "costs")
    state = _state(model, opt)
    assert state.keys() == fast.keys()
    for name in fast:
        _assert_same(state[name], fast[name], bitwise, name)


@pytest.mark.parametrize("path", ["compact_gradient", "fresh_gradient", "inplace_accumulate"])
def test_the_walks_own_paths_switched_off_alone_in_the_small_scenarios(path):
    """compact_gradient and inplace_accumulate, which the training step does not take, in the
    scenarios that do: switched off, their counter stays 0 and the gradient is the same."""
    def leaf_used_twice():
        x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
        (x * tg.tensor(np.ones((2, 3))) + x.exp()).sum().backward()
        return x.grad.data

    def sum_of_a_leaf():
        x = tg.tensor(np.ones((3, 4)), requires_grad=True)
        x.sum().backward()
        return x.grad.data

    for scenario, run in (("leaf_used_twice", leaf_used_twice), ("sum_of_a_leaf", sum_of_a_leaf)):
        fast = run()
        tg.fast_paths(reset=True)
        with tg.fast_mode(False, paths=[path]):
            got = run()
        hit = _hit()
        assert path not in hit, scenario
        assert set(EXPECTED[scenario]) - {path} <= hit, scenario
        assert got.shape == fast.shape and got.flags.writeable, scenario
        np.testing.assert_array_equal(got, fast, err_msg=scenario)


def test_switching_a_parent_off_switches_the_paths_inside_it_off():
    with tg.fast_mode(False, paths=["fused_program"]):
        assert not tg.is_fast("lowering") and not tg.is_fast("batched_running_stats")
        assert not tg.is_fast("early_free") and tg.is_fast("vjp_all") and tg.is_fast("axpy")
    with tg.fast_mode(False, paths="vjp_all"):  # the fused backward's single call
        assert not tg.is_fast("early_free") and tg.is_fast("fused_program")
    assert all(tg.is_fast(name) for name in tg.fast_paths())


def test_per_path_switches_nest_and_restore():
    with tg.fast_mode(False, paths=["axpy"]):
        with tg.fast_mode(False, paths=["lowering", "flat_update"]):
            assert [tg.is_fast(n) for n in ("axpy", "lowering", "flat_update")] == [False] * 3
            with tg.fast_mode(True, paths=["axpy"]):
                assert tg.is_fast("axpy") and not tg.is_fast("lowering")
            assert not tg.is_fast("axpy")
        assert not tg.is_fast("axpy") and tg.is_fast("lowering") and tg.is_fast("flat_update")
        with tg.fast_mode(False):
            assert not any(tg.is_fast(name) for name in tg.fast_paths())
        assert not tg.is_fast("axpy") and tg.is_fast("blas_reduction")
    assert tg.is_fast()
    try:
        tg.set_fast(False)
        tg.set_fast(True, paths=["blas_reduction"])  # one path back on in reference mode
        assert tg.is_fast("blas_reduction") and not tg.is_fast("axpy") and not tg.is_fast()
        assert tg.tensor([[3.0, 4.0]]).sum(axis=1).data.tolist() == [7.0]
        assert tg.fast_paths(reset=True)["blas_reduction"].hits == 1
    finally:
        tg.set_fast(True)


@pytest.mark.parametrize("call", [lambda: tg.set_fast(False, paths=["axpi"]),
                                  lambda: tg.fast_mode(False, paths="axpy,lowring"),
                                  lambda: tg.is_fast("fused")])
def test_an_unknown_path_name_is_refused_by_name(call):
    with pytest.raises(ValueError, match=r"unknown fast path.*'(axpi|lowring|fused)'"):
        call()
    assert tg.is_fast()


def test_malloc_tuning_is_only_switched_off_by_the_environment():
    with pytest.raises(ValueError, match="TENSORGRAD_FAST_OFF=malloc_tuning"):
        tg.set_fast(False, paths=["malloc_tuning"])
    assert tg.is_fast()
    out = _run(_IMPORT_REPORT, TENSORGRAD_FAST="1", TENSORGRAD_FAST_OFF="malloc_tuning")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "[]"]


def test_the_environment_switches_named_paths_off_at_import():
    code = ("import numpy as np, tensorgrad as tg; print(sorted(n for n in tg.fast_paths() "
            "if not tg.is_fast(n))); " + _COMPUTE.split("; ", 1)[1])
    out = _run(code, TENSORGRAD_FAST="1", TENSORGRAD_FAST_OFF=" blas_reduction,fused_chain ")
    assert out.returncode == 0, out.stderr
    off, hit = out.stdout.splitlines()
    assert eval(off) == ["batched_running_stats", "blas_reduction", "fused_chain"]
    assert "blas_reduction" not in eval(hit) and "vjp_all" in eval(hit)
    bad = _run("import tensorgrad", TENSORGRAD_FAST_OFF="axpy,nope")
    assert bad.returncode != 0 and "TENSORGRAD_FAST_OFF: unknown fast path(s) 'nope'" in bad.stderr


# ---- the registry -----------------------------------------------------------------------------
def test_every_fast_path_is_asserted_by_some_test():
    asserted = set().union(*map(set, EXPECTED.values()))
    assert asserted <= set(tg.fast_paths()), asserted - set(tg.fast_paths())
    missing = set(tg.fast_paths()) - asserted
    assert not missing, f"fast paths no test asserts above 0: {sorted(missing)}"


def test_the_readmes_table_lists_the_fast_paths_of_the_registry():
    text = README.read_text()
    section = text.split("## How the engine works", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_0-9]+)` \| (.*?) \| (.*?) \|$", section, flags=re.M)
    paths = tg.fast_paths()
    assert [name for name, _, _ in rows] == list(paths)
    for name, purpose, per in rows:
        assert (purpose, per) == (paths[name].purpose, paths[name].per), name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ops_with_a_fast_forward_compute_it_with_plain_numpy_in_reference_mode(dtype):
    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_normal((64, 10))).astype(dtype) + 0.5  # (roots: positive)
    w = rng.standard_normal((7, 10)).astype(dtype)
    cases = {
        "sum": lambda x: tg.sum(x, axis=0), "mean": lambda x: tg.mean(x, axis=1),
        "var": lambda x: tg.var(x, axis=0), "softmax": lambda x: tg.softmax(x, axis=1),
        "log_softmax": lambda x: tg.log_softmax(x, axis=1),
        "matmul": lambda x: tg.matmul(x, w.T), "linear": lambda x: tg.linear(x, w, w[:, 0]),
        "sum_squares": lambda x: tg.sum_squares(x, w), "square": lambda x: x ** 2,
        "sqrt": lambda x: x ** 0.5, "rsqrt": lambda x: x ** -0.5,
    }
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for name, fn in cases.items():
        fast = fn(tg.tensor(x)).data
        tg.fast_paths(reset=True)
        with tg.fast_mode(False):
            ref = fn(tg.tensor(x)).data
        assert _hit() == set(), name
        assert ref.dtype == fast.dtype == dtype, name
        np.testing.assert_allclose(ref, fast, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("fast", [True, False])
def test_a_fused_function_gives_an_input_its_result_ignores_a_zero_gradient_in_both_modes(fast):
    f = tg.fuse(lambda x, y, z: (x * 2).sum() + z.sum())
    x, y = tg.tensor([1.0, 2.0], requires_grad=True), tg.tensor([3.0], requires_grad=True)
    z = tg.tensor([4.0, 5.0], requires_grad=True)
    with tg.fast_mode(fast):
        gx, gy, gz = tg.grad(f(x, y, z), [x, y, z])
        (hx,) = tg.grad(tg.grad(f(x, y, z) * (x * x).sum(), x, create_graph=True)[0].sum(), x)
        f(x, y, z).backward()
    np.testing.assert_array_equal(gx.data, [2.0, 2.0])
    np.testing.assert_array_equal(gy.data, [0.0])
    np.testing.assert_array_equal(gz.data, [1.0, 1.0])
    np.testing.assert_array_equal(y.grad.data, [0.0])
    # G = sum_i dF/dx_i for F = f * sum(x ** 2), f = 2 sum(x) + sum(z): G = 2 n sum(x ** 2)
    # + 2 f sum(x), so dG/dx_j = 4 n x_j + 4 sum(x) + 2 f = 8 x_j + 12 + 30
    np.testing.assert_array_equal(hx.data, [50.0, 58.0])
