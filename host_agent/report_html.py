"""The daily report as one self-contained HTML page: inline CSS and SVG, no external assets.

Built for a supervisor's glance: headline tiles, an hour-by-hour heat map of speaking time, a
small multiple of cue zones per desk (one labelled bar per cue group), rate against the target band, and breaks with their overrun level.
"""

from __future__ import annotations

from html import escape

from host_agent.report import SPEECH_CUES, Report, Row
from mqtt_schema import Cue

RATE_BAND = (90.0, 160.0)
"""The default ok band of speaking rate, syllables per minute (NORMS.md)."""
CUE_COLORS = {
    "volume": "#e07a5f", "pace": "#d4a017", "mic": "#4f9d7e",
}
LEVEL_COLORS = ["#f4d35e", "#f4b942", "#ee964b", "#e76f51", "#d1495b", "#a4161a", "#6a040f"]

CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1f2933}
header{background:#243b53;color:#fff;padding:20px 32px}
header h1{margin:0;font-size:22px;font-weight:600}header p{margin:4px 0 0;opacity:.8}
main{padding:20px 32px;max-width:1200px}
.tiles{display:flex;gap:14px;flex-wrap:wrap;margin-bottom:18px}
.tile{background:#fff;border-radius:10px;padding:14px 18px;min-width:150px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.tile b{display:block;font-size:28px;font-weight:650}.tile span{color:#627d98;font-size:13px}
.tile.warn b{color:#c2410c}
section{background:#fff;border-radius:10px;padding:16px 20px;margin-bottom:18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
section h2{margin:0 0 4px;font-size:17px}section p.note{margin:0 0 10px;color:#627d98;font-size:13px}
td{white-space:nowrap}td.wrap{white-space:normal}
table{border-collapse:collapse;width:100%}th,td{padding:7px 8px;text-align:left;border-bottom:1px solid #e4e7eb;
vertical-align:middle}th{font-size:12px;color:#627d98;font-weight:600;text-transform:uppercase}
td.num{font-variant-numeric:tabular-nums}
.badge{white-space:nowrap;display:inline-block;border-radius:9px;padding:1px 8px;font-size:12px;margin:1px 2px;color:#fff}
.ok{color:#2f855a}.bad{color:#c2410c}.muted{color:#9aa5b1}
.legend span{display:inline-block;margin-right:14px;font-size:13px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
"""


def _tile(value: str, label: str, warn: bool = False) -> str:
    return f'<div class="tile{" warn" if warn else ""}"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _heatmap(rows: list[Row]) -> str:
    cell, label_w, top = 26, 90, 22
    width = label_w + 24 * cell + 10
    height = top + len(rows) * cell + 6
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="speaking minutes per hour">']
    for h in range(0, 24, 3):
        parts.append(f'<text x="{label_w + h * cell + 2}" y="14" font-size="11" fill="#627d98">{h:02d}:00</text>')
    for i, r in enumerate(rows):
        y = top + i * cell
        parts.append(f'<text x="0" y="{y + 17}" font-size="13" fill="#1f2933">{escape(r.name or r.key)}</text>')
        for h, s in enumerate(r.hourly_speech_s):
            minutes = s / 60
            if minutes <= 0:
                fill = "#eef1f4"
            else:
                a = min(1.0, 0.15 + minutes / 30)
                fill = f"rgba(36,99,235,{a:.2f})"
            parts.append(f'<rect x="{label_w + h * cell}" y="{y}" width="{cell - 3}" height="{cell - 3}" rx="4" '
                         f'fill="{fill}"><title>{escape(r.key)} {h:02d}:00 {minutes:.0f} min speaking</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _groups(r: Row) -> dict[str, float]:
    return {
        "volume": r.cue_share(Cue.VOLUME_LOW) + r.cue_share(Cue.VOLUME_HIGH),
        "pace": r.cue_share(Cue.PACE_SLOW) + r.cue_share(Cue.PACE_FAST),
        "mic": r.cue_share(Cue.MIC_CLOSE) + r.cue_share(Cue.MIC_FAR),
    }


def _cue_bar(r: Row, width: int = 180) -> str:
    """Cue zones as small multiples: one track per cue group (the shares overlap, since several cues
    can be on at once, so they are never stacked), each bar scaled to its own 0-100 % track and
    labelled with its value. A share above 0 is drawn at least 1 px wide."""
    groups = _groups(r)
    label_w, value_w, row_h, bar_h = 48, 34, 14, 9
    track = width - label_w - value_w
    height = row_h * len(groups)
    parts = [f'<svg class="cues" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="cue zones">']
    for i, (name, share) in enumerate(groups.items()):
        y = i * row_h
        share = min(max(share, 0.0), 1.0)
        w = max(share * track, 1.0) if share > 0 else 0.0
        parts.append(f'<text x="0" y="{y + bar_h}" font-size="10" fill="#4a5568">{name}</text>'
                     f'<rect x="{label_w}" y="{y + 1}" width="{track}" height="{bar_h}" rx="2" fill="#e3f2e8"/>')
        if w > 0:
            parts.append(f'<rect class="cue-share" data-cue="{name}" x="{label_w}" y="{y + 1}" width="{w:.1f}" '
                         f'height="{bar_h}" rx="2" fill="{CUE_COLORS[name]}"><title>{name}: {100 * share:.0f}% of '
                         f'speech</title></rect>')
        parts.append(f'<text x="{width - value_w + 4}" y="{y + bar_h}" font-size="10" fill="#2d3748">'
                     f'{100 * share:.0f}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rate_dot(rate: float | None, width: int = 130) -> str:
    lo, hi = 40.0, 260.0
    if rate is None:
        return '<span class="muted">-</span>'

    def px(v: float) -> float:
        return (min(max(v, lo), hi) - lo) / (hi - lo) * width

    ok = RATE_BAND[0] <= rate <= RATE_BAND[1]
    return (f'<svg width="{width}" height="18" viewBox="0 0 {width} 18"><rect y="6" width="{width}" height="6" rx="3" '
            f'fill="#eef1f4"/><rect x="{px(RATE_BAND[0]):.1f}" y="6" width="{px(RATE_BAND[1]) - px(RATE_BAND[0]):.1f}" '
            f'height="6" fill="#b7e4c7"/><circle cx="{px(rate):.1f}" cy="9" r="6" '
            f'fill="{"#2f855a" if ok else "#c2410c"}"><title>{rate:.0f} syllables/min</title></circle></svg>'
            f' <span class="num">{rate:.0f}</span>')


def _breaks(r: Row) -> str:
    if not r.breaks:
        return '<span class="muted">none</span>'
    out = [f"{len(r.breaks)} · {sum(m for _, m in r.breaks):.0f} min "]
    for level in r.overruns:
        out.append(f'<span class="badge" style="background:{LEVEL_COLORS[min(level, 7) - 1]}">L{level}</span>')
    return "".join(out)


def _alerts(r: Row) -> str:
    if not r.alerts:
        return '<span class="ok">none</span>'
    return "".join(f'<span class="badge" style="background:#52606d">{escape(k)} {v}</span>'
                   for k, v in sorted(r.alerts.items()))


def _share(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _silent(r: Row) -> str:
    """Silent calls · how many followed the norm; ``-``: no call's far end was measured."""
    if r.silent_calls is None:
        return "-"
    if not r.silent_calls:
        return "0"
    cls = "ok" if r.silent_calls_ok == r.silent_calls else "bad"
    return f'{r.silent_calls} · <span class="{cls}">{r.silent_calls_ok} per norm</span>'


def _calls(r: Row) -> str:
    """Calls, answered within the rings, median greeting latency, calls with a monotone stretch, silent calls."""
    if not r.calls:
        return '<td class="num">0</td>' + '<td class="num">-</td>' * 4
    greet = "-" if r.median_greeting_s is None else f"{r.median_greeting_s:.1f} s"
    return (f'<td class="num">{r.calls}</td><td class="num">{_share(r.answered_share)}</td>'
            f'<td class="num">{greet}</td><td class="num">{_share(r.monotone_share)}</td>'
            f'<td class="num">{_silent(r)}</td>')


def render_html(rep: Report) -> str:
    rows = rep.rows
    speaking_h = sum(r.speech_s for r in rows) / 3600
    n_alerts = sum(sum(r.alerts.values()) for r in rows) + sum(rep.floor_alerts.values())
    n_overruns = sum(len(r.overruns) for r in rows)
    tiles = "".join([
        _tile(str(len(rows)), f"{rep.by}s reporting"),
        _tile(f"{speaking_h:.1f} h", "speaking time"),
        _tile(str(n_alerts), "alerts fired", warn=n_alerts > 0),
        _tile(str(n_overruns), f"breaks over {rep.allowed_break_s / 60:.0f} min", warn=n_overruns > 0),
        _tile(f"{sum(r.slouched_s for r in rows) / 60:.0f} min", "slouched (all)"),
    ])
    legend = "".join(f'<span><i style="background:{c}"></i>{n}</span>' for n, c in CUE_COLORS.items())
    legend += '<span><i style="background:#e3f2e8"></i>within the norm</span>'
    body_rows = []
    for r in rows:
        lvl = "-" if r.level_dbov is None else f"{r.level_dbov:.1f}"
        body_rows.append(
            f"<tr><td><b>{escape(r.name or r.key)}</b>"
            + (f' <span class="muted">{escape(r.key)}</span>' if r.name else "")
            + (f'<br><span class="muted">{escape(", ".join(sorted(r.desks)))}</span>' if rep.by == "agent" else "")
            + f'</td><td class="num">{r.speech_s / 60:.0f} min</td><td class="num">{lvl}</td>'
            f"<td>{_rate_dot(r.rate_spm)}</td><td>{_cue_bar(r)}</td>"
            f'<td class="num">{r.slouched_s / 60:.0f} min</td><td>{_breaks(r)}</td>{_calls(r)}<td class="wrap">{_alerts(r)}</td></tr>')
    empty = '<tr><td colspan="13" class="muted">No minute rollups for this site and day.</td></tr>'
    floor = ""
    if rep.floor_alerts:
        floor = ("<p><b>Floor alerts:</b> " + ", ".join(f"{escape(k)} × {v}" for k, v in rep.floor_alerts.items())
                 + "</p>")
    cues = ", ".join(c.value for c in SPEECH_CUES)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Floor report {escape(rep.site)} {rep.date.isoformat()}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>
<body><header><h1>Floor report · {escape(rep.site)}</h1>
<p>{rep.date.strftime("%A %d %B %Y")} ({escape(rep.tz)}) · per {rep.by} · from per-minute rollups</p></header>
<main><div class="tiles">{tiles}</div>
<section><h2>Speaking through the day</h2><p class="note">Minutes of own speech per hour; darker is busier.</p>
{_heatmap(rows) if rows else '<p class="muted">No data.</p>'}</section>
<section><h2>Coaching at a glance</h2>
<p class="note">Cue zones: share of speech with each cue group active ({escape(cues)}), one bar per group
(several cues can be on at once, so the shares are not parts of one whole). Rate: the green band is
{RATE_BAND[0]:.0f}-{RATE_BAND[1]:.0f} syllables/min. Level: mean active speech level, dBov (P.56).
Calls: answered in time is the share of the calls judged that rang at most the allowed rings; greeting is the
median time from the connection to the first own speech; monotone calls, the share of calls (with intonation
measured) that had a monotone stretch; silent calls, the calls whose far end stayed silent and how many of
them followed the silent-call norm (- where the desk does not measure the far end).</p>
<p class="legend">{legend}</p>
<table><thead><tr><th>{rep.by}</th><th>speaking</th><th>level dBov</th><th>rate</th><th>cue zones</th>
<th>slouched</th><th>breaks · overrun level</th><th>calls</th><th>answered in time</th><th>greeting (median)</th>
<th>monotone calls</th><th>silent calls</th><th>alerts</th></tr></thead>
<tbody>{"".join(body_rows) or empty}</tbody></table>{floor}</section>
</main></body></html>
"""
