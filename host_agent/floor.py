"""Per-desk live state of the floor, built from validated desk messages.

``state`` and ``metrics`` are snapshots: a ``lost`` state always applies, any other state or metrics
applies only when its (boot, seq) is newer than the last one applied. ``event``, ``minute`` and ``call`` are
deduplicated on (desk, boot, seq) within a bounded window per desk (the history database's unique key
is the backstop across restarts). All times are host-clock milliseconds.
"""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass, field

from mqtt_schema import Call, Cue, DeskStatus, Event, EventKind, Metrics, Minute, Posture, State

# Window slots: speech seconds with a cue group active, slouched seconds, calls that missed the answer
# or greeting norm (counts, not seconds), and own-speech seconds with the monotone cue on.
K_VOLUME, K_PACE, K_MIC, K_SLOUCH = 0, 1, 2, 3
K_SLOW_ANSWER, K_LATE_GREETING, K_MONOTONE = 4, 5, 6
N_KINDS = 7
CUE_GROUP: dict[Cue, int] = {
    Cue.VOLUME_LOW: K_VOLUME, Cue.VOLUME_HIGH: K_VOLUME,
    Cue.PACE_SLOW: K_PACE, Cue.PACE_FAST: K_PACE,
    Cue.MIC_CLOSE: K_MIC, Cue.MIC_FAR: K_MIC,
}
RING_PERIOD_S = 5.0
"""The default ring cadence (1 s on, 4 s off; NORMS.md): the dashboard's ring count of a ringing desk is
estimated from how long it has been ringing (metrics carry the call state, not the desk's count)."""
BACKDATE_LIMIT_MS = 300_000
"""An event's own ``ts`` is trusted when at most 5 min old; older (or future) ones count from receipt."""


class Window:
    """Seconds (or counts) per kind in 10 s buckets over the last 10 min: a fixed 4 KiB ring, no allocation.

    ``total`` is O(1) for a kind with nothing added within the window asked for (the common case:
    most desks show no cue most of the time), and repeated totals within one bucket are cached until
    the next ``add``.
    """

    BUCKET_MS = 10_000
    N_BUCKETS = 61

    __slots__ = ("_bucket", "_cache", "_latest", "_sec")

    def __init__(self) -> None:
        self._bucket = array("q", [-1]) * self.N_BUCKETS
        self._sec = array("d", [0.0]) * (self.N_BUCKETS * N_KINDS)
        self._latest = array("q", [-1]) * N_KINDS
        """Per kind, the newest bucket that ``add`` put seconds in (-1: none yet)."""
        self._cache: dict[tuple[int, int, int], float] = {}
        """(kind, lo, hi) -> total, emptied by ``add``."""

    def add(self, t_ms: int, kind: int, seconds: float) -> None:
        b = t_ms // self.BUCKET_MS
        slot = b % self.N_BUCKETS
        base = slot * N_KINDS
        if self._bucket[slot] != b:
            self._bucket[slot] = b
            for k in range(N_KINDS):
                self._sec[base + k] = 0.0
        self._sec[base + kind] += seconds
        if b > self._latest[kind]:
            self._latest[kind] = b
        if self._cache:
            self._cache.clear()

    def holds_after(self, t_ms: int) -> bool:
        """True when some kind has seconds in a bucket after the one holding ``t_ms`` (a rollup seeded
        ahead of the clock): then a total can still grow without an ``add``."""
        return max(self._latest) > t_ms // self.BUCKET_MS

    def total(self, now_ms: int, kind: int, window_s: float) -> float:
        """Seconds of ``kind`` in the buckets that start within the last ``window_s`` s (10 s resolution)."""
        hi = now_ms // self.BUCKET_MS
        lo = (now_ms - int(window_s * 1000)) // self.BUCKET_MS + 1
        if self._latest[kind] < lo:
            return 0.0  # nothing added since before the window (or ever)
        key = (kind, lo, hi)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        total = 0.0
        buckets, sec, n = self._bucket, self._sec, self.N_BUCKETS
        if hi - lo < n:  # each bucket of [lo, hi] has its own slot: visit only those
            for b in range(lo, hi + 1):
                slot = b % n
                if buckets[slot] == b:
                    total += sec[slot * N_KINDS + kind]
        else:
            for slot in range(n):
                b = buckets[slot]
                if lo <= b <= hi:
                    total += sec[slot * N_KINDS + kind]
        if len(self._cache) >= 8:
            self._cache.clear()
        self._cache[key] = total
        return total


class SeqWindow:
    """The last ``size`` (boot, seq) pairs seen for one desk: bounded dedup (about 5 KiB at 64)."""

    __slots__ = ("_order", "_seen")

    def __init__(self, size: int = 64) -> None:
        self._order: deque[int] = deque(maxlen=size)
        self._seen: set[int] = set()

    def check_and_add(self, boot: int, seq: int) -> bool:
        """True if new (and remember it), False if a duplicate."""
        key = (boot << 54) | seq  # seq is at most 2**53 (the contract's bound): bit 53 is its own, so (b, 2**53)
        # never shares a key with (b + 1, 0), which dropped the next boot's first message as a duplicate
        if key in self._seen:
            return False
        if len(self._order) == self._order.maxlen:
            self._seen.discard(self._order[0])
        self._order.append(key)
        self._seen.add(key)
        return True


@dataclass(slots=True, eq=False)
class DeskState:
    """What the host knows about one desk right now."""

    site: str
    desk: str
    status: DeskStatus | None = None
    status_since_ms: int = 0
    state_key: tuple[int, int] | None = None
    metrics_key: tuple[int, int] | None = None
    metrics: Metrics | None = None
    metrics_ms: int | None = None
    """Host time the last metrics arrived."""
    worn: bool | None = None
    off_since_ms: int | None = None
    """Host time the headset was taken off (the break timer); None while worn or unknown."""
    posture: Posture = Posture.UNKNOWN
    cues: tuple[str, ...] = ()
    audio: str = "none"
    headset: str = "none"
    window: Window = field(default_factory=Window)
    seqs: SeqWindow = field(default_factory=SeqWindow)
    changed: bool = True
    """Something the dashboard shows changed (cleared by the processor when it bumps its version)."""
    rules_changed: bool = True
    """Something an alert rule reads changed: rule windows, wear or the break timer (cleared by the
    processor when it marks the desk for evaluation). Metrics that change none of it leave the desk to
    the periodic evaluation of the whole floor."""
    quiet: bool = False
    """Set by the processor after an evaluation that left nothing to time alone: no alert of the desk,
    no break timer, not lost or offline, no window seconds ahead of the clock. Until something a rule
    reads changes (which marks the desk dirty), evaluating it again would change nothing."""
    seen_ms: int | None = None
    """Host time of the last message from the desk itself (not its last will); None after a restart."""
    call: str | None = None
    """The desk's call state from its metrics (idle, ringing, established); None: no call source."""
    call_since_ms: int | None = None
    """Host time of the first metrics with this call state (ringing or in call since then)."""

    def view_status(self, now_ms: int, stale_after_s: float) -> str:
        """online / offline / lost / stale (online without metrics for ``stale_after_s``) / unknown."""
        if self.status is None:
            return "unknown"
        if self.status is DeskStatus.ONLINE:
            if self.metrics_ms is None:
                ref = self.status_since_ms
            else:
                ref = max(self.metrics_ms, self.status_since_ms)
            if now_ms - ref > stale_after_s * 1000:
                return "stale"
        return self.status.value

    def off_for_s(self, now_ms: int) -> float | None:
        """Seconds the headset has been off (None while worn or unknown)."""
        if self.off_since_ms is None:
            return None
        return max(0.0, (now_ms - self.off_since_ms) / 1000)

    def last_seen_ms(self) -> int | None:
        """Host time the desk was last heard from (after a restart: its last metrics or status change)."""
        if self.seen_ms is not None:
            return self.seen_ms
        known = [t for t in (self.metrics_ms, self.status_since_ms or None) if t is not None]
        return max(known) if known else None

    def snapshot(self, now_ms: int, stale_after_s: float) -> dict[str, object]:
        """A JSON-ready view for the dashboard.

        Only an ``online`` desk is ``live``: for a stale, lost, offline or unknown one the last numbers,
        cues, posture and wear are old news, so they are left out (None, empty, ``unknown``) and
        ``last_seen_ms`` says how old.
        """
        status = self.view_status(now_ms, stale_after_s)
        live = status == "online"
        m = self.metrics if live else None
        return {
            "site": self.site, "desk": self.desk, "status": status, "live": live,
            "last_seen_ms": self.last_seen_ms(),
            "worn": self.worn if live else None, "off_s": self.off_for_s(now_ms) if live else None,
            "posture": self.posture.value if live else Posture.UNKNOWN.value,
            "cues": list(self.cues) if live else [], "speaking": bool(m and m.speaking),
            "level_dbov": m.level_dbov if m else None, "rate_spm": m.rate_spm if m else None,
            "distance_cm": m.distance_cm if m else None, "noise_dbov": m.noise_dbov if m else None,
            "audio": self.audio, "headset": self.headset,
            **self._call_view(now_ms, live),
        }

    def _call_view(self, now_ms: int, live: bool) -> dict[str, object]:
        """``call`` (idle / ringing / established, None without a call source or when not live), ``call_s``
        (seconds in that state, s) and ``rings`` (ringing: the ring under way at the default cadence)."""
        if not live or self.call is None:
            return {"call": None, "call_s": None, "rings": None}
        since_s = max(0.0, (now_ms - self.call_since_ms) / 1000) if self.call_since_ms is not None else 0.0
        rings = int(since_s // RING_PERIOD_S) + 1 if self.call == "ringing" else None
        return {"call": self.call, "call_s": round(since_s, 1), "rings": rings}


def _newer(key: tuple[int, int], last: tuple[int, int] | None) -> bool:
    return last is None or key > last


def event_time(ts_ms: int, now_ms: int) -> int:
    """The host time an event happened: its own ``ts`` when plausible, else its receipt time."""
    if now_ms - BACKDATE_LIMIT_MS <= ts_ms <= now_ms:
        return ts_ms
    return now_ms


class Floor:
    """Every desk the host follows, keyed by (site, desk)."""

    def __init__(self) -> None:
        self.desks: dict[tuple[str, str], DeskState] = {}

    def desk(self, site: str, desk: str) -> DeskState:
        key = (site, desk)
        d = self.desks.get(key)
        if d is None:
            d = self.desks[key] = DeskState(site, desk)
        return d

    def apply_state(self, msg: State, now_ms: int) -> bool:
        """Apply a state snapshot; False when it is older than the one applied."""
        d = self.desk(msg.site, msg.desk)
        key = (msg.boot, msg.seq)
        if msg.status is not DeskStatus.LOST and not _newer(key, d.state_key):
            return False
        if d.status is not msg.status:
            d.status = msg.status
            d.status_since_ms = now_ms
        if d.state_key is None or key > d.state_key:
            d.state_key = key
        if msg.status is not DeskStatus.LOST:
            d.seen_ms = now_ms
        d.audio, d.headset = msg.audio.value, msg.headset.value
        d.changed = True
        return True

    def apply_metrics(self, msg: Metrics, now_ms: int, d: DeskState | None = None) -> bool:
        """Apply a metrics snapshot (to ``d``, the desk of ``msg`` when the caller has it); False when
        it is older than the one applied. Runs for every message of every desk: keep it lean."""
        if d is None:
            d = self.desk(msg.site, msg.desk)
        last = d.metrics_key
        if last is not None and (msg.boot, msg.seq) <= last:
            return False
        d.metrics_key = (msg.boot, msg.seq)
        d.metrics = msg
        d.metrics_ms = d.seen_ms = now_ms
        msg_cues = msg.cues
        cues: tuple[str, ...] = tuple(msg_cues) if msg_cues else ()  # Cue is a StrEnum: == its value
        posture = msg.posture
        if cues != d.cues or posture is not d.posture:
            d.changed = True
            d.cues = cues
            d.posture = posture
        d.audio, d.headset = msg.audio, msg.headset  # StrEnum members: their str is the value
        call = msg.call
        if call != d.call:
            d.call = None if call is None else call.value
            d.call_since_ms = now_ms
            d.changed = True
        worn = msg.worn
        if worn is not None and (worn is not d.worn or (d.off_since_ms is not None
                                                        and (worn or now_ms < d.off_since_ms))):
            self._set_worn(d, worn, now_ms)
        if msg_cues and msg.speech_s > 0:
            for k in {CUE_GROUP[c] for c in msg_cues if c in CUE_GROUP}:
                d.window.add(now_ms, k, msg.speech_s)
                d.rules_changed = True
        if posture is Posture.SLOUCHED and worn is not False:
            d.window.add(now_ms, K_SLOUCH, msg.interval_s)
            d.rules_changed = True
        if msg.monotone and msg.speech_s > 0:
            d.window.add(now_ms, K_MONOTONE, msg.speech_s)
            d.rules_changed = True
        return True

    def apply_event(self, msg: Event, now_ms: int) -> bool:
        """Apply an event; False for a duplicate (boot, seq)."""
        d = self.desk(msg.site, msg.desk)
        if not d.seqs.check_and_add(msg.boot, msg.seq):
            return False
        d.seen_ms = now_ms if d.seen_ms is None else max(d.seen_ms, now_ms)
        if msg.kind is EventKind.WORN:
            self._set_worn(d, True, event_time(msg.ts, now_ms))
        elif msg.kind is EventKind.DOFFED:
            self._set_worn(d, False, event_time(msg.ts, now_ms))
        return True

    def seed_window(self, msg: Minute) -> None:
        """Add a stored minute rollup to the rule windows (after a restart: live metrics were lost)."""
        d = self.desk(msg.site, msg.desk)
        t = msg.minute_ts + 30_000
        for group in {CUE_GROUP[c] for c in msg.cue_s if c in CUE_GROUP}:
            d.window.add(t, group, sum(s for c, s in msg.cue_s.items() if CUE_GROUP.get(c) == group))
        if msg.slouched_s:
            d.window.add(t, K_SLOUCH, msg.slouched_s)
        if msg.monotone_s:
            d.window.add(t, K_MONOTONE, msg.monotone_s)

    def accept_minute(self, msg: Minute) -> bool:
        """False for a duplicate (boot, seq)."""
        return self.desk(msg.site, msg.desk).seqs.check_and_add(msg.boot, msg.seq)

    def accept_call(self, msg: Call) -> bool:
        """False for a duplicate (boot, seq). Counting it in the rule windows is :meth:`count_call`'s job,
        once the history has confirmed that it is new (the window dedup forgets across restarts)."""
        return self.desk(msg.site, msg.desk).seqs.check_and_add(msg.boot, msg.seq)

    def count_call(self, msg: Call, now_ms: int) -> None:
        """Count a new call summary in the rule windows at its hang-up (receipt time when implausible);
        also what a restarted host seeds from the stored calls of the last 10 min."""
        if msg.answer_ok is not False and msg.greeting_ok is not False:
            return
        d = self.desk(msg.site, msg.desk)
        t = event_time(msg.end_ts, now_ms)
        if msg.answer_ok is False:
            d.window.add(t, K_SLOW_ANSWER, 1.0)
        if msg.greeting_ok is False:
            d.window.add(t, K_LATE_GREETING, 1.0)
        d.rules_changed = True

    @staticmethod
    def _set_worn(d: DeskState, worn: bool, t_ms: int) -> None:
        if worn:
            if d.worn is not True:
                d.changed = d.rules_changed = True
            d.worn, d.off_since_ms = True, None
        else:
            if d.worn is not False:
                d.changed = d.rules_changed = True
                d.off_since_ms = t_ms
            elif d.off_since_ms is not None and t_ms < d.off_since_ms:
                d.off_since_ms = t_ms  # the doffed event came after metrics had already said so
                d.rules_changed = True
            d.worn = False
