"""Checkpoint files that cannot run code: arrays in a .npz, everything else in JSON.

    save_checkpoint(path, state)     # atomically (tensorgrad.atomic)
    state = load_checkpoint(path)    # or CheckpointError (a ValueError) naming path and the fault

A checkpoint is one zip file, a standard .npz (`np.load` reads its arrays), holding one `aN.npy`
entry per array and `checkpoint.json`: the format version, a sha256 over the array entries, and
the state, nested dicts / lists / tuples of numbers, strings, booleans and None in which every
numpy array or scalar is a reference to its entry (dtype, memory order and bits kept). Arrays are
read with allow_pickle=False and the rest by json, so loading runs no code whatever the file
holds. Files of the old pickle format (tensorgrad-checkpoint-1) are refused without unpickling.
"""
import hashlib
import io
import json
import os
import zipfile

import numpy as np

from .atomic import atomic_write

__all__ = ["FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint"]

FORMAT = "tensorgrad-checkpoint-2"
OLD_FORMAT = "tensorgrad-checkpoint-1"
META = "checkpoint.json"
_TAG = "__tensorgrad__"  # marks the JSON objects that stand for arrays, tuples, non-str-key dicts


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: damaged, of another format, or of another run."""

    def __init__(self, path, problem):
        self.path = os.fspath(path)
        super().__init__(f"checkpoint {self.path} {problem}")


def _encode(obj, arrays, where):
    if isinstance(obj, (np.ndarray, np.generic)):
        array = np.asarray(obj)
        if array.dtype.hasobject:
            raise TypeError(f"save_checkpoint: {where} is an object array, which only pickle "
                            f"could store")
        name = f"a{len(arrays)}"
        arrays.append((name, array))
        return {_TAG: "array" if isinstance(obj, np.ndarray) else "scalar", "entry": name}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {_TAG: "tuple", "items": [_encode(v, arrays, f"{where}[{i}]")
                                         for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and _TAG not in obj:
            return {k: _encode(v, arrays, f"{where}[{k!r}]") for k, v in obj.items()}
        return {_TAG: "dict", "items": [[_encode(k, arrays, where), _encode(v, arrays,
                                                                          f"{where}[{k!r}]")]
                                        for k, v in obj.items()]}
    raise TypeError(f"save_checkpoint: {where} is a {type(obj).__name__}, which a checkpoint "
                    f"cannot hold (arrays, numbers, strings, None, lists, tuples and dicts only)")


def _decode(obj, arrays):
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    kind = obj.get(_TAG)
    if kind is None:
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if kind == "array":
        return arrays[obj["entry"]]
    if kind == "scalar":
        return arrays[obj["entry"]][()]
    if kind == "tuple":
        return tuple(_decode(v, arrays) for v in obj["items"])
    if kind == "dict":
        return {_decode(k, arrays): _decode(v, arrays) for k, v in obj["items"]}
    raise ValueError(f"unknown entry kind {kind!r}")


class _Hashing:
    """A write-only file that feeds what it writes to a hash."""

    def __init__(self, f, digest):
        self.f, self.digest = f, digest

    def write(self, data):
        self.digest.update(data)
        return self.f.write(data)


def save_checkpoint(path, state):
    """Write `state` (see the module docstring for what it may hold) to `path`, atomically."""
    arrays = []
    encoded = _encode(state, arrays, "state")
    digest = hashlib.sha256()
    with atomic_write(path) as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, array in arrays:
                with zf.open(name + ".npy", "w", force_zip64=True) as entry:
                    np.lib.format.write_array(_Hashing(entry, digest), array, allow_pickle=False)
            meta = {"format": FORMAT, "entries": [name for name, _ in arrays],
                    "sha256": digest.hexdigest(), "state": encoded}
            zf.writestr(META, json.dumps(meta))


def _refuse_other_files(path, f):
    head = f.read(256)
    f.seek(0)
    if not head:
        raise CheckpointError(path, "is an empty file")
    if head[:1] == b"\x80":  # the opcode that starts every pickle of protocol 2 and later
        old = f" ({OLD_FORMAT}, the old checkpoint format)" if OLD_FORMAT.encode() in head else ""
        raise CheckpointError(
            path, f"is a pickle file{old}; loading a pickle can run any code it holds, so "
                  f"tensorgrad never unpickles checkpoints. Start the run again (move the file "
                  f"away), or resume with the tensorgrad version that wrote it")
    if not zipfile.is_zipfile(f):
        raise CheckpointError(path, "is not a checkpoint: not a .npz (zip) archive, or one "
                                    "that was cut short")
    f.seek(0)


def load_checkpoint(path):
    """The state saved by `save_checkpoint` at `path`, after checking its format and checksum."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        _refuse_other_files(path, f)
        try:
            with zipfile.ZipFile(f) as zf:
                if META not in zf.namelist():
                    raise CheckpointError(path, f"is a .npz archive without {META}: not a "
                                                f"training checkpoint (a tensorgrad.save file?)")
                meta = json.loads(zf.read(META).decode("utf-8"))
                found = meta.get("format") if isinstance(meta, dict) else None
                if found != FORMAT:
                    raise CheckpointError(path, f"has format {found!r}; this tensorgrad reads "
                                                f"{FORMAT!r}")
                digest = hashlib.sha256()
                arrays = {}
                for name in meta["entries"]:
                    data = zf.read(name + ".npy")
                    digest.update(data)
                    arrays[name] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
                if digest.hexdigest() != meta["sha256"]:
                    raise CheckpointError(path, "is damaged: its arrays do not match their "
                                                "sha256 checksum")
                return _decode(meta["state"], arrays)
        except CheckpointError:
            raise
        except Exception as e:  # zipfile, zlib, json, numpy's header parser, a missing key
            raise CheckpointError(path, f"is damaged ({type(e).__name__}: {e})") from e

