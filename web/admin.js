// The admin console (/admin/events and /admin/websocket, one page with a tab each): live
// plots of the monitoring routes' counters and a live tail of the `admin` channel, which
// carries every event. The plots are uPlot (web/vendor/, pinned); the rest is plain DOM.
//
// Where each figure comes from:
//   * events/s by type: successive polls of GET /api/events/stats, each type's `events`
//     counter's rise divided by the time between the polls; next to them, dashed, all the
//     events the `admin` channel brought in that time (the two should agree);
//   * deliveries, stale, throttled, failed per second: the same with GET /api/websocket/stats
//     (`pushes`); connections: its `connections.active` at each poll;
//   * latency: for each frame of the `admin` channel, its arrival here minus the envelope's
//     `occurredAt` (measured in the browser, so clock offsets count too);
//   * busiest channels: events per channel in the live tail over the last 5 minutes, the top
//     5 asked for with GET /api/websocket/stats?channels=… for their subscriptions.
import { RealtimeClient } from "./realtime/index.js";

const uPlot = window.uPlot; // defined by the classic <script> before this module

const POLL_MS = 2000;
const WINDOW_S = 5 * 60; // what the plots and the busiest channels look back on
const TAIL_MAX = 200; // rows of the live tail
const LATENCY_MAX = 1000; // samples of the histogram
const BUSY_MAX = 20000; // live events remembered for the busiest channels, whatever the rate
const TOP_CHANNELS = 5;
const HEIGHT = 230;
// Tableau 10: distinct at a glance; the 10th and later types share the grey "other".
const COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
const OTHER = "#bab0ac";
// Latency histogram buckets: upper edges in ms (the last bucket is everything above).
const EDGES = [5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
const BUCKET_LABELS = ["<5", "5–10", "10–20", "20–50", "50–100", "100–200", "200–500", "0.5–1k", "1k–2k", "2k–5k", "≥5k"];

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

const state = {
  token: null,
  rt: null,
  gen: 0, // bumped on every (re)connect: an older poll loop sees it and stops
  polls: 0,
  last: null, // the previous poll's answers, to diff the counters against
  samples: [], // one per poll: {t (s), rates (type -> /s, or null), live, delivered, stale, throttled, failed, active}
  tail: [], // the newest TAIL_MAX live events, newest first: {e, at, latency, channels, row}
  received: 0,
  receivedAtPoll: 0, // `received` at the previous poll
  latencies: [], // ms, oldest first
  busy: [], // {at, channels} of the live events of the last WINDOW_S
  subscriptions: {}, // channel -> subscriptions, from the latest poll
  colors: new Map(), // event type -> colour, shared by the plot and the tail
};

// ---- where the stack is, and the token

const api = () => $("api").value.trim().replace(/\/+$/, "") || location.origin;
const wsUrl = () => $("wsurl").value.trim() || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

// A deployed stack's URLs are remembered; the token only in this tab (sessionStorage), so a
// reload or opening the other route here reconnects without asking again.
for (const id of ["api", "wsurl"]) {
  $(id).value = localStorage.getItem(`realtime.admin.${id}`) ?? "";
  $(id).onchange = () => localStorage.setItem(`realtime.admin.${id}`, $(id).value.trim());
}

function setError(msg) {
  $("error").textContent = msg;
}

function setStatus(s) {
  $("status").dataset.status = s;
  $("status").textContent = s;
  if (s === "open") setError("");
}

async function get(path, auth = true) {
  const res = await fetch(`${api()}/api${path}`, { headers: auth ? { authorization: `Bearer ${state.token}` } : {} });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  if (!res.ok) throw new Error(`${path.split("?")[0]}: ${json?.error?.message ?? res.status}`);
  return json;
}

async function devToken() {
  let res;
  try {
    res = await fetch(`${api()}/api/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sub: "admin", roles: ["admin"], name: "admin" }),
    });
  } catch (e) {
    throw new Error(`cannot reach ${api()}: ${e.message}`);
  }
  // Only the local stack in development mode mints tokens.
  if (!res.ok) throw new Error(`no dev token from ${api()} (${res.status}): paste a token under "deployed stack"`);
  return (await res.json()).token;
}

// The token's claims, to say who is signed in (not verified here: the server does that).
function claims(token) {
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

$("connect").onclick = async () => {
  setError("");
  try {
    const token = $("token").value.trim() || (await devToken());
    sessionStorage.setItem("realtime.admin.token", token);
    start(token);
  } catch (e) {
    setError(e.message);
  }
};

function start(token) {
  state.rt?.close();
  state.token = token;
  const gen = ++state.gen;
  resetData();
  const c = claims(token);
  const roles = c.roles ?? [];
  const expires = c.exp ? ` · expires ${new Date(c.exp * 1000).toLocaleTimeString()}` : "";
  $("whoami").textContent = `${c.sub ?? "?"} (${roles.join(", ") || "no roles"})${expires}`;
  if (!roles.includes("admin")) setError("this token has no admin role: the stats routes and the admin channel will refuse it");

  state.rt = new RealtimeClient({
    url: wsUrl(),
    token,
    onStatus: setStatus,
    // Error frames (a refused subscribe); a closed connection is the status pill's business.
    onError: (e) => (e?.code ? setError(`admin channel: ${e.message ?? e.code}`) : console.warn(e)),
  });
  // Sent when the socket opens, and again after every reconnect.
  state.rt.subscribe("admin", {}, onAdmin).catch(() => {});
  state.rt.connect();
  pollLoop(gen);
}

// ---- polling the counters

async function pollLoop(gen) {
  while (gen === state.gen) {
    await poll(gen);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function poll(gen) {
  const channels = topChannels().map(([ch]) => ch);
  const query = channels.length ? `?channels=${encodeURIComponent(channels.join(","))}` : "";
  if (state.polls++ % 5 === 0) health();
  let ev, ws;
  try {
    // One after the other: each route first writes the counts its process holds, and a read
    // running alongside that write would miss part of them.
    ev = await get("/events/stats");
    ws = await get(`/websocket/stats${query}`);
  } catch (e) {
    if (gen === state.gen) setError(`stats: ${e.message}`);
    return;
  }
  if (gen !== state.gen) return; // answers for a connection given up meanwhile
  const t = Date.now() / 1000;
  const prev = state.last;
  state.last = { t, ev, ws };
  Object.assign(state.subscriptions, ws.subscriptions);

  // A counter's rise per second since the previous poll; null for the first poll and when
  // a counter went down (the stack restarted on a fresh table).
  const dt = prev ? t - prev.t : 0;
  const rate = (now, before) => (dt > 0 && now >= before ? (now - before) / dt : null);
  let rates = null;
  if (prev && rate(ev.emissions.events, prev.ev.emissions.events) != null) {
    rates = {};
    for (const [type, c] of Object.entries(ev.byType)) {
      const r = rate(c.events, prev.ev.byType[type]?.events ?? 0);
      if (r > 0) rates[type] = r;
    }
  }
  const p = ws.pushes;
  const q = prev?.ws.pushes ?? {};
  const live = rate(state.received, state.receivedAtPoll);
  state.receivedAtPoll = state.received;
  state.samples.push({
    t,
    rates,
    live,
    delivered: rate(p.delivered, q.delivered),
    stale: rate(p.stale, q.stale),
    throttled: rate(p.throttled, q.throttled),
    failed: rate(p.failed, q.failed),
    active: ws.connections.active,
  });
  while (state.samples[0].t < t - WINDOW_S) state.samples.shift();

  $("ev-total").textContent = ev.emissions.events.toLocaleString();
  $("ev-failed").textContent = ev.emissions.failed.toLocaleString();
  $("ws-active").textContent = ws.connections.active;
  $("ws-openclose").textContent = `${ws.connections.opened} / ${ws.connections.closed}`;
  $("ws-delivered").textContent = p.delivered.toLocaleString();
  $("ws-stale").textContent = p.stale;
  $("ws-throttled").textContent = p.throttled;
  $("ws-failed").textContent = p.failed;
  $("ws-replay").textContent = `${ws.replay.resumes} / ${ws.replay.replayed}`;
  drawEvents();
  drawWebSocket();
  drawBusiest();
}

// The public health route, now and then: not every poll needs it.
async function health() {
  try {
    $("ws-health").textContent = (await get("/websocket/health", false)).status;
  } catch (e) {
    $("ws-health").textContent = /503/.test(e.message) ? "unavailable" : "unreachable";
  }
}

// ---- the live tail (the `admin` channel)

// The channels an event is on besides `admin`, as the server maps them (crates/domain/src/channels.rs).
function channelsOf(e) {
  const out = [];
  if (e.chatId) out.push(`chat:${e.chatId}`);
  if (e.tripId) out.push(`trip:${e.tripId}`);
  if (e.userId) out.push(`user:${e.userId}`);
  if (e.type === "trip.offer.created") out.push("drivers");
  return out;
}

function onAdmin(frame) {
  const e = frame.event;
  const at = Date.now(); // events of `admin` have no seq: the client hands them over as they arrive
  const entry = { e, at, latency: at - Date.parse(e.occurredAt), channels: channelsOf(e), row: null };
  state.received++;
  colorOf(e.type);
  if (Number.isFinite(entry.latency)) {
    state.latencies.push(entry.latency);
    if (state.latencies.length > LATENCY_MAX) state.latencies.shift();
  }
  if (entry.channels.length) {
    state.busy.push({ at, channels: entry.channels });
    if (state.busy.length > BUSY_MAX) state.busy.shift();
  }
  state.tail.unshift(entry);
  while (state.tail.length > TAIL_MAX) dropRow(state.tail.pop());
  drawSoon();
}

// Frames can come thousands a second: the DOM and the histogram follow at most ~4 times a second.
let drawPending = false;
function drawSoon() {
  if (drawPending) return;
  drawPending = true;
  setTimeout(() => {
    drawPending = false;
    drawTail();
    drawLatency();
    drawBusiest();
  }, 250);
}

function colorOf(type) {
  if (!state.colors.has(type)) state.colors.set(type, COLORS[state.colors.size] ?? OTHER);
  return state.colors.get(type);
}

function matches(entry) {
  const type = $("f-type").value.trim().toLowerCase();
  const channel = $("f-channel").value.trim().toLowerCase();
  return (!type || entry.e.type.toLowerCase().includes(type)) && (!channel || entry.channels.some((c) => c.toLowerCase().includes(channel)));
}

// One line about what happened, for the types worth it; the envelope is a click away.
function summary(e) {
  const d = e.data ?? {};
  if (e.type === "chat.message.stored") return `${d.senderId}: ${d.content}`;
  if (e.type === "trip.status.updated") return `${d.previousStatus} → ${d.newStatus}`;
  if (e.type === "chat.turn.changed") return `next: ${d.nextUserId ?? d.nextRole}`;
  if (e.type.startsWith("chat.ai.")) return [d.provider, d.model, d.responseTimeMs != null ? `${d.responseTimeMs} ms` : null, d.error].filter(Boolean).join(" · ");
  const skip = new Set(["chatId", "tripId"]);
  const text = Object.entries(d)
    .filter(([k]) => !skip.has(k))
    .slice(0, 4)
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" ");
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

function rowOf(entry) {
  const { e } = entry;
  const tr = document.createElement("tr");
  tr.className = "event";
  tr.dataset.type = e.type;
  tr.dataset.channel = entry.channels[0] ?? "";
  const time = new Date(entry.at).toLocaleTimeString([], { hour12: false }) + `.${String(entry.at % 1000).padStart(3, "0")}`;
  tr.innerHTML =
    `<td>${time}</td><td><span class="dot" style="background:${colorOf(e.type)}"></span>${esc(e.type)}</td>` +
    `<td>${esc(entry.channels.join(" "))}</td><td>${esc(e.actor?.userId ?? "")}</td>` +
    `<td>${Number.isFinite(entry.latency) ? `${Math.round(entry.latency)} ms` : ""}</td><td class="summary">${esc(summary(e))}</td>`;
  tr.hidden = !matches(entry);
  tr.onclick = () => toggleDetail(tr, e);
  return tr;
}

// An evicted entry's row goes, and its open envelope with it.
function dropRow(entry) {
  if (entry.row?.nextElementSibling?.classList.contains("detail")) entry.row.nextElementSibling.remove();
  entry.row?.remove();
}

function toggleDetail(tr, e) {
  if (tr.nextElementSibling?.classList.contains("detail")) return tr.nextElementSibling.remove();
  const detail = document.createElement("tr");
  detail.className = "detail";
  detail.innerHTML = `<td colspan="6"><pre>${esc(JSON.stringify(e, null, 2))}</pre></td>`;
  tr.after(detail);
}

function drawTail() {
  $("tail-total").textContent = state.received.toLocaleString();
  if (!$("f-pause").checked) {
    // The entries without a row are the newest (a run at the front): add them on top.
    const fresh = document.createDocumentFragment();
    for (const entry of state.tail) {
      if (entry.row) break;
      entry.row = rowOf(entry);
      fresh.append(entry.row);
    }
    $("tail").tBodies[0].prepend(fresh);
  }
  countShown();
}

function countShown() {
  $("tail-kept").textContent = state.tail.length;
  $("tail-shown").textContent = state.tail.filter((x) => x.row && !x.row.hidden).length;
}

function refilter() {
  for (const d of $("tail").querySelectorAll("tr.detail")) d.remove();
  for (const entry of state.tail) if (entry.row) entry.row.hidden = !matches(entry);
  countShown();
}
$("f-type").oninput = refilter;
$("f-channel").oninput = refilter;
$("f-pause").onchange = drawTail;

// ---- busiest channels

function topChannels() {
  const since = Date.now() - WINDOW_S * 1000;
  while (state.busy.length && state.busy[0].at < since) state.busy.shift();
  const counts = new Map();
  for (const { channels } of state.busy) for (const c of channels) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, TOP_CHANNELS);
}

function drawBusiest() {
  const top = topChannels();
  if (!top.length) return ($("busiest").innerHTML = '<li class="empty">no events on a channel yet</li>');
  const most = top[0][1];
  $("busiest").innerHTML = top
    .map(([ch, n]) => {
      const subs = state.subscriptions[ch];
      return (
        `<li data-channel="${esc(ch)}" data-events="${n}" data-subscriptions="${subs ?? ""}">` +
        `<code title="${esc(ch)}">${esc(ch)}</code><span>${n} events · ${subs ?? "…"} subscription${subs === 1 ? "" : "s"}</span>` +
        `<div class="bar" style="width:${Math.max(2, (100 * n) / most)}%"></div></li>`
      );
    })
    .join("");
}

// ---- the plots

const zeroUp = (u, min, max) => [0, max > 0 ? max * 1.15 : 1];
// Time axes span at least 30 s, so a console just opened does not stretch two polls across
// the whole width (and label milliseconds).
const recent = (u, min, max) => (max == null ? [Date.now() / 1000 - 30, Date.now() / 1000] : [Math.min(min, max - 30), max]);
const timeScales = { x: { time: true, range: recent }, y: { range: zeroUp } };
const timeSeries = { label: "time", value: "{HH}:{mm}:{ss}" };

// The legend shows the newest values, unless the pointer is over the plot (then: those under it).
function setData(u, data) {
  u.setData(data);
  const n = data[0].length;
  if (n && !(u.cursor.left >= 0)) u.setLegend({ idx: n - 1 });
}
const charts = new Map(); // element -> uPlot

// Charts follow their element's width (and get it when a hidden tab shows).
const resizer = new ResizeObserver((entries) => {
  for (const { target, contentRect } of entries) {
    const u = charts.get(target);
    if (u && contentRect.width > 0 && Math.round(contentRect.width) !== u.width) u.setSize({ width: Math.round(contentRect.width), height: HEIGHT });
  }
});

function plot(el, opts, data) {
  charts.get(el)?.destroy();
  const u = new uPlot({ width: el.clientWidth || 600, height: HEIGHT, ...opts }, data, el);
  charts.set(el, u);
  resizer.observe(el);
  return u;
}

// The events plot has one series per type that was emitted in the window, so it is rebuilt
// when that set changes (rarely); otherwise it only gets new data.
let eventSeriesKey = null;
function drawEvents() {
  const el = $("chart-events");
  const withRates = state.samples.filter((s) => s.rates);
  const active = new Set(withRates.flatMap((s) => Object.keys(s.rates)));
  for (const t of active) colorOf(t);
  const own = [...state.colors.keys()].filter((t) => active.has(t) && state.colors.get(t) !== OTHER);
  const others = [...active].filter((t) => state.colors.get(t) === OTHER);
  const x = state.samples.map((s) => s.t);
  const data = [x, ...own.map((t) => state.samples.map((s) => (s.rates ? s.rates[t] ?? 0 : null)))];
  if (others.length) data.push(state.samples.map((s) => (s.rates ? others.reduce((n, t) => n + (s.rates[t] ?? 0), 0) : null)));
  data.push(state.samples.map((s) => s.live));
  const key = [...own, others.length ? "(other)" : ""].join("|");
  if (key !== eventSeriesKey || !charts.has(el)) {
    eventSeriesKey = key;
    const series = own.map((t) => ({ label: t, stroke: colorOf(t), width: 2 }));
    if (others.length) series.push({ label: "other types", stroke: OTHER, width: 2 });
    series.push({ label: "all (live stream)", stroke: "#1d2330", width: 1, dash: [5, 5] });
    plot(el, { scales: timeScales, axes: [{}, { label: "events/s", size: 60 }], series: [{ ...timeSeries }, ...series] }, data);
  }
  setData(charts.get(el), data);
  const totals = withRates.map((s) => Object.values(s.rates).reduce((a, b) => a + b, 0));
  const now = state.samples.at(-1)?.rates ? totals.at(-1) : null;
  const peak = Math.max(0, ...totals);
  el.dataset.points = withRates.length;
  el.dataset.types = own.concat(others).join(" ");
  el.dataset.peak = peak.toFixed(2);
  $("ev-rate").textContent = now == null ? "–" : fmtRate(now);
  $("ev-peak").textContent = withRates.length ? fmtRate(peak) : "–";
}

const fmtRate = (r) => (r >= 10 ? Math.round(r).toLocaleString() : r.toFixed(1));

function drawWebSocket() {
  const s = state.samples;
  const x = s.map((p) => p.t);
  const del = $("chart-deliveries");
  setData(charts.get(del), [x, s.map((p) => p.delivered), s.map((p) => p.stale), s.map((p) => p.throttled), s.map((p) => p.failed)]);
  const rated = s.filter((p) => p.delivered != null);
  del.dataset.points = rated.length;
  del.dataset.peak = Math.max(0, ...rated.map((p) => p.delivered)).toFixed(2);
  const con = $("chart-connections");
  setData(charts.get(con), [x, s.map((p) => p.active)]);
  con.dataset.points = s.length;
  con.dataset.last = s.at(-1)?.active ?? 0;
}

function histogram() {
  const counts = new Array(EDGES.length + 1).fill(0);
  for (const ms of state.latencies) {
    const i = EDGES.findIndex((edge) => ms < edge);
    counts[i < 0 ? EDGES.length : i]++;
  }
  return counts;
}

function drawLatency() {
  const el = $("chart-latency");
  const counts = histogram();
  charts.get(el).setData([counts.map((_, i) => i), counts]);
  const n = state.latencies.length;
  el.dataset.samples = n;
  $("lat-count").textContent = n;
  if (!n) return;
  const sorted = [...state.latencies].sort((a, b) => a - b);
  const at = (q) => Math.round(sorted[Math.floor(q * (n - 1))]);
  $("lat-p").textContent = `${at(0.5)} / ${at(0.95)} ms`;
  $("lat-max").textContent = `${Math.round(sorted[n - 1])} ms`;
}

function createCharts() {
  plot($("chart-deliveries"), {
    scales: { ...timeScales, bad: { range: zeroUp } },
    axes: [{}, { scale: "y", label: "deliveries/s", size: 60 }, { scale: "bad", side: 1, label: "stale, throttled, failed /s", size: 60, grid: { show: false } }],
    series: [
      { ...timeSeries },
      { label: "delivered/s", stroke: COLORS[0], fill: `${COLORS[0]}22`, width: 2, scale: "y" },
      { label: "stale/s", stroke: "#e15759", width: 2, scale: "bad" },
      { label: "throttled/s", stroke: "#f28e2b", width: 2, scale: "bad" },
      { label: "failed/s", stroke: "#b07aa1", width: 2, scale: "bad", dash: [4, 4] },
    ],
  }, [[], [], [], [], []]);
  plot($("chart-connections"), {
    scales: timeScales,
    axes: [{}, { label: "connections", size: 60 }],
    series: [{ ...timeSeries }, { label: "open connections", stroke: "#59a14f", fill: "#59a14f22", width: 2, paths: uPlot.paths.stepped({ align: 1 }) }],
  }, [[], []]);
  const buckets = EDGES.length + 1;
  plot($("chart-latency"), {
    scales: { x: { time: false, range: [-0.5, buckets - 0.5] }, y: { range: zeroUp } },
    legend: { show: false }, // the axes say what each bar is
    axes: [
      { label: "ms", splits: () => BUCKET_LABELS.map((_, i) => i), values: (u, splits) => splits.map((i) => BUCKET_LABELS[i] ?? ""), grid: { show: false } },
      { label: "events", size: 50 },
    ],
    series: [
      { label: "ms", value: (u, i) => BUCKET_LABELS[i] ?? "" },
      { label: "events", fill: `${COLORS[3]}cc`, stroke: COLORS[3], paths: uPlot.paths.bars({ size: [0.85, 64] }), points: { show: false } },
    ],
  }, [BUCKET_LABELS.map((_, i) => i), BUCKET_LABELS.map(() => 0)]);
  drawEvents();
}

function resetData() {
  Object.assign(state, { polls: 0, last: null, samples: [], tail: [], received: 0, receivedAtPoll: 0, latencies: [], busy: [], subscriptions: {} });
  $("tail").tBodies[0].replaceChildren();
  drawTail();
  drawLatency();
  drawBusiest();
  drawEvents();
  drawWebSocket();
}

// ---- tabs: one page, a route each; switching keeps the connection and the plots' history

const tabOf = (path) => (path.replace(/\/+$/, "").endsWith("/websocket") ? "websocket" : "events");

function showTab(name) {
  for (const m of document.querySelectorAll("main[data-tab]")) m.hidden = m.dataset.tab !== name;
  for (const a of document.querySelectorAll("nav a")) a.setAttribute("aria-selected", String(a.dataset.tab === name));
  document.title = `realtime · admin · ${name === "websocket" ? "WebSocket" : "events"}`;
}

for (const a of document.querySelectorAll("nav a")) {
  a.onclick = (ev) => {
    ev.preventDefault();
    history.pushState(null, "", a.getAttribute("href"));
    showTab(a.dataset.tab);
  };
}
window.onpopstate = () => showTab(tabOf(location.pathname));

showTab(tabOf(location.pathname));
createCharts();
const saved = sessionStorage.getItem("realtime.admin.token");
if (saved) start(saved);
