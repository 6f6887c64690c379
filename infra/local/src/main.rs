//! `realtime-local`: the whole system on one address (API.md "The local stack").

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(version, about = "Runs the realtime event system locally on the embedded adapters")]
struct Args {
    /// The address to serve everything on (loopback by default).
    #[arg(long, env = "REALTIME_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Where the table and the JWT secret are kept (data survives a restart).
    #[arg(long, env = "REALTIME_DATA_DIR", default_value = ".realtime")]
    data_dir: PathBuf,
    /// A template to serve instead of the built-in copy of template.yaml.
    #[arg(long, env = "REALTIME_TEMPLATE")]
    template: Option<PathBuf>,
    /// Chaos testing: the share (0..1) of table writes, publishes and pushes that fail
    /// transiently. Nothing is lost: the outbox, retries and `resume` recover it all.
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Keep the table in DynamoDB at this endpoint (e.g. DynamoDB Local from
    /// `infra/dynamodb-local.sh`) instead of SQLite in the data dir.
    #[arg(long, env = "REALTIME_DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: Option<String>,
    /// For a small install: no /api/dev/* routes, JWT_SECRET required, the management API
    /// and PutEvents signed (SigV4) with REALTIME_ACCESS_KEY_ID / REALTIME_SECRET_ACCESS_KEY,
    /// WebSocket origins from --allowed-origin. Without it the stack serves loopback only.
    #[arg(long, env = "REALTIME_PRODUCTION")]
    production: bool,
    /// An Origin a browser may open a WebSocket from (with --production; repeat it, or
    /// comma-separate; `*` allows any).
    #[arg(long = "allowed-origin", env = "REALTIME_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// WebSocket connections the stack holds at most.
    #[arg(long, env = "REALTIME_MAX_CONNECTIONS", default_value_t = 16_384)]
    max_connections: usize,
    /// WebSocket connections one user may hold at most.
    #[arg(long, env = "REALTIME_MAX_CONNECTIONS_PER_USER", default_value_t = 100)]
    max_connections_per_user: usize,
    /// Bytes of frames one socket may have queued; a socket that falls further behind is cut
    /// (its client reconnects and resumes).
    #[arg(long, env = "REALTIME_QUEUE_BUDGET_BYTES", default_value_t = realtime_embedded::hub::DEFAULT_QUEUE_BUDGET)]
    queue_budget_bytes: usize,
    /// API Gateway's idle timeout: a WebSocket with no client message for this long closes (1001).
    #[arg(long, env = "REALTIME_IDLE_TIMEOUT_SECS", default_value_t = 600)]
    idle_timeout_secs: u64,
    /// API Gateway's connection cap: a WebSocket this old closes (1001).
    #[arg(long, env = "REALTIME_MAX_CONNECTION_SECS", default_value_t = 7200)]
    max_connection_secs: u64,
    /// How long channel logs keep events for replay (default `LOG_RETENTION_HOURS`, 24 h).
    /// A few seconds shows a client's `resync` locally.
    #[arg(long, env = "REALTIME_LOG_RETENTION_SECS")]
    log_retention_secs: Option<i64>,
    /// Run the functions as their own binaries behind this Lambda Invoke API (e.g. the
    /// address of `cargo lambda watch`) instead of in-process; needs --dynamodb-endpoint.
    #[arg(long, env = "REALTIME_FUNCTIONS_URL")]
    functions_url: Option<String>,
    /// Posts a second one event's fan-out may make (FANOUT_POST_BUDGET); by default the
    /// local hub has no budget, API Gateway's is 10,000/s for the whole account.
    #[arg(long, env = "FANOUT_POST_BUDGET")]
    post_budget: Option<f64>,
    /// Puts a simulated API Gateway management API in front of the sockets, e.g.
    /// `median=20ms,p99=80ms,rate=10000,burst=5000,gone=0.01`: each post waits a latency
    /// from that distribution, 429 above the rate, 410 for that fraction of connections.
    #[arg(long, env = "REALTIME_SIMULATE_API_GATEWAY")]
    simulate_api_gateway: Option<realtime_embedded::simulator::Behaviour>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    realtime_edge::telemetry::init();
    let args = Args::parse();
    let production = match args.production {
        true => Some(realtime_local::stack::Production::from_env(args.allowed_origins.clone())?),
        false => None,
    };
    let opts = realtime_local::stack::Options {
        data_dir: args.data_dir.clone(),
        template: args.template,
        jwt_secret: std::env::var("JWT_SECRET").ok(),
        fault_rate: args.fault_rate,
        fault_seed: rand_seed(),
        dynamodb_endpoint: args.dynamodb_endpoint,
        // TYPING_TTL_SECS, ASSISTANT_PROVIDER=openai, ASSISTANT_BASE_URL, ... (README "The chat domain").
        chat: Some(realtime_domain::config::ChatConfig::from_env()?),
        production,
        socket_limits: Some(realtime_local::stack::SocketLimits {
            total: args.max_connections,
            per_user: args.max_connections_per_user,
        }),
        queue_budget: Some(args.queue_budget_bytes),
        idle_timeout: Some(std::time::Duration::from_secs(args.idle_timeout_secs.max(1))),
        functions_url: args.functions_url.clone(),
        log_retention_secs: args.log_retention_secs.map(|s| s.max(1)),
        max_connection_age: Some(std::time::Duration::from_secs(args.max_connection_secs.max(1))),
        post_budget: args.post_budget,
        simulate_api_gateway: args.simulate_api_gateway,
        ..Default::default()
    };
    let running = realtime_local::start(args.addr, &opts).await?;
    let a = running.addr;
    let mode = if args.production { "production" } else { "development" };
    println!("realtime-local is up on http://{a} ({mode})");
    println!("  page           http://{a}/");
    if args.production {
        println!("  HTTP API       http://{a}/api   (tokens signed with JWT_SECRET)");
    } else {
        println!("  HTTP API       http://{a}/api   (dev tokens: POST /api/dev/token)");
    }
    println!("  WebSocket API  ws://{a}/ws");
    println!("  @connections   http://{a}/@connections/{{id}}");
    println!("  EventBridge    http://{a}/      (X-Amz-Target: AWSEvents.PutEvents)");
    println!("  data           {}", args.data_dir.display());
    println!("Ctrl-C stops it.");
    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    running.stop().await;
    Ok(())
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
