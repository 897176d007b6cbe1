"""The whole chain, as the demo runs it: real headset-agent processes with file audio, MockFactory
LEDs and virtual headsets on ptys, a real broker, the host with its dashboard, and an independent
witness that keeps every payload.

The big run uses a real mosquitto; a second, smaller run uses the embedded default broker (amqtt).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device.outputs.spool import Spool
from host_agent.demo.runner import Demo, DemoOptions, DemoResult, run_demo
from tests import real_parts
from tests.conftest import Mosquitto
from tests.ports import free_port
from tests.system.capture import MAX_PAYLOAD, Capture, Captured, audio_like, kind_of, schemas, walk

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SITE = "demo"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.solo,  # six desks at 24x use most of both cores: beside another test they fell behind
    pytest.mark.needs("mosquitto"),
]


class Dashboard(threading.Thread):
    """Watches the running demo's dashboard in headless Chromium until alerts show, then screenshots it."""

    def __init__(self, demo: Demo, want_alerts: int, shot: Path) -> None:
        super().__init__(daemon=True)
        self.demo, self.want, self.shot = demo, want_alerts, shot
        self.seen_alert_tiles = 0
        self.seen_rules: set[str] = set()
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _run(self) -> None:
        from playwright.sync_api import sync_playwright

        while self.demo.host is None or self.demo.host.dashboard_url is None:
            if self.stop.wait(0.2):
                return
        url = self.demo.host.dashboard_url
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=real_parts.find("chromium"), args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url + "#token=demo")
            while not self.stop.wait(1.0):
                tiles = page.locator(".tile.alerting").count()
                chips = page.locator(".chip.alert").all_inner_texts()
                self.seen_rules |= {c.split(" ")[0] for c in chips}
                if tiles > self.seen_alert_tiles:
                    self.seen_alert_tiles = tiles
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(self.shot), full_page=True)
                if self.seen_alert_tiles >= self.want:
                    break
            browser.close()


def _run_chain(broker_url: str | None, desks: int, duration_s: float, time_scale: float, work: Path,
               witness_url: str | None, want_tiles: int = 0) -> tuple[DemoResult, Capture | None, Dashboard | None]:
    capture = Capture(witness_url).start() if witness_url else None
    dash: list[Dashboard] = []

    def on_start(demo: Demo) -> None:
        if want_tiles and real_parts.find("chromium") is not None:
            d = Dashboard(demo, want_tiles, ARTIFACTS / "demo-dashboard.png")
            d.start()
            dash.append(d)

    opts = DemoOptions(desks=desks, duration_s=duration_s, time_scale=time_scale, broker_url=broker_url,
                       dashboard_port=0, workdir=work, live=False)
    out, err = io.StringIO(), io.StringIO()
    try:
        result = run_demo(opts, out=out, err=err, on_start=on_start)
    finally:
        for d in dash:
            d.stop.set()
            d.join(30)
    if capture is not None:
        capture.wait_quiet()
        capture.stop()
    for log in sorted(work.glob("desk-*.log")):
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, f"{log.name} has a traceback:\n{text[-3000:]}"
    return result, capture, (dash[0] if dash else None)


def _spooled_rows(state_dir: Path) -> int:
    """Rows still waiting in a desk's spool (0 once every QoS 1 message was acknowledged)."""
    assert (state_dir / "spool.db").exists(), f"{state_dir.name}: no spool"
    spool = Spool(state_dir / "spool.db")
    try:
        return len(spool)
    finally:
        spool.close()


def _transitions(msgs: list[Captured]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    seen: set[tuple[str, str, str, int]] = set()
    for m in msgs:
        if kind_of(m.topic) != "alert-log":
            continue
        d = m.doc()
        key = (d["desk"], d["rule"], d["transition"], d["ts"])
        if key in seen:  # a redelivered log line
            continue
        seen.add(key)
        out[(d["desk"], d["rule"])].append(d["transition"])
    return out


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoResult, Capture, Dashboard | None, Path]]:
    """One run of the six-desk demo on a real mosquitto, shared by the tests of this module (whose
    ``needs("mosquitto")`` mark has checked for it)."""
    tmp = tmp_path_factory.mktemp("chain")
    broker = Mosquitto(tmp, free_port())
    broker.start()
    try:
        duration = float(os.environ.get("HSC_SYSTEM_DURATION_S", "80"))
        result, capture, dash = _run_chain(broker.url, 6, duration, 24.0, tmp / "demo", broker.url, want_tiles=3)
        assert capture is not None
        yield result, capture, dash, tmp / "demo"
    finally:
        broker.stop()


def test_every_scenario_fires_its_alert_and_resolves_it(chain: tuple[DemoResult, Capture, Any, Path]) -> None:
    result, capture, _, _ = chain
    assert result.ok, f"scenarios without their alert: {result.missing}"
    transitions = _transitions(capture.snapshot())
    for desk, rule in sorted(result.expected.items()):
        seen = transitions.get((desk, rule), [])
        assert "firing" in seen, f"{desk}: no firing {rule} on the alert log (saw {seen})"
        assert "resolved" in seen[seen.index("firing"):], f"{desk}: {rule} fired but never resolved ({seen})"
    assert sum(result.summary.rejected.values()) == 0, result.summary.rejected


def test_every_payload_validates_against_the_checked_in_schemas(chain: tuple[DemoResult, Capture, Any, Path]) -> None:
    _, capture, _, _ = chain
    validators = schemas()
    msgs = capture.snapshot()
    kinds: dict[str, int] = defaultdict(int)
    for m in msgs:
        if not m.payload:  # a cleared retained alert
            assert kind_of(m.topic) == "alert", m.topic
            continue
        kind = kind_of(m.topic)
        assert kind in validators, f"unexpected topic {m.topic}"
        errors = sorted(validators[kind].iter_errors(m.doc()), key=str)
        assert not errors, f"{m.topic}: {errors[0].message} at {list(errors[0].absolute_path)}"
        kinds[kind] += 1
    for kind in ("state", "metrics", "event", "minute", "alert", "alert-log"):
        assert kinds[kind] > 0, f"no {kind} message seen: {dict(kinds)}"


MAX_NUMBERS = 128
"""No payload holds more numbers than this, however nested (the largest kind holds about 30):
128 samples would be 8 ms of 16 kHz audio, a spectrum 128 bins."""
MAX_KEYS = 64
"""No JSON object has more keys than this (samples or bins can hide as keys as well as in lists)."""
MAX_NUMBERS_IN_TEXT = 16
"""No string holds more numbers than this ("0.1,0.2,..." is a list in disguise)."""
BLOB = re.compile(r"[A-Za-z0-9+/=_-]{65,}")
"""base64, base64url or hex without whitespace, over 64 characters (ids are at most 32, the config
hash 16): about 48 bytes of anything, where the contract has only numbers, states and ids."""
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def audio_shapes(payload: bytes) -> list[str]:
    """Everything in one payload shaped like audio, spectra or transcripts: binary, not a JSON object,
    long lists or strings (``capture.audio_like``), many numbers however nested, objects with many keys,
    base64/hex blobs, numbers packed into a string. An empty payload (a cleared alert) carries nothing."""
    if not payload:
        return []
    if len(payload) > MAX_PAYLOAD:
        return [f"{len(payload)} bytes"]
    try:
        doc = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        return ["binary, not UTF-8 text"]
    except ValueError:
        return ["not JSON"]
    if not isinstance(doc, dict):
        return [f"a JSON {type(doc).__name__}, not an object"]
    bad = audio_like(doc)
    numbers = 0
    for path, v in walk(doc):
        if isinstance(v, int | float) and not isinstance(v, bool):
            numbers += 1
        elif isinstance(v, dict) and len(v) > MAX_KEYS:
            bad.append(f"{path}: an object of {len(v)} keys")
        elif isinstance(v, str):
            if (blob := BLOB.search(v)) is not None:
                bad.append(f"{path}: a blob of {len(blob.group())} base64/hex characters")
            if len(NUMBER.findall(v)) > MAX_NUMBERS_IN_TEXT:
                bad.append(f"{path}: a string of {len(NUMBER.findall(v))} numbers")
    if numbers > MAX_NUMBERS:
        bad.append(f"$: {numbers} numbers")
    return bad


def test_the_audio_scan_sees_every_shape_of_audio() -> None:
    """The scanner itself, on payloads that smuggle 8 ms to 1 s of samples in each shape it knows."""
    samples = [round(0.01 * i, 2) for i in range(160)]
    smuggled = {
        "binary": bytes(range(256)) * 4,
        "raw int16 as text": b"\x00\x01" * 100,
        "a top-level array": json.dumps(samples).encode(),
        "a long list": json.dumps({"v": 1, "x": samples}).encode(),
        "nested short lists": json.dumps({"v": 1, "x": [samples[i:i + 8] for i in range(0, 160, 8)]}).encode(),
        "8x8x8 lists": json.dumps({"v": 1, "x": [[[0.5] * 8] * 8] * 8}).encode(),
        "samples as keys": json.dumps({"v": 1, "x": {f"s{i}": s for i, s in enumerate(samples)}}).encode(),
        "base64": json.dumps({"v": 1, "x": base64.b64encode(bytes(120)).decode()}).encode(),
        "hex": json.dumps({"v": 1, "x": bytes(40).hex()}).encode(),
        "numbers in a string": json.dumps({"v": 1, "x": ",".join(map(str, samples[:40]))}).encode(),
        "a transcript": json.dumps({"v": 1, "x": "hello, how can I help you today? " * 8}).encode(),
        "too big": json.dumps({"v": 1, "x": [samples[:8]] * 8, "pad": ["y" * 199] * 30}).encode(),
    }
    for shape, payload in smuggled.items():
        assert audio_shapes(payload), f"the scan missed {shape}"
    ordinary = {"v": 1, "boot": 3, "seq": 1234, "ts": 1_767_225_600_000, "site": "site1", "desk": "d01",
                "config_hash": "0123456789abcdef", "level_dbov": -26.5, "rate_spm": 251.0,
                "zones": {"volume": 12.0, "pace": 0.0}, "summary": "volume cue active for 75 s of speech in the "
                "last 5 min", "cues": ["volume", "posture"]}
    assert audio_shapes(json.dumps(ordinary).encode()) == []
    assert audio_shapes(b"") == []  # a cleared alert


def test_no_payload_carries_audio(chain: tuple[DemoResult, Capture, Any, Path]) -> None:
    """Every payload of the run, on every topic (desk kinds, alerts, alert log), retained or not."""
    _, capture, _, _ = chain
    messages = capture.snapshot()
    kinds = {kind_of(m.topic) for m in messages}
    assert {"state", "metrics", "event", "minute", "alert", "alert-log"} <= kinds, kinds
    bad = [(m.topic, shapes) for m in messages if (shapes := audio_shapes(m.payload))]
    assert not bad, f"{len(bad)} of {len(messages)} payloads are shaped like audio, e.g. {bad[:5]}"


def test_no_qos1_message_lost(chain: tuple[DemoResult, Capture, Any, Path]) -> None:
    """Spools drained, minute rollups contiguous per boot, cue and wear events alternate per boot."""
    _, capture, _, work = chain
    for state_dir in sorted(p for p in work.iterdir() if p.is_dir() and p.name.startswith("desk-")):
        assert _spooled_rows(state_dir) == 0, f"{state_dir.name}: QoS 1 rows left unacknowledged"
    minutes: dict[tuple[str, int], set[int]] = defaultdict(set)
    events: dict[tuple[str, int], dict[int, dict[str, Any]]] = defaultdict(dict)
    for m in capture.snapshot():
        kind = kind_of(m.topic)
        if kind == "minute":
            d = m.doc()
            minutes[(d["desk"], d["boot"])].add(d["minute_ts"])
        elif kind == "event":
            d = m.doc()
            events[(d["desk"], d["boot"])][d["seq"]] = d  # dedup on (desk, boot, seq)
    assert minutes, "no minute rollups"
    for (desk, boot), stamps in minutes.items():
        ts = sorted(stamps)
        gaps = [(a, b) for a, b in zip(ts, ts[1:], strict=False) if b - a != 60_000]
        assert not gaps, f"{desk} boot {boot}: minute rollups missing between {gaps[:3]}"
    for (desk, boot), by_seq in events.items():
        state: dict[str, bool] = {}
        for seq in sorted(by_seq):
            e = by_seq[seq]
            if e["kind"] in ("cue_on", "cue_off"):
                key, on = f"cue:{e['cue']}", e["kind"] == "cue_on"
            elif e["kind"] in ("worn", "doffed"):
                key, on = "worn", e["kind"] == "worn"
            else:
                continue
            assert state.get(key) != on, f"{desk} boot {boot}: two {e['kind']} in a row for {key} (one lost)"
            state[key] = on


@pytest.mark.needs("chromium")
def test_dashboard_shows_the_alerts_in_chromium(chain: tuple[DemoResult, Capture, Dashboard | None, Path]) -> None:
    _, _, dash, _ = chain
    assert dash is not None
    assert dash.error is None, repr(dash.error)
    assert dash.seen_alert_tiles >= 3, f"the dashboard lit {dash.seen_alert_tiles} tiles"
    assert {"volume", "pace", "posture"} & dash.seen_rules, dash.seen_rules
    assert (ARTIFACTS / "demo-dashboard.png").stat().st_size > 10_000


def test_embedded_broker_default(tmp_path: Path) -> None:
    """The demo's default broker (amqtt, in-process) carries a smaller floor to its alerts."""
    # 25 s at 40x: the loud desk's volume fires within seconds (loud until 0.45 of the run, 11 s), the calm
    # desk is unplugged at 0.35 (9 s, its agent long connected) and fires desk-offline 30 floor s (0.75 s) later
    result, _, _ = _run_chain(None, 2, float(os.environ.get("HSC_SYSTEM_SMALL_S", "25")), 40.0,
                              tmp_path / "demo", None)
    assert result.ok, f"scenarios without their alert: {result.missing}"
    assert result.summary.messages_in > 50
