"""`save` and `load` of state dicts as .npz files: exact round trips (dtype and bits), no pickle.

    tg.save(model, "model.npz")            # or tg.save(model.state_dict(), path)
    model.load_state_dict(tg.load("model.npz"))

The file is a standard numpy .npz archive (one .npy entry per dotted name, readable with
`np.load`), written to exactly the path given (numpy's savez would append ".npz") and atomically
(tensorgrad.atomic): a crash mid-write leaves any previous file intact.
"""
import zipfile
from collections import OrderedDict

import numpy as np

from .atomic import atomic_write
from .autograd import Tensor

__all__ = ["save", "load"]


def _arrays(obj):
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not hasattr(obj, "items"):
        raise TypeError(f"save: expected a Module or a dict of name -> array, got "
                        f"{type(obj).__name__}")
    out = OrderedDict()
    for key, value in obj.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"save: state dict keys must be non-empty strings, got {key!r}")
        arr = np.asarray(value.data if isinstance(value, Tensor) else value)
        if arr.dtype.hasobject:
            raise TypeError(f"save: entry '{key}' is a {type(value).__name__} that does not "
                            f"convert to a plain numeric or string array")
        out[key] = arr
    return out


def _write(f, arrays):
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, arr, allow_pickle=False)


def save(obj, path):
    """Write a Module's state dict (or any dict of name -> array / Tensor) to `path` (.npz)."""
    arrays = _arrays(obj)
    if hasattr(path, "write"):
        _write(path, arrays)
        return
    with atomic_write(path) as f:
        _write(f, arrays)


def load(path):
    """Read a file written by `save`: an OrderedDict of name -> ndarray, in the saved order."""
    where = path if not hasattr(path, "read") else getattr(path, "name", "<file object>")
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file {where!r}") from None
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"load: {where!r} is not a .npz state dict file ({e})") from e
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"load: {where!r} holds a single array, not a .npz state dict "
                         f"(write it with tensorgrad.save)")
    with npz:
        return OrderedDict((key, npz[key]) for key in npz.files)
