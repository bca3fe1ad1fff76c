"""The user's line of code: where, in the caller's code, something happened, for the messages
that point there (fuse's TraceError, detect_anomaly's record of where each op was created).

The user's frame is the innermost one outside tensorgrad, numpy and the standard library, so an
op that a layer or a fused chain runs is named at the line that called the model.
"""
import linecache
import os
import sys

__all__ = ["user_line"]

_SKIPPED = {"tensorgrad", "numpy"}  # packages whose frames are not the user's line
_STDLIB = os.path.dirname(os.__file__) + os.sep


def _not_users(frame):
    """Whether `frame` runs tensorgrad's, numpy's or the standard library's code (copy,
    functools, ...)."""
    top = frame.f_globals.get("__name__", "").partition(".")[0]
    return top in _SKIPPED or (top in sys.stdlib_module_names and
                               frame.f_code.co_filename.startswith(_STDLIB))


def user_line():
    """'file:line' and the source text of the innermost frame outside tensorgrad, numpy and
    the standard library (the innermost frame if there is none)."""
    frame = inner = sys._getframe(1)
    while frame is not None and _not_users(frame):
        frame = frame.f_back
    frame = frame or inner
    code = frame.f_code
    text = linecache.getline(code.co_filename, frame.f_lineno).strip()
    return f"{code.co_filename}:{frame.f_lineno}" + (f": {text}" if text else "")
