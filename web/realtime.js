// The browser client of the realtime event system: one ES module, no dependencies.
//
//   import { RealtimeClient } from "./realtime.js";
//   const rt = new RealtimeClient({ url: "ws://127.0.0.1:3000/ws", token, onStatus: s => ... });
//   rt.connect();
//   await rt.subscribe("chat:C1", { events: ["chat.**"] }, (frame) => render(frame.event));
//
// It hands each channel's events to the handler in `seq` order, each once: an event that
// arrives ahead of a gap waits until the gap fills, duplicates are dropped, and a gap still
// open after `gapWaitMs` (default 1 s) gets one `resume` from the last delivered seq
// (`ChannelOrder`, below, is that logic on its own). `low` events (no `seq`) go straight
// through.
//
// Filtered subscriptions (a `filter`, or `events` patterns other than none or `["**"]`)
// get only some of a channel's seqs, so gaps are normal for them: such a channel waits
// `filteredGapWaitMs` (default 150 ms) instead of `gapWaitMs` before its `resume`. The
// server replays only what the subscription wants, and its `resumed` answer (`seq: S`)
// says every seq up to S was replayed or is not for it: the client hands over what it
// holds up to S, in order, and carries on from S (resuming again at once from S when the
// answer says `more`). A gap opened by filtering thus costs one wait plus one resume. A
// channel quiet for `tailCheckMs` (default 5 min) resumes too: a lost last event leaves
// no gap to see. It reconnects with backoff and jitter, resubscribes every channel and resumes
// from the last `seq` it delivered (so nothing is lost across a reconnect), pings under
// API Gateway's 10-minute idle timeout and reconnects on its own before API Gateway's
// 2-hour connection cap.

const PROTOCOL = "realtime.v1";

export class RealtimeClient {
  constructor({
    url,
    token,
    onStatus = () => {},
    onResync = () => {},
    onError = () => {},
    onResumed = () => {},
    pingIntervalMs = 5 * 60 * 1000,
    maxConnectionMs = 110 * 60 * 1000,
    requestTimeoutMs = 10 * 1000,
    backoff = { baseMs: 300, maxMs: 30 * 1000 },
    gapWaitMs = 1000,
    filteredGapWaitMs = 150,
    maxPending = 10000,
    tailCheckMs = 5 * 60 * 1000,
  }) {
    Object.assign(this, {
      url,
      token,
      onStatus,
      onResync,
      onError,
      onResumed,
      pingIntervalMs,
      maxConnectionMs,
      requestTimeoutMs,
      backoff,
      gapWaitMs,
      filteredGapWaitMs,
      maxPending,
      tailCheckMs,
    });
    this.status = "closed";
    this.ws = null;
    this.attempt = 0;
    this.nextId = 0;
    this.pending = new Map(); // request id -> {resolve, reject, timer}
    this.channels = new Map(); // channel -> {events, filter, handler, order: ChannelOrder, gapTimer}
    this.timers = [];
    this.closedByUser = false;
  }

  /** Opens the connection (and keeps it open until `close`). */
  connect() {
    this.closedByUser = false;
    this.#open();
  }

  /** Closes for good: no reconnect. */
  close() {
    this.closedByUser = true;
    this.#clearTimers();
    if (this.ws) this.ws.close(1000, "bye");
    this.#setStatus("closed");
  }

  /**
   * Subscribes to a channel; `handler(frame)` gets each `event` frame once, in seq order
   * for logged events (`low` ones, which have no seq, as they come). Resolves with the
   * `subscribed` ack; rejects with the `error` frame. A `resync` (the events missed cannot
   * be replayed: refetch the state) goes to `onResync(channel, reason)`. With a `filter`
   * or `events` patterns (other than `["**"]`) the channel's gaps wait `filteredGapWaitMs`
   * before a resume, not `gapWaitMs`.
   */
  subscribe(channel, { events = [], filter } = {}, handler = () => {}) {
    const sub = this.channels.get(channel) ?? {
      order: new ChannelOrder({
        channel,
        gapWaitMs: this.gapWaitMs,
        filteredGapWaitMs: this.filteredGapWaitMs,
        maxPending: this.maxPending,
        resumeTimeoutMs: this.requestTimeoutMs,
        tailCheckMs: this.tailCheckMs,
      }),
      gapTimer: null,
    };
    Object.assign(sub, { events, filter, handler });
    sub.order.filtered = isFiltered(events, filter);
    this.channels.set(channel, sub);
    return this.#sendSubscribe(channel, sub);
  }

  unsubscribe(channel) {
    const sub = this.channels.get(channel);
    if (sub) clearTimeout(sub.gapTimer);
    this.channels.delete(channel);
    return this.#request({ action: "unsubscribe", channel });
  }

  /** Sends any action frame (e.g. `typing`) and resolves with its answer, if it has one. */
  send(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) throw new Error("not connected");
    this.ws.send(JSON.stringify(frame));
  }

  ping() {
    return this.#request({ action: "ping" });
  }

  // ---- internals

  #setStatus(s) {
    if (this.status !== s) {
      this.status = s;
      this.onStatus(s);
    }
  }

  #open() {
    this.#clearTimers();
    this.#setStatus(this.attempt === 0 && this.status !== "reconnecting" ? "connecting" : "reconnecting");
    const ws = new WebSocket(this.url, [PROTOCOL, `bearer.${this.token}`]);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.#setStatus("open");
      for (const [channel, sub] of this.channels) this.#sendSubscribe(channel, sub).catch((e) => this.onError(e));
      this.timers.push(setInterval(() => this.ping().catch(() => {}), this.pingIntervalMs));
      // API Gateway ends every connection at 2 hours: leave a little before, on our terms.
      this.timers.push(setTimeout(() => this.#reconnect(), this.maxConnectionMs));
    };
    ws.onmessage = (m) => this.#onFrame(m.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.#rejectPending();
      if (this.closedByUser) return this.#setStatus("closed");
      this.#scheduleReconnect();
    };
    ws.onerror = () => {}; // onclose follows and decides
  }

  #reconnect() {
    const old = this.ws;
    this.ws = null;
    // Its answers will not come: fail what waits for them now, not at their timeouts.
    this.#rejectPending();
    if (old) old.close(1000, "refresh");
    this.#scheduleReconnect();
  }

  #rejectPending() {
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error("connection closed"));
    }
    this.pending.clear();
  }

  #scheduleReconnect() {
    this.#clearTimers();
    this.#setStatus("reconnecting");
    const { baseMs, maxMs } = this.backoff;
    const ceiling = Math.min(maxMs, baseMs * 2 ** this.attempt++);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // jitter: no thundering herd
    this.timers.push(setTimeout(() => this.#open(), delay));
  }

  #clearTimers() {
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.timers = [];
    // A gap timer only sends on an open socket; the resubscribe after a reconnect resumes.
    for (const sub of this.channels.values()) clearTimeout(sub.gapTimer);
  }

  #sendSubscribe(channel, sub) {
    const frame = { action: "subscribe", channel };
    if (sub.events?.length) frame.events = sub.events;
    if (sub.filter) frame.filter = sub.filter;
    // From the last delivered seq, when there is one: the replay comes before the ack.
    const resume = sub.order.subscribing(Date.now());
    if (resume) frame.resume = resume;
    return this.#request(frame).catch((e) => {
      sub.order.subscribeFailed(Date.now());
      this.#pump(channel, sub);
      throw e;
    });
  }

  #request(frame) {
    const id = `r${++this.nextId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${frame.action} timed out`));
      }, this.requestTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.send({ ...frame, id });
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(e);
      }
    });
  }

  #settle(id, ok, value) {
    const p = this.pending.get(id);
    if (!p) return false;
    clearTimeout(p.timer);
    this.pending.delete(id);
    ok ? p.resolve(value) : p.reject(value);
    return true;
  }

  #onFrame(text) {
    let f;
    try {
      f = JSON.parse(text);
    } catch {
      return;
    }
    switch (f.type) {
      case "event":
        return this.#deliver(f);
      case "subscribed":
        this.#deliver(f);
        return this.#settle(f.id, true, f);
      case "unsubscribed":
      case "pong":
        return this.#settle(f.id, true, f);
      case "resumed":
        this.onResumed(f);
        this.#deliver(f);
        return this.#settle(f.id, true, f);
      case "resync":
        if (!this.channels.has(f.channel)) this.onResync(f.channel, f.reason);
        this.#deliver(f);
        return this.#settle(f.id, true, f);
      case "error":
        if (!this.#settle(f.id, false, f)) this.onError(f);
        return;
    }
  }

  /** Runs a channel's frame through its order and hands over what is ready, in order. */
  #deliver(f) {
    const sub = this.channels.get(f.channel);
    if (!sub) return;
    for (const g of sub.order.accept(f, Date.now())) {
      try {
        if (g.type === "resync") this.onResync(g.channel, g.reason);
        else sub.handler(g);
      } catch (e) {
        this.onError(e); // one failing handler call must not lose the frames after it
      }
    }
    this.#pump(f.channel, sub);
  }

  /** Sends the channel's resume if one is due, and sets its gap timer for the next. */
  #pump(channel, sub) {
    clearTimeout(sub.gapTimer);
    sub.gapTimer = null;
    if (this.channels.get(channel) !== sub || this.ws?.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    const resume = sub.order.tick(now);
    if (resume) {
      this.#request(resume).catch((e) => {
        sub.order.resumeFailed(Date.now());
        this.onError(e);
        this.#pump(channel, sub);
      });
    }
    const at = sub.order.deadline();
    if (at != null) sub.gapTimer = setTimeout(() => this.#pump(channel, sub), Math.max(0, at - now));
  }
}

// ---- ordering (pure: no socket, no timers; the caller passes the time)

/** Whether a subscription gets only some of its channel's events (so gaps are normal). */
export function isFiltered(events, filter) {
  return filter != null || (Array.isArray(events) && events.length > 0 && !events.includes("**"));
}

/**
 * The delivery order of one channel: hands over `event` frames in `seq` order, each once,
 * holding the ones that arrive early until the gap before them fills, and says when to
 * ask for a `resume` (a gap still open after `gapWaitMs`, never two in flight). It never
 * touches a socket or a timer: feed it every frame of its channel with `accept(frame, now)`,
 * call `tick(now)` at `deadline()` (and after each `accept`) and send the `resume` frame
 * it returns. `RealtimeClient` keeps one per subscribed channel.
 *
 * Positions: `seq` is the last seq handed over, in `epoch`. It is unknown until the
 * `subscribed` answer (frames that arrive before it are held) and again after a `resync`,
 * when the next `subscribed` or event sets it.
 *
 * A `resumed` answer with `seq: S` means every seq up to S was replayed (its frames came
 * before it) or is not for this subscription: the held events up to S are handed over,
 * in order, and the position moves to S (with `more`, the next resume, from S, is due at
 * once). Never past an event dropped from a full buffer, which exists and must come again.
 *
 * `filtered` (the subscription has a `filter` or `events` patterns: it gets only some
 * seqs, gaps are normal) makes a gap wait `filteredGapWaitMs` instead of `gapWaitMs`.
 *
 * A channel quiet for `tailCheckMs` (default 5 min, null: never) gets a resume from its
 * position too: a push that failed for good leaves a gap only the next event would show,
 * and the last event of a burst has no next one.
 */
export class ChannelOrder {
  constructor({
    channel = null,
    gapWaitMs = 1000,
    filteredGapWaitMs = 150,
    filtered = false,
    maxPending = 10000,
    resumeTimeoutMs = 10000,
    tailCheckMs = 5 * 60 * 1000,
  } = {}) {
    Object.assign(this, { channel, gapWaitMs, filteredGapWaitMs, filtered, maxPending, resumeTimeoutMs, tailCheckMs });
    this.heardAt = null; // when the last seq'd event, `subscribed` or `resumed` came
    this.epoch = null;
    this.seq = null; // the last seq delivered (null: position unknown)
    this.head = null; // the highest seq known to exist
    this.pending = new Map(); // seq -> frame, arrived ahead of a gap
    this.dropped = new Set(); // seqs dropped from a full buffer, not held or delivered since
    this.awaitingAck = false; // a `subscribe` is out: hold frames until its answer
    this.gapSince = null; // when the current gap (right after `seq`) opened
    this.urgentAt = null; // a resume is due now (`resumed` with `more`, buffer overflow)
    this.resumeSentAt = null; // a resume is in flight since then
  }

  /** Whether an event after `seq` is known to exist and has not been delivered. */
  get gap() {
    return this.seq != null && this.head != null && this.head > this.seq;
  }

  /** Whether a resume (or a subscribe with `resume`) is in flight. */
  get resuming() {
    return this.resumeSentAt != null;
  }

  /** How long a gap stays open before a resume: `filteredGapWaitMs` when `filtered`. */
  get waitMs() {
    return this.filtered ? this.filteredGapWaitMs : this.gapWaitMs;
  }

  /**
   * A `subscribe` is about to be sent: returns the `resume` field it should carry
   * (`{epoch, after}`, or null when the position is unknown), and holds early frames
   * until the answer if the position is unknown.
   */
  subscribing(now) {
    this.awaitingAck = true;
    this.urgentAt = null;
    if (this.seq == null || this.epoch == null) {
      this.resumeSentAt = null;
      return null;
    }
    this.resumeSentAt = now; // the replay comes with the subscribe
    return { epoch: this.epoch, after: this.seq };
  }

  /** The `subscribe` failed (an `error` answer, a timeout, a closed connection). */
  subscribeFailed(now) {
    this.awaitingAck = false;
    this.resumeFailed(now);
  }

  /** The `resume` in flight failed: wait the gap wait again before the next one. */
  resumeFailed(now) {
    this.resumeSentAt = null;
    this.gapSince = this.gap ? now : null;
  }

  /**
   * Takes any frame of this channel (`event`, `subscribed`, `resumed`, `resync`) and
   * returns the frames to hand to the application now, in order: `event` frames and
   * `resync` frames (the server's, or one with reason `epoch_changed` when events of a
   * new epoch arrive), after which the application must refetch its state.
   */
  accept(f, now) {
    if (f?.type === "subscribed" || f?.type === "resumed" || typeof f?.seq === "number") this.heardAt = now;
    switch (f?.type) {
      case "event":
        return this.#event(f, now);
      case "subscribed":
        return this.#subscribed(f, now);
      case "resumed":
        return this.#resumed(f, now);
      case "resync":
        this.#reset();
        return [f];
      default:
        return [];
    }
  }

  /** When `tick` should next be called (a time like `now`), or null when nothing waits. */
  deadline() {
    if (this.resuming) return this.gap || this.tailCheckMs != null ? this.resumeSentAt + this.resumeTimeoutMs : null;
    if (this.gap) return this.urgentAt ?? this.gapSince + this.waitMs;
    if (this.awaitingAck || this.seq == null || this.tailCheckMs == null || this.heardAt == null) return null;
    return this.heardAt + this.tailCheckMs;
  }

  /**
   * The `resume` frame to send now (without `id`), or null: one when a gap has stayed
   * open the gap wait (`waitMs`; at once after `resumed` with `more`) or the channel was
   * quiet for `tailCheckMs`, from the last delivered seq, and never while another is in
   * flight (unless that one is older than `resumeTimeoutMs`).
   */
  tick(now) {
    const at = this.deadline();
    if (at == null || now < at) return null;
    this.resumeSentAt = now;
    this.urgentAt = null;
    return { action: "resume", channel: this.channel, epoch: this.epoch, after: this.seq };
  }

  #event(f, now) {
    if (f.seq == null) return [f]; // `low` events: live only, unordered
    const out = [];
    if (this.seq == null) {
      if (this.awaitingAck) {
        this.#hold(f, now);
        return out;
      }
      // After a resync (or a lost answer): this event sets the position, together with
      // any that arrived early in the same epoch.
      let first = f.seq;
      for (const [s, g] of this.pending) if (g.epoch === f.epoch && s < first) first = s;
      this.#setPosition(f.epoch, first - 1);
    } else if (f.epoch != null && this.epoch != null && f.epoch !== this.epoch) {
      // The channel's log was reset: what was missed cannot be replayed.
      this.#reset();
      out.push({ type: "resync", channel: f.channel ?? this.channel, reason: "epoch_changed" });
      this.#setPosition(f.epoch, f.seq - 1);
    }
    if (f.seq <= this.seq || this.pending.has(f.seq)) return out; // a duplicate
    this.#hold(f, now);
    this.#drain(out, now);
    return out;
  }

  #subscribed(f, now) {
    this.awaitingAck = false;
    const out = [];
    if (this.seq != null && this.epoch !== f.epoch) {
      this.#reset();
      out.push({ type: "resync", channel: f.channel ?? this.channel, reason: "epoch_changed" });
    }
    if (this.seq == null) {
      // New to this channel (or after a resync): start at the head; earlier frames
      // are in the state as of subscribing.
      this.#setPosition(f.epoch, f.seq);
      for (const [s, g] of this.pending) if (s <= f.seq || (g.epoch != null && g.epoch !== f.epoch)) this.pending.delete(s);
      for (const s of this.pending.keys()) this.#seen(s);
    } else {
      this.#seen(f.seq);
    }
    this.#drain(out, now);
    return out;
  }

  #resumed(f, now) {
    this.resumeSentAt = null;
    const out = [];
    if (this.seq == null || f.epoch !== this.epoch || typeof f.seq !== "number") return out;
    // Every seq up to `f.seq` was replayed (those frames came before this one) or is not
    // for this subscription: what is held up to it goes now, in order, and the position
    // moves to it; but not past an event dropped from a full buffer (it must come again).
    let upTo = f.seq;
    for (const s of this.dropped) if (s > this.seq && s <= upTo) upTo = s - 1;
    this.#seen(f.seq);
    if (upTo > this.seq) {
      const held = [...this.pending.keys()].filter((s) => s <= upTo).sort((a, b) => a - b);
      for (const s of held) {
        if (s > this.seq) out.push(this.pending.get(s));
        this.pending.delete(s);
      }
      this.seq = upTo;
    }
    this.#drain(out, now);
    if (f.more) this.#seen(f.seq + 1); // there is more after it
    // More to replay, or a dropped event to fetch again: the next resume is due at once.
    if (f.more || upTo < f.seq) this.urgentAt = now;
    // A replay that ended with the gap still open: wait again before the next one.
    this.gapSince = this.gap ? now : null;
    return out;
  }

  #setPosition(epoch, seq) {
    this.epoch = epoch;
    this.seq = seq;
    this.head = Math.max(this.head ?? seq, seq);
  }

  #reset() {
    this.epoch = this.seq = this.head = null;
    this.pending.clear();
    this.dropped.clear();
    this.gapSince = this.urgentAt = this.resumeSentAt = this.heardAt = null;
  }

  #seen(seq) {
    if (this.head == null || seq > this.head) this.head = seq;
  }

  /**
   * Buffers an early frame, bounded: past `maxPending` the highest goes (a replay brings
   * it; until then it is in `dropped`, and no `resumed` moves the position past it).
   */
  #hold(f, now) {
    this.#seen(f.seq);
    if (this.pending.size >= this.maxPending) {
      let top = f.seq;
      for (const s of this.pending.keys()) if (s > top) top = s;
      this.dropped.add(top);
      this.urgentAt ??= now;
      if (top === f.seq) return;
      this.pending.delete(top);
    }
    this.dropped.delete(f.seq);
    this.pending.set(f.seq, f);
  }

  /** Hands over the contiguous run after `seq`; restarts the gap timer on progress. */
  #drain(out, now) {
    if (this.seq == null) return;
    const before = this.seq;
    for (let next = this.pending.get(this.seq + 1); next; next = this.pending.get(this.seq + 1)) {
      this.pending.delete(this.seq + 1);
      this.seq += 1;
      out.push(next);
    }
    for (const s of this.dropped) if (s <= this.seq) this.dropped.delete(s);
    if (!this.gap) {
      this.gapSince = this.urgentAt = null;
    } else if (this.gapSince == null || this.seq !== before) {
      this.gapSince = now;
    }
  }
}

