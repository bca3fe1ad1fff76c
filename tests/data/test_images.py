"""Tests for the lean data path: CIFAR-10 kept as uint8, each batch divided by 255, augmented and
normalised on the fly (tensorgrad.data.ImageArray), bitwise equal to the float32 path."""
import numpy as np
import pytest

from tensorgrad.data import (
    Compose,
    DataLoader,
    GaussianBlur,
    GaussianNoise,
    ImageArray,
    Normalize,
    RandomHorizontalFlip,
    RandomTranslation,
    load_cifar10,
    standardize,
)


def same_bits(a, b):
    """Equal dtype, shape and bytes (NaN-safe, -0.0 != 0.0)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def float_path(root, **kw):
    """The float32 path: pixels / 255 as float32, then standardize() of whole arrays."""
    s = load_cifar10(root, download=False, **kw)
    xs = standardize(s.train[0], None if s.val is None else s.val[0], s.test[0])
    return s, xs


def lean_path(root, **kw):
    s = load_cifar10(root, download=False, dtype=np.uint8, **kw)
    xs = standardize(s.train[0], None if s.val is None else s.val[0], s.test[0])
    return s, xs


@pytest.mark.parametrize("split", ["a", "b", "c"])
def test_uint8_splits_hold_the_same_images(cifar_root, split):
    floats = load_cifar10(cifar_root, split=split, n_val=30, download=False)
    raw = load_cifar10(cifar_root, split=split, n_val=30, download=False, dtype=np.uint8)
    for f, r in zip((floats.train, floats.val, floats.test), (raw.train, raw.val, raw.test)):
        if f is None:
            assert r is None
            continue
        assert r[0].dtype == np.uint8 and r[0].shape == f[0].shape
        assert same_bits(f[0], r[0].astype(np.float32) / np.float32(255))
        assert same_bits(f[1], r[1])


def test_uint8_split_b_shares_one_buffer(cifar_root):
    raw = load_cifar10(cifar_root, split="b", n_val=30, download=False, dtype=np.uint8)
    base = raw.train[0].base
    assert base is not None and raw.val[0].base is base   # slices of one array, no copies
    assert base.nbytes == 100 * 3072


def test_load_cifar10_rejects_other_dtypes(cifar_root):
    with pytest.raises(ValueError, match="load_cifar10: dtype must be float32 or uint8"):
        load_cifar10(cifar_root, download=False, dtype=np.float16)


@pytest.mark.parametrize("split", ["a", "b", "c"])
def test_batches_without_augmentation_are_bitwise_the_float_paths(cifar_root, split):
    (fs, fx), (ls, lx) = float_path(cifar_root, split=split, n_val=30), \
        lean_path(cifar_root, split=split, n_val=30)
    for f, lean in zip(fx, lx):
        if f is None:
            assert lean is None
            continue
        assert isinstance(lean, ImageArray) and lean.images.dtype == np.uint8
        assert lean.shape == f.shape and lean.dtype == f.dtype == np.float32 and len(lean) == len(f)
        assert same_bits(np.asarray(lean), f)
        for index in (slice(0, 7), slice(5, None), 3, -1, [4, 0, 4], np.arange(len(f)) % 2 == 0):
            assert same_bits(lean[index], f[index])
    # shuffled training batches, and evaluation slices
    a = DataLoader((fx[0], fs.train[1]), batch_size=16, seed=3)
    b = DataLoader((lx[0], ls.train[1]), batch_size=16, seed=3)
    for _ in range(2):
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert same_bits(xa, xb) and same_bits(ya, yb)


def test_values_follow_todays_formula_exactly(cifar_root, helpers):
    """x = uint8 / 255 in float32; mean and std in float64 over the float32 pixels; then
    (x - float32(mean)) / float32(std) in float32."""
    s = load_cifar10(cifar_root, split="c", download=False, dtype=np.uint8)
    lean = standardize(s.train[0])[0]
    x = s.train[0].astype(np.float32)
    x /= np.float32(255)
    mean = x.sum(axis=0, dtype=np.float64) / len(x)
    std = np.sqrt(np.square(x - mean).sum(axis=0) / len(x))
    std = np.where(std > 0, std, 1.0)
    expected = (x - mean.astype(np.float32)) / std.astype(np.float32)
    assert expected.dtype == np.float32
    assert same_bits(lean[:], expected)


def test_statistics_over_several_chunks_are_bitwise_the_float_paths():
    """Normalize.fit sums in chunks of 4096 rows; the uint8 view must chunk alike."""
    u8 = np.random.default_rng(0).integers(0, 256, size=(9000, 12), dtype=np.uint8)
    pixels = u8.astype(np.float32)
    pixels /= 255.0
    a, b = Normalize.fit(pixels), Normalize.fit(ImageArray(u8))
    assert same_bits(a.mean, b.mean) and same_bits(a.std, b.std)


AUGMENTATIONS = {
    "flip": lambda rng: RandomHorizontalFlip(0.5, seed=rng),
    "translate": lambda rng: RandomTranslation(2, seed=rng),
    "blur": lambda rng: GaussianBlur(0.5, (0.0, 0.5), seed=rng),
    "noise": lambda rng: GaussianNoise(0.1, seed=rng),
}


@pytest.mark.parametrize("names", [["flip"], ["translate", "blur"], ["flip", "noise"]])
def test_augmented_batches_are_bitwise_todays(cifar_root, names):
    """Today: a loader over float32 pixels in [0, 1], then Compose(augmentations + [norm]).
    Lean: the same loader over ImageArray(uint8), the same pipeline, the same seeds."""
    floats = load_cifar10(cifar_root, split="c", download=False)
    raw = load_cifar10(cifar_root, split="c", download=False, dtype=np.uint8)
    norm_today = Normalize.fit(floats.train[0])
    norm_lean = Normalize.fit(ImageArray(raw.train[0]))
    assert same_bits(norm_today.mean, norm_lean.mean) and same_bits(norm_today.std, norm_lean.std)

    def pipeline(norm):
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(5).spawn(len(names))]
        return Compose([AUGMENTATIONS[n](r) for n, r in zip(names, rngs)] + [norm])

    today = DataLoader((floats.train[0], floats.train[1]), batch_size=32, seed=1)
    lean = DataLoader((ImageArray(raw.train[0]), raw.train[1]), batch_size=32, seed=1)
    aug_today, aug_lean = pipeline(norm_today), pipeline(norm_lean)
    for _ in range(2):
        for (xa, ya), (xb, yb) in zip(today, lean, strict=True):
            assert same_bits(xa, xb)                 # the pixels, before augmentation
            assert same_bits(aug_today(xa), aug_lean(xb)) and same_bits(ya, yb)


def test_image_array_indexes_like_the_float_array():
    u8 = np.arange(5 * 6, dtype=np.uint8).reshape(5, 6) * 8
    full = u8.astype(np.float32) / np.float32(255)
    view = ImageArray(u8)
    assert view.images is u8 and view.transform is None
    assert (len(view), view.shape, view.dtype, view.ndim) == (5, (5, 6), np.float32, 2)
    for index in (0, -2, slice(1, 4), slice(None, None, 2), [3, 1], np.array([4, 4, 0]),
                  np.array([True, False, True, False, True]), (slice(1, 3), 2),
                  (2, slice(0, 3)), ([0, 2], slice(None, None, -1)), Ellipsis):
        assert same_bits(view[index], full[index]), index
    assert same_bits(np.asarray(view), full) and same_bits(np.array(view, dtype=np.float64),
                                                            full.astype(np.float64))
    with pytest.raises(IndexError):
        view[5]
    with pytest.raises(IndexError):
        view[[0, 9]]
    assert "ImageArray" in repr(view) and "(5, 6)" in repr(view)


def test_image_array_batches_are_fresh_and_storage_untouched():
    u8 = np.full((4, 3), 51, dtype=np.uint8)
    view = ImageArray(u8, Normalize(np.zeros(3), np.ones(3)))
    batch = view[:2]
    batch[:] = -7
    assert u8.min() == 51 and same_bits(view[:2], np.full((2, 3), 0.2, dtype=np.float32))


def test_image_array_refuses_other_storage():
    with pytest.raises(TypeError, match="ImageArray: images must be a uint8 numpy array"):
        ImageArray(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="ImageArray: images must be a uint8 numpy array"):
        ImageArray(np.zeros(3, dtype=np.uint8))
    with pytest.raises(TypeError, match="ImageArray: transform must be callable"):
        ImageArray(np.zeros((3, 4), dtype=np.uint8), transform=3)


def test_standardize_keeps_float_inputs_eager_and_uint8_inputs_lean(cifar_root):
    raw = load_cifar10(cifar_root, split="a", download=False, dtype=np.uint8)
    floats = load_cifar10(cifar_root, split="a", download=False)
    lean_train, float_val = standardize(raw.train[0], floats.val[0])
    assert isinstance(lean_train, ImageArray) and isinstance(float_val, np.ndarray)
    assert same_bits(float_val, standardize(floats.train[0], floats.val[0])[1])


def test_batches_larger_than_a_block_are_bitwise_the_formula():
    """Conversion and normalisation go 128 rows at a time; across blocks nothing changes."""
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, size=(300, 3, 4, 4), dtype=np.uint8)
    x = u8.astype(np.float32)
    x /= 255.0
    for mean, std in ((x.mean(axis=0), x.std(axis=0) + 0.1),            # per feature
                      (np.full((3, 1, 1), 0.4), np.array([0.2, 0.3, 0.25])[:, None, None])):
        norm = Normalize(mean, std)
        expected = (x - norm.mean.astype(np.float32)) / norm.std.astype(np.float32)
        assert same_bits(ImageArray(u8, norm)[:], expected)
        assert same_bits(ImageArray(u8, norm)[7:290], expected[7:290])
        assert same_bits(norm(x), expected)
    assert same_bits(ImageArray(u8)[:], x)


def test_normalize_statistics_are_read_only():
    norm = Normalize([0.5, 0.5], [0.2, 0.2])
    with pytest.raises(ValueError, match="read-only"):
        norm.mean[0] = 0.0
    state = norm.state_dict()
    state["mean"][0] = 0.0                                 # a copy, free to edit
    norm.load_state_dict(state)
    assert same_bits(norm(np.ones((3, 2), np.float32)),
                     np.full((3, 2), [5.0, 2.5], dtype=np.float32))
