//! The local stack: the embedded adapters, every function of `template.yaml`, and
//! the wiring between them (bus rules → event functions, the table's feed → the log
//! relay, schedules → timers).

use crate::registry::{self, Handler};
use crate::template::Template;
use anyhow::Context;
use realtime_domain::config::Config;
use realtime_domain::ports::{ConnectionPusher, EventPublisher, Table};
use realtime_domain::Deps;
use realtime_embedded::bus::{BusRule, EmbeddedBus};
use realtime_embedded::faults::{Faults, FaultyPublisher, FaultyPusher, FaultyTable};
use realtime_embedded::hub::Hub;
use realtime_embedded::sqlite::SqliteTable;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub struct Stack {
    pub deps: Deps,
    pub hub: Arc<Hub>,
    pub bus: Arc<EmbeddedBus>,
    pub template: Template,
    /// Handlers by the template's logical function id.
    handlers: HashMap<String, Handler>,
    schedule_period: Option<Duration>,
    /// The embedded table's change feed (SQLite only).
    feed: Option<SqliteTable>,
    /// Set when the server stops: open streams (SSE) end, so a graceful shutdown need not wait.
    streams_end: tokio::sync::watch::Sender<bool>,
    /// `--production`: the doors that stay open in development are shut.
    pub production: Option<Production>,
    limits: SocketLimits,
    /// `functions_url`: the functions run as their own processes.
    pub remote: Option<crate::remote::Remote>,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// API Gateway's WebSocket clocks: no client message for this long closes (1001)...
    pub idle_timeout: Duration,
    /// ...and so does this age.
    pub max_connection_age: Duration,
    /// Open sockets: in all, and by user.
    sockets: std::sync::Mutex<(usize, HashMap<String, usize>)>,
}

/// How many WebSocket connections the stack holds at most, in all and per user (the
/// template sets none; API Gateway's own quota is 500 new connections a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLimits {
    pub total: usize,
    pub per_user: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        Self {
            total: 16_384,
            per_user: 100,
        }
    }
}

/// One admitted socket; dropping it frees its place.
pub struct SocketSlot {
    stack: std::sync::Weak<Stack>,
    user: String,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.upgrade() {
            let mut g = stack.sockets.lock().unwrap_or_else(|e| e.into_inner());
            g.0 = g.0.saturating_sub(1);
            if let Some(n) = g.1.get_mut(&self.user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    g.1.remove(&self.user);
                }
            }
        }
    }
}

/// What `--production` changes (README "Running it for real"): no `/api/dev/*` routes, the
/// JWT secret from `JWT_SECRET` only, the management API and PutEvents only for requests
/// signed (SigV4) with these credentials, and WebSocket `Origin`s from an allow list.
#[derive(Debug, Clone)]
pub struct Production {
    /// What a management-API or PutEvents request must be signed with (SigV4).
    pub credentials: crate::sigv4::Credentials,
    /// The `Origin`s a WebSocket upgrade may carry (`*`: any). A request without `Origin`
    /// (not a browser) passes: browsers are what the check is for.
    pub allowed_origins: Vec<String>,
}

impl Production {
    /// From `REALTIME_ACCESS_KEY_ID`, `REALTIME_SECRET_ACCESS_KEY` and the allowed origins.
    pub fn from_env(allowed_origins: Vec<String>) -> anyhow::Result<Self> {
        let var = |k: &str| {
            std::env::var(k).ok().filter(|v| !v.trim().is_empty()).with_context(|| {
                format!("--production needs {k}: the management API and PutEvents accept only requests signed with these credentials")
            })
        };
        Ok(Self {
            credentials: crate::sigv4::Credentials {
                access_key_id: var("REALTIME_ACCESS_KEY_ID")?,
                secret_access_key: var("REALTIME_SECRET_ACCESS_KEY")?,
            },
            allowed_origins,
        })
    }

    /// Whether a WebSocket upgrade with this `Origin` header may go on.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        origin.is_none_or(|o| self.allowed_origins.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(o)))
    }
}

/// The shortest `JWT_SECRET` `--production` takes (HS256 wants at least 256 bits).
pub const MIN_PRODUCTION_SECRET: usize = 32;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub data_dir: PathBuf,
    /// `template.yaml`; the one embedded at build time when None.
    pub template: Option<PathBuf>,
    pub jwt_secret: Option<String>,
    /// Share of table writes, publishes and pushes that fail transiently (chaos testing).
    pub fault_rate: f64,
    pub fault_seed: u64,
    /// Overrides of the configuration (tests shorten them).
    pub log_retention_secs: Option<i64>,
    /// Runs every schedule at this period instead of its `rate(...)`.
    pub schedule_period: Option<Duration>,
    /// Presence: the grace period before `presence.left`, and how long one run of the
    /// sweeper looks for wake-ups (tests shorten both, with `schedule_period`).
    pub presence_grace: Option<Duration>,
    pub presence_sweep: Option<Duration>,
    /// The fan-out's post budget (None: none locally; `FANOUT_POST_BUDGET` in AWS).
    pub post_budget: Option<f64>,
    /// A simulated API Gateway management API in front of the hub (latency, 429, 410).
    pub simulate_api_gateway: Option<realtime_embedded::simulator::Behaviour>,
    /// The trip-status stream's heartbeat period and log polling period (tests shorten them).
    pub sse_heartbeat: Option<Duration>,
    pub sse_poll: Option<Duration>,
    /// The chat domain's configuration (typing TTL, assistant provider, ...) instead of
    /// `ChatConfig::local()` (the binary reads it from the environment; tests shorten it).
    pub chat: Option<realtime_domain::config::ChatConfig>,
    /// Keep the table in DynamoDB (e.g. DynamoDB Local) at this endpoint instead of
    /// SQLite, so functions under `cargo lambda watch` share it with the stack.
    pub dynamodb_endpoint: Option<String>,
    /// `--production` (None: the development stack, which serves loopback addresses only).
    pub production: Option<Production>,
    /// WebSocket connections at most, in all and per user (None: the defaults).
    pub socket_limits: Option<SocketLimits>,
    /// Bytes of frames one socket may have queued (None: `hub::DEFAULT_QUEUE_BUDGET`).
    pub queue_budget: Option<usize>,
    /// How long a client may take to send a request's headers, and its body (None: the
    /// defaults, `HEADER_READ_TIMEOUT` and `BODY_READ_TIMEOUT`; tests shorten them).
    pub header_read_timeout: Option<Duration>,
    pub body_read_timeout: Option<Duration>,
    /// API Gateway's idle timeout (10 min) and connection cap (2 h); tests shorten them.
    pub idle_timeout: Option<Duration>,
    pub max_connection_age: Option<Duration>,
    /// Run the functions as their own binaries behind this Lambda Invoke API (e.g.
    /// `cargo lambda watch`'s address) instead of in-process. Needs `dynamodb_endpoint`:
    /// the functions and the stack share the table.
    pub functions_url: Option<String>,
}

/// API Gateway closes a WebSocket after 10 minutes without a client message...
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// ...and after 2 hours in any case.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(2 * 60 * 60);

/// How long a client may take to send a request's headers (then the connection closes),
/// and its body (then 408).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The table's name on DynamoDB (the `TABLE_NAME` the functions get from Cargo.toml).
pub const DYNAMODB_TABLE: &str = "realtime";

/// The template this binary was built with (the local stack serves what it declares).
pub const TEMPLATE: &str = include_str!("../../../template.yaml");

/// The JWT secret: the configured one, else (in development) one kept in the data dir,
/// readable by its owner only, so tokens survive a restart.
fn jwt_secret(opts: &Options) -> anyhow::Result<String> {
    if opts.production.is_some() {
        return match &opts.jwt_secret {
            Some(s) if s.len() >= MIN_PRODUCTION_SECRET => Ok(s.clone()),
            Some(_) => anyhow::bail!("--production needs a JWT_SECRET of at least {MIN_PRODUCTION_SECRET} bytes"),
            None => anyhow::bail!("--production needs JWT_SECRET (it never uses a generated secret file)"),
        };
    }
    if let Some(s) = &opts.jwt_secret {
        return Ok(s.clone());
    }
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = opts.data_dir.join("jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if s.trim().len() >= 16 {
            // A file written by an older version may be world-readable.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
            return Ok(s.trim().to_string());
        }
    }
    let s = format!("{}{}", ulid::Ulid::new(), ulid::Ulid::new());
    let _ = std::fs::remove_file(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(s.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(s)
}

impl Stack {
    pub async fn new(opts: &Options) -> anyhow::Result<Arc<Self>> {
        if !opts.data_dir.exists() {
            use std::os::unix::fs::DirBuilderExt;
            // The table and the secret are the owner's only.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&opts.data_dir)
                .with_context(|| format!("creating {}", opts.data_dir.display()))?;
        }
        if opts.functions_url.is_some() && opts.dynamodb_endpoint.is_none() {
            anyhow::bail!("--functions-url needs --dynamodb-endpoint: the functions and the stack must share the table");
        }
        let template = match &opts.template {
            Some(p) => Template::load(p)?,
            None => Template::parse(TEMPLATE)?,
        };
        let (mut table, feed): (Arc<dyn Table>, crate::relay::Feed) = match &opts.dynamodb_endpoint {
            Some(endpoint) => {
                let sdk = realtime_aws::sdk::local_config(endpoint);
                let client = aws_sdk_dynamodb::Client::new(&sdk);
                realtime_aws::dynamo::create_table(&client, DYNAMODB_TABLE).await?;
                let feed = crate::relay::Feed::Dynamo {
                    client: client.clone(),
                    endpoint: endpoint.clone(),
                    table: DYNAMODB_TABLE.into(),
                };
                (Arc::new(realtime_aws::dynamo::DynamoTable::new(client, DYNAMODB_TABLE)), feed)
            }
            None => {
                let t = SqliteTable::open(&opts.data_dir.join("table.db"))?;
                (Arc::new(t.clone()), crate::relay::Feed::Sqlite(t))
            }
        };
        let mut handlers = HashMap::new();
        for f in &template.functions {
            let h = registry::handler(&f.binary).with_context(|| {
                format!(
                    "template function {} ({}) has no handler in the local stack",
                    f.logical_id, f.binary
                )
            })?;
            handlers.insert(f.logical_id.clone(), h);
        }
        let rules = template
            .rules
            .iter()
            .map(|r| BusRule {
                name: r.name.clone(),
                pattern: r.pattern.clone(),
                target: r.function.clone(),
            })
            .collect();
        let bus = Arc::new(EmbeddedBus::new(rules)?);
        let hub = Arc::new(Hub::with_budget(
            opts.queue_budget.unwrap_or(realtime_embedded::hub::DEFAULT_QUEUE_BUDGET),
        ));
        let mut publisher: Arc<dyn EventPublisher> = bus.clone();
        let mut pusher: Arc<dyn ConnectionPusher> = hub.clone();
        if let Some(b) = opts.simulate_api_gateway {
            pusher = Arc::new(realtime_embedded::simulator::SimulatedApiGateway::new(b).in_front_of(hub.clone()));
        }
        if opts.fault_rate > 0.0 {
            let faults = Faults::new(opts.fault_rate, opts.fault_seed);
            table = Arc::new(FaultyTable {
                inner: table,
                faults: faults.clone(),
            });
            publisher = Arc::new(FaultyPublisher {
                inner: publisher,
                faults: faults.clone(),
            });
            pusher = Arc::new(FaultyPusher { inner: pusher, faults });
        }
        let mut config = Config::local(&jwt_secret(opts)?);
        config.log_retention_secs = opts.log_retention_secs.unwrap_or(config.log_retention_secs);
        if let Some(chat) = &opts.chat {
            config.chat = chat.clone();
        }
        if let Some(d) = opts.sse_heartbeat {
            config.sse_heartbeat_ms = (d.as_millis() as u64).max(10);
        }
        if let Some(d) = opts.sse_poll {
            config.sse_poll_ms = (d.as_millis() as u64).max(10);
        }
        if let Some(d) = opts.presence_grace {
            config.presence_grace_secs = d.as_secs() as i64;
        }
        config.presence_sweep = opts.presence_sweep;
        if let Some(b) = opts.post_budget {
            config.post_budget = b.max(1.0);
        }
        let mut deps = Deps::new(table, publisher, pusher, config);
        // A sharded channel's shards go to the fan-out worker, as in AWS.
        let dispatcher = template
            .functions
            .iter()
            .find(|f| f.binary == "fanout-worker")
            .map(|f| Arc::new(realtime_embedded::invoke::EmbeddedDispatcher::new(f.logical_id.clone())));
        if let Some(d) = &dispatcher {
            deps = deps.with_dispatcher(d.clone());
        }
        let sqlite_feed = match &feed {
            crate::relay::Feed::Sqlite(t) => Some(t.clone()),
            _ => None,
        };
        let stack = Arc::new(Self {
            deps,
            hub,
            bus,
            template,
            handlers,
            schedule_period: opts.schedule_period,
            feed: sqlite_feed,
            streams_end: tokio::sync::watch::channel(false).0,
            production: opts.production.clone(),
            limits: opts.socket_limits.unwrap_or_default(),
            remote: opts.functions_url.as_deref().map(crate::remote::Remote::new),
            header_read_timeout: opts.header_read_timeout.unwrap_or(HEADER_READ_TIMEOUT),
            body_read_timeout: opts.body_read_timeout.unwrap_or(BODY_READ_TIMEOUT),
            idle_timeout: opts.idle_timeout.unwrap_or(IDLE_TIMEOUT),
            max_connection_age: opts.max_connection_age.unwrap_or(MAX_CONNECTION_AGE),
            sockets: std::sync::Mutex::default(),
        });
        // The stack runs the bus's matches (the bus never calls up), holding itself weakly so
        // that dropping it frees everything; the runner ends with the bus.
        if let Some(deliveries) = stack.bus.deliveries() {
            stack.run_deliveries(deliveries);
        }
        // Shard jobs run like the bus's deliveries: Lambda retries a failed asynchronous
        // invoke too (twice; these retries are the bus's).
        if let Some(jobs) = dispatcher.and_then(|d| d.deliveries()) {
            stack.run_deliveries(jobs);
        }
        // The table's change feed drives the log relay (`DynamoDB` events of the template).
        crate::relay::start(&stack, feed).await?;
        Ok(stack)
    }

    /// Runs deliveries (the bus's matches, shard jobs) with retries, holding the stack
    /// weakly so that dropping it frees everything; the runner ends with its sender.
    fn run_deliveries(self: &Arc<Self>, deliveries: tokio::sync::mpsc::Receiver<realtime_embedded::bus::Delivery>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(realtime_embedded::bus::run_targets(deliveries, move |target, event| {
            let weak = weak.clone();
            async move {
                let stack = weak.upgrade().ok_or(realtime_embedded::bus::SHUTTING_DOWN)?;
                stack.invoke_event(&target, event).await
            }
        }));
    }

    /// Log entries on the embedded table's feed that the relay has not finished (0 on
    /// DynamoDB, whose stream the stack does not count).
    pub async fn feed_pending(&self) -> usize {
        match &self.feed {
            Some(t) => t.feed(0, 100_000).await.map(|r| r.len()).unwrap_or(0),
            None => 0,
        }
    }

    /// A place for one more socket of `user`, or why there is none.
    pub fn admit_socket(self: &Arc<Self>, user: &str) -> Result<SocketSlot, String> {
        let mut g = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        if g.0 >= self.limits.total {
            return Err(format!("the stack holds {} connections, its limit", self.limits.total));
        }
        let mine = g.1.entry(user.to_owned()).or_default();
        if *mine >= self.limits.per_user {
            return Err(format!("{} connections per user at most", self.limits.per_user));
        }
        *mine += 1;
        g.0 += 1;
        Ok(SocketSlot {
            stack: Arc::downgrade(self),
            user: user.to_owned(),
        })
    }

    /// Ends every open stream (the server is stopping).
    pub fn end_streams(&self) {
        self.streams_end.send_replace(true);
    }

    /// Resolves when the streams should end.
    pub fn streams_ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.streams_end.subscribe();
        async move {
            let _ = rx.wait_for(|ended| *ended).await;
        }
    }

    pub fn handler(&self, logical_id: &str) -> Option<Handler> {
        self.handlers.get(logical_id).cloned()
    }

    /// Invokes an event function as EventBridge would; Err means a retry may help.
    pub async fn invoke_event(&self, logical_id: &str, event: Value) -> Result<(), String> {
        if let Some(remote) = &self.remote {
            let binary = self
                .template
                .binary_of(logical_id)
                .ok_or_else(|| format!("no function {logical_id}"))?;
            return remote.invoke(binary, &event).await.map(|_| ());
        }
        match self.handler(logical_id) {
            Some(Handler::Event(f)) => f(self.deps.clone(), event).await.map_err(|e| e.message),
            _ => Err(format!("{logical_id} is not an event function")),
        }
    }

    /// Runs each schedule of the template on a timer until the stack is dropped.
    pub fn start_schedules(self: &Arc<Self>) {
        for s in &self.template.schedules {
            let Some(period) = self
                .schedule_period
                .or_else(|| crate::template::rate_seconds(&s.expression).map(Duration::from_secs))
            else {
                tracing::warn!(schedule = %s.name, expression = %s.expression, "only rate() schedules run locally");
                continue;
            };
            let (weak, name, function) = (Arc::downgrade(self), s.name.clone(), s.function.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period.max(Duration::from_millis(10)));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(stack) = weak.upgrade() else { return };
                    let event = json!({"version": "0", "id": ulid::Ulid::new().to_string(), "detail-type": "Scheduled Event", "source": "aws.events",
                        "time": chrono::Utc::now().to_rfc3339(), "resources": [format!("local:rule/{name}")], "detail": {}});
                    if let Err(e) = stack.invoke_event(&function, event).await {
                        tracing::warn!(schedule = %name, error = %e, "scheduled run failed");
                    }
                }
            });
        }
    }

    pub fn data_file(dir: &Path) -> PathBuf {
        dir.join("table.db")
    }
}
