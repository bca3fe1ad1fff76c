"""Test-only fault injection: $TENSORGRAD_FAULT makes the process send itself a real signal at a
named point, so tests can kill or interrupt a training subprocess exactly where they mean to.

    TENSORGRAD_FAULT="KILL@update:5"              SIGKILL right after training update 5
    TENSORGRAD_FAULT="INT@update:5,INT@write:2"   SIGINT there, and again in the 2nd file write

Signals: KILL, INT, TERM. Points: `update:N` (fit, right after update N), `saved:N` (fit, right
after the checkpoint of update N is on disk), `write:N` (the process's N-th `atomic` file write,
its temporary file complete and fsynced, not yet renamed), `run:N` (a study, in the process
that started it, right after its N-th finished run is kept: between two runs). Each fires
once. Unset, as always outside the tests, a point costs one dict lookup; the training step
checks a bool only.
"""
import os
import signal

__all__ = ["ENV", "active", "at"]

ENV = "TENSORGRAD_FAULT"
_SIGNALS = {"KILL": signal.SIGKILL, "INT": signal.SIGINT, "TERM": signal.SIGTERM}
_POINTS = ("update", "saved", "write", "run")


def _parse(text):
    plan = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            name, rest = item.split("@")
            point, count = rest.split(":")
            signum, count = _SIGNALS[name], int(count)
        except (ValueError, KeyError):
            raise ValueError(f"${ENV}: cannot read {item!r}; expected SIGNAL@POINT:N with SIGNAL "
                             f"in {sorted(_SIGNALS)} and POINT in {list(_POINTS)}") from None
        if point not in _POINTS:
            raise ValueError(f"${ENV}: unknown point {point!r} in {item!r}; choose from "
                             f"{list(_POINTS)}")
        plan.setdefault(point, []).append((count, signum))
    return plan


_PLAN = _parse(os.environ.get(ENV, ""))
_calls = {}


def active(point):
    """Whether a fault is planned at `point` (fit asks once, not per update)."""
    return bool(_PLAN.get(point))


def at(point, n=None):
    """Send the planned signal if this is its occurrence: the n given (update and saved count
    the update), else this point's call count in the process (write, run)."""
    plan = _PLAN.get(point)
    if not plan:
        return
    if n is None:
        n = _calls[point] = _calls.get(point, 0) + 1
    for i, (count, signum) in enumerate(plan):
        if count == n:
            del plan[i]
            os.kill(os.getpid(), signum)
            return
