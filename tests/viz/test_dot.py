"""tg.viz.to_dot: the boxes, labels, arrows and clusters of known graphs, the same text for the
same graph, clear errors (a freed graph, bad arguments), and a graph left as it was."""
import re
from collections import OrderedDict

import numpy as np
import pytest

import tensorgrad as tg
from tensorgrad import nn
from tensorgrad.nn import functional as F

_BOX = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)", (.*)\];$')
_EDGE = re.compile(r"^\s*(\w+) -> (\w+);$")


def parse(dot):
    """({box id: (label lines, attributes)}, [(from, to)], {cluster id: (label, [box ids])})."""
    boxes, edges, clusters, current = {}, [], {}, None
    for line in dot.splitlines():
        if m := re.match(r"^\s*subgraph (cluster_\w+) \{$", line):
            current = m.group(1)
            clusters[current] = [None, []]
        elif current and (m := re.match(r'^\s*label="((?:[^"\\]|\\.)*)";', line)):
            clusters[current][0] = m.group(1).split("\\n")
        elif line.strip() == "}" and current:
            current = None
        elif m := _BOX.match(line):
            boxes[m.group(1)] = (m.group(2).split("\\n"), m.group(3))
            if current:
                clusters[current][1].append(m.group(1))
        elif m := _EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
    return boxes, edges, clusters


def by_label(boxes, first_line):
    found = [b for b, (lines, _) in boxes.items() if lines[0] == first_line]
    assert len(found) == 1, (first_line, boxes)
    return found[0]


def expression():
    x = tg.tensor(np.arange(6.0).reshape(2, 3) / 10, requires_grad=True)
    w = tg.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    c = tg.tensor(np.ones(2))  # a constant operand
    return x, w, c, ((x * w).sum(axis=1) * c).tanh().sum()


def test_boxes_edges_and_labels_of_a_known_expression():
    x, w, c, loss = expression()
    dot = tg.viz.to_dot(loss, params={"x": x, "w": w})
    assert dot.startswith("digraph tensorgrad {") and dot.rstrip().endswith("}")
    boxes, edges, clusters = parse(dot)
    assert len(boxes) == 8 and len(edges) == 7 and clusters == {}  # 5 ops, 3 leaves
    labels = sorted(tuple(lines) for lines, _ in boxes.values())
    assert labels == sorted([("x", "(2, 3) float64"), ("w", "(3,) float64"),
                             ("constant", "(2,) float64"), ("mul", "(2, 3) float64"),
                             ("sum", "(2,) float64"), ("mul", "(2,) float64"),
                             ("tanh", "(2,) float64"), ("sum", "() float64")])
    ids = {tuple(lines): b for b, (lines, _) in boxes.items()}
    mul1, sum1 = ids["mul", "(2, 3) float64"], ids["sum", "(2,) float64"]
    mul2, tanh, out = ids["mul", "(2,) float64"], ids["tanh", "(2,) float64"], \
        ids["sum", "() float64"]
    assert sorted(edges) == sorted([(ids["x", "(2, 3) float64"], mul1),
                                    (ids["w", "(3,) float64"], mul1), (mul1, sum1),
                                    (sum1, mul2), (ids["constant", "(2,) float64"], mul2),
                                    (mul2, tanh), (tanh, out)])
    # parameters, constants, ops and the drawn tensor look different
    styles = {key: boxes[ids[key]][1] for key in ids}
    assert styles["x", "(2, 3) float64"] == styles["w", "(3,) float64"]
    assert len({styles["x", "(2, 3) float64"], styles["constant", "(2,) float64"],
                styles["mul", "(2, 3) float64"], styles["sum", "() float64"]}) == 4
    assert "dashed" in styles["constant", "(2,) float64"]


def test_without_params_leaves_show_shape_and_dtype_only():
    _, _, _, loss = expression()
    boxes, _, _ = parse(tg.viz.to_dot(loss))
    assert ["(2, 3) float64"] in [lines for lines, _ in boxes.values()]


def test_float32_and_integer_leaves_show_their_dtype():
    x = tg.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    idx = tg.tensor(np.array([1, 0, 3]))
    boxes, edges, _ = parse(tg.viz.to_dot(x[idx].sum(), {"x": x}))
    labels = [lines for lines, _ in boxes.values()]
    assert ["x", "(4, 2) float32"] in labels and ["sum", "() float32"] in labels


def test_the_same_graph_gives_the_same_text():
    x, w, _, loss = expression()
    first = tg.viz.to_dot(loss, {"x": x, "w": w})
    assert tg.viz.to_dot(loss, {"x": x, "w": w}) == first
    x, w, _, again = expression()  # built anew: other tensors, the same graph
    assert tg.viz.to_dot(again, {"x": x, "w": w}) == first
    ids = [b for b in parse(first)[0]]
    assert ids == [f"n{i}" for i in range(len(ids))]  # numbered in topological order


def test_a_leaf_is_one_box():
    w = tg.tensor(np.ones((3, 2)), requires_grad=True)
    boxes, edges, clusters = parse(tg.viz.to_dot(w, {"weight": w}))
    assert list(boxes.values())[0][0] == ["weight", "(3, 2) float64"]
    assert len(boxes) == 1 and edges == [] and clusters == {}
    boxes, _, _ = parse(tg.viz.to_dot(tg.tensor(2.5)))
    assert list(boxes.values())[0][0] == ["constant", "() float32"]


def test_a_freed_graph_raises_naming_what_to_do():
    x, w, _, loss = expression()
    loss.backward()
    with pytest.raises(tg.GraphFreedError, match="freed by backward") as info:
        tg.viz.to_dot(loss)
    assert "retain_graph=True" in str(info.value) and "before calling backward" in str(info.value)
    x, w, _, loss = expression()
    loss.backward(retain_graph=True)
    assert len(parse(tg.viz.to_dot(loss))[0]) == 8


def test_labels_are_escaped():
    w = tg.tensor(np.ones(2), requires_grad=True)
    dot = tg.viz.to_dot((w * 2).sum(), {'we"ird\\name\n': w})
    assert r'label="we\"ird\\name \n(2,) float64"' in dot
    boxes, _, _ = parse(dot)
    assert len(boxes) == 3


def test_a_tensor_named_twice_shows_both_names():
    w = tg.tensor(np.ones(2), requires_grad=True)
    boxes, _, _ = parse(tg.viz.to_dot((w * w).sum(), {"a": w, "b": w}))
    assert ["a, b", "(2,) float64"] in [lines for lines, _ in boxes.values()]


def test_bad_arguments_name_themselves():
    w = tg.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(TypeError, match="expected the Tensor"):
        tg.viz.to_dot(np.ones(2))
    with pytest.raises(TypeError, match="params must be a dict"):
        tg.viz.to_dot(w, [w])
    with pytest.raises(TypeError, match=r"params\['w'\] must be a Tensor"):
        tg.viz.to_dot(w, {"w": np.ones(2)})


@tg.fuse
def scaled_tanh(x, w):
    return (x * w).tanh().sum(axis=1)


@tg.fuse
def positive_part(x, w):
    y = x * w
    return tg.where(y > 0, y, 0.0 * y).sum(axis=1)


def test_a_fused_function_is_a_cluster_of_its_primitives():
    x = tg.tensor(np.ones((4, 3)), requires_grad=True)
    w = tg.tensor(np.full(3, 0.5), requires_grad=True)
    loss = scaled_tanh(x, w).mean()
    boxes, edges, clusters = parse(tg.viz.to_dot(loss, {"x": x, "w": w}))
    (cid, (label, members)), = clusters.items()
    assert label[0] == "fused[scaled_tanh]"
    assert [boxes[b][0] for b in members] == [["mul", "(4, 3) float64"],
                                              ["tanh", "(4, 3) float64"],
                                              ["sum", "(4,) float64"]]
    mul, tanh, total = members
    mean = by_label(boxes, "mean")
    assert sorted(edges) == sorted([(by_label(boxes, "x"), mul), (by_label(boxes, "w"), mul),
                                    (mul, tanh), (tanh, total), (total, mean)])
    assert len(boxes) == 6


def test_a_fused_nodes_dtypes_after_a_lean_forward():
    """Once a backward is compiled, a fused forward frees the values it does not need: the
    primitives' dtypes are then found again, and the text is the same."""
    texts, lean = [], []
    for _ in range(3):
        x = tg.tensor(np.ones((4, 3), np.float32), requires_grad=True)
        w = tg.tensor(np.full(3, 0.5, np.float32), requires_grad=True)
        tg.fast_paths(reset=True)
        loss = positive_part(x, w).sum()
        lean.append(tg.fast_paths()["lean_forward"].hits)
        texts.append(tg.viz.to_dot(loss, {"x": x, "w": w}))
        loss.backward()
    assert lean[0] == 0 and lean[2] == 1  # the last forward freed its unneeded values
    assert texts[0] == texts[1] == texts[2]
    boxes, _, clusters = parse(texts[0])
    (_, members), = clusters.values()
    assert [boxes[b][0] for b in members] == [
        ["mul", "(4, 3) float32"], ["greater", "(4, 3) bool"], ["mul", "(4, 3) float32"],
        ["where", "(4, 3) float32"], ["sum", "(4,) float32"]]


def mlp():
    tg.manual_seed(0)
    return nn.Sequential(OrderedDict([("fc1", nn.Linear(5, 4)), ("bn", nn.BatchNorm1d(4)),
                                      ("act", nn.ReLU()), ("fc2", nn.Linear(4, 3))]))


def test_a_fused_sequential_chain_is_a_cluster_of_the_eager_primitives():
    model = mlp()
    x = tg.tensor(np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    loss = F.cross_entropy(model(x), np.arange(6) % 3)
    params = dict(model.named_parameters())
    boxes, edges, clusters = parse(tg.viz.to_dot(loss, params))
    (cid, (label, members)), = clusters.items()
    fused = sorted(boxes[b][0][0] for b in members)
    assert {"linear", "relu", "mean"} <= set(fused)
    for name in params:  # each parameter outside the cluster, read by a primitive inside
        b = by_label(boxes, name)
        assert b not in members and any(s == b and d in members for s, d in edges)
    with tg.fast_mode(False):  # layer by layer: the same primitives, no cluster
        eager = F.cross_entropy(model(x), np.arange(6) % 3)
        boxes_e, _, clusters_e = parse(tg.viz.to_dot(eager, params))
    assert clusters_e == {}
    outside = sorted(lines[0] for b, (lines, attrs) in boxes.items()
                     if b not in members and not attrs.startswith('fillcolor="#add8e6"')
                     and lines[0] not in ("constant",))
    eager_ops = sorted(lines[0] for lines, attrs in boxes_e.values()
                       if not attrs.startswith('fillcolor="#add8e6"')
                       and lines[0] != "constant")
    # the program also computes the unbiased variance for the running statistics (a mul that
    # feeds only an auxiliary output, so the eager loss's graph does not reach it)
    assert sorted(fused + outside) == sorted(eager_ops + ["mul"])


def test_drawing_leaves_the_graph_and_its_gradients_as_they_were(tmp_path):
    def run(draw):
        model = mlp()
        x = tg.tensor(np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32),
                      requires_grad=True)
        w = tg.tensor(np.full(3, 0.5, np.float32), requires_grad=True)
        loss = F.cross_entropy(model(x), np.arange(6) % 3) + scaled_tanh(x[:, :3], w).sum()
        tg.fast_paths(reset=True)
        if draw:
            params = dict(model.named_parameters())
            text = tg.viz.to_dot(loss, params)
            tg.viz.draw(loss, tmp_path / "g.svg", params)
            assert tg.viz.to_dot(loss, params) == text
        hits = {k: v.hits for k, v in tg.fast_paths().items()}
        loss.backward()
        return [p.grad.numpy().copy() for p in model.parameters()] + \
            [x.grad.numpy().copy(), w.grad.numpy().copy()], hits

    plain, plain_hits = run(False)
    drawn, drawn_hits = run(True)
    assert drawn_hits == plain_hits  # drawing counted no fast path's hit
    assert len(plain) == len(drawn)
    for a, b in zip(plain, drawn):
        np.testing.assert_array_equal(a, b)


MASK = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


@tg.fuse
def masked_sum(x):
    return (x * MASK).sum()


def test_an_array_a_fused_function_captured_is_a_constant_inside_its_cluster():
    x = tg.tensor(np.ones((2, 3)), requires_grad=True)
    boxes, edges, clusters = parse(tg.viz.to_dot(masked_sum(x), {"x": x}))
    (_, members), = clusters.values()
    assert [boxes[b][0] for b in members] == [["constant", "(2, 3) float64"],
                                              ["mul", "(2, 3) float64"], ["sum", "() float64"]]
    assert "dashed" in boxes[members[0]][1] and (members[0], members[1]) in edges
    assert (by_label(boxes, "x"), members[1]) in edges


def test_an_in_place_change_is_drawn_as_its_op():
    x = tg.tensor(np.ones(3), requires_grad=True)
    y = x * 2
    y.add_(1)
    boxes, edges, _ = parse(tg.viz.to_dot(y.sum(), {"x": x}))
    assert [lines[0] for lines, _ in boxes.values()] == ["x", "mul", "add", "sum"]
    assert edges == [("n0", "n1"), ("n1", "n2"), ("n2", "n3")]
