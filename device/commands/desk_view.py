"""A terminal view of one desk: its state, latest metrics and recent events, from decoded messages.

Pure rendering (no MQTT, no terminal control): ``headset-agent status`` feeds it the messages it
receives and prints :meth:`DeskView.render`. Units as in the contract: dBov, syllables/min, cm, deg.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

from mqtt_schema import Event, Metrics, Minute, State


def _fmt(value: float | None, unit: str, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f} {unit}".rstrip()


def _clock(ts_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts_ms / 1000.0))


@dataclass
class DeskView:
    site: str
    desk: str
    state: State | None = None
    metrics: Metrics | None = None
    minute: Minute | None = None
    events: collections.deque[Event] = field(default_factory=lambda: collections.deque(maxlen=8))
    received: int = 0

    def apply(self, message: object) -> None:
        """Take a decoded State, Metrics, Event or Minute of this desk (others are ignored)."""
        if getattr(message, "site", None) != self.site or getattr(message, "desk", None) != self.desk:
            return
        self.received += 1
        if isinstance(message, State):
            self.state = message
        elif isinstance(message, Metrics):
            self.metrics = message
        elif isinstance(message, Event):
            self.events.append(message)
        elif isinstance(message, Minute):
            self.minute = message

    def render(self) -> str:
        lines = [f"desk {self.site}/{self.desk}"]
        st = self.state
        if st is None:
            lines.append("  state     (no state yet)")
        else:
            fw = st.versions.firmware if st.versions else None
            agent = st.versions.agent if st.versions else "?"
            lines.append(f"  state     {st.status.value}  boot {st.boot}  agent {agent}  firmware {fw or '-'}  "
                         f"config {st.config_hash or '-'}")
            lines.append(f"  parts     audio {st.audio.value}  headset {st.headset.value} ({st.headset_id or '-'})  "
                         f"[{', '.join(st.capabilities)}]")
        m = self.metrics
        if m is None:
            lines.append("  measures  (no metrics yet)")
        else:
            lines.append(f"  at        {_clock(m.ts)}  ({'speaking' if m.speaking else 'listening'}, "
                         f"{m.speech_s:.1f} s speech in {m.interval_s:.1f} s)")
            lines.append(f"  level     {_fmt(m.level_dbov, 'dBov')}   rate {_fmt(m.rate_spm, 'spm', 0)}   "
                         f"distance {_fmt(m.distance_cm, 'cm')}   noise {_fmt(m.noise_dbov, 'dBov')}   "
                         f"clipping {m.clipping * 100:.1f} %")
            worn = "-" if m.worn is None else ("worn" if m.worn else "off")
            lines.append(f"  posture   {m.posture.value}  pitch {_fmt(m.pitch_deg, 'deg')}  roll {_fmt(m.roll_deg, 'deg')}"
                         f"  headset {worn}")
            lines.append(f"  cues      {', '.join(c.value for c in m.cues) if m.cues else '(none)'}")
        if self.events:
            lines.append("  events")
            for e in self.events:
                detail = " ".join(x for x in (e.cue.value if e.cue else "", _fmt(e.value, "") if e.value is not None else "",
                                              e.message or "") if x)
                lines.append(f"    {_clock(e.ts)}  {e.kind.value:<20} {detail}")
        return "\n".join(lines) + "\n"
