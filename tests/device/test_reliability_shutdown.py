"""Issue 13, desk agent: a full disk under the spool does not break the clean stop, and the event log
names the seq each event really took. In-process service on a ManualClock, a real mosquitto,
MockFactory LEDs, a real spool on a small tmpfs that fills up."""

from __future__ import annotations

import errno
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from device.clock import ManualClock
from device.config.agent import load_config
from device.errors import ShutdownError
from device.outputs.spool import SpoolError
from device.service import AgentService
from mqtt_schema import Cue, Event, EventKind, Minute, PartStatus, Posture, State
from tests.conftest import Mosquitto
from tests.device.helpers import Capture, two_channel_speech, wait_for

SITE, DESK = "lab", "desk-13"
TMPFS_SIZE = "256k"
"""Room for the boot counter and a fresh spool (db, WAL, 32 KiB shm); the test fills the rest."""


class Records(logging.Handler):
    """The ``device`` loggers' records, with their structured fields (``extra=kv(...)``)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def fields(self, msg: str) -> list[dict[str, Any]]:
        return [dict(getattr(r, "fields", {})) for r in self.records if r.getMessage() == msg]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("device")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on its own ``TMPFS_SIZE`` tmpfs (unmounted afterwards); skipped where mount is not allowed."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the full-disk test needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> int:
    """Write a file into ``folder`` until its filesystem is full; the bytes written."""
    chunk = b"\0" * 4096
    written = 0
    with (folder / "filler").open("wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return written


def make_service(tmp_path: Path, state_dir: Path, url: str,
                 max_rows: int = 100_000) -> tuple[AgentService, MockFactory, ManualClock]:
    speech = two_channel_speech(tmp_path / "speech.wav", seconds=6)
    cfg = load_config(None, {"desk.site": SITE, "desk.desk": DESK, "mqtt.url": url,
                             "audio.source": f"file:{speech}", "audio.loop": True, "headset.port": "none",
                             "agent.state_dir": str(state_dir), "spool.max_rows": max_rows})
    clock = ManualClock()
    factory = MockFactory(pin_class=MockPWMPin)
    return AgentService(cfg, clock, pin_factory=factory), factory, clock


def test_a_full_disk_under_the_spool_still_stops_cleanly(
        tmp_path: Path, small_disk: Path, mosquitto: Mosquitto, records: Records) -> None:
    service, factory, clock = make_service(tmp_path, small_disk / "state", mosquitto.url)
    cap = Capture(mosquitto.port, SITE)
    try:
        service.start()
        publisher, spool, leds = service.publisher, service.spool, service.leds
        assert publisher is not None and spool is not None and leds is not None
        wait_for(lambda: publisher.connected, 10, "publisher connected")
        for _ in range(30):  # three seconds of audio: a partial minute to roll up at the stop
            service.step()
        assert service.rollup.minute_ts is not None
        assert service._event(EventKind.WORN) is not None  # spooled and delivered while there is room
        wait_for(lambda: cap.events("worn"), 10, "the event before the disk fills")
        wait_for(lambda: len(spool) == 0, 10, "the spool emptied")

        assert fill(small_disk) > 0
        # running on: an event that cannot be spooled is logged and the loop goes on coaching
        assert service._event(EventKind.DOFFED) is None
        assert records.fields("event not spooled")[-1]["kind"] == "doffed"
        for _ in range(5):
            service.step()
        # the LEDs are lit at the stop (a cue), so that "off" means something
        leds.show(Cue.VOLUME_HIGH, -10.0, (-32.0, -20.0), True, Posture.SLOUCHED,
                  cues=(Cue.VOLUME_HIGH, Cue.POSTURE))
        pins = [factory.pin(n) for n in (*service.config.leds.rgb, *service.config.leds.bar,
                                         service.config.leds.posture)]
        assert any(p.state for p in pins)

        service.stop()
        with pytest.raises(ShutdownError, match="final minute rollup") as raised:
            service.run()  # the loop ends at once; the shutdown runs every step, then reports the failure
        assert "full" in str(raised.value)
    finally:
        service.shutdown(1.0)  # idempotent: nothing more happens

    try:
        # every step after the failed one ran: offline on the real broker, LEDs off and released, spool closed
        offline = wait_for(lambda: cap.of(State, lambda s: s.status.value == "offline" and s.boot == service.boot),
                           10, "the offline state")
        assert offline[-1].audio is PartStatus.OK
        assert leds.closed and all(not p.state for p in pins)
        assert spool.closed
        failed = records.fields("shutdown step failed")
        assert [f["step"] for f in failed] == ["final minute rollup"], failed
        assert "full" in failed[0]["error"]
        assert records.fields("agent stopped")[-1]["failed_steps"] == 1
        assert not cap.of(Minute)  # the minute that did not fit was not half sent
    finally:
        cap.close()


def test_the_event_log_names_the_seq_the_event_took_though_a_birth_state_came_between(
        tmp_path: Path, mosquitto: Mosquitto, records: Records) -> None:
    service, _, _ = make_service(tmp_path, tmp_path / "state", mosquitto.url)
    cap = Capture(mosquitto.port, SITE)
    try:
        service.start()
        publisher = service.publisher
        assert publisher is not None
        wait_for(lambda: publisher.connected, 10, "publisher connected")
        real_event = publisher.event
        firmware = iter(f"1.0.{i}" for i in range(100))

        def event_then_a_state(kind: EventKind, **fields: Any) -> int:
            """The event, then (as paho's thread may do on a reconnect) a new retained state takes the next
            seq before the caller has logged the event."""
            seq = real_event(kind, **fields)
            publisher.set_state(audio=PartStatus.OK, headset=PartStatus.NONE, headset_id=None,
                                config_hash=service.config.config_hash, firmware=next(firmware))
            return seq

        publisher.event = event_then_a_state  # type: ignore[method-assign]
        for kind in (EventKind.WORN, EventKind.DOFFED, EventKind.WORN):
            service._event(kind)
        wait_for(lambda: len(cap.events()) >= 3 and len(cap.of(State)) >= 4, 10, "3 events and 3 new states")
    finally:
        service.shutdown(5.0)
        cap.close()

    logged = [(f["kind"], f["boot"], f["seq"]) for f in records.fields("event")]
    sent = [(e.kind.value, e.boot, e.seq) for e in cap.of(Event)]
    boot = logged[0][1]
    assert logged == sent == [("worn", boot, logged[0][2]), ("doffed", boot, logged[0][2] + 2),
                              ("worn", boot, logged[0][2] + 4)]
    states = {s.seq for s in cap.of(State)}
    assert {seq + 1 for _, _, seq in logged} <= states  # each state took the seq after its event's


def test_the_seq_of_a_spool_dropped_note_is_not_logged_as_the_event(
        tmp_path: Path, mosquitto: Mosquitto, records: Records) -> None:
    """The spool bound (100 rows) is passed during an outage; the worker's ``spool_dropped`` note takes
    the seq right after the event that evicted a row, before the event is logged."""
    service, _, _ = make_service(tmp_path, tmp_path / "state", mosquitto.url, max_rows=100)
    cap = Capture(mosquitto.port, SITE)
    try:
        service.start()
        publisher = service.publisher
        assert publisher is not None
        wait_for(lambda: publisher.connected, 10, "publisher connected")
        mosquitto.stop()
        wait_for(lambda: not publisher.connected, 10, "publisher disconnected")
        for i in range(100):
            service._event(EventKind.WORN if i % 2 else EventKind.DOFFED)
        real_event = publisher.event

        def event_then_the_note(kind: EventKind, **fields: Any) -> int:
            seq = real_event(kind, **fields)  # the 101st row: the oldest is evicted
            publisher._report_dropped()  # what the worker does next, before the caller logs
            return seq

        publisher.event = event_then_the_note  # type: ignore[method-assign]
        seq = service._event(EventKind.CALIBRATION, message="upright pose set")
        mosquitto.start()
        wait_for(lambda: cap.events("calibration") and cap.events("spool_dropped"), 30, "the event and the note")
    finally:
        service.shutdown(5.0)
        cap.close()
    logged = records.fields("event")[-1]
    assert logged["kind"] == "calibration"
    (event,) = cap.events("calibration")
    (note,) = cap.events("spool_dropped")
    assert logged["seq"] == seq == event.seq and note.seq == seq + 1 and note.count == 1


def test_a_start_that_fails_half_way_closes_what_it_opened(tmp_path: Path, records: Records) -> None:
    state = tmp_path / "state"
    (state / "spool.db").mkdir(parents=True)  # the spool cannot be opened: after the LEDs and the audio
    service, factory, _ = make_service(tmp_path, state, "mqtt://127.0.0.1:1")
    with pytest.raises(SpoolError):
        service.start()
    assert service.leds is not None and service.leds.closed
    assert service.audio is not None and records.fields("agent stopped")
    assert service.shutdown() == []  # and nothing is left to stop
