// The WebSocket client: connects with the token as a subprotocol, subscribes with event
// patterns and content filters, and hands each channel's events to the application in
// `seq` order, each once (`ChannelOrder`), across reconnects: it reconnects with capped
// exponential backoff and full jitter, resubscribes every channel with `resume` from the
// last seq it delivered, pings under API Gateway's 10-minute idle timeout and reconnects
// on its own before API Gateway's 2-hour connection cap.
import { ChannelOrder, isFiltered } from "./order.js";
const PROTOCOL = "realtime.v1";
const OPEN = 1;
export class RealtimeClient {
    url;
    token;
    status = "closed";
    #opts;
    #WebSocket;
    #ws = null;
    #attempt = 0;
    #nextId = 0;
    #pending = new Map();
    #channels = new Map();
    #timers = [];
    #closedByUser = false;
    constructor(options) {
        const ws = options.WebSocket ?? globalThis.WebSocket;
        if (!ws)
            throw new Error("no WebSocket: pass one (npm `ws` in Node before 22) as `WebSocket`");
        this.#WebSocket = ws;
        this.url = options.url;
        this.token = options.token;
        this.#opts = {
            onStatus: options.onStatus ?? (() => { }),
            onResync: options.onResync ?? (() => { }),
            onError: options.onError ?? (() => { }),
            onResumed: options.onResumed ?? (() => { }),
            pingIntervalMs: options.pingIntervalMs ?? 5 * 60 * 1000,
            maxConnectionMs: options.maxConnectionMs ?? 110 * 60 * 1000,
            requestTimeoutMs: options.requestTimeoutMs ?? 10 * 1000,
            backoff: options.backoff ?? { baseMs: 300, maxMs: 30 * 1000 },
            gapWaitMs: options.gapWaitMs ?? 1000,
            filteredGapWaitMs: options.filteredGapWaitMs ?? 150,
            maxPending: options.maxPending ?? 10000,
            tailCheckMs: options.tailCheckMs === undefined ? 5 * 60 * 1000 : options.tailCheckMs,
        };
    }
    /** Opens the connection (and keeps it open until `close`). */
    connect() {
        this.#closedByUser = false;
        this.#open();
    }
    /** Closes for good: no reconnect (until `connect` again; subscriptions are kept). */
    close() {
        this.#closedByUser = true;
        for (const sub of this.#channels.values()) {
            for (const w of sub.waiting.splice(0))
                w.reject(new Error("closed"));
        }
        this.#clearTimers();
        this.#ws?.close(1000, "bye");
        this.#setStatus("closed");
    }
    /**
     * Subscribes to a channel; `handler` gets each of its `event` frames once, in seq order
     * (`low` events, which have no seq, as they come), typed by the `events` patterns: with
     * `events: ["chat.message.*"]`, `frame.event.data` is a `MessageStored` or a
     * `MessageRejected` as `frame.event.type` says. Resolves with the `subscribed` answer;
     * rejects with the `error` frame. Called before the connection is open, it is sent when
     * it opens. The subscription survives reconnects.
     */
    subscribe(channel, options = {}, handler = () => { }) {
        const { events = [], filter } = options;
        const sub = this.#channels.get(channel) ?? {
            order: new ChannelOrder({
                channel,
                gapWaitMs: this.#opts.gapWaitMs,
                filteredGapWaitMs: this.#opts.filteredGapWaitMs,
                maxPending: this.#opts.maxPending,
                resumeTimeoutMs: this.#opts.requestTimeoutMs,
                tailCheckMs: this.#opts.tailCheckMs,
            }),
            gapTimer: null,
            events,
            handler: () => { },
            waiting: [],
        };
        sub.events = events;
        sub.filter = filter;
        sub.handler = handler;
        sub.order.filtered = isFiltered(events, filter);
        this.#channels.set(channel, sub);
        if (this.#ws?.readyState !== OPEN) {
            // Sent (with any resume) when the connection opens.
            return new Promise((resolve, reject) => sub.waiting.push({ resolve, reject }));
        }
        return this.#sendSubscribe(channel, sub);
    }
    /** Ends a subscription. */
    unsubscribe(channel) {
        const sub = this.#channels.get(channel);
        if (sub?.gapTimer)
            clearTimeout(sub.gapTimer);
        this.#channels.delete(channel);
        return this.#request({ action: "unsubscribe", channel });
    }
    /** Says that the user is (or stopped) typing in a chat (`chat.typing.user`, live only). */
    typing(chatId, isTyping) {
        this.send({ action: "typing", chatId, isTyping });
    }
    /** Sends any action frame as it is. Throws when not connected. */
    send(frame) {
        if (this.#ws?.readyState !== OPEN)
            throw new Error("not connected");
        this.#ws.send(JSON.stringify(frame));
    }
    /** Sends an action frame with an `id` and resolves with its answer (rejects with an `error` frame). */
    request(frame) {
        return this.#request(frame);
    }
    ping() {
        return this.#request({ action: "ping" });
    }
    // ---- internals
    #setStatus(s) {
        if (this.status !== s) {
            this.status = s;
            this.#opts.onStatus(s);
        }
    }
    #open() {
        this.#clearTimers();
        this.#setStatus(this.#attempt === 0 && this.status !== "reconnecting" ? "connecting" : "reconnecting");
        const ws = new this.#WebSocket(this.url, [PROTOCOL, `bearer.${this.token}`]);
        this.#ws = ws;
        ws.onopen = () => {
            this.#attempt = 0;
            this.#setStatus("open");
            for (const [channel, sub] of this.#channels) {
                this.#sendSubscribe(channel, sub).catch((e) => this.#opts.onError(e));
            }
            this.#timers.push(setInterval(() => this.ping().catch(() => { }), this.#opts.pingIntervalMs));
            // API Gateway ends every connection at 2 hours: leave a little before, on our terms.
            this.#timers.push(setTimeout(() => this.#reconnect(), this.#opts.maxConnectionMs));
        };
        ws.onmessage = (m) => this.#onFrame(String(m.data));
        ws.onclose = () => {
            if (this.#ws !== ws)
                return;
            this.#rejectPending();
            if (this.#closedByUser)
                return this.#setStatus("closed");
            this.#scheduleReconnect();
        };
        ws.onerror = () => { }; // onclose follows and decides
    }
    #reconnect() {
        const old = this.#ws;
        this.#ws = null;
        // Its answers will not come: fail what waits for them now, not at their timeouts.
        this.#rejectPending();
        old?.close(1000, "refresh");
        this.#scheduleReconnect();
    }
    #rejectPending() {
        for (const [, p] of this.#pending) {
            clearTimeout(p.timer);
            p.reject(new Error("connection closed"));
        }
        this.#pending.clear();
    }
    #scheduleReconnect() {
        this.#clearTimers();
        this.#setStatus("reconnecting");
        const { baseMs, maxMs } = this.#opts.backoff;
        const ceiling = Math.min(maxMs, baseMs * 2 ** this.#attempt++);
        // Full jitter: clients dropped together do not come back together.
        const delay = Math.random() * ceiling;
        this.#timers.push(setTimeout(() => this.#open(), delay));
    }
    #clearTimers() {
        for (const t of this.#timers) {
            clearTimeout(t);
            clearInterval(t);
        }
        this.#timers = [];
        // A gap timer only sends on an open socket; the resubscribe after a reconnect resumes.
        for (const sub of this.#channels.values())
            if (sub.gapTimer)
                clearTimeout(sub.gapTimer);
    }
    #sendSubscribe(channel, sub) {
        const frame = { action: "subscribe", channel };
        if (sub.events.length)
            frame.events = [...sub.events];
        if (sub.filter)
            frame.filter = sub.filter;
        // From the last delivered seq, when there is one: the replay comes before the answer.
        const resume = sub.order.subscribing(Date.now());
        if (resume)
            frame.resume = resume;
        const waiting = sub.waiting.splice(0);
        return this.#request(frame).then((answer) => {
            const ack = answer;
            for (const w of waiting)
                w.resolve(ack);
            return ack;
        }, (e) => {
            sub.order.subscribeFailed(Date.now());
            this.#pump(channel, sub);
            for (const w of waiting)
                w.reject(e);
            throw e;
        });
    }
    #request(frame) {
        const id = `r${++this.#nextId}`;
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.#pending.delete(id);
                reject(new Error(`${frame.action} timed out`));
            }, this.#opts.requestTimeoutMs);
            this.#pending.set(id, { resolve, reject, timer });
            try {
                this.send({ ...frame, id });
            }
            catch (e) {
                clearTimeout(timer);
                this.#pending.delete(id);
                reject(e);
            }
        });
    }
    #settle(id, ok, value) {
        const p = id == null ? undefined : this.#pending.get(id);
        if (!p || id == null)
            return false;
        clearTimeout(p.timer);
        this.#pending.delete(id);
        if (ok)
            p.resolve(value);
        else
            p.reject(value);
        return true;
    }
    #onFrame(text) {
        let f;
        try {
            f = JSON.parse(text);
        }
        catch {
            return;
        }
        if (f == null || typeof f !== "object")
            return;
        switch (f.type) {
            case "event":
                this.#deliver(f);
                return;
            case "subscribed":
                this.#deliver(f);
                this.#settle(f.id, true, f);
                return;
            case "resumed":
                this.#opts.onResumed(f);
                this.#deliver(f);
                this.#settle(f.id, true, f);
                return;
            case "resync": {
                const r = f;
                if (!this.#channels.has(r.channel))
                    this.#opts.onResync(r.channel, r.reason);
                this.#deliver(r);
                this.#settle(f.id, true, f);
                return;
            }
            case "error":
                if (!this.#settle(f.id, false, f))
                    this.#opts.onError(f);
                return;
            default:
                this.#settle(f.id, true, f);
        }
    }
    /** Runs a channel's frame through its order and hands over what is ready, in order. */
    #deliver(f) {
        const sub = this.#channels.get(f.channel);
        if (!sub)
            return;
        for (const g of sub.order.accept(f, Date.now())) {
            try {
                if (g.type === "resync")
                    this.#opts.onResync(g.channel, g.reason);
                else
                    sub.handler(g);
            }
            catch (e) {
                this.#opts.onError(e); // one failing handler call must not lose the frames after it
            }
        }
        this.#pump(f.channel, sub);
    }
    /** Sends the channel's resume if one is due, and sets its gap timer for the next. */
    #pump(channel, sub) {
        if (sub.gapTimer)
            clearTimeout(sub.gapTimer);
        sub.gapTimer = null;
        if (this.#channels.get(channel) !== sub || this.#ws?.readyState !== OPEN)
            return;
        const now = Date.now();
        const resume = sub.order.tick(now);
        if (resume) {
            this.#request(resume).catch((e) => {
                sub.order.resumeFailed(Date.now());
                this.#opts.onError(e);
                this.#pump(channel, sub);
            });
        }
        const at = sub.order.deadline();
        if (at != null)
            sub.gapTimer = setTimeout(() => this.#pump(channel, sub), Math.max(0, at - now));
    }
}
