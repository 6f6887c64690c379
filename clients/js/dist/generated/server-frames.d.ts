/**
 * Server → client.
 */
export type ServerFrame = {
    channel: string;
    epoch: string;
    id?: string | null;
    seq: number;
    type: "subscribed";
} | {
    channel: string;
    id?: string | null;
    type: "unsubscribed";
} | {
    channel: string;
    epoch?: string | null;
    event: Envelope;
    seq?: number | null;
    type: "event";
} | {
    channel: string;
    epoch: string;
    id?: string | null;
    more: boolean;
    replayed: number;
    seq: number;
    type: "resumed";
} | {
    channel: string;
    id?: string | null;
    reason: string;
    type: "resync";
} | {
    code: string;
    id?: string | null;
    message: string;
    type: "error";
} | {
    id?: string | null;
    type: "pong";
} | {
    channel: string;
    id?: string | null;
    members: Member[];
    occupancy: number;
    type: "presence";
};
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
export interface Actor {
    role?: string | null;
    userId: string;
}
/**
 * An event's place in one channel's log.
 */
export interface Position {
    channel: string;
    epoch: string;
    seq: number;
}
/**
 * One member: a user, with how many of their connections are subscribed.
 */
export interface Member {
    /**
     * When their earliest connection still here opened.
     */
    connectedAt: string;
    connections: number;
    displayName: string;
    role: string;
    userId: string;
}
