"""A virtual headset: the firmware's own logic (hs_app) on the fake HAL, behind a pty.

It speaks the headset link (hw/firmware/headset_link.py) exactly as the board does: hello at boot,
imu at the configured stream rate, wear edges, and answers to ping / get_info / led / cal. Time is
headset time = (clock() - start) * time_scale seconds, so a test can replay ten minutes quickly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hw.virtual_headset.firmware import load_firmware
from hw.virtual_headset.pty_port import PtyPort
from hw.virtual_headset.trace import HeadsetTrace

LOOP_PERIOD_S = 0.005  # how often the firmware loop runs in wall time at most


class VirtualHeadset:
    """A headset MCU on a pty at ``link_path``.

    config: firmware config keys (hw/firmware/hs_config.py) over the defaults; mounting: how the
    IMU really sits (default the same as the config's orientation).
    """

    def __init__(
        self,
        trace: HeadsetTrace,
        link_path: str | Path,
        headset_id: str = "e6614103e7452d2f",
        firmware_version: str = "1.0.0",
        time_scale: float = 1.0,
        clock: Callable[[], float] | None = None,
        config: Mapping[str, Any] | None = None,
        mounting: str | None = None,
        has_led: bool = True,
        mp_version: str = "1.27.0",
    ):
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        try:
            self.uid = bytes.fromhex(headset_id)
        except ValueError:
            raise ValueError(f"headset_id must be hex, got {headset_id!r}") from None
        self.trace = trace
        self.port = PtyPort(link_path)
        self.firmware_version = firmware_version
        self.time_scale = time_scale
        self.clock = clock or time.monotonic
        self.mods = load_firmware()
        cfg, errors = self.mods["hs_config"].validate(dict(config or {}))
        if errors:
            raise ValueError("bad virtual headset config: " + "; ".join(errors))
        self.cfg = cfg
        self.mounting = mounting or cfg["orientation"]
        self.has_led = has_led
        self.mp_version = mp_version
        self._t0 = self.clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.app: Any = None
        self.hal: Any = None
        self.boots = 0

    @property
    def link_path(self) -> Path:
        return self.port.link_path

    def headset_time_s(self) -> float:
        """Seconds of trace time since start()."""
        return (self.clock() - self._t0) * self.time_scale

    def _boot(self) -> None:
        fakehal = self.mods["fakehal"]
        self.hal = fakehal.FakeHal(
            self.trace.as_lists(), lambda: self.headset_time_s() * 1000.0, unique_id=self.uid,
            mp_version=self.mp_version, mounting=self.mounting, has_led=self.has_led)
        self.hal.configure(self.cfg)
        self.app = self.mods["hs_app"].App(self.hal, self.cfg, [], fw_version=self.firmware_version)
        self.app.boot()
        self.boots += 1

    def start(self) -> None:
        if self._thread is not None:
            return
        self._t0 = self.clock()
        with self._lock:
            self.port.open()
            self._boot()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"virtual-headset {self.link_path}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen_connects = 0
        while not self._stop.is_set():
            # wait for the desk outside the lock: a loop that re-takes the lock right after a blocking read
            # starves unplug() and replug() (Python's locks are not fair: 3-15 s waits seen in CI)
            self.port.wait_readable(LOOP_PERIOD_S)
            with self._lock:
                if not self.port.is_open or self.app is None:
                    idle = True
                else:
                    idle = False
                    data = self.port.read(0.0)
                    if self.port.connects != seen_connects:
                        seen_connects = self.port.connects
                        self.hal.host_connects += 1
                    if data:
                        self.hal.rx += data
                    self.app.step()
                    self.port.write(self.hal.take_tx())
            if idle:
                self._stop.wait(LOOP_PERIOD_S)

    def unplug(self) -> None:
        """Pull the cable: the port vanishes and the MCU loses power."""
        with self._lock:
            self.port.close()
            self.app = None

    def replug(self) -> None:
        """Plug back in: a new pty at the same link path, the firmware boots again (hello)."""
        with self._lock:
            self.port.open()
            self._boot()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            self.port.close()
            self.app = None

    def set_imu_present(self, present: bool) -> None:
        """Fault injection: the IMU stops (or starts) answering on I2C."""
        with self._lock:
            if self.hal is not None:
                self.hal.i2c.present = present

    @property
    def led(self) -> tuple[int, int, int] | None:
        return None if self.hal is None else self.hal.led

    def __enter__(self) -> VirtualHeadset:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
