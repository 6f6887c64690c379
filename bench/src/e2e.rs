//! The end-to-end load client: N WebSocket subscribers on one channel, messages
//! published over HTTP, each timed from just before its POST to its receipt on every
//! subscriber. The same client, workload and frame size for every server:
//!
//! * `realtime`: the local stack. A dev token with the `admin` role (which may
//!   subscribe to any chat channel), a chat it creates, `ws://…/ws?token=…`,
//!   `{"action":"subscribe",…}`, `POST /api/chat/{id}/messages`.
//! * `bare`: `bench-bare`, the same frames and routes with nothing behind them.
//! * `socketio`: `bench/peers/socketio-server.js`, Socket.IO 4 over its WebSocket
//!   transport (Engine.IO v4 framing), `socket.join(channel)` and `io.to(channel).emit`.
//!
//! Everything is bounded: connections by the levels, messages by `messages` and
//! `max_deliveries`, waiting by `message_timeout`, the whole run by `deadline`.

use crate::procfs::{self, RssSampler};
use crate::stats::{self, Summary};
use anyhow::{bail, ensure, Context};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The peers' chat id: as long as a real one (a ULID), so that frames are the same size.
const PEER_CHAT: &str = "01BENCHBENCHBENCHBENCHBENC";

/// The load client's WebSocket read buffer (frames here are ~0.6 KB).
const CLIENT_READ_BUFFER: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Realtime,
    Socketio,
    Bare,
    /// The bare server with 4 KiB WebSocket read buffers instead of axum's default
    /// 128 KiB (which tungstenite zero-fills on every read, so each socket keeps it resident).
    BareTuned,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Realtime => "realtime-local",
            Target::Socketio => "socket.io 4",
            Target::Bare => "bare tokio",
            Target::BareTuned => "bare tokio, 4 KiB buffers",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    /// `http://127.0.0.1:PORT` (loopback only).
    pub base: String,
    /// Subscriber counts, ascending; clients are added as the levels go up.
    pub levels: Vec<usize>,
    /// Sequential messages per level (each waits for every receipt of the one before) ...
    pub messages: usize,
    /// ... but at most this many deliveries per level (fewer messages at large N) ...
    pub max_deliveries: usize,
    /// ... and never fewer messages than this.
    pub min_messages: usize,
    /// Unmeasured messages before each level.
    pub warmup: usize,
    /// Messages of the throughput phase at the last level (0: none).
    pub burst: usize,
    /// Publishes in flight at once in the throughput phase.
    pub burst_inflight: usize,
    pub connect_concurrency: usize,
    /// The server process, for its CPU time and RSS.
    pub server_pid: Option<u32>,
    pub message_timeout: Duration,
    /// The whole run, connects included; what is left when it passes is skipped.
    pub deadline: Duration,
}

impl Options {
    pub fn new(target: Target, base: impl Into<String>) -> Self {
        Self {
            target,
            base: base.into(),
            levels: vec![1, 100, 1000, 10_000],
            messages: 200,
            max_deliveries: 300_000,
            min_messages: 20,
            warmup: 3,
            burst: 60,
            burst_inflight: 4,
            connect_concurrency: 64,
            server_pid: None,
            message_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(300),
        }
    }

    fn messages_at(&self, level: usize) -> usize {
        (self.max_deliveries / level.max(1)).clamp(self.min_messages, self.messages.max(self.min_messages))
    }
}

/// One level of the latency phase: sequential messages to `subscribers` sockets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Level {
    pub target: Target,
    pub subscribers: usize,
    pub messages: usize,
    pub deliveries: usize,
    pub missing: usize,
    pub latency: Summary,
    /// Seconds to connect and subscribe the sockets this level added.
    pub connect_secs: f64,
    /// The server's CPU seconds over the measured messages (HTTP publish, storage,
    /// events, sequencing and pushes), and per delivery.
    pub server_cpu_secs: Option<f64>,
    pub cpu_us_per_delivery: Option<f64>,
    /// The load client's own CPU seconds over the same messages.
    pub client_cpu_secs: Option<f64>,
    /// The server's RSS with the sockets connected and idle, and its peak while publishing.
    pub rss_idle_kb: Option<u64>,
    pub rss_peak_kb: Option<u64>,
}

/// The throughput phase: `messages` published `inflight` at a time to every socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Burst {
    pub target: Target,
    pub subscribers: usize,
    pub messages: usize,
    pub inflight: usize,
    pub deliveries: usize,
    pub missing: usize,
    /// First POST to last receipt.
    pub secs: f64,
    pub deliveries_per_sec: f64,
    pub latency: Summary,
    pub server_cpu_secs: Option<f64>,
    pub cpu_us_per_delivery: Option<f64>,
    pub client_cpu_secs: Option<f64>,
    pub rss_peak_kb: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub target: Target,
    pub levels: Vec<Level>,
    pub burst: Option<Burst>,
    /// Sockets connected and subscribed at the end.
    pub connected: usize,
    pub connect_failures: usize,
    /// Average size of a delivered frame, bytes.
    pub frame_bytes: f64,
    pub notes: Vec<String>,
}

// ---------- receipts ----------

/// What every subscriber reports: per message, when it was sent, how many sockets
/// must receive it, how many did and after how long.
pub struct Recorder {
    base: Instant,
    sent_ns: Vec<AtomicU64>,
    expect: Vec<AtomicU32>,
    got: Vec<AtomicU32>,
    latency_us: Vec<Mutex<Vec<u32>>>,
    last_ns: AtomicU64,
    bytes: AtomicU64,
    frames: AtomicU64,
    done: tokio::sync::Notify,
}

impl Recorder {
    pub fn new(messages: usize) -> Self {
        Self {
            base: Instant::now(),
            sent_ns: (0..messages).map(|_| AtomicU64::new(0)).collect(),
            expect: (0..messages).map(|_| AtomicU32::new(u32::MAX)).collect(),
            got: (0..messages).map(|_| AtomicU32::new(0)).collect(),
            latency_us: (0..messages).map(|_| Mutex::new(Vec::new())).collect(),
            last_ns: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            done: tokio::sync::Notify::new(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.sent_ns.len()
    }

    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Just before message `k` is published, to `expect` subscribers.
    fn mark_sent(&self, k: usize, expect: usize) {
        self.expect[k].store(expect as u32, Ordering::Release);
        self.sent_ns[k].store(self.now_ns().max(1), Ordering::Release);
    }

    fn record(&self, k: usize, now_ns: u64, len: usize) {
        let Some(sent) = self.sent_ns.get(k).map(|s| s.load(Ordering::Acquire)) else {
            return;
        };
        if sent == 0 {
            return;
        }
        let us = (now_ns.saturating_sub(sent) / 1000).min(u64::from(u32::MAX)) as u32;
        self.latency_us[k].lock().unwrap_or_else(|e| e.into_inner()).push(us);
        self.last_ns.fetch_max(now_ns, Ordering::AcqRel);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
        self.frames.fetch_add(1, Ordering::Relaxed);
        let n = self.got[k].fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.expect[k].load(Ordering::Acquire) {
            self.done.notify_waiters();
        }
    }

    fn complete(&self, k: usize) -> bool {
        self.got[k].load(Ordering::Acquire) >= self.expect[k].load(Ordering::Acquire)
    }

    /// Waits until every message of `ks` reached all its subscribers, or `deadline`.
    async fn wait(&self, ks: std::ops::Range<usize>, deadline: tokio::time::Instant) -> bool {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ks.clone().all(|k| self.complete(k)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return ks.clone().all(|k| self.complete(k));
            }
        }
    }

    fn received(&self, ks: std::ops::Range<usize>) -> usize {
        ks.map(|k| self.got[k].load(Ordering::Acquire) as usize).sum()
    }

    fn latencies(&self, ks: std::ops::Range<usize>) -> Vec<u32> {
        let mut all = Vec::new();
        for k in ks {
            all.extend_from_slice(&self.latency_us[k].lock().unwrap_or_else(|e| e.into_inner()));
        }
        all
    }

    /// The average size of the frames that carried a benchmark message.
    pub fn frame_bytes(&self) -> f64 {
        let n = self.frames.load(Ordering::Relaxed);
        if n == 0 {
            0.0
        } else {
            self.bytes.load(Ordering::Relaxed) as f64 / n as f64
        }
    }
}

/// The message index in a frame: the digits after `"content":"bench-`.
pub fn bench_index(frame: &str) -> Option<usize> {
    const MARK: &str = "\"content\":\"bench-";
    let at = frame.find(MARK)? + MARK.len();
    let digits = frame[at..].bytes().take_while(u8::is_ascii_digit).count();
    frame[at..at + digits].parse().ok()
}

// ---------- the session with one server ----------

pub struct Session {
    pub target: Target,
    ws_url: String,
    publish_url: String,
    token: Option<String>,
    pub channel: String,
    http: reqwest::Client,
}

impl Session {
    /// Prepares the channel: on the local stack a dev token and a chat, on the peers nothing.
    pub async fn open(target: Target, base: &str) -> anyhow::Result<Self> {
        crate::ensure_loopback(base)?;
        let base = base.trim_end_matches('/').to_string();
        let ws_base = base.replacen("http://", "ws://", 1);
        let http = reqwest::Client::builder().no_proxy().build()?;
        match target {
            Target::Realtime => {
                // Set up with the project's client crate; the timed paths below stay raw.
                let api = realtime_client::Http::new(base.as_str());
                let token = api.dev_token("bench", &["admin"]).await?;
                let (status, chat) = api.post("/api/chat", Some(&token), &json!({"title": "bench"})).await?;
                ensure!(status == 201, "POST /api/chat: {status} {chat}");
                let chat_id = chat["chatId"].as_str().context("no chatId")?.to_string();
                Ok(Self {
                    target,
                    ws_url: format!("{ws_base}/ws?token={token}"),
                    publish_url: format!("{base}/api/chat/{chat_id}/messages"),
                    token: Some(token),
                    channel: format!("chat:{chat_id}"),
                    http,
                })
            }
            Target::Bare | Target::BareTuned | Target::Socketio => Ok(Self {
                target,
                ws_url: if target != Target::Socketio {
                    format!("{ws_base}/ws")
                } else {
                    format!("{ws_base}/socket.io/?EIO=4&transport=websocket")
                },
                publish_url: format!("{base}/api/chat/{PEER_CHAT}/messages"),
                token: None,
                channel: format!("chat:{PEER_CHAT}"),
                http,
            }),
        }
    }

    /// The body of message `k`. The local stack builds the event itself; the peers get
    /// an envelope of the same shape, so every server sends frames of about one size.
    fn body(&self, k: usize) -> String {
        match self.target {
            Target::Realtime => json!({"content": format!("bench-{k}")}).to_string(),
            _ => {
                let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                json!({
                    "id": ulid::Ulid::new().to_string(), "type": "chat.message.stored", "version": 1,
                    "occurredAt": now, "correlationId": ulid::Ulid::new().to_string(), "causationId": null,
                    "priority": "normal", "source": "realtime.chat", "chatId": PEER_CHAT,
                    "actor": {"userId": "bench"},
                    "data": {"id": ulid::Ulid::new().to_string(), "chatId": PEER_CHAT, "senderId": "bench",
                             "senderRole": "user", "content": format!("bench-{k}"), "createdAt": now}
                })
                .to_string()
            }
        }
    }

    async fn publish(&self, body: String) -> anyhow::Result<()> {
        let mut req = self
            .http
            .post(&self.publish_url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            bail!("publish answered {status}: {}", resp.text().await.unwrap_or_default());
        }
        // Read the body so the connection goes back to the pool.
        let _ = resp.bytes().await;
        Ok(())
    }

    /// Connects one socket and subscribes it to the channel; returns once acknowledged.
    pub async fn connect(&self, n: usize) -> anyhow::Result<Ws> {
        // Small read buffers: tungstenite zero-fills the whole buffer (128 KiB by default)
        // before every read, which would make the client, not the server, the bottleneck.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(self.ws_url.as_str(), Some(config), false).await?;
        match self.target {
            Target::Realtime | Target::Bare | Target::BareTuned => {
                let frame =
                    json!({"action": "subscribe", "id": format!("s{n}"), "channel": self.channel, "events": ["chat.message.stored"]});
                ws.send(Message::text(frame.to_string())).await?;
                let ack = next_text(&mut ws, |t| t.contains("\"subscribed\"") || t.contains("\"error\"")).await?;
                ensure!(ack.contains("\"subscribed\""), "subscribe refused: {ack}");
            }
            Target::Socketio => {
                // Engine.IO open, Socket.IO connect to `/`, then an acknowledged emit.
                next_text(&mut ws, |t| t.starts_with('0')).await?;
                ws.send(Message::text("40")).await?;
                next_text(&mut ws, |t| t.starts_with("40")).await?;
                ws.send(Message::text(format!("421[\"subscribe\",\"{}\"]", self.channel))).await?;
                next_text(&mut ws, |t| t.starts_with("431")).await?;
            }
        }
        Ok(ws)
    }
}

/// The next text frame for which `pred` holds (others are skipped), within 15 s.
async fn next_text(ws: &mut Ws, pred: impl Fn(&str) -> bool) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if pred(t.as_str()) => return Ok(t.to_string()),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => bail!("closed by the server"),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(Some(Ok(_))) => continue,
            Err(_) => bail!("no answer within 15 s"),
        }
    }
}

/// A subscriber: records every benchmark message it receives (and answers Engine.IO pings).
async fn read_loop(mut ws: Ws, rec: Arc<Recorder>, socketio: bool) {
    while let Some(Ok(msg)) = ws.next().await {
        match msg {
            Message::Text(t) => {
                let now = rec.now_ns();
                if let Some(k) = bench_index(t.as_str()) {
                    rec.record(k, now, t.len());
                } else if socketio && t.as_str() == "2" && ws.send(Message::text("3")).await.is_err() {
                    break;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
}

// ---------- the run ----------

struct Clients {
    tasks: Vec<JoinHandle<()>>,
    failures: usize,
    first_error: Option<String>,
}

impl Drop for Clients {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Connects sockets until `target` are subscribed (or the deadline passes).
async fn connect_up_to(
    session: &Arc<Session>,
    rec: &Arc<Recorder>,
    clients: &mut Clients,
    target: usize,
    concurrency: usize,
    deadline: Instant,
) {
    let socketio = session.target == Target::Socketio;
    while clients.tasks.len() < target && Instant::now() < deadline && clients.failures < 100 + target / 10 {
        let need = target - clients.tasks.len();
        let start = clients.tasks.len() + clients.failures;
        let results: Vec<anyhow::Result<Ws>> = futures::stream::iter(start..start + need)
            .map(|n| {
                let s = session.clone();
                async move { s.connect(n).await }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        for r in results {
            match r {
                Ok(ws) => clients.tasks.push(tokio::spawn(read_loop(ws, rec.clone(), socketio))),
                Err(e) => {
                    clients.failures += 1;
                    clients.first_error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
    }
}

/// Waits until the server's CPU is quiet (connect events of the local stack settle), ≤ 10 s.
async fn settle(pid: Option<u32>) {
    let Some(pid) = pid else {
        tokio::time::sleep(Duration::from_millis(200)).await;
        return;
    };
    let end = Instant::now() + Duration::from_secs(10);
    let mut last = procfs::cpu_secs(pid).unwrap_or_default();
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = procfs::cpu_secs(pid).unwrap_or_default();
        if now - last < 0.02 {
            return;
        }
        last = now;
    }
}

fn self_cpu() -> Option<f64> {
    procfs::cpu_secs(std::process::id())
}

fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(b? - a?)
}

/// Runs the latency levels, then the throughput phase at the last level.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let deadline = started + opts.deadline;
    let session = Arc::new(Session::open(opts.target, &opts.base).await?);
    let total: usize = opts.levels.iter().map(|&l| opts.warmup + opts.messages_at(l)).sum::<usize>() + opts.burst;
    let rec = Arc::new(Recorder::new(total));
    let next = AtomicUsize::new(0);
    let mut clients = Clients {
        tasks: Vec::new(),
        failures: 0,
        first_error: None,
    };
    let mut report = Report {
        target: opts.target,
        levels: Vec::new(),
        burst: None,
        connected: 0,
        connect_failures: 0,
        frame_bytes: 0.0,
        notes: Vec::new(),
    };
    let pid = opts.server_pid;

    for &level in &opts.levels {
        if Instant::now() >= deadline {
            report.notes.push(format!("deadline reached before {level} subscribers"));
            break;
        }
        let t = Instant::now();
        connect_up_to(&session, &rec, &mut clients, level, opts.connect_concurrency, deadline).await;
        let connect_secs = t.elapsed().as_secs_f64();
        let n = clients.tasks.len();
        if n < level {
            report.notes.push(format!(
                "{n} of {level} subscribers connected ({} failures; first: {})",
                clients.failures,
                clients.first_error.as_deref().unwrap_or("deadline")
            ));
            if n == 0 {
                break;
            }
        }
        settle(pid).await;
        let rss_idle_kb = pid.and_then(procfs::rss_kb);

        // Unmeasured warm-up messages (first use of the channel's log, pools, caches).
        for _ in 0..opts.warmup {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let body = session.body(k);
            rec.mark_sent(k, n);
            session.publish(body).await.context("warm-up publish")?;
            rec.wait(k..k + 1, tokio::time::Instant::now() + opts.message_timeout).await;
        }

        let m = opts.messages_at(level);
        let first = next.load(Ordering::Relaxed);
        let (cpu0, client0, sampler) = (pid.and_then(procfs::cpu_secs), self_cpu(), RssSampler::start(pid));
        let mut sent = 0;
        for _ in 0..m {
            if Instant::now() >= deadline {
                report
                    .notes
                    .push(format!("deadline reached after {sent} messages at {n} subscribers"));
                break;
            }
            let k = next.fetch_add(1, Ordering::Relaxed);
            let body = session.body(k);
            rec.mark_sent(k, n);
            sent += 1;
            if let Err(e) = session.publish(body).await {
                report.notes.push(format!("publish failed at {n} subscribers: {e:#}"));
                continue;
            }
            if !rec.wait(k..k + 1, tokio::time::Instant::now() + opts.message_timeout).await {
                report.notes.push(format!(
                    "message {k} reached {} of {n} subscribers within {:?}",
                    rec.got[k].load(Ordering::Relaxed),
                    opts.message_timeout
                ));
            }
        }
        let ks = first..first + sent;
        let (cpu1, client1, rss_peak_kb) = (pid.and_then(procfs::cpu_secs), self_cpu(), sampler.stop().await);
        let deliveries = rec.received(ks.clone());
        let server_cpu_secs = diff(cpu0, cpu1);
        report.levels.push(Level {
            target: opts.target,
            subscribers: n,
            messages: sent,
            deliveries,
            missing: (sent * n).saturating_sub(deliveries),
            latency: stats::summarize(&mut rec.latencies(ks)),
            connect_secs,
            server_cpu_secs,
            cpu_us_per_delivery: server_cpu_secs.filter(|_| deliveries > 0).map(|c| c * 1e6 / deliveries as f64),
            client_cpu_secs: diff(client0, client1),
            rss_idle_kb,
            rss_peak_kb: pid.map(|_| rss_peak_kb),
        });
    }

    let n = clients.tasks.len();
    if opts.burst > 0 && n > 0 && Instant::now() < deadline {
        let first = next.load(Ordering::Relaxed);
        let count = opts.burst.min(rec.capacity() - first);
        let ks = first..first + count;
        next.store(first + count, Ordering::Relaxed);
        let (cpu0, client0, sampler) = (pid.and_then(procfs::cpu_secs), self_cpu(), RssSampler::start(pid));
        let t0 = rec.now_ns();
        let errors: Vec<String> = futures::stream::iter(ks.clone())
            .map(|k| {
                let (session, rec) = (session.clone(), rec.clone());
                async move {
                    let body = session.body(k);
                    rec.mark_sent(k, n);
                    session.publish(body).await.err().map(|e| format!("{e:#}"))
                }
            })
            .buffer_unordered(opts.burst_inflight.max(1))
            .filter_map(|e| async move { e })
            .collect()
            .await;
        let wait_until = tokio::time::Instant::now() + opts.message_timeout + Duration::from_millis(50 * count as u64);
        let complete = rec
            .wait(
                ks.clone(),
                wait_until.min(tokio::time::Instant::from_std(deadline + Duration::from_secs(30))),
            )
            .await;
        let (cpu1, client1, rss_peak_kb) = (pid.and_then(procfs::cpu_secs), self_cpu(), sampler.stop().await);
        if let Some(e) = errors.first() {
            report.notes.push(format!("{} burst publishes failed; first: {e}", errors.len()));
        }
        if !complete {
            report.notes.push("the throughput phase did not complete in time".into());
        }
        let deliveries = rec.received(ks.clone());
        let secs = rec.last_ns.load(Ordering::Acquire).saturating_sub(t0) as f64 / 1e9;
        let server_cpu_secs = diff(cpu0, cpu1);
        report.burst = Some(Burst {
            target: opts.target,
            subscribers: n,
            messages: count,
            inflight: opts.burst_inflight,
            deliveries,
            missing: (count * n).saturating_sub(deliveries),
            secs,
            deliveries_per_sec: if secs > 0.0 { deliveries as f64 / secs } else { 0.0 },
            latency: stats::summarize(&mut rec.latencies(ks)),
            server_cpu_secs,
            cpu_us_per_delivery: server_cpu_secs.filter(|_| deliveries > 0).map(|c| c * 1e6 / deliveries as f64),
            client_cpu_secs: diff(client0, client1),
            rss_peak_kb: pid.map(|_| rss_peak_kb),
        });
    }
    report.connected = n;
    report.connect_failures = clients.failures;
    report.frame_bytes = rec.frame_bytes();
    drop(clients);
    Ok(report)
}

// ---------- the server processes ----------

/// A server the benchmark started; killed when dropped.
pub struct ServerProc {
    child: std::process::Child,
    pub pid: u32,
    pub base: String,
}

impl ServerProc {
    /// Starts `program args` (which must listen on `port` on 127.0.0.1), output to `log`.
    pub fn spawn(program: &str, args: &[String], env: &[(&str, String)], port: u16, log: &std::path::Path) -> anyhow::Result<Self> {
        let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().with_context(|| format!("starting {program}"))?;
        let pid = child.id();
        Ok(Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Waits until the port accepts connections.
    pub async fn ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let addr = self.base.trim_start_matches("http://").to_string();
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited: {status}");
            }
            if TcpStream::connect(&addr).await.is_ok() {
                return Ok(());
            }
            ensure!(Instant::now() < end, "{addr} not listening after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then SIGKILL after 3 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The child gets SIGTERM if this process dies first (even by a panic that aborts and
/// runs no destructor), so no server outlives the benchmark.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_message_index_in_every_server_framing() {
        assert_eq!(
            bench_index(r#"{"type":"event","event":{"data":{"content":"bench-42","x":1}}}"#),
            Some(42)
        );
        assert_eq!(bench_index(r#"42["event",{"data":{"content":"bench-7"}}]"#), Some(7));
        assert_eq!(bench_index(r#"{"type":"subscribed"}"#), None);
    }

    #[test]
    fn fewer_messages_at_large_levels() {
        let o = Options::new(Target::Bare, "http://127.0.0.1:1");
        assert_eq!(o.messages_at(1), 200);
        assert_eq!(o.messages_at(10_000), 30);
        assert_eq!(o.messages_at(100_000), 20);
    }
}
