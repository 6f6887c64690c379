// The browser client's delivery order (`web/realtime.js`): `ChannelOrder` on its own, with
// a simulated clock, and `RealtimeClient` over a fake WebSocket. Run: node --test tests/js/

import { test } from "node:test";
import assert from "node:assert/strict";
import { ChannelOrder, RealtimeClient } from "../../web/realtime.js";

const CHANNEL = "chat:C1";
const EPOCH = "E1";

const ev = (seq, epoch = EPOCH) => ({ type: "event", channel: CHANNEL, seq, epoch, event: { id: `e${seq}`, type: "chat.message.stored" } });
const low = (n) => ({ type: "event", channel: CHANNEL, event: { id: `low${n}`, type: "chat.typing.user" } });
const subscribed = (seq, epoch = EPOCH) => ({ type: "subscribed", id: "s1", channel: CHANNEL, epoch, seq });
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const seqsOf = (frames) => frames.map((f) => f.seq);

/** A small seeded PRNG (mulberry32), so a failing shuffle can be replayed. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(xs, random) {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

/**
 * 1,000 events of one channel, all in the server's log, arriving shuffled (one every 2 ms)
 * with 5% of them never arriving live. The simulated server answers each `resume` after
 * 20 ms with the replay (500 at most, then `more`), interleaved with the live frames still
 * coming, 10 per ms, then `resumed`. Returns what the application got and the resumes.
 */
function simulate(seed, { gapWaitMs = 1000, maxPending = 10000, n = 1000 } = {}) {
  const random = rng(seed);
  const order = new ChannelOrder({ channel: CHANNEL, gapWaitMs, maxPending });
  const missing = new Set(shuffle(range(1, n), random).slice(0, Math.round(n * 0.05)));
  const live = shuffle(range(1, n), random).filter((s) => !missing.has(s));
  const inbox = new Map(); // ms -> frames arriving then
  const at = (t, f) => (inbox.get(t) ?? inbox.set(t, []).get(t)).push(f);
  live.forEach((s, i) => at(2 * i + 1, ev(s)));

  const got = [];
  const resumes = [];
  let inFlight = 0;
  let maxInFlight = 0;
  assert.equal(order.subscribing(0), null, "a new channel subscribes without resume");
  got.push(...order.accept(subscribed(0), 0));
  for (let now = 0; now < 120_000 && (got.length < n || inbox.size > 0); now++) {
    for (const f of inbox.get(now) ?? []) {
      if (f.type === "resumed") inFlight--;
      got.push(...order.accept(f, now));
    }
    inbox.delete(now);
    const resume = order.tick(now);
    if (resume) {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      resumes.push({ ...resume, now });
      assert.deepEqual(Object.keys(resume).sort(), ["action", "after", "channel", "epoch"]);
      assert.equal(resume.epoch, EPOCH);
      const last = Math.min(resume.after + 500, n);
      const replay = range(resume.after + 1, last);
      replay.forEach((s, i) => at(now + 20 + Math.floor(i / 10), ev(s)));
      const end = now + 20 + Math.floor(replay.length / 10);
      const more = last < n;
      at(end, { type: "resumed", id: `r${resumes.length}`, channel: CHANNEL, epoch: EPOCH, seq: more ? last : n, replayed: replay.length, more });
    }
  }
  return { got, resumes, maxInFlight, order, missing };
}

test("1,000 shuffled events, 5% missing: the application gets 1..1000 once each, in order", () => {
  for (const seed of [1, 2, 3, 42, 2024]) {
    const { got, resumes, maxInFlight, order } = simulate(seed);
    assert.deepEqual(seqsOf(got), range(1, 1000), `seed ${seed}`);
    assert.ok(resumes.length >= 1, `seed ${seed}: the missing events came by resume`);
    assert.equal(maxInFlight, 1, `seed ${seed}: never more than one resume in flight`);
    // Every resume starts at what had been delivered: strictly increasing, inside the run.
    for (let i = 1; i < resumes.length; i++) assert.ok(resumes[i].after >= resumes[i - 1].after, `seed ${seed}: resumes go forward`);
    assert.equal(order.pending.size, 0);
    assert.equal(order.deadline(), null, "nothing left to wait for");
  }
});

test("the same run with a short wait and a small buffer still delivers 1..1000 once, in order", () => {
  for (const seed of [7, 8]) {
    const { got, maxInFlight } = simulate(seed, { gapWaitMs: 50, maxPending: 64 });
    assert.deepEqual(seqsOf(got), range(1, 1000), `seed ${seed}`);
    assert.equal(maxInFlight, 1);
  }
});

test("duplicates are dropped, live and replayed", () => {
  const order = new ChannelOrder({ channel: CHANNEL });
  order.subscribing(0);
  assert.deepEqual(order.accept(subscribed(3), 0), []);
  assert.deepEqual(seqsOf(order.accept(ev(3), 1)), [], "at or before the subscribe position");
  assert.deepEqual(seqsOf(order.accept(ev(4), 1)), [4]);
  assert.deepEqual(seqsOf(order.accept(ev(4), 2)), [], "already delivered");
  assert.deepEqual(seqsOf(order.accept(ev(6), 3)), [], "held behind the gap at 5");
  assert.deepEqual(seqsOf(order.accept(ev(6), 4)), [], "already held");
  assert.deepEqual(seqsOf(order.accept(ev(5), 5)), [5, 6]);
  for (const s of [4, 5, 6]) assert.deepEqual(order.accept(ev(s), 6), [], `replayed ${s} again`);
  assert.deepEqual(seqsOf(order.accept(ev(7), 7)), [7]);
  assert.equal(order.seq, 7);
  assert.equal(order.pending.size, 0, "nothing held for good");
});

test("a gap that fills before the wait sends no resume", () => {
  const order = new ChannelOrder({ channel: CHANNEL, gapWaitMs: 1000 });
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  assert.deepEqual(seqsOf(order.accept(ev(1), 10)), [1]);
  assert.deepEqual(seqsOf(order.accept(ev(3), 20)), [], "3 waits for 2");
  assert.equal(order.deadline(), 1020, "the gap timer runs from when the gap opened");
  assert.equal(order.tick(500), null);
  assert.equal(order.tick(1019), null);
  assert.deepEqual(seqsOf(order.accept(ev(2), 1019)), [2, 3]);
  assert.equal(order.deadline(), null);
  for (const now of [1020, 5000, 60_000]) assert.equal(order.tick(now), null, `no resume at ${now}`);
});

test("a gap still open after the wait gets one resume from the last delivered seq, and only one", () => {
  const order = new ChannelOrder({ channel: CHANNEL, gapWaitMs: 1000, resumeTimeoutMs: 10_000 });
  order.subscribing(0);
  order.accept(subscribed(10), 0);
  order.accept(ev(11), 0);
  order.accept(ev(14), 100);
  assert.equal(order.tick(1099), null);
  assert.deepEqual(order.tick(1100), { action: "resume", channel: CHANNEL, epoch: EPOCH, after: 11 });
  assert.equal(order.tick(1101), null, "one in flight");
  assert.equal(order.tick(5000), null, "still in flight");
  // The answer: 12..14 replayed (14 twice), then `resumed` with `more`: resume again at once.
  const got = [...order.accept(ev(12), 5001), ...order.accept(ev(13), 5001), ...order.accept(ev(14), 5001)];
  assert.deepEqual(seqsOf(got), [12, 13, 14]);
  order.accept({ type: "resumed", id: "r1", channel: CHANNEL, epoch: EPOCH, seq: 14, replayed: 3, more: true }, 5002);
  assert.deepEqual(order.tick(5002), { action: "resume", channel: CHANNEL, epoch: EPOCH, after: 14 });
  assert.deepEqual(seqsOf(order.accept(ev(15), 5003)), [15]);
  order.accept({ type: "resumed", id: "r2", channel: CHANNEL, epoch: EPOCH, seq: 15, replayed: 1, more: false }, 5004);
  assert.equal(order.deadline(), null);
  assert.equal(order.tick(99_999), null);
});

test("a resume that fails or is never answered is retried, one at a time", () => {
  const order = new ChannelOrder({ channel: CHANNEL, gapWaitMs: 100, resumeTimeoutMs: 1000 });
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  order.accept(ev(2), 0);
  assert.ok(order.tick(100));
  order.resumeFailed(150); // e.g. an `error` answer or a closed connection
  assert.equal(order.tick(249), null);
  assert.ok(order.tick(250));
  assert.equal(order.deadline(), 1250, "an unanswered resume is given up after resumeTimeoutMs");
  assert.equal(order.tick(1249), null);
  assert.ok(order.tick(1250));
});

test("a replay that ends with the gap still open waits again before the next resume", () => {
  const order = new ChannelOrder({ channel: CHANNEL, gapWaitMs: 100 });
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  order.accept(ev(3), 0);
  assert.deepEqual(order.tick(100)?.after, 0);
  assert.deepEqual(seqsOf(order.accept(ev(1), 110)), [1]); // 2 was lost again
  order.accept({ type: "resumed", id: "r1", channel: CHANNEL, epoch: EPOCH, seq: 3, replayed: 3, more: false }, 120);
  assert.equal(order.tick(219), null);
  assert.deepEqual(order.tick(220)?.after, 1);
  assert.deepEqual(seqsOf(order.accept(ev(2), 230)), [2, 3]);
});

test("a subscribe ack that is ahead of what was delivered opens a gap, resumed after the wait", () => {
  const order = new ChannelOrder({ channel: CHANNEL, gapWaitMs: 100 });
  order.subscribing(0);
  order.accept(subscribed(5), 0);
  order.accept(ev(6), 1);
  // Reconnect: subscribe with resume from 6; the replay (7) is lost, the ack says head 8.
  assert.deepEqual(order.subscribing(10), { epoch: EPOCH, after: 6 });
  order.accept({ type: "resumed", channel: CHANNEL, epoch: EPOCH, seq: 8, replayed: 0, more: false }, 11);
  order.accept(subscribed(8), 12);
  assert.equal(order.tick(110), null);
  assert.deepEqual(order.tick(111)?.after, 6);
  assert.deepEqual(seqsOf([...order.accept(ev(8), 112), ...order.accept(ev(7), 113)]), [7, 8]);
});

test("frames that arrive before the subscribe ack are held, then ordered from the ack's head", () => {
  const order = new ChannelOrder({ channel: CHANNEL });
  assert.equal(order.subscribing(0), null);
  assert.deepEqual(order.accept(ev(12), 1), []);
  assert.deepEqual(order.accept(ev(10), 1), []);
  assert.deepEqual(seqsOf(order.accept(subscribed(10), 2)), [], "10 is in the state as of subscribing; 11 is missing");
  assert.deepEqual(seqsOf(order.accept(ev(11), 3)), [11, 12]);
});

test("a resync is surfaced to the application, and the next event sets the position", () => {
  const order = new ChannelOrder({ channel: CHANNEL, gapWaitMs: 100 });
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  order.accept(ev(1), 0);
  order.accept(ev(3), 0);
  assert.ok(order.tick(100));
  const resync = { type: "resync", id: "r1", channel: CHANNEL, reason: "log_trimmed" };
  assert.deepEqual(order.accept(resync, 110), [resync]);
  assert.equal(order.seq, null);
  assert.equal(order.pending.size, 0);
  assert.equal(order.deadline(), null);
  assert.deepEqual(seqsOf(order.accept(ev(40, "E2"), 120)), [40]);
  assert.deepEqual(seqsOf(order.accept(ev(41, "E2"), 121)), [41]);
  assert.deepEqual([order.epoch, order.seq], ["E2", 41]);
  // Events of another epoch mean the log was reset: a resync first, then the new events.
  const out = order.accept(ev(1, "E3"), 130);
  assert.deepEqual(
    out.map((f) => [f.type, f.reason ?? f.seq]),
    [
      ["resync", "epoch_changed"],
      ["event", 1],
    ],
  );
  // After a resync answering a subscribe, the ack sets the position.
  order.subscribing(140);
  order.accept({ type: "resync", channel: CHANNEL, reason: "epoch_changed" }, 141);
  assert.deepEqual(order.accept(ev(9, "E4"), 142), [], "held until the ack");
  assert.deepEqual(seqsOf(order.accept(subscribed(8, "E4"), 143)), [9]);
});

test("low events (no seq) are delivered at once, even behind a gap", () => {
  const order = new ChannelOrder({ channel: CHANNEL });
  assert.deepEqual(order.accept(low(0), 0), [low(0)], "even before the position is known");
  order.subscribing(0);
  assert.deepEqual(order.accept(low(1), 0), [low(1)], "even while the subscribe is out");
  order.accept(subscribed(0), 0);
  assert.deepEqual(order.accept(ev(2), 1), []);
  assert.deepEqual(order.accept(low(2), 2), [low(2)]);
  assert.deepEqual(order.accept(low(2), 3), [low(2)], "no seq, no duplicate check");
  assert.deepEqual(seqsOf(order.accept(ev(1), 4)), [1, 2]);
});

test("the buffer is bounded: past maxPending a resume is due at once, and nothing is lost", () => {
  const order = new ChannelOrder({ channel: CHANNEL, gapWaitMs: 10_000, maxPending: 5 });
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  for (let s = 2; s <= 20; s++) assert.deepEqual(order.accept(ev(s), s), []);
  assert.equal(order.pending.size, 5);
  assert.deepEqual([...order.pending.keys()].sort((a, b) => a - b), [2, 3, 4, 5, 6], "the lowest are kept");
  assert.equal(order.deadline(), 7, "due at once, not after the 10 s wait");
  assert.deepEqual(order.tick(20)?.after, 0);
  const got = [];
  for (let s = 1; s <= 20; s++) got.push(...order.accept(ev(s), 30));
  assert.deepEqual(seqsOf(got), range(1, 20));
});

// ---- RealtimeClient over a fake WebSocket

class FakeSocket {
  static OPEN = 1;
  static sockets = [];
  constructor(url, protocols) {
    Object.assign(this, { url, protocols, readyState: 0, sent: [] });
    FakeSocket.sockets.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    }, 0);
  }
  send(text) {
    if (this.readyState !== 1) throw new Error("not open");
    this.sent.push(JSON.parse(text));
  }
  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose?.(), 0);
  }
  /** A frame from the server. */
  recv(frame) {
    this.onmessage({ data: JSON.stringify(frame) });
  }
  take(action) {
    const i = this.sent.findIndex((f) => f.action === action);
    return i < 0 ? undefined : this.sent.splice(i, 1)[0];
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(cond, what, ms = 2000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

test("RealtimeClient: in order across a lost event, one resume after gapWaitMs, resumes from there after a reconnect", async () => {
  globalThis.WebSocket = FakeSocket;
  const resyncs = [];
  const rt = new RealtimeClient({
    url: "ws://test/ws",
    token: "t",
    gapWaitMs: 40,
    backoff: { baseMs: 1, maxMs: 2 },
    onResync: (channel, reason) => resyncs.push([channel, reason]),
  });
  rt.connect();
  await until(() => rt.status === "open", "open");
  let ws = FakeSocket.sockets.at(-1);
  const got = [];
  const sub = rt.subscribe(CHANNEL, {}, (f) => got.push(f.seq ?? f.event.id));
  const s1 = ws.take("subscribe");
  assert.equal(s1.resume, undefined);
  ws.recv(ev(1)); // before the ack: held, and at the head anyway
  ws.recv({ type: "subscribed", id: s1.id, channel: CHANNEL, epoch: EPOCH, seq: 0 });
  assert.deepEqual(await sub, { type: "subscribed", id: s1.id, channel: CHANNEL, epoch: EPOCH, seq: 0 });

  const lost = new Set([7, 33, 34, 80]);
  const live = shuffle(range(2, 100), rng(5)).filter((s) => !lost.has(s));
  for (const s of live) ws.recv(ev(s));
  ws.recv(low(1));
  assert.deepEqual(got, [...range(1, 6), "low1"]);
  assert.equal(ws.take("resume"), undefined, "no resume before gapWaitMs");
  await until(() => ws.sent.some((f) => f.action === "resume"), "a resume");
  const r1 = ws.take("resume");
  assert.deepEqual({ ...r1, id: undefined }, { action: "resume", channel: CHANNEL, epoch: EPOCH, after: 6, id: undefined });
  await sleep(100);
  assert.equal(ws.take("resume"), undefined, "one resume in flight");
  for (let s = 7; s <= 100; s++) ws.recv(ev(s));
  ws.recv({ type: "resumed", id: r1.id, channel: CHANNEL, epoch: EPOCH, seq: 100, replayed: 94, more: false });
  assert.deepEqual(got, [...range(1, 6), "low1", ...range(7, 100)]);
  await sleep(80);
  assert.equal(ws.take("resume"), undefined, "nothing more to ask for");

  // The server drops the connection: the client reconnects and resubscribes from 100.
  ws.close();
  await until(() => FakeSocket.sockets.at(-1) !== ws && rt.status === "open", "a reconnect");
  ws = FakeSocket.sockets.at(-1);
  const s2 = ws.take("subscribe");
  assert.deepEqual(s2.resume, { epoch: EPOCH, after: 100 });
  for (const s of [102, 101, 100]) ws.recv(ev(s));
  ws.recv({ type: "resumed", channel: CHANNEL, epoch: EPOCH, seq: 102, replayed: 2, more: false });
  ws.recv({ type: "subscribed", id: s2.id, channel: CHANNEL, epoch: EPOCH, seq: 102 });
  assert.deepEqual(got.slice(-2), [101, 102]);

  // A resync reaches onResync; the next event sets the position.
  ws.recv({ type: "resync", channel: CHANNEL, reason: "log_trimmed" });
  assert.deepEqual(resyncs, [[CHANNEL, "log_trimmed"]]);
  ws.recv(ev(500, "E9"));
  assert.equal(got.at(-1), 500);
  rt.close();
  assert.equal(
    got.filter((x) => typeof x === "number").length,
    new Set(got).size - 1,
    "no seq twice", // (and one low event)
  );
});

test("RealtimeClient: a throwing handler does not lose the events after it", async () => {
  globalThis.WebSocket = FakeSocket;
  const errors = [];
  const rt = new RealtimeClient({ url: "ws://test/ws", token: "t", onError: (e) => errors.push(e) });
  rt.connect();
  await until(() => rt.status === "open", "open");
  const ws = FakeSocket.sockets.at(-1);
  const got = [];
  const sub = rt.subscribe(CHANNEL, {}, (f) => {
    got.push(f.seq);
    if (f.seq === 2) throw new Error("boom");
  });
  ws.recv({ type: "subscribed", id: ws.take("subscribe").id, channel: CHANNEL, epoch: EPOCH, seq: 0 });
  await sub;
  for (const s of [3, 2, 1]) ws.recv(ev(s));
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(errors.length, 1);
  rt.close();
});
