"""python -m tensorgrad.data.build_cifar10: CIFAR-10's python-format batches from an image-folder
archive, byte for byte what ../shared/data/make_cifar10.py writes."""
import io
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tensorgrad.data import build_cifar10 as builder
from tensorgrad.data import load_cifar10

Image = pytest.importorskip("PIL.Image")

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "data" / "make_cifar10.py"
FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def pixels(seed, mode="RGB"):
    """32 x 32 random pixels (a smooth gradient plus noise, so JPEG keeps them recognisable)."""
    rng = np.random.default_rng(seed)
    base = np.add.outer(np.arange(32), np.arange(32)).astype(np.uint8) * 4
    rgb = np.stack([base, base[::-1], base.T], axis=-1) + rng.integers(0, 8, (32, 32, 3),
                                                                        dtype=np.uint8)
    return rgb[..., 0] if mode == "L" else rgb


def encode(array, fmt):
    out = io.BytesIO()
    Image.fromarray(array).save(out, format=fmt, **({"quality": 75} if fmt == "JPEG" else {}))
    return out.getvalue()


def write_archive(path, members):
    """A tar.gz of {name: bytes or None (a folder)}, in the given order."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


# member -> (array, format): PNG data under a .jpg name is lossless, so its pixels can be checked
IMAGES = {
    "train/cat/0002.jpg": (pixels(1), "JPEG"),
    "train/cat/0001.jpg": (pixels(2), "PNG"),
    "train/cat/0010.jpg": (pixels(3), "JPEG"),
    "train/airplane/0005.jpg": (pixels(4), "PNG"),
    "train/airplane/0004.jpg": (pixels(5), "JPEG"),
    "train/truck/0001.jpg": (pixels(6, "L"), "JPEG"),     # greyscale: converted to RGB
    "train/truck/0002.jpg": (pixels(7), "PNG"),
    "train/frog/0001.jpg": (pixels(8), "JPEG"),
    "train/frog/0003.jpg": (pixels(9), "JPEG"),
    "train/ship/0001.jpg": (pixels(10), "PNG"),
    "train/deer/0007.jpg": (pixels(11), "JPEG"),          # 11 training images: one left over
    "test/dog/0001.jpg": (pixels(12), "PNG"),
    "test/bird/0002.jpg": (pixels(13), "JPEG"),
    "test/horse/0001.jpg": (pixels(14), "JPEG"),
}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A small image-folder archive in cifar10-jpg.tar.gz's layout, with folders, a readme and a
    non-image file among the images."""
    members = {"train/": None, "train/cat/": None, "README.txt": b"not an image",
               "train/cat/notes.txt": b"not an image either", "test/": None}
    members.update({name: encode(a, fmt) for name, (a, fmt) in IMAGES.items()})
    return write_archive(tmp_path_factory.mktemp("archive") / "cifar10-jpg.tar.gz", members)


@pytest.fixture(scope="module")
def built(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    builder.main([os.fspath(archive), os.fspath(out)])
    return out / "cifar-10-batches-py"


def load(path):
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="bytes")


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"{REFERENCE} is not here")
def test_batches_are_byte_identical_to_make_cifar10s(archive, built, tmp_path):
    # make_cifar10.py reads the archive beside itself, under this name
    shutil.copy(REFERENCE, tmp_path / "make_cifar10.py")
    shutil.copy(archive, tmp_path / "cifar10-jpg.tar.gz")
    proc = subprocess.run([sys.executable, os.fspath(tmp_path / "make_cifar10.py"),
                           os.fspath(tmp_path / "ref")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in FILES:
        ours = (built / name).read_bytes()
        assert ours == (tmp_path / "ref" / "cifar-10-batches-py" / name).read_bytes(), name


def test_batches_hold_every_image_with_its_label_and_name(built):
    parts = {}
    for name in FILES[:6]:
        batch = load(built / name)
        assert list(batch) == [b"batch_label", b"labels", b"data", b"filenames"]
        assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072
        part = parts.setdefault("test" if name == "test_batch" else "train", {})
        for row, label, filename in zip(batch[b"data"], batch[b"labels"], batch[b"filenames"]):
            part[filename.decode()] = (row, label)
    names = {split: {f"{m.split('/')[1]}_{m.split('/')[2]}" for m in IMAGES
                     if m.startswith(split)} for split in ("train", "test")}
    # 11 training images in 5 batches of 2: the one left over after the shuffle is dropped
    assert len(parts["train"]) == 10 and set(parts["train"]) < names["train"]
    assert set(parts["test"]) == names["test"]
    classes = load(built / "batches.meta")[b"label_names"]
    for member, (array, fmt) in IMAGES.items():
        split, cls, file = member.split("/")
        if f"{cls}_{file}" not in parts[split]:
            continue
        row, label = parts[split][f"{cls}_{file}"]
        assert classes[label] == cls.encode()
        if fmt == "PNG":  # lossless: the exact pixels, channel-major (1024 red, green, blue)
            np.testing.assert_array_equal(row, array.transpose(2, 0, 1).reshape(-1))


def test_the_loader_reads_the_built_folder(built):
    splits = load_cifar10(built.parent, split="c", download=False, dtype=np.uint8)
    assert len(splits.train[1]) == 10 and len(splits.test[1]) == 3
    assert splits.classes[3] == "cat"


def test_a_complete_folder_is_left_alone_unless_forced(archive, built, capsys):
    before = {n: (built / n).stat().st_mtime_ns for n in FILES}
    builder.main([os.fspath(archive), os.fspath(built.parent)])
    assert "already" in capsys.readouterr().out
    assert {n: (built / n).stat().st_mtime_ns for n in FILES} == before
    data = (built / "data_batch_1").read_bytes()
    builder.main([os.fspath(archive), os.fspath(built.parent), "--force"])
    assert (built / "data_batch_1").read_bytes() == data  # the same bytes again


def test_help_is_help_and_writes_nothing(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tensorgrad.data.build_cifar10", "--help"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=os.fspath(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:") and "ARCHIVE" in proc.stdout and "OUT" in proc.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [[], ["only-one-argument"], ["missing.tar.gz", "out"]])
def test_bad_command_lines_end_in_one_usage_error(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        builder.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        "python -m tensorgrad.data.build_cifar10: error: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("member, data, message", [
    ("train/cat/0001.jpg", encode(pixels(1)[:16, :16], "PNG"),
     r"train/cat/0001\.jpg.*16x16.*32x32"),
    ("train/dragon/0001.jpg", encode(pixels(1), "PNG"), r"train/dragon/0001\.jpg.*dragon"),
    ("valid/cat/0001.jpg", encode(pixels(1), "PNG"), r"valid/cat/0001\.jpg.*'train' or 'test'"),
    ("train/cat/0003.jpg", b"not an image", r"train/cat/0003\.jpg"),
])
def test_bad_members_are_named(member, data, message, tmp_path):
    members = {name: encode(a, fmt) for name, (a, fmt) in IMAGES.items()}
    members[member] = data
    path = write_archive(tmp_path / "bad.tar.gz", members)
    with pytest.raises(ValueError, match=message):
        builder.build_cifar10(path, tmp_path / "out")
    assert not (tmp_path / "out" / "cifar-10-batches-py" / "batches.meta").exists()


def test_too_few_images_are_refused(tmp_path):
    members = {name: encode(a, fmt) for name, (a, fmt) in IMAGES.items()
               if name.startswith("train/cat/") or name.startswith("test/")}
    path = write_archive(tmp_path / "few.tar.gz", members)
    with pytest.raises(ValueError, match="3 training images.*at least 5"):
        builder.build_cifar10(path, tmp_path / "out")
    path = write_archive(tmp_path / "notest.tar.gz", {
        name: encode(a, fmt) for name, (a, fmt) in IMAGES.items() if name.startswith("train/")})
    with pytest.raises(ValueError, match="no test images"):
        builder.build_cifar10(path, tmp_path / "out")


def test_not_a_tar_archive_is_named(tmp_path, capsys):
    path = tmp_path / "junk.tar.gz"
    path.write_bytes(b"junk")
    with pytest.raises(SystemExit) as exit_info:
        builder.main([os.fspath(path), os.fspath(tmp_path / "out")])
    assert exit_info.value.code == 1
    assert "junk.tar.gz" in capsys.readouterr().err
