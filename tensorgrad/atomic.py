"""Atomic file writes: a file is replaced whole or not at all, and durably.

    with atomic_write(path) as f:    # a binary file in the target's folder
        f.write(data)
    write_bytes(path, data)
    write_text(path, text)

The content goes to a temporary file with a unique name in the target's folder
(`.<name>.<pid>.<random>.<host>.tmp`, so writers sharing a path never collide), which is fsynced
and renamed over the target (readers see the old file or the new one, never a mix); then the
folder is fsynced so that the rename survives a power cut. On any failure, KeyboardInterrupt
included, the temporary file is removed and the old file stays; an OSError (a full disk, a
missing folder, a permission) names the target path. A process killed outright (SIGKILL) cannot
clean up: the next successful write of the same path removes the temporaries of processes on
this host that no longer exist.
"""
import contextlib
import errno
import os
import re
import secrets
import socket

from . import faults

__all__ = ["atomic_write", "write_bytes", "write_text"]

_HOST = socket.gethostname()
_STEM = 100  # characters of the target's name kept in its temporaries' names (NAME_MAX is 255)
_OWNER = re.compile(r"(\d+)\.[0-9a-f]{8}\.(.+)\.tmp")


def _prefix(name):
    return f".{name[:_STEM]}."


def _named(exc, path):
    """The OSError `exc` (same errno, so the same subclass) with `path` as its file name."""
    if exc.errno is None:
        return OSError(f"{exc} (writing {path!r})")
    return OSError(exc.errno, exc.strerror, path)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: it exists
        return True
    return True


def _sweep(folder, name):
    """Remove temporaries of `name` left by dead processes of this host."""
    if os.name != "posix":
        return
    prefix = _prefix(name)
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        owner = _OWNER.fullmatch(entry[len(prefix):]) if entry.startswith(prefix) else None
        if owner is None or owner.group(2) != _HOST:
            continue
        pid = int(owner.group(1))
        if pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, entry))


def _sync_folder(folder, path):
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a platform that cannot open a folder (Windows): the rename is all we have
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):  # folders not syncable
            raise _named(e, path) from e
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path):
    """A binary file to write `path`'s new content into; it replaces `path` when the block ends
    without an exception (see the module docstring)."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path!r}: its folder does not exist",
                                folder)
    tmp = os.path.join(folder,
                       f"{_prefix(name)}{os.getpid()}.{secrets.token_hex(4)}.{_HOST}.tmp")
    try:
        f = open(tmp, "xb")
    except OSError as e:
        raise _named(e, path) from e
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        faults.at("write")
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.filename != path:
            raise _named(exc, path) from exc
        raise
    _sync_folder(folder, path)
    _sweep(folder, name)


def write_bytes(path, data):
    """Replace `path` with `data` (bytes), atomically."""
    with atomic_write(path) as f:
        f.write(data)


def write_text(path, text, encoding="utf-8"):
    """Replace `path` with `text`, atomically."""
    write_bytes(path, text.encode(encoding))
