"""compile.inline: a lambda written out in generated source computes what calling it does."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.compile.inline import expression
from tensorgrad.ops import elementwise

SCALE = 3.0


def _make(offset):
    return lambda a, b, c=2.0: (a - offset) * b ** c + SCALE


def _run(fn, args, kwargs=None, values=None):
    """Evaluate the inlined source with the arguments bound to names x0, x1, ..."""
    env = {}
    names = [f"x{i}" for i in range(len(args))]
    env.update(zip(names, args))
    named = {}
    for k, v in (kwargs or {}).items():
        env[f"k_{k}"] = v
        named[k] = f"k_{k}"
    src = expression(fn, names, named, env, "p")
    assert src is not None
    return eval(src, env), src


def test_closures_globals_defaults_and_keywords_compute_as_the_call():
    fn = _make(1.5)
    a, b = np.arange(6.0).reshape(2, 3), np.full(3, 0.5)
    for kwargs in ({}, {"c": 3.0}):
        got, src = _run(fn, [a, b], kwargs)
        np.testing.assert_array_equal(got, fn(a, b, **kwargs))
        assert "x0" in src and "x1" in src and "lambda" not in src


def test_parameters_are_replaced_by_name_so_nothing_is_evaluated_twice():
    fn = lambda a, b: a * a + b  # noqa: E731 (one argument used twice)
    env = {"x": np.array([2.0]), "y": np.array([1.0])}
    src = expression(fn, ["x", "y"], {}, env, "p")
    assert eval(src, env) == 5.0 and src.count("x") == 2


def test_what_cannot_be_inlined_is_left_as_a_call():
    two_on_a_line = [lambda a: a + 1, lambda a: a + 2]
    assert expression(two_on_a_line[0], ["x"], {}, {}, "p") is None
    assert expression(lambda *a: a, ["x"], {}, {}, "p") is None
    assert expression(lambda a: [v for v in a], ["x"], {}, {}, "p") is None
    assert expression(np.add, ["x", "y"], {}, {}, "p") is None  # not a lambda
    assert expression(lambda a, b: a + b, ["x"], {}, {}, "p") is None  # b has no value


def test_an_ops_vjp_inlines():
    g, out, a, b = (np.random.default_rng(0).standard_normal(4) for _ in range(4))
    env = {"xp": None, "g": g, "o": out, "a": a, "b": b}
    vjp = elementwise.mul.vjps[0]
    src = expression(vjp, ["xp", "g", "o", "a", "b"], {}, env, "p")
    np.testing.assert_array_equal(eval(src, env), vjp(None, g, out, a, b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_fused_program_with_inlined_vjps_gives_the_eager_gradients(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)).astype(dtype)
    w = rng.standard_normal(4).astype(dtype)

    def block(x, w):
        h = tg.ops.relu(x * w - 0.5)
        return (h * h + 1.0).sqrt().tanh() * x.exp()

    grads = []
    for fn in (block, tg.fuse(block)):
        xt, wt = tg.tensor(x, requires_grad=True), tg.tensor(w, requires_grad=True)
        for _ in range(2):  # the second call runs the compiled backward
            xt.grad = wt.grad = None
            fn(xt, wt).sum().backward()
        grads.append((xt.grad.data, wt.grad.data))
    for e, f in zip(*grads):
        np.testing.assert_allclose(f, e, rtol=1e-6)


def test_a_users_op_stays_a_call_in_a_fused_program():
    from tensorgrad.autograd.function import Op
    cube = Op("cube", lambda x: x ** 3, lambda xp, g, out, x: g * 3 * x * x, elementwise=True)

    @tg.fuse
    def block(x):
        return cube(x).sum()

    x = tg.tensor(np.arange(1.0, 4.0), requires_grad=True)
    for _ in range(2):
        x.grad = None
        block(x).backward()
    np.testing.assert_allclose(x.grad.data, 3 * np.arange(1.0, 4.0) ** 2)
    (program, _), = block.programs.values()
    (backward,) = program.backwards.values()
    assert cube.vjps[0] in backward.__globals__.values()  # called, not written out
