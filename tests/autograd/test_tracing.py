"""autograd.tracing: the hook points a tracer uses, declared beside the ops (so that ops need not
import the compiler: tests/test_layout.py checks the direction)."""
import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.autograd import tracing


def test_markers_register_every_code_object_of_a_function():
    def reader(x):
        return [len(y.shape) for y in x]  # a comprehension: its own code object

    assert tracing.static_read(reader) is reader
    assert reader.__code__ in tracing.STATIC_READERS
    inner = next(c for c in reader.__code__.co_consts if hasattr(c, "co_code"))
    assert inner in tracing.STATIC_READERS

    def values(x):
        return x.data

    tracing.value_read("reading values", "a test")(values)
    assert tracing.VALUE_READERS[values.__code__] == ("reading values", "a test")
    f = tg.fuse(lambda x: x * values(x))
    with pytest.raises(tg.TraceError, match="reading values"):
        f(tg.tensor(np.ones(2)))


def test_without_a_trace_the_hooks_do_nothing_special():
    tracing.random_draw("a test")  # no trace: no error
    assert tg.ops.sign(tg.tensor([-2.0, 3.0])).data.tolist() == [-1.0, 1.0]
