// The floor dashboard: renders the host's snapshot, pushed over Server-Sent Events (/events), plus the
// silences (/api/silences) and the alert history (/api/alert-log), fetched when they may have changed.
"use strict";

const state = {
  snap: null, receivedAt: 0, site: localStorage.getItem("hsc-site") || "",
  silences: [], rules: [], history: [], histDesk: "", histRule: "", alertsKey: "",
};
const $ = (id) => document.getElementById(id);
const DURATIONS = ["15m", "30m", "1h", "2h", "4h", "8h", "1d"];

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function mmss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
}

// 45s, 12m, 1h30m, 2d3h: how long, in the units the CLI takes.
function span(seconds) {
  let s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + "s";
  s = Math.round(s / 60);
  const d = Math.floor(s / 1440), h = Math.floor((s % 1440) / 60), m = s % 60;
  return (d ? d + "d" : "") + (h ? h + "h" : "") + (m && !d ? m + "m" : "") || "0m";
}

// Host-clock time (ms) as a local time of day, with the date when it is not today's.
function clock(ms) {
  const t = new Date(ms), now = new Date(hostNow());
  const time = t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  return t.toDateString() === now.toDateString() ? time : t.toLocaleDateString() + " " + time;
}

// The host's clock now: the snapshot's time plus what has passed since it arrived.
function hostNow() {
  return state.snap ? state.snap.now + (Date.now() - state.receivedAt) : Date.now();
}

function token() {
  let t = localStorage.getItem("hsc-token");
  const hash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (hash) { t = hash; localStorage.setItem("hsc-token", t); }
  if (!t) {
    t = prompt("Dashboard token (from the host config):") || "";
    if (t) localStorage.setItem("hsc-token", t);
  }
  return t;
}

// POST an action; returns the JSON answer, or throws an Error with the server's message.
async function act(path, body) {
  const t = token();
  if (!t) throw new Error("no dashboard token");
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Bearer " + t },
    body: JSON.stringify(body || {}),
  });
  const out = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) {
    if (r.status === 401) localStorage.removeItem("hsc-token");
    throw new Error(out.error || r.statusText);
  }
  return out;
}

function showError(id, err) {
  const el = $(id);
  el.textContent = err ? String(err.message || err) : "";
  el.hidden = !err;
}

async function silenceAlert(a, button, select) {
  button.disabled = true;
  try {
    await act("/api/silence", { site: a.site, desk: a.desk, rule: a.rule, for: select.value });
    showError("alert-error", null);
    loadSilences();
  } catch (err) {
    showError("alert-error", "Silence failed: " + err.message);
    button.disabled = false;
  }
}

function durationSelect(value) {
  const sel = document.createElement("select");
  sel.className = "for";
  for (const d of DURATIONS) sel.add(new Option(d, d, false, d === value));
  return sel;
}

// --- silences ------------------------------------------------------------------------------------------

async function loadSilences() {
  try {
    const r = await fetch("/api/silences");
    if (!r.ok) return;
    const body = await r.json();
    state.silences = body.silences;
    state.rules = body.rules || state.rules;
    renderSilences();
    renderSilenceForm();
  } catch (err) { /* the next poll tries again */ }
}

function renderSilences() {
  const list = $("silences");
  const mine = state.silences.filter((s) => !state.site || s.site === state.site);
  const key = JSON.stringify(mine);
  if (list.dataset.key === key) {  // only the time left moves: keep the rows (and a chosen duration)
    for (const li of list.querySelectorAll("li[data-until]")) {
      li.querySelector(".left").textContent = span((Number(li.dataset.until) - hostNow()) / 1000);
    }
    return;
  }
  list.dataset.key = key;
  list.innerHTML = "";
  if (!mine.length) list.innerHTML = `<li class="none">No silences.</li>`;
  for (const s of mine) {
    const li = document.createElement("li");
    li.dataset.id = s.id;
    li.dataset.until = s.until_ms;
    const desk = s.desk === "*" ? "every desk" : s.desk;
    const rule = s.rule === "*" ? "every rule" : s.rule;
    const left = (s.until_ms - hostNow()) / 1000;
    li.innerHTML = `<span class="what">#${s.id} ${esc(s.site)} · ${esc(desk)} · ${esc(rule)}</span>
      <span class="buttons"></span>
      <span class="summary-text">until <span class="until">${esc(clock(s.until_ms))}</span>
        (<span class="left">${esc(span(left))}</span> left)${s.by ? " · by " + esc(s.by) : ""}</span>`;
    const sel = durationSelect("1h");
    const extend = document.createElement("button");
    extend.textContent = "extend";
    extend.className = "extend";
    extend.addEventListener("click", () => changeSilence(s.id, "extend", { for: sel.value }, extend));
    const expire = document.createElement("button");
    expire.textContent = "expire";
    expire.className = "expire";
    expire.addEventListener("click", () => changeSilence(s.id, "expire", {}, expire));
    li.querySelector(".buttons").append(sel, extend, expire);
    list.appendChild(li);
  }
}

async function changeSilence(id, what, body, button) {
  button.disabled = true;
  try {
    await act(`/api/silences/${id}/${what}`, body);
    showError("sil-error", null);
  } catch (err) {
    showError("sil-error", `Could not ${what} silence ${id}: ${err.message}`);
  }
  button.disabled = false;
  loadSilences();
}

function fillSelect(sel, options) {
  const keep = sel.value;
  const want = options.map(([v, label]) => v + "\u0000" + label).join("\u0001");
  if (sel.dataset.options !== want) {
    sel.innerHTML = "";
    for (const [v, label] of options) sel.add(new Option(label, v));
    sel.dataset.options = want;
  }
  if (options.some(([v]) => v === keep)) sel.value = keep;
}

function renderSilenceForm() {
  const snap = state.snap;
  if (!snap) return;
  const site = $("sil-site");
  fillSelect(site, snap.sites.map((s) => [s, s]));
  if (state.site && !site.dataset.touched) site.value = state.site;
  const desks = snap.desks.filter((d) => d.site === site.value).map((d) => [d.desk, d.desk]);
  fillSelect($("sil-desk"), [["*", "every desk"], ...desks, ["floor", "floor (site-wide alerts)"]]);
  fillSelect($("sil-rule"), [["*", "every rule"], ...state.rules.map((r) => [r, r])]);
}

async function addSilence(e) {
  e.preventDefault();
  const button = $("sil-add");
  button.disabled = true;
  try {
    await act("/api/silence", {
      site: $("sil-site").value, desk: $("sil-desk").value, rule: $("sil-rule").value,
      for: $("sil-for").value.trim(), all: $("sil-all").checked,
    });
    showError("sil-error", null);
    $("sil-all").checked = false;
  } catch (err) {
    showError("sil-error", "Silence failed: " + err.message);
  }
  button.disabled = false;
  loadSilences();
}

// --- alert history -------------------------------------------------------------------------------------

async function loadHistory() {
  const q = new URLSearchParams({ limit: "50" });
  if (state.site) q.set("site", state.site);
  if (state.histDesk) q.set("desk", state.histDesk);
  if (state.histRule) q.set("rule", state.histRule);
  try {
    const r = await fetch("/api/alert-log?" + q);
    if (!r.ok) return;
    state.history = (await r.json()).entries;
    renderHistory();
  } catch (err) { /* the next poll tries again */ }
}

function renderHistory() {
  const snap = state.snap;
  if (snap) {
    const desks = [...new Set(snap.desks.filter((d) => !state.site || d.site === state.site).map((d) => d.desk))];
    fillSelect($("hist-desk"), [["", "every desk"], ...desks.map((d) => [d, d])]);
    fillSelect($("hist-rule"), [["", "every rule"], ...state.rules.map((r) => [r, r])]);
    $("hist-desk").value = state.histDesk;
    $("hist-rule").value = state.histRule;
  }
  const body = $("history");
  body.innerHTML = state.history.map((h) => `<tr class="tr-${esc(h.transition)} sev-${esc(h.severity)}" data-desk="${esc(h.desk)}" data-rule="${esc(h.rule)}">
      <td class="when">${esc(clock(h.ts))}</td><td>${esc(h.site)}</td><td class="desk">${esc(h.desk)}</td>
      <td class="rule">${esc(h.rule)}</td><td class="transition">${esc(h.transition.replace("_", " "))}</td>
      <td>${h.level ? "L" + h.level : ""}</td><td class="summary-text">${esc(h.summary)}</td></tr>`).join("")
    || `<tr class="none"><td colspan="7">No alert transitions${state.histDesk || state.histRule ? " for " : ""}${
      esc([state.histDesk, state.histRule].filter(Boolean).join(" · "))}.</td></tr>`;
}

function showHistory(desk) {
  state.histDesk = desk;
  state.histRule = "";
  renderHistory();
  loadHistory();
  $("history-panel").scrollIntoView({ block: "nearest" });
}

// --- the floor -----------------------------------------------------------------------------------------

function renderSites(sites) {
  const sel = $("site");
  const have = Array.from(sel.options).map((o) => o.value);
  for (const s of sites) {
    if (!have.includes(s)) sel.add(new Option(s, s));
  }
  sel.value = state.site;
}

// The desk's call state (desks with a call source): idle, ringing with the ring under way (at the default
// cadence of 1 s on, 4 s off), or in call with its duration; both keep ticking between snapshots.
const RING_PERIOD_S = 5;
function callChip(d, elapsed) {
  if (!d.call) return "";
  const s = (d.call_s || 0) + elapsed;
  if (d.call === "ringing") {
    const ring = Math.floor(s / RING_PERIOD_S) + 1;
    return `<span class="chip call ringing" data-call="ringing">ringing · ring ${ring}</span>`;
  }
  if (d.call === "established") return `<span class="chip call in-call" data-call="established">in call ${mmss(s)}</span>`;
  return `<span class="chip call idle" data-call="idle">no call</span>`;
}

function tile(d, mine) {
  const live = mine.filter((a) => !a.inhibited);
  const loud = live.filter((a) => !a.silenced);
  const cls = ["tile", d.status, loud.length ? "alerting" : (live.length ? "silenced" : "")].join(" ");
  const badges = live.map((a) => `<span class="chip ${a.silenced ? "muted" : "alert"}">${esc(a.rule)}${a.level ? " L" + a.level : ""}</span>`).join("");
  const head = `<div class="top"><span class="name">${esc(d.desk)}</span><span class="status">${esc(d.status)}</span></div>`;
  const attrs = `class="${cls}" data-desk="${esc(d.desk)}" data-site="${esc(d.site)}" data-alerts="${live.length}" title="alert history of ${esc(d.desk)}"`;
  if (!d.live) {
    // Stale, lost, offline or never seen: old numbers would mislead, so only when it was last heard from.
    const seen = d.last_seen_ms != null
      ? `last seen <span class="seen-at">${esc(clock(d.last_seen_ms))}</span> · ${esc(span((hostNow() - d.last_seen_ms) / 1000))} ago`
      : "not seen since the host started";
    return `<div ${attrs}>${head}<div class="site">${esc(d.site)}</div>
      <div class="row lastseen">${seen}</div><div class="row">${badges}</div></div>`;
  }
  const elapsed = (Date.now() - state.receivedAt) / 1000;
  const wear = d.worn === false
    ? `<span class="chip off">headset off ${mmss((d.off_s || 0) + elapsed)}</span>`
    : d.worn ? `<span class="chip">worn</span>` : `<span class="chip">wear ?</span>`;
  const cues = d.cues.map((c) => `<span class="chip cue">${esc(c.replace("_", " "))}</span>`).join("");
  const voice = d.speaking ? `<span class="speaking">speaking</span>` : "listening";
  const nums = [d.level_dbov != null ? d.level_dbov.toFixed(0) + " dBov" : null,
                d.rate_spm != null ? d.rate_spm.toFixed(0) + " spm" : null].filter(Boolean).join(" · ");
  return `<div ${attrs}>${head}
      <div class="site">${esc(d.site)} · ${esc(d.posture)}</div>
      <div class="row">${wear}${cues}${callChip(d, elapsed)}</div>
      <div class="row voice">${voice}${nums ? " · " + nums : ""}</div>
      <div class="row">${badges}</div></div>`;
}

function render() {
  const snap = state.snap;
  if (!snap) return;
  renderSites(snap.sites);
  const inSite = (x) => !state.site || x.site === state.site;
  const desks = snap.desks.filter(inSite);
  const alerts = snap.alerts.filter((a) => inSite(a) && a.state === "firing");
  const byDesk = {};
  for (const a of alerts) (byDesk[a.site + "/" + a.desk] ||= []).push(a);
  const counts = {};
  for (const d of desks) counts[d.status] = (counts[d.status] || 0) + 1;
  $("summary").innerHTML = ["online", "stale", "lost", "offline"]
    .map((s) => `<span><b>${counts[s] || 0}</b>${s}</span>`).join("") +
    `<span><b>${alerts.filter((a) => !a.inhibited).length}</b>alerts</span>`;
  $("grid").innerHTML = desks.map((d) => tile(d, byDesk[d.site + "/" + d.desk] || [])).join("") || `<p>No desks yet.</p>`;
  const list = $("alerts");
  const listKey = JSON.stringify(alerts);
  if (list.dataset.key !== listKey) renderAlerts(list, alerts, listKey);
  renderSilences();
  renderSilenceForm();
  // A transition changes the alert list: the history and the silences may have changed with it.
  const alertsKey = JSON.stringify(snap.alerts.map((a) => [a.site, a.desk, a.rule, a.state, a.level, a.silenced, a.inhibited]));
  if (alertsKey !== state.alertsKey) {
    state.alertsKey = alertsKey;
    loadHistory();
    loadSilences();
  } else {
    renderHistory();
  }
}

function renderAlerts(list, alerts, listKey) {
  const keep = {};  // the duration chosen in each row survives a re-render
  for (const sel of list.querySelectorAll("select.for")) keep[sel.dataset.key] = sel.value;
  list.dataset.key = listKey;
  list.innerHTML = "";
  if (!alerts.length) list.innerHTML = `<li class="none">No alerts.</li>`;
  for (const a of alerts) {
    const li = document.createElement("li");
    li.className = "sev-" + a.severity;
    const note = a.inhibited ? "muted: desk not online" : a.silenced ? "silenced" : "";
    li.innerHTML = `<span class="what">${esc(a.desk)} · ${esc(a.rule)}${a.level ? " · level " + a.level : ""}</span>
      <span class="buttons"></span><span class="summary-text">${esc(a.summary)} <span class="muted-note">${note}</span></span>`;
    const key = a.site + "/" + a.desk + "/" + a.rule;
    const sel = durationSelect(keep[key] || "30m");
    sel.dataset.key = key;
    sel.disabled = a.silenced;
    const b = document.createElement("button");
    b.textContent = a.silenced ? "silenced" : "silence";
    b.disabled = a.silenced;
    b.dataset.rule = a.rule;
    b.addEventListener("click", () => silenceAlert(a, b, sel));
    li.querySelector(".buttons").append(sel, b);
    list.appendChild(li);
  }
}

$("site").addEventListener("change", (e) => {
  state.site = e.target.value;
  localStorage.setItem("hsc-site", state.site);
  state.histDesk = "";
  render();
  loadHistory();
});
$("grid").addEventListener("click", (e) => {
  const t = e.target.closest(".tile");
  if (t) showHistory(t.dataset.desk);
});
$("hist-desk").addEventListener("change", (e) => { state.histDesk = e.target.value; loadHistory(); });
$("hist-rule").addEventListener("change", (e) => { state.histRule = e.target.value; loadHistory(); });
$("sil-site").addEventListener("change", (e) => { e.target.dataset.touched = "1"; renderSilenceForm(); });
$("sil-form").addEventListener("submit", addSilence);
$("sil-durations").innerHTML = DURATIONS.map((d) => `<option value="${d}"></option>`).join("");

function connect() {
  const es = new EventSource("/events");
  es.addEventListener("snapshot", (e) => {
    state.snap = JSON.parse(e.data);
    state.receivedAt = Date.now();
    $("conn").textContent = "live";
    $("conn").className = "conn live";
    render();
  });
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "conn"; };
}

connect();
loadSilences();
setInterval(render, 1000);  // keeps break and call timers and last-seen ages ticking between snapshots
setInterval(() => { loadSilences(); loadHistory(); }, 5000);  // silences added by `headset-host silence`
