"""tests/ports.py: free loopback ports outside the kernel's ephemeral range, never the same twice."""

from __future__ import annotations

import socket

import pytest

from tests.ports import LOWEST, ephemeral_start, free_port


def test_ports_are_free_below_the_ephemeral_range_and_never_repeat() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(LOWEST <= p < ephemeral_start() for p in ports), ports
    for p in ports[:5]:  # each can be bound right away
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _held_port_with_free_neighbours() -> socket.socket:
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        if _bindable(port - 1) and _bindable(port + 1):
            return s
        s.close()
    raise AssertionError("no ephemeral port with two free neighbours")


def test_a_port_in_use_is_not_handed_out() -> None:
    with _held_port_with_free_neighbours() as held:
        taken = held.getsockname()[1]
        # a three-port range around it: only the two free neighbours come out, then nothing is left
        got = {free_port(taken - 1, taken + 2) for _ in range(2)}
        assert got == {taken - 1, taken + 1}
        with pytest.raises(RuntimeError, match="no free TCP port"):
            free_port(taken - 1, taken + 2)
