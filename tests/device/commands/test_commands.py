"""selftest, calibrate-posture and status through the real CLI dispatch, against real parts."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device.cli import main
from hw.virtual_headset import HeadsetTrace, VirtualHeadset
from mqtt_schema import Cue, DeskKind, DeskStatus, DeskTopic, Metrics, Posture, State, encode
from tests.conftest import Mosquitto
from tests.device.helpers import two_channel_speech
from tests.ports import free_port

UPRIGHT = HeadsetTrace.from_segments([(0.0, 3600.0, dict(pitch=4.0, roll=-1.0, worn=True))])
OFF = HeadsetTrace.from_segments([(0.0, 3600.0, dict(pitch=0.0, roll=0.0, worn=False))])


def headset(tmp_path: Path, trace: HeadsetTrace) -> VirtualHeadset:
    hs = VirtualHeadset(trace, link_path=tmp_path / "hs.tty", time_scale=1.0)
    hs.start()
    return hs


def test_selftest_passes_on_working_parts_and_fails_on_a_dead_broker(
        tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]) -> None:
    audio = two_channel_speech(tmp_path / "s.wav", seconds=3)
    hs = headset(tmp_path, UPRIGHT)
    try:
        common = ["selftest", "--mock-gpio", "--step-s", "0.01", "--audio", f"file:{audio}",
                  "--headset", str(hs.link_path)]
        assert main([*common, "--broker", mosquitto.url]) == 0
        out = capsys.readouterr().out
        assert out.count("PASS") == 4 and "4/4 passed" in out
        assert "rgb.red" in out and "bar.4" in out and "dBFS" in out and "e6614103e7452d2f" in out
        assert main([*common, "--broker", f"mqtt://127.0.0.1:{free_port()}"]) == 1
        out = capsys.readouterr().out
        assert "broker   FAIL" in out and "3/4 passed" in out
    finally:
        hs.stop()


def test_selftest_reports_a_skipped_headset_as_skip_and_a_missing_port_by_name(
        tmp_path: Path, mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]) -> None:
    audio = two_channel_speech(tmp_path / "s.wav", seconds=3)
    common = ["selftest", "--mock-gpio", "--step-s", "0.01", "--audio", f"file:{audio}", "--broker", mosquitto.url]
    assert main([*common, "--headset", "none"]) == 0  # a skip does not fail
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("headset ")]
    assert line.split()[1] == "SKIP" and "port = none" in line
    assert out.count("PASS") == 3 and "3/3 passed, 1 skipped" in out
    missing = tmp_path / "ttyACM9"
    assert main([*common, "--headset", str(missing)]) == 1
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("headset ")]
    assert line.split()[1] == "FAIL" and f"no such port {missing}" in line
    assert "3/4 passed" in out and "skipped" not in out


def test_calibrate_posture_stores_the_pose_and_refuses_when_doffed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hs = headset(tmp_path, UPRIGHT)
    state = tmp_path / "state"
    try:
        assert main(["calibrate-posture", "--headset", str(hs.link_path), "--state-dir", str(state)]) == 0
    finally:
        hs.stop()
    pose = json.loads((state / "posture.json").read_text())
    assert abs(pose["pitch_deg"] - 4.0) < 1.0 and abs(pose["roll_deg"] + 1.0) < 1.0 and pose["source"] == "cli"
    assert "upright pose" in capsys.readouterr().out
    hs = headset(tmp_path, OFF)
    try:
        assert main(["calibrate-posture", "--headset", str(hs.link_path), "--state-dir", str(tmp_path / "s2")]) == 1
    finally:
        hs.stop()
    assert "headset is off" in capsys.readouterr().err
    assert not (tmp_path / "s2" / "posture.json").exists()


def test_calibrate_posture_names_a_missing_port_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As selftest does: not five seconds of waiting and then "no IMU frames"."""
    missing = tmp_path / "ttyACM9"
    t0 = time.monotonic()
    assert main(["calibrate-posture", "--headset", str(missing), "--state-dir", str(tmp_path / "state")]) == 1
    assert time.monotonic() - t0 < 2.0
    assert capsys.readouterr().err == (f"headset-agent: no such port {missing} "
                                       "(is the headset plugged in? see ls /dev/ttyACM*)\n")


def test_calibrate_posture_names_a_bad_state_dir_and_replaces_an_unreadable_pose(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It never tells the user to run calibrate-posture, the command they are running."""
    hs = headset(tmp_path, UPRIGHT)
    try:
        a_file = tmp_path / "a-file"
        a_file.write_text("not a folder")
        # a bad --state-dir is a bad command-line value: a usage error naming the flag
        assert main(["calibrate-posture", "--headset", str(hs.link_path), "--state-dir", str(a_file)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("headset-agent: --state-dir (sets agent.state_dir): ")
        assert f"{str(a_file)!r} is not a folder" in err and "run headset-agent" not in err
        assert a_file.read_text() == "not a folder"
        state = tmp_path / "state"
        state.mkdir()
        (state / "posture.json").write_text("{not json")
        assert main(["calibrate-posture", "--headset", str(hs.link_path), "--state-dir", str(state)]) == 0
    finally:
        hs.stop()
    err = capsys.readouterr().err
    assert "cannot be used; it will be replaced" in err and "run headset-agent" not in err
    assert abs(json.loads((state / "posture.json").read_text())["pitch_deg"] - 4.0) < 1.0


def test_status_once_prints_a_snapshot_of_the_desk(mosquitto: Mosquitto, capsys: pytest.CaptureFixture[str]) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    state = State(site="s1", desk="d1", boot=4, seq=1, ts=1_795_000_000_000, status=DeskStatus.ONLINE, headset_id="abc1")
    pub.publish(str(DeskTopic("s1", "d1", DeskKind.STATE)), encode(state), qos=1, retain=True).wait_for_publish(5)
    stop = threading.Event()

    def metrics() -> None:
        seq = 2
        while not stop.wait(0.2):
            m = Metrics(site="s1", desk="d1", boot=4, seq=seq, ts=1_795_000_001_000, speaking=True, speech_s=0.8,
                        level_dbov=-31.5, rate_spm=171.0, posture=Posture.SLOUCHED, cues=[Cue.PACE_FAST, Cue.POSTURE])
            pub.publish(str(DeskTopic("s1", "d1", DeskKind.METRICS)), encode(m))
            seq += 1

    t = threading.Thread(target=metrics, daemon=True)
    t.start()
    try:
        assert main(["status", "--broker", mosquitto.url, "--site", "s1", "--desk", "d1", "--once"]) == 0
    finally:
        stop.set()
        t.join()
        pub.loop_stop()
        pub.disconnect()
    out = capsys.readouterr().out
    assert "desk s1/d1" in out and "online  boot 4" in out and "-31.5 dBov" in out and "171 spm" in out
    assert "pace_fast, posture" in out and "slouched" in out
    assert main(["status", "--broker", mosquitto.url, "--site", "s1", "--desk", "d9", "--once",
                 "--timeout", "0.5"]) == 1
    assert "no metrics from s1/d9" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["status", "--config", ""], "--config: empty path"),  # was "cannot read config file ." (exit 1)
    (["status", "--broker", "", "--site", "s1", "--desk", "d1"],
     "--broker (sets mqtt.url): mqtt.url: '' must start with mqtt:// or mqtts://"),
    (["status", "--broker", "nonsense://x", "--site", "s1", "--desk", "d1"],
     "--broker (sets mqtt.url): mqtt.url: 'nonsense://x' must start with mqtt:// or mqtts://"),
    (["status", "--broker", "mqtt://127.0.0.1:99999", "--site", "s1", "--desk", "d1"],
     "--broker (sets mqtt.url): mqtt.url: 'mqtt://127.0.0.1:99999' is not a valid url"),
    (["status", "--broker", "mqtt://127.0.0.1:1", "--site", "s1", "--desk", "d1", "--once", "--timeout", "inf"],
     "--timeout must be a number of seconds more than 0 and at most 3600, not inf"),  # was an OverflowError
    (["status", "--broker", "mqtt://127.0.0.1:1", "--site", "s1", "--desk", "d1", "--once", "--timeout", "nan"],
     "--timeout must be a number of seconds more than 0 and at most 3600, not nan"),
    (["selftest", "--config", ""], "--config: empty path"),
    (["selftest", "--broker", "nonsense://x", "--headset", "none"],
     "--broker (sets mqtt.url): mqtt.url: 'nonsense://x' must start with mqtt:// or mqtts://"),
    (["selftest", "--site", "", "--headset", "none"],  # was silently the default id "selftest"
     "--site (sets desk.site): desk.site: site '' is not a valid id"),
    (["selftest", "--step-s", "nan", "--headset", "none"], "--step-s must be a number of seconds from 0 to 10, not nan"),
    (["selftest", "--step-s", "-1", "--headset", "none"], "--step-s must be a number of seconds from 0 to 10, not -1.0"),
    (["calibrate-posture", "--config", ""], "--config: empty path"),
    (["calibrate-posture", "--headset", "/dev/ttyACM9", "--state-dir", ""], "--state-dir: empty path"),
    (["calibrate-posture", "--headset", ""], "--headset (sets headset.port): headset.port: must be a non-empty string"),
    (["calibrate-posture", "--headset", "/dev/ttyACM9", "--state-dir", "~no-such-user-hsc/s"],
     "--state-dir (sets agent.state_dir): agent.state_dir: cannot expand '~no-such-user-hsc/s'"),
])
def test_a_bad_flag_value_is_a_usage_error_naming_the_flag(
        argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2 and one line naming the flag (not exit 1, a traceback, or the flag ignored), nothing written."""
    monkeypatch.chdir(tmp_path)  # an empty path taken as "." would be read or written here
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"headset-agent: {message}") and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []
