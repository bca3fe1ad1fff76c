"""Tensor.register_hook, with the values torch 2.13 gives for the same programs: leaves and
intermediates, replacement, order, removal, tg.grad, create_graph, retain_grad, errors; in fast
and in reference mode, and the walk's choice of hooks when none is registered."""
import copy
import gc

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.autograd import hooks, walk

pytestmark = pytest.mark.usefixtures("each_mode", "no_hooked_leaves")  # in both modes


@pytest.fixture
def no_hooked_leaves():
    """Hooked leaves of earlier tests left in reference cycles (a model and its hooks) are
    collected first: tests here count on which leaves have hooks."""
    gc.collect()


def _leaf(values=(1.0, 2.0), dtype=np.float64):
    return tg.tensor(np.array(values, dtype=dtype), requires_grad=True)


def _recorder():
    seen = []
    return seen, lambda g: seen.append(g.data.copy())


def test_a_leaf_used_twice_gets_its_hook_once_with_the_sum():
    x = _leaf()
    seen, hook = _recorder()
    x.register_hook(hook)
    (x * 2 + x * 3).sum().backward()
    assert len(seen) == 1 and seen[0].tolist() == [5.0, 5.0]
    (x * 1).sum().backward()  # the hook sees this backward's total, then it is added to .grad
    assert len(seen) == 2 and seen[1].tolist() == [1.0, 1.0]
    assert x.grad.tolist() == [6.0, 6.0]


def test_an_l2_term_and_a_loss_term_are_one_total():
    """The fast walk keeps the L2 term's gradient lazy (lazy_scaled) and a fresh array as .grad
    (fresh_gradient, inplace_accumulate): the hook still sees one summed gradient."""
    x = tg.tensor(np.arange(12.0).reshape(3, 4) / 10, requires_grad=True)
    w = tg.tensor(np.ones((4, 2)))
    seen, hook = _recorder()
    x.register_hook(hook)
    loss = (x @ w).tanh().sum() + 0.5 * tg.sum_squares(x)
    loss.backward()
    expected = (1 - np.tanh(x.data @ w.data) ** 2) @ w.data.T + x.data
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], expected, rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12)


def test_a_leaf_hook_replaces_the_gradient_before_it_is_added_to_grad():
    x = _leaf()
    x.grad = tg.tensor(np.array([100.0, 100.0]))
    x.register_hook(lambda g: g * 10)
    (x * x).sum().backward()
    assert x.grad.tolist() == [120.0, 140.0]


def test_an_intermediate_hook_sees_its_complete_gradient_once_before_it_flows_on():
    x = _leaf()
    h = x * 2
    seen, hook = _recorder()
    h.register_hook(hook)
    h.register_hook(lambda g: g * 10)
    (h * h + h).sum().backward()  # h used twice
    assert len(seen) == 1 and seen[0].tolist() == [5.0, 9.0]  # 2h + 1
    assert x.grad.tolist() == [100.0, 180.0]  # the replacement flows on


def test_the_hooks_of_the_output_see_the_seed():
    x = _leaf()
    y = (x * x).sum()
    seen, hook = _recorder()
    y.register_hook(hook)
    y.register_hook(lambda g: g * 2)
    y.backward()
    assert seen[0].tolist() == 1.0 and x.grad.tolist() == [4.0, 8.0]


def test_hooks_run_in_registration_order_each_on_the_previous_result():
    x = _leaf()
    h = x * 1
    seen = []
    h.register_hook(lambda g: seen.append(("first", g.tolist())) or g + 1)
    h.register_hook(lambda g: seen.append(("second", g.tolist())))  # None: keeps it
    h.register_hook(lambda g: seen.append(("third", g.tolist())) or g * 2)
    h.sum().backward()
    assert seen == [("first", [1.0, 1.0]), ("second", [2.0, 2.0]), ("third", [2.0, 2.0])]
    assert x.grad.tolist() == [4.0, 4.0]
    y = _leaf()
    y.register_hook(lambda g: g + 1)
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    assert y.grad.tolist() == [20.0, 20.0]


def test_a_removed_hook_no_longer_runs_and_removing_twice_is_harmless():
    x = _leaf()
    first = x.register_hook(lambda g: g + 1)
    x.register_hook(lambda g: g * 10)
    first.remove()
    first.remove()
    x.sum().backward()
    assert x.grad.tolist() == [10.0, 10.0]
    with x.register_hook(lambda g: g * 0) as handle:  # a context manager, as torch's
        assert isinstance(handle.id, int)
        x.grad = None
        x.sum().backward()
        assert x.grad.tolist() == [0.0, 0.0]
    x.grad = None
    x.sum().backward()
    assert x.grad.tolist() == [10.0, 10.0]


def test_removing_every_leaf_hook_makes_the_walk_unhooked_again():
    x = _leaf()
    before = walk._hooks(True)
    handle = x.register_hook(lambda g: g)
    assert id(x) in hooks.HOOKED_LEAVES and walk._hooks(True) is not before
    handle.remove()
    assert not hooks.HOOKED_LEAVES and walk._hooks(True) is before
    x.register_hook(lambda g: g)
    del x
    gc.collect()
    assert not hooks.HOOKED_LEAVES  # a hooked leaf that is gone counts no more


def test_with_no_hooks_the_walk_is_the_one_chosen_before(monkeypatch):
    """No leaf hook anywhere (an intermediate's hooks need none): the walk's hooks are the same
    object as without the feature, and no hooked variant is ever made."""
    assert not hooks.HOOKED_LEAVES
    chosen = walk._hooks(True)
    monkeypatch.setattr(hooks, "hooked", lambda accumulate: pytest.fail("hooked walk chosen"))
    for cache in (walk._CHOSEN, {}):  # the cached hooks, and hooks chosen anew
        monkeypatch.setattr(walk, "_CHOSEN", cache)
        x = _leaf()
        h = x * 2
        h.register_hook(lambda g: g * 3)
        (h * h).sum().backward()
        assert x.grad.tolist() == [24.0, 48.0]
    monkeypatch.undo()
    assert walk._hooks(True) is chosen


def test_a_copy_of_a_tensor_leaves_its_hooks_behind():
    x = _leaf()
    x.register_hook(lambda g: g * 10)
    y = copy.deepcopy(x)
    y.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0]  # as torch
    x.sum().backward()
    assert x.grad.tolist() == [10.0, 10.0]


def test_grad_returns_the_hooked_gradient_of_a_leaf_and_of_an_intermediate():
    x = _leaf()
    x.register_hook(lambda g: g * 10)
    (gx,) = tg.grad((x * x).sum(), x)
    assert gx.tolist() == [20.0, 40.0] and x.grad is None
    y = _leaf()
    h = y * 2
    h.register_hook(lambda g: g * 10)
    (gh,) = tg.grad((h * h).sum(), [h])
    assert gh.tolist() == [40.0, 80.0]


def test_a_leaf_hook_does_not_run_for_a_leaf_backward_was_not_asked_for():
    x, z = _leaf(), _leaf()
    seen, hook = _recorder()
    z.register_hook(hook)
    (x * z).sum().backward(inputs=[x])
    assert seen == [] and z.grad is None
    (gx,) = tg.grad((x * z).sum(), x)
    assert seen == []


def test_retain_grad_keeps_the_hooked_gradient_whatever_the_order():
    for hook_first in (True, False):
        x = _leaf()
        h = x * 2
        if hook_first:
            h.register_hook(lambda g: g * 10)
            h.retain_grad()
        else:
            h.retain_grad()
            h.register_hook(lambda g: g * 10)
        (h * h).sum().backward()
        assert h.grad.tolist() == [40.0, 80.0] and x.grad.tolist() == [80.0, 160.0]


def test_a_hook_argument_is_the_hooks_own():
    """Changing the gradient in place inside a hook reaches no other branch; a stored
    argument is not changed by later accumulation."""
    x = _leaf()
    h, k = x * 2, x * 3
    h.register_hook(lambda g: g.mul_(10))
    (h + k).backward(np.ones(2))
    assert x.grad.tolist() == [23.0, 23.0]  # as torch
    y = _leaf()
    kept = []
    y.register_hook(kept.append)
    (y * 3).sum().backward()
    (y * 3).sum().backward()
    assert [g.tolist() for g in kept] == [[3.0, 3.0], [3.0, 3.0]]
    assert y.grad.tolist() == [6.0, 6.0]


def test_hooks_registered_before_an_in_place_change_see_the_value_before_it():
    x = _leaf()
    h = x * 2
    seen = []
    h.register_hook(lambda g: seen.append(("before", g.tolist())))
    h.retain_grad()
    h.mul_(3)
    h.register_hook(lambda g: seen.append(("after", g.tolist())))
    (h * h).sum().backward()
    assert seen == [("after", [12.0, 24.0]), ("before", [36.0, 72.0])]  # as torch
    assert h.grad.tolist() == [12.0, 24.0] and x.grad.tolist() == [72.0, 144.0]


def test_a_compact_gradient_reaches_a_hook_full_size():
    x = tg.tensor(np.ones((3, 4)), requires_grad=True)
    h = x * 2
    seen, hook = _recorder()
    h.register_hook(hook)
    x.register_hook(hook)
    (h * 3).sum().backward()
    assert [s.shape for s in seen] == [(3, 4), (3, 4)]
    np.testing.assert_array_equal(x.grad.data, np.full((3, 4), 6.0))


def test_a_broadcast_leaf_hook_sees_the_leaf_shape():
    x = _leaf()
    seen, hook = _recorder()
    x.register_hook(hook)
    (x * tg.tensor(np.ones((3, 2)))).sum().backward()
    assert seen[0].tolist() == [3.0, 3.0]


def test_under_create_graph_a_hook_gets_a_graph_and_its_replacement_stays_differentiable():
    x = _leaf()
    got = []
    x.register_hook(lambda g: got.append(g.requires_grad) or g * x)
    (g,) = tg.grad((x * x).sum(), x, create_graph=True)  # 2x * x
    assert got == [True] and g.requires_grad and g.tolist() == [2.0, 8.0]
    (gg,) = tg.grad(g.sum(), x)  # d(2x^2)/dx = 4x, then the hook: * x
    assert gg.tolist() == [4.0, 16.0]


def _scaled(x):
    """tanh(2x) summed with weights, whose graph from h to x is the identity (h = x +
    x.detach() has the value 2x) and whose hook on h scales by 2: the hooked backward is the
    true derivative, at every order (the hook runs again in each backward through h)."""
    h = x + x.detach()
    if h.requires_grad:  # (not in gradcheck's evaluations without grad)
        h.register_hook(lambda g: g * 2)
    return (h.tanh() * tg.tensor(np.linspace(0.5, 1.5, x.shape[-1]))).sum(axis=-1)


def test_gradcheck_and_gradgradcheck_through_a_hook_that_scales():
    x = tg.tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    assert tg.gradcheck(_scaled, [x])
    assert tg.gradgradcheck(_scaled, [x])
    (g,) = tg.grad(_scaled(x).sum(), x)
    np.testing.assert_allclose(g.data, 2 * (1 - np.tanh(2 * x.data) ** 2)
                               * np.linspace(0.5, 1.5, 3), rtol=1e-12)


def test_registering_on_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(RuntimeError, match="doesn't require gradient.*shape \\(2,\\)"):
        tg.tensor([1.0, 2.0]).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="register_hook: expected a callable"):
        _leaf().register_hook(3)


@pytest.mark.parametrize("bad, error, message", [
    (lambda g: g.sum(), RuntimeError, "hook '<lambda>' has changed the size of value"),
    (lambda g: g.astype(np.float32), RuntimeError,
     "has changed the type of value \\(was float64 got float32\\)"),
    (lambda g: 3, TypeError, "returned int: a gradient hook must return a Tensor or None"),
])
@pytest.mark.parametrize("leaf", [True, False])
def test_a_bad_replacement_is_a_clear_error(bad, error, message, leaf):
    x = _leaf()
    t = x if leaf else x * 2
    t.register_hook(bad)
    with pytest.raises(error, match=message):
        (t * t).sum().backward()


def test_a_trace_refuses_a_gradient_hook(each_mode):
    """Its program would not call the hook again; in reference mode fuse runs op by op."""
    def f(x):
        h = x * 2
        h.register_hook(lambda g: g * 3)
        return h.sum()
    x = _leaf()
    if each_mode:
        with pytest.raises(tg.TraceError, match="register_hook"):
            tg.fuse(f)(x)
    else:
        tg.fuse(f)(x).backward()
        assert x.grad.tolist() == [6.0, 6.0]
