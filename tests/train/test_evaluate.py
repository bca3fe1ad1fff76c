"""evaluate's flip test-time augmentation: off by default, the average of each image's and its
mirror's probabilities when on, mirrored in pixel space under a Normalize."""
import numpy as np
import pytest

from models.mlp import MLP
from tensorgrad.data import Normalize
from tensorgrad.train import evaluate

pytestmark = pytest.mark.usefixtures("each_mode")  # in fast and reference mode

SIDE = 4  # images of 3 x 4 x 4 as rows of 48 values


def _images(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3 * SIDE * SIDE)).astype(np.float32)
    left = x.reshape(n, 3, SIDE, SIDE)[..., : SIDE // 2].sum(axis=(1, 2, 3))
    return x, (left > np.median(left)).astype(np.int64)  # a label that depends on the side


def _mirror(x):
    return x.reshape(len(x), 3, SIDE, SIDE)[..., ::-1].reshape(len(x), -1)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _model(seed=0):
    model = MLP([3 * SIDE * SIDE, 16, 2], seed=seed)
    model.eval()
    return model


def _logits(model, x):
    from tensorgrad.autograd import Tensor, no_grad
    with no_grad():
        return model(Tensor(x)).data.astype(np.float64)


def test_off_by_default():
    model, (x, y) = _model(), _images()
    assert evaluate(model, x, y) == evaluate(model, x, y, flip_tta=False)
    plain = evaluate(model, x, y)
    assert plain["acc"] == np.mean(_logits(model, x).argmax(axis=1) == y)


def test_flip_tta_averages_the_probabilities_of_each_image_and_its_mirror():
    model, (x, y) = _model(), _images()
    got = evaluate(model, x, y, batch_size=7, flip_tta=True)
    p = (_softmax(_logits(model, x)) + _softmax(_logits(model, _mirror(x)))) / 2
    assert got["acc"] == np.mean(p.argmax(axis=1) == y)
    assert got["loss"] == pytest.approx(-np.log(p[np.arange(len(y)), y]).mean(), rel=1e-5)
    assert got["cost"] == got["loss"]
    plain = evaluate(model, x, y)
    assert abs(got["loss"] - plain["loss"]) > 1e-4  # the mirror really enters
    assert evaluate(model, x, y, batch_size=1000, flip_tta=True)["acc"] == got["acc"]


def test_flip_tta_of_mirror_symmetric_images_is_the_plain_evaluation():
    model, (x, y) = _model(seed=1), _images()
    symmetric = (x + _mirror(x)) / 2
    plain, tta = evaluate(model, symmetric, y), evaluate(model, symmetric, y, flip_tta=True)
    assert tta["acc"] == plain["acc"]
    assert tta["loss"] == pytest.approx(plain["loss"], rel=1e-5)


def test_flip_tta_mirrors_standardised_images_in_pixel_space():
    model, (pixels, y) = _model(seed=2), _images()
    norm = Normalize.fit(_images(200, seed=3)[0])
    got = evaluate(model, norm(pixels), y, flip_tta=True, normalize=norm)
    p = (_softmax(_logits(model, norm(pixels)))
         + _softmax(_logits(model, norm(_mirror(pixels))))) / 2
    assert got["loss"] == pytest.approx(-np.log(p[np.arange(len(y)), y]).mean(), rel=1e-4)
    assert got["acc"] == np.mean(p.argmax(axis=1) == y)
    naive = evaluate(model, norm(pixels), y, flip_tta=True)  # flipping the standardised rows
    assert abs(naive["loss"] - got["loss"]) > 1e-4


def test_flip_tta_refuses_rows_that_are_not_images_and_restores_the_mode():
    model = MLP([10, 4, 2], seed=0)
    model.train()
    x, y = np.zeros((5, 10), np.float32), np.zeros(5, np.int64)
    with pytest.raises(ValueError, match=r"hflip: expects images .* got shape \(5, 10\)"):
        evaluate(model, x, y, flip_tta=True)
    assert model.training
