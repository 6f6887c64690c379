/**
 * What happens to an event: `low` is pushed but neither logged nor replayed.
 *
 * This interface was referenced by `Envelope`'s JSON-Schema
 * via the `definition` "Priority".
 */
export type Priority = "low" | "normal" | "high" | "critical";
/**
 * Every domain event, as published to EventBridge (`Detail`) and pushed to clients.
 */
export interface Envelope {
    actor?: Actor | null;
    causationId?: string | null;
    chatId?: string | null;
    correlationId: string;
    data?: {
        [k: string]: unknown | undefined;
    };
    id: string;
    occurredAt: string;
    /**
     * What happens to an event: `low` is pushed but neither logged nor replayed.
     */
    priority?: "low" | "normal" | "high" | "critical";
    /**
     * Where the event's source sequenced it: its seq on each logged channel. Set on the
     * bus only (the relay publishes it; the fan-out pushes with it and never sequences
     * again); pushed and logged events carry their seq in the frame or entry instead.
     */
    sequence?: Position[];
    /**
     * EventBridge `Source`: `realtime.<context>`.
     */
    source: string;
    tripId?: string | null;
    type: string;
    userId?: string | null;
    version: number;
}
/**
 * This interface was referenced by `Envelope`'s JSON-Schema
 * via the `definition` "Actor".
 */
export interface Actor {
    role?: string | null;
    userId: string;
}
/**
 * An event's place in one channel's log.
 *
 * This interface was referenced by `Envelope`'s JSON-Schema
 * via the `definition` "Position".
 */
export interface Position {
    channel: string;
    epoch: string;
    seq: number;
}
