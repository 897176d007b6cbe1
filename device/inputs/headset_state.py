"""What the desk loop knows of the headset: its link, the recent head pose, wear, the LED colour sent.

The link itself (USB serial, a reader thread) is :class:`device.inputs.headset_client.HeadsetClient`;
:class:`HeadsetState` reads it on the loop's thread:

- :meth:`HeadsetState.now`: worn, head pitch and roll (deg) now; an IMU frame older than
  ``IMU_FRESH_S`` wall seconds does not count. The frames of the last ``POSE_WINDOW_S`` clock seconds
  are kept for a posture calibration (:meth:`HeadsetState.samples`).
- :meth:`HeadsetState.handle_events`: the link's events since the last pass become desk events
  (``headset_connected``, ``headset_disconnected``, ``worn``/``doffed`` once per change) and a new
  state when the link, the headset id or its firmware changed; what to send is the service's.
- :meth:`HeadsetState.show`: the headset LED's colour, sent only when it changes (and again after
  every reconnect).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Protocol

from device.inputs.headset_client import HeadsetClient, LinkEvent
from device.logs import kv
from mqtt_schema import EventKind, PartStatus

log = logging.getLogger("device.agent")

POSE_WINDOW_S = 1.0
"""Clock seconds of IMU frames a posture calibration averages."""
IMU_FRESH_S = 1.5
"""Wall seconds after which the last IMU frame no longer counts (posture unknown)."""


class LinkStatus(Protocol):
    """The parts of the agent's status the headset link sets."""

    headset: PartStatus
    headset_id: str | None
    firmware: str | None


class HeadsetState:
    """The headset as the loop sees it. ``client`` is None without ``headset.port`` (and before start)."""

    def __init__(self, configured: bool, monotonic: Callable[[], float]) -> None:
        self.configured = configured
        """A headset port is configured (else the part's status is NONE)."""
        self.monotonic = monotonic
        self.client: HeadsetClient | None = None
        self.frames: collections.deque[tuple[int, float, float]] = collections.deque()
        """(clock ms, pitch deg, roll deg) of the last ``POSE_WINDOW_S``."""
        self.reported_worn: bool | None = None
        self.led_rgb: tuple[int, int, int] | None = None
        """The colour last sent to the headset LED; None: none since the link (re)connected."""

    def part_status(self) -> PartStatus:
        if not self.configured:
            return PartStatus.NONE
        if self.client is not None and self.client.connected:
            return PartStatus.OK
        return PartStatus.ERROR

    def now(self, now_ms: int) -> tuple[bool | None, float | None, float | None]:
        """(worn, pitch deg, roll deg) now; None for what is not known."""
        if self.client is None:
            return None, None, None
        connected, imu, worn = self.client.live()
        if not connected:
            self.frames.clear()
            return None, None, None
        if imu is None or self.monotonic() - imu.at_s > IMU_FRESH_S:
            return worn, None, None
        frames = self.frames
        if not frames or frames[-1][1:] != (imu.pitch_deg, imu.roll_deg) or now_ms - frames[-1][0] > 50:
            frames.append((now_ms, imu.pitch_deg, imu.roll_deg))
        while frames and now_ms - frames[0][0] > POSE_WINDOW_S * 1000:
            frames.popleft()
        return worn, imu.pitch_deg, imu.roll_deg

    def samples(self) -> list[tuple[float, float]]:
        """(pitch, roll) of the recent frames, for a posture calibration."""
        return [(p, r) for _, p, r in self.frames]

    def handle_events(self, status: LinkStatus, event: Callable[..., object],
                      state_changed: Callable[[], None]) -> None:
        """The link's events since the last pass: ``event(kind, **fields)`` for each desk event,
        ``state_changed()`` when the link, the headset id or the firmware changed."""
        if self.client is None:
            return
        for ev in self.client.events():
            self._link_event(ev, status, event, state_changed)

    def _link_event(self, ev: LinkEvent, status: LinkStatus, event: Callable[..., object],
                    state_changed: Callable[[], None]) -> None:
        if ev.kind == "connected":
            status.headset = PartStatus.OK
            self.led_rgb = None  # the headset LED is sent its colour again
            snap = self.client.snapshot() if self.client is not None else None
            hello = snap.hello if snap is not None else None
            event(EventKind.HEADSET_CONNECTED,
                  message=f"headset {hello.headset_id if hello else '?'} firmware {hello.firmware if hello else '?'}")
            state_changed()
        elif ev.kind == "hello":
            fw, hid = ev.data.get("firmware"), ev.data.get("headset_id")
            if fw != status.firmware or hid != status.headset_id:
                status.firmware, status.headset_id = fw, hid
                state_changed()
        elif ev.kind == "disconnected":
            status.headset = PartStatus.ERROR
            event(EventKind.HEADSET_DISCONNECTED, message=str(ev.data.get("reason", ""))[:200])
            state_changed()
        elif ev.kind == "wear":
            on = bool(ev.data.get("on"))
            if on != self.reported_worn:
                self.reported_worn = on
                event(EventKind.WORN if on else EventKind.DOFFED)
        elif ev.kind == "log":
            log.info("headset says", extra=kv(msg=str(ev.data.get("msg", ""))[:120]))
        elif ev.kind == "ack" and not ev.data.get("ok", True):
            log.info("headset refused a command", extra=kv(err=str(ev.data.get("err", ""))[:120]))

    def show(self, rgb: tuple[int, int, int]) -> None:
        """Send the headset LED ``rgb`` (0..255 each) when it differs from what it shows."""
        if self.client is not None and rgb != self.led_rgb and self.client.connected:
            self.client.set_led(rgb)
            self.led_rgb = rgb
