"""Images kept as uint8 and converted to floats one batch at a time (the lean data path)."""
from __future__ import annotations

import numpy as np

from .augment import BLOCK_ROWS, Normalize
from .checks import check_finite


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> a new float32 array in [0, 1]: pixels / 255, computed in float32."""
    x = pixels.astype(np.float32)
    x /= 255.0
    return x


class ImageArray:
    """uint8 images that index like a read-only float array, converting only the rows asked for.

    x[rows] gathers those rows of `images` as uint8, divides them by 255 in float32 (exactly as
    load_cifar10 does) and applies `transform` (e.g. a Normalize) to that batch alone; with a
    Normalize the values are bitwise those of normalising the whole float32 array. CIFAR-10's
    50,000 images take 150 MB this way instead of 600 MB per float32 copy. To augment, train on
    ImageArray(images) (pixels in [0, 1]) with fit(augment=Compose([..., norm])), and evaluate
    on ImageArray(images, norm).

    It works where fit, evaluate and DataLoader take an array: len(x), x.shape, x.dtype, x[i],
    x[a:b], x[index_array], x[mask], x[rows, columns], and np.asarray(x), which converts
    everything. Each batch is a new array; `images` is never written. dtype is float32, or the
    transform's `dtype` if it has one (as Normalize does).
    """

    def __init__(self, images: np.ndarray, transform=None):
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim < 2:
            desc = (f"{images.dtype} array of shape {images.shape}"
                    if isinstance(images, np.ndarray) else type(images).__name__)
            raise TypeError(f"ImageArray: images must be a uint8 numpy array of shape (n, ...), "
                            f"got a {desc}")
        if transform is not None and not callable(transform):
            raise TypeError(f"ImageArray: transform must be callable or None, got "
                            f"{type(transform).__name__}")
        self.images = images
        self.transform = transform

    @property
    def shape(self) -> tuple:
        return self.images.shape

    @property
    def ndim(self) -> int:
        return self.images.ndim

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(getattr(self.transform, "dtype", np.float32))

    def __len__(self) -> int:
        return len(self.images)

    def _convert(self, pixels: np.ndarray) -> np.ndarray:
        """to_float(pixels), then the transform; a Normalize works in place on the new array,
        and both steps go BLOCK_ROWS rows at a time, while those rows are in cache."""
        t = self.transform
        norm = t if isinstance(t, Normalize) and t.dtype == np.float32 else None
        if norm is not None:
            norm._checked(pixels)  # the shape check of Normalize.__call__
        out = np.empty(pixels.shape, dtype=np.float32)
        for start in range(0, len(pixels), BLOCK_ROWS):
            block = out[start:start + BLOCK_ROWS]
            block[...] = pixels[start:start + BLOCK_ROWS]
            block /= np.float32(255)  # as to_float
            if norm is not None:
                norm._normalize_(block)
        return out if t is None or norm is not None else t(out)

    def __getitem__(self, index):
        rows, rest = index, ()
        if isinstance(index, tuple):
            rows, rest = (index[0], index[1:]) if index else (slice(None), ())
        if rows is Ellipsis or rows is None:
            return self._convert(self.images)[index]
        if isinstance(rows, (int, np.integer)) and not isinstance(rows, (bool, np.bool_)):
            out = self._convert(np.take(self.images, [rows], axis=0))[0]
            return out[rest] if rest else out
        if isinstance(rows, slice):
            out = self._convert(self.images[rows])
        else:
            rows = np.asarray(rows)
            if rows.dtype == bool:
                out = self._convert(self.images[rows])
            elif rows.ndim == 1 and (rows.dtype.kind in "iu" or rows.size == 0):
                out = self._convert(np.take(self.images, rows.astype(np.intp, copy=False),
                                            axis=0))
            else:
                raise IndexError(f"ImageArray: rows must be an integer, a slice, a 1-d integer "
                                 f"array or a boolean mask, got {rows.dtype} of shape "
                                 f"{rows.shape}")
        return out[(slice(None), *rest)] if rest else out

    def __array__(self, dtype=None, copy=None):
        out = self._convert(self.images)
        return out if dtype is None else out.astype(dtype, copy=False)

    def _skip_finite_scan(self) -> bool:
        """For check_finite: True when a scan cannot find anything (plain pixels, or a Normalize
        whose outputs for pixels 0 and 255, the extremes of each feature, are finite) or must
        not run (another transform may draw random numbers)."""
        if self.transform is None:
            return True
        if isinstance(self.transform, Normalize):
            extremes = np.zeros((2, *self.images.shape[1:]), dtype=np.uint8)
            extremes[1] = 255
            with np.errstate(all="ignore"):
                return bool(np.isfinite(self._convert(extremes)).all())
        return True

    def __repr__(self) -> str:
        return (f"ImageArray(images=uint8 {self.images.shape}, transform={self.transform!r}, "
                f"dtype={self.dtype.name})")


def standardize(train_x: np.ndarray, *others: np.ndarray | None, dtype=np.float32) -> tuple:
    """Standardise train_x and each of others with train_x's per-feature mean and std.

    Returns a tuple (train, *others); a None in others (e.g. split 'c''s missing val) passes
    through as None. Float arrays come back standardised as dtype arrays. uint8 arrays (images,
    0-255) are read as pixels / 255 and come back as ImageArray views that standardise each
    batch when indexed, bitwise as the float32 pixels would be, without a float copy of the
    data. Non-finite values raise ValueError naming the array.
    """
    def lean(x):
        return isinstance(x, np.ndarray) and x.dtype == np.uint8

    check_finite(train_x, "standardize: train_x")
    for i, x in enumerate(others):
        check_finite(x, f"standardize: others[{i}]")
    norm = Normalize.fit(ImageArray(train_x) if lean(train_x) else train_x, dtype=dtype)
    return tuple(None if x is None else ImageArray(x, norm) if lean(x) else norm(x)
                 for x in (train_x, *others))
