"""Call state on the desk and the per-call measures built on it.

- :mod:`device.calls.state`: the interface (:class:`CallState`, :class:`CallSource`, ``none``).
- :mod:`device.calls.baresip`: baresip's ``ctrl_tcp`` (a SIP softphone on the desk unit).
- :mod:`device.calls.gpio`: a desk phone's ring-detect and off-hook inputs.
- :mod:`device.calls.mqtt`: CTI from a PBX or softphone bridge on the desk's ``cti`` MQTT topic.
- :mod:`device.calls.measures`: rings, greeting latency, talk and silence per call, against the norms.
- :mod:`device.calls.far_end`: the far end of a call from baresip's ``sndfile`` recordings.

:func:`open_source` builds a source from the config string ``none`` | ``baresip[:HOST:PORT]`` | ``gpio``
| ``mqtt``.
"""

from __future__ import annotations

from typing import Any

from device.calls.baresip import BaresipClient
from device.calls.far_end import FarEndMeter, FarEndResult
from device.calls.gpio import GpioCallSource, PhonePins
from device.calls.measures import CallMeasures, CallMeter, CallNorms, measure_call, rings_from_time
from device.calls.mqtt import MqttCallSource
from device.calls.state import (
    IDLE,
    CallPhase,
    CallSource,
    CallSourceError,
    CallState,
    Direction,
    Listener,
    NoCallSource,
    RingCadence,
)
from device.clock import Clock
from device.errors import ConfigError

BARESIP_DEFAULT = ("127.0.0.1", 4444)

__all__ = ["IDLE", "BaresipClient", "CallMeasures", "FarEndMeter", "FarEndResult", "CallMeter", "CallNorms", "CallPhase", "CallSource",
           "CallSourceError", "CallState", "Direction", "GpioCallSource", "MqttCallSource", "NoCallSource", "PhonePins",
           "RingCadence", "measure_call", "open_source", "parse_source", "rings_from_time"]


def parse_source(spec: str, where: str = "calls.source") -> tuple[str, str, int]:
    """``none`` | ``gpio`` | ``mqtt`` | ``baresip`` | ``baresip:HOST:PORT`` → (kind, host, port); host/port only
    for baresip."""
    if not isinstance(spec, str):
        raise ConfigError(f"{where}: must be a string, got {type(spec).__name__}")
    kind, _, rest = spec.partition(":")
    if kind in ("none", "gpio", "mqtt") and not rest:
        return kind, "", 0
    if kind == "baresip":
        if not rest:
            return kind, *BARESIP_DEFAULT
        host, sep, port = rest.rpartition(":")
        if sep and host and port.isdigit() and 0 < int(port) < 65536:
            return kind, host.strip("[]"), int(port)
    raise ConfigError(f"{where}: {spec!r} is not a call source (none, gpio, mqtt, baresip or baresip:HOST:PORT)")


def open_source(spec: str = "none", *, clock: Clock | None = None, listener: Listener | None = None,
                cadence: RingCadence | None = None, pins: PhonePins | None = None,
                pin_factory: Any = None, site: str = "", desk: str = ""
                ) -> BaresipClient | GpioCallSource | MqttCallSource | NoCallSource:
    """The (not yet started) call source for config string ``spec``; :class:`ConfigError` when it is bad.

    ``mqtt`` needs the desk's ``site`` and ``desk``; its messages come through the agent's MQTT client
    (:meth:`MqttCallSource.receive`)."""
    kind, host, port = parse_source(spec)
    if kind == "mqtt":
        return MqttCallSource(site, desk, clock=clock, listener=listener)
    if kind == "baresip":
        return BaresipClient(host, port, clock=clock, listener=listener)
    if kind == "gpio":
        return GpioCallSource(pins, pin_factory=pin_factory, clock=clock, cadence=cadence, listener=listener)
    return NoCallSource()
