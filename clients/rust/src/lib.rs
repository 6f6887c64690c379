//! A Rust client of the realtime event system (see API.md): a reconnecting WebSocket
//! client that hands each channel's events to the application in `seq` order, each once,
//! typed with the server's own event definitions, plus a JSON HTTP client and an SSE reader.
//!
//! * [`Client`] connects with a token, keeps its [`Subscription`]s, reconnects with
//!   [`Backoff`] (exponential, full jitter, capped) and resubscribes each channel with
//!   `resume` from the last seq it handed over, so nothing is lost or doubled across a
//!   reconnect. It reports [`Status`] changes, surfaces `resync`s, pings under API
//!   Gateway's 10-minute idle timeout and replaces its connection before the 2-hour cap.
//!   The application reads [`Item`]s from [`Events`].
//! * [`EventFrame`] is an `event` frame with its [`Envelope`]; [`EventFrame::typed`] gives
//!   the [`Event`] enum of `realtime-domain` (the catalogue the server publishes from), so
//!   a match on `Event::MessageStored(m)` is checked by the compiler. The payload types are
//!   in [`payloads`], the whole domain crate under [`domain`].
//! * [`ChannelOrder`] is the ordering logic on its own, without a socket (the browser
//!   client's `ChannelOrder` does the same; `clients/conformance/ordering.json` holds both
//!   to it).
//! * [`WsClient`] is a plain socket speaking the frames (the end-to-end tests use it);
//!   [`Http`] the JSON HTTP API; [`SseClient`] a `text/event-stream` answer.
//!
//! ```no_run
//! use realtime_client::{Client, Event, Item, Subscription};
//!
//! # async fn run(token: String) -> Result<(), realtime_client::ClientError> {
//! let (client, mut items) = Client::connect("ws://127.0.0.1:3000/ws", token);
//! client.subscribe(Subscription::new("chat:C1").events(["chat.**"])).await?;
//! while let Some(item) = items.recv().await {
//!     match item {
//!         // Each channel's events in seq order, each once, across reconnects.
//!         Item::Event(frame) => match frame.typed() {
//!             Some(Event::MessageStored(m)) => println!("#{:?} {}: {}", frame.seq, m.sender_id, m.content),
//!             Some(other) => println!("#{:?} {}", frame.seq, other.event_type()),
//!             None => println!("an event type this build does not know: {}", frame.event.event_type),
//!         },
//!         Item::Resync { channel, reason } => println!("{channel}: {reason}, refetch its state"),
//!         Item::Status(status) => println!("{status:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! With [`WsClient`], raw frames come from [`WsClient::next`]. For a channel's events in `seq` order, each
//! once, subscribe with [`WsClient::subscribe_ordered`] and read with
//! [`WsClient::next_event_in_order`]: it holds events that arrive ahead of a gap and sends
//! a `resume` when a gap stays open (the logic on its own, without a socket, is
//! [`ChannelOrder`]). A subscription with `events` patterns gets only some of the
//! channel's seqs: its gaps wait the shorter filtered gap wait
//! ([`ChannelOrder::with_filtered_gap_wait`]), and the `resumed` answer closes them.

#![warn(missing_docs)]

mod client;

pub use client::{
    Backoff, Client, ClientBuilder, ClientError, Events, Item, Status, Subscribed, Subscription, DEFAULT_MAX_CONNECTION_AGE,
    DEFAULT_PING_INTERVAL, DEFAULT_QUEUE, DEFAULT_REQUEST_TIMEOUT, PROTOCOL,
};
/// The server's domain crate: events, payloads, channels, frames, ids.
pub use realtime_domain as domain;
pub use realtime_domain::events::{Actor, ConnectionChanged, Envelope, Event, Position, Priority, EVENT_TYPES};

/// The typed payloads (`data`) of the events, as [`Event`]'s variants carry them, and the
/// value types they use.
pub mod payloads {
    pub use realtime_domain::chat::payloads::*;
    pub use realtime_domain::chat::ChatSettings;
    pub use realtime_domain::trips::payloads::*;
    pub use realtime_domain::trips::{Place, TripStatus, TripType};
}

/// An `event` frame (`{"type":"event","channel","seq","epoch","event"}`) with its envelope
/// parsed; [`typed`](Self::typed) gives the payload as an [`Event`].
///
/// ```
/// use realtime_client::{Event, EventFrame};
/// let frame = serde_json::json!({
///     "type": "event", "channel": "chat:C1", "seq": 7, "epoch": "E1",
///     "event": {
///         "id": "01JF0000000000000000000000", "type": "chat.message.stored", "version": 1,
///         "occurredAt": "2026-01-01T00:00:00Z", "correlationId": "c1", "source": "realtime.chat",
///         "chatId": "C1",
///         "data": {"id": "M1", "chatId": "C1", "senderId": "alice", "senderRole": "organizer",
///                  "content": "hello", "createdAt": "2026-01-01T00:00:00Z"}
///     }
/// });
/// let frame = EventFrame::from_value(frame).expect("an event frame");
/// assert_eq!((frame.channel.as_str(), frame.seq), ("chat:C1", Some(7)));
/// match frame.typed() {
///     Some(Event::MessageStored(m)) => assert_eq!(m.content, "hello"),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EventFrame {
    /// The channel it came on.
    pub channel: String,
    /// Its place in the channel's log; None for events of priority `low` (not logged).
    pub seq: Option<u64>,
    /// The epoch of the channel's log the seq belongs to.
    pub epoch: Option<String>,
    /// The event.
    pub event: Envelope,
}

impl EventFrame {
    /// Parses an `event` frame; gives the frame back when it is not one or its envelope
    /// does not parse.
    pub fn from_value(frame: Value) -> Result<Self, Value> {
        let channel = match (frame["type"].as_str(), frame["channel"].as_str()) {
            (Some("event"), Some(ch)) => ch.to_string(),
            _ => return Err(frame),
        };
        // From a reference: a frame that does not parse goes back whole.
        let event = match <Envelope as serde::Deserialize>::deserialize(&frame["event"]) {
            Ok(e) => e,
            Err(_) => return Err(frame),
        };
        Ok(Self {
            channel,
            seq: frame["seq"].as_u64(),
            epoch: frame["epoch"].as_str().map(str::to_string),
            event,
        })
    }

    /// The typed payload, when the event's type is one this build knows
    /// ([`Envelope::typed`]).
    pub fn typed(&self) -> Option<Event> {
        self.event.typed()
    }
}

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A JSON client of the HTTP API (`/api/*`), e.g. `Http::new("http://127.0.0.1:3000")`.
/// Clones share one connection pool.
#[derive(Clone)]
pub struct Http {
    /// The base URL the paths are appended to.
    pub base: String,
    client: reqwest::Client,
}

impl Http {
    /// A client of the API at `base` (no trailing slash).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            },
        ))
    }

    /// A POST with a JSON body; the status and the JSON answer.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::POST, path, token, Some(body)).await
    }

    /// A GET; the status and the JSON answer.
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    /// A PUT with a JSON body; the status and the JSON answer.
    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::PUT, path, token, Some(body)).await
    }

    /// A GET whose answer is not JSON: the status, the content type and the text.
    pub async fn get_text(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, String, String)> {
        let mut req = self.client.get(format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok((status, content_type, resp.text().await?))
    }

    /// A token from the local stack's `POST /api/dev/token`.
    pub async fn dev_token(&self, sub: &str, roles: &[&str]) -> anyhow::Result<String> {
        let (status, body) = self
            .post("/api/dev/token", None, &json!({"sub": sub, "roles": roles, "name": sub}))
            .await?;
        anyhow::ensure!(status == 200, "dev token: {status} {body}");
        Ok(body["token"].as_str().unwrap_or_default().to_string())
    }
}

/// A plain WebSocket connection speaking API.md's frames, without reconnects (the tests
/// use it to see exactly what the server sends; applications want [`Client`]).
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
    /// The channels subscribed with [`WsClient::subscribe_ordered`]: their order and the
    /// frames ready for the caller.
    ordered: HashMap<String, Ordered>,
    /// Frames read while waiting for ordered events that were not theirs, for `next`.
    backlog: VecDeque<Value>,
    /// The `resume` requests in flight: request id -> channel.
    resumes: HashMap<String, String>,
    next_resume: u64,
}

struct Ordered {
    order: ChannelOrder,
    ready: VecDeque<Value>,
}

impl Ordered {
    fn new(order: ChannelOrder) -> Self {
        Self {
            order,
            ready: VecDeque::new(),
        }
    }
}

/// What one read of the socket gave.
enum Read {
    Text(String),
    Timeout,
    Closed,
}

/// At most this many frames wait in the backlog (the oldest go first).
const MAX_BACKLOG: usize = 10_000;

/// How the token travels on connect.
#[derive(Debug, Clone, Copy)]
pub enum TokenIn {
    /// `Sec-WebSocket-Protocol: realtime.v1, bearer.<token>` (what browsers can send).
    Subprotocol,
    /// `?token=<token>` in the URL.
    Query,
}

impl WsClient {
    /// Opens a connection to `url` (`ws://…/ws`) with the token (if any) sent `how`.
    pub async fn connect(url: &str, token: Option<&str>, how: TokenIn) -> anyhow::Result<Self> {
        let url = match (token, how) {
            (Some(t), TokenIn::Query) => format!("{url}?token={t}"),
            _ => url.to_string(),
        };
        let mut req = url.into_client_request()?;
        let protocols = match (token, how) {
            (Some(t), TokenIn::Subprotocol) => format!("realtime.v1, bearer.{t}"),
            _ => "realtime.v1".into(),
        };
        req.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_str(&protocols)?);
        let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
        let protocol = resp
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Self {
            ws,
            protocol,
            ordered: HashMap::new(),
            backlog: VecDeque::new(),
            resumes: HashMap::new(),
            next_resume: 0,
        })
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: &Value) -> anyhow::Result<()> {
        self.ws.send(Message::Text(frame.to_string().into())).await?;
        Ok(())
    }

    /// Sends a text frame as it is (say, one that is not valid JSON).
    pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
        self.ws.send(Message::Text(text.to_string().into())).await?;
        Ok(())
    }

    /// The next JSON frame, or None when the socket closed or nothing came in time. Frames
    /// that [`WsClient::next_event_in_order`] read but did not take come first; frames of
    /// ordered channels read here bypass their order.
    pub async fn next(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(f) = self.backlog.pop_front() {
            return Some(f);
        }
        match self.read(timeout).await {
            Read::Text(t) => serde_json::from_str(&t).ok(),
            Read::Timeout | Read::Closed => None,
        }
    }

    async fn read(&mut self, timeout: Duration) -> Read {
        loop {
            match tokio::time::timeout(timeout, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => return Read::Text(t.to_string()),
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => return Read::Closed,
                Err(_) => return Read::Timeout,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next frame for which `pred` holds (others are skipped), within `timeout`.
    pub async fn next_where(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(f) if pred(&f) => return Ok(f),
                Some(_) => continue,
                None => anyhow::bail!("no matching frame within {timeout:?}"),
            }
        }
    }

    /// Every frame until (and with) the first for which `pred` holds, within `timeout`.
    pub async fn collect_until(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(f) => {
                    let done = pred(&f);
                    frames.push(f);
                    if done {
                        return Ok(frames);
                    }
                }
                None => anyhow::bail!("no matching frame within {timeout:?}; got {} frames: {frames:?}", frames.len()),
            }
        }
    }

    /// Subscribes and waits for the `subscribed` (or `error`) answer to it.
    pub async fn subscribe(&mut self, id: &str, channel: &str, events: &[&str]) -> anyhow::Result<Value> {
        self.send(&json!({"action": "subscribe", "id": id, "channel": channel, "events": events}))
            .await?;
        self.next_where(Duration::from_secs(5), |f| f["id"] == id).await
    }

    /// Subscribes to `channel` and orders its events from then on (read them with
    /// [`WsClient::next_event_in_order`]); `gap_wait` is how long a gap may stay open
    /// before a `resume` is sent. With `events` patterns (other than none or `["**"]`) the
    /// subscription is filtered: gaps are normal and wait the order's filtered gap wait
    /// ([`DEFAULT_FILTERED_GAP_WAIT`] here; configure it with
    /// [`WsClient::subscribe_ordered_with`]). The order lives as long as this client; subscribing
    /// again to an ordered channel (say, with other event patterns) carries `resume` from
    /// the last event handed over. Returns the answer, `subscribed` or `error`; events that
    /// arrive before it are kept, in order.
    pub async fn subscribe_ordered(&mut self, id: &str, channel: &str, events: &[&str], gap_wait: Duration) -> anyhow::Result<Value> {
        if !self.ordered.contains_key(channel) {
            self.ordered.insert(
                channel.to_string(),
                Ordered::new(ChannelOrder::new(channel).with_gap_wait(gap_wait)),
            );
        }
        self.subscribe_ordering(id, channel, events).await
    }

    /// [`WsClient::subscribe_ordered`] with a configured order (gap wait, buffer, resume
    /// timeout) for its channel, which replaces any order the channel had on this client.
    /// An order that has a position (say, one that ordered the channel on a connection
    /// that closed) subscribes with `resume` from it.
    pub async fn subscribe_ordered_with(&mut self, id: &str, order: ChannelOrder, events: &[&str]) -> anyhow::Result<Value> {
        let channel = order.channel().to_string();
        self.ordered.insert(channel.clone(), Ordered::new(order));
        self.subscribe_ordering(id, &channel, events).await
    }

    async fn subscribe_ordering(&mut self, id: &str, channel: &str, events: &[&str]) -> anyhow::Result<Value> {
        let now = Instant::now();
        let o = self.ordered.get_mut(channel).expect("the channel's order was just set");
        o.order.set_filtered(is_filtered(events, None));
        let mut frame = json!({"action": "subscribe", "id": id, "channel": channel, "events": events});
        if let Some(resume) = o.order.subscribing(now) {
            frame["resume"] = resume;
        }
        let sent = self.send(&frame).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut answer = None;
        while sent.is_ok() {
            let Read::Text(t) = self.read(deadline.saturating_duration_since(Instant::now())).await else {
                break;
            };
            let Ok(f) = serde_json::from_str::<Value>(&t) else {
                continue;
            };
            if f["id"] != id {
                if let Some(f) = self.route(f, Instant::now()) {
                    self.keep(f);
                }
            } else if f["type"] == "subscribed" {
                self.route(f.clone(), Instant::now());
                return Ok(f);
            } else {
                answer = Some(f);
                break;
            }
        }
        // Refused, or no answer: a channel that never had a position is not ordered.
        if let Some(o) = self.ordered.get_mut(channel) {
            o.order.subscribe_failed(Instant::now());
            if o.order.seq().is_none() && o.ready.is_empty() {
                self.ordered.remove(channel);
            }
        }
        sent?;
        answer.ok_or_else(|| anyhow::anyhow!("no answer to subscribe {id} within 5 s"))
    }

    /// The next frame of an ordered channel (see [`WsClient::subscribe_ordered`]) for the
    /// application: its `event` frames in `seq` order, each once (`low` events, which have
    /// no seq, as they come), and `resync` frames (the missed events cannot be replayed:
    /// refetch the state; the next event sets the position). While it waits it sends a
    /// `resume` for any ordered channel whose gap stayed open too long, and takes those
    /// channels' frames; other frames are kept for [`WsClient::next`]. None when nothing
    /// was ready within `timeout`, the socket closed, or the channel is not ordered.
    pub async fn next_event_in_order(&mut self, channel: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(f) = self.ordered.get_mut(channel)?.ready.pop_front() {
                return Some(f);
            }
            let now = Instant::now();
            self.send_due_resumes(now).await.ok()?;
            if now >= deadline {
                return None;
            }
            let wake = self
                .ordered
                .values()
                .filter_map(|o| o.order.gap_deadline())
                .fold(deadline, Instant::min);
            match self.read(wake.saturating_duration_since(now)).await {
                Read::Text(t) => {
                    if let Ok(f) = serde_json::from_str::<Value>(&t) {
                        if let Some(f) = self.route(f, Instant::now()) {
                            self.keep(f);
                        }
                    }
                }
                Read::Timeout => {}
                Read::Closed => return None,
            }
        }
    }

    /// The order of an ordered channel: its position, what it holds.
    pub fn order(&self, channel: &str) -> Option<&ChannelOrder> {
        self.ordered.get(channel).map(|o| &o.order)
    }

    /// Stops ordering `channel` here and returns its order, to carry its position to
    /// another connection ([`WsClient::subscribe_ordered_with`]). None when the channel is
    /// not ordered or has frames [`WsClient::next_event_in_order`] has not returned yet
    /// (read those first, e.g. with a zero timeout until it returns None: the position
    /// counts them as handed over).
    pub fn take_order(&mut self, channel: &str) -> Option<ChannelOrder> {
        if !self.ordered.get(channel)?.ready.is_empty() {
            return None;
        }
        self.resumes.retain(|_, ch| ch != channel);
        self.ordered.remove(channel).map(|o| o.order)
    }

    /// Keeps a frame no order took for [`WsClient::next`] (bounded: the oldest go).
    fn keep(&mut self, f: Value) {
        if self.backlog.len() >= MAX_BACKLOG {
            self.backlog.pop_front();
        }
        self.backlog.push_back(f);
    }

    /// Gives a frame to its channel's order; returns it when no order takes it.
    fn route(&mut self, f: Value, now: Instant) -> Option<Value> {
        let ty = f["type"].as_str().unwrap_or_default();
        if ty == "error" {
            let failed = f["id"].as_str().and_then(|id| self.resumes.remove(id));
            return match failed.and_then(|ch| self.ordered.get_mut(&ch)) {
                Some(o) => {
                    o.order.resume_failed(now);
                    None
                }
                None => Some(f),
            };
        }
        if !matches!(ty, "event" | "subscribed" | "resumed" | "resync") {
            return Some(f);
        }
        let Some(o) = f["channel"].as_str().and_then(|ch| self.ordered.get_mut(ch)) else {
            return Some(f);
        };
        if matches!(ty, "resumed" | "resync") {
            if let Some(id) = f["id"].as_str() {
                self.resumes.remove(id);
            }
        }
        o.ready.extend(o.order.accept_at(f, now));
        None
    }

    /// Sends the `resume` of every ordered channel whose gap has waited long enough.
    async fn send_due_resumes(&mut self, now: Instant) -> anyhow::Result<()> {
        let due: Vec<(String, Value)> = self
            .ordered
            .iter_mut()
            .filter_map(|(ch, o)| o.order.resume_request_at(now).map(|r| (ch.clone(), r)))
            .collect();
        for (channel, mut frame) in due {
            self.next_resume += 1;
            let id = format!("ro{}", self.next_resume);
            frame["id"] = id.clone().into();
            self.resumes.retain(|_, ch| *ch != channel);
            self.resumes.insert(id, channel.clone());
            if let Err(e) = self.send(&frame).await {
                if let Some(o) = self.ordered.get_mut(&channel) {
                    o.order.resume_failed(now);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Closes the connection and waits (2 s at most) for the server's close.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain until the server's close arrives.
        let _ = tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = self.ws.next().await {} }).await;
    }
}

impl Http {
    /// Sends a request with extra headers; returns the status and the JSON body.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }
}

/// One server-sent event: its `id` (if any) and its `data`, parsed as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// The `id:` line, if any.
    pub id: Option<String>,
    /// The `data:` lines joined, parsed as JSON (a string when they are not JSON).
    pub data: Value,
}

/// A plain HTTP client reading a `text/event-stream` answer as it arrives.
pub struct SseClient {
    resp: reqwest::Response,
    buf: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's `content-type`.
    pub content_type: Option<String>,
}

impl SseClient {
    /// GETs `url` with the token (as `Authorization: Bearer`) and `Last-Event-ID`, if given.
    pub async fn connect(url: &str, token: Option<&str>, last_event_id: Option<&str>) -> anyhow::Result<Self> {
        let mut req = reqwest::Client::new().get(url).header("accept", "text/event-stream");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await?;
        Ok(Self {
            status: resp.status().as_u16(),
            content_type: resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string),
            resp,
            buf: String::new(),
        })
    }

    /// The whole body of a non-stream answer (an error), as JSON.
    pub async fn json(self) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.resp.text().await?)?)
    }

    /// The next event with data, or None when the stream ended or nothing came in time.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.trim_start().to_string());
                    }
                }
                if !data.is_empty() {
                    let data = data.join("\n");
                    return Some(SseEvent {
                        id,
                        data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
                    });
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The next event whose `data.type` is `ty` (others skipped), within `timeout`.
    pub async fn next_of(&mut self, ty: &str, timeout: Duration) -> anyhow::Result<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) if e.data["type"] == ty => return Ok(e),
                Some(_) => continue,
                None => anyhow::bail!("no {ty} event within {timeout:?}"),
            }
        }
    }
}

/// How long a gap may stay open before [`ChannelOrder`] asks for a `resume`.
pub const DEFAULT_GAP_WAIT: Duration = Duration::from_millis(1000);
/// The same for a filtered subscription (its gaps are normal: most are filtered-out seqs).
pub const DEFAULT_FILTERED_GAP_WAIT: Duration = Duration::from_millis(150);
/// How many early events [`ChannelOrder`] holds at most.
pub const DEFAULT_MAX_PENDING: usize = 10_000;
/// How long [`ChannelOrder`] waits for the answer to a `resume` before it may send another.
pub const DEFAULT_RESUME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a channel may stay quiet before [`ChannelOrder`] asks for a `resume` anyway:
/// a last event whose push failed leaves no gap to notice. Five minutes, like the browser
/// client's ping, so the check is also the keepalive under API Gateway's 10-minute idle cap.
pub const DEFAULT_TAIL_CHECK: Duration = Duration::from_secs(5 * 60);

/// Whether a subscription gets only some of its channel's events (so gaps in its seqs are
/// normal): it has a content `filter`, or `events` patterns other than none or `["**"]`.
pub fn is_filtered(events: &[&str], filter: Option<&Value>) -> bool {
    filter.is_some_and(|f| !f.is_null()) || (!events.is_empty() && !events.contains(&"**"))
}

/// The delivery order of one channel, without a socket: hands over `event` frames in `seq`
/// order, each once, holds the ones that arrive ahead of a gap until it fills, drops
/// duplicates, and says when to ask for a `resume` (a gap still open after the gap wait,
/// from the last seq handed over, never two in flight). The browser client's
/// `ChannelOrder` (`web/realtime.js`) does the same.
///
/// Feed it every frame of its channel (`event`, `subscribed`, `resumed`, `resync`) with
/// [`accept`](Self::accept); it returns what the application gets now. At
/// [`gap_deadline`](Self::gap_deadline) (and after each `accept`), send the frame
/// [`resume_request`](Self::resume_request) returns, with an `id`. The `*_at` variants take
/// the time, for tests. [`WsClient::next_event_in_order`] drives one per channel.
///
/// ```
/// use realtime_client::ChannelOrder;
/// use serde_json::json;
/// let ev = |seq: u64| json!({"type": "event", "channel": "chat:C1", "seq": seq, "epoch": "E", "event": {}});
/// let mut order = ChannelOrder::new("chat:C1");
/// assert!(order.accept(json!({"type": "subscribed", "id": "s1", "channel": "chat:C1", "epoch": "E", "seq": 0})).is_empty());
/// assert!(order.accept(ev(2)).is_empty()); // held: 1 is missing
/// let got = order.accept(ev(1));
/// assert_eq!(got, vec![ev(1), ev(2)]);
/// assert!(order.accept(ev(2)).is_empty()); // a duplicate
/// assert_eq!(order.resume_request(), None); // no gap
/// ```
///
/// The position (the last seq handed over, in an epoch) is unknown until the `subscribed`
/// answer (frames that arrive before it are held; those at or before its head are dropped,
/// being in the state as of subscribing), and again after a `resync`, when the next
/// `subscribed` or event sets it. Events of another epoch than the position's mean the
/// channel's log was reset: they come after a `resync` frame with reason `epoch_changed`.
///
/// A `resumed` answer with `seq` S means every seq up to S was replayed (those frames came
/// before it) or is not for this subscription: the held events up to S are handed over,
/// in order, and the position moves to S (with `more`, the next `resume`, from S, is due
/// at once). Never past an event dropped from a full buffer, which exists and must come
/// again.
///
/// A filtered subscription (a content `filter`, or `events` patterns other than none or
/// `["**"]`: see [`set_filtered`](Self::set_filtered)) gets only some seqs, so its gaps are
/// normal: they wait the filtered gap wait ([`DEFAULT_FILTERED_GAP_WAIT`],
/// [`with_filtered_gap_wait`](Self::with_filtered_gap_wait)) instead of the gap wait, then
/// one `resume` closes them.
///
/// A channel quiet for the tail check ([`DEFAULT_TAIL_CHECK`],
/// [`with_tail_check`](Self::with_tail_check)) gets a `resume` from its position too: a
/// push that failed for good leaves a gap only the next event would show, and the last
/// event of a burst has no next one.
#[derive(Debug, Clone)]
pub struct ChannelOrder {
    channel: String,
    gap_wait: Duration,
    filtered_gap_wait: Duration,
    /// The subscription gets only some of the channel's seqs.
    filtered: bool,
    max_pending: usize,
    resume_timeout: Duration,
    tail_check: Option<Duration>,
    /// When the last seq'd event, `subscribed` or `resumed` came.
    heard_at: Option<Instant>,
    epoch: Option<String>,
    /// The last seq handed over (None: position unknown).
    seq: Option<u64>,
    /// The highest seq known to exist.
    head: Option<u64>,
    pending: BTreeMap<u64, Value>,
    /// Seqs dropped from a full buffer, not held or handed over since.
    dropped: BTreeSet<u64>,
    /// A `subscribe` is out: hold frames until its answer if the position is unknown.
    awaiting_ack: bool,
    /// When the gap right after `seq` opened.
    gap_since: Option<Instant>,
    /// A resume is due at once (after `resumed` with `more`, or a full buffer).
    urgent_at: Option<Instant>,
    /// A resume is in flight since then.
    resume_sent_at: Option<Instant>,
}

impl ChannelOrder {
    /// An order for `channel` with the defaults ([`DEFAULT_GAP_WAIT`],
    /// [`DEFAULT_FILTERED_GAP_WAIT`], [`DEFAULT_MAX_PENDING`], [`DEFAULT_RESUME_TIMEOUT`]),
    /// not filtered, and no position yet.
    pub fn new(channel: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            gap_wait: DEFAULT_GAP_WAIT,
            filtered_gap_wait: DEFAULT_FILTERED_GAP_WAIT,
            filtered: false,
            max_pending: DEFAULT_MAX_PENDING,
            resume_timeout: DEFAULT_RESUME_TIMEOUT,
            tail_check: Some(DEFAULT_TAIL_CHECK),
            heard_at: None,
            epoch: None,
            seq: None,
            head: None,
            pending: BTreeMap::new(),
            dropped: BTreeSet::new(),
            awaiting_ack: false,
            gap_since: None,
            urgent_at: None,
            resume_sent_at: None,
        }
    }

    /// How long a gap may stay open before a `resume` is due (unfiltered subscriptions).
    pub fn with_gap_wait(mut self, gap_wait: Duration) -> Self {
        self.gap_wait = gap_wait;
        self
    }

    /// How long a gap may stay open before a `resume` is due when the subscription is
    /// filtered (default [`DEFAULT_FILTERED_GAP_WAIT`]): its gaps are mostly seqs the server
    /// does not push it, and one `resume` closes them.
    pub fn with_filtered_gap_wait(mut self, filtered_gap_wait: Duration) -> Self {
        self.filtered_gap_wait = filtered_gap_wait;
        self
    }

    /// Whether the subscription is filtered (see [`is_filtered`]); a filtered order's gaps
    /// wait the filtered gap wait. [`WsClient`] sets it from the `events` of each subscribe.
    pub fn with_filtered(mut self, filtered: bool) -> Self {
        self.filtered = filtered;
        self
    }

    /// [`with_filtered`](Self::with_filtered) on an existing order (say, when the channel
    /// is subscribed again with other patterns).
    pub fn set_filtered(&mut self, filtered: bool) {
        self.filtered = filtered;
    }

    /// Whether the subscription is filtered.
    pub fn filtered(&self) -> bool {
        self.filtered
    }

    /// The gap wait that applies: the filtered one for a filtered subscription.
    pub fn gap_wait(&self) -> Duration {
        if self.filtered {
            self.filtered_gap_wait
        } else {
            self.gap_wait
        }
    }

    /// How many early events to hold at most; past it the highest are dropped (a replay
    /// brings them again) and a `resume` is due at once.
    pub fn with_max_pending(mut self, max_pending: usize) -> Self {
        self.max_pending = max_pending.max(1);
        self
    }

    /// How long to wait for a `resume`'s answer before another may be sent.
    pub fn with_resume_timeout(mut self, resume_timeout: Duration) -> Self {
        self.resume_timeout = resume_timeout;
        self
    }

    /// How long the channel may stay quiet before a `resume` checks that nothing was
    /// missed at its tail (None: never).
    pub fn with_tail_check(mut self, tail_check: Option<Duration>) -> Self {
        self.tail_check = tail_check;
        self
    }

    /// The channel it orders.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The epoch of the position, if known.
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// The last seq handed over, if the position is known.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// How many events wait for a gap to fill.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether a `resume` (or a `subscribe` with `resume`) is in flight.
    pub fn resuming(&self) -> bool {
        self.resume_sent_at.is_some()
    }

    /// Whether an event after the position is known to exist and was not handed over.
    fn gap(&self) -> bool {
        matches!((self.seq, self.head), (Some(seq), Some(head)) if head > seq)
    }

    /// A `subscribe` is about to be sent: returns the `resume` field it should carry
    /// (`{"epoch", "after"}`, None when the position is unknown, and then frames are held
    /// until the answer).
    pub fn subscribing(&mut self, now: Instant) -> Option<Value> {
        self.awaiting_ack = true;
        self.urgent_at = None;
        match (&self.epoch, self.seq) {
            (Some(epoch), Some(seq)) => {
                self.resume_sent_at = Some(now); // the replay comes with the subscribe
                Some(json!({"epoch": epoch, "after": seq}))
            }
            _ => {
                self.resume_sent_at = None;
                None
            }
        }
    }

    /// The `subscribe` failed (an `error` answer, no answer, a closed socket).
    pub fn subscribe_failed(&mut self, now: Instant) {
        self.awaiting_ack = false;
        self.resume_failed(now);
    }

    /// The `resume` in flight failed: the next one waits the gap wait again.
    pub fn resume_failed(&mut self, now: Instant) {
        self.resume_sent_at = None;
        self.gap_since = self.gap().then_some(now);
    }

    /// Takes a frame of this channel and returns the frames for the application now, in
    /// order: `event` frames and `resync` frames. Other frames return nothing.
    pub fn accept(&mut self, frame: Value) -> Vec<Value> {
        self.accept_at(frame, Instant::now())
    }

    /// [`accept`](Self::accept) at a given time.
    pub fn accept_at(&mut self, frame: Value, now: Instant) -> Vec<Value> {
        if matches!(frame["type"].as_str(), Some("subscribed" | "resumed")) || frame["seq"].is_u64() {
            self.heard_at = Some(now);
        }
        match frame["type"].as_str() {
            Some("event") => self.event(frame, now),
            Some("subscribed") => self.subscribed(&frame, now),
            Some("resumed") => self.resumed(&frame, now),
            Some("resync") => {
                self.reset();
                vec![frame]
            }
            _ => Vec::new(),
        }
    }

    /// When a `resume` may next be due: call [`resume_request`](Self::resume_request) then.
    /// None while there is no gap and no tail check.
    pub fn gap_deadline(&self) -> Option<Instant> {
        if let Some(sent) = self.resume_sent_at {
            return (self.gap() || self.tail_check.is_some()).then(|| sent + self.resume_timeout);
        }
        if self.gap() {
            return self.urgent_at.or(self.gap_since.map(|t| t + self.gap_wait()));
        }
        if self.awaiting_ack || self.seq.is_none() {
            return None;
        }
        Some(self.heard_at? + self.tail_check?)
    }

    /// The `resume` frame to send now (`{"action":"resume","channel","epoch","after"}`,
    /// without `id`), or None: one when a gap has stayed open the gap wait (or at once after
    /// `resumed` with `more`) or the channel was quiet for the tail check, from the last seq
    /// handed over, never while another is in flight (unless that one has had no answer for
    /// the resume timeout).
    pub fn resume_request(&mut self) -> Option<Value> {
        self.resume_request_at(Instant::now())
    }

    /// [`resume_request`](Self::resume_request) at a given time.
    pub fn resume_request_at(&mut self, now: Instant) -> Option<Value> {
        if now < self.gap_deadline()? {
            return None;
        }
        self.resume_sent_at = Some(now);
        self.urgent_at = None;
        Some(json!({"action": "resume", "channel": self.channel, "epoch": self.epoch, "after": self.seq}))
    }

    fn event(&mut self, f: Value, now: Instant) -> Vec<Value> {
        let Some(seq) = f["seq"].as_u64() else {
            return vec![f]; // `low` events: live only, unordered
        };
        let epoch = f["epoch"].as_str().map(str::to_string);
        let mut out = Vec::new();
        if self.seq.is_none() {
            if self.awaiting_ack {
                self.hold(seq, f, now);
                return out;
            }
            // After a resync (or a lost answer): this event sets the position, with any
            // that arrived early in the same epoch.
            self.pending.retain(|_, g| g["epoch"].as_str() == epoch.as_deref());
            let first = self.pending.keys().next().map_or(seq, |&s| s.min(seq));
            self.set_position(epoch, first.saturating_sub(1));
        } else if epoch.is_some() && self.epoch.is_some() && epoch != self.epoch {
            // The channel's log was reset: what was missed cannot be replayed.
            self.reset();
            out.push(self.resync_frame(&f));
            self.set_position(epoch, seq.saturating_sub(1));
        }
        if self.seq.is_some_and(|s| seq <= s) || self.pending.contains_key(&seq) {
            return out; // a duplicate
        }
        self.hold(seq, f, now);
        self.drain(&mut out, now);
        out
    }

    fn subscribed(&mut self, f: &Value, now: Instant) -> Vec<Value> {
        self.awaiting_ack = false;
        let mut out = Vec::new();
        let (Some(epoch), Some(head)) = (f["epoch"].as_str(), f["seq"].as_u64()) else {
            return out;
        };
        if self.seq.is_some() && self.epoch.as_deref() != Some(epoch) {
            self.reset();
            out.push(self.resync_frame(f));
        }
        if self.seq.is_none() {
            // New to this channel (or after a resync): start at the head; earlier events
            // are in the state as of subscribing.
            self.set_position(Some(epoch.to_string()), head);
            self.pending
                .retain(|&s, g| s > head && g["epoch"].as_str().is_none_or(|e| e == epoch));
            if let Some(&top) = self.pending.keys().next_back() {
                self.seen(top);
            }
        } else {
            self.seen(head);
        }
        self.drain(&mut out, now);
        out
    }

    fn resumed(&mut self, f: &Value, now: Instant) -> Vec<Value> {
        self.resume_sent_at = None;
        let mut out = Vec::new();
        let (Some(seq), Some(at)) = (f["seq"].as_u64(), self.seq) else {
            return out;
        };
        if f["epoch"].as_str() != self.epoch.as_deref() {
            return out;
        }
        // Every seq up to `seq` was replayed (those frames came before this one) or is not
        // for this subscription: what is held up to it goes now, in order, and the position
        // moves to it; but not past an event dropped from a full buffer (it must come again).
        let up_to = self.dropped.range(at + 1..=seq).next().map_or(seq, |&d| d - 1);
        self.seen(seq);
        if up_to > at {
            let above = self.pending.split_off(&(up_to + 1));
            let held = std::mem::replace(&mut self.pending, above);
            out.extend(held.into_iter().filter(|&(s, _)| s > at).map(|(_, g)| g));
            self.seq = Some(up_to);
        }
        self.drain(&mut out, now);
        let more = f["more"].as_bool() == Some(true);
        if more {
            self.seen(seq + 1); // there is more after it
        }
        // More to replay, or a dropped event to fetch again: the next resume is due at once.
        if more || up_to < seq {
            self.urgent_at = Some(now);
        }
        // A replay that ended with the gap still open: wait again before the next one.
        self.gap_since = self.gap().then_some(now);
        out
    }

    fn resync_frame(&self, f: &Value) -> Value {
        let channel = f["channel"].as_str().unwrap_or(&self.channel);
        json!({"type": "resync", "channel": channel, "reason": "epoch_changed"})
    }

    fn set_position(&mut self, epoch: Option<String>, seq: u64) {
        self.epoch = epoch;
        self.seq = Some(seq);
        self.head = Some(self.head.map_or(seq, |h| h.max(seq)));
    }

    fn reset(&mut self) {
        self.epoch = None;
        self.seq = None;
        self.head = None;
        self.pending.clear();
        self.dropped.clear();
        self.gap_since = None;
        self.urgent_at = None;
        self.resume_sent_at = None;
        self.heard_at = None;
    }

    fn seen(&mut self, seq: u64) {
        self.head = Some(self.head.map_or(seq, |h| h.max(seq)));
    }

    /// Holds an early event, bounded: past the limit the highest goes (a replay brings it;
    /// until then it is in `dropped`, and no `resumed` moves the position past it).
    fn hold(&mut self, seq: u64, f: Value, now: Instant) {
        self.seen(seq);
        if self.pending.len() >= self.max_pending {
            self.urgent_at.get_or_insert(now);
            match self.pending.last_key_value() {
                Some((&top, _)) if top > seq => {
                    self.pending.remove(&top);
                    self.dropped.insert(top);
                }
                _ => {
                    self.dropped.insert(seq);
                    return;
                }
            }
        }
        self.dropped.remove(&seq);
        self.pending.insert(seq, f);
    }

    /// Hands over the contiguous run after the position; restarts the gap timer on progress.
    fn drain(&mut self, out: &mut Vec<Value>, now: Instant) {
        let Some(before) = self.seq else { return };
        let mut seq = before;
        while let Some(f) = self.pending.remove(&(seq + 1)) {
            seq += 1;
            out.push(f);
        }
        self.seq = Some(seq);
        if self.dropped.first().is_some_and(|&d| d <= seq) {
            self.dropped = self.dropped.split_off(&(seq + 1));
        }
        if !self.gap() {
            self.gap_since = None;
            self.urgent_at = None;
        } else if self.gap_since.is_none() || seq != before {
            self.gap_since = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANNEL: &str = "chat:C1";
    const EPOCH: &str = "E1";

    fn ev(seq: u64) -> Value {
        ev_in(seq, EPOCH)
    }

    fn ev_in(seq: u64, epoch: &str) -> Value {
        json!({"type": "event", "channel": CHANNEL, "seq": seq, "epoch": epoch, "event": {"id": format!("e{seq}")}})
    }

    fn low(n: u32) -> Value {
        json!({"type": "event", "channel": CHANNEL, "event": {"id": format!("low{n}")}})
    }

    fn subscribed(seq: u64) -> Value {
        json!({"type": "subscribed", "id": "s1", "channel": CHANNEL, "epoch": EPOCH, "seq": seq})
    }

    fn resumed(seq: u64, more: bool) -> Value {
        json!({"type": "resumed", "id": "r1", "channel": CHANNEL, "epoch": EPOCH, "seq": seq, "replayed": 0, "more": more})
    }

    /// An order that resumes only for gaps (these tests jump far ahead in time).
    fn gap_only() -> ChannelOrder {
        ChannelOrder::new(CHANNEL).with_tail_check(None)
    }

    fn seqs(frames: &[Value]) -> Vec<u64> {
        frames.iter().map(|f| f["seq"].as_u64().expect("an event with a seq")).collect()
    }

    /// A clock: milliseconds after a fixed start.
    struct Clock(Instant);

    impl Clock {
        fn new() -> Self {
            Self(Instant::now())
        }
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    /// A small seeded PRNG (splitmix64), so a failing shuffle can be replayed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn shuffle<T>(&mut self, xs: &mut [T]) {
            for i in (1..xs.len()).rev() {
                let j = (self.next() % (i as u64 + 1)) as usize;
                xs.swap(i, j);
            }
        }
    }

    struct Run {
        got: Vec<Value>,
        resumes: Vec<Value>,
        max_in_flight: usize,
        order: ChannelOrder,
    }

    /// 1,000 events of one channel, all in the server's log, arriving shuffled (one every
    /// 2 ms) with 5% of them never arriving live. The simulated server answers each
    /// `resume` after 20 ms with the replay (500 at most, then `more`), 10 frames per ms,
    /// interleaved with the live frames still coming, then `resumed`.
    fn simulate(seed: u64, gap_wait: Duration, max_pending: usize) -> Run {
        const N: u64 = 1000;
        let clock = Clock::new();
        let mut rng = Rng(seed);
        let mut order = gap_only().with_gap_wait(gap_wait).with_max_pending(max_pending);
        let mut all: Vec<u64> = (1..=N).collect();
        rng.shuffle(&mut all);
        let missing: std::collections::HashSet<u64> = all[..(N as usize / 20)].iter().copied().collect();
        let mut live: Vec<u64> = (1..=N).filter(|s| !missing.contains(s)).collect();
        rng.shuffle(&mut live);
        let mut inbox: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        for (i, s) in live.iter().enumerate() {
            inbox.entry(2 * i as u64 + 1).or_default().push(ev(*s));
        }
        let mut got = Vec::new();
        let mut resumes = Vec::new();
        let (mut in_flight, mut max_in_flight) = (0usize, 0usize);
        assert_eq!(order.subscribing(clock.at(0)), None, "a new channel subscribes without resume");
        got.extend(order.accept_at(subscribed(0), clock.at(0)));
        let mut now = 0;
        while (got.len() < N as usize || !inbox.is_empty()) && now < 120_000 {
            for f in inbox.remove(&now).unwrap_or_default() {
                if f["type"] == "resumed" {
                    in_flight -= 1;
                }
                got.extend(order.accept_at(f, clock.at(now)));
            }
            if let Some(r) = order.resume_request_at(clock.at(now)) {
                in_flight += 1;
                max_in_flight = max_in_flight.max(in_flight);
                assert_eq!(
                    (r["action"].as_str(), r["channel"].as_str(), r["epoch"].as_str()),
                    (Some("resume"), Some(CHANNEL), Some(EPOCH))
                );
                let after = r["after"].as_u64().unwrap();
                let last = (after + 500).min(N);
                for (i, s) in (after + 1..=last).enumerate() {
                    inbox.entry(now + 20 + i as u64 / 10).or_default().push(ev(s));
                }
                let more = last < N;
                let end = now + 20 + (last - after) / 10;
                inbox.entry(end).or_default().push(resumed(if more { last } else { N }, more));
                resumes.push(r);
            }
            now += 1;
        }
        Run {
            got,
            resumes,
            max_in_flight,
            order,
        }
    }

    #[test]
    fn a_thousand_shuffled_events_with_five_percent_missing_arrive_once_each_in_order() {
        for seed in [1, 2, 3, 42, 2024] {
            let run = simulate(seed, DEFAULT_GAP_WAIT, DEFAULT_MAX_PENDING);
            assert_eq!(seqs(&run.got), (1..=1000).collect::<Vec<_>>(), "seed {seed}");
            assert!(!run.resumes.is_empty(), "seed {seed}: the missing events came by resume");
            assert_eq!(run.max_in_flight, 1, "seed {seed}: one resume in flight at most");
            let afters: Vec<u64> = run.resumes.iter().map(|r| r["after"].as_u64().unwrap()).collect();
            assert!(
                afters.windows(2).all(|w| w[0] <= w[1]),
                "seed {seed}: resumes go forward: {afters:?}"
            );
            assert_eq!(run.order.pending_len(), 0);
            assert_eq!(run.order.gap_deadline(), None);
            assert_eq!(run.order.seq(), Some(1000));
        }
    }

    #[test]
    fn the_same_with_a_short_wait_and_a_small_buffer() {
        for seed in [7, 8] {
            let run = simulate(seed, Duration::from_millis(50), 64);
            assert_eq!(seqs(&run.got), (1..=1000).collect::<Vec<_>>(), "seed {seed}");
            assert_eq!(run.max_in_flight, 1);
        }
    }

    #[test]
    fn duplicates_are_dropped() {
        let c = Clock::new();
        let mut o = gap_only();
        o.subscribing(c.at(0));
        assert!(o.accept_at(subscribed(3), c.at(0)).is_empty());
        assert!(o.accept_at(ev(3), c.at(1)).is_empty(), "at the subscribe position");
        assert_eq!(seqs(&o.accept_at(ev(4), c.at(1))), [4]);
        assert!(o.accept_at(ev(4), c.at(2)).is_empty(), "already delivered");
        assert!(o.accept_at(ev(6), c.at(3)).is_empty(), "held behind 5");
        assert!(o.accept_at(ev(6), c.at(4)).is_empty(), "already held");
        assert_eq!(seqs(&o.accept_at(ev(5), c.at(5))), [5, 6]);
        for s in [4, 5, 6] {
            assert!(o.accept_at(ev(s), c.at(6)).is_empty(), "replayed {s} again");
        }
        assert_eq!(seqs(&o.accept_at(ev(7), c.at(7))), [7]);
        assert_eq!((o.seq(), o.pending_len()), (Some(7), 0));
    }

    #[test]
    fn a_gap_filled_in_time_sends_no_resume() {
        let c = Clock::new();
        let mut o = gap_only().with_gap_wait(Duration::from_millis(1000));
        o.subscribing(c.at(0));
        o.accept_at(subscribed(0), c.at(0));
        assert_eq!(seqs(&o.accept_at(ev(1), c.at(10))), [1]);
        assert!(o.accept_at(ev(3), c.at(20)).is_empty());
        assert_eq!(o.gap_deadline(), Some(c.at(1020)));
        assert_eq!(o.resume_request_at(c.at(500)), None);
        assert_eq!(o.resume_request_at(c.at(1019)), None);
        assert_eq!(seqs(&o.accept_at(ev(2), c.at(1019))), [2, 3]);
        assert_eq!(o.gap_deadline(), None);
        for ms in [1020, 5000, 60_000] {
            assert_eq!(o.resume_request_at(c.at(ms)), None, "no resume at {ms}");
        }
    }

    #[test]
    fn an_open_gap_gets_one_resume_from_the_last_delivered_seq() {
        let c = Clock::new();
        let mut o = gap_only();
        o.subscribing(c.at(0));
        o.accept_at(subscribed(10), c.at(0));
        o.accept_at(ev(11), c.at(0));
        o.accept_at(ev(14), c.at(100));
        assert_eq!(o.resume_request_at(c.at(1099)), None);
        assert_eq!(
            o.resume_request_at(c.at(1100)),
            Some(json!({"action": "resume", "channel": CHANNEL, "epoch": EPOCH, "after": 11}))
        );
        assert_eq!(o.resume_request_at(c.at(1101)), None, "one in flight");
        assert_eq!(o.resume_request_at(c.at(5000)), None, "still in flight");
        let mut got = Vec::new();
        for s in [12, 13, 14] {
            got.extend(o.accept_at(ev(s), c.at(5001)));
        }
        assert_eq!(seqs(&got), [12, 13, 14]);
        // `more`: resume again at once, from there.
        o.accept_at(resumed(14, true), c.at(5002));
        assert_eq!(o.resume_request_at(c.at(5002)).map(|r| r["after"].clone()), Some(json!(14)));
        assert_eq!(seqs(&o.accept_at(ev(15), c.at(5003))), [15]);
        o.accept_at(resumed(15, false), c.at(5004));
        assert_eq!(o.gap_deadline(), None);
        assert_eq!(o.resume_request_at(c.at(99_999)), None);
    }

    #[test]
    fn a_failed_or_unanswered_resume_is_retried_one_at_a_time() {
        let c = Clock::new();
        let mut o = gap_only()
            .with_gap_wait(Duration::from_millis(100))
            .with_resume_timeout(Duration::from_millis(1000));
        o.subscribing(c.at(0));
        o.accept_at(subscribed(0), c.at(0));
        o.accept_at(ev(2), c.at(0));
        assert!(o.resume_request_at(c.at(100)).is_some());
        o.resume_failed(c.at(150));
        assert_eq!(o.resume_request_at(c.at(249)), None);
        assert!(o.resume_request_at(c.at(250)).is_some());
        assert_eq!(o.gap_deadline(), Some(c.at(1250)));
        assert_eq!(o.resume_request_at(c.at(1249)), None);
        assert!(o.resume_request_at(c.at(1250)).is_some());
    }

    #[test]
    fn a_resync_is_handed_over_and_the_next_event_sets_the_position() {
        let c = Clock::new();
        let mut o = gap_only().with_gap_wait(Duration::from_millis(100));
        o.subscribing(c.at(0));
        o.accept_at(subscribed(0), c.at(0));
        o.accept_at(ev(1), c.at(0));
        o.accept_at(ev(3), c.at(0));
        assert!(o.resume_request_at(c.at(100)).is_some());
        let resync = json!({"type": "resync", "id": "r1", "channel": CHANNEL, "reason": "log_trimmed"});
        assert_eq!(o.accept_at(resync.clone(), c.at(110)), vec![resync]);
        assert_eq!((o.seq(), o.pending_len(), o.gap_deadline()), (None, 0, None));
        assert_eq!(seqs(&o.accept_at(ev_in(40, "E2"), c.at(120))), [40]);
        assert_eq!(seqs(&o.accept_at(ev_in(41, "E2"), c.at(121))), [41]);
        assert_eq!((o.epoch(), o.seq()), (Some("E2"), Some(41)));
        // Another epoch: the log was reset. A resync first, then the new events.
        let out = o.accept_at(ev_in(1, "E3"), c.at(130));
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0]["type"].as_str(), out[0]["reason"].as_str()),
            (Some("resync"), Some("epoch_changed"))
        );
        assert_eq!(out[1], ev_in(1, "E3"));
    }

    #[test]
    fn low_events_go_straight_through() {
        let c = Clock::new();
        let mut o = gap_only();
        assert_eq!(o.accept_at(low(0), c.at(0)), vec![low(0)]);
        o.subscribing(c.at(0));
        assert_eq!(o.accept_at(low(1), c.at(0)), vec![low(1)]);
        o.accept_at(subscribed(0), c.at(0));
        assert!(o.accept_at(ev(2), c.at(1)).is_empty());
        assert_eq!(o.accept_at(low(2), c.at(2)), vec![low(2)]);
        assert_eq!(seqs(&o.accept_at(ev(1), c.at(3))), [1, 2]);
    }

    #[test]
    fn frames_before_the_subscribe_ack_are_held() {
        let c = Clock::new();
        let mut o = gap_only();
        assert_eq!(o.subscribing(c.at(0)), None);
        assert!(o.accept_at(ev(12), c.at(1)).is_empty());
        assert!(o.accept_at(ev(10), c.at(1)).is_empty());
        assert!(o.accept_at(subscribed(10), c.at(2)).is_empty());
        assert_eq!(seqs(&o.accept_at(ev(11), c.at(3))), [11, 12]);
        // A later subscribe carries resume from the last event handed over.
        assert_eq!(o.subscribing(c.at(4)), Some(json!({"epoch": EPOCH, "after": 12})));
    }

    #[test]
    fn the_buffer_is_bounded_and_a_full_one_makes_a_resume_due_at_once() {
        let c = Clock::new();
        let mut o = gap_only().with_gap_wait(Duration::from_secs(10)).with_max_pending(5);
        o.subscribing(c.at(0));
        o.accept_at(subscribed(0), c.at(0));
        for s in 2..=20 {
            assert!(o.accept_at(ev(s), c.at(s)).is_empty());
        }
        assert_eq!(o.pending_len(), 5);
        assert_eq!(o.gap_deadline(), Some(c.at(7)), "due at once, not after 10 s");
        assert_eq!(o.resume_request_at(c.at(20)).map(|r| r["after"].clone()), Some(json!(0)));
        let mut got = Vec::new();
        for s in 1..=20 {
            got.extend(o.accept_at(ev(s), c.at(30)));
        }
        assert_eq!(seqs(&got), (1..=20).collect::<Vec<_>>());
    }

    // ---- filtered subscriptions: the server pushes only some seqs; `resumed` closes the gaps

    fn resumed_with(seq: u64, more: bool, replayed: u64) -> Value {
        json!({"type": "resumed", "id": "r1", "channel": CHANNEL, "epoch": EPOCH, "seq": seq, "replayed": replayed, "more": more})
    }

    #[test]
    fn filtered_pushed_1_2_5_9_gets_1_2_at_once_then_one_resume_then_5_and_9_once_in_order() {
        let c = Clock::new();
        let mut o = gap_only().with_filtered(true); // default waits: 1000 / 150 ms
        assert_eq!(o.gap_wait(), DEFAULT_FILTERED_GAP_WAIT);
        o.subscribing(c.at(0));
        o.accept_at(subscribed(0), c.at(0));
        let mut got = Vec::new();
        got.extend(o.accept_at(ev(1), c.at(10)));
        got.extend(o.accept_at(ev(2), c.at(11)));
        assert_eq!(seqs(&got), [1, 2], "1 and 2 at once");
        assert!(o.accept_at(ev(5), c.at(20)).is_empty(), "5 waits behind 3");
        assert!(o.accept_at(ev(9), c.at(30)).is_empty());
        assert_eq!(o.gap_deadline(), Some(c.at(170)), "the filtered wait, from when the gap opened");
        assert_eq!(o.resume_request_at(c.at(169)), None);
        assert_eq!(
            o.resume_request_at(c.at(170)),
            Some(json!({"action": "resume", "channel": CHANNEL, "epoch": EPOCH, "after": 2}))
        );
        assert_eq!(o.resume_request_at(c.at(171)), None, "one in flight");
        // The replay: only what the subscription wants (5 and 9, both already held), then `resumed`.
        got.extend(o.accept_at(ev(5), c.at(190)));
        got.extend(o.accept_at(ev(9), c.at(191)));
        assert_eq!(seqs(&got), [1, 2], "replayed copies of held events are duplicates");
        got.extend(o.accept_at(resumed_with(9, false, 2), c.at(192)));
        assert_eq!(seqs(&got), [1, 2, 5, 9], "5 and 9, once each, in order");
        assert_eq!((o.seq(), o.pending_len(), o.gap_deadline()), (Some(9), 0, None));
        for ms in [400, 5000] {
            assert_eq!(o.resume_request_at(c.at(ms)), None, "no second resume at {ms}");
        }
        assert!(o.accept_at(ev(9), c.at(500)).is_empty(), "9 again: a duplicate");
        assert_eq!(seqs(&o.accept_at(ev(10), c.at(501))), [10]);
    }

    #[test]
    fn filtered_resumed_releases_a_replayed_event_held_below_s() {
        let c = Clock::new();
        let mut o = gap_only().with_filtered(true);
        o.subscribing(c.at(0));
        o.accept_at(subscribed(2), c.at(0));
        o.accept_at(ev(9), c.at(1));
        assert_eq!(o.resume_request_at(c.at(151)).map(|r| r["after"].clone()), Some(json!(2)));
        // 5's live push was lost: the replay brings it; 9 is not replayed again.
        assert!(
            o.accept_at(ev(5), c.at(160)).is_empty(),
            "held: 3 and 4 are not known to be filtered yet"
        );
        assert_eq!(seqs(&o.accept_at(resumed_with(9, false, 1), c.at(161))), [5, 9]);
        assert_eq!(o.gap_deadline(), None);
    }

    #[test]
    fn filtered_resumed_with_more_moves_to_s_and_resumes_again_at_once_from_s() {
        let c = Clock::new();
        let mut o = gap_only().with_filtered(true);
        o.subscribing(c.at(0));
        o.accept_at(subscribed(0), c.at(0));
        assert_eq!(seqs(&o.accept_at(ev(1), c.at(1))), [1]);
        assert!(o.accept_at(ev(1200), c.at(2)).is_empty());
        assert_eq!(o.resume_request_at(c.at(152)).map(|r| r["after"].clone()), Some(json!(1)));
        let mut got = o.accept_at(ev(300), c.at(160));
        got.extend(o.accept_at(resumed_with(501, true, 1), c.at(161)));
        assert_eq!(seqs(&got), [300], "what was replayed, up to S");
        assert_eq!(o.seq(), Some(501));
        assert_eq!(
            o.resume_request_at(c.at(161)),
            Some(json!({"action": "resume", "channel": CHANNEL, "epoch": EPOCH, "after": 501})),
            "at once, from S"
        );
        assert_eq!(o.resume_request_at(c.at(162)), None);
        // Nothing wanted in the next 500: the position still moves on.
        assert!(o.accept_at(resumed_with(1001, true, 0), c.at(170)).is_empty());
        assert_eq!(o.seq(), Some(1001));
        assert_eq!(o.resume_request_at(c.at(170)).map(|r| r["after"].clone()), Some(json!(1001)));
        let mut last = o.accept_at(ev(1100), c.at(180));
        last.extend(o.accept_at(ev(1200), c.at(180)));
        last.extend(o.accept_at(resumed_with(1250, false, 2), c.at(181)));
        assert_eq!(seqs(&last), [1100, 1200]);
        assert_eq!((o.seq(), o.gap_deadline()), (Some(1250), None));
        assert_eq!(seqs(&o.accept_at(ev(1251), c.at(190))), [1251]);
    }

    #[test]
    fn filtered_an_event_held_above_s_stays_held_until_its_own_gap_fills() {
        let c = Clock::new();
        let mut o = gap_only().with_filtered(true);
        o.subscribing(c.at(0));
        o.accept_at(subscribed(0), c.at(0));
        o.accept_at(ev(5), c.at(0));
        o.accept_at(ev(12), c.at(1));
        assert_eq!(o.resume_request_at(c.at(150)).map(|r| r["after"].clone()), Some(json!(0)));
        // The replay read the head at 9 (12 was written after it): 5 up to S = 9, 12 waits.
        let mut got = o.accept_at(ev(5), c.at(160));
        got.extend(o.accept_at(resumed_with(9, false, 1), c.at(161)));
        assert_eq!(seqs(&got), [5]);
        assert_eq!((o.seq(), o.pending_len()), (Some(9), 1), "12 is still held");
        assert_eq!(o.gap_deadline(), Some(c.at(311)), "its gap waits again");
        assert_eq!(seqs(&o.accept_at(ev(10), c.at(200))), [10], "10 fills part of it");
        assert_eq!(o.pending_len(), 1);
        assert_eq!(
            o.resume_request_at(c.at(350)),
            Some(json!({"action": "resume", "channel": CHANNEL, "epoch": EPOCH, "after": 10}))
        );
        assert_eq!(
            seqs(&o.accept_at(resumed_with(12, false, 0), c.at(360))),
            [12],
            "11 is filtered out: 12 goes"
        );
        assert_eq!(o.gap_deadline(), None);
    }

    #[test]
    fn filtered_resumed_does_not_move_past_an_event_dropped_from_a_full_buffer() {
        let c = Clock::new();
        let mut o = gap_only().with_filtered(true).with_max_pending(2);
        o.subscribing(c.at(0));
        o.accept_at(subscribed(0), c.at(0));
        for s in [4, 6, 8] {
            assert!(o.accept_at(ev(s), c.at(s)).is_empty());
        }
        assert_eq!(o.pending_len(), 2, "8 is dropped");
        assert_eq!(o.gap_deadline(), Some(c.at(8)), "due at once");
        assert_eq!(o.resume_request_at(c.at(8)).map(|r| r["after"].clone()), Some(json!(0)));
        // The replay brings 2; the buffer is still full, so it evicts 6, and 8 is dropped again.
        for s in [2, 4, 6, 8] {
            o.accept_at(ev(s), c.at(20));
        }
        let got = o.accept_at(resumed_with(10, false, 4), c.at(24));
        assert_eq!(seqs(&got), [2, 4], "up to the first dropped event, not past it");
        assert_eq!(o.seq(), Some(5));
        assert_eq!(
            o.resume_request_at(c.at(24)).map(|r| r["after"].clone()),
            Some(json!(5)),
            "a dropped event to fetch: due at once"
        );
        let mut got = o.accept_at(ev(6), c.at(30));
        got.extend(o.accept_at(ev(8), c.at(30)));
        got.extend(o.accept_at(resumed_with(10, false, 2), c.at(31)));
        assert_eq!(seqs(&got), [6, 8]);
        assert_eq!((o.seq(), o.gap_deadline()), (Some(10), None));
    }

    #[test]
    fn the_gap_wait_is_the_filtered_one_for_a_filtered_subscription() {
        let plain = ChannelOrder::new(CHANNEL);
        assert_eq!((plain.filtered(), plain.gap_wait()), (false, DEFAULT_GAP_WAIT));
        assert_eq!(DEFAULT_GAP_WAIT, Duration::from_millis(1000));
        assert_eq!(DEFAULT_FILTERED_GAP_WAIT, Duration::from_millis(150));
        let mut o = gap_only()
            .with_gap_wait(Duration::from_millis(500))
            .with_filtered_gap_wait(Duration::from_millis(20))
            .with_filtered(true);
        assert_eq!(o.gap_wait(), Duration::from_millis(20));
        o.set_filtered(false);
        assert_eq!(o.gap_wait(), Duration::from_millis(500));
        assert!(!is_filtered(&[], None));
        assert!(!is_filtered(&["**"], None));
        assert!(!is_filtered(&[], Some(&Value::Null)));
        assert!(is_filtered(&["chat.**"], None));
        assert!(is_filtered(&[], Some(&json!({"tripType": "PRIVATE"}))));
        assert!(is_filtered(&["**"], Some(&json!({"tripType": "PRIVATE"}))));
    }

    #[test]
    fn a_quiet_channel_checks_its_tail_with_a_resume() {
        let c = Clock::new();
        let tail = Duration::from_millis(1000);
        let mut o = ChannelOrder::new(CHANNEL).with_tail_check(Some(tail));
        assert_eq!(o.subscribing(c.at(0)), None);
        assert_eq!(o.gap_deadline(), None, "no position yet");
        o.accept_at(subscribed(4), c.at(10));
        assert_eq!(seqs(&o.accept_at(ev(5), c.at(100))), vec![5]);
        // Event 6 was pushed and lost, and nothing came after it: no gap to see.
        assert_eq!(o.gap_deadline(), Some(c.at(1100)));
        assert_eq!(o.resume_request_at(c.at(1099)), None);
        let r = o.resume_request_at(c.at(1100)).expect("the tail check is due");
        assert_eq!(r, json!({"action": "resume", "channel": CHANNEL, "epoch": EPOCH, "after": 5}));
        assert_eq!(o.resume_request_at(c.at(1200)), None, "one in flight");
        assert_eq!(seqs(&o.accept_at(ev(6), c.at(1300))), vec![6]);
        assert!(o.accept_at(resumed(6, false), c.at(1310)).is_empty());
        assert!(!o.resuming());
        assert_eq!(o.gap_deadline(), Some(c.at(2310)), "the next check waits a whole quiet period");
        // Without an answer the check goes again after the resume timeout.
        o.resume_request_at(c.at(2310)).expect("due");
        assert_eq!(o.gap_deadline(), Some(c.at(2310) + DEFAULT_RESUME_TIMEOUT));
        // Off: a quiet channel waits for nothing.
        let mut off = ChannelOrder::new(CHANNEL).with_tail_check(None);
        off.subscribing(c.at(0));
        off.accept_at(subscribed(4), c.at(10));
        assert_eq!(off.gap_deadline(), None);
        assert_eq!(off.resume_request_at(c.at(3_600_000)), None);
    }

    // ---- WsClient against a tiny scripted server

    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

    /// The server picks `realtime.v1`, as the real one does.
    #[allow(clippy::result_large_err)] // the signature tungstenite's handshake callback has
    fn choose_protocol(_: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
        resp.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("realtime.v1"));
        Ok(resp)
    }

    async fn recv(ws: &mut WebSocketStream<TcpStream>) -> Value {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
                Some(Ok(_)) => continue,
                other => panic!("the client went away: {other:?}"),
            }
        }
    }

    async fn send(ws: &mut WebSocketStream<TcpStream>, f: Value) {
        ws.send(Message::Text(f.to_string().into())).await.unwrap();
    }

    /// `WsClient::next_event_in_order` against a tiny scripted server: an event before the
    /// ack, shuffled events with one lost, one `resume` after the gap wait, a replay that
    /// overlaps what arrived, everything once in order; another channel's frame is kept
    /// for `next`.
    #[tokio::test]
    async fn next_event_in_order_resumes_through_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, choose_protocol).await.unwrap();
            let sub = recv(&mut ws).await;
            assert_eq!((sub["action"].as_str(), sub.get("resume")), (Some("subscribe"), None));
            send(&mut ws, ev(2)).await; // before the ack: held
            send(&mut ws, subscribed(0)).await;
            let mut live: Vec<u64> = (3..=50).filter(|&s| s != 30).collect();
            Rng(9).shuffle(&mut live);
            live.push(1);
            for s in live {
                send(&mut ws, ev(s)).await;
            }
            send(
                &mut ws,
                json!({"type": "event", "channel": "chat:OTHER", "seq": 1, "epoch": EPOCH, "event": {}}),
            )
            .await;
            let r = recv(&mut ws).await;
            assert_eq!(
                (r["action"].as_str(), r["channel"].as_str(), r["epoch"].as_str()),
                (Some("resume"), Some(CHANNEL), Some(EPOCH))
            );
            let after = r["after"].as_u64().unwrap();
            assert!((1..=29).contains(&after), "resume after {after}");
            for s in after + 1..=50 {
                send(&mut ws, ev(s)).await;
            }
            let done = json!({"type": "resumed", "id": r["id"], "channel": CHANNEL, "epoch": EPOCH, "seq": 50, "replayed": 50 - after, "more": false});
            send(&mut ws, done).await;
            // Nothing else comes: no second resume.
            let more = tokio::time::timeout(Duration::from_millis(400), ws.next()).await;
            assert!(!matches!(more, Ok(Some(Ok(Message::Text(_))))), "a second frame: {more:?}");
        });
        let mut c = WsClient::connect(&format!("ws://{addr}/ws"), Some("t"), TokenIn::Subprotocol)
            .await
            .unwrap();
        let started = Instant::now();
        let ack = c.subscribe_ordered("s1", CHANNEL, &[], Duration::from_millis(100)).await.unwrap();
        assert_eq!(ack["type"], "subscribed");
        let mut got = Vec::new();
        while got.len() < 50 {
            let f = c
                .next_event_in_order(CHANNEL, Duration::from_secs(5))
                .await
                .expect("the next event");
            got.push(f["seq"].as_u64().unwrap());
        }
        assert_eq!(got, (1..=50).collect::<Vec<_>>());
        assert!(started.elapsed() >= Duration::from_millis(100), "the resume waited for the gap");
        assert_eq!(c.next_event_in_order(CHANNEL, Duration::from_millis(200)).await, None);
        assert_eq!(c.order(CHANNEL).and_then(ChannelOrder::seq), Some(50));
        let other = c.next(Duration::from_millis(10)).await.expect("the other channel's frame, kept");
        assert_eq!(other["channel"], "chat:OTHER");
        server.await.unwrap();
    }

    /// A subscription with `events` patterns: its gap waits the filtered gap wait (not the
    /// long `gap_wait` given), one `resume`, and `resumed` hands over 5 and 9.
    #[tokio::test]
    async fn a_filtered_subscription_resumes_after_the_filtered_wait_through_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, choose_protocol).await.unwrap();
            let sub = recv(&mut ws).await;
            assert_eq!(sub["events"], json!(["chat.message.*"]));
            send(&mut ws, subscribed(0)).await;
            for s in [1, 2, 5, 9] {
                send(&mut ws, ev(s)).await;
            }
            let r = recv(&mut ws).await;
            assert_eq!((r["action"].as_str(), r["after"].as_u64()), (Some("resume"), Some(2)));
            send(&mut ws, ev(5)).await;
            send(&mut ws, ev(9)).await;
            let done =
                json!({"type": "resumed", "id": r["id"], "channel": CHANNEL, "epoch": EPOCH, "seq": 9, "replayed": 2, "more": false});
            send(&mut ws, done).await;
            let more = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
            assert!(!matches!(more, Ok(Some(Ok(Message::Text(_))))), "a second frame: {more:?}");
        });
        let mut c = WsClient::connect(&format!("ws://{addr}/ws"), Some("t"), TokenIn::Subprotocol)
            .await
            .unwrap();
        let ack = c
            .subscribe_ordered("s1", CHANNEL, &["chat.message.*"], Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(ack["type"], "subscribed");
        assert!(c.order(CHANNEL).is_some_and(ChannelOrder::filtered));
        let started = Instant::now();
        let mut got = Vec::new();
        while got.len() < 4 {
            let f = c
                .next_event_in_order(CHANNEL, Duration::from_secs(5))
                .await
                .expect("the next event");
            got.push(f["seq"].as_u64().unwrap());
        }
        assert_eq!(got, [1, 2, 5, 9]);
        assert!(started.elapsed() < Duration::from_secs(5), "the filtered wait, not 30 s");
        assert_eq!(c.next_event_in_order(CHANNEL, Duration::from_millis(300)).await, None);
        assert_eq!(c.order(CHANNEL).and_then(ChannelOrder::seq), Some(9));
        server.await.unwrap();
    }
}
