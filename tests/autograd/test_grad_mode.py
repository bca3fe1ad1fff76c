"""Grad modes: no_grad / enable_grad with and without parentheses, inference_mode (our no_grad),
set_grad_enabled; nesting restores the mode, exceptions included."""
import pytest

import tensorgrad as tg


def _x():
    return tg.tensor([1.0, 2.0], requires_grad=True)


@pytest.mark.parametrize("make", [lambda f: tg.no_grad(f), lambda f: tg.no_grad()(f),
                                  lambda f: tg.inference_mode(f),
                                  lambda f: tg.inference_mode()(f)],
                         ids=["no_grad", "no_grad()", "inference_mode", "inference_mode()"])
def test_decorators_with_and_without_parentheses(make):
    x = _x()

    def double(t):
        """doc"""
        return t * 2
    f = make(double)
    assert f.__name__ == "double" and f.__doc__ == "doc"
    assert not f(x).requires_grad
    assert tg.is_grad_enabled() and (x * 2).requires_grad


def test_bare_decorated_function_is_reentrant():
    x = _x()

    @tg.no_grad
    def depth(n):
        return depth(n - 1) if n else (x * 2, tg.is_grad_enabled())
    out, enabled = depth(3)
    assert not enabled and not out.requires_grad and tg.is_grad_enabled()


def test_inference_mode_is_no_grad():
    x = _x()
    assert not tg.is_inference_mode_enabled()
    with tg.inference_mode():
        assert tg.is_inference_mode_enabled() and not tg.is_grad_enabled()
        y = x * 2
        with tg.inference_mode(False):  # as torch: recording back on
            assert not tg.is_inference_mode_enabled() and tg.is_grad_enabled()
            assert (x * 2).requires_grad
        assert tg.is_inference_mode_enabled()
    assert not y.requires_grad and tg.is_grad_enabled() and not tg.is_inference_mode_enabled()
    (y * x).sum().backward()  # unlike a torch inference tensor, y can be used with autograd
    assert x.grad.tolist() == [2.0, 4.0]


def test_enable_grad_bare_inside_no_grad():
    x = _x()

    @tg.enable_grad
    def f():
        return x * 2
    with tg.no_grad():
        assert f().requires_grad
        assert not (x * 2).requires_grad


def test_modes_restored_after_an_exception():
    for manager in (tg.no_grad(), tg.inference_mode(), tg.set_grad_enabled(False)):
        with pytest.raises(ZeroDivisionError):
            with manager:
                1 / 0
        assert tg.is_grad_enabled() and not tg.is_inference_mode_enabled()


def test_bad_arguments():
    with pytest.raises(TypeError, match="no_grad"):
        tg.no_grad(3)
    with pytest.raises(TypeError, match="inference_mode"):
        tg.inference_mode("yes")
