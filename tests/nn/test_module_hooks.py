"""Module hooks (forward pre, forward, full backward) with the behaviour torch 2.13 shows for the
same modules, in fast and reference mode; a hooked layer inside a fused nn.Sequential chain."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn

pytestmark = pytest.mark.usefixtures("each_mode")  # in fast and reference mode


class Two(nn.Module):
    def forward(self, a, b, c=None):
        return a * b if c is None else a * b + c


class Pair(nn.Module):
    def forward(self, a):
        return a * 2, a * 3


def _vec(values, requires_grad=True):
    return tg.tensor(np.array(values, dtype=np.float64), requires_grad=requires_grad)


def _shapes(grads):
    return [None if g is None else g.shape for g in grads]


def _recorder():
    calls = []

    def hook(module, grad_input, grad_output):
        calls.append((type(module).__name__, _shapes(grad_input), _shapes(grad_output)))
    return calls, hook


# ---- forward hooks ------------------------------------------------------------------------------
def test_a_pre_hook_may_replace_the_args_and_a_bare_value_becomes_a_tuple():
    lin = nn.Linear(3, 2).double()
    seen = []
    lin.register_forward_pre_hook(lambda m, args: args[0] * 2)  # not a tuple: wrapped
    lin.register_forward_pre_hook(lambda m, args: seen.append(args))
    x = tg.tensor(np.ones((1, 3)))
    out = lin(x)
    assert isinstance(seen[0], tuple) and seen[0][0].tolist() == [[2.0, 2.0, 2.0]]
    np.testing.assert_allclose(out.data, 2 * x.data @ lin.weight.data.T + lin.bias.data)


def test_forward_hooks_run_in_order_on_the_args_and_each_others_output():
    lin = nn.Linear(3, 2).double()
    lin.bias.data[:] = [0.5, -1.0]
    seen = []
    lin.register_forward_hook(lambda m, args, out: seen.append((m, args)) or out + 1)
    lin.register_forward_hook(lambda m, args, out: out * 10)
    x = tg.tensor(np.zeros((1, 3)))
    out = lin(x)
    assert seen[0][0] is lin and seen[0][1][0] is x
    np.testing.assert_allclose(out.data, (lin.bias.data[None] + 1) * 10)


def test_prepend_puts_a_hook_first():
    lin = nn.Linear(3, 2).double()
    lin.bias.data[:] = [0.5, -1.0]
    lin.register_forward_hook(lambda m, args, out: out + 1)
    lin.register_forward_hook(lambda m, args, out: out * 10, prepend=True)
    np.testing.assert_allclose(lin(tg.tensor(np.zeros((1, 3)))).data,
                               lin.bias.data[None] * 10 + 1)


def test_removing_module_hooks_restores_the_plain_call():
    lin = nn.Linear(3, 2).double()
    handles = [lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,)),
               lin.register_forward_hook(lambda m, args, out: out * 0),
               lin.register_full_backward_hook(lambda m, gi, go: None)]
    for h in handles:
        h.remove()
        h.remove()  # harmless
    assert lin._module_hooks is None
    x = tg.tensor(np.ones((1, 3)))
    np.testing.assert_allclose(lin(x).data, x.data @ lin.weight.data.T + lin.bias.data)


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match="register_forward_hook: expected a callable"):
        nn.Linear(3, 2).register_forward_hook("not a function")


# ---- full backward hooks ------------------------------------------------------------------------
def test_grad_input_and_grad_output_of_a_linear_layer():
    lin = nn.Linear(3, 2).double()
    got = []
    lin.register_full_backward_hook(lambda m, gi, go: got.append((gi, go)))
    x = tg.tensor(np.ones((1, 3)), requires_grad=True)
    (lin(x) * tg.tensor(np.array([[2.0, 3.0]]))).sum().backward()
    (gi,), (go,) = got[0]
    assert go.tolist() == [[2.0, 3.0]]
    np.testing.assert_allclose(gi.data, np.array([[2.0, 3.0]]) @ lin.weight.data)


def test_without_an_input_that_requires_grad_the_hook_runs_at_the_output():
    calls, hook = _recorder()
    lin = nn.Linear(3, 2)
    lin.register_full_backward_hook(hook)
    lin(tg.randn(4, 3)).sum().backward()
    assert calls == [("Linear", [None], [(4, 2)])]


def test_grad_input_is_none_for_inputs_that_do_not_require_grad_or_are_no_tensors():
    calls, hook = _recorder()
    m = Two()
    m.register_full_backward_hook(hook)
    a, b = _vec([1.0, 2.0, 3.0]), _vec([4.0, 5.0, 6.0], requires_grad=False)
    m(a, b).sum().backward()
    m(a, 2.0).sum().backward()
    c = _vec([0.0, 0.0, 0.0])
    m(a, b, c=c).sum().backward()  # keyword inputs are not in grad_input
    assert calls == [("Two", [(3,), None], [(3,)])] * 3
    assert c.grad.tolist() == [1.0, 1.0, 1.0]


def test_a_backward_hook_replaces_grad_input():
    m = Two()
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0] * 0 + 7, gi[1]))
    a, b = _vec([1.0, 2.0, 3.0]), _vec([4.0, 5.0, 6.0])
    m(a, b).sum().backward()
    assert a.grad.tolist() == [7.0, 7.0, 7.0] and b.grad.tolist() == [1.0, 2.0, 3.0]


def test_several_backward_hooks_run_in_order_on_the_previous_grad_input():
    m = Two()
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0] + 1, gi[1] * 2))
    m.register_full_backward_hook(lambda mod, gi, go: seen.append([g.tolist() for g in gi]))
    a, b = _vec([1.0, 2.0]), _vec([3.0, 4.0])
    m(a, b).sum().backward()
    assert seen == [[[4.0, 5.0], [2.0, 4.0]]]
    assert a.grad.tolist() == [4.0, 5.0] and b.grad.tolist() == [2.0, 4.0]


def test_a_none_in_the_returned_grad_input_passes_zeros():
    m = Two()
    m.register_full_backward_hook(lambda mod, gi, go: (None, gi[1]))
    a, b = _vec([1.0, 1.0]), _vec([1.0, 1.0])
    m(a, b * 2).sum().backward()
    assert a.grad.tolist() == [0.0, 0.0] and b.grad.tolist() == [2.0, 2.0]


def test_grad_output_is_none_for_an_output_that_gets_no_gradient():
    calls, hook = _recorder()
    m = Pair()
    m.register_full_backward_hook(hook)
    first, _ = m(_vec([1.0, 2.0, 3.0]))
    first.sum().backward()
    assert calls == [("Pair", [(3,)], [(3,), None])]


def test_an_identity_module_sees_the_same_gradient_in_and_out():
    class Identity(nn.Module):
        def forward(self, x):
            return x
    got = []
    m = Identity()
    m.register_full_backward_hook(lambda mod, gi, go: got.append((gi[0].tolist(),
                                                                  go[0].tolist())))
    (m(_vec([1.0, 1.0])) * 3).sum().backward()
    assert got == [([3.0, 3.0], [3.0, 3.0])]


def test_the_hook_runs_once_per_call_and_per_backward():
    lin = nn.Linear(3, 1).double()
    calls = []
    lin.register_full_backward_hook(lambda m, gi, go: calls.append(1))
    x = tg.tensor(np.ones((1, 3)), requires_grad=True)
    (lin(x) + lin(x)).sum().backward()
    assert len(calls) == 2
    y = lin(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert len(calls) == 4


def test_a_bad_grad_input_is_a_clear_error():
    m = Two()
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0],))
    with pytest.raises(RuntimeError, match="Two: backward hook returned an invalid number of "
                                           "grad_input, got 1, but expected 2"):
        m(_vec([1.0]), _vec([2.0])).sum().backward()
    m = Two()
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0].sum(), gi[1]))
    with pytest.raises(RuntimeError, match="grad_input 0, a Tensor of shape \\(\\)"):
        m(_vec([1.0, 2.0]), _vec([2.0, 3.0])).sum().backward()


def test_a_backward_hook_under_create_graph_is_differentiable():
    lin = nn.Linear(3, 1).double()
    flags = []
    lin.register_full_backward_hook(
        lambda m, gi, go: flags.append((gi[0].requires_grad, go[0].requires_grad)) or
        (gi[0] * 3,))
    x = tg.tensor(np.array([[1.0, -2.0, 0.5]]), requires_grad=True)
    (g,) = tg.grad((lin(x) ** 2).sum(), x, create_graph=True)
    assert flags == [(True, True)] and g.requires_grad
    np.testing.assert_allclose(g.data, 3 * 2 * lin(x).data * lin.weight.data)
    (gb,) = tg.grad(g.sum(), lin.bias)  # g = 6 (x W^T + b) W: d sum(g) / db = 6 sum(W)
    np.testing.assert_allclose(gb.data, [6 * lin.weight.data.sum()], rtol=1e-12)


def test_a_trace_refuses_a_hooked_module(each_mode):
    lin = nn.Linear(3, 2).double()
    lin.register_forward_hook(lambda m, args, out: out * 2)
    f = tg.fuse(lambda x: lin(x).sum())
    x = tg.tensor(np.ones((1, 3)), requires_grad=True)
    if each_mode:
        with pytest.raises(tg.TraceError, match="Linear has hooks"):
            f(x)
    else:  # fuse runs op by op
        assert f(x).item() == pytest.approx(2 * lin(x).data.sum() / 2)


# ---- fused chains -------------------------------------------------------------------------------
def _mlp():
    tg.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8),
                         nn.ReLU(), nn.Linear(8, 3)).double()


def _run(model, x, fused=True):
    with tg.fast_mode(False, paths=[] if fused else ["fused_chain"]):
        model.zero_grad()
        out = model(x)
        (out ** 2).sum().backward()
    return out.data, {n: p.grad.data.copy() for n, p in model.named_parameters()}


def _same(a, b):
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12, atol=1e-14)
    for name in a[1]:
        np.testing.assert_allclose(a[1][name], b[1][name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_a_hooked_layer_in_a_fused_chain_runs_outside_it():
    """The middle Linear's output replaced by a forward hook in a fused MLP: the same output
    and parameter gradients as with fusion off; a backward hook inside the chain too; and the
    chain forms again once the hooks are removed."""
    x = tg.tensor(np.random.default_rng(0).standard_normal((6, 5)))
    fused, plain = _mlp(), _mlp()
    before = _run(fused, x)
    handles = [m[3].register_forward_hook(lambda mod, args, out: out * 2 + 1)
               for m in (fused, plain)]
    tg.fast_paths(reset=True)
    hooked = _run(fused, x)
    if tg.is_fast():
        assert tg.fast_paths()["fused_chain"].hits == 2  # [0, 1, 2] and [4, 5] around it
    _same(hooked, _run(plain, x, fused=False))
    assert not np.allclose(hooked[0], before[0])
    seen = {}

    def halve(module, grad_input, grad_output):  # on the BatchNorm1d, inside the first chain
        seen[id(module)] = grad_input[0].data.copy()
        return (grad_input[0] * 0.5,)
    handles += [m[1].register_full_backward_hook(halve) for m in (fused, plain)]
    hooked = _run(fused, x)
    _same(hooked, _run(plain, x, fused=False))
    np.testing.assert_allclose(seen[id(fused[1])], seen[id(plain[1])], rtol=1e-12)
    for h in handles:
        h.remove()
    tg.fast_paths(reset=True)
    _same(_run(fused, x), before)
    if tg.is_fast():
        assert tg.fast_paths()["fused_chain"].hits == 1  # one chain again


def test_parameter_hooks_in_a_fused_mlp_with_an_l2_term():
    """A parameter's hook sees the total of its fused-chain gradient and the L2 term's lazy one,
    as when the layers run one by one."""
    x = tg.tensor(np.random.default_rng(1).standard_normal((6, 5)))
    got = {}
    for fused in (True, False):
        model = _mlp()
        seen = []
        model[3].weight.register_hook(lambda g: seen.append(g.data.copy()) or g * 2)
        with tg.fast_mode(False, paths=[] if fused else ["fused_chain"]):
            ((model(x) ** 2).sum() + 0.1 * nn.l2_penalty(model)).backward()
        assert len(seen) == 1
        got[fused] = seen[0], model[3].weight.grad.data
    np.testing.assert_allclose(got[True][0], got[False][0], rtol=1e-12)
    np.testing.assert_allclose(got[True][1], 2 * got[True][0], rtol=1e-15)
    np.testing.assert_allclose(got[True][1], got[False][1], rtol=1e-12)
