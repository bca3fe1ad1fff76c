"""Seeded per-batch image augmentations and per-feature standardisation for CIFAR-style rows.

Augmentations work in pixel space on float images in [0, 1], given as rows of shape (n, 3*s*s)
(channel-major, like CIFAR-10's (n, 3072)) or as (n, C, H, W); each returns a new array of the
input's shape and dtype, never touching the input, and is vectorised over the batch. Apply them
before standardisation; Normalize can close a Compose pipeline.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

from ..generator import child_generator
from .checks import check_finite

BLOCK_ROWS = 128  # rows converted or normalised at a time, so every step finds them in cache


def _generator(seed) -> np.random.Generator:
    """The augmentation's own Generator (None: a child seed of the global generator)."""
    return child_generator(seed)


def _check_float(x, who: str) -> np.ndarray:
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        desc = f"{x.dtype} array" if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{who}: expects a float numpy array (pixels in [0, 1]), got a {desc}")
    return x


def _as_images(x, who: str) -> np.ndarray:
    """View x as (n, C, H, W): rows of 3*s*s values are read as 3 channels of s x s."""
    _check_float(x, who)
    if x.ndim == 4:
        return x
    if x.ndim == 2:
        side = math.isqrt(x.shape[1] // 3)
        if 3 * side * side == x.shape[1] and side > 0:
            return x.reshape(len(x), 3, side, side)
    raise ValueError(f"{who}: expects images of shape (n, 3*s*s) such as (n, 3072), or "
                     f"(n, C, H, W); got shape {x.shape}")


def _check_probability(p, who: str) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{who}: p must be in [0, 1], got {p!r}")
    return float(p)


def _range(value, who: str, name: str, around_one: bool) -> tuple[float, float]:
    """A (lo, hi) range from a (lo, hi) pair or a single number v: (1-v, 1+v) or (v, v)."""
    if np.ndim(value) == 0:
        v = float(value)
        if v < 0:
            raise ValueError(f"{who}: {name} must be non-negative, got {value!r}")
        lo, hi = (max(0.0, 1.0 - v), 1.0 + v) if around_one else (v, v)
    else:
        lo, hi = (float(v) for v in value)
    if not 0.0 <= lo <= hi:
        raise ValueError(f"{who}: {name} range must satisfy 0 <= lo <= hi, got {value!r}")
    return lo, hi


class Transform:
    """Base class: a seeded generator plus state_dict()/load_state_dict() to checkpoint it."""

    def __init__(self, seed: int | np.random.Generator | None = None):
        self.rng = _generator(seed)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


def hflip(x: np.ndarray, normalize: Normalize | None = None) -> np.ndarray:
    """Every image of x mirrored left-right, in x's shape (a new array). If normalize
    standardised x, the mirror is taken in pixel space (undo normalize, flip, redo it): per-
    feature statistics are not mirror-symmetric, so flipping standardised rows is not the same."""
    images = _as_images(x, "hflip")
    if normalize is None:
        return images[..., ::-1].copy().reshape(x.shape)
    pixels = x * normalize.std.astype(x.dtype) + normalize.mean.astype(x.dtype)
    return normalize(_as_images(pixels, "hflip")[..., ::-1].reshape(x.shape))


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability p (R0 flips 20%: p=0.2)."""

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__(seed)
        self.p = _check_probability(p, "RandomHorizontalFlip")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        images = _as_images(x, "RandomHorizontalFlip")
        flip = self.rng.random(len(images)) < self.p
        out = images.copy()
        out[flip] = images[flip, ..., ::-1]
        return out.reshape(x.shape)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomTranslation(Transform):
    """Shift each image by whole pixels, dx and dy drawn uniformly from -max_shift..max_shift.

    Uncovered pixels get the constant fill, or copy the nearest border pixel with fill='edge'.
    Each image is moved with one slice copy (and four for its border with 'edge'), far cheaper
    than gathering every pixel by index.
    """

    def __init__(self, max_shift: int = 2, fill: float | str = 0.0, seed=None):
        super().__init__(seed)
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) \
                or max_shift < 0:
            raise ValueError(f"RandomTranslation: max_shift must be a non-negative integer, "
                             f"got {max_shift!r}")
        if isinstance(fill, str) and fill != "edge":
            raise ValueError(f"RandomTranslation: fill must be a number or 'edge', got {fill!r}")
        self.max_shift = int(max_shift)
        self.fill = fill if isinstance(fill, str) else float(fill)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        images = _as_images(x, "RandomTranslation")
        n, _, h, w = images.shape
        shifts = self.rng.integers(-self.max_shift, self.max_shift + 1, size=(2, n))
        edge = self.fill == "edge"
        # a longer shift moves no more pixels in (a constant fill), nor changes which border
        # pixel is copied ('edge'): clipping keeps the slices below non-empty or empty alike
        reach = (h - 1, w - 1) if edge else (h, w)
        dys = np.clip(shifts[0], -reach[0], reach[0]).tolist()
        dxs = np.clip(shifts[1], -reach[1], reach[1]).tolist()
        out = np.empty_like(images, order="C") if edge else \
            np.full_like(images, self.fill, order="C")
        for img, src, dy, dx in zip(out, images, dys, dxs):
            top, bottom = max(0, dy), h + min(0, dy)   # the output rows that have a source row
            left, right = max(0, dx), w + min(0, dx)
            img[:, top:bottom, left:right] = src[:, top - dy:bottom - dy, left - dx:right - dx]
            if edge:
                img[:, top:bottom, :left] = img[:, top:bottom, left:left + 1]
                img[:, top:bottom, right:] = img[:, top:bottom, right - 1:right]
                img[:, :top] = img[:, top:top + 1]
                img[:, bottom:] = img[:, bottom - 1:bottom]
        return out.reshape(x.shape)

    def __repr__(self) -> str:
        return f"RandomTranslation(max_shift={self.max_shift}, fill={self.fill!r})"


class ColorJitter(Transform):
    """Random brightness then contrast per image, like torchvision's ColorJitter (clamped to
    [0, 1]).

    brightness b scales pixels by a factor drawn from [max(0, 1-b), 1+b]; contrast c blends each
    image with its mean grey level by a factor from [max(0, 1-c), 1+c]. Either may also be given
    as an explicit (lo, hi) range of factors. The order is fixed (brightness first).
    """
    GREY = np.array([0.299, 0.587, 0.114])

    def __init__(self, brightness: float | tuple = 0.0, contrast: float | tuple = 0.0, seed=None):
        super().__init__(seed)
        self.brightness = _range(brightness, "ColorJitter", "brightness", around_one=True)
        self.contrast = _range(contrast, "ColorJitter", "contrast", around_one=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        images = _as_images(x, "ColorJitter")
        n, dtype = len(images), images.dtype
        b = self.rng.uniform(*self.brightness, size=n).astype(dtype)[:, None, None, None]
        c = self.rng.uniform(*self.contrast, size=n).astype(dtype)[:, None, None, None]
        out = np.clip(images * b, 0, 1)
        if images.shape[1] == 3:
            grey = np.tensordot(out, self.GREY.astype(dtype), axes=([1], [0]))
        else:
            grey = out.mean(axis=1)
        mean = grey.mean(axis=(1, 2)).astype(dtype)[:, None, None, None]
        out = np.clip(c * out + (1 - c) * mean, 0, 1)
        return out.reshape(x.shape)

    def __repr__(self) -> str:
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast})"


class GaussianNoise(Transform):
    """Add N(0, s^2) noise with s = std_fraction * the batch's own std (R3's noise), unclipped."""

    def __init__(self, std_fraction: float = 0.1, seed=None):
        super().__init__(seed)
        if not std_fraction >= 0:
            raise ValueError(f"GaussianNoise: std_fraction must be non-negative, got "
                             f"{std_fraction!r}")
        self.std_fraction = float(std_fraction)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_float(x, "GaussianNoise")
        scale = (self.std_fraction * x.std()).astype(x.dtype)
        return x + scale * self.rng.standard_normal(x.shape, dtype=x.dtype)

    def __repr__(self) -> str:
        return f"GaussianNoise(std_fraction={self.std_fraction})"


class GaussianBlur(Transform):
    """Blur a fraction p of the images, each with its own sigma drawn from U(lo, hi).

    Uses scipy.ndimage.gaussian_filter over the two spatial axes only (one call per chosen
    image, since sigmas differ), with the given boundary mode. R0: p=0.5, sigma=(0, 0.5).
    """

    def __init__(self, p: float = 0.5, sigma: float | tuple = (0.0, 0.5), mode: str = "reflect",
                 seed=None):
        super().__init__(seed)
        self.p = _check_probability(p, "GaussianBlur")
        self.sigma = _range(sigma, "GaussianBlur", "sigma", around_one=False)
        self.mode = mode

    def __call__(self, x: np.ndarray) -> np.ndarray:
        images = _as_images(x, "GaussianBlur")
        n = len(images)
        chosen = np.flatnonzero(self.rng.random(n) < self.p)
        sigmas = self.rng.uniform(*self.sigma, size=n)
        out = images.copy()
        for i in chosen:
            out[i] = gaussian_filter(images[i], sigma=(0, sigmas[i], sigmas[i]), mode=self.mode)
        return out.reshape(x.shape)

    def __repr__(self) -> str:
        return f"GaussianBlur(p={self.p}, sigma={self.sigma}, mode={self.mode!r})"


class Compose:
    """Apply transforms in order; its state_dict gathers the children's."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: {t!r} is not callable")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for t in self.transforms:
            x = t(x)
        return x

    def state_dict(self) -> dict:
        return {"transforms": [t.state_dict() if hasattr(t, "state_dict") else None
                               for t in self.transforms]}

    def load_state_dict(self, state: dict) -> None:
        states = state["transforms"]
        if len(states) != len(self.transforms):
            raise ValueError(f"Compose.load_state_dict: state holds {len(states)} transforms, "
                             f"this Compose has {len(self.transforms)}")
        for t, s in zip(self.transforms, states):
            if s is not None:
                t.load_state_dict(s)

    def __repr__(self) -> str:
        return "Compose(\n" + "".join(f"    {t!r}\n" for t in self.transforms) + ")"


def _mean_std(x, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and (population) std over axis 0, in float64, in row chunks.

    x is an array, or an array-like whose row slices are float arrays (an ImageArray); either
    gives bitwise the same statistics for the same values, as the chunks are the same.
    """
    n = len(x)
    total = np.zeros(x.shape[1:])
    for start in range(0, n, chunk):
        total += x[start:start + chunk].sum(axis=0, dtype=np.float64)
    mean = total / n
    squares = np.zeros(x.shape[1:])
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        deviations = np.empty((stop - start, *x.shape[1:]))
        for row in range(start, stop, 256):  # a few rows at a time: no float copy of the chunk
            deviations[row - start:row - start + 256] = x[row:min(row + 256, stop)]
        deviations -= mean
        np.square(deviations, out=deviations)
        squares += deviations.sum(axis=0)
    return mean, np.sqrt(squares / n)


def _is_array_like(x) -> bool:
    """An array-like read by row slices (such as an ImageArray), but not a numpy array."""
    return not isinstance(x, np.ndarray) and all(
        hasattr(x, a) for a in ("shape", "dtype", "__len__", "__getitem__"))


class Normalize:
    """(x - mean) / std per feature, with statistics fixed in advance (e.g. by Normalize.fit).

    mean and std broadcast against one sample (shape x.shape[1:]); the output has the given
    dtype (float32 by default). Use it last in a Compose, after the pixel-space augmentations.
    mean and std are read-only float64 arrays: load_state_dict() replaces them.
    """

    def __init__(self, mean, std, dtype=np.float32):
        self.mean = np.array(mean, dtype=np.float64)
        self.std = np.array(std, dtype=np.float64)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean shape {self.mean.shape} != std shape "
                             f"{self.std.shape}")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.std).all()):
            raise ValueError("Normalize: mean and std must be finite")
        if not np.all(self.std > 0):
            raise ValueError("Normalize: std must be positive everywhere")
        self.dtype = np.dtype(dtype)
        self.mean.flags.writeable = self.std.flags.writeable = False  # _tiles relies on it
        self._tiles = None

    @classmethod
    def fit(cls, train_x, dtype=np.float32) -> Normalize:
        """Per-feature mean and std of the training data; features with std 0 get std 1.

        train_x: a float array, or an ImageArray of uint8 images (read in chunks as pixels / 255,
        giving bitwise the statistics of the float32 pixels without converting them all).
        """
        if _is_array_like(train_x):
            if not np.issubdtype(train_x.dtype, np.floating):
                raise TypeError(f"Normalize.fit: expects float data, got {train_x!r}")
        else:
            train_x = _check_float(np.asarray(train_x), "Normalize.fit")
        if train_x.ndim < 1 or len(train_x) == 0:
            raise ValueError(f"Normalize.fit: needs at least one sample, got shape {train_x.shape}")
        check_finite(train_x, "Normalize.fit: train_x")
        mean, std = _mean_std(train_x)
        return cls(mean, np.where(std > 0, std, 1.0), dtype=dtype)

    def _checked(self, x: np.ndarray) -> np.ndarray:
        try:
            fits = np.broadcast_shapes(x.shape[1:], self.mean.shape) == x.shape[1:]
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"Normalize: samples of shape {x.shape[1:]} do not match the "
                             f"statistics' shape {self.mean.shape}")
        return x

    def _tiled(self, sample_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
        """mean and std cast to dtype and repeated for BLOCK_ROWS samples (kept for reuse):
        same-shape operands are faster than broadcasting a row against every sample."""
        tiles = self._tiles  # read once: a DataLoader's prefetch thread may call this too
        if tiles is None or tiles[0] != sample_shape:
            rows = (BLOCK_ROWS, *sample_shape)
            tiles = (sample_shape, *(np.ascontiguousarray(
                np.broadcast_to(a.astype(self.dtype), rows)) for a in (self.mean, self.std)))
            self._tiles = tiles
        return tiles[1], tiles[2]

    def _normalize_(self, out: np.ndarray) -> np.ndarray:
        """(out - mean) / std in place, in out's dtype (self.dtype), BLOCK_ROWS rows at a time
        (elementwise, so bitwise the same as on the whole array)."""
        mean, std = self._tiled(out.shape[1:])
        for start in range(0, len(out), BLOCK_ROWS):
            block = out[start:start + BLOCK_ROWS]
            np.subtract(block, mean[:len(block)], out=block)
            np.divide(block, std[:len(block)], out=block)
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._normalize_(np.array(self._checked(x), dtype=self.dtype))

    def state_dict(self) -> dict:
        return {"mean": self.mean.copy(), "std": self.std.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.__init__(state["mean"], state["std"], dtype=self.dtype)

    def __repr__(self) -> str:
        return f"Normalize(features={self.mean.shape}, dtype={self.dtype.name})"
