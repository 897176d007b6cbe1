"""Self-test of a desk unit: cycles every LED, checks the mic, the headset link and the broker.

Prints a table of PASS, FAIL or SKIP (a part that is not configured, e.g. ``--headset none``, is
skipped, not passed); exits 1 when any check fails, and a skip does not fail. The mic check reads
about 1 s from the configured audio source and reports its RMS level (dBFS); the headset check
waits for a hello or frames and a pong (a serial port that does not exist is "no such port", by
name); the broker check connects with the configured credentials.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from device.commands import refuse_empty
from device.errors import AgentError, UsageError

EXAMPLE = """example:
  headset-agent selftest --config /etc/headset-coach/agent.toml
  headset-agent selftest --config agent.toml --mock-gpio --audio file:test.wav --headset /tmp/tty
"""
DEADLINE_S = 5.0
MAX_STEP_S = 10.0
"""The longest ``--step-s``: each LED lit for up to 10 s."""
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
Result = tuple[str, str]  # (PASS | FAIL | SKIP, detail)


def verdict(ok: bool, detail: str) -> Result:
    return (PASS if ok else FAIL), detail


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="agent.toml")
    p.add_argument("--site", help="site id (overrides the config)")
    p.add_argument("--desk", help="desk id (overrides the config)")
    p.add_argument("--broker", metavar="URL", help="overrides [mqtt] url")
    p.add_argument("--audio", metavar="SRC", help="overrides [audio] source")
    p.add_argument("--headset", metavar="PORT", help="overrides [headset] port ('none' skips the check)")
    p.add_argument("--mock-gpio", action="store_true", help="LEDs on gpiozero's MockFactory")
    p.add_argument("--step-s", type=float, default=0.25, metavar="S", help="seconds each LED stays lit (0.25)")


def check_leds(cfg: Any, pin_factory: Any, step_s: float) -> Result:
    from device.outputs.leds import LedPanel

    try:
        with LedPanel(cfg.leds, pin_factory=pin_factory) as panel:
            names = panel.cycle(step_s)
    except AgentError as exc:
        return FAIL, str(exc)
    return PASS, f"cycled {len(names)}: {', '.join(names)}"


def check_mic(cfg: Any) -> Result:
    import numpy as np

    from device.clock import WallClock
    from device.errors import AudioError
    from device.inputs.audio_sources import open_source

    src = open_source(cfg.audio.source, WallClock(), speed=cfg.audio.speed or 1.0, loop=True,
                      block_ms=cfg.audio.block_ms)
    try:
        src.open()
        blocks = []
        got = 0
        while got < src.sample_rate_hz:  # about 1 s
            block = src.read()
            if block is None:
                break
            blocks.append(block)
            got += len(block)
    except AudioError as exc:
        return FAIL, str(exc)
    finally:
        src.close()
    if not blocks:
        return FAIL, f"{src.description}: no audio"
    x = np.concatenate(blocks)
    rms = [float(np.sqrt(np.mean(np.square(x[:, c], dtype=np.float64)))) for c in range(x.shape[1])]
    levels = ", ".join(f"ch{c} {20 * math.log10(r):.1f} dBFS" if r > 0 else f"ch{c} silent" for c, r in enumerate(rms))
    if max(rms) == 0.0:
        return FAIL, f"{src.description}: {x.shape[0]} frames, all silent (mic unplugged or muted?)"
    return PASS, f"{src.description}: {src.channels} ch at {src.sample_rate_hz} Hz, {levels}"


def check_headset(cfg: Any) -> Result:
    from device.inputs.headset_client import HeadsetClient, missing_port
    from hw.firmware import headset_link as hl

    if cfg.headset.port is None:
        return SKIP, "no headset configured (port = none)"
    missing = missing_port(cfg.headset.port)
    if missing is not None:
        return FAIL, missing
    with HeadsetClient(cfg.headset.port, cfg.headset.baud) as client:
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end and not client.connected:
            time.sleep(0.02)
        if not client.connected:
            return FAIL, f"no hello or frames on {cfg.headset.port} within {DEADLINE_S:g} s"
        try:
            client.request(hl.PING, timeout_s=2.0)
            info = client.request(hl.GET_INFO, timeout_s=2.0)
        except AgentError as exc:
            return FAIL, str(exc)
        raw = info.get("st")
        st: dict[str, Any] = raw if isinstance(raw, dict) else {}
        imu = "imu ok" if st.get("imu") else "IMU NOT OK"
        snap = client.snapshot()
        ok = bool(st.get("imu", True))
        return verdict(ok, f"{cfg.headset.port}: headset {info.get('id')} firmware {info.get('fw')}, {imu}, "
                           f"{snap.frames} frames, worn {snap.worn}")


def check_broker(cfg: Any) -> Result:
    import paho.mqtt.client as mqtt

    s = cfg.mqtt
    result: list[str] = []
    done = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        result.append("ok" if not reason.is_failure else f"refused: {reason}")
        done.set()

    client = s.new_client()
    client.on_connect = on_connect
    try:
        client.connect(s.host, s.port, keepalive=10)
    except OSError as exc:
        return FAIL, f"{s.url}: {exc}"
    client.loop_start()
    try:
        if not done.wait(DEADLINE_S):
            return FAIL, f"{s.url}: no answer within {DEADLINE_S:g} s"
    finally:
        client.loop_stop()
        client.disconnect()
    return verdict(result[0] == "ok", f"{s.url}: {result[0]}" + (f" as {s.username}" if s.username else ""))


def run(args: argparse.Namespace) -> int:
    from device.commands.run import mock_pin_factory
    from device.config.agent import load_config

    refuse_empty(("--config", args.config, "empty path"))
    if not 0 <= args.step_s <= MAX_STEP_S:  # also nan and inf
        raise UsageError(f"--step-s must be a number of seconds from 0 to {MAX_STEP_S:g}, not {args.step_s!r}")
    default_id = None if args.config else "selftest"
    cfg = load_config(args.config, {"desk.site": default_id if args.site is None else args.site,
                                    "desk.desk": default_id if args.desk is None else args.desk,
                                    "mqtt.url": args.broker, "audio.source": args.audio, "headset.port": args.headset})
    factory = mock_pin_factory() if args.mock_gpio else None
    checks: list[tuple[str, Callable[[], Result]]] = [
        ("leds", lambda: check_leds(cfg, factory, args.step_s)), ("mic", lambda: check_mic(cfg)),
        ("headset", lambda: check_headset(cfg)), ("broker", lambda: check_broker(cfg))]
    counts = {PASS: 0, FAIL: 0, SKIP: 0}
    print(f"{'check':<8} {'result':<6} detail")
    for name, fn in checks:
        try:
            result, detail = fn()
        except Exception as exc:  # a check that crashes is a failed check, reported like the others
            result, detail = FAIL, f"{type(exc).__name__}: {exc}"
        counts[result] += 1
        print(f"{name:<8} {result:<6} {detail}", flush=True)
    ran = counts[PASS] + counts[FAIL]
    print(f"{counts[PASS]}/{ran} passed" + (f", {counts[SKIP]} skipped" if counts[SKIP] else ""))
    return 1 if counts[FAIL] else 0
