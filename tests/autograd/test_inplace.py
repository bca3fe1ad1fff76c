"""In-place operations as in PyTorch (tensorgrad/autograd/inplace.py): they write into the
tensor's array (views and flat parameter storage stay valid), are refused on a leaf that
requires grad, are recorded in grad mode with the out-of-place gradients, and a value the graph
saved that is changed in place afterwards makes backward raise, naming the op."""
import numpy as np
import pytest

import tensorgrad as tg
from models.mlp import MLP
from tensorgrad.autograd import inplace
from tensorgrad.compile import blas
from tensorgrad.nn import functional as F

X = np.array([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]])
W = np.array([0.3, -0.2, 1.1])

# name -> (the in-place change of t, the same out of place, whether the operand w is used)
CHANGES = {
    "add_": (lambda t, w: t.add_(w), lambda t, w: t + w, True),
    "add_alpha": (lambda t, w: t.add_(w, alpha=-0.5), lambda t, w: t + w * -0.5, True),
    "sub_": (lambda t, w: t.sub_(w), lambda t, w: t - w, True),
    "sub_alpha": (lambda t, w: t.sub_(w, alpha=2.0), lambda t, w: t - w * 2.0, True),
    "mul_": (lambda t, w: t.mul_(w), lambda t, w: t * w, True),
    "div_": (lambda t, w: t.div_(w), lambda t, w: t / w, True),
    "clamp_": (lambda t, w: t.clamp_(-0.5, 1.0), lambda t, w: t.clamp(-0.5, 1.0), False),
    "clamp_tensors": (lambda t, w: t.clamp_(min=w, max=w + 1.0),
                      lambda t, w: t.clamp(min=w, max=w + 1.0), True),
    "clip_": (lambda t, w: t.clip_(max=0.4), lambda t, w: t.clip(max=0.4), False),
    "fill_": (lambda t, w: t.fill_(2.5), lambda t, w: t * 0.0 + 2.5, False),
    "fill_tensor": (lambda t, w: t.fill_(w.sum()), lambda t, w: t * 0.0 + w.sum(), True),
    "zero_": (lambda t, w: t.zero_(), lambda t, w: t * 0.0, False),
    "copy_": (lambda t, w: t.copy_(w), lambda t, w: t * 0.0 + w, True),
    "iadd": (lambda t, w: t.__iadd__(w), lambda t, w: t + w, True),
    "isub": (lambda t, w: t.__isub__(w), lambda t, w: t - w, True),
    "imul": (lambda t, w: t.__imul__(w), lambda t, w: t * w, True),
    "itruediv": (lambda t, w: t.__itruediv__(w), lambda t, w: t / w, True),
}


# ---- writing into the array ----------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CHANGES))
def test_an_in_place_change_writes_into_the_array_views_see_it(name):
    change, outplace, _ = CHANGES[name]
    t = tg.tensor(X)
    array, view, detached = t.data, t.data[1], t.detach()
    want = outplace(tg.tensor(X), tg.tensor(W)).data
    assert change(t, tg.tensor(W)) is t
    assert t.data is array and t._version == 1 and detached._version == 1
    np.testing.assert_array_equal(t.data, want)
    np.testing.assert_array_equal(view, want[1])
    np.testing.assert_array_equal(detached.data, want)


def test_augmented_assignment_keeps_the_tensor_and_its_array():
    t = tg.tensor(np.ones(3, np.float32))
    s, array = t, t.data
    s += 1.0
    s -= tg.tensor([0.5, 0.5, 0.5])
    s *= 4.0
    s /= 2.0
    assert s is t and t.data is array and t.dtype == np.float32 and t._version == 4
    np.testing.assert_array_equal(t.data, [3.0, 3.0, 3.0])


def test_the_result_keeps_the_dtype_and_shape_and_refuses_what_does_not_fit():
    t = tg.tensor(np.ones(3, np.float32))
    t += np.array([1.0, 2.0, 3.0])  # float64 operand: the result is cast to float32, as in torch
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, [2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="broadcast"):
        t += np.ones((2, 3))
    i = tg.tensor(np.arange(3))
    with pytest.raises(TypeError):
        i += 0.5  # float into int64, as torch's "result type Float can't be cast to Long"
    with pytest.raises(TypeError):
        i /= 2
    i.copy_(np.array([1.7, 2.2, -3.9]))  # copy_ converts, as torch's does
    np.testing.assert_array_equal(i.data, [1, 2, -3])
    with pytest.raises(ValueError, match="min / max"):
        t.clamp_()


def test_flat_parameter_storage_stays_valid_under_in_place_updates():
    model = MLP([6, 5, 4], batch_norm=True, seed=0)
    flat = next(p._flat for p in model.parameters() if p._flat is not None)
    with tg.no_grad():
        for p in model.parameters():
            p -= 0.5
            p.mul_(2.0)
    assert flat.valid()
    for p, view in zip(flat.params, flat.views):
        assert p.data is view and view.base is flat.data


# ---- tg.tensor copies; from_numpy and as_tensor share --------------------------------------------
def test_tg_tensor_and_Tensor_copy_so_a_users_array_never_changes():
    a = np.ones(3)
    for t in (tg.tensor(a), tg.Tensor(a), tg.tensor(tg.from_numpy(a))):
        assert not np.shares_memory(t.data, a)
        t.add_(1.0)
    np.testing.assert_array_equal(a, np.ones(3))


def test_from_numpy_and_as_tensor_share_memory():
    a = np.ones(3)
    t, u = tg.from_numpy(a), tg.as_tensor(a)
    assert t.data is a and u.data is a and t.dtype == np.float64
    t.mul_(3.0)
    np.testing.assert_array_equal(a, [3.0, 3.0, 3.0])
    assert u._version == 1
    assert tg.as_tensor(t) is t
    assert tg.as_tensor(a, dtype=np.float32).dtype == np.float32  # another dtype: a copy
    assert tg.as_tensor([1.0, 2.0]).dtype == np.float32
    with pytest.raises(TypeError, match="ndarray"):
        tg.from_numpy([1.0])


# ---- grad mode: refused on a leaf that requires grad, recorded elsewhere -------------------------
@pytest.mark.parametrize("name", list(CHANGES))
def test_a_leaf_that_requires_grad_refuses_in_grad_mode_and_changes_under_no_grad(name):
    change, outplace, _ = CHANGES[name]
    w = tg.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                           "in an in-place operation"):
        change(w, tg.tensor(W))
    np.testing.assert_array_equal(w.data, X)
    assert w._version == 0
    with tg.no_grad():
        change(w, tg.tensor(W))
    np.testing.assert_array_equal(w.data, outplace(tg.tensor(X), tg.tensor(W)).data)
    assert w.is_leaf and w.requires_grad and w._version == 1


def _grads(fn, name):
    """Value and gradients for x and w of fn(x, w) through the change `name`."""
    x, w = tg.tensor(X, requires_grad=True), tg.tensor(W, requires_grad=True)
    y = fn(x * 1.5, w)
    (y * tg.tensor(np.arange(1.0, 7.0).reshape(2, 3))).sum().backward()
    return y.data, x.grad.data, None if w.grad is None else w.grad.data


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_change_of_a_non_leaf_is_recorded_with_the_out_of_place_gradients(name, each_mode):
    change, outplace, uses_w = CHANGES[name]
    want = _grads(outplace, name)
    got = _grads(change, name)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
    assert (want[2] is not None) == uses_w


@pytest.mark.parametrize("name", ["add_", "mul_", "div_", "copy_", "clamp_tensors"])
def test_a_constant_changed_by_a_tensor_that_requires_grad_joins_the_graph(name):
    change, outplace, _ = CHANGES[name]
    w = tg.tensor(W, requires_grad=True)
    t = tg.tensor(X)
    change(t, w)
    assert t.requires_grad and not t.is_leaf
    t.sum().backward()
    got = w.grad.data
    w.grad = None
    outplace(tg.tensor(X), w).sum().backward()
    np.testing.assert_allclose(got, w.grad.data, rtol=1e-12)


def test_recorded_changes_chain_and_are_differentiable_twice():
    x = tg.tensor(X, requires_grad=True)
    y = x * 2.0
    y += x          # 3x
    y *= x          # 3x^2
    y.sub_(x, alpha=2.0)  # 3x^2 - 2x
    (g,) = tg.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 6 * X - 2)
    (gg,) = tg.grad(g.sum(), x)
    np.testing.assert_allclose(gg.data, np.full_like(X, 6.0))


def test_a_recorded_change_keeps_the_tensors_array_and_output_of_an_op_that_reads_it():
    """exp's backward reads its output: the node before the change keeps the old value."""
    x = tg.tensor(X, requires_grad=True)
    y = x.exp()
    array = y.data
    y.add_(1.0)
    assert y.data is array and y.grad_fn.name == "add"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp(X))


def test_an_operand_overlapping_the_changed_tensor_is_refused_in_grad_mode():
    x = tg.tensor(X, requires_grad=True)
    y = x * 1.0
    with pytest.raises(RuntimeError, match="single memory location"):
        y.add_(y[::-1])  # a view of y's memory, in another order
    np.testing.assert_array_equal(y.data, X)
    y.mul_(y)  # the same tensor: its value before the change
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * X)


# ---- a saved value changed in place: backward raises, naming the op ------------------------------
def _refuses(loss, op):
    with pytest.raises(RuntimeError, match=f"modified by an inplace operation.*saved by op "
                                           f"'{op}'"):
        loss.backward()


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_changing_an_input_an_op_saved_raises_at_backward(fast):
    with tg.fast_mode(fast):
        w = tg.tensor(W, requires_grad=True)
        x = tg.tensor(X)
        loss = (x * w).sum()
        x.mul_(2.0)
        _refuses(loss, "mul")
        loss = (tg.tensor(X) * w).sum()  # a parameter changed under no_grad, as an update
        with tg.no_grad():
            w -= 0.1
        _refuses(loss, "mul")


def test_an_earlier_use_of_a_recorded_tensor_raises_rather_than_take_the_new_node():
    x = tg.tensor(X, requires_grad=True)
    y = x * 2.0
    z = y + 1.0   # add saves nothing in torch; here it saved y's array, which changed
    y.mul_(3.0)
    _refuses(z.sum(), "add")
    x.grad = None
    y.sum().backward()  # the changed tensor itself is fine
    np.testing.assert_allclose(x.grad.data, np.full_like(X, 6.0))


def test_views_and_detached_tensors_share_their_bases_version():
    x = tg.tensor(X, requires_grad=True)
    y = x.exp()
    d = y.detach()
    v = y.reshape(3, 2)
    assert y._version == d._version == v._version == 0
    with tg.no_grad():
        d.zero_()
    assert y._version == d._version == v._version == 1
    _refuses(y.sum(), "exp")  # exp's backward would read its changed output
    x2 = tg.tensor(X, requires_grad=True)
    y2 = x2 * 2.0
    view = y2.reshape(3, 2)
    view.mul_(3.0)  # recorded on the view; y2's own node saw its output change
    _refuses(y2.sum(), "mul")


def test_a_fused_nodes_inputs_and_constants_count_as_saved():
    const = np.full(3, 0.5)

    @tg.fuse
    def f(a, b):
        return (a * b * tg.from_numpy(const)).tanh().sum(axis=1)

    a, b = tg.tensor(X, requires_grad=True), tg.tensor(W)
    for _ in range(2):  # the first backward probes, the second runs the compiled one
        out = f(a, b)
        out.sum().backward()
    out = f(a, b)
    with tg.no_grad():
        b.mul_(2.0)
    _refuses(out.sum(), "fused\\[f\\]")
    out = f(a, b)
    tg.from_numpy(const).add_(1.0)
    with pytest.raises(RuntimeError, match="the constant v2 of its program .*, saved by op "
                                           "'fused\\[f\\]'"):
        out.sum().backward()
    out = f(a, b)
    out.detach().zero_()  # its result, which tanh's backward reads
    _refuses(out.sum(), "fused\\[f\\]")


def test_a_graph_recorded_after_the_change_is_not_checked(monkeypatch):
    """The walk compares stamps only for nodes recorded before the latest in-place change."""
    calls = []
    real = inplace.check_saved
    monkeypatch.setattr(inplace, "check_saved", lambda t: calls.append(t._op.name) or real(t))
    w = tg.tensor(W, requires_grad=True)
    with tg.no_grad():
        w.add_(1.0)
    (tg.tensor(X) * w).exp().sum().backward()
    assert calls == []
    loss = (tg.tensor(X) * w).sum()
    tg.tensor(X).add_(1.0)  # an unrelated change: the nodes are checked and pass
    loss.backward()
    assert calls == ["sum", "mul"]


# ---- the manual SGD loop is optim.SGD ------------------------------------------------------------
def test_the_manual_sgd_loop_equals_optim_sgd_bitwise(monkeypatch):
    """`p -= lr * p.grad` under no_grad on the batch-norm MLP (fused chain, flat parameters)
    gives optim.SGD's bits. optim.SGD updates large weights with one BLAS fused multiply-add
    when OpenBLAS runs several threads (compile/blas.py); with one thread it rounds twice, as
    the loop does."""
    monkeypatch.setattr(blas, "_threads", lambda: 1)
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((20, 300)).astype(np.float32), rng.integers(0, 10, 20))
               for _ in range(4)]
    runs = []
    for manual in (False, True):
        model = MLP([300, 50, 30, 10], batch_norm=True, seed=0)
        assert any(p._flat is not None for p in model.parameters())
        opt = tg.optim.SGD(model.parameters(), lr=0.05)
        for x, y in batches:
            opt.zero_grad()
            F.cross_entropy(model(tg.tensor(x)), y).backward()
            if manual:
                with tg.no_grad():
                    for p in model.parameters():
                        p -= 0.05 * p.grad
            else:
                opt.step()
        assert tg.fast_paths()["fused_chain"].hits > 0
        runs.append([p.data.copy() for p in model.parameters()] +
                    [b.data.copy() for b in model.buffers()])
    for got, want in zip(runs[1], runs[0]):
        np.testing.assert_array_equal(got, want, strict=True)
