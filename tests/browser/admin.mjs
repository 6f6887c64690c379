// The admin console in a real browser: Debian's Chromium driven by playwright-core.
// It opens /admin/events, gets an admin dev token through the page, and then this script
// makes traffic (a chat, a plain WebSocket subscriber to it, messages over the HTTP API)
// and reads the page's DOM: the events plot has points, the live tail shows the messages
// and its filter narrows them, the latency histogram has samples, the busiest channels
// show the chat with its subscriber. Then /admin/websocket: connections and deliveries.
// A screenshot of each page is saved for CI (also when the test fails).
//
//   node tests/browser/admin.mjs <base url> <admin-events.png> <admin-websocket.png>
import { createRequire } from "node:module";

// playwright-core lives in the project's tools folder (NODE_PATH), which only
// CommonJS resolution consults.
const { chromium } = createRequire(import.meta.url)("playwright-core");

const [base, shotEvents, shotWebSocket] = process.argv.slice(2);
if (!base || !shotEvents || !shotWebSocket) {
  console.error("usage: node admin.mjs <base url> <admin-events.png> <admin-websocket.png>");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// The page (and where its screenshot goes) to keep when the test fails.
let shown = null;
let shot = shotEvents;
const fail = async (msg) => {
  console.error(`admin console test failed: ${msg}`);
  if (shown) await shown.screenshot({ path: shot, fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
};
const started = Date.now();
const step = (what) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);

try {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await ctx.newPage();
  shown = page;
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  // A number the page shows, whatever its thousands separators.
  const figure = (sel) => page.$eval(sel, (el) => Number(el.textContent.replace(/[^\d.]/g, "") || NaN));
  const attr = (sel, name) => page.$eval(sel, (el, name) => Number(el.getAttribute(name)), name);

  await page.goto(`${base}/admin/events`);
  await page.click("#connect");
  await page.waitForSelector('#status[data-status="open"]', { timeout: 10000 });
  await page.waitForFunction(() => /\d/.test(document.querySelector("#ev-total").textContent), null, { timeout: 10000 });
  step("the console is connected and has polled");

  const api = async (path, token, body, method = "POST") => {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${base}/api${path}`, {
        method,
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });
      if (res.ok || attempt === 4) return { status: res.status, body: await res.json() };
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  };
  const token = (await api("/dev/token", null, { sub: "erin", roles: ["organizer"], name: "Erin" })).body.token;

  // A plain WebSocket subscriber, in a page of its own (no realtime.js): its connection's
  // `connection.opened` on the admin channel also says the console's subscription is live.
  const subPage = await (await browser.newContext()).newPage();
  await subPage.goto(`${base}/api/websocket/health`);
  await subPage.evaluate(async ({ url, token }) => {
    const ws = new WebSocket(url, ["realtime.v1", `bearer.${token}`]);
    window.frames_ = [];
    ws.onmessage = (m) => window.frames_.push(JSON.parse(m.data));
    await new Promise((ok, ko) => ((ws.onopen = ok), (ws.onerror = () => ko(new Error("subscriber socket failed")))));
    window.ws_ = ws;
  }, { url: `${base.replace(/^http/, "ws")}/ws`, token });
  await page.waitForSelector('#tail tr[data-type="connection.opened"]', { timeout: 10000 });
  step("the subscriber's connection.opened is in the live tail");

  const chat = await api("/chat", token, { title: "Admin console test", settings: { assistantEnabled: true, turnMode: "free" } });
  const chatId = chat.body.chatId;
  if (!chatId) await fail(`chat not created: ${JSON.stringify(chat)}`);
  const channel = `chat:${chatId}`;
  await subPage.evaluate((channel) => window.ws_.send(JSON.stringify({ action: "subscribe", id: "s1", channel, events: ["chat.**"] })), channel);
  await subPage.waitForFunction(() => window.frames_.some((f) => f.type === "subscribed" && f.id === "s1"), null, { timeout: 10000 });

  // Spread over a few polls (every 2 s), so the plot has a shape rather than one spike.
  const send = async (n, label) => {
    for (let i = 1; i <= n; i++) {
      const r = await api(`/chat/${chatId}/messages`, token, { content: `${label} ${i}`, clientMessageId: `${label.replace(/\W/g, "")}${i}` });
      if (r.status !== 201) await fail(`message ${i} answered ${r.status}: ${JSON.stringify(r.body)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await send(20, "admin console");
  step("20 messages sent");
  await subPage.waitForFunction(
    () => window.frames_.filter((f) => f.type === "event" && f.event.type === "chat.message.stored" && f.event.actor?.userId === "erin").length >= 20,
    null,
    { timeout: 10000 },
  );
  step("the subscriber got the 20 messages");

  // The events plot: points, a peak above zero, and a series for the messages.
  await page.waitForFunction(() => {
    const el = document.querySelector("#chart-events");
    return +el.dataset.points >= 2 && +el.dataset.peak > 1 && el.dataset.types.split(" ").includes("chat.message.stored");
  }, null, { timeout: 15000 });
  const eventsPlot = { points: await attr("#chart-events", "data-points"), peak: await attr("#chart-events", "data-peak") };
  if (!(await page.$("#chart-events canvas"))) await fail("the events plot has no canvas");
  if (!(await figure("#ev-peak") > 1)) await fail(`peak events/s shown: ${await page.textContent("#ev-peak")}`);

  // The live tail: the messages, and the filter narrows them (paused meanwhile, as the
  // assistant's replies are still coming).
  await page.waitForFunction(() => document.querySelectorAll('#tail tr[data-type="chat.message.stored"]').length >= 20, null, { timeout: 15000 });
  await page.check("#f-pause");
  const visible = () =>
    page.$$eval("#tail tbody tr.event", (rows) => rows.filter((r) => !r.hidden).map((r) => ({ type: r.dataset.type, channel: r.dataset.channel })));
  const all = await visible();
  await page.fill("#f-type", "message.stored");
  const messages = await visible();
  if (!(messages.length >= 20 && messages.length < all.length && messages.every((r) => r.type === "chat.message.stored")))
    await fail(`type filter: ${messages.length} of ${all.length} rows shown: ${JSON.stringify(messages.slice(0, 5))}`);
  if ((await figure("#tail-shown")) !== messages.length) await fail("the shown count disagrees with the rows");
  await page.fill("#f-type", "");
  await page.fill("#f-channel", chatId);
  const ofChat = await visible();
  if (!(ofChat.length >= 20 && ofChat.length < all.length && ofChat.every((r) => r.channel === channel)))
    await fail(`channel filter: ${ofChat.length} of ${all.length} rows shown`);
  await page.fill("#f-type", "no.such.type");
  if ((await visible()).length !== 0) await fail("a filter matching nothing shows rows");
  await page.fill("#f-type", "");
  await page.fill("#f-channel", "");
  await page.uncheck("#f-pause");
  // What came during the pause is there now: every event kept has its row.
  await page.waitForFunction(() => document.querySelector("#tail-shown").textContent === document.querySelector("#tail-kept").textContent, null, { timeout: 5000 });
  step(`live tail: ${all.length} rows; ${messages.length} by type, ${ofChat.length} by channel`);

  // The latency histogram (measured in the browser).
  await page.waitForFunction(() => +document.querySelector("#chart-latency").dataset.samples > 0, null, { timeout: 10000 });
  const samples = await attr("#chart-latency", "data-samples");
  const latency = await page.textContent("#lat-p");

  // The busiest channels: the chat, with its subscriber.
  await page.waitForFunction((ch) => +document.querySelector(`#busiest li[data-channel="${ch}"]`)?.dataset.subscriptions >= 1, channel, { timeout: 10000 });
  const busiest = await page.$$eval("#busiest li", (lis) => lis.map((li) => `${li.dataset.channel}=${li.dataset.events}/${li.dataset.subscriptions}`));
  // A few polls' worth of curve for the screenshot.
  await page.waitForFunction(() => +document.querySelector("#chart-events").dataset.points >= 3, null, { timeout: 10000 });
  await page.screenshot({ path: shotEvents, fullPage: true });
  step("events page checked and saved");

  // The WebSocket tab, opened by its route: the token is kept in the tab, so it reconnects.
  shot = shotWebSocket;
  await page.goto(`${base}/admin/websocket`);
  await page.waitForSelector('nav a[data-tab="websocket"][aria-selected="true"]');
  if (!(await page.isVisible("#chart-deliveries")) || (await page.isVisible("#chart-events"))) await fail("the websocket tab is not the one shown");
  await page.waitForSelector('#status[data-status="open"]', { timeout: 10000 });
  await page.waitForFunction(() => /\d/.test(document.querySelector("#ws-delivered").textContent), null, { timeout: 10000 });
  // More traffic once the page has its first counters, so deliveries/s rises on its plot.
  await send(15, "websocket tab");
  await page.waitForFunction(() => {
    const el = document.querySelector("#chart-deliveries");
    return +el.dataset.peak > 0 && +el.dataset.points >= 3;
  }, null, { timeout: 15000 });
  await page.waitForFunction(() => +document.querySelector("#chart-connections").dataset.points > 0, null, { timeout: 10000 });
  const connections = await figure("#ws-active");
  const delivered = await figure("#ws-delivered");
  if (!(connections >= 1)) await fail(`connections: ${connections}`);
  if (!(delivered > 0)) await fail(`deliveries: ${delivered}`);
  const deliveriesPeak = await attr("#chart-deliveries", "data-peak");
  await page.screenshot({ path: shotWebSocket, fullPage: true });
  step("websocket page checked and saved");

  if (pageErrors.length) await fail(`page errors: ${pageErrors.join("; ")}`);
  console.log(
    `admin console test passed in ${((Date.now() - started) / 1000).toFixed(1)} s: events plot ${eventsPlot.points} points, peak ${eventsPlot.peak} events/s; ` +
      `tail ${all.length} rows (${messages.length} messages); latency ${samples} samples, p50/p95 ${latency}; busiest ${busiest.join(", ")}; ` +
      `${connections} connections, ${delivered} deliveries, peak ${deliveriesPeak} deliveries/s; screenshots ${shotEvents}, ${shotWebSocket}`,
  );
} catch (e) {
  await fail(e.stack ?? String(e));
}
await browser.close();
