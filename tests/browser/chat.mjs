// A real browser against the local stack: Debian's Chromium driven by playwright-core.
// Two browser contexts join one chat with the assistant on; one sends, the other sees it
// and the assistant's reply; the server drops
// the reader's socket, its indicator shows `reconnecting`, a message is sent meanwhile,
// and after the reconnect the reader has every message exactly once. A screenshot of
// the page (chat, trip tracker, admin view) is saved for CI.
//
//   node tests/browser/chat.mjs <base url> <screenshot.png>
import { createRequire } from "node:module";

// playwright-core lives in the project's tools folder (NODE_PATH), which only
// CommonJS resolution consults.
const { chromium } = createRequire(import.meta.url)("playwright-core");

const [base, screenshot] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error("usage: node chat.mjs <base url> <screenshot.png>");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// The page to screenshot when the test fails, so CI keeps what went wrong.
let shown = null;
const fail = async (msg) => {
  console.error(`browser test failed: ${msg}`);
  if (shown) await shown.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
};

try {
  async function signIn(user, roles) {
    const ctx = await browser.newContext({ viewport: { width: 1500, height: 900 } });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => console.error(`[${user}] page error: ${e.message}`));
    await page.goto(base);
    await page.fill("#user", user);
    await page.fill("#roles", roles);
    await page.click("#signin");
    await page.waitForSelector('#status[data-status="open"]', { timeout: 10000 });
    return page;
  }
  const messages = (page) => page.$$eval("#messages li", (els) => els.map((e) => ({ role: e.className, text: e.textContent })));
  const sees = (page, role, text) =>
    page.waitForFunction(
      ([role, text]) => [...document.querySelectorAll("#messages li")].some((li) => li.className === role && li.textContent.includes(text)),
      [role, text],
      { timeout: 10000 },
    );

  const alice = await signIn("alice", "organizer,admin");
  shown = alice;
  await alice.fill("#title", "Browser test");
  await alice.check("#assistant");
  await alice.selectOption("#turnmode", "free");
  await alice.click("#create");
  await alice.waitForFunction(() => document.querySelector("#chat-id").textContent.length > 5);
  const chatId = await alice.textContent("#chat-id");

  const bob = await signIn("bob", "passenger");
  await bob.fill("#chatid", chatId);
  await bob.click("#join");
  await bob.waitForFunction((id) => document.querySelector("#chat-id").textContent === id, chatId);

  await alice.waitForFunction(() => document.querySelector("#people").textContent.includes("bob"), null, { timeout: 10000 });
  // Presence: alice sees bob online (and herself).
  await alice.waitForFunction(() => /\bbob\b/.test(document.querySelector("#online").textContent), null, { timeout: 10000 });
  await alice.fill("#text", "hello from alice");
  await alice.press("#text", "Enter");
  await sees(bob, "user", "hello from alice");
  // The assistant answers in both tabs.
  await sees(bob, "assistant", 'you said: "hello from alice"');
  await sees(alice, "assistant", 'you said: "hello from alice"');

  // The server drops bob's socket: his indicator says so, then he comes back.
  const dropped = await (await fetch(`${base}/api/dev/drop`, { method: "POST", body: JSON.stringify({ userId: "bob" }) })).json();
  if (dropped.dropped < 1) await fail(`no socket dropped: ${JSON.stringify(dropped)}`);
  await bob.waitForSelector('#status[data-seen~="reconnecting"]', { timeout: 5000 });
  await alice.fill("#text", "sent while bob was away");
  await alice.press("#text", "Enter");
  await bob.waitForSelector('#status[data-status="open"]', { timeout: 15000 });
  await sees(bob, "user", "sent while bob was away");
  await sees(bob, "assistant", 'you said: "sent while bob was away"');

  await bob.fill("#text", "back again");
  await bob.press("#text", "Enter");
  await sees(alice, "user", "back again");
  await sees(alice, "assistant", 'you said: "back again"');
  await sees(bob, "assistant", 'you said: "back again"');

  // Every message, and every reply, exactly once in each tab.
  for (const [who, page] of [["alice", alice], ["bob", bob]]) {
    const seen = await messages(page);
    for (const w of ["hello from alice", "sent while bob was away", "back again"]) {
      const mine = seen.filter((m) => m.role === "user" && m.text.includes(w)).length;
      const replies = seen.filter((m) => m.role === "assistant" && m.text.includes(`you said: "${w}"`)).length;
      if (mine !== 1 || replies !== 1) await fail(`${who} saw "${w}" ${mine} times and its reply ${replies} times: ${JSON.stringify(seen)}`);
    }
  }
  const seen = await messages(bob);

  // The trip tracker: alice (organizer) tracks a trip over SSE while a driver takes it.
  const api = async (path, token, body, method = "POST") => {
    const res = await fetch(`${base}/api${path}`, {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    return res.json();
  };
  const aliceToken = (await api("/dev/token", null, { sub: "alice", roles: ["organizer", "admin"], name: "alice" })).token;
  const driverToken = (await api("/dev/token", null, { sub: "dave", roles: ["driver"], name: "Dave" })).token;
  const trip = await api("/trips", aliceToken, {
    title: "Airport run",
    tripType: "PRIVATE",
    status: "PUBLISHED",
    origin: { name: "Old Town", lat: 48.2082, lng: 16.3738 },
    destination: { name: "Airport", lat: 48.1103, lng: 16.5697 },
    departureTime: new Date(Date.now() + 3600e3).toISOString(),
    totalSeats: 3,
    pricePerSeat: 2500,
  });
  if (!trip.tripId) await fail(`trip not created: ${JSON.stringify(trip)}`);
  await alice.fill("#tripid", trip.tripId);
  await alice.click("#track");
  await alice.waitForFunction(() => document.querySelector("#trip-status").textContent === "PUBLISHED", null, { timeout: 10000 });
  await api(`/drivers/trips/accept/${trip.tripId}`, driverToken, {});
  await alice.waitForFunction(() => document.querySelector("#trip-status").textContent === "IN_PROGRESS", null, { timeout: 10000 });
  await api(`/drivers/trips/${trip.tripId}/status`, driverToken, { status: "DEPARTED", notes: "on our way" }, "PUT");
  await alice.waitForFunction(() => document.querySelector("#trip-status").textContent === "DEPARTED", null, { timeout: 10000 });

  // The client keeps itself alive: pings on its interval and, at its maximum connection
  // age (API Gateway's 2-hour cap, shortened here), reconnects on its own and resumes, so
  // messages sent across the refresh arrive once each, in order.
  const keepAlive = await alice.evaluate(async () => {
    const { RealtimeClient } = await import("/web/realtime/index.js");
    const post = async (path, token, body) =>
      (await fetch(`/api${path}`, { method: "POST", headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) })).json();
    const { token } = await post("/dev/token", null, { sub: "carol", roles: [], name: "carol" });
    const { chatId } = await post("/chat", token, { title: "keep-alive" });
    const statuses = [];
    let opened;
    const open = new Promise((r) => (opened = r));
    const rt = new RealtimeClient({
      url: `ws://${location.host}/ws`,
      token,
      onStatus: (s) => {
        statuses.push(s);
        if (s === "open") opened();
      },
      pingIntervalMs: 200,
      maxConnectionMs: 1500,
      backoff: { baseMs: 100, maxMs: 1000 },
    });
    let pings = 0;
    const send = rt.send.bind(rt);
    rt.send = (frame) => {
      if (frame.action === "ping") pings++;
      return send(frame);
    };
    rt.connect();
    await open;
    const got = [];
    await rt.subscribe(`chat:${chatId}`, { events: ["chat.message.stored"] }, (f) => got.push(f.event.data.content));
    const sent = [];
    for (let i = 1; i <= 6; i++) {
      const content = `keep-alive ${i}`;
      for (let attempt = 0; attempt < 20; attempt++) {
        const r = await fetch(`/api/chat/${chatId}/messages`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ content, clientMessageId: `ka${i}` }) });
        if (r.ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      sent.push(content);
      await new Promise((r) => setTimeout(r, 400));
    }
    const deadline = Date.now() + 8000;
    while (got.length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300)); // anything doubled would arrive by now
    rt.close();
    return { statuses, pings, sent, got };
  });
  const refreshed = keepAlive.statuses.indexOf("reconnecting", keepAlive.statuses.indexOf("open")) > 0;
  if (!refreshed || keepAlive.statuses.filter((s) => s === "open").length < 2) await fail(`no proactive reconnect: ${JSON.stringify(keepAlive)}`);
  if (keepAlive.pings < 3) await fail(`the client pinged ${keepAlive.pings} times in ~3 s at a 200 ms interval`);
  if (JSON.stringify(keepAlive.got) !== JSON.stringify(keepAlive.sent)) await fail(`across the refresh: ${JSON.stringify(keepAlive)}`);

  // The admin view counted live events, and shows the server's figures: pushes delivered,
  // and the chat's two subscribers (alice and bob) in its subscriptions per channel.
  await alice.waitForFunction(() => +document.querySelector("#n-messages").textContent >= 6, null, { timeout: 10000 });
  await alice.waitForFunction(() => +document.querySelector("#n-delivered").textContent > 0, null, { timeout: 10000 });
  await alice.waitForFunction(
    (ch) => {
      const li = document.querySelector(`#subs li[data-channel="${ch}"]`);
      const members = li?.querySelector(".members")?.textContent ?? "";
      return li?.querySelector(".n")?.textContent === "2" && /\balice\b/.test(members) && /\bbob\b/.test(members);
    },
    `chat:${chatId}`,
    { timeout: 10000 },
  );
  // Bob closes his tab: after the grace period alice sees him offline.
  await bob.context().close();
  await alice.waitForFunction(() => {
    const online = document.querySelector("#online").textContent;
    return /\balice\b/.test(online) && !/\bbob\b/.test(online);
  }, null, { timeout: 30000 });
  if (!/^\d+$/.test(await alice.textContent("#n-replayed"))) await fail("no replayed figure");
  await alice.screenshot({ path: screenshot, fullPage: true });
  console.log(
    `browser test passed: chat ${chatId}; bob saw ${seen.length} messages once each; trip ${trip.tripId} tracked to DEPARTED; ` +
      `keep-alive: ${keepAlive.pings} pings, statuses ${keepAlive.statuses.join(" > ")}, ${keepAlive.got.length} messages once each; screenshot ${screenshot}`,
  );
} catch (e) {
  await fail(e.stack ?? String(e));
}
await browser.close();
