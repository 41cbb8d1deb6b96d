// sirenstream live page: polls the ops JSON endpoints and draws with SVG.
// No dependencies; data is inserted with textContent only (never innerHTML).
"use strict";

const COLORS = {
  CHURN_RISK: "#d1495b",
  DATA_HUNGRY: "#00798c",
  HIDDEN_GROWTH: "#edae49",
  MULTI_SITE: "#66a182",
  RECOVERY_EXPOSED: "#8d5a97",
  SLA_SENSITIVE: "#2e4057",
};
const SVGNS = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
function fmtTime(ms) {
  if (!ms) return "–";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 16);
}
function fmtNum(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return v.toFixed(Math.abs(v) < 10 ? 2 : 1);
}
function chip(name, kind) {
  const c = el("span", "chip " + (kind || ""), name);
  if (COLORS[name]) c.style.borderColor = COLORS[name];
  return c;
}

async function getJSON(path) {
  const r = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  return { status: r.status, body };
}

// ---- header + lag ---------------------------------------------------------
function renderPartitions(d) {
  const ready = document.getElementById("ready");
  ready.textContent = d.ready ? "ready" : "not ready";
  ready.className = "pill " + (d.ready ? "ok" : "bad");
  document.getElementById("group").textContent = d.group || "–";
  document.getElementById("owned").textContent =
    d.partitions.length ? d.partitions.map((p) => p.partition).join(", ") : "none";
  document.getElementById("streamtime").textContent = d.stream_time ? d.stream_time.replace("T", " ").replace("Z", " UTC") : "–";

  const box = document.getElementById("lag");
  clear(box);
  if (!d.partitions.length) { box.appendChild(el("p", "empty", "no partitions owned")); return; }
  const maxLag = Math.max(1, ...d.partitions.map((p) => p.lag));
  for (const p of d.partitions) {
    const row = el("div", "lagrow");
    row.appendChild(el("span", "lagname", "p" + p.partition));
    const track = el("span", "track");
    const bar = el("span", "bar" + (p.lag > 0 ? " behind" : ""));
    bar.style.width = Math.max(p.lag > 0 ? 2 : 0, (100 * p.lag) / maxLag) + "%";
    track.appendChild(bar);
    row.appendChild(track);
    row.appendChild(el("span", "lagval", fmtNum(p.lag)));
    const detail = el("span", "lagdetail",
      fmtNum(p.consumed) + " in · " + fmtNum(p.dead_lettered) + " DLQ · " +
      (p.stream_time ? p.stream_time.slice(0, 10) : "no events") +
      (p.restore_total > 0 && p.restore_read < p.restore_total ? " · restoring " + Math.floor((100 * p.restore_read) / p.restore_total) + "%" : "") +
      (p.loaded ? "" : " · loading"));
    row.appendChild(detail);
    box.appendChild(row);
  }
}

// ---- segment counts + chart ----------------------------------------------
function renderCounts(d) {
  const box = document.getElementById("counts");
  clear(box);
  const names = Object.keys(d.segments).sort();
  const maxC = Math.max(1, ...names.map((n) => d.segments[n]));
  for (const n of names) {
    const row = el("div", "countrow");
    row.appendChild(chip(n));
    const track = el("span", "track");
    const bar = el("span", "bar");
    bar.style.width = (100 * d.segments[n]) / maxC + "%";
    bar.style.background = COLORS[n] || "#888";
    track.appendChild(bar);
    row.appendChild(track);
    row.appendChild(el("span", "countval", fmtNum(d.segments[n])));
    box.appendChild(row);
  }
  document.getElementById("seg-note").textContent =
    "SIRENs per segment on this instance's partitions" + (d.complete ? "" : " (partial: a partition is still loading)");
}

function renderChart(tl) {
  const s = document.getElementById("chart");
  clear(s);
  const W = 760, H = 260, L = 52, R = 10, T = 10, B = 28;
  const pts = tl.points;
  const legend = document.getElementById("legend");
  clear(legend);
  tl.segments.forEach((n) => {
    const item = el("span", "legenditem");
    const sw = el("span", "swatch");
    sw.style.background = COLORS[n] || "#888";
    item.appendChild(sw);
    item.appendChild(el("span", null, n));
    legend.appendChild(item);
  });
  if (pts.length < 1) {
    const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" });
    t.textContent = "waiting for events…";
    s.appendChild(t);
    return;
  }
  const t0 = pts[0].t, t1 = Math.max(pts[pts.length - 1].t, t0 + 1);
  let maxY = 1;
  for (const p of pts) for (const c of p.counts) maxY = Math.max(maxY, c);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / maxY) * (H - T - B);
  // grid + y labels
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((maxY * i) / 4);
    s.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    const lab = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" });
    lab.textContent = v.toLocaleString("en-US");
    s.appendChild(lab);
  }
  // x labels: dates
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const lab = svg("text", { x: x(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle", class: "axis" });
    lab.textContent = new Date(t).toISOString().slice(0, 10);
    s.appendChild(lab);
  }
  tl.segments.forEach((n, i) => {
    let d = "";
    pts.forEach((p, j) => {
      d += (j === 0 ? "M" : "L") + x(p.t).toFixed(1) + "," + y(p.counts[i]).toFixed(1);
    });
    if (pts.length === 1) d += "L" + (W - R) + "," + y(pts[0].counts[i]).toFixed(1);
    s.appendChild(svg("path", { d, fill: "none", stroke: COLORS[n] || "#888", "stroke-width": 2, class: "series", "data-segment": n }));
  });
}

// ---- recent changes ------------------------------------------------------
function reasonText(r) {
  return r.segment + ": " + r.metric + " " + fmtNum(r.value) + " (threshold " + fmtNum(r.threshold) + ")";
}

function renderChanges(d) {
  const tb = document.querySelector("#changes tbody");
  clear(tb);
  if (!d.changes.length) {
    const tr = el("tr");
    const td = el("td", "empty", "no segment change yet");
    td.colSpan = 8;
    tr.appendChild(td);
    tb.appendChild(tr);
    return;
  }
  for (const c of d.changes) {
    const tr = el("tr", "change");
    tr.appendChild(el("td", "mono", fmtTime(c.event_time)));
    const sirenTd = el("td", "mono");
    const a = el("a", "sirenlink", c.siren);
    a.href = "#" + c.siren;
    a.addEventListener("click", (ev) => { ev.preventDefault(); lookup(c.siren); });
    sirenTd.appendChild(a);
    tr.appendChild(sirenTd);
    tr.appendChild(el("td", "mono", c.partition));
    tr.appendChild(el("td", "mono", c.seq));
    const ch = el("td");
    c.added.forEach((s) => ch.appendChild(chip("+" + s, "added")));
    c.removed.forEach((s) => ch.appendChild(chip("−" + s, "removed")));
    tr.appendChild(ch);
    const now = el("td");
    if (!c.segments.length) now.appendChild(el("span", "muted", "none"));
    c.segments.forEach((s) => now.appendChild(chip(s)));
    tr.appendChild(now);
    const rs = el("td", "reasons");
    c.reasons.forEach((r) => rs.appendChild(el("div", null, reasonText(r))));
    tr.appendChild(rs);
    tr.appendChild(el("td", "small", c.offers.join(", ")));
    tb.appendChild(tr);
  }
}

// ---- lookup ----------------------------------------------------------------
async function lookup(siren) {
  const input = document.getElementById("siren");
  input.value = siren;
  const box = document.getElementById("result");
  clear(box);
  box.appendChild(el("p", "muted", "looking up " + siren + "…"));
  let res;
  try {
    res = await getJSON("v1/sirens/" + encodeURIComponent(siren));
  } catch (e) {
    clear(box);
    box.appendChild(el("p", "error", "request failed: " + e));
    return;
  }
  clear(box);
  const b = res.body || {};
  if (res.status === 200) {
    const h = el("div", "resulthead");
    h.appendChild(el("b", "mono", b.siren));
    h.appendChild(el("span", "muted", " partition " + b.partition + " · seq " + b.seq + " · as of " + b.as_of.slice(0, 10) +
      (b.control_group ? " · control group" : "") + " · rules " + b.rules_version));
    box.appendChild(h);
    const segs = el("div", "line");
    segs.appendChild(el("span", "label", "segments"));
    if (!b.segments.length) segs.appendChild(el("span", "muted", "none"));
    b.segments.forEach((s) => segs.appendChild(chip(s)));
    box.appendChild(segs);
    const offers = el("div", "line");
    offers.appendChild(el("span", "label", "offers"));
    offers.appendChild(el("span", null, b.offers.length ? b.offers.join(", ") : "none"));
    box.appendChild(offers);
    if (b.reasons.length) {
      const rs = el("div", "line");
      rs.appendChild(el("span", "label", "reasons"));
      const list = el("span");
      b.reasons.forEach((r) => list.appendChild(el("div", null, reasonText(r))));
      rs.appendChild(list);
      box.appendChild(rs);
    }
    const t = el("table", "metrics");
    for (const k of Object.keys(b.metrics)) {
      const tr = el("tr");
      tr.appendChild(el("td", "mono", k));
      tr.appendChild(el("td", "mono num", fmtNum(b.metrics[k])));
      t.appendChild(tr);
    }
    box.appendChild(t);
  } else if (res.status === 421) {
    box.appendChild(el("p", "warn", b.error || "owned by another instance"));
    const o = b.owner;
    if (o) {
      box.appendChild(el("p", "muted", "partition " + b.partition + " → member " + o.member_id + " (" + o.client_id + " @ " + o.host + ")"));
    }
    if (b.owner_url && /^https?:\/\//.test(b.owner_url)) {
      const a = el("a", null, b.owner_url);
      a.href = b.owner_url;
      box.appendChild(a);
    }
  } else {
    box.appendChild(el("p", res.status === 404 ? "warn" : "error", (b.error || "error") + " (HTTP " + res.status + ")"));
  }
}

document.getElementById("lookup").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = document.getElementById("siren").value.trim();
  if (v) lookup(v);
});

// ---- polling ---------------------------------------------------------------
async function refresh() {
  try {
    const [parts, segs, tl, ch] = await Promise.all([
      getJSON("v1/partitions"), getJSON("v1/segments"), getJSON("v1/timeline"), getJSON("v1/changes"),
    ]);
    if (parts.status === 200) renderPartitions(parts.body);
    if (segs.status === 200) renderCounts(segs.body);
    if (tl.status === 200) renderChart(tl.body);
    if (ch.status === 200) renderChanges(ch.body);
    document.body.dataset.loaded = "1";
  } catch (e) {
    const r = document.getElementById("ready");
    r.textContent = "unreachable";
    r.className = "pill bad";
  }
}

refresh();
setInterval(refresh, POLL_MS);
if (location.hash.length === 10) lookup(location.hash.slice(1));
