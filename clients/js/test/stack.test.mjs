// The package against a local stack that this file starts: the token as a subprotocol,
// wildcard and content-filter subscriptions, a dropped connection resumed with nothing
// lost or doubled, events in seq order, the trip-status SSE helper, and `resync`.
// Node 20 has no global WebSocket: the tests pass npm `ws` (a dev dependency only).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { RealtimeClient, StreamRefused, followTripStatus, isEvent } from "../dist/index.js";
import { api, devToken, startStack, until } from "./stack.mjs";

let stack;
before(async () => (stack = await startStack()));
after(async () => stack?.stop());

function client(token, opts = {}) {
  const statuses = [];
  const resyncs = [];
  const errors = [];
  const rt = new RealtimeClient({
    url: stack.ws,
    token,
    WebSocket,
    onStatus: (s) => statuses.push(s),
    onResync: (channel, reason) => resyncs.push({ channel, reason }),
    onError: (e) => errors.push(e),
    backoff: { baseMs: 100, maxMs: 1000 },
    ...opts,
  });
  rt.connect();
  return { rt, statuses, resyncs, errors };
}

async function chatWith(owner, ...members) {
  const { status, body } = await api(stack.http, "POST", "/api/chat", owner.token, { title: "js client" });
  assert.equal(status, 201, JSON.stringify(body));
  for (const m of members) {
    const r = await api(stack.http, "POST", `/api/chat/${body.chatId}/participants`, m.token, { displayName: m.name });
    assert.ok(r.status < 300, JSON.stringify(r.body));
  }
  return body.chatId;
}

async function send(chatId, who, content) {
  const r = await api(stack.http, "POST", `/api/chat/${chatId}/messages`, who.token, { content });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function user(name, roles = []) {
  return { name, token: await devToken(stack.http, name, roles) };
}

test("connects with the token as a subprotocol; a wildcard subscription gets only its types, typed", async () => {
  const [alice, bob] = [await user("js-alice"), await user("js-bob")];
  const chatId = await chatWith(alice);
  const { rt, statuses } = client(alice.token);
  const got = [];
  const ack = await rt.subscribe(`chat:${chatId}`, { events: ["chat.message.*"] }, (f) => got.push(f));
  assert.equal(ack.type, "subscribed");
  assert.ok(statuses.includes("open"));
  await api(stack.http, "POST", `/api/chat/${chatId}/participants`, bob.token, { displayName: "Bob" });
  await send(chatId, alice, "hello");
  await until(() => got.length >= 1, 10_000, "the message");
  await new Promise((r) => setTimeout(r, 300)); // anything else would have come by now
  assert.deepEqual(
    got.map((f) => f.event.type),
    ["chat.message.stored"],
    "chat.participant.joined is not chat.message.*",
  );
  const f = got[0];
  assert.ok(isEvent(f, "chat.message.stored"));
  assert.equal(f.event.data.content, "hello");
  assert.equal(f.event.data.senderId, "js-alice");
  assert.equal(typeof f.seq, "number");
  rt.close();
});

test("a content filter selects on the event's data", async () => {
  const [alice, bob] = [await user("js-alice2"), await user("js-bob2")];
  const chatId = await chatWith(alice, bob);
  const { rt } = client(alice.token);
  const got = [];
  await rt.subscribe(`chat:${chatId}`, { events: ["chat.message.stored"], filter: { senderId: ["js-bob2"] } }, (f) =>
    got.push(f.event.data.content),
  );
  await send(chatId, alice, "from alice");
  await send(chatId, bob, "from bob");
  await send(chatId, alice, "alice again");
  await send(chatId, bob, "bob again");
  await until(() => got.length >= 2, 10_000, "bob's messages");
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(got, ["from bob", "bob again"]);
  rt.close();
});

test("a dropped connection resumes: every message once, in seq order, nothing lost", async () => {
  const alice = await user("js-alice3");
  const carol = await user("js-carol3");
  const chatId = await chatWith(alice, carol);
  const { rt, statuses } = client(carol.token);
  const got = [];
  await rt.subscribe(`chat:${chatId}`, { events: ["chat.message.stored"] }, (f) => got.push(f));
  for (let i = 0; i < 5; i++) await send(chatId, alice, `m${i}`);
  await until(() => got.length >= 5, 10_000, "the first five");
  // The stack drops every socket of carol's, as API Gateway does when a connection dies.
  const drop = await api(stack.http, "POST", "/api/dev/drop", null, { userId: "js-carol3" });
  assert.equal(drop.status, 200, JSON.stringify(drop.body));
  for (let i = 5; i < 10; i++) await send(chatId, alice, `m${i}`);
  await until(() => got.length >= 10, 15_000, "all ten after the reconnect");
  await new Promise((r) => setTimeout(r, 300)); // a double would have come by now
  assert.deepEqual(
    got.map((f) => f.event.data.content),
    Array.from({ length: 10 }, (_, i) => `m${i}`),
  );
  const seqs = got.map((f) => f.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `seq order: ${seqs}`);
  assert.ok(statuses.includes("reconnecting"), `statuses: ${statuses}`);
  assert.equal(statuses.at(-1), "open");
  rt.close();
});

test("the SSE helper follows a trip's status, typed, and a stranger is refused", async () => {
  const [org, dan, ann, eve] = [
    await user("js-org", ["organizer"]),
    await user("js-dan", ["driver"]),
    await user("js-ann", ["passenger"]),
    await user("js-eve", ["passenger"]),
  ];
  const place = (name, lat, lng) => ({ name, lat, lng });
  const trip = await api(stack.http, "POST", "/api/trips", org.token, {
    title: "To the lake",
    tripType: "SHARED",
    status: "PUBLISHED",
    origin: place("Almaty", 43.2389, 76.8897),
    destination: place("Talgar", 43.3033, 77.24),
    departureTime: new Date(Date.now() + 5 * 3600_000).toISOString(),
    totalSeats: 4,
    pricePerSeat: 3000,
  });
  assert.equal(trip.status, 201, JSON.stringify(trip.body));
  const tripId = trip.body.tripId;
  assert.equal((await api(stack.http, "POST", "/api/bookings", ann.token, { tripId, seatsBooked: 1 })).status, 201);
  assert.ok((await api(stack.http, "POST", `/api/drivers/trips/accept/${tripId}`, dan.token, {})).status < 300);

  const messages = [];
  const stream = followTripStatus({ baseUrl: stack.http, tripId, token: ann.token, onMessage: (m) => messages.push(m) });
  await until(() => messages.some((m) => m.type === "connected"), 10_000, "connected");
  const connected = messages.find((m) => m.type === "connected");
  assert.equal(connected.currentStatus, "IN_PROGRESS");
  for (const status of ["DEPARTED", "ARRIVED"]) {
    const r = await api(stack.http, "PUT", `/api/drivers/trips/${tripId}/status`, dan.token, { status, notes: `now ${status}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  await until(() => messages.filter((m) => m.type === "status_update").length >= 2, 15_000, "two status updates");
  const updates = messages.filter((m) => m.type === "status_update");
  assert.deepEqual(
    updates.map((u) => [u.previousStatus, u.newStatus, u.notes]),
    [
      ["IN_PROGRESS", "DEPARTED", "now DEPARTED"],
      ["DEPARTED", "ARRIVED", "now ARRIVED"],
    ],
  );
  assert.equal(stream.lastEventId, String(updates[1].seq));
  stream.close();
  await stream.closed;

  const errors = [];
  const refused = followTripStatus({ baseUrl: stack.http, tripId, token: eve.token, onMessage: () => {}, onError: (e) => errors.push(e) });
  await refused.closed;
  assert.ok(errors[0] instanceof StreamRefused, String(errors[0]));
  assert.equal(errors[0].status, 403);
  assert.equal(errors[0].body.error.code, "forbidden");
});

test("a resync reaches the application when the missed events are gone", async () => {
  // A stack whose logs keep events for one second.
  const short = await startStack(["--log-retention-secs", "1"]);
  try {
    const alice = { name: "js-alice5", token: await devToken(short.http, "js-alice5") };
    const created = await api(short.http, "POST", "/api/chat", alice.token, { title: "short memory" });
    const chatId = created.body.chatId;
    const resyncs = [];
    const got = [];
    const rt = new RealtimeClient({ url: short.ws, token: alice.token, WebSocket, onResync: (c, r) => resyncs.push([c, r]) });
    rt.connect();
    await rt.subscribe(`chat:${chatId}`, {}, (f) => got.push(f));
    const r = await api(short.http, "POST", `/api/chat/${chatId}/messages`, alice.token, { content: "seen" });
    assert.equal(r.status, 201);
    await until(() => got.length >= 1, 10_000, "the first message");
    rt.close(); // the subscription and its position stay with the client
    for (let i = 0; i < 3; i++) await api(short.http, "POST", `/api/chat/${chatId}/messages`, alice.token, { content: `missed ${i}` });
    await new Promise((r) => setTimeout(r, 2500)); // every entry expires
    rt.connect(); // resubscribes with resume from "seen": the log no longer has it
    await until(() => resyncs.length >= 1, 10_000, "the resync");
    assert.equal(resyncs[0][0], `chat:${chatId}`);
    assert.match(resyncs[0][1], /^(log_trimmed|epoch_changed)$/);
    rt.close();
  } finally {
    await short.stop();
  }
});
