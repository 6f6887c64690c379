// The Socket.IO 4 peer of the benchmark: what the seeds used, a room per channel and
// `io.to(room).emit(...)`, with default options. The same routes as the local stack:
// clients emit `subscribe` (acknowledged) to join a room; `POST /api/chat/{id}/messages`
// broadcasts the posted event to the room `chat:{id}` in an `event` frame.
"use strict";
const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.env.PORT || process.argv[2] || 3100);
let seq = 0;
// Every channel's epoch (the local stack's frames carry one; so do these, for equal sizes).
const epoch = "01SOCKETIOSOCKETIOSOCKETIO";

const server = http.createServer((req, res) => {
  const m = /^\/api\/chat\/([A-Za-z0-9_-]+)\/messages$/.exec(req.url || "");
  if (req.method !== "POST" || !m) {
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"error":{"code":"not_found"}}');
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let event;
    try {
      event = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end('{"error":{"code":"invalid_json"}}');
      return;
    }
    const channel = `chat:${m[1]}`;
    seq += 1;
    io.to(channel).emit("event", { type: "event", channel, seq, epoch, event });
    res.writeHead(201, { "content-type": "application/json" });
    res.end(JSON.stringify({ seq }));
  });
});

const io = new Server(server, { serveClient: false });
io.on("connection", (socket) => {
  socket.on("subscribe", (channel, ack) => {
    if (typeof channel !== "string") return;
    socket.join(channel);
    if (typeof ack === "function") ack({ type: "subscribed", channel, seq });
  });
});

server.listen(port, "127.0.0.1", () => {
  const version = require("socket.io/package.json").version;
  console.log(`socket.io ${version} (node ${process.version}) on http://127.0.0.1:${port}`);
});
process.on("SIGTERM", () => process.exit(0));
