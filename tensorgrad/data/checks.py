"""Checks on data arrays, shared by the loader, the standardisation and the study scripts."""
from __future__ import annotations

import numpy as np


def check_finite(x, name: str, chunk: int = 4096) -> None:
    """Raise ValueError if x holds NaN or infinity, saying how many and the first row.

    x: None (nothing to check), a numpy array (integer and boolean arrays pass at once) or an
    array-like whose row slices are arrays, such as an ImageArray (which knows when its values
    are finite by construction). name: how the message calls x, e.g. 'the val split'.
    """
    if x is None:
        return
    skip = getattr(x, "_skip_finite_scan", None)
    if skip is not None and skip():
        return
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fc":
            return
        x = np.atleast_1d(x)
        with np.errstate(all="ignore"):
            if np.isfinite(x.sum()):  # NaN and inf reach the sum; an overflow is scanned below
                return
    count, first = 0, None
    for start in range(0, len(x), chunk):
        part = np.asarray(x[start:start + chunk])
        if part.dtype.kind not in "fc":
            return
        bad = ~np.isfinite(part)
        if bad.any():
            count += int(bad.sum())
            if first is None:
                first = start + int(np.argmax(bad.reshape(len(bad), -1).any(axis=1)))
    if count:
        raise ValueError(f"{name} holds {count} non-finite value{'s' * (count != 1)} (NaN or "
                         f"inf); the first is at row {first}. Fix or drop those rows before "
                         f"training")
