"""Calls in the agent service, in process on a ManualClock with a real mosquitto: a desk phone on
gpiozero MockFactory pins (the LEDs' pin factory) rings, the test lifts the handset, the agent's
speech file starts a chosen delay after the pick-up, and the ``call`` summary arrives on the broker
with the rings and the greeting latency; the live call state in metrics along the way. A CTI bridge
on the ``cti`` topic (``calls.source = "mqtt"``) drives a second call through the agent's own MQTT
connection."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import soundfile as sf
from gpiozero.pins.mock import MockFactory, MockPWMPin
from paho.mqtt.enums import CallbackAPIVersion

from device.calls import GpioCallSource, PhonePins
from device.calls.state import CallPhase
from device.clock import ManualClock
from device.config.agent import load_config
from device.service import AgentService
from mqtt_schema import Call, CallStatus, Cti, CtiPhase, DeskKind, DeskTopic, Metrics, encode
from tests.conftest import Mosquitto
from tests.device.helpers import Capture, two_channel_speech, wait_for

SITE, DESK = "lab", "desk-call"
PINS = PhonePins.default()


def speech_after(path: Path, silence_s: float, tmp: Path) -> Path:
    """Two-channel own speech (the demo clips) after ``silence_s`` of quiet room noise."""
    speech, sr = sf.read(two_channel_speech(tmp / "speech.wav", seconds=12), dtype="float32")
    rng = np.random.default_rng(3)
    quiet = rng.normal(0, 1e-3, (int(silence_s * sr), 2)).astype(np.float32)
    sf.write(path, np.concatenate([quiet, speech]), sr, subtype="PCM_16")
    return path


T = TypeVar("T")


def stepping(service: AgentService, check: Callable[[], T]) -> Callable[[], T]:
    """``check`` after one step of the service loop: a probe for ``wait_for``."""
    def probe() -> T:
        service.step()
        return check()
    return probe


def run_until(service: AgentService, pred: Callable[[], bool], max_steps: int = 20_000, what: str = "condition",
              tick: Callable[[], None] | None = None) -> None:
    for _ in range(max_steps):
        service.step()
        if tick is not None:
            tick()
        if pred():
            return
    raise AssertionError(f"{what} not reached in {max_steps} loop passes")


def until_ms(service: AgentService, clock: ManualClock, t_ms: int, tick: Callable[[], None]) -> None:
    run_until(service, lambda: clock.now_ms() >= t_ms, what=f"clock at {t_ms}", tick=tick)


@pytest.mark.needs("mosquitto")
def test_desk_phone_call_summary_has_the_rings_and_the_greeting_latency(tmp_path: Path, mosquitto: Mosquitto) -> None:
    ring_on_s, ring_off_s, rings, greet_after_s = 1.0, 4.0, 3, 1.5
    answer_after_s = 1.0 + (rings - 1) * (ring_on_s + ring_off_s) + 0.5  # lifted 0.5 s into the 3rd ring
    audio = speech_after(tmp_path / "call.wav", answer_after_s + greet_after_s, tmp_path)
    cfg = load_config(None, {"desk.site": SITE, "desk.desk": DESK, "mqtt.url": mosquitto.url,
                             "audio.source": f"file:{audio}", "headset.port": "none",
                             "agent.state_dir": str(tmp_path / "state"), "calls.source": "gpio"})
    assert cfg.calls.cadence.on_s == ring_on_s and cfg.calls.norms.max_rings == 3
    clock = ManualClock()
    factory = MockFactory(pin_class=MockPWMPin)
    ring_pin, hook_pin = factory.pin(PINS.ring_detect), factory.pin(PINS.off_hook)
    ring_pin.drive_high()  # idle line: both inputs pulled up (active low)
    hook_pin.drive_high()
    cap = Capture(mosquitto.port, SITE)
    service = AgentService(cfg, clock, pin_factory=factory)
    try:
        service.start()
        assert isinstance(service.calls, GpioCallSource)
        tick = service.calls.tick  # time-driven decisions on the test's clock (its own thread ticks on wall time)
        publisher = service.publisher
        assert publisher is not None
        wait_for(lambda: publisher.connected, 10, "publisher connected")
        t0 = clock.now_ms()  # the file's audio starts here
        first_ring = t0
        for i in range(rings):
            start = t0 + round(i * (ring_on_s + ring_off_s) * 1000)
            if i:
                until_ms(service, clock, start, tick)
            ring_pin.drive_low()
            if i < rings - 1:
                until_ms(service, clock, start + round(ring_on_s * 1000), tick)
                ring_pin.drive_high()
        until_ms(service, clock, t0 + round(answer_after_s * 1000), tick)
        assert service.calls.current().phase is CallPhase.RINGING
        assert service._call_status() is CallStatus.RINGING
        hook_pin.drive_low()  # picked up during the 3rd ring
        ring_pin.drive_high()
        t_answer = clock.now_ms()
        run_until(service, lambda: service.calls is not None and service.calls.current().phase is CallPhase.ESTABLISHED,
                  what="established", tick=tick)
        until_ms(service, clock, t_answer + 6000, tick)  # the greeting and a few seconds of talk
        wait_for(lambda: cap.of(Metrics, lambda m: m.call is CallStatus.ESTABLISHED), 10, "metrics: established")
        hook_pin.drive_high()
        t_hangup = clock.now_ms()
        run_until(service, lambda: service.status.calls_sent == 1, what="call summary", tick=tick)
        calls = wait_for(lambda: cap.of(Call), 10, "call summary on the broker")
        wait_for(stepping(service, lambda: cap.of(Metrics, lambda m: m.call is CallStatus.IDLE and m.ts > t_hangup)),
                 10, "metrics: idle again")
    finally:
        service.shutdown(5)
        cap.close()
    assert len(calls) == 1
    c = calls[0]
    assert c.source == "gpio" and c.direction is not None and c.direction.value == "incoming"
    assert c.rings == rings and c.rings_counted and c.answered and not c.abandoned
    assert c.answer_ok is True and c.max_rings == 3
    assert c.ring_s == pytest.approx((t_answer - first_ring) / 1000, abs=0.001)
    assert c.ring_s == pytest.approx(answer_after_s, abs=0.06)
    # the speech file starts greet_after_s after the pick-up; the VAD needs a few hops to confirm it
    assert c.greeting_latency_s is not None and greet_after_s <= c.greeting_latency_s <= greet_after_s + 0.3, c
    assert c.greeting_ok is True and c.greet_within_s == 2.0
    assert c.talk_s == pytest.approx((t_hangup - t_answer) / 1000, abs=0.06)
    assert c.own_talk_s is not None and 2.0 < c.own_talk_s < c.talk_s
    assert c.start_ts == first_ring and c.end_ts == t_hangup
    assert c.silent_call is None  # the far end is not measured
    assert c.level_dbov is not None and -40 < c.level_dbov < -10 and c.rate_spm is not None
    assert c.intonation_st is not None and c.intonation_st > 2.5 and c.monotone_share == 0.0
    assert len(c.call_id) == 16 and "gpio" not in c.call_id  # hashed


@pytest.mark.needs("mosquitto")
def test_a_cti_bridge_drives_the_call_state_over_mqtt(tmp_path: Path, mosquitto: Mosquitto) -> None:
    speech_at_s = 8.0
    audio = speech_after(tmp_path / "call.wav", speech_at_s, tmp_path)
    cfg = load_config(None, {"desk.site": SITE, "desk.desk": DESK, "mqtt.url": mosquitto.url,
                             "audio.source": f"file:{audio}", "headset.port": "none",
                             "agent.state_dir": str(tmp_path / "state"), "calls.source": "mqtt"})
    clock = ManualClock()
    bridge = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cti-bridge", protocol=mqtt.MQTTv311)
    bridge.connect("127.0.0.1", mosquitto.port)
    bridge.loop_start()
    topic = str(DeskTopic(SITE, DESK, DeskKind.CTI))
    service = AgentService(cfg, clock, pin_factory=MockFactory(pin_class=MockPWMPin))

    def send(phase: CtiPhase, **kw: object) -> None:
        msg = Cti(site=SITE, desk=DESK, ts=clock.now_ms(), call_id="pbx.4711@site1", phase=phase, **kw)  # type: ignore[arg-type]
        bridge.publish(topic, encode(msg), qos=1).wait_for_publish(5)

    cap: Capture | None = None
    try:
        service.start()
        t0 = clock.now_ms()  # the file's audio starts here (the clock moves only when the loop sleeps)
        publisher, call_source = service.publisher, service.calls
        assert publisher is not None and call_source is not None
        wait_for(lambda: publisher.connected, 10, "publisher connected")
        wait_for(stepping(service, lambda: service.calls is not None and service.calls.connected), 10, "cti source up")
        # a bridge's bad payload is logged, counted and dropped (before the capture, which refuses bad payloads)
        bridge.publish(topic, b'{"type": "cti", "phase": "ringing"}', qos=1).wait_for_publish(5)
        wait_for(stepping(service, lambda: publisher.cti_rejected), 10, "bad CTI payload refused")
        assert service._call_status() is CallStatus.IDLE
        cap = Capture(mosquitto.port, SITE)
        send(CtiPhase.RINGING, direction="incoming", rings=2)
        wait_for(stepping(service, lambda: service._call_status() is CallStatus.RINGING), 10, "ringing")
        run_until(service, lambda: clock.now_ms() >= call_source.current().at_ms + 1000, what="1 s of ringing")
        send(CtiPhase.ESTABLISHED)
        wait_for(stepping(service, lambda: service._call_status() is CallStatus.ESTABLISHED), 10, "established")
        t_est = call_source.current().established_ms
        assert t_est is not None
        run_until(service, lambda: clock.now_ms() >= t0 + (speech_at_s + 3) * 1000, what="3 s of talk")
        send(CtiPhase.CLOSED, reason="hangup")
        calls = wait_for(stepping(service, lambda: cap is not None and cap.of(Call)), 10, "call summary")
    finally:
        service.shutdown(5)
        bridge.loop_stop()
        bridge.disconnect()
        if cap is not None:
            cap.close()
    c = calls[0]
    assert c.source == "mqtt" and c.rings == 2 and c.rings_counted and c.answer_ok is True
    # the bridge's messages are stamped on arrival with the desk's clock; the speech starts at 8 s of the file
    expected = (t0 + speech_at_s * 1000 - t_est) / 1000
    assert 0.5 < expected < speech_at_s
    assert c.greeting_latency_s is not None and expected <= c.greeting_latency_s <= expected + 0.3, (c, expected)
    assert c.greeting_ok is (c.greeting_latency_s <= 2.0)
    assert publisher.cti_rejected == {"missing-field": 1}
    assert c.answered and c.direction is not None and c.direction.value == "incoming"
    assert c.talk_s is not None and c.talk_s >= 3.0 and c.level_dbov is not None
