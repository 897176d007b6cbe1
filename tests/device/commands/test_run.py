"""The whole ``headset-agent run`` as a real process: real mosquitto, a pty-backed virtual headset,
a two-channel speech file, MockFactory LEDs, a scaled clock."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device.boot_counter import CLOCK_VALID_FROM_S, read_boot
from device.config.agent import apply_remote, load_config
from hw.virtual_headset import HeadsetTrace, VirtualHeadset
from mqtt_schema import Config, DeskKind, DeskTopic, Metrics, Minute, State, encode
from tests.conftest import Mosquitto
from tests.device.helpers import Agent, Capture, two_channel_speech, wait_for

SITE, DESK = "lab", "desk-03"
SCALE = 10.0


def agent_toml(tmp_path: Path, url: str, extra: str = "") -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(f'[desk]\nsite = "{SITE}"\ndesk = "{DESK}"\n\n[mqtt]\nurl = "{url}"\n\n'
                 f"[posture]\nslouch_s = 4\nclear_s = 0.5\n\n[cues]\nmin_on_s = 2\n{extra}", encoding="utf-8")
    return p


@pytest.fixture
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_channel_speech(tmp_path_factory.mktemp("audio") / "speech.wav")


def publish_config(port: int, config: dict[str, Any], ts: int, calibrate: bool = False) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
    c.connect("127.0.0.1", port)
    c.loop_start()
    msg = Config(site=SITE, desk=DESK, ts=ts, config=config, calibrate_posture=calibrate)
    c.publish(str(DeskTopic(SITE, DESK, DeskKind.CONFIG)), encode(msg), qos=1, retain=True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


@pytest.fixture
def headset(tmp_path: Path) -> Iterator[VirtualHeadset]:
    trace = HeadsetTrace.from_segments([
        (0.0, 30.0, dict(pitch=2, roll=0, worn=True)),
        (30.0, 3600.0, dict(pitch=26, roll=2, worn=True)),
    ])
    hs = VirtualHeadset(trace, link_path=tmp_path / "desk.tty", headset_id="e6614103e7452d2f",
                        firmware_version="1.0.7", time_scale=SCALE)
    hs.start()
    yield hs
    hs.stop()


def test_run_publishes_state_metrics_cues_takes_remote_config_survives_unplug_and_stops_offline(
        tmp_path: Path, mosquitto: Mosquitto, headset: VirtualHeadset, speech: Path) -> None:
    cfg_path = agent_toml(tmp_path, mosquitto.url)
    state_dir = tmp_path / "state"
    flags = ["--config", str(cfg_path), "--audio", f"file:{speech}", "--loop", "--headset", str(headset.link_path),
             "--state-dir", str(state_dir), "--mock-gpio", "--time-scale", f"{SCALE:g}",
             "--time-origin-ms", str(time.time_ns() // 1_000_000)]
    expected = load_config(cfg_path, {"audio.source": f"file:{speech}", "audio.loop": True,
                                       "headset.port": str(headset.link_path), "agent.state_dir": str(state_dir)})
    cap = Capture(mosquitto.port, SITE)
    agent = Agent(flags, tmp_path / "agent.log").start()
    try:
        # the birth: online, versions, capabilities, the applied config's hash, the headset's id
        birth = wait_for(lambda: cap.of(State, lambda s: s.status.value == "online" and s.headset_id), 20, "birth")[-1]
        # a new state folder: the boot counter starts from the wall clock (a replaced unit counts on above the old)
        assert birth.boot == read_boot(state_dir) and birth.boot >= CLOCK_VALID_FROM_S
        assert birth.versions is not None and birth.versions.firmware == "1.0.7"
        assert {"dual-mic", "imu", "wear", "leds"} <= set(birth.capabilities)
        assert birth.config_hash == expected.config_hash
        assert birth.headset_id == "e6614103e7452d2f" and birth.audio.value == "ok"

        # metrics about once per (agent) second, measuring the speech
        wait_for(lambda: len(cap.of(Metrics)) >= 12, 15, "12 metrics")
        ms = cap.of(Metrics)
        gaps = sorted(b.ts - a.ts for a, b in zip(ms, ms[1:], strict=False))
        assert 700 <= gaps[len(gaps) // 2] <= 1400, gaps
        assert any(m.speaking and m.level_dbov is not None and m.rate_spm is not None for m in ms)
        assert any(m.posture.value == "upright" and m.worn for m in ms)

        # the slouch at 30 s of headset time: posture cue on after slouch_s (4 s)
        on = wait_for(lambda: cap.events("cue_on"), 15, "posture cue_on")
        assert on[0].cue is not None and on[0].cue.value == "posture"
        wait_for(lambda: cap.of(Metrics, lambda m: "posture" in m.cues and m.posture.value == "slouched"), 5,
                 "metrics with the posture cue")

        # remote config: applied (hash reported), then invalid ones rejected with the reason, old one stays
        publish_config(mosquitto.port, {"posture": {"slouch_s": 8}}, ts=1)
        applied = wait_for(lambda: cap.events("config_applied"), 10, "config_applied")
        new_hash = apply_remote(expected, {"posture": {"slouch_s": 8}}).config_hash
        assert new_hash in (applied[0].message or "")
        wait_for(lambda: cap.of(State, lambda s: s.config_hash == new_hash), 5, "state with the new hash")
        publish_config(mosquitto.port, {"posture": {"forward_deg": 500}}, ts=2)
        rejected = wait_for(lambda: cap.events("config_rejected"), 10, "config_rejected")
        assert "posture.forward_deg" in (rejected[0].message or "")
        publish_config(mosquitto.port, {"desk": {"desk": "desk-99"}}, ts=3)
        wait_for(lambda: len(cap.events("config_rejected")) >= 2, 10, "second config_rejected")
        assert "cannot be changed remotely" in (cap.events("config_rejected")[1].message or "")
        time.sleep(0.5)
        assert cap.of(State)[-1].config_hash == new_hash

        # garbage on the link: counted and skipped, the agent carries on
        for line in (b"garbage\n", b"{\"t\": \"imu\"}\n", b"\xff\n" * 3):
            headset.port.write(line)
        n = len(cap.of(Metrics))
        wait_for(lambda: len(cap.of(Metrics)) > n + 3, 10, "metrics after garbage")
        assert agent.proc is not None and agent.proc.poll() is None

        # unplug: posture unknown within 2 s (wall), an event; replug: back by itself
        t_unplug = time.monotonic()
        headset.unplug()
        wait_for(lambda: cap.of(Metrics, lambda m: m.posture.value == "unknown" and m.headset.value == "error"),
                 2.0, "posture unknown after unplug")
        assert time.monotonic() - t_unplug <= 2.0
        wait_for(lambda: cap.events("headset_disconnected"), 5, "headset_disconnected")
        headset.replug()
        wait_for(lambda: len(cap.events("headset_connected")) >= 2, 10, "headset_connected again")
        n = len(cap.of(Metrics))
        wait_for(lambda: [m for m in cap.of(Metrics)[n:] if m.posture.value != "unknown" and m.headset.value == "ok"],
                 10, "posture known again")

        # SIGTERM: clean exit, the spool flushed, offline retained
        assert agent.terminate() == 0
        wait_for(lambda: cap.of(State, lambda s: s.status.value == "offline"), 5, "offline state")
        assert cap.of(State)[-1].status.value == "offline"
        logged = {(r["boot"], r["seq"]) for r in agent.logged_events()}
        got = {(e.boot, e.seq) for e in cap.events()}
        assert logged and logged <= got, logged - got
        assert cap.of(Minute)  # the partial minute at shutdown at least
    finally:
        agent.stop()
        cap.close()


def test_broker_restart_and_kill_9_lose_no_event_and_duplicate_none(
        tmp_path: Path, mosquitto: Mosquitto, speech: Path) -> None:
    # a restless agent: slouch and sit up every 10 s of headset time, take the headset off now and then
    segs = []
    t = 0.0
    while t < 3000:
        segs += [(t, t + 10, dict(pitch=2, worn=True)), (t + 10, t + 20, dict(pitch=28, worn=True)),
                 (t + 20, t + 24, dict(pitch=2, worn=False))]
        t += 24
    hs = VirtualHeadset(HeadsetTrace.from_segments(segs), link_path=tmp_path / "desk.tty", time_scale=SCALE)
    hs.start()
    cfg_path = agent_toml(tmp_path, mosquitto.url).with_name("agent.toml")
    cfg_path.write_text(cfg_path.read_text().replace("slouch_s = 4", "slouch_s = 2") .replace("min_on_s = 2", "min_on_s = 1"))
    flags = ["--config", str(cfg_path), "--audio", f"file:{speech}", "--loop", "--headset", str(hs.link_path),
             "--state-dir", str(tmp_path / "state"), "--mock-gpio", "--time-scale", f"{SCALE:g}"]
    cap = Capture(mosquitto.port, SITE, client_id="witness")
    log = tmp_path / "agent.log"
    agent = Agent(flags, log).start()
    try:
        wait_for(lambda: len(cap.events("cue_on")) >= 2, 20, "first cue events")
        mosquitto.stop()
        spooled_before = len(agent.logged_events())
        wait_for(lambda: len(agent.logged_events()) >= spooled_before + 4, 15, "events during the outage")
        mosquitto.start()
        wait_for(lambda: len(cap.events()) >= len(agent.logged_events()) - 2, 20, "replay after the outage")
        agent.kill9()
        boot1 = {(r["boot"], r["seq"]) for r in agent.logged_events()}
        second = read_boot(tmp_path / "state") + 1  # type: ignore[operator]
        agent = Agent(flags, log).start()
        wait_for(lambda: any(e.boot == second and e.kind.value == "cue_on" for e in cap.events()), 20, "boot 2 events")
        assert agent.terminate() == 0
        wait_for(lambda: cap.of(State, lambda s: s.status.value == "offline" and s.boot == second), 10, "offline")
        logged = {(r["boot"], r["seq"]) for r in agent.logged_events()}
        assert boot1 <= logged
        wait_for(lambda: logged <= {(e.boot, e.seq) for e in cap.events()}, 10, "every logged event received")
        # duplicates may arrive (QoS 1 redelivery); after dedup on (desk, boot, seq) each is one event
        by_key: dict[tuple[int, int], bytes] = {}
        for e in cap.events():
            key = (e.boot, e.seq)
            data = msgspec.json.encode(e)
            assert by_key.setdefault(key, data) == data, f"two different events share {key}"
        assert len(by_key) >= len(logged)
        assert {b for b, _ in by_key} == {second - 1, second}
    finally:
        agent.stop()
        cap.close()
        hs.stop()


def test_sigusr1_writes_every_threads_stack_and_the_agent_goes_on(tmp_path: Path, mosquitto: Mosquitto,
                                                                   speech: Path) -> None:
    """``kill -USR1`` on a running agent: every thread's stack in its log (what a hung agent is doing), and the
    agent keeps publishing, then stops cleanly."""
    flags = ["--config", str(agent_toml(tmp_path, mosquitto.url)), "--audio", f"file:{speech}", "--loop",
             "--state-dir", str(tmp_path / "state"), "--mock-gpio", "--time-scale", f"{SCALE:g}"]
    cap = Capture(mosquitto.port, SITE, client_id="witness-usr1")
    agent = Agent(flags, tmp_path / "agent.log").start()
    try:
        wait_for(lambda: cap.of(Metrics), 20, "first metrics")
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: "Current thread" in agent.log_path.read_text(errors="replace"), 10, "the stack dump")
        text = agent.log_path.read_text(errors="replace")
        assert text.count("Thread 0x") >= 2 and 'File "' in text  # the main loop and the MQTT threads, at least
        seen = len(cap.of(Metrics))
        wait_for(lambda: len(cap.of(Metrics)) > seen + 2, 20, "metrics after the dump")
        assert agent.terminate() == 0
    finally:
        agent.stop()
        cap.close()


@pytest.mark.parametrize(("flags", "message"), [
    (["--time-scale", "inf"], "--time-scale must be a number from 1e-09 to 1000, not inf"),
    (["--time-scale", "1e308"], "--time-scale must be a number from 1e-09 to 1000, not 1e+308"),
    (["--time-scale", "1e-308"], "--time-scale must be a number from 1e-09 to 1000, not 1e-308"),
    (["--time-scale", "2", "--time-origin-ms", "99999999999999999999"], "--time-origin-ms must be from 0 to "),
    (["--time-scale", "2", "--time-origin-ms", "-99999999999999999999"], "--time-origin-ms must be from 0 to "),
])
def test_a_time_scale_or_origin_out_of_range_is_a_usage_error(
        tmp_path: Path, speech: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    from device.cli import main

    argv = ["run", "--site", SITE, "--desk", DESK, "--audio", f"file:{speech}", "--headset", "none", "--mock-gpio",
            "--broker", "mqtt://127.0.0.1:1", "--state-dir", str(tmp_path / "state"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"headset-agent: {message}") and err.count("\n") == 1
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("speed", ["0", "inf", "nan", "1e9", "0.001"])
def test_a_speed_out_of_range_is_a_usage_error(
        tmp_path: Path, speech: Path, speed: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every bad --speed is a bad command-line value (exit 2), not only the ones <= 0."""
    from device.cli import main

    argv = ["run", "--site", SITE, "--desk", DESK, "--audio", f"file:{speech}", "--headset", "none", "--mock-gpio",
            "--broker", "mqtt://127.0.0.1:1", "--state-dir", str(tmp_path / "state"), "--speed", speed]
    assert main(argv) == 2
    assert capsys.readouterr().err == (f"headset-agent: --speed must be a number from 0.01 to 1000 (x real time), "
                                       f"not {float(speed)!r}\n")
    assert not (tmp_path / "state").exists()


def test_a_state_dir_that_cannot_be_made_is_one_line_naming_the_field(
        tmp_path: Path, speech: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from device.cli import main

    a_file = tmp_path / "not-a-folder"
    a_file.write_text("keep me\n")
    common = ["run", "--site", SITE, "--desk", DESK, "--audio", f"file:{speech}", "--headset", "none", "--mock-gpio",
              "--broker", "mqtt://127.0.0.1:1"]
    cfg = agent_toml(tmp_path, "mqtt://127.0.0.1:1", f'[agent]\nstate_dir = "{a_file}"\n')
    assert main(["run", "--config", str(cfg), "--audio", f"file:{speech}", "--headset", "none", "--mock-gpio"]) == 1
    err = capsys.readouterr().err
    assert err == f"headset-agent: {cfg} line 15: agent.state_dir: '{a_file}' is not a folder\n"
    # /proc takes no new folder, even from root: the service's mkdir fails
    assert main([*common, "--state-dir", "/proc/hsc-no/state"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("headset-agent: agent.state_dir: cannot create the folder /proc/hsc-no/state: ")
    assert a_file.read_text() == "keep me\n"


@pytest.mark.parametrize(("flags", "message"), [
    (["--config", ""], "--config: empty path"),  # was taken as ".": "cannot read config file ." (exit 1)
    (["--state-dir", ""], "--state-dir: empty path"),  # was the current folder: the agent ran there
    (["--calibration", ""], "--calibration: empty path"),
    (["--broker", "nonsense://x"], "--broker (sets mqtt.url): mqtt.url: 'nonsense://x' must start with mqtt:// or "
                                   "mqtts://"),
    (["--broker", ""], "--broker (sets mqtt.url): mqtt.url: '' must start with mqtt:// or mqtts://"),
    (["--broker", "mqtt://127.0.0.1:99999"], "--broker (sets mqtt.url): mqtt.url: 'mqtt://127.0.0.1:99999' is not "
                                             "a valid url (Port out of range 0-65535)"),
    (["--broker", "mqtt://127.0.0.1:0"], "--broker (sets mqtt.url): mqtt.url: 'mqtt://127.0.0.1:0' has port 0"),
    (["--site", ""], "--site (sets desk.site): desk.site: site '' is not a valid id"),
    (["--headset", ""], "--headset (sets headset.port): headset.port: must be a non-empty string, got ''"),
    (["--audio", "file:"], "--audio (sets audio.source): audio.source: must be 'alsa:<device name>' or "
                           "'file:<path>', got 'file:'"),  # was "no such audio file" naming the current folder
    (["--state-dir", "~no-such-user-hsc/state"], "--state-dir (sets agent.state_dir): agent.state_dir: cannot "
                                                 "expand '~no-such-user-hsc/state'"),  # was a RuntimeError traceback
])
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(
        tmp_path: Path, speech: Path, flags: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2 and one line naming the flag, before anything is written. No --mock-gpio: a value that got
    past the checks fails at the LEDs at once (exit 1) instead of running the agent."""
    from device.cli import main

    monkeypatch.chdir(tmp_path)  # an empty path taken as "." would write here
    argv = ["run", "--site", SITE, "--desk", DESK, "--audio", f"file:{speech}", "--headset", "none",
            "--broker", "mqtt://127.0.0.1:1", "--state-dir", str(tmp_path / "state"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"headset-agent: {message}") and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_id_flag_is_a_usage_error_and_a_bad_config_file_is_not(
        tmp_path: Path, speech: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With no config file --site is needed (exit 2); a bad value in the file is exit 1 naming the file,
    line and field, and a flag that replaces it is used."""
    from device.cli import main

    common = ["--audio", f"file:{speech}", "--headset", "none", "--state-dir", str(tmp_path / "state")]
    assert main(["run", "--desk", DESK, "--broker", "mqtt://127.0.0.1:1", *common]) == 2
    assert capsys.readouterr().err == ("headset-agent: command line: desk.site: required (set it in [desk] or "
                                       "with --site)\n")
    cfg = agent_toml(tmp_path, "nonsense://x")
    assert main(["run", "--config", str(cfg), *common]) == 1
    assert capsys.readouterr().err == (f"headset-agent: {cfg} line 6: mqtt.url: 'nonsense://x' must start with "
                                       "mqtt:// or mqtts://\n")
    assert main(["run", "--config", str(cfg), "--broker", "mqtt://127.0.0.1:0", *common]) == 2
    assert capsys.readouterr().err.startswith("headset-agent: --broker (sets mqtt.url): mqtt.url: ")
    assert not (tmp_path / "state").exists()
