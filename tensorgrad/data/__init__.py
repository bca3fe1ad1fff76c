"""Data for tensorgrad, in plain numpy: CIFAR-10 loading and splits, mini-batches, augmentation.

Nothing here depends on the Tensor engine: everything takes and yields numpy arrays. Images may
stay uint8 (ImageArray), each batch converted to floats only when it is read.
"""
from .augment import (
                      ColorJitter,
                      Compose,
                      GaussianBlur,
                      GaussianNoise,
                      Normalize,
                      RandomHorizontalFlip,
                      RandomTranslation,
                      Transform,
                      hflip,
)
from .checks import check_finite
from .cifar10 import CIFAR10Splits, ensure_cifar10, find_cifar10, load_cifar10, read_batch
from .images import ImageArray, standardize, to_float
from .loader import DataLoader

__all__ = [
    "CIFAR10Splits", "ColorJitter", "Compose", "DataLoader", "GaussianBlur", "GaussianNoise",
    "ImageArray", "Normalize", "RandomHorizontalFlip", "RandomTranslation", "Transform",
    "check_finite", "ensure_cifar10", "find_cifar10", "hflip", "load_cifar10", "read_batch",
    "standardize", "to_float",
]
