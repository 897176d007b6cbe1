"""How both programs (the desk agent and the host) take signals: SIGTERM and SIGINT stop them, from a
thread of their own; SIGUSR1 writes every thread's stack to stderr.

A Python signal handler runs in the main thread between two bytecodes, wherever that thread is. A
handler that sets a :class:`threading.Event` which the main thread waits on can deadlock: ``Event.wait``
holds the event's (non-reentrant) condition lock for a few bytecodes around each wait, and a handler
that runs there blocks on that lock forever (CPython issue #126434 describes the same for
``multiprocessing.Event``). A desk paced by a 20x clock waits a few milliseconds at a time, thousands of
times a minute, so one SIGTERM in a few hundred hung it until it was killed.

:func:`stop_on_signals` installs handlers that only write a byte to a non-blocking pipe (one system
call, no lock of ours); a daemon thread reads the pipe and calls the stop callback there, where taking a
lock is safe.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_on_signals(on_stop: Callable[[], None],
                    signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Call ``on_stop()`` on a watcher thread each time one of ``signals`` arrives, inside the block.

    Outside the main thread (where Python cannot install handlers) the block runs without them. The
    previous handlers are put back when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):  # a full pipe: a stop is pending already
            os.write(write_fd, b"s")

    def watch() -> None:
        while True:
            try:
                got = os.read(read_fd, 64)
            except OSError:  # closed: the block ended
                return
            if not got:
                return
            on_stop()

    previous = {s: signal.signal(s, on_signal) for s in signals}
    watcher = threading.Thread(target=watch, name="stop-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        os.close(write_fd)  # the watcher reads EOF and ends
        watcher.join(1.0)
        if not watcher.is_alive():  # else it is still in on_stop(): its fd stays open for it
            os.close(read_fd)


def stacks_on_sigusr1() -> None:
    """``kill -USR1 PID`` writes every thread's stack to stderr (what a hung program is doing); the
    program goes on. Nothing when stderr is no file (run in-process with captured output)."""
    with contextlib.suppress(ValueError, OSError, AttributeError):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
