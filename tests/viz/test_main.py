"""`python -m tensorgrad.viz OUT`: the README's picture, a small MLP's loss graph with its fused
chain as a cluster and its parameters named, written to OUT only."""
import os

import pytest

import tensorgrad as tg
from tensorgrad.viz.__main__ import example, main
from tests.viz.test_dot import parse
from tests.viz.test_picture import PNG, no_dot  # noqa: F401  (a fixture, used by name)


def test_the_command_writes_the_picture_and_nothing_else(no_dot, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "pictures" / "graph.png"
    out.parent.mkdir()
    main([os.fspath(out)])
    assert out.read_bytes().startswith(PNG)
    assert os.listdir(out.parent) == ["graph.png"]
    assert capsys.readouterr().out.strip() == os.fspath(out)


def test_the_example_is_a_two_layer_mlp_with_batch_norm_and_a_fused_chain():
    model, x, loss = example()
    boxes, _, clusters = parse(tg.viz.to_dot(loss, dict(model.named_parameters())))
    (_, members), = clusters.values()
    names = {lines[0] for lines, _ in boxes.values()}
    assert {"fc1.weight", "fc1.bias", "bn1.weight", "bn1.bias", "fc2.weight", "fc2.bias",
            "log_softmax"} <= names
    assert [boxes[b][0][0] for b in members].count("linear") == 2


def test_the_command_needs_an_output_path(capsys):
    with pytest.raises(SystemExit):
        main([])
    assert "out" in capsys.readouterr().err
