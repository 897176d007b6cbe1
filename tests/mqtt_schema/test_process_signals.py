"""SIGTERM stops a program whose main thread waits on the very event the stop sets (both our programs do).

The handler of old set the event from the main thread itself and deadlocked about two times in three
on the tight loop below (measured: 13 of 20 runs hung); :func:`stop_on_signals` sets it from a thread.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TIGHT_LOOP = textwrap.dedent("""
    import sys, threading
    from mqtt_schema.process_signals import stop_on_signals
    stop = threading.Event()
    with stop_on_signals(stop.set):
        print("ready", flush=True)
        n = 0
        while not stop.wait(0):  # holds the event's lock most of the time: the worst case for a handler
            n += 1
    print("stopped", flush=True)
""")


def _start() -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", TIGHT_LOOP], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_sigterm_and_sigint_stop_a_main_thread_that_waits_on_the_stop_event_every_time() -> None:
    hung = []
    for i in range(12):
        proc = _start()
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT if i % 3 == 0 else signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            hung.append(i)
            continue
        assert proc.returncode == 0 and out.strip() == "stopped", (proc.returncode, out)
    assert hung == [], f"runs {hung} of 12 did not stop within 5 s of the signal"


def test_the_previous_handlers_are_back_after_the_block() -> None:
    code = textwrap.dedent("""
        import signal, threading
        from mqtt_schema.process_signals import stop_on_signals
        before = signal.getsignal(signal.SIGTERM)
        with stop_on_signals(threading.Event().set):
            inside = signal.getsignal(signal.SIGTERM)
        print(before is signal.getsignal(signal.SIGTERM), inside is not before, threading.active_count())
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "1"]  # the watcher thread ended too


def test_a_second_signal_during_the_stop_is_taken_too() -> None:
    proc = _start()
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=5)
    assert proc.returncode == 0 and out.strip() == "stopped"
