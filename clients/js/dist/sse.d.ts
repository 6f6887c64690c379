import type { TripStatusMessage } from "./generated/trip-status.js";
export type { TripStatus, TripStatusMessage } from "./generated/trip-status.js";
export interface TripStatusOptions {
    /** The HTTP API's base URL: `http://127.0.0.1:3000` locally (the path `/api/realtime/…` is added). */
    baseUrl: string;
    tripId: string;
    token: string;
    /** Resume after this SSE id (a channel seq), e.g. one kept from an earlier page load. */
    lastEventId?: string;
    onMessage: (message: TripStatusMessage) => void;
    onStatus?: (status: "connecting" | "open" | "reconnecting" | "closed") => void;
    /** A refusal (`{status, body}` for a 4xx: no retry) or a broken stream (retried). */
    onError?: (error: unknown) => void;
    /** Defaults to `globalThis.fetch`. */
    fetch?: typeof fetch;
    /** Reconnect delays after failures: full jitter under `baseMs · 2^attempt`, capped. */
    backoff?: {
        baseMs: number;
        maxMs: number;
    };
}
export interface TripStatusStream {
    /** Stops for good. */
    close(): void;
    /** The last SSE id received (the seq of the last `status_update`, or `connected`'s). */
    readonly lastEventId: string | undefined;
    /** Resolves when the stream is closed (by `close` or a refusal). */
    readonly closed: Promise<void>;
}
/** The refusal of a stream before it started (a 4xx with the API's JSON error). */
export declare class StreamRefused extends Error {
    readonly status: number;
    readonly body: unknown;
    constructor(status: number, body: unknown);
}
/** Follows a trip's status until `close()` (or a 4xx refusal). */
export declare function followTripStatus(options: TripStatusOptions): TripStatusStream;
/** One dispatched server-sent event (fields as the SSE spec defines them). */
export interface SseEvent {
    id?: string;
    event?: string;
    data?: string;
    retry?: number;
}
/** An incremental `text/event-stream` parser (the HTML spec's rules, bounded lines). */
export declare class SseParser {
    #private;
    static readonly MAX_LINE: number;
    /** Feeds decoded text; returns the events it completed. */
    push(text: string): SseEvent[];
}
