"""Call state from a PBX or softphone bridge over MQTT (CTI): the ``cti`` desk topic.

A bridge publishes :class:`mqtt_schema.Cti` messages (``ringing``, ``established``, ``closed`` with
the bridge's call id) on ``hsc/v1/{site}/{desk}/cti``, QoS 1, not retained (docs/mqtt.md). The desk
agent subscribes through its own broker connection (:class:`device.outputs.publisher.DeskPublisher`, which
decodes and validates each payload and hands it to :meth:`MqttCallSource.receive` on its worker
thread); this source holds no connection of its own.

Times: each transition is stamped with the agent clock when it is received, as for baresip (the
bridge's ``ts`` is logged, not trusted: the PBX clock may differ from the desk's). A message for
another desk is refused (the publisher only subscribes to this desk's topic, so this is a bug guard).

``connected`` follows the broker connection (the owner calls :meth:`set_connected`). While the broker
is away, transitions may be lost: a call whose ``closed`` never arrives stays active until
``stale_after_s`` of agent-clock time pass without any message about it, then it is closed with
reason ``source-lost`` (default: 4 h, longer than any call).

Privacy: the bridge's call id is kept on the desk only; the per-call summary carries its hash.
"""

from __future__ import annotations

import logging
import threading

from device.calls.state import CallState, CallTracker, Direction, Listener, TrackedSource
from device.clock import Clock, WallClock
from device.logs import kv
from mqtt_schema import CallDirection, Cti, CtiPhase

log = logging.getLogger("device.calls.mqtt")

STALE_AFTER_S = 4 * 3600.0


class MqttCallSource(TrackedSource):
    """A :class:`~device.calls.state.CallSource` fed by CTI messages the agent's MQTT client receives."""

    name = "mqtt"

    def __init__(self, site: str, desk: str, *, clock: Clock | None = None, listener: Listener | None = None,
                 stale_after_s: float = STALE_AFTER_S) -> None:
        self.site, self.desk = site, desk
        self.clock: Clock = clock if clock is not None else WallClock()
        self.tracker = CallTracker(self.name, self.clock, listener)
        self.stale_after_s = stale_after_s
        self.received = 0
        self.refused = 0
        self._connected = threading.Event()
        self._last_ms: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> MqttCallSource:
        return self

    def stop(self) -> None:
        """Nothing to close: the connection is the agent's."""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def set_connected(self, up: bool) -> None:
        """The broker connection came up (True) or went away (False)."""
        if up:
            self._connected.set()
        else:
            self._connected.clear()

    # --- input ----------------------------------------------------------------------------------------

    def receive(self, msg: Cti) -> CallState | None:
        """Apply one CTI message (any thread); the transition it caused, or None (a repeat, a late one)."""
        if msg.site != self.site or msg.desk != self.desk:
            with self._lock:
                self.refused += 1
            log.warning("CTI message for another desk ignored", extra=kv(site=msg.site, desk=msg.desk))
            return None
        now = self.clock.now_ms()
        with self._lock:
            self.received += 1
            self._last_ms[msg.call_id] = now
        direction = Direction(msg.direction.value) if msg.direction is not None else None
        log.debug("CTI", extra=kv(phase=msg.phase.value, bridge_ts=msg.ts, rings=msg.rings))
        if msg.phase is CtiPhase.RINGING:
            return self.tracker.ringing(msg.call_id, direction or Direction.INCOMING, at_ms=now, rings=msg.rings)
        if msg.phase is CtiPhase.ESTABLISHED:
            return self.tracker.established(msg.call_id, direction or Direction.INCOMING, at_ms=now, rings=msg.rings)
        with self._lock:
            self._last_ms.pop(msg.call_id, None)
        return self.tracker.closed(msg.call_id, msg.reason or "hangup", at_ms=now, direction=direction)

    def poll(self, broker_connected: bool) -> None:
        """The agent's loop pass: whether the ``cti`` topic is received (see :meth:`CallSource.poll`), and
        :meth:`tick`."""
        self.set_connected(broker_connected)
        self.tick()

    def tick(self) -> list[CallState]:
        """Close calls nobody has said anything about for ``stale_after_s`` (a lost ``closed``)."""
        now = self.clock.now_ms()
        limit = self.stale_after_s * 1000
        with self._lock:
            stale = [cid for cid, t in self._last_ms.items() if now - t >= limit]
            for cid in stale:
                del self._last_ms[cid]
        out = [s for s in (self.tracker.closed(cid, "source-lost", at_ms=now) for cid in stale) if s is not None]
        if out:
            log.warning("CTI calls closed: no news for too long", extra=kv(calls=len(out), after_s=self.stale_after_s))
        return out


def to_direction(d: Direction | None) -> CallDirection | None:
    """The contract's direction of a call state's direction."""
    return CallDirection(d.value) if d is not None else None
