"""Tests for tensorgrad.data.cifar10: finding, reading, splitting, downloading CIFAR-10 (tiny
copies)."""
import pickle
import shutil
import socket
import time

import numpy as np
import pytest

from tensorgrad.data import load_cifar10, read_batch
from tensorgrad.data.cifar10 import ARCHIVE, MD5, URL, find_cifar10

FOLDER = "cifar-10-batches-py"


def check_pair(pair, n):
    x, y = pair
    assert x.shape == (n, 3072) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) <= set(range(10))


# --- reading ----------------------------------------------------------------------------------

def test_both_root_forms_give_the_same_data(cifar_root, helpers):
    a = load_cifar10(cifar_root, split="c", download=False)
    b = load_cifar10(cifar_root / FOLDER, split="c", download=False)
    np.testing.assert_array_equal(a.train[0], b.train[0])
    np.testing.assert_array_equal(a.test[1], b.test[1])
    assert a.classes == helpers.CLASSES
    check_pair(a.train, 5 * helpers.PER_BATCH)
    check_pair(a.test, helpers.PER_BATCH)


def test_pixels_are_uint8_over_255_in_file_order(cifar_root, helpers):
    data, labels = helpers.make_batch(6)          # test_batch is the sixth file written
    splits = load_cifar10(cifar_root, split="a", download=False)
    np.testing.assert_array_equal(splits.test[0], data.astype(np.float32) / 255)
    np.testing.assert_array_equal(splits.test[1], labels)
    # channel-major rows: viewing as (n, 3, 32, 32) gives the red plane first
    np.testing.assert_array_equal(splits.test[0].reshape(-1, 3, 32, 32)[:, 0].reshape(-1, 1024),
                                  data[:, :1024].astype(np.float32) / 255)


def test_python2_pickles_of_the_official_archive_load_identically(cifar_root, cifar_root_py2):
    new = load_cifar10(cifar_root, split="c", download=False)
    old = load_cifar10(cifar_root_py2, split="c", download=False)
    np.testing.assert_array_equal(new.train[0], old.train[0])
    np.testing.assert_array_equal(new.train[1], old.train[1])
    np.testing.assert_array_equal(new.test[0], old.test[0])
    assert new.classes == old.classes


def test_root_falls_back_to_env_variable(cifar_root, monkeypatch):
    monkeypatch.setenv("TENSORGRAD_DATA", str(cifar_root))
    splits = load_cifar10(split="a", download=False)
    assert len(splits.train[1]) == 20


def test_root_falls_back_to_home_cache(cifar_root, tmp_path, monkeypatch, helpers):
    monkeypatch.delenv("TENSORGRAD_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    helpers.write_cifar(tmp_path / ".cache" / "tensorgrad" / FOLDER)
    assert find_cifar10() == tmp_path / ".cache" / "tensorgrad" / FOLDER
    assert len(load_cifar10(split="c", download=False).train[1]) == 100


def test_missing_data_offline_says_where_it_looked_and_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path / "nowhere", download=False)
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message
    assert str(tmp_path / "nowhere" / FOLDER) in message
    assert "python -m tensorgrad.data.build_cifar10" in message
    assert "TENSORGRAD_DATA" in message and "root" in message


def test_missing_data_offline_says_where_the_archive_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path / "nowhere", download=False)
    assert f"{tmp_path / 'nowhere' / ARCHIVE}  (not present)" in str(info.value)


def test_local_archive_is_checked_and_extracted_offline(archive_dir, cifar_root, tmp_path,
                                                        helpers):
    """A folder holding only cifar-10-python.tar.gz, with download=False."""
    root = tmp_path / "only_archive"
    root.mkdir()
    shutil.copy(archive_dir / ARCHIVE, root / ARCHIVE)
    md5 = helpers.md5_of(root / ARCHIVE)
    s = load_cifar10(root, split="c", download=False, md5=md5)
    np.testing.assert_array_equal(s.train[0], load_cifar10(cifar_root, split="c",
                                                           download=False).train[0])
    assert sorted(p.name for p in (root / FOLDER).iterdir()) == sorted(helpers.FILES)
    assert not (tmp_path / "escape.txt").exists() and not (root / "escape.txt").exists()


@pytest.mark.parametrize("where", ["root", "batch_folder"])
def test_local_archive_failing_its_md5_is_reported_offline(archive_dir, tmp_path, helpers, where):
    root = tmp_path / "data"
    (root / FOLDER).mkdir(parents=True)
    archive = (root if where == "root" else root / FOLDER) / ARCHIVE
    shutil.copy(archive_dir / ARCHIVE, archive)
    with pytest.raises(ValueError) as info:
        load_cifar10(root / FOLDER if where == "batch_folder" else root, download=False,
                     md5="0" * 32)
    message = str(info.value)
    assert str(archive) in message and "MD5" in message
    assert helpers.md5_of(archive) in message and "0" * 32 in message
    assert archive.is_file()                       # the user's file is left alone


def test_local_archive_failing_its_md5_is_not_silently_replaced(http_server, archive_dir,
                                                                 tmp_path, helpers):
    base, requests = http_server
    root = tmp_path / "data"
    root.mkdir()
    (root / ARCHIVE).write_bytes(b"not the archive at all")
    md5 = helpers.md5_of(archive_dir / ARCHIVE)
    with pytest.raises(ValueError, match=rf"(?s){ARCHIVE}.*MD5.*{md5}"):
        load_cifar10(root, url=f"{base}/{ARCHIVE}", md5=md5, timeout=5)
    assert requests == []
    assert (root / ARCHIVE).read_bytes() == b"not the archive at all"


def test_incomplete_folder_lists_missing_files(cifar_copy):
    (cifar_copy / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="missing data_batch_4"):
        load_cifar10(cifar_copy, download=False)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_batch_file_gives_an_error_naming_it(cifar_copy, damage):
    path = cifar_copy / "data_batch_3"
    blob = path.read_bytes()
    path.write_bytes({"truncate": blob[: len(blob) // 2], "garbage": b"\x80\x02not a pickle" * 9,
                      "empty": b""}[damage])
    with pytest.raises(ValueError, match="data_batch_3.*truncated or corrupt"):
        load_cifar10(cifar_copy, split="b", n_val=10, download=False)


def test_wrong_contents_are_reported(cifar_copy, helpers):
    path = cifar_copy / "data_batch_2"
    data, labels = helpers.make_batch(2)
    path.write_bytes(helpers.py3_pickle({b"labels": labels}))
    with pytest.raises(ValueError, match=r"data_batch_2.*\['data'\]"):
        read_batch(path)
    path.write_bytes(helpers.py3_pickle({b"data": data[:, :100], b"labels": labels}))
    with pytest.raises(ValueError, match="data_batch_2.*uint8 array of shape"):
        read_batch(path)
    path.write_bytes(helpers.py3_pickle({b"data": data, b"labels": [11] * len(labels)}))
    with pytest.raises(ValueError, match="data_batch_2.*labels outside"):
        read_batch(path)


@pytest.mark.parametrize("style", ["py2", "py3-protocol2", "py3-protocol4"])
def test_zero_image_batch_is_reported_as_such(cifar_copy, helpers, style):
    path = cifar_copy / "data_batch_2"
    empty = np.zeros((0, 3072), dtype=np.uint8)
    if style == "py2":
        path.write_bytes(helpers.py2_pickle({"batch_label": "x", "labels": [], "data": empty}))
    else:
        path.write_bytes(pickle.dumps({b"labels": [], b"data": empty},
                                      protocol=int(style[-1])))
    with pytest.raises(ValueError, match=r"data_batch_2 holds no images \('data' has shape "
                                         r"\(0, 3072\)\)"):
        read_batch(path)
    with pytest.raises(ValueError, match="data_batch_2 holds no images"):
        load_cifar10(cifar_copy, split="c", download=False)


@pytest.mark.parametrize("labels, match", [
    ([1, [2, 3]] + [0] * 18, "'labels' should hold 20 integers"),
    ([0] * 19 + [2**70], "'labels' should hold 20 integers"),
    ("0" * 20, "'labels' should hold 20 integers"),
])
def test_malformed_labels_are_reported_naming_the_file(cifar_copy, helpers, labels, match):
    path = cifar_copy / "data_batch_5"
    data, _ = helpers.make_batch(5)
    path.write_bytes(helpers.py3_pickle({b"data": data, b"labels": labels}))
    with pytest.raises(ValueError, match=f"data_batch_5: {match}"):
        read_batch(path)


def test_empty_pixel_vector_is_reported_as_no_images(cifar_copy, helpers):
    path = cifar_copy / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros(0, dtype=np.uint8), b"labels": []},
                                  protocol=2))
    with pytest.raises(ValueError, match=r"test_batch holds no images \('data' has shape "
                                         r"\(0,\)\)"):
        read_batch(path)


def test_empty_bytes_stand_in_allows_nothing_else(cifar_copy):
    """The restricted unpickler accepts bytes() (how protocol 2 stores b'') but not bytes(n),
    which would allocate n bytes."""
    path = cifar_copy / "data_batch_1"
    path.write_bytes(b"\x80\x02}q\x00X\x04\x00\x00\x00dataq\x01c__builtin__\nbytes\n"
                     b"J\x00\x00\x00\x7f\x85Rs.")
    with pytest.raises(ValueError, match="data_batch_1.*bytes"):
        read_batch(path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_unpickler_refuses_foreign_globals(cifar_copy, tmp_path, helpers):
    marker = tmp_path / "pwned"
    data, labels = helpers.make_batch(1)
    (cifar_copy / "data_batch_1").write_bytes(
        pickle.dumps({b"data": data, b"labels": labels, b"x": _Exploit(marker)}, protocol=2))
    with pytest.raises(ValueError, match="data_batch_1.*refusing to load global"):
        load_cifar10(cifar_copy, download=False)
    assert not marker.exists()


# --- splits -------------------------------------------------------------------------------------

def test_split_a(cifar_root, helpers):
    s = load_cifar10(cifar_root, split="a", download=False)
    for pair in (s.train, s.val, s.test):
        check_pair(pair, 20)
    assert {f for f, _ in helpers.identify(s.train[0])} == {1}
    assert {f for f, _ in helpers.identify(s.val[0])} == {2}
    assert {f for f, _ in helpers.identify(s.test[0])} == {6}


def test_split_b_last(cifar_root, helpers):
    s = load_cifar10(cifar_root, split="b", n_val=30, download=False)
    check_pair(s.train, 70)
    check_pair(s.val, 30)
    ids_train, ids_val = helpers.identify(s.train[0]), helpers.identify(s.val[0])
    everything = [(f, i) for f in range(1, 6) for i in range(20)]
    assert ids_train + ids_val == everything          # file order kept, val = the last 30


def test_split_b_random_is_seeded_disjoint_and_complete(cifar_root, helpers):
    s1 = load_cifar10(cifar_root, split="b", n_val=30, val_choice="random", seed=3, download=False)
    s2 = load_cifar10(cifar_root, split="b", n_val=30, val_choice="random", seed=3, download=False)
    s3 = load_cifar10(cifar_root, split="b", n_val=30, val_choice="random", seed=4, download=False)
    ids_train, ids_val = helpers.identify(s1.train[0]), helpers.identify(s1.val[0])
    assert len(ids_val) == 30 and len(ids_train) == 70
    assert not set(ids_train) & set(ids_val)
    assert sorted(ids_train + ids_val) == [(f, i) for f in range(1, 6) for i in range(20)]
    assert ids_train == sorted(ids_train) and ids_val == sorted(ids_val)
    np.testing.assert_array_equal(s1.val[0], s2.val[0])
    assert helpers.identify(s3.val[0]) != ids_val
    assert ids_val != [(f, i) for f in range(1, 6) for i in range(20)][-30:]
    # labels travel with their images
    np.testing.assert_array_equal(s1.val[1], [(f + i) % 10 for f, i in ids_val])


def test_split_c(cifar_root):
    s = load_cifar10(cifar_root, split="c", download=False)
    check_pair(s.train, 100)
    assert s.val is None
    assert "val=None" in repr(s) and "train=100 images" in repr(s)


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "d"}, "split must be"),
    ({"val_choice": "first"}, "val_choice must be"),
    ({"n_val": 0}, "n_val must be"),
    ({"n_val": 100}, "n_val must be"),
])
def test_bad_arguments(cifar_root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_cifar10(cifar_root, download=False, **kwargs)


# --- download -----------------------------------------------------------------------------------

def test_download_verifies_and_unpacks_only_expected_members(http_server, archive_dir, tmp_path,
                                                             helpers, cifar_root):
    base, requests = http_server
    root = tmp_path / "fresh"
    url = f"{base}/cifar-10-python.tar.gz"
    md5 = helpers.md5_of(archive_dir / "cifar-10-python.tar.gz")
    s = load_cifar10(root, split="c", url=url, md5=md5, timeout=5)
    expected = load_cifar10(cifar_root, split="c", download=False)
    np.testing.assert_array_equal(s.train[0], expected.train[0])
    assert sorted(p.name for p in (root / FOLDER).iterdir()) == sorted(helpers.FILES)
    assert not (tmp_path / "escape.txt").exists() and not (root / "escape.txt").exists()
    assert (root / "cifar-10-python.tar.gz").is_file()
    assert requests == ["/cifar-10-python.tar.gz"]
    load_cifar10(root, split="a", url=url, md5=md5, timeout=5)
    assert len(requests) == 1                                  # found, not fetched again


def test_download_into_a_folder_named_like_the_batches(http_server, archive_dir, tmp_path, helpers):
    base, _ = http_server
    md5 = helpers.md5_of(archive_dir / "cifar-10-python.tar.gz")
    target = tmp_path / FOLDER
    load_cifar10(target, split="a", url=f"{base}/cifar-10-python.tar.gz", md5=md5, timeout=5)
    assert (target / "data_batch_1").is_file()


def test_md5_mismatch_is_an_error_and_leaves_nothing(http_server, tmp_path):
    base, _ = http_server
    with pytest.raises(RuntimeError, match="MD5 mismatch.*expected 0{32}"):
        load_cifar10(tmp_path, url=f"{base}/cifar-10-python.tar.gz", md5="0" * 32, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_symlink_member_is_refused(http_server, archive_dir, tmp_path, helpers):
    base, _ = http_server
    with pytest.raises(ValueError, match="data_batch_1 is not a regular file"):
        load_cifar10(tmp_path, url=f"{base}/bad.tar.gz",
                     md5=helpers.md5_of(archive_dir / "bad.tar.gz"), timeout=5)
    assert not (tmp_path / FOLDER / "data_batch_1").exists()


def test_http_error_is_reported_with_the_help_text(http_server, tmp_path):
    base, _ = http_server
    with pytest.raises(FileNotFoundError, match=r"(?s)downloading .*missing\.tar\.gz failed.*"
                                                r"tensorgrad\.data\.build_cifar10"):
        load_cifar10(tmp_path, url=f"{base}/missing.tar.gz", md5=MD5, timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_url_fails_fast_with_a_clear_message(tmp_path):
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path, url=f"http://127.0.0.1:{_free_port()}/cifar-10-python.tar.gz",
                     timeout=2)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "downloading" in message and str(tmp_path / FOLDER) in message
    assert "python -m tensorgrad.data.build_cifar10" in message and "TENSORGRAD_DATA" in message
    assert not any(tmp_path.rglob("*.part"))


def test_silent_server_times_out_instead_of_hanging(tmp_path):
    with socket.socket() as listener:                 # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(FileNotFoundError, match="timed out"):
            load_cifar10(tmp_path, url=f"http://127.0.0.1:{port}/x.tar.gz", timeout=0.5)
        assert time.monotonic() - start < 5


def test_default_url_and_checksum_are_the_official_ones():
    assert URL == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert MD5 == "c58f30108f718f92721af3b95e74349a"
