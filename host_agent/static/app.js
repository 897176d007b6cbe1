// The floor dashboard: renders the host's snapshot, pushed over Server-Sent Events (/events).
"use strict";

const state = { snap: null, receivedAt: 0, site: localStorage.getItem("hsc-site") || "" };
const $ = (id) => document.getElementById(id);

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function mmss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
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

async function silence(a, button) {
  const t = token();
  if (!t) return;
  button.disabled = true;
  const r = await fetch("/api/silence", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Bearer " + t },
    body: JSON.stringify({ site: a.site, desk: a.desk, rule: a.rule, for_s: 1800 }),
  });
  if (!r.ok) {
    const body = await r.json().catch(() => ({ error: r.statusText }));
    if (r.status === 401) localStorage.removeItem("hsc-token");
    alert("Silence failed: " + body.error);
    button.disabled = false;
  }
}

function renderSites(sites) {
  const sel = $("site");
  const have = Array.from(sel.options).map((o) => o.value);
  for (const s of sites) {
    if (!have.includes(s)) sel.add(new Option(s, s));
  }
  sel.value = state.site;
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
  const elapsed = (Date.now() - state.receivedAt) / 1000;
  $("grid").innerHTML = desks.map((d) => {
    const mine = byDesk[d.site + "/" + d.desk] || [];
    const live = mine.filter((a) => !a.inhibited);
    const loud = live.filter((a) => !a.silenced);
    const cls = ["tile", d.status, loud.length ? "alerting" : (live.length ? "silenced" : "")].join(" ");
    const wear = d.worn === false
      ? `<span class="chip off">headset off ${mmss((d.off_s || 0) + elapsed)}</span>`
      : d.worn ? `<span class="chip">worn</span>` : `<span class="chip">wear ?</span>`;
    const cues = d.cues.map((c) => `<span class="chip cue">${esc(c.replace("_", " "))}</span>`).join("");
    const badges = live.map((a) => `<span class="chip ${a.silenced ? "muted" : "alert"}">${esc(a.rule)}${a.level ? " L" + a.level : ""}</span>`).join("");
    const voice = d.speaking ? `<span class="speaking">speaking</span>` : "listening";
    const nums = [d.level_dbov != null ? d.level_dbov.toFixed(0) + " dBov" : null,
                  d.rate_spm != null ? d.rate_spm.toFixed(0) + " spm" : null].filter(Boolean).join(" · ");
    return `<div class="${cls}" data-desk="${esc(d.desk)}" data-site="${esc(d.site)}" data-alerts="${live.length}">
      <div class="top"><span class="name">${esc(d.desk)}</span><span class="status">${esc(d.status)}</span></div>
      <div class="site">${esc(d.site)} · ${esc(d.posture)}</div>
      <div class="row">${wear}${cues}</div>
      <div class="row">${voice}${nums ? " · " + nums : ""}</div>
      <div class="row">${badges}</div></div>`;
  }).join("") || `<p>No desks yet.</p>`;
  const list = $("alerts");
  list.innerHTML = "";
  if (!alerts.length) list.innerHTML = `<li class="none">No alerts.</li>`;
  for (const a of alerts) {
    const li = document.createElement("li");
    li.className = "sev-" + a.severity;
    const note = a.inhibited ? "muted: desk not online" : a.silenced ? "silenced" : "";
    li.innerHTML = `<span class="what">${esc(a.desk)} · ${esc(a.rule)}${a.level ? " · level " + a.level : ""}</span>
      <span></span><span class="summary-text">${esc(a.summary)} <span class="muted-note">${note}</span></span>`;
    const b = document.createElement("button");
    b.textContent = a.silenced ? "silenced" : "silence 30 min";
    b.disabled = a.silenced;
    b.dataset.rule = a.rule;
    b.addEventListener("click", () => silence(a, b));
    li.children[1].replaceWith(b);
    list.appendChild(li);
  }
}

$("site").addEventListener("change", (e) => {
  state.site = e.target.value;
  localStorage.setItem("hsc-site", state.site);
  render();
});

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
setInterval(render, 1000);  // keeps break timers ticking between snapshots
