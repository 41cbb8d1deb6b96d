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
  return { status: r.status, body, owner: r.headers.get("X-Sirenstream-Owner") };
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
    "SIRENs per segment on this instance's partitions; the chart covers the stream time processed since it started" + (d.complete ? "" : " (partial: a partition is still loading)");
}

// niceStep is the step of about n ticks up to max: 1, 2 or 5 × 10^k, ≥ 1.
function niceStep(max, n) {
  const raw = Math.max(1, max / n);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
function niceTop(max) { const st = niceStep(max, 4); return Math.ceil(max / st) * st; }
function yTicks(top) {
  const st = niceStep(top, 4), out = [];
  for (let v = 0; v <= top + 1e-9; v += st) out.push(v);
  return out;
}
const HOUR = 3600e3, DAY = 24 * HOUR;
// xTicks: UTC-aligned times between t0 and t1 at the smallest step giving at
// most 6 ticks; labels are dates (or date + hour below a day), never repeated.
function xTicks(t0, t1) {
  const steps = [HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 61 * DAY, 91 * DAY, 182 * DAY, 365 * DAY];
  let step = steps[steps.length - 1];
  for (const st of steps) if ((t1 - t0) / st <= 6) { step = st; break; }
  const out = [], seen = new Set();
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const iso = new Date(t).toISOString();
    const label = step < DAY ? iso.slice(5, 10) + " " + iso.slice(11, 16) : iso.slice(0, 10);
    if (seen.has(label)) continue;
    seen.add(label);
    out.push({ t, label });
  }
  if (!out.length) out.push({ t: t0, label: new Date(t0).toISOString().slice(0, 16).replace("T", " ") });
  return out;
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
  // Less than two hours of stream time (e.g. just after a restart): an hour
  // of margin each side, so the axis still reads as times.
  let t0 = pts[0].t, t1 = pts[pts.length - 1].t;
  if (t1 - t0 < 2 * HOUR) { t0 -= HOUR; t1 += HOUR; }
  let maxY = 1;
  for (const p of pts) for (const c of p.counts) maxY = Math.max(maxY, c);
  maxY = niceTop(maxY);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / maxY) * (H - T - B);
  // grid + y labels: a "nice" integer step, so no label repeats
  for (const v of yTicks(maxY)) {
    s.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    const lab = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" });
    lab.textContent = v.toLocaleString("en-US");
    s.appendChild(lab);
  }
  // x labels: UTC-aligned ticks of a step that fits, each label once
  for (const tk of xTicks(t0, t1)) {
    const px = x(tk.t);
    const anchor = px < L + 30 ? "start" : px > W - R - 30 ? "end" : "middle";
    s.appendChild(svg("line", { x1: px, x2: px, y1: H - B, y2: H - B + 4, class: "grid" }));
    const lab = svg("text", { x: px, y: H - 8, "text-anchor": anchor, class: "axis xlabel" });
    lab.textContent = tk.label;
    s.appendChild(lab);
  }
  tl.segments.forEach((n, i) => {
    let d = "";
    // Steps: a count holds until the next point (the last one of its bucket).
    pts.forEach((p, j) => {
      d += j === 0 ? "M" + x(p.t).toFixed(1) + "," + y(p.counts[i]).toFixed(1)
        : "H" + x(p.t).toFixed(1) + "V" + y(p.counts[i]).toFixed(1);
    });
    s.appendChild(svg("path", { d, fill: "none", stroke: COLORS[n] || "#888", "stroke-width": 2, class: "series", "data-segment": n }));
    const last = pts[pts.length - 1];
    s.appendChild(svg("circle", { cx: x(last.t).toFixed(1), cy: y(last.counts[i]).toFixed(1), r: 3, fill: COLORS[n] || "#888" }));
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
    // Offer-only changes are events too (spec §8): show them, and what
    // caused the event (an input of which topic, a day change, a timer…).
    (c.offers_added || []).forEach((o) => ch.appendChild(chip("+" + o, "added offer")));
    (c.offers_removed || []).forEach((o) => ch.appendChild(chip("−" + o, "removed offer")));
    if (c.trigger) ch.appendChild(el("div", "small muted", c.trigger.toLowerCase().replace(/_/g, " ") + (c.trigger_topic ? " · " + c.trigger_topic : "")));
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

// ---- throughput, dead letters, inputs -------------------------------------
const samples = []; // {t: server ms, c: consumed} of the last polls
function fmtDur(sec) {
  if (sec === null || sec === undefined) return "–";
  const a = Math.abs(sec);
  if (a < 1) return "0 s";
  if (a < 120) return Math.round(sec) + " s";
  if (a < 7200) return Math.round(sec / 60) + " min";
  if (a < 172800) return (sec / 3600).toFixed(1) + " h";
  return (sec / 86400).toFixed(1) + " d";
}
function kpi(box, label, value, cls) {
  const k = el("div", "kpi");
  k.appendChild(el("div", "kpival " + (cls || ""), value));
  k.appendChild(el("div", "kpilabel", label));
  box.appendChild(k);
}
function renderStats(d) {
  samples.push({ t: d.now_ms, c: d.consumed });
  while (samples.length > 2 && samples[samples.length - 1].t - samples[0].t > 30000) samples.shift();
  let rate = null;
  if (samples.length >= 2) {
    const a = samples[0], b = samples[samples.length - 1];
    if (b.t > a.t) rate = ((b.c - a.c) * 1000) / (b.t - a.t);
  }
  const box = document.getElementById("throughput");
  clear(box);
  kpi(box, "records/s (last 30 s)", rate === null ? "…" : fmtNum(Math.round(rate)));
  kpi(box, "records consumed", fmtNum(d.consumed));
  kpi(box, "processed", fmtNum(d.processed));
  kpi(box, "dead-lettered", fmtNum(d.dead_lettered) + (d.consumed ? " (" + ((100 * d.dead_lettered) / d.consumed).toFixed(1) + " %)" : ""), d.dead_lettered ? "warnval" : "");

  const dl = document.getElementById("dlq");
  clear(dl);
  if (!d.dead_letters.length) dl.appendChild(el("p", "empty", "no dead letters"));
  const maxN = Math.max(1, ...d.dead_letters.map((r) => r.count));
  for (const r of d.dead_letters) {
    const row = el("div", "dlqrow");
    row.appendChild(el("span", "mono", r.reason));
    const track = el("span", "track");
    const bar = el("span", "bar behind");
    bar.style.width = Math.max(2, (100 * r.count) / maxN) + "%";
    track.appendChild(bar);
    row.appendChild(track);
    row.appendChild(el("span", "countval", fmtNum(r.count)));
    dl.appendChild(row);
  }

  const tb = document.querySelector("#inputs tbody");
  clear(tb);
  if (!d.inputs.length) {
    const tr = el("tr");
    const td = el("td", "empty", "no input read yet");
    td.colSpan = 3;
    tr.appendChild(td);
    tb.appendChild(tr);
  }
  for (const i of d.inputs) {
    const tr = el("tr", "inputrow");
    tr.appendChild(el("td", "mono", i.topic));
    tr.appendChild(el("td", "mono num" + (i.lag_records > 0 ? " warnval" : ""), fmtNum(i.lag_records)));
    tr.appendChild(el("td", "mono num", fmtDur(i.lag_seconds)));
    tb.appendChild(tr);
  }
}

// ---- group members ----------------------------------------------------------
function renderMembers(d) {
  const tb = document.querySelector("#members tbody");
  clear(tb);
  document.getElementById("members-note").textContent =
    "group " + d.group + " · " + d.members.length + " member" + (d.members.length === 1 ? "" : "s") + (d.error ? " · lookup failed: " + d.error : "");
  for (const m of d.members) {
    const self = d.self && m.http === d.self;
    const tr = el("tr", "memberrow" + (self ? " self" : ""));
    const who = el("td", "mono", m.client_id + (self ? " (this instance)" : ""));
    who.title = m.member_id;
    tr.appendChild(who);
    tr.appendChild(el("td", "mono", m.host));
    tr.appendChild(el("td", "mono", m.partitions && m.partitions.length ? m.partitions.join(", ") : "none"));
    const api = el("td", "mono");
    if (m.http && /^https?:\/\//.test(m.http)) {
      const a = el("a", "sirenlink", m.http.replace(/^https?:\/\//, ""));
      a.href = m.http + "/";
      api.appendChild(a);
    } else {
      api.appendChild(el("span", "muted", "none advertised"));
    }
    tr.appendChild(api);
    tb.appendChild(tr);
  }
}

// ---- uplift -----------------------------------------------------------------
const UPLIFT_FIRST = ["day", "offer", "rules_version", "holdout_id", "treatment", "control"];
const GROUP_RE = /^(treatment|control)[._](eligible|converted|churned|revenue_cents)$/;
// flatRow flattens one level of nesting ({"control": {"eligible": 3}} →
// "control.eligible") and gathers the per-group counts into one cell per
// group ("control"), so a row fits the page.
function flatRow(r) {
  const out = {};
  for (const k of Object.keys(r)) {
    const v = r[k];
    if (v && typeof v === "object" && !Array.isArray(v)) for (const k2 of Object.keys(v)) out[k + "." + k2] = v[k2];
    else out[k] = v;
  }
  const groups = {};
  for (const k of Object.keys(out)) {
    const m = GROUP_RE.exec(k);
    if (!m || typeof out[k] !== "number") continue;
    (groups[m[1]] = groups[m[1]] || {})[m[2]] = out[k];
    delete out[k];
  }
  for (const g of Object.keys(groups)) out[g] = groupText(groups[g]);
  return out;
}
function groupText(c) {
  const parts = [];
  if ("converted" in c && "eligible" in c) {
    parts.push(fmtNum(c.converted) + "/" + fmtNum(c.eligible) + " conv." + (c.eligible ? " (" + ((100 * c.converted) / c.eligible).toFixed(1) + " %)" : ""));
  } else if ("eligible" in c) parts.push(fmtNum(c.eligible) + " eligible");
  if ("churned" in c) parts.push(fmtNum(c.churned) + " churned");
  if ("revenue_cents" in c) parts.push((c.revenue_cents / 100).toLocaleString("en-US", { maximumFractionDigits: 0 }) + " revenue");
  for (const k of Object.keys(c)) if (!["eligible", "converted", "churned", "revenue_cents"].includes(k)) parts.push(fmtNum(c[k]) + " " + k.replace(/_/g, " "));
  return parts.join(" · ");
}
function fmtUplift(k, v) {
  if (typeof v === "number" && !Number.isInteger(v) && /lift|share/.test(k)) return (100 * v).toFixed(1) + " %";
  if (typeof v === "number" && /cents$/.test(k)) return (v / 100).toLocaleString("en-US", { maximumFractionDigits: 0 });
  return fmtNum(v);
}
function renderUplift(res) {
  const card = document.getElementById("uplift-card");
  let rows = null;
  if (res.status === 200 && res.body) rows = Array.isArray(res.body) ? res.body : res.body.rows || res.body.uplift || null;
  if (!rows || !rows.length) { card.hidden = true; return; }
  card.hidden = false;
  const flat = rows.map(flatRow);
  let keys = [];
  for (const k of UPLIFT_FIRST) if (k in flat[0]) keys.push(k);
  for (const f of flat) for (const k of Object.keys(f)) if (!keys.includes(k)) keys.push(k);
  // Labels shared by every row go to the heading, not a column.
  const shared = [];
  keys = keys.filter((k) => {
    if (!/^(day|rules_version|holdout_id)$/.test(k) || !flat.every((f) => f[k] === flat[0][k])) return true;
    shared.push(k.replace(/_/g, " ") + " " + flat[0][k]);
    return false;
  });
  document.getElementById("uplift-note").textContent = shared.join(" · ");
  // X, X_low, X_high make one column: "X [low, high]".
  const cols = [];
  for (const k of keys) {
    if (/_(low|high)$/.test(k) && keys.includes(k.replace(/_(low|high)$/, ""))) continue;
    cols.push({ k, lo: keys.includes(k + "_low") ? k + "_low" : null, hi: keys.includes(k + "_high") ? k + "_high" : null });
  }
  const head = document.querySelector("#uplift thead");
  clear(head);
  const hr = el("tr");
  for (const c of cols) {
    const text = c.k.replace(/_/g, " ") + (c.lo && c.hi ? " [95 %]" : "");
    hr.appendChild(el("th", /^(offer|day|treatment|control)$/.test(c.k) ? null : "num", text));
  }
  head.appendChild(hr);
  const tb = document.querySelector("#uplift tbody");
  clear(tb);
  for (const f of flat) {
    const tr = el("tr", "upliftrow");
    for (const c of cols) {
      const v = f[c.k];
      let text = v === undefined ? "" : fmtUplift(c.k, v);
      if (c.lo && c.hi && f[c.lo] !== undefined && f[c.hi] !== undefined) text += " [" + fmtUplift(c.k, f[c.lo]) + ", " + fmtUplift(c.k, f[c.hi]) + "]";
      tr.appendChild(el("td", typeof v === "number" ? "mono num" : /^(treatment|control)$/.test(c.k) ? "groupcell" : "mono", text));
    }
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
      (b.control_group ? " · control group" : "") + " · rules " + b.rules_version +
      (res.owner ? " · answered by " + res.owner.replace(/^https?:\/\//, "") : "")));
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
  } else if (res.status === 421 || res.status === 502) {
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
    const [parts, segs, tl, ch, st, mem, up] = await Promise.all([
      getJSON("v1/partitions"), getJSON("v1/segments"), getJSON("v1/timeline"), getJSON("v1/changes"),
      getJSON("v1/stats"), getJSON("v1/members"), getJSON("v1/uplift"),
    ]);
    if (parts.status === 200) renderPartitions(parts.body);
    if (segs.status === 200) renderCounts(segs.body);
    if (tl.status === 200) renderChart(tl.body);
    if (ch.status === 200) renderChanges(ch.body);
    if (st.status === 200) renderStats(st.body);
    if (mem.status === 200) renderMembers(mem.body);
    renderUplift(up);
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
