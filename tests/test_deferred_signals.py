"""tensorgrad.deferred_signals: a real SIGINT inside the block waits for deliver(); a second
one acts at once; the handlers are restored; outside the main thread nothing changes."""
import signal
import threading

import pytest

from tensorgrad.deferred_signals import DeferredSignals


def test_a_signal_waits_for_deliver_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    with DeferredSignals() as signals:
        signal.raise_signal(signal.SIGINT)  # Python's handler would raise KeyboardInterrupt here
        assert signals.pending is not None
        with pytest.raises(KeyboardInterrupt):
            signals.deliver()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_signal_acts_at_once():
    with DeferredSignals():
        signal.raise_signal(signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_that_does_not_raise_keeps_the_deferral(monkeypatch):
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        with DeferredSignals() as signals:
            signal.raise_signal(signal.SIGTERM)
            assert calls == []
            signals.deliver()
            assert calls == [signal.SIGTERM]
            signal.raise_signal(signal.SIGTERM)  # deferred again
            assert calls == [signal.SIGTERM] and signals.pending is not None
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_nothing_changes():
    seen = []

    def body():
        with DeferredSignals():
            seen.append(signal.getsignal(signal.SIGINT))
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]
