//! [`Client`]: the reconnecting client. One Tokio task owns the socket; the application
//! talks to it through [`Client`] (commands) and reads [`Events`] (typed items). It mirrors
//! the browser client's `RealtimeClient` (`web/realtime.js`).

use crate::{is_filtered, ChannelOrder, EventFrame};
use crate::{DEFAULT_FILTERED_GAP_WAIT, DEFAULT_GAP_WAIT, DEFAULT_MAX_PENDING, DEFAULT_TAIL_CHECK};
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The subprotocol of API.md's WebSocket API; the token travels as a second one.
pub const PROTOCOL: &str = "realtime.v1";
/// How often an open connection pings: under API Gateway's 10-minute idle timeout.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How long a connection is kept before the client replaces it on its own terms: under
/// API Gateway's 2-hour cap.
pub const DEFAULT_MAX_CONNECTION_AGE: Duration = Duration::from_secs(110 * 60);
/// How long a request (subscribe, resume, ping, ...) waits for its answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How many items wait for the application; past it the client stops reading the socket
/// (the server's frames wait in TCP) until the application catches up.
pub const DEFAULT_QUEUE: usize = 1024;

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The first connection is being opened.
    Connecting,
    /// Connected: subscriptions are (being) sent, frames flow.
    Open,
    /// The connection dropped (or could not open): the client waits its backoff and tries
    /// again, then resubscribes every channel from its position.
    Reconnecting,
    /// [`Client::close`] was called, or every [`Client`] handle was dropped: for good.
    Closed,
}

/// What the application gets from [`Events`].
// Most items are events: boxing them would allocate once more per event to make the rare
// variants smaller.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An event of a subscribed channel: in `seq` order per channel, each once (events of
    /// priority `low`, which have no seq, as they come).
    Event(EventFrame),
    /// The channel's missed events cannot be replayed (`log_trimmed`, `epoch_changed`, ...):
    /// refetch its state. The events after it continue from the new position.
    Resync {
        /// The channel.
        channel: String,
        /// The server's reason, or `epoch_changed` when the client saw a new epoch.
        reason: String,
    },
    /// The connection's status changed (also readable with [`Client::status`]).
    Status(Status),
    /// Something failed that no caller waits for: a connect attempt, a resubscribe after a
    /// reconnect (retried with backoff), a resume, or an `error` frame without a request.
    Error {
        /// The channel it concerns, if any.
        channel: Option<String>,
        /// What failed.
        error: ClientError,
    },
    /// A frame this client does not interpret (say, a newer server's), or an `event` frame
    /// whose envelope does not parse, as it came.
    Frame(Value),
}

/// Why a [`Client`] call (or a background step, in [`Item::Error`]) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server answered an `error` frame.
    Server {
        /// Its `code` (`forbidden`, `bad_request`, ...).
        code: String,
        /// Its `message`.
        message: String,
    },
    /// No answer within the request timeout.
    Timeout,
    /// The connection dropped before the answer came.
    Disconnected,
    /// The call needs an open connection and there is none right now.
    NotConnected,
    /// The client is closed.
    Closed,
    /// Opening the connection failed (refused, handshake rejected, timed out).
    Connect(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Server { code, message } => write!(f, "server error {code}: {message}"),
            ClientError::Timeout => f.write_str("no answer in time"),
            ClientError::Disconnected => f.write_str("the connection dropped before the answer"),
            ClientError::NotConnected => f.write_str("not connected"),
            ClientError::Closed => f.write_str("the client is closed"),
            ClientError::Connect(e) => write!(f, "connect failed: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Exponential backoff with full jitter: attempt `n` waits a uniformly random time in
/// `[0, min(max, base * 2^n)]`, so clients dropped together do not come back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first attempt.
    pub base: Duration,
    /// The cap of every ceiling.
    pub max: Duration,
}

impl Default for Backoff {
    /// 300 ms doubling up to 30 s, like the browser client.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(300),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The longest wait before attempt `attempt` (0-based): `min(max, base * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(attempt.min(31))).min(self.max)
    }

    /// A random wait before attempt `attempt`, in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(rand::random::<f64>())
    }
}

/// A channel to subscribe to, with the events it wants.
///
/// ```
/// use realtime_client::Subscription;
/// let s = Subscription::new("chat:C1").events(["chat.message.*", "chat.turn.changed"]);
/// assert!(s.is_filtered()); // it gets only some of the channel's seqs
/// assert!(!Subscription::new("chat:C1").is_filtered());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    channel: String,
    events: Vec<String>,
    filter: Option<Value>,
}

impl Subscription {
    /// Every event of `channel` (`chat:{chatId}`, `trip:{tripId}`, `user:{userId}`, ...).
    pub fn new(channel: impl Into<String>) -> Self {
        Self {
            channel: channel.into(),
            events: Vec::new(),
            filter: None,
        }
    }

    /// Only the event types matching these patterns (`*` one segment, `**` any).
    pub fn events<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.events = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Only the events whose `data` matches this EventBridge-style content pattern.
    pub fn filter(mut self, filter: Value) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Whether the subscription gets only some of the channel's events ([`is_filtered`]).
    pub fn is_filtered(&self) -> bool {
        let events: Vec<&str> = self.events.iter().map(String::as_str).collect();
        is_filtered(&events, self.filter.as_ref())
    }
}

/// The server's `subscribed` answer: the channel's epoch and head seq at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribed {
    /// The channel.
    pub channel: String,
    /// The epoch of the channel's log.
    pub epoch: String,
    /// The channel's head: the last seq given when the subscription was stored.
    pub seq: u64,
}

/// Configures a [`Client`] ([`Client::builder`]); [`connect`](Self::connect) starts it.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    token: String,
    ping_interval: Duration,
    max_connection_age: Duration,
    request_timeout: Duration,
    backoff: Backoff,
    gap_wait: Duration,
    filtered_gap_wait: Duration,
    max_pending: usize,
    tail_check: Option<Duration>,
    queue: usize,
}

impl ClientBuilder {
    /// How often to ping (default [`DEFAULT_PING_INTERVAL`]); a ping without answer within
    /// the request timeout drops the connection (it is dead) and reconnects.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.ping_interval = d;
        self
    }

    /// How long to keep one connection before replacing it (default
    /// [`DEFAULT_MAX_CONNECTION_AGE`]).
    pub fn max_connection_age(mut self, d: Duration) -> Self {
        self.max_connection_age = d;
        self
    }

    /// How long a request waits for its answer, and a connect for its handshake (default
    /// [`DEFAULT_REQUEST_TIMEOUT`]); also the orders' resume timeout.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// The reconnect backoff (default [`Backoff::default`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// [`ChannelOrder::with_gap_wait`] of every channel.
    pub fn gap_wait(mut self, d: Duration) -> Self {
        self.gap_wait = d;
        self
    }

    /// [`ChannelOrder::with_filtered_gap_wait`] of every channel.
    pub fn filtered_gap_wait(mut self, d: Duration) -> Self {
        self.filtered_gap_wait = d;
        self
    }

    /// [`ChannelOrder::with_max_pending`] of every channel.
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n;
        self
    }

    /// [`ChannelOrder::with_tail_check`] of every channel.
    pub fn tail_check(mut self, d: Option<Duration>) -> Self {
        self.tail_check = d;
        self
    }

    /// How many items wait for the application at most (default [`DEFAULT_QUEUE`]).
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n.max(1);
        self
    }

    /// Starts the client's task, which connects at once and keeps connecting until
    /// [`Client::close`]. Returns the handle and the application's items.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (it spawns a task).
    pub fn connect(mut self) -> (Client, Events) {
        // Deadlines are `Instant + duration`: a year at most keeps them from overflowing.
        const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
        for d in [
            &mut self.ping_interval,
            &mut self.max_connection_age,
            &mut self.request_timeout,
            &mut self.gap_wait,
            &mut self.filtered_gap_wait,
            &mut self.backoff.base,
            &mut self.backoff.max,
        ] {
            *d = (*d).min(YEAR);
        }
        self.tail_check = self.tail_check.map(|d| d.min(YEAR));
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (item_tx, item_rx) = mpsc::channel(self.queue);
        let (status_tx, status_rx) = watch::channel(Status::Connecting);
        let driver = Driver {
            cmds: cmd_rx,
            items: item_tx,
            outbox: VecDeque::new(),
            app_gone: false,
            status: status_tx,
            conn: Conn::Idle,
            attempt: 0,
            subs: BTreeMap::new(),
            pending: HashMap::new(),
            next_id: 0,
            closing: false,
            opts: self,
        };
        tokio::spawn(driver.run());
        (
            Client {
                cmds: cmd_tx,
                status: status_rx,
            },
            Events { rx: item_rx },
        )
    }
}

/// A reconnecting client of the WebSocket API: it connects with the token as subprotocol
/// (`realtime.v1, bearer.<token>`), keeps its subscriptions, and when the connection drops
/// reconnects with [`Backoff`] and resubscribes every channel with `resume` from the last
/// seq it handed over, so the application gets each channel's events in `seq` order, each
/// once ([`ChannelOrder`] per channel; it also sends the `resume` a gap needs). It pings
/// under API Gateway's idle timeout and replaces its connection before API Gateway's
/// 2-hour cap. Items come through [`Events`].
///
/// A handle: clone it freely. When every handle is dropped the client closes.
///
/// ```no_run
/// use realtime_client::{Client, Event, Item, Subscription};
///
/// # async fn run(token: String) -> Result<(), realtime_client::ClientError> {
/// let (client, mut items) = Client::connect("ws://127.0.0.1:3000/ws", token);
/// let ack = client.subscribe(Subscription::new("chat:C1").events(["chat.**"])).await?;
/// println!("subscribed at seq {}", ack.seq);
/// while let Some(item) = items.recv().await {
///     match item {
///         Item::Event(frame) => {
///             if let Some(Event::MessageStored(m)) = frame.typed() {
///                 println!("{:?} {}: {}", frame.seq, m.sender_id, m.content);
///             }
///         }
///         Item::Resync { channel, .. } => println!("refetch the state of {channel}"),
///         Item::Status(status) => println!("{status:?}"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    cmds: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
}

impl Client {
    /// A client with the defaults, connecting now: see [`ClientBuilder::connect`].
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn connect(url: impl Into<String>, token: impl Into<String>) -> (Client, Events) {
        Self::builder(url, token).connect()
    }

    /// A builder for a client of the WebSocket API at `url` (`ws://…/ws`, `wss://…`),
    /// authenticated with `token` (a JWT).
    pub fn builder(url: impl Into<String>, token: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: token.into(),
            ping_interval: DEFAULT_PING_INTERVAL,
            max_connection_age: DEFAULT_MAX_CONNECTION_AGE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            backoff: Backoff::default(),
            gap_wait: DEFAULT_GAP_WAIT,
            filtered_gap_wait: DEFAULT_FILTERED_GAP_WAIT,
            max_pending: DEFAULT_MAX_PENDING,
            tail_check: Some(DEFAULT_TAIL_CHECK),
            queue: DEFAULT_QUEUE,
        }
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Command) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(make(tx)).await.map_err(|_| ClientError::Closed)?;
        rx.await.unwrap_or(Err(ClientError::Closed))
    }

    /// Subscribes (or changes the patterns of a subscribed channel) and waits for the
    /// server's answer. Not connected yet: it is sent when the connection opens. The
    /// subscription is kept across reconnects. A refused first subscribe (`forbidden`,
    /// `bad_request`, ...) is forgotten and returns [`ClientError::Server`].
    pub async fn subscribe(&self, subscription: Subscription) -> Result<Subscribed, ClientError> {
        self.call(|reply| Command::Subscribe { subscription, reply }).await
    }

    /// Forgets the channel and tells the server (when connected).
    pub async fn unsubscribe(&self, channel: &str) -> Result<(), ClientError> {
        let channel = channel.to_string();
        self.call(|reply| Command::Unsubscribe { channel, reply }).await.map(drop)
    }

    /// Sends an action frame that has an answer (`ping`, `presence`, ...) with a fresh `id`
    /// and returns the answer. Subscriptions go through [`subscribe`](Self::subscribe), which
    /// keeps them; a `subscribe` sent here would not be kept or ordered.
    pub async fn request(&self, frame: Value) -> Result<Value, ClientError> {
        self.call(|reply| Command::Request { frame, reply }).await
    }

    /// A `ping`, answered by `pong`.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.request(json!({"action": "ping"})).await.map(drop)
    }

    /// Sends an action frame without waiting for an answer (say,
    /// `{"action":"typing","chatId":"C1","isTyping":true}`).
    pub async fn send(&self, frame: Value) -> Result<(), ClientError> {
        self.call(|reply| Command::Send { frame, reply }).await
    }

    /// The token for the next connect (tokens expire; the current connection stays).
    pub async fn set_token(&self, token: impl Into<String>) -> Result<(), ClientError> {
        let token = token.into();
        self.call(|reply| Command::SetToken { token, reply }).await
    }

    /// Drops the current connection and reconnects (after the backoff), resuming every
    /// channel: what happens on its own when the connection is lost or grows old.
    pub async fn reconnect(&self) -> Result<(), ClientError> {
        self.call(|reply| Command::Reconnect { reply }).await
    }

    /// Closes for good: no reconnect. [`Events`] ends once the application has read what
    /// was handed over before.
    pub async fn close(&self) -> Result<(), ClientError> {
        match self.call(|reply| Command::Close { reply }).await {
            Err(ClientError::Closed) => Ok(()),
            other => other,
        }
    }

    /// The connection's status now.
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Waits until the status is `status` (returns at once if it is).
    pub async fn wait_for(&self, status: Status) -> Result<(), ClientError> {
        let mut rx = self.status.clone();
        rx.wait_for(|s| *s == status).await.map(drop).map_err(|_| ClientError::Closed)
    }
}

/// The application's items of a [`Client`], in the order the client produced them: each
/// channel's events in `seq` order, each once, with `resync`s, status changes and errors
/// between them. Bounded ([`ClientBuilder::queue`]): while it is full the client stops
/// reading the socket. Also a [`futures::Stream`]. Ends after the client closes.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Item>,
}

impl Events {
    /// The next item; None once the client has closed and everything was read.
    pub async fn recv(&mut self) -> Option<Item> {
        self.rx.recv().await
    }

    /// The next item if one is ready now.
    pub fn try_recv(&mut self) -> Option<Item> {
        self.rx.try_recv().ok()
    }
}

impl futures::Stream for Events {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.rx.poll_recv(cx)
    }
}

// ---- the task

type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

enum Command {
    Subscribe {
        subscription: Subscription,
        reply: Reply<Subscribed>,
    },
    Unsubscribe {
        channel: String,
        reply: Reply<Value>,
    },
    Request {
        frame: Value,
        reply: Reply<Value>,
    },
    Send {
        frame: Value,
        reply: Reply<()>,
    },
    SetToken {
        token: String,
        reply: Reply<()>,
    },
    Reconnect {
        reply: Reply<()>,
    },
    Close {
        reply: Reply<()>,
    },
}

enum Conn {
    /// Not started, or waiting for its backoff until `retry_at`.
    Idle,
    Down {
        retry_at: Instant,
    },
    Connecting(BoxFuture<'static, Result<Box<Ws>, String>>),
    Open {
        ws: Box<Ws>,
        opened_at: Instant,
        ping_at: Instant,
    },
    Closed,
}

struct Sub {
    subscription: Subscription,
    order: ChannelOrder,
    /// Callers of `subscribe` waiting for the next answer.
    waiters: Vec<Reply<Subscribed>>,
    /// Whether the server ever accepted it (a refused first subscribe is forgotten).
    accepted: bool,
    /// A failed (re)subscribe goes again then.
    retry_at: Option<Instant>,
    failures: u32,
}

enum Kind {
    Subscribe(String),
    Resume(String),
    Ping,
    Request(Reply<Value>),
}

struct Pending {
    deadline: Instant,
    kind: Kind,
}

/// What woke the task.
enum Wake {
    Command(Option<Command>),
    Conn(ConnEvent),
    Timer,
    Delivered,
}

enum ConnEvent {
    Connected(Result<Box<Ws>, String>),
    Read(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
}

/// The next thing the connection has: the handshake's end, or a message (only when
/// `read`: the application's queue has room). Pending otherwise.
async fn conn_event(conn: &mut Conn, read: bool) -> ConnEvent {
    match conn {
        Conn::Connecting(fut) => ConnEvent::Connected(fut.await),
        Conn::Open { ws, .. } if read => ConnEvent::Read(ws.next().await),
        _ => std::future::pending().await,
    }
}

struct Driver {
    opts: ClientBuilder,
    cmds: mpsc::Receiver<Command>,
    items: mpsc::Sender<Item>,
    /// Items produced but not yet in the application's queue.
    outbox: VecDeque<Item>,
    /// The application dropped its `Events`: items go nowhere.
    app_gone: bool,
    status: watch::Sender<Status>,
    conn: Conn,
    /// Failed connects since the last open.
    attempt: u32,
    /// By channel; a BTreeMap so resubscribes go in a stable order.
    subs: BTreeMap<String, Sub>,
    /// Requests sent on the current connection, by id.
    pending: HashMap<String, Pending>,
    next_id: u64,
    closing: bool,
}

impl Driver {
    async fn run(mut self) {
        self.emit(Item::Status(Status::Connecting));
        self.start_connect();
        loop {
            if self.closing && (self.outbox.is_empty() || self.app_gone) {
                return;
            }
            self.on_timers(Instant::now()).await;
            let wake = tokio::time::Instant::from_std(self.next_wake());
            let read = self.outbox.len() < self.opts.queue;
            let woke = tokio::select! {
                cmd = self.cmds.recv(), if !self.closing => Wake::Command(cmd),
                permit = self.items.reserve(), if !self.outbox.is_empty() => {
                    match permit {
                        Ok(p) => {
                            if let Some(item) = self.outbox.pop_front() {
                                p.send(item);
                            }
                        }
                        Err(_) => {
                            self.app_gone = true;
                            self.outbox.clear();
                        }
                    }
                    Wake::Delivered
                }
                ev = conn_event(&mut self.conn, read) => Wake::Conn(ev),
                _ = tokio::time::sleep_until(wake) => Wake::Timer,
            };
            match woke {
                Wake::Command(Some(cmd)) => self.on_command(cmd).await,
                Wake::Command(None) => self.close().await, // every handle dropped
                Wake::Conn(ConnEvent::Connected(Ok(ws))) => self.opened(ws).await,
                Wake::Conn(ConnEvent::Connected(Err(e))) => {
                    self.emit(Item::Error {
                        channel: None,
                        error: ClientError::Connect(e),
                    });
                    self.lost(Instant::now());
                }
                Wake::Conn(ConnEvent::Read(Some(Ok(Message::Text(t))))) => self.on_text(&t).await,
                Wake::Conn(ConnEvent::Read(Some(Ok(Message::Close(_)) | Err(_)) | None)) => self.lost(Instant::now()),
                Wake::Conn(ConnEvent::Read(Some(Ok(_)))) => {} // binary, ping (answered by tungstenite), pong
                Wake::Timer | Wake::Delivered => {}
            }
        }
    }

    fn emit(&mut self, item: Item) {
        if self.app_gone {
            return;
        }
        // Status and errors past a full queue are dropped (the status stays readable with
        // `Client::status`); events never are: the socket is not read until there is room.
        if !matches!(item, Item::Event(_) | Item::Resync { .. } | Item::Frame(_)) && self.outbox.len() >= self.opts.queue {
            return;
        }
        self.outbox.push_back(item);
    }

    fn set_status(&mut self, s: Status) {
        if *self.status.borrow() != s {
            self.status.send_replace(s);
            self.emit(Item::Status(s));
        }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("c{}", self.next_id)
    }

    fn start_connect(&mut self) {
        let mut req = match self.opts.url.as_str().into_client_request() {
            Ok(r) => r,
            Err(e) => return self.connect_failed(e.to_string()),
        };
        let protocols = format!("{PROTOCOL}, bearer.{}", self.opts.token);
        match HeaderValue::from_str(&protocols) {
            Ok(v) => req.headers_mut().insert("sec-websocket-protocol", v),
            Err(e) => return self.connect_failed(format!("the token cannot be a header: {e}")),
        };
        let timeout = self.opts.request_timeout;
        self.conn = Conn::Connecting(Box::pin(async move {
            match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(req)).await {
                Ok(Ok((ws, _))) => Ok(Box::new(ws)),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no handshake within {timeout:?}")),
            }
        }));
    }

    fn connect_failed(&mut self, e: String) {
        self.emit(Item::Error {
            channel: None,
            error: ClientError::Connect(e),
        });
        self.lost(Instant::now());
    }

    async fn opened(&mut self, ws: Box<Ws>) {
        let now = Instant::now();
        self.attempt = 0;
        self.conn = Conn::Open {
            ws,
            opened_at: now,
            ping_at: now + self.opts.ping_interval,
        };
        self.set_status(Status::Open);
        let channels: Vec<String> = self.subs.keys().cloned().collect();
        for channel in channels {
            self.send_subscribe(&channel, now).await;
        }
    }

    /// The connection is gone (or never opened): fail what waited for its answers, and
    /// reconnect after the backoff. Subscriptions stay; their orders keep their positions.
    fn lost(&mut self, now: Instant) {
        if self.closing {
            return;
        }
        for (_, p) in self.pending.drain() {
            match p.kind {
                Kind::Subscribe(ch) => {
                    if let Some(s) = self.subs.get_mut(&ch) {
                        s.order.subscribe_failed(now);
                    }
                }
                Kind::Resume(ch) => {
                    if let Some(s) = self.subs.get_mut(&ch) {
                        s.order.resume_failed(now);
                    }
                }
                Kind::Ping => {}
                Kind::Request(reply) => {
                    let _ = reply.send(Err(ClientError::Disconnected));
                }
            }
        }
        for s in self.subs.values_mut() {
            s.retry_at = None; // the resubscribe on open sends them all
        }
        let delay = self.opts.backoff.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        self.conn = Conn::Down { retry_at: now + delay };
        self.set_status(Status::Reconnecting);
    }

    /// Sends a frame on the open connection; a failure (or a write stuck for the request
    /// timeout) drops the connection.
    async fn send(&mut self, frame: &Value) -> bool {
        let Conn::Open { ws, .. } = &mut self.conn else {
            return false;
        };
        let sent = tokio::time::timeout(self.opts.request_timeout, ws.send(Message::Text(frame.to_string().into()))).await;
        if matches!(sent, Ok(Ok(()))) {
            return true;
        }
        self.lost(Instant::now());
        false
    }

    async fn send_subscribe(&mut self, channel: &str, now: Instant) {
        let id = self.id();
        let Some(s) = self.subs.get_mut(channel) else { return };
        s.retry_at = None;
        let mut frame = json!({"action": "subscribe", "id": id, "channel": channel});
        if !s.subscription.events.is_empty() {
            frame["events"] = json!(s.subscription.events);
        }
        if let Some(f) = &s.subscription.filter {
            frame["filter"] = f.clone();
        }
        // From the last seq handed over, when there is one: the replay comes before the ack.
        if let Some(resume) = s.order.subscribing(now) {
            frame["resume"] = resume;
        }
        self.pending.insert(
            id,
            Pending {
                deadline: now + self.opts.request_timeout,
                kind: Kind::Subscribe(channel.to_string()),
            },
        );
        self.send(&frame).await;
    }

    /// Sends a request with a fresh id, its answer awaited as `kind`.
    async fn request(&mut self, mut frame: Value, kind: Kind, now: Instant) {
        let id = self.id();
        frame["id"] = id.clone().into();
        self.pending.insert(
            id,
            Pending {
                deadline: now + self.opts.request_timeout,
                kind,
            },
        );
        self.send(&frame).await;
    }

    fn is_open(&self) -> bool {
        matches!(self.conn, Conn::Open { .. })
    }

    async fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Subscribe { subscription, reply } => {
                let channel = subscription.channel.clone();
                let filtered = subscription.is_filtered();
                let opts = &self.opts;
                let s = self.subs.entry(channel.clone()).or_insert_with(|| Sub {
                    order: ChannelOrder::new(channel.clone())
                        .with_gap_wait(opts.gap_wait)
                        .with_filtered_gap_wait(opts.filtered_gap_wait)
                        .with_max_pending(opts.max_pending)
                        .with_resume_timeout(opts.request_timeout)
                        .with_tail_check(opts.tail_check),
                    subscription: subscription.clone(),
                    waiters: Vec::new(),
                    accepted: false,
                    retry_at: None,
                    failures: 0,
                });
                s.subscription = subscription;
                s.order.set_filtered(filtered);
                s.waiters.push(reply);
                if self.is_open() {
                    self.send_subscribe(&channel, now).await;
                }
            }
            Command::Unsubscribe { channel, reply } => {
                if let Some(s) = self.subs.remove(&channel) {
                    for w in s.waiters {
                        let _ = w.send(Err(ClientError::Closed));
                    }
                }
                if self.is_open() {
                    self.request(json!({"action": "unsubscribe", "channel": channel}), Kind::Request(reply), now)
                        .await;
                } else {
                    let _ = reply.send(Ok(Value::Null));
                }
            }
            Command::Request { frame, reply } => {
                if !frame.is_object() {
                    let _ = reply.send(Err(ClientError::Server {
                        code: "bad_request".into(),
                        message: "a frame is a JSON object".into(),
                    }));
                } else if self.is_open() {
                    self.request(frame, Kind::Request(reply), now).await;
                } else {
                    let _ = reply.send(Err(ClientError::NotConnected));
                }
            }
            Command::Send { frame, reply } => {
                let r = if !self.is_open() {
                    Err(ClientError::NotConnected)
                } else if self.send(&frame).await {
                    Ok(())
                } else {
                    Err(ClientError::Disconnected)
                };
                let _ = reply.send(r);
            }
            Command::SetToken { token, reply } => {
                self.opts.token = token;
                let _ = reply.send(Ok(()));
            }
            Command::Reconnect { reply } => {
                match &mut self.conn {
                    Conn::Open { ws, .. } => {
                        close_ws(ws, "refresh", self.opts.request_timeout).await;
                        self.lost(now);
                    }
                    Conn::Down { retry_at } => *retry_at = now,
                    _ => {}
                }
                let _ = reply.send(Ok(()));
            }
            Command::Close { reply } => {
                self.close().await;
                let _ = reply.send(Ok(()));
            }
        }
    }

    async fn close(&mut self) {
        if self.closing {
            return;
        }
        if let Conn::Open { ws, .. } = &mut self.conn {
            close_ws(ws, "bye", self.opts.request_timeout).await;
        }
        self.conn = Conn::Closed;
        for (_, p) in self.pending.drain() {
            if let Kind::Request(reply) = p.kind {
                let _ = reply.send(Err(ClientError::Closed));
            }
        }
        for s in self.subs.values_mut() {
            for w in s.waiters.drain(..) {
                let _ = w.send(Err(ClientError::Closed));
            }
        }
        self.set_status(Status::Closed);
        self.closing = true;
    }

    async fn on_text(&mut self, text: &str) {
        let Ok(f) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let now = Instant::now();
        let pending = f["id"].as_str().and_then(|id| self.pending.remove(id));
        match f["type"].as_str().unwrap_or_default() {
            "event" => self.deliver(f, now),
            "subscribed" => {
                let channel = f["channel"].as_str().unwrap_or_default().to_string();
                let answer = match (f["epoch"].as_str(), f["seq"].as_u64()) {
                    (Some(epoch), Some(seq)) => Subscribed {
                        channel: channel.clone(),
                        epoch: epoch.to_string(),
                        seq,
                    },
                    _ => return self.emit(Item::Frame(f)),
                };
                self.deliver(f, now);
                if let Some(s) = self.subs.get_mut(&channel) {
                    s.accepted = true;
                    s.failures = 0;
                    for w in s.waiters.drain(..) {
                        let _ = w.send(Ok(answer.clone()));
                    }
                }
            }
            "resumed" => self.deliver(f, now),
            "resync" => {
                let channel = f["channel"].as_str().unwrap_or_default().to_string();
                if self.subs.contains_key(&channel) {
                    self.deliver(f, now);
                } else {
                    let reason = f["reason"].as_str().unwrap_or_default().to_string();
                    self.emit(Item::Resync { channel, reason });
                }
            }
            "error" => {
                let error = ClientError::Server {
                    code: f["code"].as_str().unwrap_or_default().to_string(),
                    message: f["message"].as_str().unwrap_or_default().to_string(),
                };
                match pending.map(|p| p.kind) {
                    Some(Kind::Subscribe(ch)) => self.subscribe_failed(&ch, error, now),
                    Some(Kind::Resume(ch)) => {
                        if let Some(s) = self.subs.get_mut(&ch) {
                            s.order.resume_failed(now);
                        }
                        self.emit(Item::Error { channel: Some(ch), error });
                    }
                    Some(Kind::Request(reply)) => {
                        let _ = reply.send(Err(error));
                    }
                    Some(Kind::Ping) | None => self.emit(Item::Error { channel: None, error }),
                }
            }
            _ => match pending.map(|p| p.kind) {
                Some(Kind::Request(reply)) => {
                    let _ = reply.send(Ok(f));
                }
                Some(Kind::Ping) => {}
                Some(Kind::Subscribe(_) | Kind::Resume(_)) | None => self.emit(Item::Frame(f)),
            },
        }
        self.pump(now).await;
    }

    /// A (re)subscribe failed (an `error` answer or none). A first one that the server
    /// refused is forgotten and its callers get the error; otherwise it goes again after
    /// the backoff, and the application hears of it.
    fn subscribe_failed(&mut self, channel: &str, error: ClientError, now: Instant) {
        let backoff = self.opts.backoff;
        let Some(s) = self.subs.get_mut(channel) else { return };
        s.order.subscribe_failed(now);
        if !s.accepted && matches!(error, ClientError::Server { .. }) {
            if let Some(s) = self.subs.remove(channel) {
                for w in s.waiters {
                    let _ = w.send(Err(error.clone()));
                }
            }
            return;
        }
        s.retry_at = Some(now + backoff.delay(s.failures).max(Duration::from_millis(1)));
        s.failures = s.failures.saturating_add(1);
        self.emit(Item::Error {
            channel: Some(channel.to_string()),
            error,
        });
    }

    /// Runs a channel's frame through its order and queues what is ready, in order.
    fn deliver(&mut self, f: Value, now: Instant) {
        let Some(s) = f["channel"].as_str().and_then(|ch| self.subs.get_mut(ch)) else {
            return;
        };
        let ready = s.order.accept_at(f, now);
        for g in ready {
            let item = if g["type"] == "resync" {
                Item::Resync {
                    channel: g["channel"].as_str().unwrap_or_default().to_string(),
                    reason: g["reason"].as_str().unwrap_or_default().to_string(),
                }
            } else {
                EventFrame::from_value(g).map_or_else(Item::Frame, Item::Event)
            };
            self.emit(item);
        }
    }

    /// Sends what is due on the open connection: each channel's retried subscribe and the
    /// `resume` its order asks for.
    async fn pump(&mut self, now: Instant) {
        if !self.is_open() {
            return;
        }
        let mut subscribes = Vec::new();
        let mut resumes = Vec::new();
        for (ch, s) in &mut self.subs {
            if s.retry_at.is_some_and(|t| t <= now) {
                subscribes.push(ch.clone());
            } else if let Some(r) = s.order.resume_request_at(now) {
                resumes.push((ch.clone(), r));
            }
        }
        for ch in subscribes {
            self.send_subscribe(&ch, now).await;
        }
        for (ch, r) in resumes {
            self.request(r, Kind::Resume(ch), now).await;
        }
    }

    async fn on_timers(&mut self, now: Instant) {
        match &mut self.conn {
            Conn::Idle | Conn::Closed | Conn::Connecting(_) => return,
            Conn::Down { retry_at } => {
                if *retry_at <= now {
                    self.start_connect();
                }
                return;
            }
            Conn::Open { ws, opened_at, ping_at } => {
                if now >= *opened_at + self.opts.max_connection_age {
                    // Before API Gateway ends it: leave on our terms, and resume.
                    close_ws(ws, "refresh", self.opts.request_timeout).await;
                    return self.lost(now);
                }
                if now >= *ping_at {
                    *ping_at = now + self.opts.ping_interval;
                    self.request(json!({"action": "ping"}), Kind::Ping, now).await;
                }
            }
        }
        let expired: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let Some(p) = self.pending.remove(&id) else { continue };
            match p.kind {
                Kind::Subscribe(ch) => self.subscribe_failed(&ch, ClientError::Timeout, now),
                Kind::Resume(ch) => {
                    if let Some(s) = self.subs.get_mut(&ch) {
                        s.order.resume_failed(now);
                    }
                }
                Kind::Request(reply) => {
                    let _ = reply.send(Err(ClientError::Timeout));
                }
                Kind::Ping => {
                    // No pong: the connection is dead even if TCP has not noticed.
                    if let Conn::Open { ws, .. } = &mut self.conn {
                        close_ws(ws, "no pong", Duration::from_millis(100)).await;
                    }
                    return self.lost(now);
                }
            }
        }
        self.pump(now).await;
    }

    /// When something is next due: a reconnect, a ping, the connection's age, a request's
    /// timeout, a retried subscribe, a channel's `resume`.
    fn next_wake(&self) -> Instant {
        let now = Instant::now();
        let mut wake = now + Duration::from_secs(3600);
        match &self.conn {
            Conn::Down { retry_at } => wake = wake.min(*retry_at),
            Conn::Open { opened_at, ping_at, .. } => {
                wake = wake.min(*ping_at).min(*opened_at + self.opts.max_connection_age);
                for p in self.pending.values() {
                    wake = wake.min(p.deadline);
                }
                for s in self.subs.values() {
                    for t in [s.retry_at, s.order.gap_deadline()].into_iter().flatten() {
                        wake = wake.min(t);
                    }
                }
            }
            _ => {}
        }
        wake
    }
}

async fn close_ws(ws: &mut Ws, reason: &str, timeout: Duration) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: reason.to_string().into(),
    };
    let _ = tokio::time::timeout(timeout, ws.close(Some(frame))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_with_full_jitter() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        let ceilings: Vec<u128> = (0..7).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(2), "no overflow");
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(800)));
        assert!(delays.iter().any(|d| *d < Duration::from_millis(400)), "full jitter: from 0");
        assert!(delays.iter().any(|d| *d > Duration::from_millis(400)));
    }
}
