"""autograd.tracing: the hook points a tracer uses, declared beside the ops; and the one-way
dependency that keeps them there (compile imports autograd and ops, never the reverse)."""
import ast
import pathlib

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.autograd import tracing

ROOT = pathlib.Path(tg.__file__).parent


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


def _compile_imports(path):
    """The tensorgrad.compile modules a source file imports."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            names = [module] + [f"{module}.{a.name}" for a in node.names]
            found += [n for n in names if n.startswith("tensorgrad.compile.")]
    return found


@pytest.mark.parametrize("where", ["autograd", "ops", "creation.py"])
def test_autograd_and_ops_do_not_import_the_compiler(where):
    paths = [ROOT / where] if where.endswith(".py") else sorted((ROOT / where).glob("*.py"))
    allowed = {"tensorgrad.compile.blas"}  # walk.py's BLAS helpers (no tracing involved)
    for path in paths:
        bad = [m for m in _compile_imports(path) if not any(m.startswith(a) for a in allowed)]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
