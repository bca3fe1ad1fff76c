"""tg.viz.draw: PNG and SVG files drawn by matplotlib when Graphviz is not on PATH, by `dot`
when it is (a fake `dot` here, recording how it was called), the layered layout's promises,
and clear errors that leave no file behind."""
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad.viz import picture
from tensorgrad.viz.__main__ import example
from tensorgrad.viz.graph import read

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """A PATH without Graphviz: draw falls back to matplotlib."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", os.fspath(empty))


FAKE_DOT = """#!/bin/sh
printf '%s\\n' "$@" > "{log}"
cat > "{log}.in"
if [ -n "$FAKE_DOT_FAIL" ]; then echo "syntax error in line 1" >&2; exit 3; fi
printf 'picture by fake dot'
"""


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """A `dot` first on PATH that records its arguments and input in `log` and writes a fixed
    text as its picture."""
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "dot.log"
    script = folder / "dot"
    script.write_text(FAKE_DOT.format(log=log))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", os.fspath(folder) + os.pathsep + os.environ.get("PATH", ""))
    return log


def mlp_loss():
    model, x, loss = example()
    return loss, {"input": x, **dict(model.named_parameters())}


def test_png_by_matplotlib(no_dot, tmp_path):
    loss, params = mlp_loss()
    path = tmp_path / "graph.png"
    assert tg.viz.draw(loss, path, params) == path
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000
    assert sorted(os.listdir(tmp_path)) == ["empty-bin", "graph.png"]  # no temporary left


def test_svg_by_matplotlib_keeps_the_labels_as_text(no_dot, tmp_path):
    loss, params = mlp_loss()
    path = os.fspath(tmp_path / "graph.SVG")  # a str path, the suffix in any case
    tg.viz.draw(loss, path, params)
    text = open(path).read()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for label in ("fc1.weight", "bn1.bias", "fused[Linear+BatchNorm1d+ReLU+Linear]",
                  "log_softmax", "(8, 16) float32"):
        assert label in text


def test_a_leaf_draws_as_one_box(no_dot, tmp_path):
    w = tg.tensor(np.ones(3), requires_grad=True)
    tg.viz.draw(w, tmp_path / "leaf.png", {"w": w})
    assert (tmp_path / "leaf.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_graphviz_when_dot_is_on_path(fake_dot, tmp_path, fmt):
    loss, params = mlp_loss()
    path = tmp_path / f"graph.{fmt}"
    tg.viz.draw(loss, path, params)
    assert path.read_bytes() == b"picture by fake dot"
    assert fake_dot.read_text().splitlines() == [f"-T{fmt}"]
    assert (tmp_path / "dot.log.in").read_text() == tg.viz.to_dot(loss, params)


def test_a_failing_dot_raises_with_its_message_and_keeps_the_old_file(fake_dot, tmp_path,
                                                                        monkeypatch):
    loss, params = mlp_loss()
    path = tmp_path / "graph.png"
    path.write_bytes(b"old")
    monkeypatch.setenv("FAKE_DOT_FAIL", "1")
    with pytest.raises(RuntimeError, match=r"dot -Tpng failed \(exit status 3\): syntax error"):
        tg.viz.draw(loss, path, params)
    assert path.read_bytes() == b"old"


@pytest.mark.parametrize("name", ["graph.pdf", "graph", "graph.png.txt"])
def test_a_bad_extension_names_the_argument(tmp_path, name):
    w = tg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"viz.draw: path must end in .png or .svg, got path="):
        tg.viz.draw(w, tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_a_freed_graph_raises_and_writes_nothing(no_dot, tmp_path):
    loss, params = mlp_loss()
    loss.backward()
    with pytest.raises(tg.GraphFreedError, match="retain_graph=True"):
        tg.viz.draw(loss, tmp_path / "graph.png", params)
    assert os.listdir(tmp_path) == ["empty-bin"]


def test_the_layout_keeps_its_promises():
    """Arrows go down, boxes of a layer do not overlap, a cluster's items sit together on each
    layer, and a leaf sits just above the first op that reads it."""
    loss, params = mlp_loss()
    graph = read(loss, params)
    pos, size, paths, rows, cluster = picture._layout(graph)
    for path in paths:
        ys = [pos[item][1] for item in path]
        assert all(a > b for a, b in zip(ys, ys[1:]))
    for row in rows:
        xs = sorted((pos[i][0] - size[i][0] / 2, pos[i][0] + size[i][0] / 2) for i in row)
        assert all(right <= left for (_, right), (left, _) in zip(xs, xs[1:]))
        ordered = sorted(row, key=lambda i: pos[i][0])
        for c in graph.clusters:
            at = [k for k, i in enumerate(ordered) if cluster[i] == c.id]
            if at:
                assert at == list(range(at[0], at[0] + len(at)))
    layer = {i: k for k, row in enumerate(rows) for i in row}
    w = next(b.id for b in graph.boxes if b.lines[0] == "fc2.weight")
    readers = [dst for src, dst in graph.edges if src == w]
    assert layer[w] == min(layer[r] for r in readers) - 1


def test_matplotlib_is_imported_only_to_draw():
    code = ("import sys, numpy as np, tensorgrad as tg\n"
            "w = tg.tensor(np.ones(2), requires_grad=True)\n"
            "tg.viz.to_dot((w * w).sum())\n"
            "assert 'matplotlib' not in sys.modules, 'imported early'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 0, proc.stderr
