"""The demo's PBX bridge: call state for the call desks, on their ``cti`` topic (schema 1.1).

A real PBX or softphone bridge publishes :class:`mqtt_schema.Cti` messages on
``hsc/v1/{site}/{desk}/cti``; the desk agent (``[calls] source = "mqtt"``) turns them into call states,
measures each call and publishes its ``call`` summary. This bridge does the same for the demo's call
desks, and stages each call against the desk's own speech so that every story plays the same way at
any time scale: for a late greeting it follows the desk's ``metrics.speaking`` on the broker.

A call (:class:`CallStory`), in floor (scaled) seconds:

- **prompt** greeting: the phone rings at once and is answered 2 s into ring ``rings``; the desk's
  agent talks with pauses under a second, so the greeting latency stays under the 2 s norm;
- **late** greeting (a desk whose agent waits 10 s between lines, ``long_pauses``): the phone rings as
  the agent falls silent (a line ends, a wait begins), is answered 2 s into ring ``rings``, and the
  agent stays silent for the rest of its wait: a greeting several seconds late. A prompt call to such a
  desk rings as the agent begins a line, and is answered into it.

The ring count goes with each ``ringing`` and the ``established`` message (``rings``, counted like a
desk phone's ring detector at the default cadence of 1 s on, 4 s off), so it does not depend on how
fast the broker carries the messages (a busy embedded broker may delay one by a few floor seconds at
20x). A call is hung up ``talk_s`` after it was answered;
the next one starts ``gap_s`` later. From ``good_from`` (a fraction of the run) on, calls follow the
good pattern (prompt, answered in the first ring), so the desk's alerts resolve.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from host_agent.floor import RING_PERIOD_S
from mqtt_schema import Cti, CtiPhase, DeskKind, DeskTopic, Metrics, decode, encode
from mqtt_schema.messages import CallDirection

log = logging.getLogger("host_agent.demo.cti")

ANSWER_INTO_RING_S = 2.0
"""The desk answers this long into its last ring (floor seconds)."""
FIRST_CALL_AT = 0.08
"""The first calls start at this fraction of the run (about 7 wall seconds at the demo's defaults)."""
WARM_METRICS = 10
"""Metrics a desk must have sent before its first call."""
LAST_CALL_AT = 0.95
"""No call starts after this fraction of the run (the desks stop soon after)."""
STEP_S = 0.02
PAUSE_CONFIRM_S = 1.5
"""A late-greeting call rings only after the agent has been silent this long (floor seconds) since it
fell silent: longer than the pauses between words of a line, far shorter than the 10 s wait after it."""
"""Wall seconds between two looks at the clock (a ring at 20x is 0.25 wall seconds)."""


@dataclass(frozen=True)
class CallStory:
    """How a call desk's calls go (floor seconds; ``good_from`` a fraction of the run)."""

    greeting: str = "prompt"
    """``prompt`` or ``late`` (see the module doc)."""
    rings: int = 1
    """Rings before the desk answers (at least)."""
    talk_s: float = 45.0
    gap_s: float = 20.0
    good_from: float = 1.0
    """From this fraction of the run on, calls are good: prompt, answered in the first ring."""
    long_pauses: bool = False
    """The desk's agent waits seconds between lines: calls ring on its speech (see the module doc)."""


class _Phase(Enum):
    IDLE = "idle"
    WAIT_PAUSE = "wait-pause"
    RINGING = "ringing"
    TALKING = "talking"


@dataclass
class _Desk:
    desk: str
    story: CallStory
    phase: _Phase = _Phase.IDLE
    next_ms: int = 0
    calls: int = 0
    call_id: str = ""
    ring_start_ms: int = 0
    rings_sent: int = 0
    want_rings: int = 1
    greeting: str = "prompt"
    answered_ms: int = 0
    metrics: int = 0
    """Metrics seen from the desk: its calls begin once it has been up a while."""
    speaking: bool | None = None
    offset: bool = False
    """The agent fell silent since the bridge last looked."""
    silent_since_ms: int | None = None
    """Floor time the agent fell silent (None while speaking or not known)."""
    pause_seen: bool = False
    """A late-greeting call is waiting: the agent fell silent since it began to wait."""
    onset: bool = False
    """The agent started to speak since the bridge last looked."""


class CtiBridge:
    """Publishes the call desks' CTI messages on a broker (its own MQTT client), on the demo's clock.

    ``now_ms`` is the demo's scaled clock (ms); ``fraction`` the share of the run done (0..1).
    ``start()`` connects and runs a thread; ``stop()`` hangs up calls still going and disconnects.
    """

    def __init__(self, broker_url: str, site: str, desks: dict[str, CallStory], now_ms: Callable[[], int],
                 fraction: Callable[[], float], first_call_at: float = FIRST_CALL_AT) -> None:
        self.site = site
        self.url = broker_url
        self.now_ms = now_ms
        self.fraction = fraction
        self.first_call_at = first_call_at
        self.desks = {d: _Desk(d, s, next_ms=7000 * i) for i, (d, s) in enumerate(sorted(desks.items()))}
        """``next_ms`` starts as each desk's stagger; its first call is timed once the desk is up."""
        self.sent = 0
        self.calls = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> CtiBridge:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        u = urlsplit(self.url)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-pbx-bridge-{self.site}",
                             protocol=mqtt.MQTTv311)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 5)
        client.connect(u.hostname or "127.0.0.1", u.port or 1883)
        client.loop_start()
        self._client = client
        self._thread = threading.Thread(target=self._run, name="demo-cti-bridge", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._client is not None:
            for d in self.desks.values():
                if d.phase in (_Phase.RINGING, _Phase.TALKING):
                    self._send(d, CtiPhase.CLOSED, reason="hangup")
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None

    # --- MQTT -------------------------------------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        for desk in self.desks:
            client.subscribe(str(DeskTopic(self.site, desk, DeskKind.METRICS)), qos=0)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            m = decode(msg.payload, Metrics)
        except ValueError:
            return
        with self._lock:
            d = self.desks.get(m.desk)
            if d is None:
                return
            if d.speaking is not None and d.speaking != m.speaking:
                d.offset, d.onset = d.offset or not m.speaking, d.onset or m.speaking
            if m.speaking:
                d.silent_since_ms = None
            elif d.speaking is not False:
                d.silent_since_ms = self.now_ms()
            d.speaking = m.speaking
            d.metrics += 1

    def _send(self, d: _Desk, phase: CtiPhase, *, rings: int | None = None, reason: str | None = None) -> None:
        msg = Cti(site=self.site, desk=d.desk, ts=self.now_ms(), call_id=d.call_id, phase=phase,
                  direction=CallDirection.INCOMING, rings=rings, reason=reason)
        self._client.publish(str(DeskTopic(self.site, d.desk, DeskKind.CTI)), encode(msg), qos=1)
        self.sent += 1

    # --- the calls --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(STEP_S):
            now = self.now_ms()
            with self._lock:
                desks = list(self.desks.values())
            for d in desks:
                try:
                    self._step(d, now)
                except Exception as exc:  # a demo prop: log it, never stop the demo
                    log.warning("demo CTI bridge: %s: %s", d.desk, exc)

    def _edge(self, d: _Desk, want: str) -> bool:
        """True when the agent fell silent (``want="offset"``) or began to speak (``"onset"``) since the
        last look; either way both are forgotten."""
        with self._lock:
            seen = d.offset if want == "offset" else d.onset
            d.offset = d.onset = False
        return seen

    def _step(self, d: _Desk, now: int) -> None:
        if d.phase is _Phase.IDLE and d.calls == 0 and d.next_ms < 1_000_000_000_000:
            # the first call waits until the floor has settled (every agent started: starting ones are busy)
            # and the desk has sent metrics for a while
            if self.fraction() >= self.first_call_at and d.metrics >= WARM_METRICS:
                d.next_ms += now
        elif d.phase is _Phase.IDLE:
            if now >= d.next_ms and self.fraction() < LAST_CALL_AT:
                good = self.fraction() >= d.story.good_from
                d.greeting = "prompt" if good else d.story.greeting
                d.want_rings = 1 if good else d.story.rings
                d.phase, d.pause_seen = _Phase.WAIT_PAUSE, False
                self._edge(d, "offset")
        elif d.phase is _Phase.WAIT_PAUSE:
            # a desk with long waits between lines (``long_pauses``) rings once the agent has fallen silent
            # (for PAUSE_CONFIRM_S: a wait after a line, not a pause between words) for a late greeting, as it
            # begins a line for a prompt one; any other desk rings at once (its agent talks with short
            # pauses, so the call is answered into speech)
            if d.greeting == "late":
                d.pause_seen = self._edge(d, "offset") or d.pause_seen
                with self._lock:
                    since = d.silent_since_ms if d.speaking is False else None
                ready = d.pause_seen and since is not None and now - since >= PAUSE_CONFIRM_S * 1000
            else:
                ready = self._edge(d, "onset")
            if not d.story.long_pauses or ready or now >= d.next_ms + 60_000:
                d.calls += 1
                self.calls += 1
                d.call_id = f"demo-{d.desk}-{d.calls}"
                d.phase, d.ring_start_ms, d.rings_sent = _Phase.RINGING, now, 1
                self._send(d, CtiPhase.RINGING, rings=1)
        elif d.phase is _Phase.RINGING:
            rings = int((now - d.ring_start_ms) // (RING_PERIOD_S * 1000)) + 1
            if now - d.ring_start_ms >= ((d.want_rings - 1) * RING_PERIOD_S + ANSWER_INTO_RING_S) * 1000:
                d.phase, d.answered_ms = _Phase.TALKING, now
                self._send(d, CtiPhase.ESTABLISHED, rings=d.rings_sent)
            elif rings != d.rings_sent:
                d.rings_sent = rings
                self._send(d, CtiPhase.RINGING, rings=rings)
        elif d.phase is _Phase.TALKING and now - d.answered_ms >= d.story.talk_s * 1000:
            self._send(d, CtiPhase.CLOSED, reason="hangup")
            d.phase, d.next_ms = _Phase.IDLE, now + int(d.story.gap_s * 1000)
