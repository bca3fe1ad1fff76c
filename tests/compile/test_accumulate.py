"""The graph walk's fast hooks (tensorgrad/compile/accumulate.py) against the reference hooks
(tensorgrad/autograd/walk.py, REFERENCE), one hook at a time, on hypothesis-drawn gradients.

Bitwise where the maths is the same: each test runs with blas_reduction off, so a sum is numpy's
in both. A tolerance (1e-12 in float64, 1e-5 in float32) only where the fast hook reassociates:
fit sums a compact gradient itself where the reference sums its spread copy (numpy may sum a
broadcast view in another order), and n equal terms as n * g; a lazy product x * s is added after
the leaf's other terms (lazy_scaled; axpy fuses its multiply and add on large arrays).
"""
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorgrad as tg
from tensorgrad.autograd import walk
from tensorgrad.autograd.xp import Scaled, numpy_ns, reference_ns
from tensorgrad.compile import accumulate
from tensorgrad.testing import shapes

SETTINGS = settings(max_examples=150, deadline=None)
FRESH_OP = SimpleNamespace(fresh=True, vjp_all=None)  # a built-in op's vjps
ALL_OP = SimpleNamespace(fresh=True, vjp_all=object())  # an op whose vjp_all ran
USER_OP = SimpleNamespace(fresh=False, vjp_all=None)  # a custom Function


@pytest.fixture(autouse=True)
def _numpy_sums():
    with tg.fast_mode(True), tg.fast_mode(False, paths=["blas_reduction"]):
        yield


def _close(got, want, exact, computed_in=None):
    """Bitwise, or within 1e-12 (float64) / 1e-5 (float32, or computed in float32)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        tol = 1e-12 if np.dtype(computed_in or got.dtype) == np.float64 else 1e-5
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@st.composite
def _fit_case(draw):
    """(gi, x, full): an input x of an op with output shape `full`, and a gradient for it that
    broadcasts to `full`: of its shape, or compact (size 1 where a reduction left it)."""
    full = draw(shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    lead = draw(st.integers(0, len(full)))
    x_shape = tuple(s if draw(st.booleans()) else 1 for s in full[lead:])
    g_shape = tuple(s if draw(st.booleans()) else 1 for s in full)
    if draw(st.booleans()):  # fewer axes (a vjp's gradient has at least its input's)
        g_shape = g_shape[draw(st.integers(0, len(g_shape) - len(x_shape))):]
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    gi = rng.standard_normal(g_shape).astype(dtype)
    x = rng.standard_normal(x_shape).astype(draw(st.sampled_from([dtype, np.float64])))
    return gi, x, full


@SETTINGS
@given(_fit_case(), st.booleans())
def test_fit_sums_a_gradient_to_its_input_as_the_reference_does(case, elementwise):
    gi, x, full = case
    full = full if elementwise else None
    # the reference gradient: the full one the compact gradient stands for, summed
    spread = np.broadcast_to(gi, np.broadcast_shapes(gi.shape, full or (), x.shape))
    want = walk._fit(reference_ns, spread, x, None)
    got = accumulate.fit(numpy_ns, gi, x, full)  # may stay compact where x is not broadcast
    assert np.broadcast_shapes(got.shape, x.shape) == x.shape and got.ndim == x.ndim
    # bitwise unless gi is compact: the reference sums its spread copy (numpy may sum a
    # broadcast view in another order), fit the compact gi itself, and n equal terms along an
    # axis x was broadcast on as n * g
    compact = spread.shape != gi.shape
    _close(np.broadcast_to(got, x.shape), np.asarray(want), exact=not compact,
           computed_in=gi.dtype)
    # with compact_gradient off the namespace spreads it first: the same bits as the reference
    with tg.fast_mode(False, paths=["compact_gradient"]):
        plain = accumulate.fit(numpy_ns, gi, x, full)
    _close(np.asarray(plain), np.asarray(want), exact=True)


@SETTINGS
@given(shapes(min_dims=0, max_dims=3, max_side=4), st.integers(0, 2 ** 16))
def test_expand_is_the_reference_broadcast(shape, seed):
    g = np.random.default_rng(seed).standard_normal(tuple(1 for _ in shape))
    want = walk.REFERENCE.expand(reference_ns, g, shape)
    np.testing.assert_array_equal(accumulate.expand(numpy_ns, g, shape), want)


# ---- accumulate: the terms a leaf receives in one walk -------------------------------------------
KINDS = ["fresh", "passed", "view", "broadcast", "larger", "user", "vjp_all", "scaled"]


@st.composite
def _terms(draw, kinds=KINDS):
    """A leaf and the gradient terms one walk hands it: (kind, gi, upstream, op, full)."""
    shape = draw(shapes(min_dims=0, max_dims=2, min_side=1, max_side=5))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))

    def new(s=shape):
        return np.asarray(rng.standard_normal(s), dtype)

    terms = []
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4)):
        g = new()  # the op's incoming gradient
        op, full = FRESH_OP, None
        if kind == "fresh":  # a new array from a built-in vjp
            gi = new()
        elif kind == "passed":  # the incoming gradient passed through (add)
            gi = g
        elif kind == "view":  # a view of it (reshape)
            gi = g.reshape(-1).reshape(shape) if shape else g[...]
        elif kind == "broadcast":  # a read-only broadcast of a smaller gradient
            gi = np.broadcast_to(new(()), shape)
        elif kind == "larger":  # broadcasting undone: summed down
            gi = g = new((3, *shape))
        elif kind == "user":  # a custom Function's gradient (a copy its vjp made)
            gi, op = new(), USER_OP
        elif kind == "vjp_all":  # an op's combined vjp: an array of its own
            gi, op = new(), ALL_OP
        else:  # the L2 term's lazy product
            gi = Scaled(new(), np.asarray(0.25 * draw(st.integers(1, 8)), dtype))
        terms.append((kind, gi, g, op, full))
    return tg.tensor(new(), requires_grad=True), terms


def _run(hook, leaf, terms, xp, fit):
    """The leaf's .grad after one walk handing it `terms` (through the hook made by `hook`),
    and the arrays the caller still holds (each term's gradient and upstream)."""
    add, finish = hook(xp, fit, {}, None, True, False)
    for _, gi, g, op, full in terms:
        add(leaf, gi, full, g, op)
    finish()
    return leaf.grad.data


def _reference(leaf, terms):
    ref = tg.tensor(leaf.data, requires_grad=True)
    plain = [(k, gi.array() if isinstance(gi, Scaled) else gi, g, op, full)
             for k, gi, g, op, full in terms]
    return _run(walk.REFERENCE.accumulate, ref, plain, reference_ns, walk._fit)


def _snapshot(terms):
    return [(np.array(gi.x if isinstance(gi, Scaled) else gi), np.array(g))
            for _, gi, g, _, _ in terms]


GIVEN = ("fresh", "vjp_all", "user")  # arrays nothing else holds: the leaf may keep them


def _assert_intact(before, terms):
    """The arrays of `terms` hold what `before` took of them, except those given to the leaf."""
    for (gi, g), (kind, gi_now, g_now, _, _) in zip(before, terms):
        if kind not in GIVEN:
            np.testing.assert_array_equal(gi, gi_now.x if kind == "scaled" else gi_now)
        np.testing.assert_array_equal(g, g_now)


@SETTINGS
@given(_terms(), st.sampled_from([(), ("fresh_gradient",), ("inplace_accumulate",),
                                  ("axpy",), ("vjp_all",)]), st.booleans())
def test_accumulate_gives_the_reference_gradient(case, off, training):
    leaf, terms = case
    want = _reference(leaf, terms)
    before = _snapshot(terms)
    hook = accumulate.accumulator(frozenset(off), training)
    got = _run(hook, leaf, terms, numpy_ns, accumulate.fit)
    # a lazy product is added after the leaf's other terms (and by axpy: one rounding)
    lazy = training and any(kind == "scaled" for kind, *_ in terms)
    _close(got, want, exact=not lazy)
    assert type(got) is np.ndarray and got.flags.writeable
    _assert_intact(before, terms)


@SETTINGS
@given(_terms())
def test_a_leaf_never_keeps_an_array_someone_else_holds(case):
    """What a vjp may share with its incoming gradient (a pass-through, a view, a broadcast) is
    copied before a leaf keeps it: writing into the .grad changes no caller's array."""
    leaf, terms = case
    got = _run(accumulate.accumulator(frozenset(), True), leaf, terms, numpy_ns, accumulate.fit)
    before = _snapshot(terms)
    got += 1.0
    _assert_intact(before, terms)


@SETTINGS
@given(_terms(kinds=["fresh", "vjp_all"]))
def test_a_leaf_keeps_the_first_fresh_array_and_adds_the_rest_into_it(case):
    leaf, terms = case
    counts = tg.fast_paths(reset=True)  # noqa: F841  (a fresh start for the counters)
    got = _run(accumulate.accumulator(frozenset(), True), leaf, terms, numpy_ns, accumulate.fit)
    assert got is terms[0][1]  # kept, not copied
    hits = tg.fast_paths()
    assert hits["fresh_gradient"].hits == 1
    assert hits["inplace_accumulate"].hits == len(terms) - 1


@SETTINGS
@given(_terms(kinds=["scaled"]), st.booleans())
def test_lazy_products_alone_are_computed_at_the_end(case, axpy):
    leaf, terms = case
    want = _reference(leaf, terms)
    hook = accumulate.accumulator(frozenset() if axpy else frozenset({"axpy"}), True)
    add, finish = hook(numpy_ns, accumulate.fit, {}, None, True, False)
    for _, gi, g, op, full in terms:
        add(leaf, gi, full, g, op)
    assert leaf.grad is None  # still waiting for another gradient
    finish()
    _close(leaf.grad.data, want, exact=len(terms) == 1)


def test_the_fast_hooks_are_installed_at_import():
    assert walk._FAST == [accumulate]
    hooks = walk._hooks(True)
    assert hooks.fit is accumulate.fit and hooks.expand is accumulate.expand
    assert hooks.gradients is walk._vjps_all
