// The README's example: a chat's messages, typed, and a trip's status over SSE. The
// package test type-checks it (`tsc --noEmit`) in a fresh project that installed the
// packed tarball, as an application would.
import { RealtimeClient, followTripStatus } from "@realtime-events/client";

export async function follow(token: string, chatId: string, tripId: string) {
  const rt = new RealtimeClient({ url: "ws://127.0.0.1:3000/ws", token, onResync: (ch) => console.log("refetch", ch) });
  rt.connect();
  await rt.subscribe(`chat:${chatId}`, { events: ["chat.message.*"] }, (f) => {
    if (f.event.type === "chat.message.stored") console.log(f.seq, f.event.data.senderId, f.event.data.content);
    else console.log("rejected:", f.event.data.reason); // the only other chat.message.* type
  });
  followTripStatus({ baseUrl: "http://127.0.0.1:3000", tripId, token, onMessage: (m) => {
    if (m.type === "status_update") console.log(m.previousStatus, "->", m.newStatus);
  } });
}
