"""Build CIFAR-10's python-format batches offline, from an archive of the images as files.

    python -m tensorgrad.data.build_cifar10 ../shared/data/cifar10-jpg.tar.gz ~/cifar
    export TENSORGRAD_DATA=~/cifar

ARCHIVE is a tar archive (gzip, bzip2, xz or plain) holding the images as
train/<class>/<name>.jpg and test/<class>/<name>.jpg, <class> being one of CIFAR-10's ten class
names; each image is 32 x 32 pixels in any format Pillow reads (converted to RGB). Other members
(folders, a readme, files not named .jpg) are skipped.

OUT receives cifar-10-batches-py/ laid out as in the official cifar-10-python.tar.gz:
data_batch_1 ... data_batch_5, test_batch and batches.meta, each a protocol-2 pickle of a dict
with bytes keys; a batch holds b'data' (uint8, one row of 3072 values per image: 1024 red, 1024
green, 1024 blue), b'labels' (ints 0-9), b'batch_label' and b'filenames' ('<class>_<name>').

The output is deterministic and byte for byte what ../shared/data/make_cifar10.py writes from
the same archive: each split is ordered by (class, file name) and then shuffled by one numpy
Generator seeded 20211 (the training split first), and the training images are cut into five
equal batches, leaving out a remainder. An OUT that already holds all seven files is left alone
unless --force is given. Needs Pillow (matplotlib brings it).
"""
from __future__ import annotations

import argparse
import io
import os
import pickle
import sys
import tarfile
from pathlib import Path

import numpy as np

from ..atomic import write_bytes
from .cifar10 import FILES, FOLDER, META_FILE, NUM_FEATURES, TEST_FILE, TRAIN_FILES

__all__ = ["CLASSES", "build_cifar10", "read_archive", "main"]

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
SEED = 20211                 # the shuffle's seed: the same batches on every machine
IMAGES_PER_BATCH = 10000     # batches.meta's num_cases_per_batch, as in the official file
PROTOCOL = 2                 # the pickle protocol of the official files (readable by Python 2)


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("build_cifar10 needs Pillow to decode the images: pip install pillow "
                          "(matplotlib brings it)") from None
    return Image


def _pixels(image_module, blob: bytes, where: str) -> np.ndarray:
    """One encoded image as a channel-major uint8 row of 3072 values."""
    try:
        with image_module.open(io.BytesIO(blob)) as image:
            rgb = image.convert("RGB")
    except (OSError, ValueError, image_module.DecompressionBombError) as exc:
        raise ValueError(f"{where} is not an image Pillow can read ({exc})") from exc
    if rgb.size != (32, 32):
        raise ValueError(f"{where} is {rgb.size[0]}x{rgb.size[1]} pixels; CIFAR-10 images are "
                         f"32x32")
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1).reshape(NUM_FEATURES)


def read_archive(archive: str | os.PathLike) -> dict[str, list[tuple[int, str, np.ndarray]]]:
    """{'train': [...], 'test': [...]}: (label, file name, pixel row) per image, in the
    archive's order. Errors name the archive and the member."""
    image_module = _pillow()
    splits: dict[str, list] = {"train": [], "test": []}
    try:
        tar = tarfile.open(archive)
    except tarfile.TarError as exc:
        raise ValueError(f"{archive} is not a tar archive ({exc})") from exc
    with tar:
        for member in tar:
            parts = member.name.removeprefix("./").split("/")
            if not (member.isfile() and len(parts) == 3 and parts[2].endswith(".jpg")):
                continue
            split, cls, name = parts
            where = f"{archive}: {member.name}"
            if split not in splits:
                raise ValueError(f"{where}: its top folder {split!r} should be 'train' or 'test'")
            if cls not in CLASSES:
                raise ValueError(f"{where}: {cls!r} is not a CIFAR-10 class (one of "
                                 f"{', '.join(CLASSES)})")
            blob = tar.extractfile(member).read()
            splits[split].append((CLASSES.index(cls), name, _pixels(image_module, blob, where)))
    return splits


def _pickled(obj: dict) -> bytes:
    return pickle.dumps(obj, protocol=PROTOCOL)


def _batches(images: list, rng: np.random.Generator, count: int, label: str):
    """Sort by (class, file name), shuffle with rng, cut into `count` equal parts; yields
    (index, pickled batch dict), one at a time (the rng draws when the first is asked for)."""
    images = sorted(images, key=lambda image: image[:2])
    order = rng.permutation(len(images))
    size = len(images) // count
    for b in range(count):
        chosen = [images[i] for i in order[b * size:(b + 1) * size]]
        yield b, _pickled({
            b"batch_label": label.format(b + 1).encode(),
            b"labels": [int(lab) for lab, _, _ in chosen],
            b"data": np.stack([row for _, _, row in chosen]),
            b"filenames": [f"{CLASSES[lab]}_{name}".encode() for lab, name, _ in chosen],
        })


def build_cifar10(archive: str | os.PathLike, out: str | os.PathLike,
                  force: bool = False) -> Path:
    """Write OUT/cifar-10-batches-py from the image-folder archive; returns that folder.

    Does nothing when the folder already holds all seven files, unless force. Everything is
    read and checked before the first file is written, and each file is written atomically,
    batches.meta last (so a folder with all seven files is a finished one)."""
    target = Path(out).expanduser() / FOLDER
    if not force and all((target / name).is_file() for name in FILES):
        print(f"CIFAR-10 is already complete in {target}; nothing to do (--force rebuilds it)")
        return target
    print(f"reading {archive} ...", flush=True)
    splits = read_archive(archive)
    train, test = splits["train"], splits["test"]
    if len(train) < len(TRAIN_FILES):
        raise ValueError(f"{archive} holds {len(train)} training images "
                         f"(train/<class>/<name>.jpg); the {len(TRAIN_FILES)} training batches "
                         f"need at least {len(TRAIN_FILES)}")
    if not test:
        raise ValueError(f"{archive} holds no test images (test/<class>/<name>.jpg)")
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    for b, blob in _batches(train, rng, len(TRAIN_FILES), "training batch {} of 5"):
        write_bytes(target / TRAIN_FILES[b], blob)
    for _, blob in _batches(test, rng, 1, "testing batch {} of 1"):
        write_bytes(target / TEST_FILE, blob)
    write_bytes(target / META_FILE, _pickled({
        b"num_cases_per_batch": IMAGES_PER_BATCH,
        b"label_names": [name.encode() for name in CLASSES],
        b"num_vis": NUM_FEATURES,
    }))
    left = len(train) % len(TRAIN_FILES)
    print(f"wrote {target}: {len(train) - left} training images in {len(TRAIN_FILES)} batches, "
          f"{len(test)} test images"
          + (f" ({left} training image(s) left out: the batches are equal)" if left else ""))
    return target


def _archive_file(text: str) -> str:
    if not os.path.isfile(os.path.expanduser(text)):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return os.path.expanduser(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tensorgrad.data.build_cifar10",
        description=__doc__.split("\n")[0],
        epilog="Then set TENSORGRAD_DATA=OUT (or pass --data OUT / root=OUT). The batches are "
               "byte for byte those of ../shared/data/make_cifar10.py.")
    p.add_argument("archive", metavar="ARCHIVE", type=_archive_file,
                   help="tar archive of train/<class>/<name>.jpg and test/<class>/<name>.jpg, "
                        "e.g. ../shared/data/cifar10-jpg.tar.gz")
    p.add_argument("out", metavar="OUT",
                   help="folder that receives cifar-10-batches-py/ (created if missing)")
    p.add_argument("--force", action="store_true",
                   help="rebuild even if OUT already holds all seven files")
    return p


def main(argv=None) -> Path:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return build_cifar10(args.archive, args.out, force=args.force)
    except (ImportError, OSError, ValueError) as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
