// The delivery order of one channel: pure (no socket, no timers; the caller passes the
// time), so it is tested on its own against the shared conformance scenario
// (clients/conformance/ordering.json) that the Rust client's `ChannelOrder` passes too.

import type { EventFrame } from "./events.js";

/** `subscribe`'s answer: the channel's position (`seq` in `epoch`) as of subscribing. */
export interface SubscribedFrame {
  type: "subscribed";
  id?: string | null;
  channel: string;
  epoch: string;
  seq: number;
}

/** The end of a replay: every seq up to `seq` was replayed or is not for the subscription. */
export interface ResumedFrame {
  type: "resumed";
  id?: string | null;
  channel: string;
  epoch: string;
  seq: number;
  replayed?: number;
  more?: boolean;
}

/**
 * What was missed cannot be replayed (the log no longer has it, or its epoch changed):
 * the application refetches its state.
 */
export interface ResyncFrame {
  type: "resync";
  id?: string | null;
  channel: string;
  reason: string;
}

/** The frames of one channel that an order takes. */
export type ChannelFrame = EventFrame | SubscribedFrame | ResumedFrame | ResyncFrame;

/** A `resume` request (send it with an `id`). */
export type ResumeRequest = {
  action: "resume";
  channel: string | null;
  epoch: string | null;
  after: number | null;
};

export interface ChannelOrderOptions {
  channel?: string | null;
  /** How long a gap stays open before a resume (default 1 s). */
  gapWaitMs?: number;
  /** The same for a filtered subscription, whose gaps are normal (default 150 ms). */
  filteredGapWaitMs?: number;
  filtered?: boolean;
  /** Early events held at most; past it the highest goes and is fetched again. */
  maxPending?: number;
  /** A resume unanswered this long may be sent again. */
  resumeTimeoutMs?: number;
  /** A channel quiet this long checks its tail with a resume (null: never). */
  tailCheckMs?: number | null;
}

/** Whether a subscription gets only some of its channel's events (so gaps are normal). */
export function isFiltered(events: readonly string[] | undefined, filter: unknown): boolean {
  return filter != null || (Array.isArray(events) && events.length > 0 && !events.includes("**"));
}

/**
 * Hands over `event` frames in `seq` order, each once, holding the ones that arrive early
 * until the gap before them fills, and says when to ask for a `resume` (a gap still open
 * after `gapWaitMs`, never two in flight). Feed it every frame of its channel with
 * `accept(frame, now)`, call `tick(now)` at `deadline()` (and after each `accept`) and send
 * the `resume` frame it returns. `RealtimeClient` keeps one per subscribed channel.
 *
 * The position (`seq`, the last handed over, in `epoch`) is unknown until the `subscribed`
 * answer (frames that arrive before it are held) and again after a `resync`, when the next
 * `subscribed` or event sets it. A `resumed` answer with `seq: S` hands over what is held
 * up to S and moves the position there (with `more`, the next resume is due at once),
 * never past an event dropped from a full buffer. A channel quiet for `tailCheckMs` gets a
 * resume too: the last event of a burst has no next one to reveal its loss.
 */
export class ChannelOrder {
  channel: string | null;
  gapWaitMs: number;
  filteredGapWaitMs: number;
  filtered: boolean;
  maxPending: number;
  resumeTimeoutMs: number;
  tailCheckMs: number | null;
  /** When the last seq'd event, `subscribed` or `resumed` came. */
  heardAt: number | null = null;
  epoch: string | null = null;
  /** The last seq delivered (null: position unknown). */
  seq: number | null = null;
  /** The highest seq known to exist. */
  head: number | null = null;
  /** seq -> frame, arrived ahead of a gap. */
  pending = new Map<number, EventFrame>();
  /** Seqs dropped from a full buffer, not held or delivered since. */
  dropped = new Set<number>();
  /** A `subscribe` is out: hold frames until its answer. */
  awaitingAck = false;
  /** When the current gap (right after `seq`) opened. */
  gapSince: number | null = null;
  /** A resume is due now (`resumed` with `more`, buffer overflow). */
  urgentAt: number | null = null;
  /** A resume is in flight since then. */
  resumeSentAt: number | null = null;

  constructor({
    channel = null,
    gapWaitMs = 1000,
    filteredGapWaitMs = 150,
    filtered = false,
    maxPending = 10000,
    resumeTimeoutMs = 10000,
    tailCheckMs = 5 * 60 * 1000,
  }: ChannelOrderOptions = {}) {
    this.channel = channel;
    this.gapWaitMs = gapWaitMs;
    this.filteredGapWaitMs = filteredGapWaitMs;
    this.filtered = filtered;
    this.maxPending = maxPending;
    this.resumeTimeoutMs = resumeTimeoutMs;
    this.tailCheckMs = tailCheckMs;
  }

  /** Whether an event after `seq` is known to exist and has not been delivered. */
  get gap(): boolean {
    return this.seq != null && this.head != null && this.head > this.seq;
  }

  /** Whether a resume (or a subscribe with `resume`) is in flight. */
  get resuming(): boolean {
    return this.resumeSentAt != null;
  }

  /** How long a gap stays open before a resume. */
  get waitMs(): number {
    return this.filtered ? this.filteredGapWaitMs : this.gapWaitMs;
  }

  /**
   * A `subscribe` is about to be sent: returns the `resume` field it should carry (null
   * when the position is unknown), and holds early frames until the answer.
   */
  subscribing(now: number): { epoch: string; after: number } | null {
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
  subscribeFailed(now: number): void {
    this.awaitingAck = false;
    this.resumeFailed(now);
  }

  /** The `resume` in flight failed: wait the gap wait again before the next one. */
  resumeFailed(now: number): void {
    this.resumeSentAt = null;
    this.gapSince = this.gap ? now : null;
  }

  /**
   * Takes any frame of this channel and returns what to hand to the application now, in
   * order: `event` frames, and `resync` frames (the server's, or one with reason
   * `epoch_changed` when events of a new epoch arrive) after which it refetches its state.
   */
  accept(f: ChannelFrame, now: number): Array<EventFrame | ResyncFrame> {
    if (f?.type === "subscribed" || f?.type === "resumed" || (f?.type === "event" && typeof f.seq === "number")) {
      this.heardAt = now;
    }
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
  deadline(): number | null {
    if (this.resumeSentAt != null) {
      return this.gap || this.tailCheckMs != null ? this.resumeSentAt + this.resumeTimeoutMs : null;
    }
    if (this.gap) return this.urgentAt ?? (this.gapSince ?? 0) + this.waitMs;
    if (this.awaitingAck || this.seq == null || this.tailCheckMs == null || this.heardAt == null) return null;
    return this.heardAt + this.tailCheckMs;
  }

  /**
   * The `resume` frame to send now (without `id`), or null: when a gap has stayed open the
   * gap wait (at once after `resumed` with `more`) or the channel was quiet for
   * `tailCheckMs`; never while another is in flight (unless older than `resumeTimeoutMs`).
   */
  tick(now: number): ResumeRequest | null {
    const at = this.deadline();
    if (at == null || now < at) return null;
    this.resumeSentAt = now;
    this.urgentAt = null;
    return { action: "resume", channel: this.channel, epoch: this.epoch, after: this.seq };
  }

  #event(f: EventFrame, now: number): Array<EventFrame | ResyncFrame> {
    if (f.seq == null) return [f]; // `low` events: live only, unordered
    const out: Array<EventFrame | ResyncFrame> = [];
    if (this.seq == null) {
      if (this.awaitingAck) {
        this.#hold(f, now);
        return out;
      }
      // After a resync (or a lost answer): this event sets the position, together with
      // any that arrived early in the same epoch; those of another epoch can never be
      // placed and go.
      for (const [s, g] of this.pending) if (g.epoch !== f.epoch) this.pending.delete(s);
      let first = f.seq;
      for (const s of this.pending.keys()) if (s < first) first = s;
      this.#setPosition(f.epoch ?? null, first - 1);
    } else if (f.epoch != null && this.epoch != null && f.epoch !== this.epoch) {
      // The channel's log was reset: what was missed cannot be replayed.
      this.#reset();
      out.push({ type: "resync", channel: f.channel ?? this.channel, reason: "epoch_changed" });
      this.#setPosition(f.epoch, f.seq - 1);
    }
    if (f.seq <= (this.seq as number) || this.pending.has(f.seq)) return out; // a duplicate
    this.#hold(f, now);
    this.#drain(out, now);
    return out;
  }

  #subscribed(f: SubscribedFrame, now: number): Array<EventFrame | ResyncFrame> {
    this.awaitingAck = false;
    const out: Array<EventFrame | ResyncFrame> = [];
    if (this.seq != null && this.epoch !== f.epoch) {
      this.#reset();
      out.push({ type: "resync", channel: f.channel ?? this.channel, reason: "epoch_changed" });
    }
    if (this.seq == null) {
      // New to this channel (or after a resync): start at the head; earlier frames are
      // in the state as of subscribing.
      this.#setPosition(f.epoch, f.seq);
      for (const [s, g] of this.pending) {
        if (s <= f.seq || (g.epoch != null && g.epoch !== f.epoch)) this.pending.delete(s);
      }
      for (const s of this.pending.keys()) this.#seen(s);
    } else {
      this.#seen(f.seq);
    }
    this.#drain(out, now);
    return out;
  }

  #resumed(f: ResumedFrame, now: number): Array<EventFrame | ResyncFrame> {
    this.resumeSentAt = null;
    const out: Array<EventFrame | ResyncFrame> = [];
    if (this.seq == null || f.epoch !== this.epoch || typeof f.seq !== "number") return out;
    // Every seq up to `f.seq` was replayed (those frames came before this one) or is not
    // for this subscription: what is held up to it goes now, in order; but not past an
    // event dropped from a full buffer (it must come again).
    let upTo = f.seq;
    for (const s of this.dropped) if (s > this.seq && s <= upTo) upTo = s - 1;
    this.#seen(f.seq);
    if (upTo > this.seq) {
      const held = [...this.pending.keys()].filter((s) => s <= upTo).sort((a, b) => a - b);
      for (const s of held) {
        if (s > this.seq) out.push(this.pending.get(s) as EventFrame);
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

  #setPosition(epoch: string | null, seq: number): void {
    this.epoch = epoch;
    this.seq = seq;
    this.head = Math.max(this.head ?? seq, seq);
  }

  #reset(): void {
    this.epoch = this.seq = this.head = null;
    this.pending.clear();
    this.dropped.clear();
    this.gapSince = this.urgentAt = this.resumeSentAt = this.heardAt = null;
  }

  #seen(seq: number): void {
    if (this.head == null || seq > this.head) this.head = seq;
  }

  /**
   * Buffers an early frame, bounded: past `maxPending` the highest goes (a replay brings
   * it; until then it is in `dropped`, and no `resumed` moves the position past it).
   */
  #hold(f: EventFrame, now: number): void {
    const seq = f.seq as number;
    this.#seen(seq);
    if (this.pending.size >= this.maxPending) {
      let top = seq;
      for (const s of this.pending.keys()) if (s > top) top = s;
      this.dropped.add(top);
      this.urgentAt ??= now;
      if (top === seq) return;
      this.pending.delete(top);
    }
    this.dropped.delete(seq);
    this.pending.set(seq, f);
  }

  /** Hands over the contiguous run after `seq`; restarts the gap timer on progress. */
  #drain(out: Array<EventFrame | ResyncFrame>, now: number): void {
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
