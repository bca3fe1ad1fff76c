"""The package's architecture as tests: no import cycles anywhere (imports inside functions
included), and dependencies that point one way: autograd knows nothing of ops, compile or nn;
ops nothing of compile or nn; compile nothing of nn; data nothing of the Tensor; the drawing of
graphs (viz) nothing of nn or optim."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules():
    """{dotted name: (path, is a package)} of every module in tensorgrad/."""
    out = {}
    for path in (ROOT / "tensorgrad").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _imports(name, path, is_pkg, known):
    """The tensorgrad modules `name` imports, wherever the import statement stands."""
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] +
                                (node.module.split(".") if node.module else []))
            else:
                base = node.module or ""
            for a in node.names:  # `from . import ops` imports the module tensorgrad.ops
                sub = f"{base}.{a.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known and m != name}


def _graph():
    known = _modules()
    return {name: _imports(name, path, is_pkg, known) for name, (path, is_pkg) in known.items()}


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(root):
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


# commands that show a layer at work on a model: they sit above every layer
_EXAMPLES = {"tensorgrad.viz.__main__"}


@pytest.mark.parametrize("lower, higher", [
    ("tensorgrad.autograd", "tensorgrad.ops"),
    ("tensorgrad.autograd", "tensorgrad.compile"),
    ("tensorgrad.autograd", "tensorgrad.nn"),
    ("tensorgrad.ops", "tensorgrad.compile"),
    ("tensorgrad.ops", "tensorgrad.nn"),
    ("tensorgrad.compile", "tensorgrad.nn"),
    ("tensorgrad.compile", "tensorgrad.optim"),
    ("tensorgrad.nn", "tensorgrad.optim"),
    ("tensorgrad.data", "tensorgrad.autograd"),  # data is plain numpy (its docstring)
    ("tensorgrad.data", "tensorgrad.creation"),
    ("tensorgrad.viz", "tensorgrad.nn"),  # it draws any graph, from the autograd records
    ("tensorgrad.viz", "tensorgrad.optim"),
])
def test_dependencies_point_one_way(lower, higher):
    graph = _graph()
    wrong = sorted(f"{m} imports {t}" for m, targets in graph.items()
                   if (m == lower or m.startswith(lower + ".")) and m not in _EXAMPLES
                   for t in targets if t == higher or t.startswith(higher + "."))
    assert wrong == []
