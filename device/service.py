"""``headset-agent run``: the desk agent service that wires audio, headset link, DSP, cues, LEDs and MQTT.

One loop on the injected clock (:mod:`device.clock`) is a pipeline, one pass per audio block
(``audio.block_ms``; :meth:`AgentService.step`): read → analyse → posture → cues → LEDs → publish.

1. read audio (a paced file or a live device; on failure: ``audio: error``, AUDIO_ERROR, retry with
   backoff 0.5 .. 8 s on the clock, AUDIO_OK when it reads again);
2. analyse: unless the headset is known to be off, feed the streaming analyser (the DSP pauses while
   doffed);
3. posture from the latest IMU frame against the stored upright pose;
4. cues: the cue policy for every measurement, an event for every cue change, the minute rollup;
5. LEDs: the desk's LEDs (and the headset LED);
6. publish: the summaries of closed calls, every ``agent.metrics_interval_s`` a Metrics snapshot
   (every minute a Minute rollup, spooled as it closes in step 4);
7. before analysing: link events (connected, disconnected, worn, doffed), remote configs and button
   presses, all handled here, on the loop's thread, so that a config swap is atomic for the loop;
8. call state (``calls.source``: none, gpio, baresip, mqtt; :mod:`device.calls`): every transition and
   every measurement's (time, speaking) go to a :class:`~device.calls.measures.CallMeter`; when a call
   has closed and the speech stream has caught up with the hang-up, its ``call`` summary (with the
   call's level, rate and intonation, :mod:`device.outputs.call_summary`) is spooled like an event. The live
   call state goes into metrics. With ``calls.far_end_dir`` (baresip), each closed call's far-end
   recording is measured in the background (:mod:`device.calls.far_end`) and its summary waits for it;
9. with ``intonation.enabled``, the analyser measures the F0 spread of own speech; the monotone cue
   (:class:`device.outputs.cues.MonotoneCue`) follows its decision on its own LED, and is published in the
   ``monotone`` fields of metrics and minute rollups (not as a cue event: see :mod:`device.outputs.cues`).

A remote config is handled by :mod:`device.config.remote`: validated with the file's code
(:func:`device.config.agent.apply_remote`), every new object (cue target, analyser for a new calibration)
built before anything is swapped; ``calibrate_posture: true`` takes the current pose once per config
``ts`` (remembered in the state folder, so a retained config does not recalibrate on every restart).

The parts that hold resources (LEDs, spool, publisher, audio source, headset link, call source) are
opened by :meth:`AgentService.start` and are None before; the pure logic (cue policy, posture tracker,
rollup, call meter) is built with the service.

``stop()`` (SIGTERM/SIGINT in the run command) ends the loop; shutdown spools the last partial minute,
flushes the spool (while connected), publishes ``offline`` and turns the LEDs off. Each shutdown step
runs whatever the ones before did (a full disk, a lost broker): a failed step is logged with its name
and the rest go on, and ``run()`` then raises :class:`ShutdownError` (exit code 1). With no broker the
stop takes well under a second: nothing waits for a connect, the spool keeps unsent rows.

A spool that cannot store an event or a rollup while running (a full disk) is logged as an error and
the loop goes on coaching; every event and minute rollup that was spooled is logged (INFO, ``event``
or ``minute``) with its boot and seq: the record of what is durable that the fault matrix checks.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from device.boot_counter import next_boot
from device.calls import CallMeter, CallPhase, CallSource, FarEndMeter, MqttCallSource
from device.calls import open_source as open_call_source
from device.clock import Clock
from device.config.agent import AgentConfig, IntonationSettings
from device.config.remote import RemoteConfigs, Swap, misaddressed, prepare, target_level_dbov
from device.dsp import HeadsetCalibration, Measurement, StreamingAnalyzer
from device.errors import AgentError, ConfigError, ShutdownError
from device.inputs.audio_input import AudioInput
from device.inputs.audio_sources import AudioSource
from device.inputs.headset_client import HeadsetClient
from device.inputs.headset_state import HeadsetState
from device.inputs.posture import PostureError, PostureTracker
from device.inputs.posture_store import PostureStoreError, load_pose, save_pose
from device.logs import kv
from device.outputs.call_summary import CallAudio, call_message_fields
from device.outputs.cues import CueChange, CuePolicy, MonotoneCue
from device.outputs.leds import CUE_COLOURS, LedPanel
from device.outputs.publisher import DeskPublisher
from device.outputs.rollup import MinuteRollup
from device.outputs.spool import Spool, SpoolError
from mqtt_schema import (
    SCHEMA_MINOR,
    SCHEMA_VERSION,
    CallStatus,
    Config,
    Cue,
    EventKind,
    PartStatus,
    Posture,
    SchemaError,
    Versions,
)

log = logging.getLogger("device.agent")

CLOCK_STEP_BACK_MS = 2000
"""A clock that reads this much less than at the previous loop pass was stepped back."""
HEADSET_LED_FULL = 64
"""The headset LED's level (0..255) for a full-intensity cue colour: a quarter, it sits next to an eye."""
POSE_CHECK_S = 1.0
"""Wall seconds (``monotonic``) between two looks at the stored pose file's mtime (a calibration by
``headset-agent calibrate-posture`` is adopted within this long)."""


def agent_version() -> str:
    try:
        return importlib.metadata.version("headset-coach")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def headset_rgb(top: Cue | None) -> tuple[int, int, int]:
    """The headset LED's colour (0..255 each) for the top cue; off for None."""
    r, g, b = (0.0, 0.0, 0.0) if top is None else CUE_COLOURS[top]
    return int(round(r * HEADSET_LED_FULL)), int(round(g * HEADSET_LED_FULL)), int(round(b * HEADSET_LED_FULL))


@dataclass
class _Interval:
    """What the metrics snapshot sums or keeps over one metrics interval."""

    speech_s: float = 0.0
    clipping: float = 0.0
    last: Measurement | None = None


@dataclass
class AgentStatus:
    """Counters and states of a running service (for tests, logs and the bench)."""

    audio: PartStatus = PartStatus.NONE
    headset: PartStatus = PartStatus.NONE
    headset_id: str | None = None
    firmware: str | None = None
    posture: Posture = Posture.UNKNOWN
    worn: bool | None = None
    blocks: int = 0
    measurements: int = 0
    metrics_sent: int = 0
    events_sent: int = 0
    calls_sent: int = 0
    monotone_changes: list[tuple[int, bool]] = field(default_factory=list)
    """(clock ms, on) of every monotone cue change, newest last (bounded)."""
    cue_changes: list[tuple[int, str, bool]] = field(default_factory=list)
    """(clock ms, cue, on) of every cue change, newest last (bounded)."""


class AgentService:
    """The desk agent. ``run()`` blocks until :meth:`stop`; ``start``/``step``/``shutdown`` for tests."""

    def __init__(self, config: AgentConfig, clock: Clock, *, pin_factory: Any = None,
                 client_id: str | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.pin_factory = pin_factory
        self.client_id = client_id
        self.monotonic = monotonic
        self.status = AgentStatus()
        self._stop = threading.Event()
        self._inbox: queue.Queue[tuple[str, Config | str]] = queue.Queue()
        """("config", a remote Config) from the publisher, ("calibrate", source) from the button."""
        self.boot = 0
        # opened by start()
        self.spool: Spool | None = None
        self.publisher: DeskPublisher | None = None
        self.leds: LedPanel | None = None
        self.headset_state = HeadsetState(config.headset.port is not None, monotonic)
        self.audio_input = AudioInput(config.audio, clock, speed=self._speed, stop=self._stop,
                                      on_open=self._audio_opened, on_fail=self._audio_failed)
        self.analyzer: StreamingAnalyzer | None = None
        """Built for each audio source that opens (its rate and channels), and for a new calibration."""
        self.calls: CallSource | None = None
        # the logic, built here
        self.cues = CuePolicy(config.cues, target_level_dbov(config))
        self.rollup = MinuteRollup()
        self.remote = RemoteConfigs(config.agent.state_dir)
        self.tracker = PostureTracker(config.posture)
        self.call_meter = CallMeter(cadence=config.calls.cadence, norms=config.calls.norms)
        self.call_audio = CallAudio(config.intonation.params)
        self.far_end = (FarEndMeter(Path(config.calls.far_end_dir), keep=config.calls.keep_far_end_audio, clock=clock)
                        if config.calls.far_end_dir else None)
        self.monotone = MonotoneCue(config.cues.min_on_s)
        self._audio_error = ""
        self._interval = _Interval()
        self._next_metrics_ms = 0
        self._last_tick_ms = 0
        """Clock time of the previous pass (a clock that steps back from it is noticed)."""
        self._last_rollup_ms = 0
        self._last_cue_s: float | None = None
        self._pose_mtime: float | None = None
        self._next_pose_check_s = -math.inf
        """``monotonic`` time (s) of the next look at the pose file's mtime."""
        self._started = False

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self.config.agent.state_dir

    @property
    def audio(self) -> AudioSource | None:
        """The open audio source (None before start, and while it is failing)."""
        return self.audio_input.source

    @property
    def headset(self) -> HeadsetClient | None:
        """The headset link (None without ``headset.port``, and before start)."""
        return self.headset_state.client

    def stop(self) -> None:
        """Ask the loop to end (thread- and signal-safe)."""
        self._stop.set()

    def request_posture_calibration(self, source: str = "button") -> None:
        self._inbox.put(("calibrate", source))

    def _capabilities(self) -> list[str]:
        caps = ["dual-mic" if (self.audio is None or self.audio.channels >= 2) else "mono-mic"]
        if self.config.headset.port is not None:
            caps += ["imu", "wear"]
            if self.config.headset.forward_led:
                caps.append("headset-led")
        caps.append("leds")
        if self.config.leds.button is not None:
            caps.append("button")
        return caps

    def start(self) -> AgentService:
        """Open everything; the broker connection is made in the background (the spool holds events).

        When a part cannot be opened, what was opened is closed again before the error propagates.
        """
        try:
            return self._start()
        except BaseException:
            self._started = True  # so that shutdown closes what was opened
            self.shutdown(timeout_s=1.0)
            raise

    def _start(self) -> AgentService:
        cfg = self.config
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a regular file in the way (made since the config was read), no permission
            raise ConfigError(f"agent.state_dir: cannot create the folder {self.state_dir}: {exc.strerror or exc}",
                              field="agent.state_dir") from None
        self.boot = next_boot(self.state_dir)
        try:
            self.tracker.pose = load_pose(self.state_dir)
        except PostureStoreError as exc:
            log.error("stored upright pose unusable", extra=kv(error=str(exc)))
        self._pose_mtime = self._pose_file_mtime()
        self.leds = LedPanel(cfg.leds, pin_factory=self.pin_factory)
        button = self.leds.button()
        if button is not None:
            button.when_held = lambda: self.request_posture_calibration("button")
        self.audio_input.open(first=True)
        self.spool = Spool(self.state_dir / "spool.db", cfg.spool.max_rows)
        # the call source (not started yet); an mqtt one is fed by the publisher's cti subscription
        self.calls = open_call_source(cfg.calls.source, clock=self.clock, cadence=cfg.calls.cadence,
                                      pin_factory=self.pin_factory, site=cfg.desk.site, desk=cfg.desk.desk)
        on_cti = self.calls.receive if isinstance(self.calls, MqttCallSource) else None
        self.publisher = DeskPublisher(
            site=cfg.desk.site, desk=cfg.desk.desk, settings=cfg.mqtt, spool=self.spool, boot=self.boot,
            now_ms=self.clock.now_ms,
            versions=Versions(agent=agent_version(), schema=f"{SCHEMA_VERSION}.{SCHEMA_MINOR}"),
            capabilities=self._capabilities(), on_config=lambda c: self._inbox.put(("config", c)),
            client_id=self.client_id or f"headset-agent-{cfg.desk.site}-{cfg.desk.desk}", on_cti=on_cti,
        )
        self.publisher.set_state(audio=self.status.audio, headset=self._headset_status(),
                                 headset_id=None, config_hash=cfg.config_hash, firmware=None)
        self.publisher.start()
        if self.status.audio is PartStatus.ERROR:  # failed before the publisher existed
            self._event(EventKind.AUDIO_ERROR, message=self._audio_error[:200])
        if cfg.headset.port is not None:
            self.headset_state.client = HeadsetClient(cfg.headset.port, cfg.headset.baud,
                                                      monotonic=self.monotonic).start()
        self.calls.start()
        now = self.clock.now_ms()
        self._next_metrics_ms = now + int(cfg.agent.metrics_interval_s * 1000)
        self._last_tick_ms = now
        self._started = True
        log.info("agent started", extra=kv(site=cfg.desk.site, desk=cfg.desk.desk, boot=self.boot,
                                           audio=cfg.audio.source, headset=cfg.headset.port,
                                           calls=cfg.calls.source, intonation=cfg.intonation.enabled,
                                           config_hash=cfg.config_hash, time_scale=self.clock.scale))
        return self

    def run(self) -> None:
        """Start, loop until stop(), shut down; :class:`ShutdownError` when a shutdown step failed."""
        if not self._started:
            self.start()
        try:
            while not self._stop.is_set():
                self.step()
        finally:
            failed = self.shutdown()
        if failed:
            raise ShutdownError(f"stopped, but not cleanly: {'; '.join(failed)}")

    def shutdown(self, timeout_s: float = 10.0) -> list[str]:
        """Stop everything, each step whatever the ones before did (idempotent).

        Steps, in order: the headset link, the call source, the audio source, the last partial minute
        rollup and the summaries of calls that closed but were not yet published into the spool (a
        call still active is not summarised), a spool flush (only while connected, up to ``timeout_s`` / 2 s), the publisher (the
        ``offline`` state while connected, disconnect; up to ``timeout_s`` / 2 s, about 0.5 s when
        not connected), the LEDs off, the spool closed. A step that raises is logged (``shutdown step
        failed`` with ``step`` and ``error``) and the rest go on. Returns "step: error" of each failed
        step, [] for a clean stop; a broker that cannot be reached is not a failure (the spool keeps
        the unsent rows for the next start).
        """
        if not self._started:
            return []
        self._started = False
        log.info("agent stopping", extra=kv(boot=self.boot))
        failed: list[str] = []

        def step(name: str, action: Callable[[], object]) -> None:
            try:
                action()
            except Exception as exc:  # every later step must run whatever this one did
                error = str(exc) or type(exc).__name__
                log.error("shutdown step failed", exc_info=not isinstance(exc, AgentError),
                          extra=kv(step=name, error=error, boot=self.boot))
                failed.append(f"{name}: {error}")

        if self.headset is not None:
            step("headset link", self.headset.stop)
        if self.calls is not None:
            step("call source", self.calls.stop)
        if self.audio is not None:
            step("audio", self.audio_input.close)
        if (publisher := self.publisher) is not None:
            step("final minute rollup", self._spool_last_minute)
            step("last call summaries", lambda: self._finish_calls(self.clock.now_ms() + self.call_meter.lag_ms,
                                                                   final=True))
            step("spool flush", lambda: self._flush_spool(timeout_s / 2))
            step("publisher stop", lambda: publisher.stop(timeout_s / 2))
        if self.leds is not None:
            step("leds", self.leds.close)
        if self.spool is not None:
            step("spool close", self.spool.close)
        log.info("agent stopped", extra=kv(boot=self.boot, failed_steps=len(failed)))
        return failed

    def _spool_last_minute(self) -> None:
        """Spool the partial minute being accumulated (raises :class:`SpoolError`: a shutdown step)."""
        minute = self.rollup.flush(self.clock.now_ms())
        if minute is not None:
            seq = self._pub.minute(**minute)
            log.info("minute", extra=kv(boot=self.boot, seq=seq, minute_ts=minute.get("minute_ts")))

    def _flush_spool(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` s for the spool to be delivered, only while connected."""
        if not self._pub.connected:
            log.info("broker not connected: unsent rows stay in the spool for the next start",
                     extra=kv(rows=len(self.spool) if self.spool is not None else None))
            return
        if not self._pub.flush(timeout_s):
            log.warning("spool not empty at stop: the rest is sent at the next start",
                        extra=kv(rows=len(self.spool) if self.spool is not None else None, waited_s=timeout_s))

    # --- audio ------------------------------------------------------------------------------------

    def _speed(self) -> float:
        s = self.config.audio.speed
        return s if s is not None else self.clock.scale

    def _audio_opened(self, src: AudioSource, first: bool) -> None:
        """A source opened: an analyser for it (its rate and channels); ``audio_ok`` after a failure."""
        self.analyzer = self._new_analyzer(self.config.calibration, self.config.intonation)
        was = self.status.audio
        self.status.audio = PartStatus.OK
        if not first and was is PartStatus.ERROR:
            log.info("audio back", extra=kv(source=src.description))
            self._event(EventKind.AUDIO_OK, message=src.description[:200])
            self._update_state()

    def _new_analyzer(self, calibration: HeadsetCalibration | None,
                      intonation: IntonationSettings) -> StreamingAnalyzer:
        """A streaming analyser for the open audio source (its rate; boom and ear cup at most)."""
        assert self.audio is not None
        return StreamingAnalyzer(sample_rate_hz=self.audio.sample_rate_hz, channels=min(2, self.audio.channels),
                                 calibration=calibration, emit_interval_s=0.1,
                                 intonation=intonation.params if intonation.enabled else False)

    def _audio_failed(self, reason: str) -> None:
        """The source failed to open or read: the first failure in a row is logged and sent as an event."""
        if self.status.audio is not PartStatus.ERROR:
            self.status.audio = PartStatus.ERROR
            self._audio_error = reason
            log.error("audio failed", extra=kv(error=reason))
            if self.publisher is not None:
                self._event(EventKind.AUDIO_ERROR, message=reason[:200])
                self._update_state()

    # --- the loop ---------------------------------------------------------------------------------

    def step(self) -> None:
        """One pass of the pipeline: read → analyse → posture → cues → LEDs → publish.

        A block of audio (or an idle wait) is read first; what arrived since the last pass (remote
        configs and posture requests, headset link events, call transitions) is handled before the
        block is analysed.
        """
        block = self.audio_input.read()
        now_ms = self.clock.now_ms()
        if now_ms < self._last_tick_ms - CLOCK_STEP_BACK_MS:
            self._clock_stepped_back(now_ms)
        self._handle_inbox()
        self.headset_state.handle_events(self.status, self._event, self._update_state)
        self._handle_calls()
        worn, pitch, roll = self.headset_state.now(now_ms)
        measurements = self._analyze(block, worn)
        posture = self._posture(now_ms, pitch, worn)
        self._apply_measurements(now_ms, measurements, posture, worn)
        self._show(posture)
        self._publish(now_ms, posture, worn, pitch, roll)
        self._last_tick_ms = now_ms

    def _analyze(self, block: npt.NDArray[np.float32] | None, worn: bool | None) -> list[Measurement]:
        """The analyser's measurements for ``block``; none while the headset is known to be off."""
        if block is None:
            return []
        self.status.blocks += 1
        if block.shape[1] > 2:  # more mics than boom and ear cup: the first two are those
            block = block[:, :2]
        if worn is False:
            return []
        assert self.analyzer is not None  # built when the audio source opened
        return self.analyzer.feed(block)

    def _posture(self, now_ms: int, pitch: float | None, worn: bool | None) -> Posture:
        """The posture from the latest head pitch against the upright pose."""
        posture = self.tracker.update(now_ms / 1000.0, pitch, worn)
        self.status.posture, self.status.worn = posture, worn
        return posture

    def _publish(self, now_ms: int, posture: Posture, worn: bool | None, pitch: float | None,
                 roll: float | None) -> None:
        """The summaries of the calls that closed, and the metrics snapshot when one is due."""
        self._finish_calls(now_ms)
        if now_ms >= self._next_metrics_ms:
            self._publish_metrics(now_ms, posture, worn, pitch, roll)

    def _clock_stepped_back(self, now_ms: int) -> None:
        """The clock went back (an NTP step, a wrong RTC corrected): re-arm what waits for a clock time.

        Without this, the metrics snapshot and the audio retry would wait until the clock is back where it
        was (an hour without metrics for a step of an hour). Cue and rollup time stay monotonic (they hold
        at the last time until the clock passes it again), so minute rollups neither repeat a minute_ts
        nor leave a gap within the boot.
        """
        back_s = round((self._last_tick_ms - now_ms) / 1000, 3)
        log.warning("the clock stepped back", extra=kv(boot=self.boot, by_s=back_s))
        self._next_metrics_ms = min(self._next_metrics_ms, now_ms + int(self.config.agent.metrics_interval_s * 1000))
        self.audio_input.clock_stepped_back(now_ms)

    def _measurement_ms(self, now_ms: int, t_s: float) -> int:
        """Clock time of a measurement at stream time ``t_s`` (the block ended at ``now_ms``)."""
        assert self.analyzer is not None  # it made the measurement
        rate = self._speed() / self.clock.scale
        return int(now_ms - max(0.0, self.analyzer.stream_s - t_s) / rate * 1000.0)

    def _apply_measurements(self, now_ms: int, measurements: list[Measurement], posture: Posture,
                            worn: bool | None) -> None:
        """Cues: each measurement (or, without one, the pass itself) through the cue policy, the
        monotone cue, the call meter and the minute rollup, on a cue time that never goes back."""
        items: list[tuple[int, Measurement | None]] = [(self._measurement_ms(now_ms, m.t_s), m) for m in measurements]
        if not items:
            items = [(now_ms, None)]
        for t_ms, m in items:
            t_s = t_ms / 1000.0
            if self._last_cue_s is not None and t_s < self._last_cue_s:
                t_s = self._last_cue_s
            self._last_cue_s = t_s
            for change in self.cues.update(t_s, m, posture, worn):
                self._cue_event(change)
            t_ms = int(t_s * 1000)
            dt_s = max(0.0, (t_ms - self._last_rollup_ms) / 1000.0) if self._last_rollup_ms else 0.0
            self._last_rollup_ms = max(self._last_rollup_ms, t_ms)
            if m is not None:
                self.status.measurements += 1
                self._interval.speech_s += m.speech_s
                self._interval.clipping = max(self._interval.clipping, m.clipping)
                self._interval.last = m
                self._monotone_update(t_ms, m.monotone, worn)
                self.call_meter.speech(t_ms, bool(m.speaking))
                self.call_audio.add(t_ms, m, self.monotone.on)
            minute = self.rollup.add(t_ms, dt_s, m, self.cues.active, worn, posture, self.monotone.on)
            if minute is not None:
                self._minute(minute)

    def _monotone_update(self, t_ms: int, monotone: bool | None, worn: bool | None) -> None:
        changed = self.monotone.update(t_ms / 1000.0, monotone, worn)
        if changed is not None:
            log.info("monotone cue", extra=kv(on=changed, boot=self.boot))
            self.status.monotone_changes.append((t_ms, changed))
            del self.status.monotone_changes[:-1000]

    # --- calls --------------------------------------------------------------------------------------

    def _handle_calls(self) -> None:
        """Call transitions since the last pass, to the meter and the per-call audio."""
        if self.calls is None:
            return
        self.calls.poll(self._pub.cti_ready)
        for state in self.calls.events():
            self.call_meter.call(state)
            self.call_audio.call(state)
            if self.far_end is not None and state.phase is CallPhase.CLOSED and state.call_id is not None \
                    and self.far_end.submit(state):
                self.call_meter.expect_far_end(state.call_id)
        for far in self.far_end.results() if self.far_end is not None else []:
            self.call_meter.far_end_call(far.call_id, far.samples)

    def _finish_calls(self, now_ms: int, final: bool = False) -> None:
        """Publish the summary of every call whose speech (and far end) has caught up with its hang-up;
        ``final``: every closed call (shutting down)."""
        if final and self.far_end is not None:
            for far in self.far_end.drain(5.0):
                self.call_meter.far_end_call(far.call_id, far.samples)
        for measures in self.call_meter.finished(now_ms, final=final):
            fields = call_message_fields(measures, self.call_audio.take(measures.call_id))
            try:
                seq = self._pub.call(**fields)
            except (SpoolError, SchemaError) as exc:
                log.error("call summary not spooled", extra=kv(boot=self.boot, error=str(exc)))
                continue
            self.status.calls_sent += 1
            log.info("call", extra=kv(boot=self.boot, seq=seq, call_id=fields["call_id"], source=fields["source"],
                                      rings=fields["rings"], greeting_latency_s=fields["greeting_latency_s"],
                                      answer_ok=fields["answer_ok"], greeting_ok=fields["greeting_ok"],
                                      silent_call=fields["silent_call"]))

    def _call_status(self) -> CallStatus | None:
        """The live call state for metrics; None without a call source."""
        if self.calls is None or self.calls.name == "none":
            return None
        phase = self.calls.current().phase
        if phase is CallPhase.RINGING:
            return CallStatus.RINGING
        if phase is CallPhase.ESTABLISHED:
            return CallStatus.ESTABLISHED
        return CallStatus.IDLE

    def _cue_event(self, change: CueChange) -> None:
        value = _finite(change.value)
        kind = EventKind.CUE_ON if change.on else EventKind.CUE_OFF
        self._event(kind, cue=change.cue, value=value)
        self.status.cue_changes.append((int(change.at_s * 1000), change.cue.value, change.on))
        del self.status.cue_changes[:-1000]

    def _show(self, posture: Posture) -> None:
        """LEDs: the top cue's colour, the level bar, the posture and monotone lights; the headset LED."""
        assert self.leds is not None  # opened by start()
        last = self._interval.last
        level = last.level_dbov if last is not None else None
        speaking = bool(last.speaking) if last is not None else False
        active = self.cues.active
        top = active[0] if active else None  # the policy's top cue, without building active again
        self.leds.show(top, level, self.cues.band(), speaking, posture, cues=active, monotone=self.monotone.on)
        if self.config.headset.forward_led:
            self.headset_state.show(headset_rgb(top))

    # --- headset ----------------------------------------------------------------------------------

    def _headset_status(self) -> PartStatus:
        return self.headset_state.part_status()

    # --- remote config, calibration ---------------------------------------------------------------

    def _handle_inbox(self) -> None:
        self._reload_pose_if_changed()
        while not self._inbox.empty():  # mostly empty: no exception to raise and catch on every pass
            try:
                what, item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if what == "config" and isinstance(item, Config):
                self._apply_config(item)
            elif what == "calibrate":
                self._calibrate_posture(str(item))

    def _pose_file_mtime(self) -> float | None:
        try:
            return os.stat(self.state_dir / "posture.json").st_mtime
        except OSError:
            return None

    def _reload_pose_if_changed(self) -> None:
        """``headset-agent calibrate-posture`` writes the pose while the agent runs: adopt it (the file is
        looked at once per ``POSE_CHECK_S`` wall seconds, not on every pass)."""
        now_s = self.monotonic()
        if now_s < self._next_pose_check_s:
            return
        self._next_pose_check_s = now_s + POSE_CHECK_S
        mtime = self._pose_file_mtime()
        if mtime == self._pose_mtime:
            return
        self._pose_mtime = mtime
        try:
            pose = load_pose(self.state_dir)
        except PostureStoreError as exc:
            log.error("stored upright pose unusable", extra=kv(error=str(exc)))
            return
        if pose is not None and pose != self.tracker.pose:
            self.tracker.set_pose(pose)
            log.info("upright pose reloaded", extra=kv(pitch=pose.pitch_deg, roll=pose.roll_deg, source=pose.source))

    def _calibrate_posture(self, source: str) -> bool:
        worn = self.status.worn
        hid = self.status.headset_id
        samples = self.headset_state.samples()
        try:
            pose = self.tracker.calibrate(samples, worn, now_ms=self.clock.now_ms(), headset_id=hid, source=source)
            save_pose(self.state_dir, pose)
        except (PostureError, PostureStoreError) as exc:
            log.warning("posture calibration refused", extra=kv(source=source, reason=str(exc)))
            self._event(EventKind.CALIBRATION, message=str(exc)[:200])
            return False
        self._pose_mtime = self._pose_file_mtime()
        self.tracker.set_pose(pose)
        log.info("upright pose set", extra=kv(source=source, pitch=pose.pitch_deg, roll=pose.roll_deg))
        self._event(EventKind.CALIBRATION, value=pose.pitch_deg,
                    message=f"upright pose set by {source}: pitch {pose.pitch_deg:.1f} deg, roll {pose.roll_deg:.1f} deg")
        return True

    def _apply_config(self, remote: Config) -> None:
        """A remote config (:mod:`device.config.remote`): refused, or built whole and then swapped in."""
        problem = misaddressed(remote, self.config)
        if problem is not None:
            self._event(EventKind.CONFIG_REJECTED, message=problem[:200])
            return
        if self.remote.wants_swap(remote, self.config):
            try:
                swap = prepare(self.config, remote.config, self._new_analyzer if self.audio is not None else None)
            except (ConfigError, AgentError, ValueError) as exc:
                log.warning("remote config rejected", extra=kv(reason=str(exc)))
                self._event(EventKind.CONFIG_REJECTED, message=str(exc)[:200])
            else:
                self._swap(swap)
        if self.remote.posture_calibration_due(remote):
            self._calibrate_posture("remote")

    def _swap(self, swap: Swap) -> None:
        """Everything is built: swap it in (between two passes of the loop)."""
        new = swap.config
        self.config = new
        self.cues.reconfigure(new.cues)
        self.cues.set_target(swap.target_level_dbov)
        self.tracker.reconfigure(new.posture)
        if swap.analyzer is not None:
            self.analyzer = swap.analyzer
        if swap.call_audio is not None:
            self.call_audio = swap.call_audio
        self.call_meter.cadence, self.call_meter.norms = new.calls.cadence, new.calls.norms
        self.monotone.min_on_s = new.cues.min_on_s
        logging.getLogger("device").setLevel(new.agent.log_level.upper())
        log.info("remote config applied", extra=kv(config_hash=new.config_hash))
        self._event(EventKind.CONFIG_APPLIED, message=f"config {new.config_hash} applied")
        self._update_state()

    # --- publishing -------------------------------------------------------------------------------

    @property
    def _pub(self) -> DeskPublisher:
        """The publisher, which start() makes before anything is published."""
        assert self.publisher is not None, "AgentService.start() makes the publisher"
        return self.publisher

    def _event(self, kind: EventKind, **fields: Any) -> int | None:
        """Spool and publish an event; logged with the seq it took once it is durable in the spool.

        Returns that seq, or None when the spool cannot store it (a full disk): logged as an error, and
        the loop goes on.
        """
        cue = fields["cue"].value if fields.get("cue") else None
        try:
            seq = self._pub.event(kind, **fields)
        except SpoolError as exc:
            log.error("event not spooled", extra=kv(kind=kind.value, boot=self.boot, cue=cue, error=str(exc)))
            return None
        self.status.events_sent += 1
        log.info("event", extra=kv(kind=kind.value, boot=self.boot, seq=seq, cue=cue))
        return seq

    def _minute(self, minute: dict[str, Any]) -> int | None:
        """Spool and publish a minute rollup; its seq, or None when the spool cannot store it (logged)."""
        try:
            seq = self._pub.minute(**minute)
        except SpoolError as exc:
            log.error("minute rollup not spooled", extra=kv(boot=self.boot, minute_ts=minute.get("minute_ts"),
                                                            error=str(exc)))
            return None
        log.info("minute", extra=kv(boot=self.boot, seq=seq, minute_ts=minute.get("minute_ts")))
        return seq

    def _update_state(self) -> None:
        self.status.headset = self._headset_status()
        self._pub.set_state(audio=self.status.audio, headset=self.status.headset,
                                 headset_id=self.status.headset_id, config_hash=self.config.config_hash,
                                 firmware=self.status.firmware)

    def _publish_metrics(self, now_ms: int, posture: Posture, worn: bool | None, pitch: float | None,
                         roll: float | None) -> None:
        iv = self._interval
        interval_s = self.config.agent.metrics_interval_s
        elapsed_s = (now_ms - (self._next_metrics_ms - int(interval_s * 1000))) / 1000.0
        # the latest measurement while audio flows and the headset is not known to be off, else None
        m = iv.last if self.status.audio is PartStatus.OK and worn is not False else None
        self._pub.metrics(
            interval_s=min(60.0, max(0.001, elapsed_s)),
            speaking=bool(m.speaking) if m is not None else False,
            speech_s=min(60.0, iv.speech_s),
            level_dbov=_finite(m.level_dbov) if m is not None else None,
            rate_spm=_finite(m.rate_spm) if m is not None else None,
            distance_cm=_finite(m.distance_cm) if m is not None else None,
            noise_dbov=_finite(m.noise_dbov) if m is not None else None,
            clipping=min(1.0, iv.clipping),
            worn=worn,
            posture=posture,
            pitch_deg=round(pitch, 2) if pitch is not None else None,
            roll_deg=round(roll, 2) if roll is not None else None,
            cues=list(self.cues.active),
            audio=self.status.audio,
            headset=self._headset_status(),
            call=self._call_status(),
            intonation_st=(round(m.intonation_st, 2) if m is not None and m.intonation_st is not None else None),
            monotone=self.monotone.on if self.analyzer is not None and self.analyzer.intonation else None,
        )
        self.status.metrics_sent += 1
        self._interval = _Interval(last=m)
        self._next_metrics_ms += int(interval_s * 1000)
        if self._next_metrics_ms <= now_ms:  # fell behind (a stall): do not burst
            self._next_metrics_ms = now_ms + int(interval_s * 1000)
