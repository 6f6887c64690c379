// The client's delivery order (`src/order.ts`, `src/client.ts`): `ChannelOrder` on its own, with
// a simulated clock, and `RealtimeClient` over a fake WebSocket. Run: node --test clients/js/test/

import { test } from "node:test";
import assert from "node:assert/strict";
import { ChannelOrder, RealtimeClient, isFiltered } from "../dist/index.js";

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
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, gapWaitMs, maxPending });
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
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null });
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
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, gapWaitMs: 1000 });
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
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, gapWaitMs: 1000, resumeTimeoutMs: 10_000 });
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
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, gapWaitMs: 100, resumeTimeoutMs: 1000 });
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
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, gapWaitMs: 100 });
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  order.accept(ev(3), 0);
  assert.deepEqual(order.tick(100)?.after, 0);
  // 5 is written after the replay read the head (3); 4's live push is lost.
  assert.deepEqual(order.accept(ev(5), 105), []);
  assert.deepEqual(seqsOf([...order.accept(ev(1), 110), ...order.accept(ev(2), 111)]), [1, 2, 3]);
  assert.deepEqual(order.accept({ type: "resumed", id: "r1", channel: CHANNEL, epoch: EPOCH, seq: 3, replayed: 2, more: false }, 120), []);
  assert.equal(order.tick(219), null);
  assert.deepEqual(order.tick(220)?.after, 3);
  assert.deepEqual(seqsOf(order.accept(ev(4), 230)), [4, 5]);
});

test("a subscribe ack that is ahead of what was delivered opens a gap, resumed after the wait", () => {
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, gapWaitMs: 100 });
  order.subscribing(0);
  order.accept(subscribed(5), 0);
  order.accept(ev(6), 1);
  // Reconnect: subscribe with resume from 6; nothing to replay then (head 6), but 7 and 8
  // are written before the ack (head 8) and their live pushes are lost.
  assert.deepEqual(order.subscribing(10), { epoch: EPOCH, after: 6 });
  order.accept({ type: "resumed", channel: CHANNEL, epoch: EPOCH, seq: 6, replayed: 0, more: false }, 11);
  order.accept(subscribed(8), 12);
  assert.equal(order.deadline(), 112, "the gap opened with the ack");
  assert.equal(order.tick(111), null);
  assert.deepEqual(order.tick(112)?.after, 6);
  assert.deepEqual(seqsOf([...order.accept(ev(8), 113), ...order.accept(ev(7), 114)]), [7, 8]);
});

test("frames that arrive before the subscribe ack are held, then ordered from the ack's head", () => {
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null });
  assert.equal(order.subscribing(0), null);
  assert.deepEqual(order.accept(ev(12), 1), []);
  assert.deepEqual(order.accept(ev(10), 1), []);
  assert.deepEqual(seqsOf(order.accept(subscribed(10), 2)), [], "10 is in the state as of subscribing; 11 is missing");
  assert.deepEqual(seqsOf(order.accept(ev(11), 3)), [11, 12]);
});

test("a resync is surfaced to the application, and the next event sets the position", () => {
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, gapWaitMs: 100 });
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
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null });
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
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, gapWaitMs: 10_000, maxPending: 5 });
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

// ---- filtered subscriptions: the server pushes only some seqs; `resumed` closes the gaps

const resumed = (seq, more = false, replayed = 0) => ({ type: "resumed", id: "r", channel: CHANNEL, epoch: EPOCH, seq, replayed, more });

test("filtered: pushed 1,2,5,9 (3,4,6,7,8 filtered out): 1,2 at once, one resume after the filtered wait, then 5 and 9 once, in order", () => {
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, filtered: true }); // default waits: 1000 / 150 ms
  assert.equal(order.waitMs, 150);
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  const got = [];
  got.push(...order.accept(ev(1), 10), ...order.accept(ev(2), 11));
  assert.deepEqual(seqsOf(got), [1, 2], "1 and 2 at once");
  assert.deepEqual(order.accept(ev(5), 20), [], "5 waits behind 3");
  assert.deepEqual(order.accept(ev(9), 30), []);
  assert.equal(order.deadline(), 170, "the filtered wait, from when the gap opened");
  assert.equal(order.tick(169), null);
  assert.deepEqual(order.tick(170), { action: "resume", channel: CHANNEL, epoch: EPOCH, after: 2 });
  assert.equal(order.tick(171), null, "one resume in flight");
  // The replay: only what the subscription wants (5 and 9, both already held), then `resumed`.
  got.push(...order.accept(ev(5), 190), ...order.accept(ev(9), 191));
  assert.deepEqual(seqsOf(got), [1, 2], "replayed copies of held events are duplicates");
  got.push(...order.accept(resumed(9, false, 2), 192));
  assert.deepEqual(seqsOf(got), [1, 2, 5, 9], "5 and 9, once each, in order");
  assert.equal(order.seq, 9);
  assert.equal(order.pending.size, 0);
  assert.equal(order.deadline(), null, "no gap left: no second resume");
  for (const now of [400, 5000]) assert.equal(order.tick(now), null);
  assert.deepEqual(seqsOf(order.accept(ev(9), 500)), [], "9 again: a duplicate");
  assert.deepEqual(seqsOf(order.accept(ev(10), 501)), [10]);
});

test("filtered: the replay may bring a held event first; `resumed` with seq S releases what is held up to S", () => {
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, filtered: true });
  order.subscribing(0);
  order.accept(subscribed(2), 0);
  order.accept(ev(9), 1);
  assert.deepEqual(order.tick(151)?.after, 2);
  // 5 was not pushed live (a lost push): the replay brings it; 9 is not replayed again.
  assert.deepEqual(seqsOf(order.accept(ev(5), 160)), [], "5 is held: 3 and 4 are not known to be filtered yet");
  assert.deepEqual(seqsOf(order.accept(resumed(9, false, 1), 161)), [5, 9]);
  assert.equal(order.deadline(), null);
});

test("filtered: `resumed` with `more` moves the position to S and resumes again at once from S", () => {
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, filtered: true });
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  assert.deepEqual(seqsOf(order.accept(ev(1), 1)), [1]);
  assert.deepEqual(order.accept(ev(1200), 2), []);
  assert.deepEqual(order.tick(152), { action: "resume", channel: CHANNEL, epoch: EPOCH, after: 1 });
  const got = [...order.accept(ev(300), 160), ...order.accept(resumed(501, true, 1), 161)];
  assert.deepEqual(seqsOf(got), [300], "what was replayed, up to S");
  assert.equal(order.seq, 501);
  assert.deepEqual(order.tick(161), { action: "resume", channel: CHANNEL, epoch: EPOCH, after: 501 }, "at once, from S");
  assert.equal(order.tick(162), null);
  // Nothing wanted in the next 500: the position still moves on.
  assert.deepEqual(order.accept(resumed(1001, true, 0), 170), []);
  assert.equal(order.seq, 1001);
  assert.deepEqual(order.tick(170)?.after, 1001);
  const last = [...order.accept(ev(1100), 180), ...order.accept(ev(1200), 180), ...order.accept(resumed(1250, false, 2), 181)];
  assert.deepEqual(seqsOf(last), [1100, 1200]);
  assert.equal(order.seq, 1250);
  assert.equal(order.deadline(), null);
  assert.deepEqual(seqsOf(order.accept(ev(1251), 190)), [1251]);
});

test("filtered: an event held above S stays held until its own gap fills", () => {
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, filtered: true });
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  order.accept(ev(5), 0);
  order.accept(ev(12), 1);
  assert.deepEqual(order.tick(150)?.after, 0);
  // The replay read the head at 9 (12 was written after it): 5 up to S = 9, 12 waits.
  assert.deepEqual(seqsOf([...order.accept(ev(5), 160), ...order.accept(resumed(9, false, 1), 161)]), [5]);
  assert.equal(order.seq, 9);
  assert.deepEqual([...order.pending.keys()], [12], "12 is still held");
  assert.equal(order.deadline(), 311, "its gap waits again");
  assert.deepEqual(seqsOf(order.accept(ev(10), 200)), [10], "10 fills part of it");
  assert.deepEqual([...order.pending.keys()], [12]);
  assert.deepEqual(order.tick(350), { action: "resume", channel: CHANNEL, epoch: EPOCH, after: 10 });
  assert.deepEqual(seqsOf(order.accept(resumed(12, false, 0), 360)), [12], "11 is filtered out: 12 goes");
  assert.equal(order.deadline(), null);
});

test("filtered: `resumed` does not move past an event dropped from a full buffer", () => {
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, filtered: true, maxPending: 2 });
  order.subscribing(0);
  order.accept(subscribed(0), 0);
  for (const s of [4, 6, 8]) assert.deepEqual(order.accept(ev(s), s), []);
  assert.deepEqual([...order.pending.keys()], [4, 6], "8 is dropped");
  assert.equal(order.deadline(), 8, "due at once");
  assert.deepEqual(order.tick(8)?.after, 0);
  // The replay brings 2; the buffer is still full, so it evicts 6, and 8 is dropped again.
  order.accept(ev(2), 20);
  order.accept(ev(4), 21);
  order.accept(ev(6), 22);
  order.accept(ev(8), 23);
  const got = order.accept(resumed(10, false, 4), 24);
  assert.deepEqual(seqsOf(got), [2, 4], "up to the first dropped event, not past it");
  assert.equal(order.seq, 5);
  assert.deepEqual(order.tick(24)?.after, 5, "a dropped event to fetch: due at once");
  assert.deepEqual(seqsOf([...order.accept(ev(6), 30), ...order.accept(ev(8), 30), ...order.accept(resumed(10, false, 2), 31)]), [6, 8]);
  assert.equal(order.seq, 10);
  assert.equal(order.deadline(), null);
});

test("a quiet channel checks its tail with a resume (a lost last event leaves no gap)", () => {
  const order = new ChannelOrder({ channel: CHANNEL, tailCheckMs: 1000 });
  assert.equal(order.tailCheckMs, 1000);
  assert.equal(new ChannelOrder().tailCheckMs, 5 * 60 * 1000, "on by default");
  order.subscribing(0);
  assert.equal(order.deadline(), null, "no position yet");
  order.accept(subscribed(4), 10);
  assert.deepEqual(seqsOf(order.accept(ev(5), 100)), [5]);
  // Event 6 was pushed and lost, and nothing came after it.
  assert.equal(order.deadline(), 1100);
  assert.equal(order.tick(1099), null);
  assert.deepEqual(order.tick(1100), { action: "resume", channel: CHANNEL, epoch: EPOCH, after: 5 });
  assert.equal(order.tick(1200), null, "one in flight");
  assert.deepEqual(seqsOf(order.accept(ev(6), 1300)), [6]);
  assert.deepEqual(order.accept({ type: "resumed", id: "r1", channel: CHANNEL, epoch: EPOCH, seq: 6, more: false }, 1310), []);
  assert.equal(order.resuming, false);
  assert.equal(order.deadline(), 2310, "the next check waits a whole quiet period");
  assert.equal(order.tick(2310)?.after, 6);
  assert.equal(order.deadline(), 2310 + 10_000, "unanswered: again after the resume timeout");
  const off = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null });
  off.subscribing(0);
  off.accept(subscribed(4), 10);
  assert.equal(off.deadline(), null);
  assert.equal(off.tick(3_600_000), null);
});

test("the gap wait: filteredGapWaitMs for a filtered subscription, gapWaitMs otherwise", () => {
  const plain = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null });
  assert.deepEqual([plain.gapWaitMs, plain.filteredGapWaitMs, plain.waitMs], [1000, 150, 1000]);
  const custom = new ChannelOrder({ channel: CHANNEL, tailCheckMs: null, gapWaitMs: 500, filteredGapWaitMs: 20, filtered: true });
  assert.equal(custom.waitMs, 20);
  custom.filtered = false;
  assert.equal(custom.waitMs, 500);
  assert.equal(isFiltered([], undefined), false);
  assert.equal(isFiltered(undefined, undefined), false);
  assert.equal(isFiltered(["**"], undefined), false);
  assert.equal(isFiltered(["chat.**"], undefined), true);
  assert.equal(isFiltered([], { tripType: "PRIVATE" }), true);
  assert.equal(isFiltered(["**"], { tripType: "PRIVATE" }), true);
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

test("RealtimeClient: a filtered subscription resumes after filteredGapWaitMs, and `resumed` closes its gaps", async () => {
  globalThis.WebSocket = FakeSocket;
  const rt = new RealtimeClient({ url: "ws://test/ws", token: "t", gapWaitMs: 5000, filteredGapWaitMs: 30 });
  rt.connect();
  await until(() => rt.status === "open", "open");
  const ws = FakeSocket.sockets.at(-1);
  const got = [];
  const sub = rt.subscribe(CHANNEL, { events: ["chat.message.*"] }, (f) => got.push(f.seq));
  const s1 = ws.take("subscribe");
  assert.deepEqual(s1.events, ["chat.message.*"]);
  ws.recv({ type: "subscribed", id: s1.id, channel: CHANNEL, epoch: EPOCH, seq: 0 });
  await sub;
  // An unfiltered channel on the same client keeps the long wait.
  const other = "chat:C2";
  const otherSub = rt.subscribe(other, { events: ["**"] }, () => {});
  ws.recv({ type: "subscribed", id: ws.take("subscribe").id, channel: other, epoch: EPOCH, seq: 0 });
  await otherSub;
  ws.recv({ ...ev(2), channel: other });

  const started = Date.now();
  for (const s of [1, 2, 5, 9]) ws.recv(ev(s));
  assert.deepEqual(got, [1, 2]);
  await until(() => ws.sent.some((f) => f.action === "resume"), "a resume", 1000);
  assert.ok(Date.now() - started < 1000, "the filtered wait, not gapWaitMs");
  const r = ws.take("resume");
  assert.deepEqual([r.channel, r.after], [CHANNEL, 2]);
  ws.recv(ev(5));
  ws.recv(ev(9));
  ws.recv({ type: "resumed", id: r.id, channel: CHANNEL, epoch: EPOCH, seq: 9, replayed: 2, more: false });
  assert.deepEqual(got, [1, 2, 5, 9]);
  await sleep(100);
  assert.deepEqual(ws.sent.filter((f) => f.action === "resume"), [], "no other resume: not the unfiltered channel's, not a second one");
  rt.close();
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
