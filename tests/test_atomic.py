"""tensorgrad.atomic: a file is replaced whole or not at all, fsynced, with a unique temporary
name that is removed on any failure, and the path in every error."""
import errno
import os
import socket
import subprocess
import sys
import threading

import pytest

from tensorgrad.atomic import atomic_write, write_bytes, write_text


def test_a_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    write_text(path, "new\n")
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["out.json"]
    write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and os.listdir(tmp_path) == ["out.json"]


@pytest.mark.parametrize("failure", [KeyboardInterrupt, ValueError, "ENOSPC"])
def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, failure):
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(OSError if failure == "ENOSPC" else failure) as info:
        with atomic_write(path) as f:
            f.write(b"half of the new content")
            if failure == "ENOSPC":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise failure
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["results.json"]
    if failure == "ENOSPC":
        assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)


def test_two_writers_of_one_path_do_not_collide(tmp_path):
    path = tmp_path / "shared.ckpt"
    with atomic_write(path) as a, atomic_write(path) as b:
        assert a.name != b.name
        a.write(b"first")
        b.write(b"second")
    # b is closed first, then a: the last writer to finish wins, whole
    assert path.read_bytes() == b"first" and os.listdir(tmp_path) == ["shared.ckpt"]


def test_many_threads_writing_one_path_leave_one_whole_file(tmp_path):
    path = tmp_path / "shared.bin"
    payloads = [bytes([i]) * 50_000 for i in range(8)]
    threads = [threading.Thread(target=write_bytes, args=(path, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_bytes() in payloads and os.listdir(tmp_path) == ["shared.bin"]


def test_the_file_and_its_folder_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(dst)))
        real_replace(src, dst)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_text(tmp_path / "a.md", "x")
    assert events == [("fsync", False), ("replace", str(tmp_path / "a.md")), ("fsync", True)]


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        write_text(tmp_path / "nope" / "a.json", "x")
    assert str(tmp_path / "nope") in str(info.value)


def test_a_temporary_left_by_a_killed_process_is_removed_by_the_next_write(tmp_path):
    """A process killed mid-write (SIGKILL: nothing of it runs) leaves its temporary; the next
    successful write of that path removes temporaries whose process on this host is gone, and
    keeps those of live processes."""
    path = tmp_path / "run.ckpt"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    host = socket.gethostname()
    stale = tmp_path / f".run.ckpt.{int(dead.stdout)}.0123abcd.{host}.tmp"
    live = tmp_path / f".run.ckpt.{os.getppid()}.4567ef01.{host}.tmp"
    other_host = tmp_path / f".run.ckpt.{int(dead.stdout)}.89abcdef.elsewhere.example.tmp"
    for p in (stale, live, other_host):
        p.write_bytes(b"partial")
    write_bytes(path, b"whole")
    assert sorted(os.listdir(tmp_path)) == sorted(["run.ckpt", live.name, other_host.name])
