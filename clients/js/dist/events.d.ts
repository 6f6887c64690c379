import type { DomainEvent } from "./generated/events.js";
import type { Envelope } from "./generated/envelope.js";
export type * from "./generated/events.js";
export type { Actor, Envelope, Position, Priority } from "./generated/envelope.js";
/** Every event type of the catalogue (`chat.message.stored`, `trip.status.updated`, ...). */
export type EventType = DomainEvent["type"];
/** The payload of one event type. */
export type EventData<T extends EventType> = Extract<DomainEvent, {
    type: T;
}>["data"];
/** An envelope whose `type` and `data` are one catalogue entry (a union over `T`). */
export type TypedEnvelope<T extends EventType = EventType> = T extends EventType ? Omit<Envelope, "type" | "data"> & {
    type: T;
    data: EventData<T>;
} : never;
/**
 * An `event` frame: the envelope, and where it stands in its channel's log (`seq` and
 * `epoch`; none for `low` events such as typing, which are live only).
 */
export interface EventFrame<T extends EventType = EventType> {
    type: "event";
    channel: string;
    seq?: number | null;
    epoch?: string | null;
    event: TypedEnvelope<T>;
}
type Segments<S extends string> = S extends `${infer H}.${infer R}` ? [H, ...Segments<R>] : [S];
type SegmentsMatch<P extends string[], T extends string[]> = P extends [
    infer Head extends string,
    ...infer Rest extends string[]
] ? Head extends "**" ? SegmentsMatch<Rest, T> extends true ? true : T extends [string, ...infer TRest extends string[]] ? SegmentsMatch<P, TRest> : false : T extends [infer THead extends string, ...infer TRest extends string[]] ? Head extends "*" | THead ? SegmentsMatch<Rest, TRest> : false : false : T extends [] ? true : false;
/**
 * The event types that the patterns `P` select: `Matching<"chat.message.*">` is
 * `"chat.message.stored" | "chat.message.rejected"`. A pattern only known as `string`
 * selects every type.
 */
export type Matching<P extends string> = string extends P ? EventType : {
    [T in EventType]: SegmentsMatch<Segments<P>, Segments<T>> extends true ? T : never;
}[EventType];
/** Whether `pattern` selects `eventType` (`*` one segment, `**` any number), as the server decides. */
export declare function typeMatches(pattern: string, eventType: string): boolean;
/** Narrows a frame to one event type: `if (isEvent(f, "chat.message.stored")) f.event.data.content`. */
export declare function isEvent<F extends {
    event: {
        type: string;
    };
}, T extends EventType>(frame: F, type: T): frame is F & EventFrame<T>;
