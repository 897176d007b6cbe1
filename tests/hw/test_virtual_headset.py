"""The virtual headset seen from the desk side: plain pyserial + headset_link on its pty."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from hw.firmware import headset_link as hl
from hw.virtual_headset import HeadsetTrace, TraceError, VirtualHeadset


class Desk:
    """A minimal desk-side reader: pyserial and the shared protocol module, nothing else."""

    def __init__(self, path: Path):
        self.ser = serial.Serial(str(path), timeout=0.05)
        self.lines = hl.LineBuffer()
        self.seq = hl.Sequencer(100)
        self.got: list[dict[str, Any]] = []

    def send(self, t: str, **fields: object) -> int:
        msg = self.seq.message(t, **fields)
        self.ser.write(hl.encode(msg))
        return int(msg["n"])

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], deadline_s: float = 5.0) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            for line in self.lines.feed(self.ser.read(4096)):
                msg = hl.decode(line)
                self.got.append(msg)
                if pred(msg):
                    return msg
        raise AssertionError(f"no matching message within {deadline_s} s; got {self.got[-5:]}")

    def close(self) -> None:
        self.ser.close()


SLOUCH = HeadsetTrace.from_segments([
    (0.0, 3.0, dict(pitch=2, roll=0, worn=True)),
    (3.0, 8.0, dict(pitch=25, roll=-6, worn=True)),
    (8.0, 60.0, dict(pitch=3, roll=0, worn=False)),
])


@pytest.fixture
def headset(tmp_path: Path) -> Iterator[VirtualHeadset]:
    hs = VirtualHeadset(SLOUCH, link_path=tmp_path / "ttyHEADSET", headset_id="e6614103e7452d2f",
                        firmware_version="1.0.0", time_scale=4.0)
    hs.start()
    yield hs
    hs.stop()


def test_desk_reads_hello_posture_and_wear_edges(headset: VirtualHeadset) -> None:
    desk = Desk(headset.link_path)
    try:
        hello = desk.wait_for(lambda m: m["t"] == hl.HELLO)
        assert hello["id"] == "e6614103e7452d2f" and hello["fw"] == "1.0.0" and hello["proto"] == hl.PROTOCOL_VERSION
        upright = desk.wait_for(lambda m: m["t"] == hl.IMU)
        assert abs(upright["p"] - 2) < 1.5 and abs(upright["r"]) < 1.5
        slouch = desk.wait_for(lambda m: m["t"] == hl.IMU and m["p"] > 20)
        # the complementary filter settles onto the trace's pose
        settled = desk.wait_for(lambda m: m["t"] == hl.IMU and m["ms"] > slouch["ms"] + 600)
        assert abs(settled["p"] - 25) < 1.0 and abs(settled["r"] + 6) < 1.0
        off = desk.wait_for(lambda m: m["t"] == hl.WEAR)
        assert off["on"] is False
        assert off["n"] > settled["n"]  # the doff edge comes after the slouch, in order
    finally:
        desk.close()


def test_requests_get_answers(headset: VirtualHeadset) -> None:
    desk = Desk(headset.link_path)
    try:
        n = desk.send(hl.PING)
        assert desk.wait_for(lambda m: m["t"] == hl.PONG)["re"] == n
        n = desk.send(hl.GET_INFO)
        info = desk.wait_for(lambda m: m["t"] == hl.INFO)
        assert info["re"] == n and info["id"] == "e6614103e7452d2f" and info["st"]["imu"] is True
        assert 0.95 < info["st"]["g"] < 1.05
        n = desk.send(hl.LED, rgb=[255, 80, 0])
        assert desk.wait_for(lambda m: m["t"] == hl.ACK)["re"] == n
        assert headset.led == (255, 80, 0)
        n = desk.send(hl.CALIBRATE)
        ack = desk.wait_for(lambda m: m["t"] == hl.ACK and m["re"] == n)
        assert ack["ok"] is True
        # the fake IMU's gyro bias (0.6, -0.4, 0.25 deg/s) was learned
        bias = headset.app.imu.gyro_bias
        assert abs(bias[0] - 0.6) < 0.1 and abs(bias[1] + 0.4) < 0.1
    finally:
        desk.close()


def test_unplug_gives_the_reader_an_error_and_replug_says_hello_again(headset: VirtualHeadset) -> None:
    desk = Desk(headset.link_path)
    desk.wait_for(lambda m: m["t"] == hl.IMU)
    headset.unplug()
    assert not headset.link_path.exists()
    with pytest.raises(serial.SerialException):
        end = time.monotonic() + 5
        while time.monotonic() < end:
            desk.ser.read(100)
    desk.close()
    headset.replug()
    desk = Desk(headset.link_path)
    try:
        assert desk.wait_for(lambda m: m["t"] == hl.HELLO)["id"] == "e6614103e7452d2f"
        assert headset.boots == 2
    finally:
        desk.close()


def test_bad_traces_are_named(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="segment 1: starts at 5"):
        HeadsetTrace.from_segments([(0, 4, {}), (5, 6, {})])
    with pytest.raises(TraceError, match="unknown keys"):
        HeadsetTrace.from_segments([(0, 4, {"yaw": 3})])
    bad = tmp_path / "t.csv"
    bad.write_text("t0,t1,pitch,roll,worn\n0,10,abc,0,1\n")
    with pytest.raises(TraceError, match="pitch='abc' is not a number"):
        HeadsetTrace.from_file(bad)
    good = tmp_path / "t.json"
    good.write_text(SLOUCH.to_json())
    assert HeadsetTrace.from_file(good).segments == SLOUCH.segments


def test_cli_runs_a_scenario(tmp_path: Path) -> None:
    link = tmp_path / "ttyCLI"
    proc = subprocess.Popen([sys.executable, "-m", "hw.cli", "virtual-headset", "--link", str(link),
                             "--scenario", "long-break", "--time-scale", "50", "--duration", "30"],
                            stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 10
        while not link.exists() and time.monotonic() < end:
            time.sleep(0.02)
        desk = Desk(link)
        try:
            assert desk.wait_for(lambda m: m["t"] == hl.WEAR and m["on"] is False, 10)
        finally:
            desk.close()
    finally:
        proc.terminate()
        proc.wait(5)


def test_imu_failure_is_reported_and_streaming_stops(headset: VirtualHeadset) -> None:
    desk = Desk(headset.link_path)
    try:
        desk.wait_for(lambda m: m["t"] == hl.IMU)
        headset.set_imu_present(False)
        log = desk.wait_for(lambda m: m["t"] == hl.LOG)
        assert log["msg"] == "imu: read failed"
        n = desk.send(hl.GET_INFO)
        info = desk.wait_for(lambda m: m["t"] == hl.INFO and m["re"] == n)
        assert info["st"]["imu"] is False  # the self-test now fails
        n = desk.send(hl.CALIBRATE)
        assert desk.wait_for(lambda m: m["t"] == hl.ACK and m["re"] == n)["ok"] is False
        after = len(desk.got)
        desk.send(hl.PING)
        desk.wait_for(lambda m: m["t"] == hl.PONG)
        assert not any(m["t"] == hl.IMU for m in desk.got[after:])
    finally:
        desk.close()


def test_info_fits_one_line_with_the_longest_ids(tmp_path: Path) -> None:
    cfg = {"site": "s" * 32, "desk": "d" * 32, "model": "m" * 32, "orientation": "-y+x+z"}
    hs = VirtualHeadset(SLOUCH, link_path=tmp_path / "tty", config=cfg, firmware_version="10.20.30-rc1")
    with hs:
        desk = Desk(hs.link_path)
        try:
            n = desk.send(hl.GET_INFO)
            info = desk.wait_for(lambda m: m["t"] == hl.INFO and m["re"] == n)
            assert info["fw"] == "10.20.30-rc1" and info["st"]["imu"] is True
            assert len(hl.encode(info)) <= hl.MAX_LINE
        finally:
            desk.close()


def test_unplug_and_replug_never_wait_behind_the_firmware_loop(tmp_path: Path) -> None:
    """The loop waits for the desk outside its lock: holding it through a blocking read, it re-took the lock
    at once (Python's locks are not fair) and unplug() waited up to 7.5 s here, 14.6 s in a CI run."""
    hs = VirtualHeadset(HeadsetTrace.from_segments([(0.0, 3600.0, dict(pitch=2, roll=0, worn=True))]),
                        link_path=tmp_path / "tty")
    hs.start()
    waits = []
    try:
        for _ in range(30):
            time.sleep(0.02)
            for action in (hs.unplug, hs.replug):
                t = time.monotonic()
                action()
                waits.append(time.monotonic() - t)
    finally:
        hs.stop()
    assert max(waits) < 0.2, f"worst wait {max(waits):.3f} s"  # measured: 1 ms


@pytest.mark.parametrize(("flags", "message"), [
    (["--time-scale", "nan"], "--time-scale must be a number from 1e-09 to 1000, not nan"),
    (["--time-scale", "inf"], "--time-scale must be a number from 1e-09 to 1000, not inf"),
    (["--time-scale", "0"], "--time-scale must be a number from 1e-09 to 1000, not 0.0"),
    (["--duration", "nan"], "--duration must be a finite number of seconds >= 0, not nan"),
])
def test_cli_bad_time_flags_are_usage_errors(tmp_path: Path, flags: list[str], message: str) -> None:
    """nan and inf passed the old ``<= 0`` check and the firmware's clock crashed with a traceback."""
    link = tmp_path / "ttyBAD"
    proc = subprocess.run([sys.executable, "-m", "hw.cli", "virtual-headset", "--link", str(link),
                           "--scenario", "slouch", "--duration", "1", *flags],
                          capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stderr) == (2, f"headset-flash: {message}\n")
    assert not link.exists()


@pytest.mark.parametrize(("flags", "code", "message"), [
    (["--link", "", "--scenario", "slouch"], 2, "--link: empty path"),  # was a ValueError traceback
    (["--link", "ttyBAD", "--trace", ""], 2, "--trace: empty path"),  # was "unknown scenario None", exit 1
    (["--link", "ttyBAD", "--scenario", "slouch", "--id", ""], 2, "--id: empty (a headset id in hex)"),  # ran
    (["--link", "ttyBAD", "--scenario", "slouch", "--board", ""], 2, "--board: empty path"),
    # a runtime error (exit 1), but one line naming the flag, not a FileNotFoundError traceback
    (["--link", "/proc/no-such-folder/ttyBAD", "--scenario", "slouch"], 1,
     "cannot start the virtual headset at --link /proc/no-such-folder/ttyBAD: [Errno 2] No such file or directory"),
])
def test_cli_bad_paths_and_ids_are_one_line_naming_the_flag(
        tmp_path: Path, flags: list[str], code: int, message: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from hw.cli import main

    monkeypatch.chdir(tmp_path)  # an empty path taken as "." would be made here
    assert main(["virtual-headset", "--duration", "0.2", *flags]) == code
    err = capsys.readouterr().err
    assert err.startswith(f"headset-flash: {message}") and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []
