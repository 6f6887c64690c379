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
export declare function isFiltered(events: readonly string[] | undefined, filter: unknown): boolean;
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
export declare class ChannelOrder {
    #private;
    channel: string | null;
    gapWaitMs: number;
    filteredGapWaitMs: number;
    filtered: boolean;
    maxPending: number;
    resumeTimeoutMs: number;
    tailCheckMs: number | null;
    /** When the last seq'd event, `subscribed` or `resumed` came. */
    heardAt: number | null;
    epoch: string | null;
    /** The last seq delivered (null: position unknown). */
    seq: number | null;
    /** The highest seq known to exist. */
    head: number | null;
    /** seq -> frame, arrived ahead of a gap. */
    pending: Map<number, EventFrame<"chat.created" | "chat.participant.joined" | "chat.message.stored" | "chat.turn.changed" | "chat.message.rejected" | "chat.typing.user" | "chat.typing.assistant" | "chat.completion.updated" | "chat.completion.ready" | "chat.settings.updated" | "chat.ai.requested" | "chat.ai.started" | "chat.ai.completed" | "chat.ai.failed" | "trip.created" | "trip.status.updated" | "trip.offer.created" | "booking.confirmed" | "booking.cancelled" | "connection.opened" | "connection.closed" | "presence.joined" | "presence.left" | "channel.occupied" | "channel.vacated">>;
    /** Seqs dropped from a full buffer, not held or delivered since. */
    dropped: Set<number>;
    /** A `subscribe` is out: hold frames until its answer. */
    awaitingAck: boolean;
    /** When the current gap (right after `seq`) opened. */
    gapSince: number | null;
    /** A resume is due now (`resumed` with `more`, buffer overflow). */
    urgentAt: number | null;
    /** A resume is in flight since then. */
    resumeSentAt: number | null;
    constructor({ channel, gapWaitMs, filteredGapWaitMs, filtered, maxPending, resumeTimeoutMs, tailCheckMs, }?: ChannelOrderOptions);
    /** Whether an event after `seq` is known to exist and has not been delivered. */
    get gap(): boolean;
    /** Whether a resume (or a subscribe with `resume`) is in flight. */
    get resuming(): boolean;
    /** How long a gap stays open before a resume. */
    get waitMs(): number;
    /**
     * A `subscribe` is about to be sent: returns the `resume` field it should carry (null
     * when the position is unknown), and holds early frames until the answer.
     */
    subscribing(now: number): {
        epoch: string;
        after: number;
    } | null;
    /** The `subscribe` failed (an `error` answer, a timeout, a closed connection). */
    subscribeFailed(now: number): void;
    /** The `resume` in flight failed: wait the gap wait again before the next one. */
    resumeFailed(now: number): void;
    /**
     * Takes any frame of this channel and returns what to hand to the application now, in
     * order: `event` frames, and `resync` frames (the server's, or one with reason
     * `epoch_changed` when events of a new epoch arrive) after which it refetches its state.
     */
    accept(f: ChannelFrame, now: number): Array<EventFrame | ResyncFrame>;
    /** When `tick` should next be called (a time like `now`), or null when nothing waits. */
    deadline(): number | null;
    /**
     * The `resume` frame to send now (without `id`), or null: when a gap has stayed open the
     * gap wait (at once after `resumed` with `more`) or the channel was quiet for
     * `tailCheckMs`; never while another is in flight (unless older than `resumeTimeoutMs`).
     */
    tick(now: number): ResumeRequest | null;
}
