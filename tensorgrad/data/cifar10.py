"""CIFAR-10 from its standard python-format batches: find, download, verify, unpack, load and split.

The files are pickles, so only the dataset's own seven files are ever unpickled, and only with a
restricted Unpickler that resolves nothing but the few numpy globals the format needs.
"""
from __future__ import annotations

import hashlib
import http.client
import importlib
import os
import pickle
import tarfile
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .images import to_float

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
FILES = TRAIN_FILES + (TEST_FILE, META_FILE)
IMAGE_SHAPE = (3, 32, 32)
NUM_FEATURES = 3 * 32 * 32
NUM_CLASSES = 10
ENV_VAR = "TENSORGRAD_DATA"
DEFAULT_ROOT = "~/.cache/tensorgrad"

HOW_TO_PROVIDE = (
    "To provide the files, either download cifar-10-python.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html into the root above (it is checked and "
    "unpacked on first use), or, offline, build them from an image-folder archive with "
    "`python -m tensorgrad.data.build_cifar10 ARCHIVE DIR` (e.g. ARCHIVE "
    "../shared/data/cifar10-jpg.tar.gz, run from the repository) and then set "
    f"{ENV_VAR}=DIR or pass root=DIR (DIR or DIR/{FOLDER} both work)."
)


@dataclass(frozen=True, repr=False)
class CIFAR10Splits:
    """Train, validation (None for split 'c') and test data as (x, y) pairs, plus class names.

    x has shape (n, 3072) (channel-major rows, viewable as (n, 3, 32, 32)): float32 in [0, 1],
    or the raw uint8 pixels 0-255 when loaded with dtype=np.uint8. y is int64 of shape (n,)
    with values 0-9.
    """
    train: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray] | None
    test: tuple[np.ndarray, np.ndarray]
    classes: list[str]

    def __repr__(self) -> str:
        def size(pair):
            return "None" if pair is None else f"{len(pair[1])} images"
        return (f"CIFAR10Splits(train={size(self.train)}, val={size(self.val)}, "
                f"test={size(self.test)}, classes={self.classes})")


# ---------------------------------------------------------------------------------------------
# Reading the pickled batches safely
# ---------------------------------------------------------------------------------------------

def _latin1_encode(text, encoding="latin1"):
    """Stand-in for _codecs.encode, which Python 3 pickles (protocol 2) use to store bytes."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r} is not allowed")
    return text.encode("latin1")


def _empty_bytes(*args):
    """Stand-in for bytes(), which Python 3 pickles (protocol 2) use to store b'' (the pixels of
    an array with no images); bytes(n) would allocate n bytes, so arguments are refused."""
    if args:
        raise pickle.UnpicklingError("bytes() with arguments is not allowed")
    return b""


def _numpy_global(submodule: str, name: str):
    """numpy.<submodule>.<name>, found under numpy._core (numpy 2) or numpy.core (numpy 1)."""
    for package in ("numpy._core", "numpy.core"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return getattr(importlib.import_module(f"{package}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy has no {submodule}.{name}")


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that allows only the globals a CIFAR-10 batch needs: numpy arrays and dtypes.

    Python 2 pickles (the official files) name numpy.core.multiarray._reconstruct; Python 3
    ones (e.g. make_cifar10.py's) name numpy._core.multiarray._reconstruct and _codecs.encode,
    or bytes for an empty array's pixels.
    """
    _NUMPY = {"ndarray": np.ndarray, "dtype": np.dtype}
    _NUMPY_CORE = {("multiarray", "_reconstruct"), ("numeric", "_frombuffer")}

    def find_class(self, module, name):
        if module == "numpy" and name in self._NUMPY:
            return self._NUMPY[name]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray",
                      "numpy.core.numeric", "numpy._core.numeric"):
            submodule = module.rsplit(".", 1)[1]
            if (submodule, name) in self._NUMPY_CORE:
                return _numpy_global(submodule, name)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) in (("__builtin__", "bytes"), ("builtins", "bytes")):
            return _empty_bytes
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: a CIFAR-10 file needs only numpy arrays")


def _text(value) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else value


def _unpickle(path: Path) -> dict:
    """Load one CIFAR-10 pickle into a dict with str keys; errors name the file."""
    try:
        with open(path, "rb") as fh:
            obj = _RestrictedUnpickler(fh, encoding="latin1").load()
    except OSError:
        raise
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean the same here
        raise ValueError(f"{path} is truncated or corrupt, or not a CIFAR-10 file "
                         f"({type(exc).__name__}: {exc}); "
                         f"delete it and provide the files again. {HOW_TO_PROVIDE}") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not the dict of a CIFAR-10 file")
    return {_text(key): value for key, value in obj.items()}


def read_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one data batch file: (uint8 pixels of shape (n, 3072), int64 labels of shape (n,))."""
    path = Path(path)
    batch = _unpickle(path)
    missing = {"data", "labels"} - batch.keys()
    if missing:
        raise ValueError(f"{path} is not a CIFAR-10 batch: keys {sorted(missing)} are missing "
                         f"(found {sorted(batch)})")
    data = batch["data"]
    if isinstance(data, np.ndarray) and data.size == 0:
        raise ValueError(f"{path} holds no images ('data' has shape {data.shape}); a CIFAR-10 "
                         f"batch holds 10,000. Provide the files again. {HOW_TO_PROVIDE}")
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != NUM_FEATURES):
        desc = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                else type(data).__name__)
        raise ValueError(f"{path}: 'data' should be a uint8 array of shape (n, {NUM_FEATURES}), "
                         f"got a {desc}")
    try:
        labels = np.asarray(batch["labels"])
    except (ValueError, TypeError) as exc:  # e.g. a ragged list
        raise ValueError(f"{path}: 'labels' should hold {len(data)} integers, got a "
                         f"{type(batch['labels']).__name__} numpy cannot read as an array "
                         f"({exc})") from exc
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: 'labels' should hold {len(data)} integers, "
                         f"got {labels.dtype} of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"{path}: labels outside 0..{NUM_CLASSES - 1} "
                         f"(min {labels.min()}, max {labels.max()})")
    return data, labels.astype(np.int64)


def read_classes(path: str | os.PathLike) -> list[str]:
    """Read the class names from batches.meta."""
    path = Path(path)
    meta = _unpickle(path)
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise ValueError(f"{path}: 'label_names' should be a list of {NUM_CLASSES} names, "
                         f"got {names!r:.200}")
    return [_text(name) for name in names]


# ---------------------------------------------------------------------------------------------
# Finding, downloading and unpacking
# ---------------------------------------------------------------------------------------------

def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: root if given, else $TENSORGRAD_DATA, else ~/.cache/tensorgrad."""
    if root is None:
        root = os.environ.get(ENV_VAR) or DEFAULT_ROOT
    return Path(root).expanduser()


def _candidates(root: Path) -> list[Path]:
    """Folders that may hold the batch files: root itself and root/cifar-10-batches-py."""
    return [root] if root.name == FOLDER else [root, root / FOLDER]


def find_cifar10(root: str | os.PathLike | None = None) -> Path | None:
    """The folder under root holding all seven CIFAR-10 files, or None."""
    for folder in _candidates(resolve_root(root)):
        if all((folder / name).is_file() for name in FILES):
            return folder
    return None


def _target(root: Path) -> Path:
    """The folder the batch files are unpacked into: root/cifar-10-batches-py, or root itself
    if it has that name."""
    return root if root.name == FOLDER else root / FOLDER


def _archives(root: Path) -> list[Path]:
    """Where a local cifar-10-python.tar.gz may be: beside the batch folder, or inside it."""
    target = _target(root)
    return [target.parent / ARCHIVE, target / ARCHIVE]


def _where_looked(root: Path, explicit: bool) -> str:
    source = ("the root argument" if explicit else
              f"${ENV_VAR}" if os.environ.get(ENV_VAR) else
              f"the default {DEFAULT_ROOT} (${ENV_VAR} is not set)")
    lines = [f"Looked for {', '.join(FILES)} in (root from {source}):"]
    for folder in _candidates(root):
        missing = [name for name in FILES if not (folder / name).is_file()]
        state = "folder does not exist" if not folder.is_dir() else f"missing {', '.join(missing)}"
        lines.append(f"  {folder}  ({state})")
    lines.append(f"and for the archive {ARCHIVE} at:")
    lines += [f"  {archive}  (not present)" for archive in _archives(root)]
    return "\n".join(lines)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_archive(url: str, dest: Path, md5: str, timeout: float = 30) -> Path:
    """Download url to dest with a progress bar and check its MD5; returns dest.

    timeout (seconds) bounds the connection and every read, so a dead network fails instead of
    hanging. The file is written as dest + '.part' and renamed only once the checksum matches.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"Downloading {dest.name}",
                      leave=False) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise RuntimeError(f"MD5 mismatch for {url}: got {digest.hexdigest()}, expected {md5}; "
                           f"the download was deleted. {HOW_TO_PROVIDE}")
    os.replace(part, dest)
    return dest


def extract_archive(archive: Path, folder: Path) -> Path:
    """Unpack only the seven expected regular files of cifar-10-python.tar.gz into folder.

    Every other member (readme.html, or anything with an unexpected path, link or device) is
    skipped, so a malicious archive cannot write outside folder.
    """
    wanted = {f"{FOLDER}/{name}": name for name in FILES}
    found = set()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name)
                if name is None:
                    continue
                if not member.isfile():
                    raise ValueError(f"{archive}: member {member.name} is not a regular file")
                part = folder / (name + ".part")
                with tar.extractfile(member) as src, open(part, "wb") as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        out.write(chunk)
                os.replace(part, folder / name)
                found.add(name)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"{archive} is not a readable tar.gz ({exc}); delete it and try "
                         f"again. {HOW_TO_PROVIDE}") from exc
    missing = [name for name in FILES if name not in found]
    if missing:
        raise ValueError(f"{archive} lacks {', '.join(f'{FOLDER}/{m}' for m in missing)}")
    return folder


def ensure_cifar10(root: str | os.PathLike | None = None, download: bool = True, url: str = URL,
                   md5: str = MD5, timeout: float = 30) -> Path:
    """The folder holding the CIFAR-10 files under root, unpacking them first from a local
    cifar-10-python.tar.gz (beside or inside root/cifar-10-batches-py) once it passes its MD5
    check, else downloading the archive if allowed.

    A local archive that fails the check is never replaced: ValueError names it, its MD5 and
    the expected one.
    """
    explicit = root is not None
    root = resolve_root(root)
    folder = find_cifar10(root)
    if folder is not None:
        return folder
    target = _target(root)
    local = next((a for a in _archives(root) if a.is_file()), None)
    if local is not None:
        got = _md5(local)
        if got != md5:
            raise ValueError(
                f"{local} fails its MD5 check (got {got}, expected {md5}): it is truncated, "
                f"damaged or not the CIFAR-10 archive, so it was neither unpacked nor replaced. "
                f"Delete it{' to download it again' if download else ''}, or put the right "
                f"file there. {HOW_TO_PROVIDE}")
        return extract_archive(local, target)
    looked = _where_looked(root, explicit)
    if not download:
        raise FileNotFoundError(f"CIFAR-10 not found and download=False.\n{looked}\n"
                                f"{HOW_TO_PROVIDE}")
    archive = target.parent / ARCHIVE
    try:
        download_archive(url, archive, md5, timeout)
    except (OSError, http.client.HTTPException) as exc:
        raise FileNotFoundError(
            f"CIFAR-10 not found, and downloading {url} failed ({type(exc).__name__}: "
            f"{exc}).\n{looked}\n{HOW_TO_PROVIDE}") from exc
    return extract_archive(archive, target)


# ---------------------------------------------------------------------------------------------
# Loading the splits
# ---------------------------------------------------------------------------------------------

def _read_training_batches(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The five training batches as one uint8 array, filled file by file (no second copy)."""
    data, labels, filled = np.empty((0, NUM_FEATURES), dtype=np.uint8), [], 0
    for i, name in enumerate(TRAIN_FILES):
        x, y = read_batch(folder / name)
        if filled + len(x) > len(data):  # first file (or a larger one): room for the rest
            grown = np.empty((filled + len(x) * (len(TRAIN_FILES) - i), NUM_FEATURES), np.uint8)
            grown[:filled] = data[:filled]
            data = grown
        data[filled:filled + len(x)] = x
        filled += len(x)
        labels.append(y)
        del x
    return data[:filled], np.concatenate(labels)


def load_cifar10(root: str | os.PathLike | None = None, split: str = "b", n_val: int = 5000,
                 val_choice: str = "last", seed: int | np.random.Generator = 0,
                 download: bool = True, url: str = URL, md5: str = MD5,
                 timeout: float = 30, dtype=np.float32) -> CIFAR10Splits:
    """Load CIFAR-10 as a CIFAR10Splits of float32 pixels in [0, 1] and int64 labels.

    dtype=np.uint8 keeps the raw pixels 0-255 instead, a quarter of the memory (150 MB for
    the 50,000 training images; split 'b' 'last' slices one array without copying); wrap them
    in ImageArray, or pass them to standardize(), to read float batches from them.

    root names the cifar-10-batches-py folder or the folder containing it (like torchvision's
    root); if None, $TENSORGRAD_DATA, else ~/.cache/tensorgrad. When the files are missing, a
    local cifar-10-python.tar.gz (in root, or in root/cifar-10-batches-py) is checked against
    md5 and its seven expected members unpacked into root/cifar-10-batches-py; a local archive
    failing the check raises ValueError. Without one, if download is True, the archive is
    fetched from url (with a network timeout in seconds), checked and unpacked the same way;
    otherwise FileNotFoundError says where it looked and how to provide the files.

    Splits (STUDIES.md):
      'a': train data_batch_1 (10k), val data_batch_2 (10k), test test_batch.
      'b': all five batches minus n_val images for val: the last n_val (val_choice='last') or
           n_val drawn at random with seed (val_choice='random'; both parts keep file order).
      'c': all 50,000 for training, val None.

    Security: the batch files are pickles. Only the seven named dataset files are unpickled, and
    with a restricted Unpickler that resolves nothing but numpy.ndarray, numpy.dtype, numpy's
    array-rebuilding helpers (_reconstruct, _frombuffer) and a latin-1-only _codecs.encode, so a
    tampered file cannot run code; it fails with an error naming the file.
    """
    if split not in ("a", "b", "c"):
        raise ValueError(f"load_cifar10: split must be 'a', 'b' or 'c', got {split!r}")
    if val_choice not in ("last", "random"):
        raise ValueError(f"load_cifar10: val_choice must be 'last' or 'random', got {val_choice!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in (np.float32, np.uint8):
        raise ValueError(f"load_cifar10: dtype must be float32 or uint8, got {dtype!r}")
    pixels = to_float if dtype == np.float32 else (lambda data: data)
    folder = ensure_cifar10(root, download=download, url=url, md5=md5, timeout=timeout)
    classes = read_classes(folder / META_FILE)
    x_test, y_test = read_batch(folder / TEST_FILE)
    test = (pixels(x_test), y_test)

    if split == "a":
        x_tr, y_tr = read_batch(folder / TRAIN_FILES[0])
        x_va, y_va = read_batch(folder / TRAIN_FILES[1])
        return CIFAR10Splits((pixels(x_tr), y_tr), (pixels(x_va), y_va), test, classes)

    data, labels = _read_training_batches(folder)
    if split == "c":
        return CIFAR10Splits((pixels(data), labels), None, test, classes)

    n = len(labels)
    if not isinstance(n_val, (int, np.integer)) or not 0 < n_val < n:
        raise ValueError(f"load_cifar10: n_val must be an integer in 1..{n - 1} for split 'b' "
                         f"({n} training images), got {n_val!r}")
    if val_choice == "last":
        train_idx, val_idx = slice(0, n - n_val), slice(n - n_val, n)
    else:
        is_val = np.zeros(n, dtype=bool)
        is_val[np.random.default_rng(seed).choice(n, size=n_val, replace=False)] = True
        train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    train = (pixels(data[train_idx]), labels[train_idx])
    val = (pixels(data[val_idx]), labels[val_idx])
    return CIFAR10Splits(train, val, test, classes)
