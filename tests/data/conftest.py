"""Fixtures for tensorgrad.data: tiny CIFAR-10 folders in the real formats, archives, HTTP
servers."""
import hashlib
import http.server
import io
import pickle
import shutil
import struct
import tarfile
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]
PER_BATCH = 20          # images per file; real files hold 10,000
FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def make_batch(number: int, n: int = PER_BATCH):
    """Pixels whose first two values identify (file number, image index), plus labels."""
    rng = np.random.default_rng(number)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    data[:, 0] = number
    data[:, 1] = np.arange(n)
    labels = [(number + i) % 10 for i in range(n)]
    return data, labels


def identify(x):
    """(file number, index) pairs back from float pixels made by make_batch."""
    codes = np.rint(x[:, :2] * 255).astype(int)
    return [tuple(c) for c in codes]


def py3_pickle(obj) -> bytes:
    """What make_cifar10.py writes: protocol 2, bytes keys and strings."""
    return pickle.dumps(obj, protocol=2)


def _py2_str(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<I", len(b)) + b)


def _py2_int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _py2_array(a: np.ndarray) -> bytes:
    """A uint8 2-D array exactly as Python 2's cPickle (protocol 2) stored it in the official
    files."""
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _py2_int(0) + b"\x85"
            + _py2_str(b"b") + b"\x87R("
            + _py2_int(1) + _py2_int(a.shape[0]) + _py2_int(a.shape[1]) + b"\x86"
            + b"cnumpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R"
            + b"(" + _py2_int(3) + _py2_str(b"|") + b"NNN" + _py2_int(-1) + _py2_int(-1)
            + _py2_int(0) + b"tb"
            + b"\x89" + _py2_str(a.tobytes()) + b"tb")


def py2_pickle(obj: dict) -> bytes:
    """A dict of str keys holding str, int lists, str lists or uint8 arrays, pickled as Python 2
    did."""
    def value(v):
        if isinstance(v, np.ndarray):
            return _py2_array(v)
        if isinstance(v, str):
            return _py2_str(v.encode())
        if isinstance(v, int):
            return _py2_int(v)
        return b"](" + b"".join(value(item) for item in v) + b"e"
    items = b"".join(_py2_str(k.encode()) + value(v) for k, v in obj.items())
    return b"\x80\x02}(" + items + b"u."


def write_cifar(folder: Path, style: str = "py3") -> Path:
    """Write all seven files, tiny, in make_cifar10.py's (py3) or the official (py2) format."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, name in enumerate(FILES[:6], start=1):
        data, labels = make_batch(number)
        names = [f"{CLASSES[label]}_{i:04d}.png" for i, label in enumerate(labels)]
        label = "testing batch 1 of 1" if name == "test_batch" else f"training batch {number} of 5"
        if style == "py3":
            blob = py3_pickle({b"batch_label": label.encode(), b"labels": labels, b"data": data,
                               b"filenames": [n.encode() for n in names]})
        else:
            blob = py2_pickle({"batch_label": label, "labels": labels, "data": data,
                               "filenames": names})
        (folder / name).write_bytes(blob)
    meta = {"num_cases_per_batch": PER_BATCH, "label_names": CLASSES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(
        py3_pickle({k.encode(): ([c.encode() for c in v] if isinstance(v, list) else v)
                    for k, v in meta.items()}) if style == "py3" else py2_pickle(meta))
    return folder


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    """A root folder holding cifar-10-batches-py/ with tiny files in make_cifar10.py's format."""
    root = tmp_path_factory.mktemp("cifar_root")
    write_cifar(root / "cifar-10-batches-py")
    return root


@pytest.fixture(scope="session")
def cifar_root_py2(tmp_path_factory) -> Path:
    """Like cifar_root, but the files are Python 2 pickles as in the official archive."""
    root = tmp_path_factory.mktemp("cifar_root_py2")
    write_cifar(root / "cifar-10-batches-py", style="py2")
    return root


@pytest.fixture
def cifar_copy(cifar_root, tmp_path) -> Path:
    """A private, writable copy of cifar_root's batch folder (to damage in a test)."""
    return Path(shutil.copytree(cifar_root / "cifar-10-batches-py",
                                tmp_path / "cifar-10-batches-py"))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def archive_dir(cifar_root, tmp_path_factory) -> Path:
    """Folder with cifar-10-python.tar.gz (tiny, real member names, plus a readme and a
    '../escape.txt' member that must never be written) and bad.tar.gz, whose data_batch_1 is
    a symlink."""
    folder = tmp_path_factory.mktemp("archives")
    source = cifar_root / "cifar-10-batches-py"
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        _add_bytes(tar, "cifar-10-batches-py/readme.html", b"<html></html>")
        _add_bytes(tar, "../escape.txt", b"should never be extracted")
        for name in FILES:
            tar.add(source / name, arcname=f"cifar-10-batches-py/{name}")
    with tarfile.open(folder / "bad.tar.gz", "w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        for name in FILES[1:]:
            tar.add(source / name, arcname=f"cifar-10-batches-py/{name}")
    return folder


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def http_server(archive_dir):
    """A loopback HTTP server (127.0.0.1, own thread) serving archive_dir.

    Yields (base_url, requests), requests being the list of paths asked for."""
    requests = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(handler, directory=str(archive_dir)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def helpers():
    """The module's helper functions, for tests that build their own data."""
    return type("Helpers", (), {"make_batch": staticmethod(make_batch),
                                "identify": staticmethod(identify),
                                "py2_pickle": staticmethod(py2_pickle),
                                "py3_pickle": staticmethod(py3_pickle),
                                "write_cifar": staticmethod(write_cifar),
                                "md5_of": staticmethod(md5_of),
                                "PER_BATCH": PER_BATCH, "CLASSES": CLASSES, "FILES": FILES})
