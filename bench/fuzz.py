"""Fuzz the host's ingest through a real mosquitto: COUNT generated payloads per desk message kind.

    .venv/bin/python bench/fuzz.py --count 100000 --seed 13

For each kind (state, metrics, event, minute) the script generates COUNT payloads from a seeded
generator: valid messages, then wrong types, huge values, deep nesting, invalid UTF-8, bodies of
16 KiB and more, truncated JSON, random bytes, wrong type tags, unknown fields, replays, and topics
whose site/desk differ from the payload's (or are not ids at all). It publishes them with the
contract's QoS to a real mosquitto, where a real ``headset-host run`` process ingests them, and reads
the host's own counters from its ``/metrics``.

The expected outcome of every payload is computed beforehand with the contract's own decoder
(``mqtt_schema.decode_topic``): a reject reason, or "valid" (then accepted, duplicate or superseded).
Per kind, the host's counted outcomes must add up to the payloads sent, and its rejects by reason
must equal the expected ones. ``internal-error`` counts messages the host could only count as a bug
(it kept running). A host process that exits is a crash. Progress goes to stderr; the table (or
``--json``) to stdout. Exit status 1 if any payload was unaccounted for, counted under another
reason, or the host crashed.

Publishing is flow controlled (at most WINDOW messages ahead of the host's ``messages_in``), so a
broker queue limit never drops a message; the broker is started with ``max_queued_messages 0``
unless ``--broker-port`` names one already running.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from mqtt_schema import (  # noqa: E402
    QOS,
    Cue,
    DeskKind,
    DeskStatus,
    DeskTopic,
    Event,
    EventKind,
    Metrics,
    Minute,
    PartStatus,
    Posture,
    SchemaError,
    State,
    decode_topic,
    encode,
)
from mqtt_schema.codec import MAX_PAYLOAD_BYTES  # noqa: E402

KINDS = (DeskKind.STATE, DeskKind.METRICS, DeskKind.EVENT, DeskKind.MINUTE)
SITES = ("site1", "site2", "s-3")
DESKS = tuple(f"d{i:02d}" for i in range(24))
T0 = 1_795_000_000_000
VALID = "valid"
INTERNAL = "internal-error"
EXAMPLE = """example:
  .venv/bin/python bench/fuzz.py --count 100000 --seed 13          # the full run (a few minutes)
  .venv/bin/python bench/fuzz.py --count 2000 --json --broker-port 1883
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- payload generation -------------------------------------------------------------------------------


@dataclass
class Item:
    """One generated message: where it goes, its bytes, and what the contract says it is."""

    topic: str
    payload: bytes
    category: str
    expected: str = VALID
    """``valid``, or the reject reason ``mqtt_schema.decode_topic`` gives (``internal-error`` when it raises
    something other than a SchemaError)."""


def expected_outcome(topic: str, payload: bytes) -> str:
    try:
        decode_topic(topic, payload)
    except SchemaError as exc:
        return exc.reason
    except Exception:  # what the host can only count as internal-error
        return INTERNAL
    return VALID


class Generator:
    """Seeded payloads for one kind. ``next()`` gives one :class:`Item` (its expected outcome filled in)."""

    def __init__(self, kind: DeskKind, seed: int) -> None:
        self.kind = kind
        self.rng = random.Random(f"{seed}:{kind.value}")
        self.seq: dict[tuple[str, str], int] = {}
        self.sent_valid: list[tuple[str, bytes]] = []
        mutators: list[tuple[str, int, Callable[[], tuple[str, bytes]]]] = [
            ("valid", 16, self._valid),
            ("unknown-field", 3, self._unknown_field),
            ("wrong-type", 14, self._wrong_type),
            ("huge-value", 8, self._huge_value),
            ("missing-field", 5, self._missing_field),
            ("deep-nesting", 4, self._deep_nesting),
            ("invalid-utf8", 5, self._invalid_utf8),
            ("large-body", 4, self._large_body),
            ("id-mismatch", 8, self._id_mismatch),
            ("bad-topic-id", 5, self._bad_topic_id),
            ("truncated", 6, self._truncated),
            ("random-bytes", 5, self._random_bytes),
            ("empty", 1, self._empty),
            ("not-an-object", 3, self._not_object),
            ("wrong-tag", 4, self._wrong_tag),
            ("nan-infinity", 2, self._nan_infinity),
            ("wrong-version", 2, self._wrong_version),
            ("replay", 5, self._replay),
        ]
        self.names = [m[0] for m in mutators]
        self.weights = [m[1] for m in mutators]
        self.fns = [m[2] for m in mutators]

    # helpers

    def _ids(self) -> tuple[str, str]:
        if self.rng.random() < 0.02:  # now and then a new desk: the floor grows a little
            return self.rng.choice(SITES), f"x{self.rng.randrange(10**6)}"
        return self.rng.choice(SITES), self.rng.choice(DESKS)

    def _topic(self, site: str, desk: str) -> str:
        return str(DeskTopic(site, desk, self.kind))

    def _header(self, site: str, desk: str) -> dict[str, Any]:
        key = (site, desk)
        self.seq[key] = self.seq.get(key, 0) + 1 + (self.rng.randrange(3) == 0)
        ts = T0 + self.seq[key] * 1000 + self.rng.randrange(1000)
        return {"site": site, "desk": desk, "boot": 1 + (self.seq[key] > 10_000), "seq": self.seq[key], "ts": ts}

    def _opt(self, lo: float, hi: float) -> float | None:
        return None if self.rng.random() < 0.2 else round(self.rng.uniform(lo, hi), 2)

    def _message(self, site: str, desk: str) -> msgspec.Struct:
        r, h = self.rng, self._header(site, desk)
        if self.kind is DeskKind.STATE:
            return State(status=r.choice(list(DeskStatus)), audio=r.choice(list(PartStatus)),
                         headset=r.choice(list(PartStatus)), **h)
        if self.kind is DeskKind.METRICS:
            speech = round(r.uniform(0, 1), 2)
            return Metrics(speaking=speech > 0.3, speech_s=speech, level_dbov=self._opt(-60, 0),
                           rate_spm=self._opt(0, 300), distance_cm=self._opt(0, 30), noise_dbov=self._opt(-90, -20),
                           clipping=round(r.random() / 10, 3), worn=r.choice([True, False, None]),
                           posture=r.choice(list(Posture)), pitch_deg=self._opt(-90, 90), roll_deg=self._opt(-90, 90),
                           cues=r.sample(list(Cue), r.randrange(3)), **h)
        if self.kind is DeskKind.EVENT:
            return Event(kind=r.choice(list(EventKind)), cue=r.choice([None, *Cue]), value=self._opt(-1e6, 1e6),
                         count=r.choice([None, r.randrange(100)]), message=r.choice([None, "", "spool full", "ok"]),
                         **h)
        minute_ts = (h["ts"] // 60_000) * 60_000
        return Minute(minute_ts=minute_ts, speech_s=round(r.uniform(0, 60), 1), level_dbov=self._opt(-60, 0),
                      rate_spm=self._opt(0, 300), noise_dbov=self._opt(-90, -20),
                      cue_s={c: round(r.uniform(0, 60), 1) for c in r.sample(list(Cue), r.randrange(3))},
                      worn_s=round(r.uniform(0, 60), 1), slouched_s=round(r.uniform(0, 30), 1), **h)

    def _doc(self) -> tuple[str, str, dict[str, Any]]:
        site, desk = self._ids()
        doc = json.loads(encode(self._message(site, desk)))
        return site, desk, doc

    def _dumps(self, doc: Any) -> bytes:
        return json.dumps(doc, separators=(",", ":")).encode()

    def _any_value(self, depth: int = 0) -> Any:
        r = self.rng
        choice = r.randrange(9 if depth < 3 else 6)
        if choice == 0:
            return None
        if choice == 1:
            return r.choice([True, False])
        if choice == 2:
            return r.randrange(-(2**63), 2**63)
        if choice == 3:
            return r.uniform(-1e9, 1e9)
        if choice == 4:
            return "".join(chr(r.randrange(32, 0x2FFF)) for _ in range(r.randrange(12)))
        if choice == 5:
            return r.choice(["", "online", "cue_on", "site1", "d01", "-1", "1e9"])
        if choice == 6:
            return [self._any_value(depth + 1) for _ in range(r.randrange(4))]
        if choice == 7:
            return {str(r.randrange(100)): self._any_value(depth + 1) for _ in range(r.randrange(4))}
        return r.choice([[], {}, [None], {"": None}])

    # categories

    def _valid(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        payload = self._dumps(doc)
        self.sent_valid.append((self._topic(site, desk), payload))
        if len(self.sent_valid) > 500:
            del self.sent_valid[: len(self.sent_valid) - 500]
        return self._topic(site, desk), payload

    def _unknown_field(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        doc[f"x_{self.rng.randrange(1000)}"] = self._any_value()
        return self._topic(site, desk), self._dumps(doc)

    def _wrong_type(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        key = self.rng.choice(sorted(doc))
        value = self._any_value()
        while type(value) is type(doc[key]):
            value = self._any_value()
        doc[key] = value
        return self._topic(site, desk), self._dumps(doc)

    def _huge_value(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        key = self.rng.choice(sorted(k for k in doc if k not in ("type",)))
        huge = self.rng.choice(["1e308", "-1e308", "1e400", "-1e400", str(2**64), str(-(2**63) - 1),
                                "9" * 400, "1" + "0" * 4000, "4.9e-324", str(2**53 + 1), "-0.0",
                                json.dumps("x" * self.rng.randrange(201, 5000))])
        doc[key] = "__huge__"
        text = self._dumps(doc).decode().replace('"__huge__"', huge, 1)
        return self._topic(site, desk), text.encode()

    def _missing_field(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        for _ in range(1 + self.rng.randrange(3)):
            if doc:
                del doc[self.rng.choice(sorted(doc))]
        return self._topic(site, desk), self._dumps(doc)

    def _deep_nesting(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        depth = self.rng.choice([10, 100, 300, 600, 1500, 5000, 8000])
        opener, closer = self.rng.choice([("[", "]"), ('{"a":', "}")])
        deep = opener * depth + "1" + closer * depth
        key = self.rng.choice([f"x_{depth}", *sorted(doc)])
        doc[key] = "__deep__"
        text = self._dumps(doc).decode().replace('"__deep__"', deep, 1)
        if self.rng.random() < 0.2:
            text = deep
        return self._topic(site, desk), text.encode()

    def _invalid_utf8(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        raw = self._dumps(doc)
        bad = self.rng.choice([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf",
                               b"\x80", b"\xfe\xfe"])
        spots = [i + 1 for i, b in enumerate(raw) if b == ord('"')]
        i = self.rng.choice(spots) if spots else 0
        return self._topic(site, desk), raw[:i] + bad + raw[i:]

    def _large_body(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        base = len(self._dumps(doc))
        target = self.rng.choice([MAX_PAYLOAD_BYTES - 1, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1,
                                  MAX_PAYLOAD_BYTES + self.rng.randrange(1, 50_000), 256 * 1024])
        pad = max(0, target - base - len(',"pad":""'))
        if self.rng.random() < 0.5:
            doc["pad"] = "p" * pad
            payload = self._dumps(doc)
        else:  # whitespace before the closing brace
            payload = self._dumps(doc)[:-1] + b" " * (target - base) + b"}"
        return self._topic(site, desk), payload

    def _id_mismatch(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        if self.rng.random() < 0.5:
            other = self.rng.choice([s for s in SITES if s != site])
            return self._topic(other, desk), self._dumps(doc)
        other = self.rng.choice([d for d in DESKS if d != desk])
        return self._topic(site, other), self._dumps(doc)

    def _bad_topic_id(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        bad = self.rng.choice(["D01", "d_01", "d" * 33, "", "alert", "dé", "d 1", "\u2603", "a.b", "-" * 40,
                               "SITE", "x" * 300])
        if self.rng.random() < 0.5:
            topic = f"hsc/v1/{bad}/{desk}/{self.kind.value}"
        else:
            topic = f"hsc/v1/{site}/{bad}/{self.kind.value}"
        return topic, self._dumps(doc)

    def _truncated(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        raw = self._dumps(doc)
        return self._topic(site, desk), raw[: self.rng.randrange(1, len(raw))]

    def _random_bytes(self) -> tuple[str, bytes]:
        site, desk = self._ids()
        n = self.rng.choice([1, 2, 8, 64, 512, 4096, 20_000])
        return self._topic(site, desk), self.rng.randbytes(n)

    def _empty(self) -> tuple[str, bytes]:
        site, desk = self._ids()
        return self._topic(site, desk), self.rng.choice([b"", b" ", b"\n", b"{}", b"null"])

    def _not_object(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        value: Any = self.rng.choice([[doc], list(doc.values()), 1, -1.5, "state", None, True, [], [[]]])
        return self._topic(site, desk), self._dumps(value)

    def _wrong_tag(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        tag = self.rng.choice(["state", "metrics", "event", "minute", "config", "alert", "alert-log", "", "STATE",
                               None, 1])
        if tag is None and self.rng.random() < 0.5:
            del doc["type"]
        else:
            doc["type"] = tag
        return self._topic(site, desk), self._dumps(doc)

    def _nan_infinity(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        key = self.rng.choice(sorted(k for k in doc if k != "type"))
        doc[key] = "__n__"
        token = self.rng.choice(["NaN", "Infinity", "-Infinity", "nan", "1e999", "0x10", "+1", ".5", "01"])
        return self._topic(site, desk), self._dumps(doc).replace(b'"__n__"', token.encode(), 1)

    def _wrong_version(self) -> tuple[str, bytes]:
        site, desk, doc = self._doc()
        doc["v"] = self.rng.choice([0, 2, -1, "1", 1.5, None, 2**70])
        return self._topic(site, desk), self._dumps(doc)

    def _replay(self) -> tuple[str, bytes]:
        if not self.sent_valid:
            return self._valid()
        return self.rng.choice(self.sent_valid)

    def next(self) -> Item:
        i = self.rng.choices(range(len(self.fns)), self.weights)[0]
        topic, payload = self.fns[i]()
        return Item(topic, payload, self.names[i], expected_outcome(topic, payload))


# --- the real parts -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {deadline_s:g} s")


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                    f"{'user root' if os.geteuid() == 0 else ''}\nlog_dest file {workdir}/mosquitto.log\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


@dataclass
class Host:
    """A real ``headset-host run`` process and its /metrics."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def counters(self) -> dict[str, float]:
        """``name`` or ``name{label="x"}`` -> value, from the host's own Prometheus text."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def stop(self) -> int | None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_host(workdir: Path, broker_port: int) -> Host:
    http = free_port()
    cfg = workdir / "host.toml"
    cfg.write_text(f'[broker]\nurl = "mqtt://127.0.0.1:{broker_port}"\nclient_id = "fuzz-host-{os.getpid()}"\n'
                   f'[host]\ndb = "{workdir / "host.db"}"\n[dashboard]\nport = {http}\n')
    log_path = workdir / "host.log"
    with open(log_path, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "host_agent.cli", "run", "--config", str(cfg)],
                                cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    host = Host(proc, f"http://127.0.0.1:{http}", log_path)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if not host.alive:
            raise RuntimeError(f"the host exited at start: {log_path.read_text()[-2000:]}")
        try:
            host.counters()
            return host
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    host.stop()
    raise RuntimeError(f"the host did not serve /metrics in 30 s: {log_path.read_text()[-2000:]}")


# --- one run --------------------------------------------------------------------------------------------

OUTCOME_FAMILIES = {
    "accepted": "hsc_host_messages_accepted_total",
    "duplicate": "hsc_host_messages_duplicate_total",
    "superseded": "hsc_host_messages_superseded_total",
    "rejected": "hsc_host_messages_rejected_total",
}


def outcomes(counters: dict[str, float]) -> dict[str, Counter[str]]:
    """The host's outcome counters as {family: Counter(label value -> count)}, plus ``in``."""
    out: dict[str, Counter[str]] = {k: Counter() for k in OUTCOME_FAMILIES}
    out["in"] = Counter({"all": int(counters.get("hsc_host_messages_in_total", 0))})
    for family, metric in OUTCOME_FAMILIES.items():
        for name, value in counters.items():
            if name.startswith(metric + "{"):
                label = name.split('="', 1)[1].rsplit('"', 1)[0]
                out[family][label] += int(value)
    return out


def diff(after: dict[str, Counter[str]], before: dict[str, Counter[str]]) -> dict[str, Counter[str]]:
    return {k: Counter({label: after[k][label] - before[k].get(label, 0) for label in after[k]
                        if after[k][label] - before[k].get(label, 0)}) for k in after}


@dataclass
class KindResult:
    kind: str
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    superseded: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    expected_rejected: dict[str, int] = field(default_factory=dict)
    expected_valid: int = 0
    categories: dict[str, int] = field(default_factory=dict)
    counted: int = 0
    unaccounted: int = 0
    reason_mismatch: dict[str, int] = field(default_factory=dict)
    crashes: int = 0
    seconds: float = 0.0
    bytes_sent: int = 0

    @property
    def ok(self) -> bool:
        return self.unaccounted == 0 and not self.reason_mismatch and self.crashes == 0


def run_kind(kind: DeskKind, count: int, seed: int, host: Host, client: mqtt.Client, window: int) -> KindResult:
    gen = Generator(kind, seed)
    res = KindResult(kind.value)
    qos = QOS[kind.value]
    base = outcomes(host.counters())
    in0 = base["in"]["all"]
    expected: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    t0 = time.perf_counter()
    last_note = t0
    host_in = in0

    def wait_for(target: int, deadline_s: float = 120.0) -> int:
        end = time.monotonic() + deadline_s
        while True:
            got = outcomes(host.counters())["in"]["all"]
            if got >= target:
                return got
            if not host.alive:
                raise RuntimeError("the host process exited")
            if time.monotonic() > end:
                raise RuntimeError(f"the host counted {got - in0} of {target - in0} {kind.value} messages in "
                                   f"{deadline_s:g} s: messages lost between the broker and the host?")
            time.sleep(0.005)

    for i in range(count):
        item = gen.next()
        expected[item.expected] += 1
        categories[item.category] += 1
        client.publish(item.topic, item.payload, qos=qos)
        res.sent += 1
        res.bytes_sent += len(item.payload)
        if res.sent - (host_in - in0) >= window:
            host_in = wait_for(in0 + res.sent - window // 2)
        now = time.perf_counter()
        if now - last_note >= 5.0:
            last_note = now
            log(f"fuzz: {kind.value}: {i + 1}/{count} sent, {host_in - in0} counted by the host, "
                f"{(i + 1) / (now - t0):.0f} msg/s")
    wait_for(in0 + res.sent)
    res.seconds = time.perf_counter() - t0
    d = diff(outcomes(host.counters()), base)
    res.accepted = sum(d["accepted"].values())
    res.duplicate = sum(d["duplicate"].values())
    res.superseded = sum(d["superseded"].values())
    res.rejected = dict(sorted(d["rejected"].items()))
    res.counted = res.accepted + res.duplicate + res.superseded + sum(res.rejected.values())
    res.unaccounted = res.sent - res.counted
    res.expected_valid = expected.pop(VALID, 0)
    res.expected_rejected = dict(sorted(expected.items()))
    res.categories = dict(sorted(categories.items()))
    mismatch = Counter(res.rejected)
    mismatch.subtract(expected)
    mismatch[VALID] = res.accepted + res.duplicate + res.superseded - res.expected_valid
    res.reason_mismatch = {k: v for k, v in mismatch.items() if v}
    res.crashes = 0 if host.alive else 1
    return res


def alive_check(host: Host, client: mqtt.Client) -> bool:
    """After the fuzz, a fresh valid state is still accepted."""
    before = outcomes(host.counters())["accepted"]["state"]
    msg = State(site="site1", desk="alive-check", boot=1, seq=1, ts=T0, status=DeskStatus.ONLINE)
    client.publish(str(DeskTopic("site1", "alive-check", DeskKind.STATE)), encode(msg), qos=1).wait_for_publish(10)
    end = time.monotonic() + 20
    while time.monotonic() < end and host.alive:
        if outcomes(host.counters())["accepted"]["state"] > before:
            return True
        time.sleep(0.05)
    return False


def fuzz(count: int, seed: int, broker_port: int | None, window: int, kinds: tuple[DeskKind, ...] = KINDS,
         workdir: Path | None = None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hsc-fuzz-")) if workdir is None else workdir
    broker: subprocess.Popen[bytes] | None = None
    if broker_port is None:
        broker, broker_port = start_mosquitto(tmp)
    host = start_host(tmp, broker_port)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fuzz-desks-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", broker_port)
    client.loop_start()
    results: list[KindResult] = []
    try:
        for kind in kinds:
            log(f"fuzz: {kind.value}: {count} payloads (seed {seed})")
            results.append(run_kind(kind, count, seed, host, client, window))
        alive = alive_check(host, client)
        final = outcomes(host.counters())
    finally:
        client.disconnect()
        client.loop_stop()
        code = host.stop()
        if broker is not None:
            broker.terminate()
            broker.wait(10)
    host_log = host.log_path.read_text(errors="replace")
    report = {
        "seed": seed, "count": count,
        "kinds": [r.__dict__ | {"ok": r.ok} for r in results],
        "host_alive_after": alive,
        "host_exit_code": code,
        "host_tracebacks": host_log.count("Traceback"),
        "host_reject_warnings": host_log.count("rejected a message on"),
        "totals": {k: dict(v) for k, v in final.items()},
        "ok": alive and all(r.ok for r in results),
    }
    if workdir is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


# --- output -------------------------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    lines = [f"fuzz of the host's ingest through mosquitto: {report['count']} payloads per kind, seed {report['seed']}",
             "",
             f"{'kind':8} {'sent':>8} {'accepted':>8} {'dup/sup':>8} {'rejected':>8} {'unacct':>6} "
             f"{'crashes':>7} {'seconds':>8} {'msg/s':>7}  rejected by reason"]
    for r in report["kinds"]:
        reasons = ", ".join(f"{k} {v}" for k, v in r["rejected"].items())
        lines.append(f"{r['kind']:8} {r['sent']:8d} {r['accepted']:8d} {r['duplicate'] + r['superseded']:8d} "
                     f"{sum(r['rejected'].values()):8d} {r['unaccounted']:6d} {r['crashes']:7d} "
                     f"{r['seconds']:8.1f} {r['sent'] / max(r['seconds'], 1e-9):7.0f}  {reasons}")
    lines.append("")
    for r in report["kinds"]:
        if r["reason_mismatch"]:
            lines.append(f"MISMATCH {r['kind']}: host count minus expected, by outcome: {r['reason_mismatch']}")
    lines.append(f"host alive after the run: {'yes' if report['host_alive_after'] else 'NO'}; "
                 f"tracebacks in its log: {report['host_tracebacks']}; "
                 f"reject warnings logged (at most 1/min/topic): {report['host_reject_warnings']}")
    cats: Counter[str] = Counter()
    for r in report["kinds"]:
        cats.update(r["categories"])
    lines.append("generated: " + ", ".join(f"{k} {v}" for k, v in sorted(cats.items())))
    lines.append("result: " + ("every payload got exactly one counted outcome, by the expected reason"
                               if report["ok"] else "FAILED (see above)"))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/fuzz.py", description=__doc__.split("\n\n")[0] if __doc__ else None,
                                epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=100_000, help="payloads per desk message kind (default 100000)")
    p.add_argument("--seed", type=int, default=13, help="generator seed (default 13): the same seed, the same payloads")
    p.add_argument("--kind", action="append", choices=[k.value for k in KINDS],
                   help="only this kind (repeatable; default: state, metrics, event, minute)")
    p.add_argument("--broker-port", type=int, metavar="PORT",
                   help="use the mosquitto already listening on 127.0.0.1:PORT (default: start one)")
    p.add_argument("--window", type=int, default=400,
                   help="most messages published ahead of the host's count (default 400)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of the table")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    if args.window < 2:
        parser.error(f"--window must be at least 2, got {args.window}")
    kinds = tuple(DeskKind(k) for k in args.kind) if args.kind else KINDS
    try:
        report = fuzz(args.count, args.seed, args.broker_port, args.window, kinds)
    except (RuntimeError, OSError) as exc:
        print(f"bench/fuzz.py: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report) if args.json else table(report))
    return 0 if report["ok"] else 1


def _items(kind: DeskKind, count: int, seed: int) -> Iterator[Item]:
    """The payloads of one kind without publishing them (for tests of the generator)."""
    gen = Generator(kind, seed)
    for _ in range(count):
        yield gen.next()


if __name__ == "__main__":
    sys.exit(main())
