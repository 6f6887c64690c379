// The browser client of the realtime event system: one ES module, no dependencies.
//
//   import { RealtimeClient } from "./realtime.js";
//   const rt = new RealtimeClient({ url: "ws://127.0.0.1:3000/ws", token, onStatus: s => ... });
//   rt.connect();
//   await rt.subscribe("chat:C1", { events: ["chat.**"] }, (frame) => render(frame.event));
//
// It reconnects with backoff and jitter, resubscribes every channel and resumes from the
// last `seq` it saw (so nothing is lost across a reconnect), drops duplicates by `seq`,
// asks for a replay when it sees a gap, pings under API Gateway's 10-minute idle
// timeout and reconnects on its own before API Gateway's 2-hour connection cap.

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
  }) {
    Object.assign(this, { url, token, onStatus, onResync, onError, onResumed, pingIntervalMs, maxConnectionMs, requestTimeoutMs, backoff });
    this.status = "closed";
    this.ws = null;
    this.attempt = 0;
    this.nextId = 0;
    this.pending = new Map(); // request id -> {resolve, reject, timer}
    this.channels = new Map(); // channel -> {events, filter, handler, epoch, seq}
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
   * for logged events. Resolves with the `subscribed` ack; rejects with the `error` frame.
   */
  subscribe(channel, { events = [], filter } = {}, handler = () => {}) {
    const sub = this.channels.get(channel) ?? { epoch: null, seq: null };
    Object.assign(sub, { events, filter, handler });
    this.channels.set(channel, sub);
    return this.#sendSubscribe(channel, sub);
  }

  unsubscribe(channel) {
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
  }

  #sendSubscribe(channel, sub) {
    const frame = { action: "subscribe", channel };
    if (sub.events?.length) frame.events = sub.events;
    if (sub.filter) frame.filter = sub.filter;
    if (sub.epoch != null && sub.seq != null) frame.resume = { epoch: sub.epoch, after: sub.seq };
    return this.#request(frame).then((ack) => {
      if (sub.epoch !== ack.epoch) {
        // New to this channel (or its log was reset): start from the head.
        sub.epoch = ack.epoch;
        sub.seq = ack.seq;
      } else if (sub.seq == null) {
        sub.seq = ack.seq;
      } else if (sub.seq < ack.seq) {
        // Part of the replay did not arrive: ask again.
        this.#resume(channel, sub);
      }
      return ack;
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
        return this.#onEvent(f);
      case "subscribed":
      case "unsubscribed":
      case "pong":
        return this.#settle(f.id, true, f);
      case "resumed": {
        this.onResumed(f);
        const sub = this.channels.get(f.channel);
        if (sub && f.more) this.#resume(f.channel, sub);
        return this.#settle(f.id, true, f);
      }
      case "resync": {
        const sub = this.channels.get(f.channel);
        if (sub) {
          sub.epoch = null;
          sub.seq = null;
        }
        this.onResync(f.channel, f.reason);
        return this.#settle(f.id, true, f);
      }
      case "error":
        if (!this.#settle(f.id, false, f)) this.onError(f);
        return;
    }
  }

  #onEvent(f) {
    const sub = this.channels.get(f.channel);
    if (!sub) return;
    if (f.seq == null) return sub.handler(f); // `low` events: live only, no seq
    if (sub.epoch && f.epoch !== sub.epoch) {
      sub.epoch = f.epoch;
      sub.seq = f.seq;
      return sub.handler(f);
    }
    if (sub.seq != null && f.seq <= sub.seq) return; // a duplicate
    if (sub.seq != null && f.seq > sub.seq + 1) {
      // A gap: ask for what is missing, deliver this one when the replay reaches it.
      return this.#resume(f.channel, sub);
    }
    sub.seq = f.seq;
    sub.epoch = f.epoch;
    sub.handler(f);
  }

  #resume(channel, sub) {
    if (sub.resuming) return;
    sub.resuming = true;
    this.#request({ action: "resume", channel, epoch: sub.epoch, after: sub.seq })
      .catch((e) => this.onError(e))
      .finally(() => (sub.resuming = false));
  }
}
