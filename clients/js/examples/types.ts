// Compile-time checks of the typing (the package test runs `tsc --noEmit` on this file):
// each `@ts-expect-error` must be an error, and every other line must type-check.
import { RealtimeClient, isEvent } from "@realtime-events/client";
import type { EventData, EventFrame, Matching, MessageStored, TripStatusMessage } from "@realtime-events/client";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const yes = <T extends true>(): T | undefined => undefined;

yes<Equal<Matching<"chat.message.*">, "chat.message.stored" | "chat.message.rejected">>();
yes<Equal<Matching<"chat.typing.*">, "chat.typing.user" | "chat.typing.assistant">>();
yes<Equal<Matching<"*.status.updated">, "trip.status.updated">>();
yes<Equal<Matching<"booking.**">, "booking.confirmed" | "booking.cancelled">>();
yes<Equal<Matching<"chat.created">, "chat.created">>();
yes<Equal<Matching<"nothing.*">, never>>();
yes<Equal<EventData<"chat.message.stored">, MessageStored>>();

export function check(rt: RealtimeClient, anyFrame: EventFrame, sse: TripStatusMessage) {
  void rt.subscribe("chat:C1", { events: ["chat.participant.*"] }, (f) => {
    const name: string = f.event.data.displayName;
    // @ts-expect-error: a participant has no `content`
    void f.event.data.content;
    void name;
  });
  void rt.subscribe("trip:T1", {}, (f) => {
    // Without patterns: every event type, told apart by `type`.
    if (f.event.type === "trip.status.updated") void f.event.data.newStatus;
    // @ts-expect-error: not every event has `newStatus`
    void f.event.data.newStatus;
  });
  if (isEvent(anyFrame, "booking.confirmed")) void anyFrame.event.data.seatsBooked;
  // @ts-expect-error: not a catalogue type
  void rt.subscribe("chat:C1", { events: ["chat.*"] }, (f: EventFrame<"trip.created">) => f);
  if (sse.type === "connected") void sse.currentStatus;
}
