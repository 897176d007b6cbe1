"""The end-to-end demo: a broker, the host with its dashboard, and N virtual desks telling stories.

Each desk is the real ``headset-agent run`` process with a file audio source, gpiozero's MockFactory
LEDs and a virtual headset (``hw.virtual_headset``) on a pty. The call desks (scenarios with ``calls``)
take their call state from a PBX bridge on their ``cti`` topic (:mod:`host_agent.demo.cti`). Time runs
``time_scale`` times faster than the wall clock for the host and every desk alike (they share the clock
origin), so that every rule fires within about a minute.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from host_agent.clock import ScaledClock
from host_agent.config import BrokerConfig, DashboardConfig, HostConfig
from host_agent.demo import audio
from host_agent.demo.cti import CtiBridge
from host_agent.demo.scenarios import Scenario, by_name, pick
from host_agent.errors import HostError
from host_agent.service import HostService, HostSummary
from mqtt_schema.process_signals import stop_on_signals

SITE = "demo"


@dataclass(frozen=True)
class DemoOptions:
    desks: int = 9
    duration_s: float | None = None
    """Wall seconds; None runs until Ctrl-C (the story then spans 5 minutes and repeats its last state)."""
    time_scale: float = 20.0
    broker_url: str | None = None
    """None starts the embedded amqtt broker."""
    dashboard_port: int = 8080
    dashboard_token: str = "demo"
    allowed_break_s: float = 180.0
    """The demo site's allowed break (scaled seconds), short so the overrun level climbs in a minute."""
    workdir: Path | None = None
    live: bool | None = None
    """Redraw a live table; default: when stdout is a terminal."""
    stories: tuple[str, ...] = ()
    """Play these scenarios by name (one desk each) instead of the first ``desks`` ones."""


@dataclass
class Desk:
    """One virtual desk: its scenario, its virtual headset and its agent process."""

    index: int
    scenario: Scenario
    desk_id: str
    audio_file: Path
    link_path: Path
    state_dir: Path
    log_path: Path
    headset: Any = None
    proc: subprocess.Popen[bytes] | None = None
    unplugged: bool = False
    restarts: int = 0


@dataclass
class DemoResult:
    summary: HostSummary
    expected: dict[str, str]
    """desk -> expected rule"""
    fired_by_desk: dict[str, set[str]] = field(default_factory=dict)
    dashboard_url: str | None = None

    @property
    def missing(self) -> dict[str, str]:
        return {d: r for d, r in self.expected.items() if r not in self.fired_by_desk.get(d, set())}

    @property
    def ok(self) -> bool:
        return not self.missing


def _agent_exe() -> list[str]:
    exe = shutil.which("headset-agent", path=str(Path(sys.executable).parent)) or shutil.which("headset-agent")
    return [exe] if exe else [sys.executable, "-m", "device.cli"]


class Demo:
    """Runs the demo. ``run()`` blocks until the duration is over or Ctrl-C, then tears down."""

    def __init__(self, options: DemoOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> None:
        self.o = options
        self.out = out
        self.err = err
        self.origin_ms = time.time_ns() // 1_000_000
        self.clock = ScaledClock(options.time_scale, self.origin_ms)
        self.story_s = (options.duration_s or 300.0) * options.time_scale
        """The run's length in scaled seconds: scenario fractions refer to it."""
        self.desks: list[Desk] = []
        self.broker: Any = None
        self.host: HostService | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._stop = threading.Event()
        self.fired_by_desk: dict[str, set[str]] = {}
        self.bridge: CtiBridge | None = None

    # --- setup --------------------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        print(f"demo: {text}", file=self.err, flush=True)

    def _workdir(self) -> Path:
        if self.o.workdir is not None:
            self.o.workdir.mkdir(parents=True, exist_ok=True)
            return self.o.workdir
        self._tmp = tempfile.TemporaryDirectory(prefix="headset-demo-")
        return Path(self._tmp.name)

    def _start_broker(self) -> str:
        if self.o.broker_url:
            return self.o.broker_url
        from host_agent.embedded_broker import EmbeddedBroker

        self.broker = EmbeddedBroker().start()
        self._say(f"embedded MQTT broker (amqtt) on {self.broker.url}")
        return str(self.broker.url)

    def _calibrate(self, work: Path) -> Path:
        rec = audio.calibration_recording()
        out = work / "headset-calibration.toml"
        self._say("calibrating the demo headset model at 5 cm (headset-agent calibrate)")
        res = subprocess.run([*_agent_exe(), "calibrate", str(rec), "--distance-cm", "5", "--out", str(out),
                              "--model", "demo-headset"], capture_output=True, text=True)
        if res.returncode != 0:
            raise HostError(f"headset calibration failed: {res.stderr.strip() or res.stdout.strip()}")
        return out

    def setup(self) -> None:
        from hw.virtual_headset import HeadsetTrace, VirtualHeadset

        work = self._workdir()
        scenarios = by_name(self.o.stories) if self.o.stories else pick(self.o.desks)
        self._say(f"preparing speech for {len(scenarios)} desks (espeak-ng, cached in {audio.cache_dir()})")
        files = audio.prepare(scenarios, self.story_s, progress=self._say)
        calibration = self._calibrate(work)
        url = self._start_broker()
        config = HostConfig(
            broker=BrokerConfig(url=url),
            sites=(SITE,),
            db=str(work / "host.db"),
            dashboard=DashboardConfig(port=self.o.dashboard_port, token=self.o.dashboard_token),
            allowed_break_s=self.o.allowed_break_s,
        )
        self.host = HostService(config, self.clock, client_id="headset-host-demo").start()
        self._say(f"host running; dashboard at {self.host.dashboard_url} (token '{self.o.dashboard_token}')")
        for i, sc in enumerate(scenarios, 1):
            desk_id = f"desk-{i:02d}"
            d = Desk(i, sc, desk_id, files[sc.name], work / f"{desk_id}.tty", work / desk_id, work / f"{desk_id}.log")
            d.state_dir.mkdir(exist_ok=True)
            steps = sc.posture
            segs = []
            for j, st in enumerate(steps):
                end = steps[j + 1].at if j + 1 < len(steps) else 1.0
                segs.append((st.at * self.story_s, end * self.story_s,
                             {"pitch": st.pitch_deg, "roll": st.roll_deg, "worn": st.worn}))
            trace = HeadsetTrace.from_segments(segs)
            d.headset = VirtualHeadset(trace, link_path=str(d.link_path), headset_id=f"de{i:014x}",
                                       firmware_version="1.0.0", time_scale=self.o.time_scale)
            d.headset.start()
            self.desks.append(d)
            self._start_agent(d, url, calibration)
        call_desks = {d.desk_id: d.scenario.calls for d in self.desks if d.scenario.calls is not None}
        if call_desks:
            self.bridge = CtiBridge(url, SITE, call_desks, self.clock.now_ms, self._fraction).start()
            self._say(f"PBX bridge: calls for {', '.join(sorted(call_desks))} on their cti topic")
        self._say(f"{len(self.desks)} desks started; time runs {self.o.time_scale:g}x faster than the wall clock")

    def _start_agent(self, d: Desk, url: str, calibration: Path) -> None:
        args = [*_agent_exe(), "run", "--site", SITE, "--desk", d.desk_id, "--broker", url,
                "--audio", f"file:{d.audio_file}", "--loop", "--headset", str(d.link_path),
                "--state-dir", str(d.state_dir), "--calibration", str(calibration), "--mock-gpio",
                "--time-scale", f"{self.o.time_scale:g}", "--time-origin-ms", str(self.origin_ms)]
        if d.scenario.calls is not None:  # call state from the demo's PBX bridge
            conf = d.state_dir / "agent.toml"
            conf.write_text('[calls]\nsource = "mqtt"\n', encoding="utf-8")
            args += ["--config", str(conf)]
        log = d.log_path.open("ab")
        d.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self._calibration = calibration
        self._url = url

    # --- the story ----------------------------------------------------------------------------------

    def _fraction(self) -> float:
        return (self.clock.now_ms() - self.origin_ms) / 1000.0 / self.story_s

    def _step_story(self) -> None:
        frac = self._fraction()
        for d in self.desks:
            sc = d.scenario
            if sc.unplug_at is not None and not d.unplugged and d.restarts == 0 and frac >= sc.unplug_at:
                if d.proc is not None and d.proc.poll() is None:
                    d.proc.send_signal(signal.SIGKILL)
                    d.proc.wait()
                d.unplugged = True
                self._say(f"{d.desk_id}: desk unit unplugged (its agent is killed; the broker sends its last will)")
            if d.unplugged and sc.replug_at is not None and frac >= sc.replug_at:
                d.unplugged = False
                d.restarts += 1
                self._start_agent(d, self._url, self._calibration)
                self._say(f"{d.desk_id}: desk unit plugged back in")

    def _collect_fired(self) -> None:
        assert self.host is not None
        _, snap = self.host.snapshot()
        for a in snap.get("alerts", []):
            if a.get("state") == "firing":
                self.fired_by_desk.setdefault(str(a["desk"]), set()).add(str(a["rule"]))

    def run(self) -> DemoResult:
        live = self.o.live if self.o.live is not None else self.out.isatty()
        try:
            self.setup()
            assert self.host is not None
            start = time.monotonic()
            self._last_print = -10.0
            try:
                while not self._stop.is_set():
                    self._tick(start, live)
                    if self.o.duration_s is not None and time.monotonic() - start >= self.o.duration_s:
                        break
                    self._stop.wait(0.5)
            except KeyboardInterrupt:
                self._say("interrupted: stopping the desks and the host")
            self._collect_fired()
            return DemoResult(self.host.summary(), {d.desk_id: d.scenario.expect_rule for d in self.desks},
                              self.fired_by_desk, self.host.dashboard_url)
        finally:
            self.teardown()

    def _tick(self, start: float, live: bool) -> None:
        assert self.host is not None
        from host_agent.demo.table import render

        elapsed = time.monotonic() - start
        self._step_story()
        self._collect_fired()
        _, snap = self.host.snapshot()
        if live:
            self.out.write("\x1b[H\x1b[2J" + render(snap, self, elapsed))
            self.out.flush()
        elif elapsed - self._last_print >= 10.0:
            self._last_print = elapsed
            self.out.write(render(snap, self, elapsed) + "\n")
            self.out.flush()

    def stop(self) -> None:
        self._stop.set()

    def teardown(self) -> None:
        # The host stops first: desks going offline because the demo ends are not news for anyone.
        if self.bridge is not None:
            self.bridge.stop()
        if self.host is not None:
            self.host.stop()
        for d in self.desks:
            if d.proc is not None and d.proc.poll() is None:
                d.proc.send_signal(signal.SIGTERM)
        for d in self.desks:
            if d.proc is not None:
                try:
                    d.proc.wait(10)
                except subprocess.TimeoutExpired:
                    d.proc.kill()
                    d.proc.wait()
            if d.headset is not None:
                d.headset.stop()
        if self.broker is not None:
            self.broker.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


def run_demo(options: DemoOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
             on_start: Callable[[Demo], None] | None = None) -> DemoResult:
    demo = Demo(options, out, err)
    if on_start:
        on_start(demo)
    with stop_on_signals(demo.stop, (signal.SIGTERM,)):  # Ctrl-C: KeyboardInterrupt, the demo tears down
        try:
            return demo.run()
        except KeyboardInterrupt:
            demo.stop()
            raise
