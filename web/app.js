// The demo page: a chat room, a trip tracker and the admin view, on the browser client.
import { RealtimeClient } from "./realtime.js";

const $ = (id) => document.getElementById(id);
const state = { rt: null, token: null, user: null, chatId: null, seen: new Set(), types: new Set(), counts: { events: 0, open: 0, closed: 0, messages: 0 } };

const api = () => $("api").value.trim() || location.origin;
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
    onResync: () => loadHistory(),
    onResumed: (f) => ($("n-replayed").textContent = +$("n-replayed").textContent + f.replayed),
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
      return ($("turn").textContent = e.data.nextUserId ?? e.data.nextRole ?? "free");
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

async function loadHistory() {
  if (!state.chatId) return;
  try {
    const page = await call("GET", `/chat/${state.chatId}/messages?limit=50`);
    for (const m of (page.messages ?? page).slice().reverse()) showMessage(m);
  } catch {
    /* history is optional: the live stream is what this page shows */
  }
}

async function enter(chatId) {
  state.chatId = chatId;
  $("chat-id").textContent = chatId;
  $("chatid").value = chatId;
  await state.rt.subscribe(`chat:${chatId}`, { events: ["chat.**"] }, onChat);
  await loadHistory();
}

$("create").onclick = async () => enter((await call("POST", "/chat", { title: $("title").value })).chatId);
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

$("track").onclick = async () => {
  const id = $("tripid").value.trim();
  $("timeline").innerHTML = "";
  const res = await fetch(`${api()}/api/realtime/trip-status/${id}`, { headers: { authorization: `Bearer ${state.token}` } });
  if (!res.ok || !res.body) return li($("timeline"), `<span class="muted">cannot track: ${res.status}</span>`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
      if (!data) continue; // e.g. the `retry:` advice
      let d = {};
      try {
        d = JSON.parse(data);
      } catch {}
      // Unnamed SSE events: the JSON's `type` says which (connected, status_update, heartbeat, resync).
      const event = d.type ?? /^event: ?(.*)$/m.exec(block)?.[1] ?? "message";
      if (event === "heartbeat") continue;
      const status = d.currentStatus ?? d.newStatus ?? d.data?.newStatus;
      if (status) $("trip-status").textContent = status;
      li($("timeline"), `<b>${esc(event)}</b> ${esc(status ?? "")} <span class="muted">${esc(d.notes ?? "")}</span>`);
    }
  }
};

$("offers").onclick = () =>
  state.rt.subscribe("drivers", { events: ["trip.offer.*"] }, (f) => {
    const d = f.event.data;
    li($("offer-list"), `${esc(d.title ?? f.event.tripId)} · ${esc(d.distanceKm ?? "?")} km · ${esc(d.estimatedEarnings ?? "?")}`);
  });

// ---- admin

function onAdmin(frame) {
  const e = frame.event;
  const c = state.counts;
  c.events++;
  if (e.type === "connection.opened") c.open++;
  if (e.type === "connection.closed") c.closed++;
  if (e.type === "chat.message.stored") c.messages++;
  state.types.add(e.type);
  $("n-events").textContent = c.events;
  $("n-open").textContent = c.open;
  $("n-closed").textContent = c.closed;
  $("n-messages").textContent = c.messages;
  $("n-types").textContent = state.types.size;
  li($("stream"), `${new Date(e.occurredAt).toLocaleTimeString()} ${esc(e.type)} ${esc(e.chatId ?? e.tripId ?? "")}`, 50);
}

setInterval(async () => {
  if (!state.token || !$("roles").value.includes("admin")) return;
  try {
    $("stats").textContent = JSON.stringify(await call("GET", "/websocket/stats"), null, 1).slice(0, 600);
  } catch {
    /* the stats route is admin-only and optional */
  }
}, 2000);
