"""The op registry: the array namespaces of an ordinary backward and the create_graph one offer the
same names, and one `Op(..., method=True)` line puts a new op everywhere (and takes it back)."""
import pathlib
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, settings

import tensorgrad as tg
from tensorgrad import ops, testing
from tensorgrad.autograd import registry
from tensorgrad.autograd.xp import numpy_ns, reference_ns

PACKAGE = pathlib.Path(tg.__file__).parent

# The engine's helpers, in both namespaces but not public ops (not in tensorgrad.ops.__all__):
# `scaled` (the L2 term's lazy product) and `reduce_to` (the fast walk's unbroadcast step, which
# reference mode does with sum_to).
HELPERS = {"scaled", "reduce_to"}
REFERENCE_LACKS = {"reduce_to"}  # only the fast walk reduces compact gradients


def _called_through_xp():
    """Every `xp.<name>(` call in the package's source: what vjps and the walk ask of xp."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        names |= set(re.findall(r"\bxp\.([A-Za-z_]\w*)\(", path.read_text()))
    return names


def test_what_vjps_call_is_in_every_namespace():
    used = _called_through_xp()
    assert {"sum_to", "where", "exp", "reduce_to", "matmul"} <= used  # the scan finds them
    for name in sorted(used):
        assert callable(getattr(numpy_ns, name, None)), f"xp.numpy_ns lacks {name}"
        assert callable(getattr(ops, name, None)), f"tensorgrad.ops lacks {name}"
        if name not in REFERENCE_LACKS:
            assert callable(getattr(reference_ns, name, None)), f"xp.reference_ns lacks {name}"


def test_the_namespaces_offer_the_same_names():
    public = set(ops.__all__)
    assert public == set(registry.REGISTRY)
    assert set(vars(numpy_ns)) == public | HELPERS
    assert set(vars(reference_ns)) == public | HELPERS - REFERENCE_LACKS
    assert all(callable(getattr(ops, name)) for name in HELPERS)
    assert registry.graph_namespace() is ops


def test_registry_derives_the_lists():
    assert set(tg.DIFFERENTIABLE) <= set(ops.__all__) and tg.DIFFERENTIABLE is ops.DIFFERENTIABLE
    for name, entry in registry.REGISTRY.items():
        assert getattr(ops, name) is entry.fn and getattr(tg, name) is entry.fn
        for m in entry.methods:
            assert hasattr(tg.Tensor, m), m
    assert "sign" not in tg.DIFFERENTIABLE and "negative" not in tg.DIFFERENTIABLE  # not ops
    assert tg.negative is tg.neg and tg.clamp is tg.clip and tg.cat is tg.concatenate


def test_binary_op_methods_take_their_second_input():
    a, b = tg.tensor(np.array([1.0, 5.0])), tg.tensor(np.array([3.0, 2.0]))
    np.testing.assert_array_equal(a.maximum(b).data, [3.0, 5.0])
    np.testing.assert_array_equal(a.minimum(b).data, [1.0, 2.0])


def _cube():
    # the whole definition of a new elementwise op (its vjp uses xp.square: a registered name)
    return tg.Op("cube", lambda x: x ** 3, lambda xp, g, out, x: 3 * xp.square(x) * g,
                 elementwise=True, method=True)


QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
         HealthCheck.large_base_example]


def test_a_registered_op_is_everywhere_until_unregistered():
    x = np.array([[-1.5, 0.5, 2.0]])
    with registry.scope():
        cube = _cube()
        assert tg.DIFFERENTIABLE["cube"] is cube and ops.cube is cube and "cube" in ops.__all__
        assert tg.cube is cube
        np.testing.assert_array_equal(numpy_ns.cube(x), x ** 3)
        np.testing.assert_array_equal(reference_ns.cube(x), x ** 3)
        t = tg.tensor(x, requires_grad=True)
        t.cube().sum().backward()  # the method; the vjp runs against numpy_ns
        np.testing.assert_allclose(t.grad.data, 3 * x ** 2)
        (g,) = tg.grad(t.cube().sum(), t, create_graph=True)  # the vjp against tensorgrad.ops
        (gg,) = tg.grad(g.sum(), t)
        np.testing.assert_allclose(gg.data, 6 * x)
        assert tg.gradcheck(lambda a: a.cube(), [tg.tensor(x, requires_grad=True)])

        assert "cube" in testing.registered_builders()  # the random programs draw it
        program = find(testing.programs(features=(), max_steps=3),
                       lambda p: any(s.op == "cube" for s in p.steps),
                       settings=settings(max_examples=500, phases=[Phase.generate],
                                         suppress_health_check=QUIET, database=None))
        testing.assert_program_modes_agree(program, 0)
        with pytest.raises(ValueError, match="registered already"):
            _cube()
    assert not hasattr(tg.Tensor, "cube") and "cube" not in tg.DIFFERENTIABLE
    assert not hasattr(numpy_ns, "cube") and not hasattr(reference_ns, "cube")
    assert not hasattr(ops, "cube") and "cube" not in ops.__all__ and not hasattr(tg, "cube")
    assert "cube" not in testing.registered_builders()


def test_a_name_already_taken_is_refused():
    with registry.scope():
        with pytest.raises(ValueError, match="Tensor already has an attribute 'detach'"):
            registry.register(lambda x: x, name="my_detach", method="detach")
        with pytest.raises(ValueError, match="tensorgrad has another 'zeros'"):
            registry.register(lambda x: x, name="zeros")
    assert "my_detach" not in registry.REGISTRY and "zeros" not in registry.REGISTRY
    assert tg.zeros(2).shape == (2,)

