import type { EventFrame, Matching } from "./events.js";
import type { ResumedFrame, SubscribedFrame } from "./order.js";
/** What the connection is doing. */
export type Status = "connecting" | "open" | "reconnecting" | "closed";
/** An `error` frame: the answer to a refused request (`code`: `unauthorized`, `forbidden`, ...). */
export interface ErrorFrame {
    type: "error";
    id?: string | null;
    code: string;
    message: string;
}
/** The answer of a request that has one (`pong`, `unsubscribed`, ...). */
export interface AnswerFrame {
    type: string;
    id?: string | null;
    [key: string]: unknown;
}
/** The part of the WebSocket API the client uses (the browser's, or npm `ws` in Node). */
export interface WebSocketLike {
    readonly readyState: number;
    onopen: ((ev: unknown) => void) | null;
    onmessage: ((ev: {
        data: unknown;
    }) => void) | null;
    onclose: ((ev: unknown) => void) | null;
    onerror: ((ev: unknown) => void) | null;
    send(data: string): void;
    close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;
export interface ClientOptions {
    /** The WebSocket API's URL (`ws://127.0.0.1:3000/ws` locally, `wss://…/prod` on AWS). */
    url: string;
    /** A JWT; sent as the subprotocol `bearer.<token>` (browsers cannot set headers). */
    token: string;
    /** Defaults to `globalThis.WebSocket`; in Node before 22, pass npm `ws`'s `WebSocket`. */
    WebSocket?: WebSocketConstructor;
    onStatus?: (status: Status) => void;
    /** Events were missed that cannot be replayed: refetch the channel's state. */
    onResync?: (channel: string, reason: string) => void;
    /** An `error` frame nobody waited for, or a handler that threw. */
    onError?: (error: unknown) => void;
    /** The end of each replay. */
    onResumed?: (frame: ResumedFrame) => void;
    pingIntervalMs?: number;
    maxConnectionMs?: number;
    requestTimeoutMs?: number;
    /** Reconnect delays: full jitter under `baseMs · 2^attempt`, capped at `maxMs`. */
    backoff?: {
        baseMs: number;
        maxMs: number;
    };
    gapWaitMs?: number;
    filteredGapWaitMs?: number;
    maxPending?: number;
    tailCheckMs?: number | null;
}
/** A subscription's options: event-type patterns (`*` one segment, `**` any) and a content filter. */
export interface SubscribeOptions<P extends string> {
    events?: readonly P[];
    /** An EventBridge content pattern over the event's `data`, e.g. `{ senderId: [{ "anything-but": "me" }] }`. */
    filter?: Record<string, unknown>;
}
/** A client frame (`ClientFrame` in `generated/client-frames.ts` lists the server's). */
export type Request = {
    action: string;
    [key: string]: unknown;
};
export declare class RealtimeClient {
    #private;
    readonly url: string;
    token: string;
    status: Status;
    constructor(options: ClientOptions);
    /** Opens the connection (and keeps it open until `close`). */
    connect(): void;
    /** Closes for good: no reconnect (until `connect` again; subscriptions are kept). */
    close(): void;
    /**
     * Subscribes to a channel; `handler` gets each of its `event` frames once, in seq order
     * (`low` events, which have no seq, as they come), typed by the `events` patterns: with
     * `events: ["chat.message.*"]`, `frame.event.data` is a `MessageStored` or a
     * `MessageRejected` as `frame.event.type` says. Resolves with the `subscribed` answer;
     * rejects with the `error` frame. Called before the connection is open, it is sent when
     * it opens. The subscription survives reconnects.
     */
    subscribe<const P extends string = "**">(channel: string, options?: SubscribeOptions<P>, handler?: (frame: EventFrame<Matching<P>>) => void): Promise<SubscribedFrame>;
    /** Ends a subscription. */
    unsubscribe(channel: string): Promise<AnswerFrame>;
    /** Says that the user is (or stopped) typing in a chat (`chat.typing.user`, live only). */
    typing(chatId: string, isTyping: boolean): void;
    /** Sends any action frame as it is. Throws when not connected. */
    send(frame: Request): void;
    /** Sends an action frame with an `id` and resolves with its answer (rejects with an `error` frame). */
    request(frame: Request): Promise<AnswerFrame>;
    ping(): Promise<AnswerFrame>;
}
