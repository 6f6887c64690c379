// Following a trip's status over server-sent events (`GET /api/realtime/trip-status/{tripId}`)
// with `fetch`, so the token goes in the `Authorization` header (an `EventSource` can only
// put it in the URL) and the same code runs in browsers and in Node 18+. Each message is
// typed (`TripStatusMessage`, generated from specs/trip-status.schema.json). When the
// stream ends (the server closes it before Lambda's timeout) or breaks, it reconnects
// after the server's `retry:` advice with `Last-Event-ID`, so no `status_update` is missed
// or repeated.

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
  backoff?: { baseMs: number; maxMs: number };
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
export class StreamRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`trip-status stream refused: ${status}`);
  }
}

/** Follows a trip's status until `close()` (or a 4xx refusal). */
export function followTripStatus(options: TripStatusOptions): TripStatusStream {
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const { baseMs, maxMs } = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
  const onStatus = options.onStatus ?? (() => {});
  const onError = options.onError ?? (() => {});
  const abort = new AbortController();
  let lastEventId = options.lastEventId;
  let retryMs = 2000;
  let failures = 0;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      abort.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });

  async function once(): Promise<"ended" | "refused"> {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: "text/event-stream" };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    const url = `${options.baseUrl.replace(/\/$/, "")}/api/realtime/trip-status/${encodeURIComponent(options.tripId)}`;
    const res = await doFetch(url, { headers, signal: abort.signal, cache: "no-store" });
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
      const body = await res.json().catch(() => null);
      onError(new StreamRefused(res.status, body));
      return "refused";
    }
    if (!res.ok || !res.body) throw new Error(`trip-status stream answered ${res.status}`);
    onStatus("open");
    const parser = new SseParser();
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      failures = 0; // bytes came: the next reconnect is a fresh start
      for (const ev of parser.push(decoder.decode(value, { stream: true }))) {
        if (ev.retry != null) retryMs = ev.retry;
        if (ev.id != null) lastEventId = ev.id;
        if (ev.data == null) continue;
        let message: TripStatusMessage;
        try {
          message = JSON.parse(ev.data);
        } catch (e) {
          onError(e);
          continue;
        }
        try {
          options.onMessage(message);
        } catch (e) {
          onError(e);
        }
      }
    }
    return "ended";
  }

  const closed = (async () => {
    onStatus("connecting");
    while (!abort.signal.aborted) {
      let delay: number;
      try {
        if ((await once()) === "refused") break;
        delay = retryMs; // a normal end: the server's advice
      } catch (e) {
        if (abort.signal.aborted) break;
        onError(e);
        delay = Math.random() * Math.min(maxMs, baseMs * 2 ** failures++);
      }
      if (abort.signal.aborted) break;
      onStatus("reconnecting");
      await sleep(delay);
    }
    onStatus("closed");
  })();

  return {
    close: () => abort.abort(),
    get lastEventId() {
      return lastEventId;
    },
    closed,
  };
}

/** One dispatched server-sent event (fields as the SSE spec defines them). */
export interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
}

/** An incremental `text/event-stream` parser (the HTML spec's rules, bounded lines). */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event: SseEvent = {};
  static readonly MAX_LINE = 1 << 20;

  /** Feeds decoded text; returns the events it completed. */
  push(text: string): SseEvent[] {
    this.#buffer += text;
    const out: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buffer);
      if (!m) break;
      // A lone `\r` at the end may be the first half of `\r\n`: wait for more.
      if (m[0] === "\r" && m.index === this.#buffer.length - 1) break;
      const line = this.#buffer.slice(0, m.index);
      this.#buffer = this.#buffer.slice(m.index + m[0].length);
      this.#line(line, out);
    }
    if (this.#buffer.length > SseParser.MAX_LINE) throw new Error("server-sent event line too long");
    return out;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === "") {
      const ev = this.#event;
      if (this.#data.length) ev.data = this.#data.join("\n");
      if (ev.data != null || ev.id != null || ev.retry != null) out.push(ev);
      this.#data = [];
      this.#event = {};
      return;
    }
    if (line.startsWith(":")) return; // a comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.#event.id = value;
        break;
      case "event":
        this.#event.event = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.#event.retry = Number(value);
        break;
    }
  }
}
