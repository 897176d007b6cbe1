"""Free TCP ports on the loopback for the real parts the tests start (brokers, NATS nodes, PostgreSQL,
baresip, HTTPS servers).

``bind(("127.0.0.1", 0))`` hands out a port from the kernel's ephemeral range
(``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 on Linux), the same range every outgoing
connection takes its source port from. Between picking such a port and a server binding it, a client
connection elsewhere can take it: a NATS node's route to its peers did, and the next node failed with
"can't listen to the monitor port: address already in use". So ports are drawn at random below that
range, where no connection is given a source port, checked free by binding, and never handed out twice
by one process.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 20000
"""Lowest port handed out (above the registered services that a test machine may run)."""
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_given: set[int] = set()
_rng = random.SystemRandom()


def ephemeral_start() -> int:
    """First port of the kernel's ephemeral range (32768 where the kernel does not say)."""
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(lo: int | None = None, hi: int | None = None) -> int:
    """A TCP port on 127.0.0.1 that is free now, in ``lo``..``hi - 1`` (default: from :data:`LOWEST` to the
    ephemeral range), not given out before by this process."""
    if hi is None:
        hi = ephemeral_start()
    if lo is None:
        lo = LOWEST if hi - LOWEST >= 1000 else 1024
    for _ in range(500):
        port = _rng.randrange(lo, hi)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 in {lo}-{hi - 1} after 500 tries")
