"""Tests for tensorgrad.data.augment: per-batch augmentations and standardisation."""
import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from tensorgrad.data import (
    ColorJitter,
    Compose,
    GaussianBlur,
    GaussianNoise,
    Normalize,
    RandomHorizontalFlip,
    RandomTranslation,
    hflip,
    standardize,
)


def images(n=16, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((n, 3072)).astype(dtype)


ALL = [
    lambda seed: RandomHorizontalFlip(0.5, seed=seed),
    lambda seed: RandomTranslation(3, seed=seed),
    lambda seed: RandomTranslation(3, fill="edge", seed=seed),
    lambda seed: ColorJitter(brightness=0.3, contrast=0.3, seed=seed),
    lambda seed: GaussianNoise(0.1, seed=seed),
    lambda seed: GaussianBlur(0.5, sigma=(0.2, 1.0), seed=seed),
    lambda seed: Compose([RandomHorizontalFlip(0.2, seed=seed), GaussianBlur(0.5, seed=seed + 1)]),
]


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("shape, dtype", [((16, 3072), np.float32), ((16, 3, 32, 32), np.float64)])
def test_shape_dtype_kept_input_untouched_and_seeded(make, shape, dtype):
    x = images(16, dtype=dtype).reshape(shape)
    before = x.copy()
    out = make(1)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(make(1)(x), out)                  # same seed, same output
    assert not np.array_equal(make(2)(x), out)                      # another seed, another one


@pytest.mark.parametrize("make", ALL)
def test_state_dict_restores_the_random_stream(make):
    x = images(8)
    t = make(5)
    t(x)
    state = copy.deepcopy(t.state_dict())
    expected = [t(x), t(x)]
    fresh = make(123)
    fresh.load_state_dict(state)
    for want in expected:
        np.testing.assert_array_equal(fresh(x), want)


def test_reprs_are_readable():
    assert repr(RandomHorizontalFlip(0.2)) == "RandomHorizontalFlip(p=0.2)"
    assert repr(RandomTranslation(2, fill="edge")) == "RandomTranslation(max_shift=2, fill='edge')"
    assert repr(ColorJitter(0.2, (0.5, 1.5))) == (
        "ColorJitter(brightness=(0.8, 1.2), contrast=(0.5, 1.5))")
    assert repr(GaussianNoise(0.05)) == "GaussianNoise(std_fraction=0.05)"
    assert repr(GaussianBlur(0.5, (0, 0.5))) == (
        "GaussianBlur(p=0.5, sigma=(0.0, 0.5), mode='reflect')")
    assert repr(Compose([RandomHorizontalFlip(0.2), GaussianNoise(0.1)])) == (
        "Compose(\n    RandomHorizontalFlip(p=0.2)\n    GaussianNoise(std_fraction=0.1)\n)")


@pytest.mark.parametrize("bad, error, match", [
    (lambda: RandomHorizontalFlip(1.5), ValueError, "p must be in"),
    (lambda: GaussianBlur(-0.1), ValueError, "p must be in"),
    (lambda: GaussianBlur(sigma=(0.5, 0.1)), ValueError, "sigma range"),
    (lambda: RandomTranslation(-1), ValueError, "max_shift"),
    (lambda: RandomTranslation(1, fill="wrap"), ValueError, "fill must be"),
    (lambda: ColorJitter(brightness=-1), ValueError, "brightness must be non-negative"),
    (lambda: GaussianNoise(-0.1), ValueError, "std_fraction"),
    (lambda: RandomHorizontalFlip()(np.zeros((2, 3072), np.uint8)), TypeError, "float numpy array"),
    (lambda: RandomHorizontalFlip()(np.zeros((2, 3000))), ValueError, r"shape \(2, 3000\)"),
    (lambda: Compose([1]), TypeError, "not callable"),
])
def test_bad_arguments(bad, error, match):
    with pytest.raises(error, match=match):
        bad()


# --- flip ---------------------------------------------------------------------------------------

def test_flip_with_p_one_mirrors_every_image_and_twice_is_identity():
    x = images(10)
    flip = RandomHorizontalFlip(1.0, seed=0)
    once = flip(x)
    np.testing.assert_array_equal(once.reshape(-1, 3, 32, 32), x.reshape(-1, 3, 32, 32)[..., ::-1])
    np.testing.assert_array_equal(flip(once), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(x), x)


def test_hflip_mirrors_every_image_and_twice_is_identity():
    x = images(6)
    once = hflip(x)
    np.testing.assert_array_equal(once.reshape(-1, 3, 32, 32), x.reshape(-1, 3, 32, 32)[..., ::-1])
    assert once.shape == x.shape and not np.shares_memory(once, x)
    np.testing.assert_array_equal(hflip(once), x)
    cube = x.reshape(6, 3, 32, 32)
    np.testing.assert_array_equal(hflip(cube), cube[..., ::-1])
    with pytest.raises(ValueError, match=r"hflip: expects images .* got shape \(2, 10\)"):
        hflip(np.zeros((2, 10)))


def test_hflip_of_standardised_images_mirrors_their_pixels():
    pixels = images(5)
    norm = Normalize.fit(images(50, seed=1))
    flipped = hflip(norm(pixels), norm)
    expected = norm(pixels.reshape(5, 3, 32, 32)[..., ::-1].reshape(5, -1))
    assert flipped.dtype == np.float32
    np.testing.assert_allclose(flipped, expected, atol=1e-4)
    np.testing.assert_allclose(hflip(flipped, norm), norm(pixels), atol=1e-4)
    assert not np.allclose(hflip(norm(pixels)), expected, atol=1e-2)  # not the rows' mirror


def test_flip_fraction_matches_p():
    x = images(2000)
    out = RandomHorizontalFlip(0.2, seed=3)(x)
    flipped = np.any(out != x, axis=1)
    assert 0.17 < flipped.mean() < 0.23
    mirrored = x.reshape(-1, 3, 32, 32)[..., ::-1].reshape(len(x), -1)
    np.testing.assert_array_equal(out[flipped], mirrored[flipped])


# --- translation --------------------------------------------------------------------------------

def test_translation_by_zero_is_identity():
    x = images(5)
    np.testing.assert_array_equal(RandomTranslation(0, seed=1)(x), x)
    np.testing.assert_array_equal(RandomTranslation(0, fill="edge", seed=1)(x), x)


def shifted(img, dy, dx, fill):
    """Reference: img (C, H, W) moved down by dy and right by dx."""
    c, h, w = img.shape
    if fill == "edge":
        padded = np.pad(img, ((0, 0), (abs(dy),) * 2, (abs(dx),) * 2), mode="edge")
    else:
        padded = np.pad(img, ((0, 0), (abs(dy),) * 2, (abs(dx),) * 2), constant_values=fill)
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[:, top:top + h, left:left + w]


@settings(max_examples=30, deadline=None)
@given(max_shift=st.integers(0, 4), fill=st.sampled_from([0.0, 0.5, "edge"]),
       seed=st.integers(0, 10_000))
def test_each_image_is_a_whole_pixel_shift_within_range(max_shift, fill, seed):
    x = images(6, seed=seed).reshape(6, 3, 32, 32)
    out = RandomTranslation(max_shift, fill=fill, seed=seed)(x)
    shifts = range(-max_shift, max_shift + 1)
    for img, got in zip(x, out):
        assert any(np.array_equal(got, shifted(img, dy, dx, fill))
                   for dy in shifts for dx in shifts)


def gathered_translation(x, max_shift, fill, rng):
    """The reference: the gather-by-index translation that RandomTranslation's slice copies
    replaced, drawing its shifts from rng the same way."""
    side = math.isqrt(x.shape[1] // 3) if x.ndim == 2 else None
    images = x if x.ndim == 4 else x.reshape(len(x), 3, side, side)
    n, c, h, w = images.shape
    shifts = rng.integers(-max_shift, max_shift + 1, size=(2, n))
    rows, cols = np.arange(h) - shifts[0][:, None], np.arange(w) - shifts[1][:, None]
    out = images[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                 np.clip(rows, 0, h - 1)[:, None, :, None],
                 np.clip(cols, 0, w - 1)[:, None, None, :]]
    if fill != "edge":
        inside = (((rows >= 0) & (rows < h))[:, None, :, None]
                  & ((cols >= 0) & (cols < w))[:, None, None, :])
        out = np.where(inside, out, np.asarray(fill, dtype=out.dtype))
    return out.reshape(x.shape)


@pytest.mark.parametrize("shape, dtype", [((12, 3072), np.float32), ((12, 3, 32, 32), np.float64),
                                          ((12, 2, 5, 7), np.float32)])
@pytest.mark.parametrize("max_shift", [0, 1, 3, 9])   # 9: beyond the 5 x 7 images
@pytest.mark.parametrize("fill", [0.0, 0.25, "edge"])
def test_translation_is_bit_for_bit_the_gathered_one(shape, dtype, max_shift, fill):
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    x.flat[::7] = -0.0   # signed zeros must come through as they are
    ours, rng = RandomTranslation(max_shift, fill=fill, seed=11), np.random.default_rng(11)
    for _ in range(3):   # the generators stay in step from call to call
        got, expected = ours(x), gathered_translation(x, max_shift, fill, rng)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes()
    assert ours.rng.bit_generator.state == rng.bit_generator.state


# --- colour jitter ------------------------------------------------------------------------------

def test_colour_jitter_without_strength_is_identity():
    x = images(4)
    np.testing.assert_allclose(ColorJitter(0, 0, seed=0)(x), x, atol=1e-7)


def test_brightness_scales_each_image_by_one_factor_in_range():
    x = images(200) * 0.5                       # no clipping for factors up to 1.3
    out = ColorJitter(brightness=0.3, seed=0)(x)
    ratios = out / x
    factor = ratios[:, :1]
    np.testing.assert_allclose(ratios, np.broadcast_to(factor, ratios.shape), rtol=1e-5)
    assert factor.min() >= 0.7 - 1e-6 and factor.max() <= 1.3 + 1e-6
    assert factor.max() - factor.min() > 0.3    # the factors really vary


def test_contrast_keeps_each_images_grey_mean():
    x = 0.25 + 0.5 * images(50)                 # mid-range, so factors <= 1.5 never clip
    out = ColorJitter(contrast=0.5, seed=1)(x).reshape(-1, 3, 32, 32)

    def grey_mean(a):
        return np.tensordot(a, [0.299, 0.587, 0.114], axes=([1], [0])).mean(axis=(1, 2))
    np.testing.assert_allclose(grey_mean(out), grey_mean(x.reshape(-1, 3, 32, 32)), atol=1e-5)
    spread = out.reshape(len(x), -1).std(axis=1) / x.std(axis=1)
    assert spread.min() >= 0.5 - 1e-4 and spread.max() <= 1.5 + 1e-4
    assert spread.max() - spread.min() > 0.3


def test_colour_jitter_output_stays_in_unit_range():
    out = ColorJitter(brightness=0.9, contrast=0.9, seed=2)(images(50))
    assert out.min() >= 0 and out.max() <= 1


# --- noise --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.5])
def test_noise_std_is_the_fraction_of_the_batch_std(fraction):
    x = images(100) * 0.6 + 0.1
    noise = GaussianNoise(fraction, seed=0)(x) - x
    assert abs(noise.std() / (fraction * x.std()) - 1) < 0.02
    assert abs(noise.mean()) < 0.02 * noise.std()
    np.testing.assert_array_equal(GaussianNoise(0.0, seed=0)(x), x)


# --- blur ---------------------------------------------------------------------------------------

def test_blur_with_fixed_sigma_matches_scipy_and_keeps_each_mean():
    x = images(8).reshape(8, 3, 32, 32)
    out = GaussianBlur(1.0, sigma=0.7, seed=0)(x)
    for img, got in zip(x, out):
        np.testing.assert_allclose(got, gaussian_filter(img, (0, 0.7, 0.7), mode="reflect"),
                                   rtol=1e-6)
    np.testing.assert_allclose(out.mean(axis=(2, 3)), x.mean(axis=(2, 3)), atol=1e-5)
    assert out.std() < x.std()


@settings(max_examples=20, deadline=None)
@given(p=st.floats(0, 1), lo=st.floats(0, 1), width=st.floats(0, 1), seed=st.integers(0, 1000))
def test_blur_keeps_per_image_channel_means(p, lo, width, seed):
    x = images(6, seed=seed).reshape(6, 3, 32, 32)
    out = GaussianBlur(p, sigma=(lo, lo + width), seed=seed)(x)
    np.testing.assert_allclose(out.mean(axis=(2, 3)), x.mean(axis=(2, 3)), atol=1e-5)


def test_blur_touches_about_a_fraction_p_and_sigma_zero_is_identity():
    x = images(400)
    changed = np.any(GaussianBlur(0.5, sigma=(0.3, 0.5), seed=0)(x) != x, axis=1)
    assert 0.42 < changed.mean() < 0.58
    np.testing.assert_array_equal(GaussianBlur(1.0, sigma=0.0, seed=0)(x), x)
    np.testing.assert_array_equal(GaussianBlur(0.0, sigma=2.0, seed=0)(x), x)


# --- compose ------------------------------------------------------------------------------------

def test_compose_applies_in_order_and_aggregates_state():
    x = images(10)
    pipeline = Compose([RandomHorizontalFlip(0.2, seed=1), GaussianBlur(0.5, seed=2),
                        GaussianNoise(0.05, seed=3)])
    manual = GaussianNoise(0.05, seed=3)(
        GaussianBlur(0.5, seed=2)(RandomHorizontalFlip(0.2, seed=1)(x)))
    np.testing.assert_array_equal(pipeline(x), manual)
    state = pipeline.state_dict()
    assert len(state["transforms"]) == 3
    with pytest.raises(ValueError, match="holds 3 transforms, this Compose has 1"):
        Compose([GaussianNoise(0.1)]).load_state_dict(state)


def test_shared_generator_across_a_pipeline_is_reproducible():
    x = images(10)

    def pipeline(seed):
        g = np.random.default_rng(seed)
        return Compose([RandomHorizontalFlip(0.5, seed=g), RandomTranslation(2, seed=g)])
    np.testing.assert_array_equal(pipeline(4)(x), pipeline(4)(x))


# --- standardisation ----------------------------------------------------------------------------

def test_standardize_uses_training_statistics_for_every_split():
    rng = np.random.default_rng(0)
    train = rng.random((500, 3072)).astype(np.float32) * np.linspace(0.1, 1, 3072, dtype=np.float32)
    val, test = rng.random((50, 3072)).astype(np.float32), rng.random((70, 3072)).astype(np.float32)
    s_train, s_none, s_val, s_test = standardize(train, None, val, test)
    assert s_none is None
    for out, src in ((s_train, train), (s_val, val), (s_test, test)):
        assert out.dtype == np.float32 and out.shape == src.shape
    np.testing.assert_allclose(s_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(s_train.std(axis=0), 1, atol=1e-4)
    mean, std = train.astype(np.float64).mean(axis=0), train.astype(np.float64).std(axis=0)
    np.testing.assert_allclose(s_val, (val - mean) / std, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(s_test, (test - mean) / std, rtol=1e-4, atol=1e-5)


def test_normalize_fit_state_and_pipeline_use():
    x = images(64)
    norm = Normalize.fit(x)
    np.testing.assert_allclose(norm.mean, x.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(norm.std, x.astype(np.float64).std(axis=0), rtol=1e-6)
    other = Normalize(0.0, 1.0)
    other.load_state_dict(norm.state_dict())
    np.testing.assert_array_equal(other(x), norm(x))
    out = Compose([RandomHorizontalFlip(0.5, seed=0), norm])(x)
    assert out.dtype == np.float32 and abs(out.mean()) < 0.05
    assert repr(norm) == "Normalize(features=(3072,), dtype=float32)"
    assert Normalize.fit(x.astype(np.float64), dtype=np.float64)(x).dtype == np.float64


def test_constant_feature_becomes_zero_not_nan():
    x = images(20)
    x[:, 5] = 0.3
    out, = standardize(x)
    assert np.isfinite(out).all() and np.all(out[:, 5] == 0)


def test_normalize_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"shape \(100,\) do not match.*\(3072,\)"):
        Normalize.fit(images(4))(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize([0.0, 0.0], [1.0, 0.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_training_data_is_named_not_turned_into_nan_statistics(bad):
    x = images(12)
    x[4, 100] = bad
    with pytest.raises(ValueError, match=r"Normalize.fit: train_x holds 1 non-finite value "
                                         r"\(NaN or inf\); the first is at row 4"):
        Normalize.fit(x)
    with pytest.raises(ValueError, match=r"standardize: train_x holds 1 non-finite"):
        standardize(x, images(3))


def test_standardize_names_the_non_finite_other_split():
    val = images(5)
    val[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"standardize: others\[1\] holds 1 non-finite value "
                                         r"\(NaN or inf\); the first is at row 3"):
        standardize(images(20), None, val, images(4))


def test_normalize_refuses_non_finite_statistics():
    with pytest.raises(ValueError, match="Normalize: mean and std must be finite"):
        Normalize([0.0, np.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match="Normalize: mean and std must be finite"):
        Normalize([0.0, 0.0], [1.0, np.inf])
