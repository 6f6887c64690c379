//! One event to 1,000, 10,000 and 100,000 subscriptions of one channel, with 1, 4, 16 and 64
//! shards, against a simulated API Gateway management API (latency from a distribution,
//! the account's token bucket answering 429, a fraction of connections gone): time to the
//! last post, posts/s, 429s, retries, invocations and cost per million delivered.
//!
//! The subscriptions are table items only (no sockets): this measures the fan-out side.
//! Shards go to workers the way Lambda's asynchronous invoke runs them: each its own task
//! at once, after an invoke's latency, up to the worker's reserved concurrency. Each shard is
//! read as DynamoDB serves a partition (in parallel, 10 ms a 1 MB page).
//!
//!   cargo run --release -p realtime-bench --bin bench-fanout -- --out bench/results

use anyhow::Context;
use async_trait::async_trait;
use clap::Parser;
use realtime_bench::cost::{Usage, PRICES};
use realtime_bench::counting;
use realtime_bench::plot::{self, Chart, Series};
use realtime_domain::channels::Channel;
use realtime_domain::config::Config;
use realtime_domain::events::{Cause, Envelope, Event, MessageStored, Position};
use realtime_domain::ports::{
    Condition, DispatchError, Item, Page, Query, ShardDispatcher, ShardJob, SkCond, Table, TableError, TxOp, Update,
};
use realtime_domain::{fanout, keys, shards, Deps};
use realtime_embedded::simulator::{Behaviour, SimulatedApiGateway};
use realtime_embedded::sqlite::SqliteTable;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// Subscriptions of the channel, comma-separated.
    #[arg(long, default_value = "1000,10000,100000", value_delimiter = ',')]
    subscribers: Vec<usize>,
    /// Shard counts, comma-separated.
    #[arg(long, default_value = "1,4,16,64", value_delimiter = ',')]
    shards: Vec<u32>,
    /// The fan-out's post budget (posts/s over all shards; FANOUT_POST_BUDGET).
    #[arg(long, default_value_t = 10_000.0)]
    budget: f64,
    /// The simulated management API (see `realtime_embedded::simulator::Behaviour`).
    #[arg(long, default_value = "median=20ms,p99=80ms,rate=10000,burst=5000,gone=0.001")]
    api: Behaviour,
    /// Posts in flight per invocation (FANOUT_CONCURRENCY).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The worker's reserved concurrency (FanoutWorkerConcurrency).
    #[arg(long, default_value_t = 64)]
    workers: usize,
    /// How long an asynchronous invoke takes to start a (warm) worker.
    #[arg(long, default_value_t = 30)]
    invoke_ms: u64,
    /// Where the table, the CSV and the plot go.
    #[arg(long, default_value = "bench/results")]
    out: std::path::PathBuf,
}

/// Runs shard jobs as Lambda's asynchronous invoke would: each its own worker, started
/// after the invoke's latency, at most `workers` at once.
struct SimulatedInvoke {
    deps: Mutex<Option<Deps>>,
    slots: Arc<tokio::sync::Semaphore>,
    start_after: Duration,
    running: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    reports: Arc<Mutex<Vec<(fanout::Report, Duration)>>>,
}

#[async_trait]
impl ShardDispatcher for SimulatedInvoke {
    async fn dispatch(&self, jobs: Vec<ShardJob>) -> Result<(), DispatchError> {
        let deps = self.deps.lock().unwrap().clone().expect("deps set");
        for job in jobs {
            let (deps, slots, reports, wait) = (deps.clone(), self.slots.clone(), self.reports.clone(), self.start_after);
            let h = tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let _slot = slots.acquire_owned().await;
                let t = Instant::now();
                let r = fanout::deliver_shard(&deps, job).await.expect("a shard");
                reports.lock().unwrap().push((r, t.elapsed()));
            });
            self.running.lock().unwrap().push(h);
        }
        Ok(())
    }
}

/// The table as DynamoDB serves a fan-out: each shard its own partition, read in parallel
/// (10 ms a 1 MB page), where SQLite would serialize the shards' Queries on one file. The
/// subscriptions do not change during a run, so they are read once beforehand; every other
/// call goes to SQLite.
struct Partitions {
    inner: Arc<dyn Table>,
    shards: std::collections::HashMap<String, Vec<Item>>,
}

#[async_trait]
impl Table for Partitions {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        self.inner.get(pk, sk).await
    }
    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<(), TableError> {
        self.inner.put(item, cond).await
    }
    async fn update(&self, pk: &str, sk: &str, u: Vec<Update>, cond: Option<Condition>) -> Result<Item, TableError> {
        self.inner.update(pk, sk, u, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Option<Condition>) -> Result<(), TableError> {
        self.inner.delete(pk, sk, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        self.inner.transact(ops).await
    }
    async fn query(&self, q: Query) -> Result<Page, TableError> {
        match self.shards.get(&q.pk) {
            Some(items) if q.cursor.is_none() && q.sk == SkCond::All => {
                let bytes: usize = items.iter().map(counting::item_size).sum();
                tokio::time::sleep(Duration::from_millis(10 * bytes.div_ceil(1 << 20).max(1) as u64)).await;
                Ok(Page {
                    items: items.clone(),
                    cursor: None,
                })
            }
            _ => self.inner.query(q).await,
        }
    }
}

struct Row {
    subscribers: usize,
    shards: u32,
    last_post_s: f64,
    posts_per_s: f64,
    peak_per_s: u64,
    throttled_429: u64,
    retries: usize,
    undelivered: usize,
    delivered: usize,
    invocations: usize,
    rru: f64,
    dollars_per_million: f64,
}

/// Writes `n` subscriptions of `channel` spread over `shards` shards, as subscribe would.
async fn populate(table: &dyn Table, channel: &str, n: usize, shard_count: u32) -> anyhow::Result<()> {
    shards::ensure(table, channel, shard_count).await?;
    let now = chrono::Utc::now().to_rfc3339();
    let ops: Vec<TxOp> = (0..n)
        .map(|i| {
            let id = format!("bench-{i:07}=");
            let item = Item::new(shards::pk(channel, shards::of(&id, shard_count)), keys::chan_conn(&id))
                .with("connectionId", id.as_str())
                .with("userId", format!("u{i}"))
                .with("name", format!("u{i}"))
                .with("role", "user")
                .with("connectedAt", now.as_str())
                .with("events", Vec::<String>::new());
            TxOp::Put { item, cond: None }
        })
        .collect();
    for chunk in ops.chunks(100) {
        table.transact(chunk.to_vec()).await?;
    }
    Ok(())
}

async fn run_one(args: &Args, n: usize, shard_count: u32, seq: u64) -> anyhow::Result<Row> {
    let sqlite: Arc<dyn Table> = Arc::new(SqliteTable::in_memory());
    let channel = Channel::Chat("bench".into());
    let name = channel.to_string();
    populate(sqlite.as_ref(), &name, n, shard_count).await?;
    let mut preloaded = std::collections::HashMap::new();
    for shard in 0..shard_count {
        let pk = shards::pk(&name, shard);
        let items = realtime_domain::ports::table::query_all(sqlite.as_ref(), Query::new(pk.clone())).await?;
        preloaded.insert(pk, items);
    }
    let sqlite: Arc<dyn Table> = Arc::new(Partitions {
        inner: sqlite,
        shards: preloaded,
    });
    let api = Arc::new(SimulatedApiGateway::new(args.api));
    let bus = Arc::new(realtime_embedded::bus::EmbeddedBus::new(Vec::new())?);
    let mut config = Config::local("a-secret-of-thirty-two-bytes-or-more!");
    config.post_budget = args.budget;
    config.fanout_concurrency = args.concurrency;
    let (deps, counter) = counting::wrap(&Deps::new(sqlite, bus, api.clone(), config));
    let invoke = Arc::new(SimulatedInvoke {
        deps: Mutex::new(None),
        slots: Arc::new(tokio::sync::Semaphore::new(args.workers)),
        start_after: Duration::from_millis(args.invoke_ms),
        running: Mutex::new(Vec::new()),
        reports: Arc::default(),
    });
    let deps = deps.with_dispatcher(invoke.clone());
    *invoke.deps.lock().unwrap() = Some(deps.clone());

    let mut event = Envelope::new(
        Event::MessageStored(MessageStored {
            id: format!("m{seq}"),
            chat_id: "bench".into(),
            sender_id: "u0".into(),
            sender_role: "user".into(),
            content: "one event to every subscriber".into(),
            client_message_id: None,
            created_at: chrono::Utc::now(),
        }),
        &Cause::default(),
    );
    event.sequence = vec![Position {
        channel: name.clone(),
        epoch: "E".into(),
        seq,
    }];
    let t = Instant::now();
    let mut report = fanout::deliver(&deps, &event).await?;
    let coordinator = t.elapsed();
    loop {
        let h = invoke.running.lock().unwrap().pop();
        match h {
            Some(h) => h.await?,
            None => break,
        }
    }
    let total = t.elapsed();
    let workers = std::mem::take(&mut *invoke.reports.lock().unwrap());
    let mut worker_secs = 0.0;
    for (r, d) in workers.iter().cloned() {
        report.add(r);
        worker_secs += d.as_secs_f64();
    }
    let sim = api.counts();
    let counts = counter.snapshot();
    let invocations = 1 + workers.len();
    // AWS bills: the invocations and their GB-seconds (256 MB), the table's units, one
    // EventBridge event, and every post as a WebSocket message.
    let usage = Usage {
        subscribers: report.delivered.max(1),
        dynamodb_requests: counts.dynamodb_requests(),
        rru: counts.rru,
        wru: counts.wru,
        put_events_entries: 1,
        lambda_invocations: invocations as f64,
        lambda_gb_seconds: (coordinator.as_secs_f64() + worker_secs) * 0.25,
        http_requests: 0.0,
        websocket_messages: sim.requests as f64,
        appsync_operations: 0.0,
    };
    Ok(Row {
        subscribers: n,
        shards: shard_count,
        last_post_s: total.as_secs_f64(),
        posts_per_s: sim.requests as f64 / total.as_secs_f64(),
        peak_per_s: sim.peak_per_sec,
        throttled_429: sim.throttled,
        retries: report.retries,
        undelivered: report.undelivered + report.throttled + report.failed,
        delivered: report.delivered,
        invocations,
        rru: counts.rru,
        dollars_per_million: usage.per_million_delivered(&PRICES).total,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    println!(
        "one event, simulated API Gateway {:?}; budget {} posts/s, {} posts in flight per invocation, {} workers at most",
        args.api, args.budget, args.concurrency, args.workers
    );
    println!(
        "{:>8} {:>6} {:>10} {:>9} {:>9} {:>6} {:>8} {:>8} {:>9} {:>6} {:>8} {:>10}",
        "subs", "shards", "last s", "posts/s", "peak/s", "429s", "retries", "left", "delivered", "invoc", "RRU", "$/M deliv"
    );
    let mut rows = Vec::new();
    let mut seq = 0;
    for &n in &args.subscribers {
        for &s in &args.shards {
            seq += 1;
            let r = run_one(&args, n, s, seq).await?;
            println!(
                "{:>8} {:>6} {:>10.2} {:>9.0} {:>9} {:>6} {:>8} {:>8} {:>9} {:>6} {:>8.1} {:>10.3}",
                r.subscribers,
                r.shards,
                r.last_post_s,
                r.posts_per_s,
                r.peak_per_s,
                r.throttled_429,
                r.retries,
                r.undelivered,
                r.delivered,
                r.invocations,
                r.rru,
                r.dollars_per_million
            );
            rows.push(r);
        }
    }
    // The table as Markdown and CSV, and the plot.
    let mut md = String::from("# Fan-out: one event to a big channel (`bash bench/run.sh fanout`)\n\n");
    md.push_str(&format!(
        "Simulated API Gateway: {:?}. Budget {} posts/s; {} posts in flight per invocation; at most {} workers. \
         Subscriptions are table items (SQLite in memory); gone connections (410) are removed on the way.\n\n",
        args.api, args.budget, args.concurrency, args.workers
    ));
    md.push_str("| subscribers | shards | last post (s) | posts/s | peak posts in 1 s | 429s | retries | left to resume | delivered | invocations | read units | $ per million delivered |\n");
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut csv = String::from(
        "subscribers,shards,last_post_s,posts_per_s,peak_per_s,throttled_429,retries,left,delivered,invocations,rru,dollars_per_million\n",
    );
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {:.2} | {:.0} | {} | {} | {} | {} | {} | {} | {:.1} | {:.3} |\n",
            r.subscribers,
            r.shards,
            r.last_post_s,
            r.posts_per_s,
            r.peak_per_s,
            r.throttled_429,
            r.retries,
            r.undelivered,
            r.delivered,
            r.invocations,
            r.rru,
            r.dollars_per_million
        ));
        csv.push_str(&format!(
            "{},{},{:.3},{:.0},{},{},{},{},{},{},{:.1},{:.4}\n",
            r.subscribers,
            r.shards,
            r.last_post_s,
            r.posts_per_s,
            r.peak_per_s,
            r.throttled_429,
            r.retries,
            r.undelivered,
            r.delivered,
            r.invocations,
            r.rru,
            r.dollars_per_million
        ));
    }
    std::fs::write(args.out.join("fanout.md"), &md)?;
    std::fs::write(args.out.join("fanout.csv"), &csv)?;
    let colors = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189]];
    let series = args
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| Series {
            label: format!("{s} shard{}", if *s == 1 { "" } else { "s" }),
            color: colors[i % colors.len()],
            dashed: false,
            points: rows
                .iter()
                .filter(|r| r.shards == *s)
                .map(|r| (r.subscribers as f64, r.last_post_s))
                .collect(),
        })
        .collect();
    let chart = Chart {
        title: "Time to the last delivery of one event".into(),
        subtitle: format!("simulated API Gateway, budget {} posts/s", args.budget),
        x_label: "subscribers".into(),
        y_label: "seconds".into(),
        series,
    };
    let png = args.out.join("fanout.png");
    plot::render(&chart, 900, 560).write_png(&png)?;
    println!(
        "wrote {}, {} and {}",
        args.out.join("fanout.md").display(),
        args.out.join("fanout.csv").display(),
        png.display()
    );
    Ok(())
}
