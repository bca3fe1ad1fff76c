"""tensorgrad.testing's random programs test themselves: every registered op is drawn, a program
records the features it uses and whether it is exact, keeps its values where ops are well
conditioned, rebuilds from its repr, takes users' ops, and the checker catches a fast path that
disagrees with the reference."""
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.testing import (
    BUILDERS,
    EXACT_OPS,
    FEATURES,
    Input,
    ModesDisagree,
    Program,
    ProgramOp,
    Step,
    _compare,
    assert_op_matches,
    assert_program_modes_agree,
    programs,
    registered_builders,
    shapes,
    tensors,
)

QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
         HealthCheck.large_base_example]
COMPARISONS = ("greater", "less", "greater_equal", "less_equal")
ELEMENTWISE = ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "where")
REDUCTIONS = ("sum", "mean", "var", "std", "max", "min", "logsumexp")


def test_every_registered_op_has_a_builder():
    assert sorted(registered_builders()) == sorted(tg.DIFFERENTIABLE)
    assert set(BUILDERS) <= set(tg.DIFFERENTIABLE)  # (no builder left for an op that is gone)


@pytest.mark.parametrize("name", sorted(registered_builders()))
def test_each_builder_draws_its_op_and_the_program_runs(name):
    program = find(programs(ops=[name], features=(), max_steps=2),
                   lambda p: any(s.op == name for s in p.steps),
                   settings=settings(max_examples=200, phases=[Phase.generate],
                                     suppress_health_check=QUIET, database=None))
    arrays = program.draw_values(np.random.default_rng(0))
    out = program(*program.leaves(arrays))
    assert out.dtype == np.dtype(program.inputs[0].dtype) and np.isfinite(out.data).all()


def _run_steps(program, arrays):
    """{name: array} of every input and step, run one step at a time without gradients."""
    env = {i.name: tg.tensor(a) for i, a in zip(program.inputs, arrays)}
    with tg.no_grad():
        for s in program.steps:
            args = [env[a] if isinstance(a, str) else a for a in s.args]
            env[s.out] = program._fn(s.op)(*args, **s.params)
    return {k: v.data for k, v in env.items()}


def _derived(program):
    """(features, exact) of a program, found from its steps and their shapes."""
    values = _run_steps(program, program.draw_values(np.random.default_rng(0)))
    inputs = {i.name for i in program.inputs}
    alias = {i.name: i.alias for i in program.inputs if i.alias is not None}
    features, exact, uses = set(), True, Counter()
    if alias:
        features.add("aliased_input")
    if any(i.shape == () for i in program.inputs) or values[program.result].shape == ():
        features.add("zero_dim")
    for s in program.steps:
        names = [a for a in s.args if isinstance(a, str)]
        uses.update(alias.get(a, a) for a in names)
        if any(values[a].shape == () for a in names):
            features.add("zero_dim")
        out = values[s.out].shape
        if s.op in ELEMENTWISE and any(values[a].shape != out for a in names) or \
                s.op in ("broadcast_to", "expand"):
            features.add("broadcasting")
            exact = False
        axis = s.params.get("axis", "none")
        if s.op in REDUCTIONS + ("softmax", "log_softmax") and axis is not None and \
                values[names[0]].ndim:
            features.add("reduction_axis")
        if s.op in REDUCTIONS and s.params["keepdims"] and values[names[0]].ndim:
            features.add("keepdims")
        if s.op in ("getitem", "unindex"):
            features.add("indexing")
            index = s.params["index"]
            if any(isinstance(i, list) for i in (index if isinstance(index, tuple) else (index,))):
                features.add("integer_array_index")
        if s.op == "sum_squares" and set(names) <= inputs:
            features.add("l2_penalty")
        if s.op in ("where", "linear_bn_relu", "dropout"):
            features.add(s.op)
        if s.op == "linear_bn_relu" and s.params["form"] == "nn":
            features.add("nn_modules")
        if s.op not in EXACT_OPS | set(COMPARISONS) | {"dropout"}:
            exact = False
    if max(uses.values(), default=0) >= 2:
        features.add("shared")
    if max(uses.values(), default=0) >= 3:  # gradients added in an order the mode chooses
        exact = False
    if program.inputs[0].dtype == "float32":
        features.add("float32")
    return features, exact


@settings(max_examples=60, deadline=None, suppress_health_check=QUIET)
@given(programs())
def test_a_program_records_the_features_it_uses_and_whether_it_is_exact(program):
    features, exact = _derived(program)
    assert set(program.features) == features
    assert features <= set(FEATURES) | {"float32", "nn_modules"}
    assert program.exact == exact


@settings(max_examples=100, deadline=None, suppress_health_check=QUIET)
@given(programs(), st.integers(0, 2 ** 32 - 1))
def test_values_stay_where_each_op_is_well_conditioned(program, seed):
    rng = np.random.default_rng(seed)
    first = program.draw_values(rng)
    for arrays in (first, program.draw_values(rng), program.flip_signs(first, rng)):
        values = _run_steps(program, arrays)
        for s in program.steps:
            x = [values[a] if isinstance(a, str) else np.asarray(a) for a in s.args]
            if s.op in ("log", "sqrt", "rsqrt"):
                assert x[0].min() >= 0.099, s
            if s.op == "div":
                assert np.abs(x[1]).min() >= 0.249, s
            if s.op == "exp":
                assert x[0].max() <= 3.01, s
            if s.op == "pow" and not (x[1].ndim == 0 and float(x[1]) in (2.0, 3.0)):
                assert x[0].min() >= 0.199, s
            out = values[s.out]
            assert out.dtype.kind == "b" or np.isfinite(out).all() and np.abs(out).max(
                initial=0) <= 1e5, s
        assert program.well_conditioned(arrays)


@settings(max_examples=30, deadline=None, suppress_health_check=QUIET)
@given(programs())
def test_a_program_is_rebuilt_from_its_repr(program):
    import numpy  # noqa: F401  (the repr's arrays are np.array)
    rebuilt = eval(repr(program), {"np": np, "Program": Program, "Input": Input, "Step": Step})
    assert repr(rebuilt) == repr(program)
    arrays = program.draw_values(np.random.default_rng(1))
    a, b = program.eager(*program.leaves(arrays)), rebuilt.eager(*rebuilt.leaves(arrays))
    np.testing.assert_array_equal(a.data, b.data)


@settings(max_examples=30, deadline=None, suppress_health_check=QUIET)
@given(programs(), st.integers(0, 2 ** 32 - 1))
def test_fresh_values_and_sign_flips_keep_shapes_dtypes_order_and_masks(program, seed):
    rng = np.random.default_rng(seed)
    first, second = program.draw_values(rng), program.draw_values(rng)
    flipped = program.flip_signs(first, rng)
    for i, a, b, c in zip(program.inputs, first, second, flipped):
        for x in (a, b, c):
            assert x.shape == i.shape and x.dtype == np.dtype(i.dtype)
            assert i.order == "C" or x.ndim < 2 or x.flags.f_contiguous
        if i.kind == "mask":
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
        else:
            np.testing.assert_array_equal(np.abs(c), np.abs(a))
            assert a.size < 4 or not np.array_equal(a, b)


def test_sign_flips_flip_some_elements():
    program = Program([Input("x0", (50,))], [Step("v1", "neg", ("x0",))], "v1")
    rng = np.random.default_rng(0)
    a = program.draw_values(rng)[0]
    flipped = program.flip_signs([a], rng)[0]
    assert 10 < (np.sign(flipped) != np.sign(a)).sum() < 40


def test_exact_programs_are_drawn_and_use_no_inexact_op():
    program = find(programs(exact=True), lambda p: len(p.steps) >= 4,
                   settings=settings(phases=[Phase.generate], database=None, max_examples=2000,
                                     suppress_health_check=QUIET))
    assert program.exact and {s.op for s in program.steps} <= EXACT_OPS | set(COMPARISONS) | {
        "dropout"}


@pytest.mark.parametrize("exponent", [2, 0.5, -0.5])
def test_a_power_runs_numpy_s_power_in_every_mode_so_it_is_exact(exponent):
    program = find(programs(ops=["pow"], features=(), exact=True),
                   lambda p: any(s.op == "pow" and s.args[1] == exponent for s in p.steps),
                   settings=settings(phases=[Phase.generate], database=None, max_examples=2000,
                                     suppress_health_check=QUIET))
    assert program.exact


@settings(max_examples=60, deadline=None, suppress_health_check=QUIET)
@given(programs(dtypes=("float32",), features=("linear_bn_relu",)))
def test_float32_programs_use_batch_norm_in_eval_mode_only(program):
    assert not any(s.params["training"] for s in program.steps if s.op == "linear_bn_relu")


def test_batch_norm_meets_well_spread_batches_only():
    program = Program(
        inputs=[Input("x0", (2, 1)), Input("w1", (1, 1), kind="param"),
                Input("w2", (1,), kind="param"), Input("w3", (1,), kind="param"),
                Input("w4", (1,), kind="param")],
        steps=[Step("v5", "linear_bn_relu", ("x0", "w1", "w2", "w3", "w4"), form="nn",
                    bias=True, training=True)],
        result="v5")
    one = np.ones((1,))
    spread = [np.array([[1.0], [-1.0]]), np.ones((1, 1)), 0 * one, one, one]
    assert program.well_conditioned(spread)
    off_zero = [np.array([[1.0], [1.2]]), np.ones((1, 1)), 0 * one, one, one]
    narrow = [np.array([[0.01], [-0.01]]), np.ones((1, 1)), 0 * one, one, one]
    assert not program.well_conditioned(off_zero) and not program.well_conditioned(narrow)
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert program.well_conditioned(program.draw_values(rng))


# ---- your own ops -----------------------------------------------------------------------------
SOFTPLUS = ProgramOp("softplus", lambda x: tg.log(1 + tg.exp(x)), domain=(-5, 5), range=(0, 6))


class _Cube(tg.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * 3 * x * x


CUBE = ProgramOp("cube", _Cube.apply, domain=(-2, 2), range=(-8, 8), fusable=False)


@settings(max_examples=20, deadline=None, suppress_health_check=QUIET)
@given(programs(ops=(), extra_ops=[SOFTPLUS, CUBE]), st.integers(0, 2 ** 32 - 1))
def test_programs_of_your_own_ops_run_in_every_mode(program, seed):
    assert program.fusable == ("cube" not in {s.op for s in program.steps})
    assert_program_modes_agree(program, seed)


def test_your_own_op_is_drawn_with_its_domain():
    program = find(programs(ops=(), extra_ops=[ProgramOp("log1", tg.log, domain=(0.5, 3),
                                                          range=(-1, 1.1))], features=()),
                   lambda p: any(s.op == "log1" for s in p.steps),
                   settings=settings(phases=[Phase.generate], database=None,
                                     suppress_health_check=QUIET))
    for seed in range(5):
        arrays = program.draw_values(np.random.default_rng(seed))
        values = _run_steps(program, arrays)
        for s in program.steps:
            if s.op == "log1":
                assert values[s.args[0]].min() >= 0.5


# ---- the checker ------------------------------------------------------------------------------
def _one_op(op, shape=(3,), dtype="float64", exact=False):
    return Program([Input("x0", shape, dtype)], [Step("v1", op.name, ("x0",))], "v1",
                   exact=exact, ops=[op])


def test_the_checker_catches_a_value_off_by_a_billionth_in_fast_mode():
    off = ProgramOp("off", lambda x: x * (1.0 + 1e-9 if tg.is_fast() else 1.0))
    with pytest.raises(ModesDisagree, match="eager and reference disagree on the value"):
        assert_program_modes_agree(_one_op(off), seed=0)


def test_an_exact_program_must_agree_bitwise():
    one_ulp = ProgramOp("one_ulp", lambda x: x * (1.0 + 2 ** -52 if tg.is_fast() else 1.0))
    assert_program_modes_agree(_one_op(one_ulp), seed=0)  # within 1e-12
    with pytest.raises(ModesDisagree, match="not bitwise equal"):
        assert_program_modes_agree(_one_op(one_ulp, exact=True), seed=0)


class _Wrong(tg.Function):
    """The gradient of 2x, off by a millionth in fast mode."""

    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output * (2.0 + 1e-6 if tg.is_fast() else 2.0)


def test_the_checker_catches_a_wrong_gradient_in_fast_mode():
    wrong = ProgramOp("wrong", _Wrong.apply, fusable=False)
    with pytest.raises(ModesDisagree, match="backward.. gradient of input 0"):
        assert_program_modes_agree(_one_op(wrong), seed=0)


def test_float32_results_agree_within_4_ulp_at_their_scale():
    want = np.array([1.0, 2.0, 1e-3], np.float32)
    assert _compare(want + 4 * np.spacing(want), want, False) is None
    assert "4 ulp" in _compare(want + 6 * np.spacing(want), want, False)
    # an element far below the scale (a sum that cancelled) counts its ulps at the scale
    noise = np.array([2.0, 1e-9], np.float32)
    assert _compare(noise + np.array([0, 3e-7], np.float32), noise, False) is None
    assert _compare(want.astype(np.float64), want, False).startswith("shape/dtype")


def test_float32_results_on_either_side_of_the_exact_value_agree():
    exact = np.array([1.0, 2.0])
    want = (exact + 3 * np.spacing(np.float32(exact))).astype(np.float32)
    got = (exact - 3 * np.spacing(np.float32(exact))).astype(np.float32)  # 6 ulp from want
    assert "6 ulp" in _compare(got, want, False)
    assert _compare(got, want, False, exact_value=lambda: exact) is None
    far = (exact - 6 * np.spacing(np.float32(exact))).astype(np.float32)  # 9 ulp, 6 off
    assert "from the float64 result" in _compare(far, want, False, exact_value=lambda: exact)


def test_float64_results_agree_within_1e12_at_their_scale():
    want = np.array([1e3, 1.0, 0.0])
    assert _compare(want + 5e-10 * np.array([1, 0, 1]), want, False) is None
    assert "1e-12" in _compare(want + 5e-9 * np.array([1, 0, 0]), want, False)
    assert "bitwise" in _compare(want + np.spacing(want), want, True)


def test_assert_op_matches_catches_a_forward_unlike_numpy():
    assert_op_matches(tg.exp, np.exp, tensors())
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        assert_op_matches(tg.exp, lambda x: np.exp(x) * (1 + 1e-9), tensors())
    with pytest.raises(AssertionError, match="dtype float64, numpy's float32"):
        assert_op_matches(tg.exp, lambda x: np.exp(x).astype(np.float32), tensors())
    with pytest.raises(AssertionError, match="shape"):
        assert_op_matches(lambda x: tg.sum(x, axis=0), lambda x: np.sum(x, axis=0, keepdims=True),
                          tensors(shapes(min_dims=1)))
