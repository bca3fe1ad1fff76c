"""Keep freed array memory for reuse (glibc's malloc): a training step stops paying for fresh pages.

A training step allocates and frees the same arrays every update (a 3072 x 50 weight gradient is
600 KB). glibc hands blocks that large to the kernel on free and maps fresh pages on the next
allocation; the first writes into them then fault page by page, from every BLAS thread at once
(docs/performance.md). `keep_freed_memory()` (called on import unless the environment sets
TENSORGRAD_KEEP_FREED_MEMORY=0, TENSORGRAD_FAST=0 or TENSORGRAD_FAST_OFF=malloc_tuning) asks
malloc to serve blocks up to 32 MB from its heap and to keep up to 512 MB of freed heap instead
of trimming it. It changes the whole process's allocator (numpy, PyTorch and everything else in
it), and nothing on other C libraries than glibc.
"""
import ctypes
import os
import platform

from .. import mode

__all__ = ["keep_freed_memory", "APPLIED"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def keep_freed_memory(mmap_threshold=32 << 20, trim_threshold=512 << 20):
    """Tune glibc's malloc as described in the module docstring; returns True if it applied
    (glibc found and both settings accepted), False elsewhere. Larger blocks still go straight
    to the kernel and back (a dataset array, say)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
    except (OSError, AttributeError):
        return False


# whether the import applied it (False when turned off or not on glibc); only the environment
# can turn it off: it changes the whole process, so `tg.set_fast` later leaves it as it is
APPLIED = os.environ.get("TENSORGRAD_KEEP_FREED_MEMORY", "1") != "0" and \
    "malloc_tuning" not in mode.OFF and keep_freed_memory()
mode.HITS["malloc_tuning"] += APPLIED
