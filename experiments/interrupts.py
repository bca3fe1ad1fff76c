"""Ctrl-C and SIGTERM at the command line: one short message, no traceback, exit 130 or 143.

    results = interrupts.run(main, message)   # message(exc) -> str

`run` calls main() with SIGTERM turned into `Terminated`, a KeyboardInterrupt, so that whatever
cleans up after Ctrl-C (fit saving its checkpoint, a pool of workers stopped) does so for both.
After the first signal the next one gets the OS default: a second Ctrl-C ends the process at
once. When main() stops on either, message(exc) is printed on stderr and the process exits with
128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a shell reports it.
"""
import signal
import sys

__all__ = ["Terminated", "run", "signal_name"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C."""


def _raise(signum, frame):
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)  # a second signal ends the process at once
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def signal_name(exc):
    """How the user stopped the run, for messages: 'SIGTERM' or 'Ctrl-C'."""
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"


def run(main, message):
    """main(), or on Ctrl-C / SIGTERM: message(exc) on stderr and exit 130 / 143."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _raise)
    try:
        return main()
    except KeyboardInterrupt as exc:
        status = 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
        try:
            text = message(exc)
        except Exception as e:  # the message must not turn the stop into a traceback
            text = f"interrupted ({signal_name(exc)}); ({type(e).__name__} while describing it)"
        print(text, file=sys.stderr, flush=True)
        sys.exit(status)
