"""Ctrl-C (and a SIGTERM that Python handles) held back to a point where the state is whole.

    with DeferredSignals() as signals:
        for ...:
            ...                     # a training update: never stopped halfway
            if signals.pending:
                signals.deliver()   # the original handler runs now (Ctrl-C: KeyboardInterrupt)

Inside the block, in the main thread, SIGINT and SIGTERM whose handlers are Python functions
(Python's own Ctrl-C handler, a command line's) are only noted; `deliver()` runs the original
handler at the caller's safe point. A second signal while one is pending runs the original
handler at once: a second Ctrl-C aborts. Elsewhere (another thread, signals ignored or left to
the OS) nothing changes. On leaving, the original handlers are restored unless someone replaced
ours meanwhile.
"""
import signal
import threading

__all__ = ["DeferredSignals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DeferredSignals:
    def __init__(self):
        self.pending = None     # (signum, frame) of the signal held back, if any
        self._original = {}     # signum -> the handler ours replaced
        self._active = False
        self._handler = self._note  # one bound method, so `is` recognises it when restoring

    def __enter__(self):
        self._active = True
        self._install()
        return self

    def __exit__(self, *exc):
        self._active = False
        self.restore()
        return False

    def _install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler) and handler is not self._handler:
                self._original[signum] = handler
                signal.signal(signum, self._handler)

    def _note(self, signum, frame):
        if self.pending is None:
            self.pending = (signum, frame)
        else:  # a second signal: the original handler, now
            self._run(signum, frame)

    def _run(self, signum, frame):
        handler = self._original.get(signum)
        self.restore()
        if handler is not None:
            handler(signum, frame)
        if self._active:  # the handler did not raise: keep deferring
            self._install()

    def deliver(self):
        """Run the original handler of the pending signal (it usually raises); also after the
        block, for a signal that came too late for the last safe point."""
        signum, frame = self.pending
        self.pending = None
        self._run(signum, frame)

    def restore(self):
        """Put the original handlers back (where ours is still installed)."""
        for signum, handler in self._original.items():
            if signal.getsignal(signum) is self._handler:
                signal.signal(signum, handler)
