// @realtime-events/client: the realtime event system's client for browsers and Node.
//
//   import { RealtimeClient } from "@realtime-events/client";
//   const rt = new RealtimeClient({ url: "ws://127.0.0.1:3000/ws", token });
//   rt.connect();
//   await rt.subscribe("chat:C1", { events: ["chat.message.*"] }, (f) => {
//     if (f.event.type === "chat.message.stored") show(f.event.data.content); // typed
//   });
export { RealtimeClient } from "./client.js";
export { ChannelOrder, isFiltered } from "./order.js";
export { isEvent, typeMatches } from "./events.js";
export { SseParser, StreamRefused, followTripStatus } from "./sse.js";
