// The demo page: a chat room, a trip tracker and the admin view, on the browser client.
import { RealtimeClient, followTripStatus } from "./realtime/index.js";

const $ = (id) => document.getElementById(id);
const state = { rt: null, trip: null, token: null, user: null, chatId: null, seen: new Set(), types: new Set(), counts: { events: 0, messages: 0 } };

const api = () => $("api").value.trim() || location.origin;
// In AWS the trip-status stream is a function URL (the stack's TripStatusStreamUrl output).
const sseBase = () => $("sseurl").value.trim().replace(/\/+$/, "") || api();
const wsUrl = () => $("wsurl").value.trim() || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

async function call(method, path, body) {
  const res = await fetch(`${api()}/api${path}`, {
    method,
    headers: { "content-type": "application/json", ...(state.token ? { authorization: `Bearer ${state.token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(json?.error?.message ?? `${res.status}`);
  return json;
}

function setStatus(s) {
  // Every status it went through (a reconnect on loopback may take a millisecond).
  $("status").dataset.seen = `${$("status").dataset.seen ?? ""} ${s}`.trim();
  $("status").dataset.status = s;
  $("status").textContent = s;
}

function li(list, html, max = 200) {
  const el = document.createElement("li");
  el.innerHTML = html;
  list.appendChild(el);
  while (list.children.length > max) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
  return el;
}

const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

$("signin").onclick = async () => {
  const sub = $("user").value.trim();
  const roles = $("roles").value.split(",").map((r) => r.trim()).filter(Boolean);
  state.token = $("token").value.trim() || (await call("POST", "/dev/token", { sub, roles, name: sub })).token;
  state.user = sub;
  $("whoami").textContent = `signed in as ${sub}`;
  state.rt?.close();
  state.rt = new RealtimeClient({
    url: wsUrl(),
    token: state.token,
    onStatus: setStatus,
    onResync: () => loadState(),
  });
  state.rt.connect();
  if (roles.includes("admin")) state.rt.subscribe("admin", {}, onAdmin).catch(() => {});
};

// ---- chat

function onChat(frame) {
  const e = frame.event;
  switch (e.type) {
    case "chat.message.stored":
      return showMessage(e.data);
    case "chat.turn.changed":
      return ($("turn").textContent = e.data.nextUserId ?? e.data.nextRole ?? "anyone");
    case "chat.participant.joined":
    case "chat.settings.updated":
      return loadState();
    case "presence.joined":
    case "presence.left":
      return showOnline(frame.channel);
    case "chat.typing.user":
    case "chat.typing.assistant": {
      const who = e.data.userId ?? "assistant";
      $("typing").textContent = e.data.isTyping && who !== state.user ? `${who} is typing…` : "";
      return;
    }
  }
}

function showMessage(m) {
  if (state.seen.has(m.id)) return;
  state.seen.add(m.id);
  $("typing").textContent = "";
  const el = li($("messages"), `<b>${esc(m.senderId)}</b> ${esc(m.content)}`);
  el.className = m.senderRole;
  el.dataset.id = m.id;
}

// The whole session in one answer: people, whose turn, settings and the newest messages.
async function loadState() {
  if (!state.chatId) return;
  try {
    const s = await call("GET", `/chat/${state.chatId}/state`);
    $("people").textContent = s.participants.map((p) => p.userId).join(", ");
    $("turn").textContent = s.turn.nextUserId ?? s.turn.nextRole ?? "anyone";
    $("assistant").checked = s.settings.assistantEnabled;
    $("turnmode").value = s.settings.turnMode;
    for (const m of s.recentMessages) showMessage(m);
  } catch {
    /* the state is a convenience: the live stream is what this page shows */
  }
}

const chosenSettings = () => ({ assistantEnabled: $("assistant").checked, turnMode: $("turnmode").value });

async function enter(chatId) {
  state.chatId = chatId;
  $("chat-id").textContent = chatId;
  $("chatid").value = chatId;
  await state.rt.subscribe(`chat:${chatId}`, { events: ["chat.**", "presence.*"] }, onChat);
  await loadState();
  await showOnline(`chat:${chatId}`);
}

// Who is online: the channel's members, read whole (presence events say it changed).
async function showOnline(channel) {
  if (channel !== `chat:${state.chatId}`) return;
  try {
    const p = await state.rt.request({ action: "presence", channel });
    $("online").textContent = p.members.map((m) => m.userId).join(", ") || "–";
  } catch {
    /* the next presence event tries again */
  }
}

$("create").onclick = async () => {
  try {
    enter((await call("POST", "/chat", { title: $("title").value, settings: chosenSettings() })).chatId);
  } catch (e) {
    alert(e.message);
  }
};
$("apply").onclick = async () => {
  if (!state.chatId) return;
  try {
    await call("PUT", `/chat/${state.chatId}/settings`, chosenSettings());
  } catch (e) {
    alert(e.message);
  }
};
$("join").onclick = async () => {
  const id = $("chatid").value.trim();
  await call("POST", `/chat/${id}/participants`, { displayName: state.user });
  await enter(id);
};

let typingSent = 0;
$("text").oninput = () => {
  if (!state.chatId || Date.now() - typingSent < 2000) return;
  typingSent = Date.now();
  call("POST", "/typing", { chatId: state.chatId, isTyping: true }).catch(() => {});
};

$("send").onsubmit = async (ev) => {
  ev.preventDefault();
  const content = $("text").value.trim();
  if (!content || !state.chatId) return;
  $("text").value = "";
  // The same clientMessageId on a retry: the server stores it once.
  const body = { content, clientMessageId: crypto.randomUUID().replaceAll("-", "") };
  for (let i = 0; i < 5; i++) {
    try {
      return showMessage(await call("POST", `/chat/${state.chatId}/messages`, body));
    } catch (e) {
      if (i === 4) alert(e.message);
      await new Promise((r) => setTimeout(r, 200 * 2 ** i));
    }
  }
};

// ---- trips

$("track").onclick = () => {
  const tripId = $("tripid").value.trim();
  $("timeline").innerHTML = "";
  state.trip?.close();
  // The package's SSE helper: typed messages, reconnects with Last-Event-ID.
  state.trip = followTripStatus({
    baseUrl: sseBase(),
    tripId,
    token: state.token,
    onError: (e) => li($("timeline"), `<span class="muted">cannot track: ${esc(e?.status ?? e?.message ?? e)}</span>`),
    onMessage: (m) => {
      if (m.type === "heartbeat") return;
      const status = m.type === "connected" ? m.currentStatus : m.type === "status_update" ? m.newStatus : undefined;
      if (status) $("trip-status").textContent = status;
      const notes = m.type === "status_update" ? (m.notes ?? "") : m.type === "resync" ? m.reason : "";
      li($("timeline"), `<b>${esc(m.type)}</b> ${esc(status ?? "")} <span class="muted">${esc(notes)}</span>`);
    },
  });
};

$("offers").onclick = () =>
  state.rt.subscribe("drivers", { events: ["trip.offer.*"] }, (f) => {
    const d = f.event.data;
    li($("offer-list"), `${esc(d.title ?? f.event.tripId)} · ${esc(d.distanceKm ?? "?")} km · ${esc(d.estimatedEarnings ?? "?")}`);
  });

// ---- admin

// Channels the admin view counts the subscriptions of: those its events were on.
const watched = new Set(["admin", "drivers"]);

function onAdmin(frame) {
  const e = frame.event;
  const c = state.counts;
  c.events++;
  if (e.type === "chat.message.stored") c.messages++;
  if (e.chatId) watched.add(`chat:${e.chatId}`);
  if (e.tripId) watched.add(`trip:${e.tripId}`);
  state.types.add(e.type);
  $("n-events").textContent = c.events;
  $("n-messages").textContent = c.messages;
  $("n-types").textContent = state.types.size;
  li($("stream"), `${new Date(e.occurredAt).toLocaleTimeString()} ${esc(e.type)} ${esc(e.chatId ?? e.tripId ?? "")}`, 50);
}

async function refreshStats() {
  if (!state.token || !$("roles").value.includes("admin")) return;
  try {
    const channels = [...watched].slice(-20).join(",");
    const ws = await call("GET", `/websocket/stats?channels=${encodeURIComponent(channels)}`);
    const ev = await call("GET", "/events/stats");
    $("n-active").textContent = ws.connections.active;
    $("n-delivered").textContent = ws.pushes.delivered;
    $("n-stale").textContent = ws.pushes.stale;
    $("n-throttled").textContent = ws.pushes.throttled;
    $("n-replayed").textContent = ws.replay.replayed;
    $("n-emissions").textContent = ev.emissions.events;
    // Each channel's subscriptions, and its members where it keeps presence.
    const members = {};
    await Promise.all(
      Object.keys(ws.subscriptions)
        .filter((ch) => /^(chat:|trip:|drivers$)/.test(ch))
        .map(async (ch) => {
          const p = await call("GET", `/channels/${encodeURIComponent(ch)}/presence`).catch(() => null);
          if (p) members[ch] = p.members.map((m) => m.userId + (m.connections > 1 ? ` ×${m.connections}` : "")).join(", ");
        }),
    );
    $("subs").innerHTML = Object.entries(ws.subscriptions)
      .map(([ch, n]) => {
        const who = members[ch] ? ` · members: <span class="members">${esc(members[ch])}</span>` : "";
        return `<li data-channel="${esc(ch)}"><code>${esc(ch)}</code> <span class="n">${n}</span>${who}</li>`;
      })
      .join("");
  } catch {
    /* the stats routes are admin-only */
  }
}
setInterval(refreshStats, 2000);
