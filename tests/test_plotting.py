"""tensorgrad.plotting: each figure is written as a PNG from a History or its dict."""
import struct

import pytest

from tensorgrad.plotting import plot_compare, plot_curves, plot_lr, plot_search, plot_side_by_side
from tensorgrad.train import History

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the PNG header."""
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000
    return struct.unpack(">II", data[16:24])


def history(n=6, val=True):
    h = History()
    h.lr = [1e-5 + 0.01 * (i % 5) for i in range(n * 10)]
    for i in range(1, n + 1):
        values = {"train_loss": 2.0 / i, "train_cost": 2.5 / i, "train_acc": 0.1 * i}
        if val:
            values.update(val_loss=2.1 / i, val_cost=2.6 / i, val_acc=0.09 * i)
        h.record(10 * i, i / 2, values)
    return h


def test_curves_from_history_and_from_its_dict(tmp_path):
    a = plot_curves(history(), tmp_path / "a.png", title="3 panels")
    b = plot_curves(history(val=False).to_dict(), tmp_path / "sub" / "b.png", x="epoch")
    width, height = png_size(a)
    assert width > 2.5 * height  # cost, loss, accuracy side by side
    assert png_size(b) == (width, height)


def test_lr_and_search_and_panels(tmp_path):
    assert png_size(plot_lr(history(), tmp_path / "lr.png"))
    assert png_size(plot_search([1e-4, 1e-2, 1e-3], [0.5, 0.4, 0.52], tmp_path / "s.png"))
    assert png_size(plot_search([0.01, 0.02], {"val": [0.5, 0.51], "test": [0.49, 0.5]},
                                tmp_path / "s2.png", log=False))
    runs = {f"run {i}": history() for i in range(3)}
    _, two_rows = png_size(plot_side_by_side(runs, tmp_path / "grid.png", ncols=2))
    _, one_row = png_size(plot_side_by_side(runs, tmp_path / "row.png", ncols=3))
    assert two_rows == 2 * one_row  # 2 rows of 2 panels (one hidden) vs 1 row of 3
    assert png_size(plot_compare(runs, tmp_path / "cmp.png", metrics=("loss", "acc", "cost")))


def test_bad_input_is_named(tmp_path):
    with pytest.raises(TypeError, match="plot_curves: expected a History"):
        plot_curves([1, 2], tmp_path / "x.png")
    with pytest.raises(ValueError, match="no measurements"):
        plot_curves(History(), tmp_path / "x.png")
    with pytest.raises(ValueError, match="no per-update learning rates"):
        plot_lr(History(), tmp_path / "x.png")
    with pytest.raises(ValueError, match="log axis needs positive"):
        plot_search([0.0, 1.0], [0.1, 0.2], tmp_path / "x.png")
    with pytest.raises(ValueError, match="series 'val' has 1 points for 2 values"):
        plot_search([1.0, 2.0], {"val": [0.1]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="x must be 'step' or 'epoch'"):
        plot_curves(history(), tmp_path / "x.png", x="time")
    with pytest.raises(ValueError, match="split must be"):
        plot_compare({"a": history()}, tmp_path / "x.png", split="test")
    assert not (tmp_path / "x.png").exists()


def test_a_plot_that_fails_midway_keeps_the_previous_image(tmp_path, monkeypatch):
    """Figures are written through tensorgrad.atomic: a failure while rendering leaves the
    previous PNG whole and no temporary file."""
    from matplotlib.figure import Figure
    path = tmp_path / "curves.png"
    plot_curves(history(), path)
    before = path.read_bytes()
    real = Figure.savefig

    def broken(self, fname, *args, **kwargs):
        real(self, fname, *args, **kwargs)  # the whole image, then a failure
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError) as info:
        plot_curves(history(3), path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["curves.png"]
