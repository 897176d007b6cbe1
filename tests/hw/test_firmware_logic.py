"""The firmware's logic (config, filter, debounce, MPU-6050 driver, link, whole app on the fake
HAL) run by the same scenario code under CPython and under real MicroPython (WebAssembly)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hw.virtual_headset.firmware import LOGIC_MODULES, load_firmware
from tests import real_parts

if TYPE_CHECKING:
    from hw.virtual_headset.micropython import MicroPythonWorker

FIRMWARE = Path(__file__).resolve().parents[2] / "hw" / "firmware"

# Each scenario prints one JSON line. It must run on both interpreters unchanged.
SCENARIOS = {
    "config": r"""
import json, hs_config
out = {}
cfg, errs = hs_config.validate({})
out["defaults"] = [cfg["orientation"], cfg["sample_hz"], errs]
cfg, errs = hs_config.validate({"sample_hz": 500, "orientation": "+x+y-z", "site": "s1", "bogus": 1,
                                "filter_alpha": 0.9, "wear_mode": "magic", "led_pin": True})
out["bad"] = [cfg["sample_hz"], cfg["orientation"], cfg["site"], cfg["filter_alpha"], cfg["wear_mode"],
              cfg["led_pin"], sorted(errs)]
cfg, errs = hs_config.loads("{not json")
out["broken"] = [cfg["stream_hz"], errs]
cfg, errs = hs_config.load("no-such-file.json")
out["missing"] = [cfg["site"], errs]
out["rot"] = [list(a) for a in hs_config.parse_orientation("-y+x+z")]
print(json.dumps(out))
""",
    "filter": r"""
import json, math, hs_filter, hs_config
f = hs_filter.ComplementaryFilter(0.98)
rad = math.pi / 180
out = []
# a head held at pitch 20, roll -10: accel only, gyro zero
a = (-math.sin(20 * rad), math.cos(20 * rad) * math.sin(-10 * rad), math.cos(20 * rad) * math.cos(-10 * rad))
for i in range(5):
    p, r = f.update(a, (0.0, 0.0, 0.0), 0.02)
out.append([round(p, 4), round(r, 4)])
# mounted rotated: device axes (-y, +x, +z) = body (forward, left, up)
o = hs_config.parse_orientation("-y+x+z")
dev = [0.0, 0.0, 0.0]
for i in range(3):
    dev[o[i][0]] = a[i] * o[i][1]
out.append([round(x - y, 9) for x, y in zip(hs_filter.remap(dev, o), a)])
# a gyro step: 10 deg/s pitch for 1 s with an accelerometer that still says 0 (trusts the gyro first)
g = hs_filter.ComplementaryFilter(0.98)
g.update((0.0, 0.0, 1.0), (0.0, 0.0, 0.0), 0.02)
for i in range(50):
    p, r = g.update((0.0, 0.0, 1.0), (0.0, 10.0, 0.0), 0.02)
out.append([round(p, 4), round(r, 4)])
print(json.dumps(out))
""",
    "debounce": r"""
import json, hs_wear
d = hs_wear.Debouncer(300)
edges = []
for t, raw in [(0, 1), (100, 0), (200, 1), (300, 0), (500, 0), (650, 0), (700, 1), (1000, 1), (1100, 1)]:
    e = d.update(raw, t)
    if e is not None:
        edges.append([t, e])
print(json.dumps([edges, hs_wear.is_worn(40000, "adc", 30000), hs_wear.is_worn(0, "digital", 0)]))
""",
    "link": r"""
import json, headset_link as hl
s = hl.Sequencer(hl.SEQ_MOD - 1)
m = s.message(hl.IMU, p=12.5, r=-3.25, ms=1000)
back = hl.decode(hl.encode(m))
errs = []
for line in [b"", b"\xff\xfe\n", b"[1]", b'{"t":"imu","n":1,"p":200,"r":0}', b'{"t":"led","n":1,"rgb":[1,2]}',
             b'{"t":"zap","n":1}', b'{"t":"ping","n":-1}', b"x" * 300]:
    try:
        hl.decode(line)
        errs.append("ok")
    except hl.LinkError as e:
        errs.append(e.reason)
lb = hl.LineBuffer()
parts = lb.feed(b'{"t":"ping","n":1}\n{"t":') + lb.feed(b'"ping","n":2}\n' + b"y" * 300 + b"\nz\n")
print(json.dumps([sorted(back.items()), s.next(), errs, [p.decode() for p in parts], lb.dropped]))
""",
    "app": r"""
import json, hs_app, hs_config, headset_link as hl
import fakehal
now = [0]
segs = [[0.0, 2.0, 5.0, 0.0, True], [2.0, 6.0, 25.0, -8.0, True], [6.0, 9.0, 25.0, -8.0, False]]
hal = fakehal.FakeHal(segs, lambda: now[0], mounting="-y+x+z")
cfg, errs = hs_config.validate({"orientation": "-y+x+z", "site": "s9"})
app = hs_app.App(hal, cfg, errs)
app.boot()
hal.rx = b'{"t":"get_info","n":5}\n{"t":"led","n":6,"rgb":[0,0,255]}\nnot json\n{"t":"cal","n":7}\n'
msgs = []
for i in range(1800):
    now[0] = i * 5
    app.step()
    for line in hl.LineBuffer().feed(hal.take_tx()):
        msgs.append(hl.decode(line))
imu = [m for m in msgs if m["t"] == "imu"]
at = lambda ms: [m for m in imu if m["ms"] >= ms][0]
out = {
    "types": sorted(set(m["t"] for m in msgs)),
    "hello": [msgs[0]["t"], msgs[0]["id"], msgs[0]["fw"]],
    "n_imu": len(imu),
    "p1": [round(at(1500)["p"]), round(at(1500)["r"])],
    "p2": [round(at(5500)["p"]), round(at(5500)["r"])],
    "wear": [[m["on"], m["n"] > 0] for m in msgs if m["t"] == "wear"],
    "acks": [[m["re"], m["ok"]] for m in msgs if m["t"] == "ack"],
    "info_site": [m["cfg"]["site"] for m in msgs if m["t"] == "info"],
    "led": list(hal.led),
    "rx_errors": app.rx_errors,
    "bias": [round(b, 1) for b in app.imu.gyro_bias],
    "wdt": hal.watchdog_feeds,
}
hal.i2c.present = False
now[0] += 100
app.step()
out["imu_lost"] = [app.imu_error, [hl.decode(x)["msg"] for x in hl.LineBuffer().feed(hal.take_tx())]]
print(json.dumps(out))
""",
}


def run_cpython(code: str) -> Any:
    load_firmware()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "<scenario>", "exec"), {"__name__": "__scenario__"})
    return json.loads(buf.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def micropython(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MicroPythonWorker]:
    real_parts.require("micropython")
    from hw.virtual_headset.micropython import MicroPythonWorker

    d = tmp_path_factory.mktemp("mpfs")
    for name in LOGIC_MODULES:
        shutil.copy(FIRMWARE / f"{name}.py", d / f"{name}.py")
    w = MicroPythonWorker(d)
    w.init("e6614103e7452d2f")
    yield w
    w.close()


def run_micropython(worker: Any, code: str) -> Any:
    out, err, _ = worker.exec(code)
    assert not err, err
    return json.loads(out.decode().strip().splitlines()[-1])


EXPECTED_CHECKS = {
    "config": lambda r: (
        r["defaults"] == ["+x+y+z", 50, []]
        and r["bad"][:6] == [50, "+x+y+z", "s1", 0.9, "adc", -1]
        and r["bad"][6] == sorted([
            "bogus: unknown key", "led_pin: expected int", "orientation: orientation is left-handed (a mirror image), not a rotation",
            "sample_hz: 500 is outside 5..200", "wear_mode: must be 'adc' or 'digital'"])
        and r["broken"] == [10, ["config file is not valid JSON"]]
        and r["missing"] == ["", ["no config file (no-such-file.json): using defaults"]]
        and r["rot"] == [[1, -1], [0, 1], [2, 1]]
    ),
    # gyro step: p_n = a (p_n-1 + 10 dt) -> 10 dt a (1 - a^n) / (1 - a) = 6.23 deg after 50 samples
    "filter": lambda r: r[0] == [20.0, -10.0] and r[1] == [0.0, 0.0, 0.0] and abs(r[2][0] - 6.2311) < 1e-3,
    "debounce": lambda r: r == [[[0, True], [650, False], [1000, True]], True, True],
    "link": lambda r: (
        r[1] == 0 and r[2] == ["empty", "not-utf8", "not-object", "out-of-range", "bad-field", "unknown-type",
                               "bad-seq", "too-long"]
        and r[3] == ['{"t":"ping","n":1}', '{"t":"ping","n":2}', "z"] and r[4] == 1
    ),
    "app": lambda r: (
        r["types"] == ["ack", "hello", "imu", "info", "wear"]
        and r["hello"] == ["hello", "e6614103e7452d2f", "1.0.0"]
        and 85 <= r["n_imu"] <= 91  # 10 Hz for 9 s
        and r["p1"] == [5, 0] and r["p2"] == [25, -8]
        and r["wear"] == [[True, True], [False, True]]
        and r["acks"] == [[6, True], [7, True]]
        and r["info_site"] == ["s9"] and r["led"] == [0, 0, 255] and r["rx_errors"] == 1
        and r["bias"] == [0.6, -0.4, 0.2]  # the fake part's (0.6, -0.4, 0.25) deg/s, in device axes
        and r["wdt"] == 1800 and r["imu_lost"] == ["I2C error 19", ["imu: read failed"]]
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_logic_under_cpython(name: str) -> None:
    result = run_cpython(SCENARIOS[name])
    assert EXPECTED_CHECKS[name](result), result


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_logic_under_micropython_matches_cpython(name: str, micropython: Any) -> None:
    mp = run_micropython(micropython, SCENARIOS[name])
    assert EXPECTED_CHECKS[name](mp), mp
    assert mp == run_cpython(SCENARIOS[name])


def test_a_reset_after_the_interpreter_process_died_starts_a_fresh_one_and_keeps_the_files(
        tmp_path: Path) -> None:
    """A soft reset loads a new interpreter; if that fails (the node process is gone, or the
    WebAssembly glue faults, as once in CI), the worker starts a fresh process, as a real board's
    reset starts from nothing, and the board's files are still there."""
    real_parts.require("micropython")
    from hw.virtual_headset.micropython import MicroPythonWorker

    w = MicroPythonWorker(tmp_path)
    try:
        w.init("e6614103e7452d2f")
        _, err, _ = w.exec("f = open('kept.txt', 'w'); f.write('x' * 5); f.close()")
        assert not err, err
        w.proc.kill()
        w.proc.wait()
        w.init("e6614103e7452d2f")
        assert w.restarts == 1
        out, err, _ = w.exec("print(len(open('kept.txt').read()))")
        assert not err and out.decode().strip() == "5", (out, err)
    finally:
        w.close()
