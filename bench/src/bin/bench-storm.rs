//! A reconnect storm on the local stack: N clients (the Rust client: full-jitter backoff,
//! capped; resume by seq) follow one chat; every socket is dropped at once while messages
//! keep coming. Measures how long until all are back and until all have every message,
//! checks that none lost or doubled one, and reports how many log reads the resumes made
//! (they share them per channel). The stack runs as its own process (10,000 sockets each
//! side); exits non-zero if any client lost an event.
//!
//!   cargo run --release -p realtime-bench --bin bench-storm -- --clients 10000

use anyhow::{bail, Context};
use clap::Parser;
use realtime_bench::e2e::{free_port, ServerProc};
use realtime_client::{Backoff, Client, Http, Item, Status, Subscription};
use realtime_domain::auth::{mint, Claims, Role};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Messages before the drop, during the storm (one every `--interval-ms`), and after.
    #[arg(long, default_value_t = 3)]
    before: usize,
    #[arg(long, default_value_t = 10)]
    during: usize,
    #[arg(long, default_value_t = 3)]
    after: usize,
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
    /// The clients' backoff: full jitter, first ceiling and cap.
    #[arg(long, default_value_t = 300)]
    backoff_base_ms: u64,
    #[arg(long, default_value_t = 10_000)]
    backoff_max_ms: u64,
    /// Clients connecting at once at the start.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    #[arg(long, default_value_t = 300)]
    deadline_secs: u64,
    /// The local stack's release binary (default: next to this one).
    #[arg(long)]
    realtime_bin: Option<std::path::PathBuf>,
    #[arg(long, default_value = "bench/results")]
    out: std::path::PathBuf,
}

/// What one client saw of the chat's messages.
#[derive(Default)]
struct Seen {
    seqs: Vec<u64>,
    reconnected: Option<Instant>,
    dropped: bool,
}

const SECRET: &str = "storm-bench-secret-of-32-bytes-or-more!";

fn token(sub: &str) -> String {
    mint(
        SECRET,
        &Claims {
            sub: sub.into(),
            roles: vec![Role::Admin],
            name: None,
            exp: chrono::Utc::now().timestamp() + 3600,
        },
    )
}

async fn wait_until(what: &str, deadline: Instant, mut done: impl FnMut() -> bool) -> anyhow::Result<Instant> {
    while !done() {
        if Instant::now() > deadline {
            bail!("{what}: not within the deadline");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Instant::now())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let bin = match &args.realtime_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("realtime-local"),
    };
    let port = free_port()?;
    let data = std::env::temp_dir().join(format!("storm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let cli = [
        "--addr".to_string(),
        format!("127.0.0.1:{port}"),
        "--data-dir".into(),
        data.display().to_string(),
        "--max-connections".into(),
        (args.clients + 100).to_string(),
    ];
    let mut server = ServerProc::spawn(
        bin.to_str().context("binary path")?,
        &cli,
        &[("JWT_SECRET", SECRET.to_string()), ("RUST_LOG", "warn".into())],
        port,
        &args.out.join("storm-server.log"),
    )?;
    server.ready(Duration::from_secs(30)).await?;
    let base = server.base.clone();
    let ws = format!("ws://127.0.0.1:{port}/ws");
    let http = Http::new(base.clone());
    let admin = token("storm-admin");
    let (status, chat) = http.post("/api/chat", Some(&admin), &json!({"title": "storm"})).await?;
    anyhow::ensure!(status == 201, "chat: {status} {chat}");
    let chat_id = chat["chatId"].as_str().context("chatId")?.to_string();
    let channel = format!("chat:{chat_id}");
    let deadline = Instant::now() + Duration::from_secs(args.deadline_secs);

    // Connect and subscribe everyone (bounded concurrency), each with a task that records
    // the message seqs it is handed and when it is back after the drop.
    let seen: Arc<Vec<Mutex<Seen>>> = Arc::new((0..args.clients).map(|_| Mutex::default()).collect());
    let subscribed = Arc::new(AtomicUsize::new(0));
    let backoff = Backoff {
        base: Duration::from_millis(args.backoff_base_ms),
        max: Duration::from_millis(args.backoff_max_ms),
    };
    let t_connect = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency));
    let mut clients = Vec::with_capacity(args.clients);
    let mut joins = Vec::new();
    for i in 0..args.clients {
        let permit = sem.clone().acquire_owned().await?;
        let (client, mut events) = Client::builder(ws.clone(), token(&format!("s{i}"))).backoff(backoff).connect();
        let (seen, subscribed, channel, c) = (seen.clone(), subscribed.clone(), channel.clone(), client.clone());
        joins.push(tokio::spawn(async move {
            let ok = c
                .subscribe(Subscription::new(channel).events(["chat.message.stored"]))
                .await
                .is_ok();
            drop(permit);
            if ok {
                subscribed.fetch_add(1, Ordering::Relaxed);
            }
            while let Some(item) = events.recv().await {
                let mut s = seen[i].lock().unwrap();
                match item {
                    Item::Event(f) => {
                        if let Some(seq) = f.seq {
                            s.seqs.push(seq);
                        }
                    }
                    Item::Status(Status::Reconnecting) => s.dropped = true,
                    Item::Status(Status::Open) if s.dropped && s.reconnected.is_none() => s.reconnected = Some(Instant::now()),
                    _ => {}
                }
            }
        }));
        clients.push(client);
    }
    wait_until("everyone subscribed", deadline, || {
        subscribed.load(Ordering::Relaxed) == args.clients
    })
    .await?;
    println!(
        "{} clients connected and subscribed in {:.1} s",
        args.clients,
        t_connect.elapsed().as_secs_f64()
    );

    let send = |n: usize| {
        let (http, admin, chat_id) = (http.clone(), admin.clone(), chat_id.clone());
        async move {
            let (status, body) = http
                .post(
                    &format!("/api/chat/{chat_id}/messages"),
                    Some(&admin),
                    &json!({"content": format!("m{n}")}),
                )
                .await?;
            anyhow::ensure!(status == 201, "send: {status} {body}");
            anyhow::Ok(())
        }
    };
    let all_have = |n: usize| {
        let seen = seen.clone();
        move || seen.iter().all(|s| s.lock().unwrap().seqs.len() >= n)
    };
    for n in 0..args.before {
        send(n).await?;
    }
    wait_until("the first messages", deadline, all_have(args.before)).await?;
    let (replays0, reads0) = replay_stats(&http).await?;

    // Every socket at once, then messages while they come back.
    let t_drop = Instant::now();
    let (status, body) = http.post("/api/dev/drop", None, &json!({"all": true})).await?;
    anyhow::ensure!(status == 200, "drop: {status} {body}");
    let dropped = body["dropped"].as_u64().unwrap_or(0);
    for n in 0..args.during {
        send(args.before + n).await?;
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    let seen_back = seen.clone();
    let back = || seen_back.iter().filter(|s| s.lock().unwrap().reconnected.is_some()).count();
    let have = |n: usize| seen.iter().filter(|s| s.lock().unwrap().seqs.len() >= n).count();
    // At the deadline, say how far the storm got rather than only that it did not end.
    let t_back = match wait_until("everyone reconnected", deadline, || back() == args.clients).await {
        Ok(t) => t,
        Err(e) => bail!(
            "{e}: {} of {} back after {:.0} s",
            back(),
            args.clients,
            t_drop.elapsed().as_secs_f64()
        ),
    };
    let last_back = seen.iter().filter_map(|s| s.lock().unwrap().reconnected).max().unwrap_or(t_back);
    let t_caught = match wait_until("everyone caught up", deadline, all_have(args.before + args.during)).await {
        Ok(t) => t,
        Err(e) => bail!(
            "{e}: {} of {} have every message after {:.0} s",
            have(args.before + args.during),
            args.clients,
            t_drop.elapsed().as_secs_f64()
        ),
    };
    for n in 0..args.after {
        send(args.before + args.during + n).await?;
    }
    let total = args.before + args.during + args.after;
    wait_until("the last messages", deadline, all_have(total)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (replays1, reads1) = replay_stats(&http).await?;

    // Every client: each message once, in seq order, the same seqs as everyone else.
    let reference: Vec<u64> = seen[0].lock().unwrap().seqs.clone();
    let mut lost = 0;
    let mut doubled = 0;
    for s in seen.iter() {
        let s = s.lock().unwrap();
        if s.seqs.windows(2).any(|w| w[1] <= w[0]) {
            doubled += 1;
        }
        if s.seqs != reference || s.seqs.len() != total {
            lost += 1;
        }
    }
    let back_s = (last_back - t_drop).as_secs_f64();
    let caught_s = (t_caught - t_drop).as_secs_f64();
    let report = format!(
        "# Reconnect storm (`bash bench/run.sh storm`)\n\n\
         {clients} clients of one chat (the Rust client: full-jitter backoff {base} ms doubling to {max} ms, resume by seq); \
         every socket dropped at once ({dropped} dropped) with {during} messages sent during the storm, {before} before and {after} after.\n\n\
         | clients | all reconnected (s) | all caught up (s) | clients that lost or reordered an event | replays | log reads for them |\n\
         |---:|---:|---:|---:|---:|---:|\n\
         | {clients} | {back_s:.1} | {caught_s:.1} | {bad} | {replays} | {reads} |\n",
        clients = args.clients,
        base = args.backoff_base_ms,
        max = args.backoff_max_ms,
        during = args.during,
        before = args.before,
        after = args.after,
        bad = lost + doubled,
        replays = replays1 - replays0,
        reads = reads1 - reads0,
    );
    print!("{report}");
    std::fs::write(args.out.join("storm.md"), &report)?;
    for c in &clients {
        let _ = c.close().await;
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&data);
    if lost + doubled > 0 {
        bail!("{lost} clients lost an event, {doubled} saw one twice or out of order");
    }
    Ok(())
}

async fn replay_stats(http: &Http) -> anyhow::Result<(u64, u64)> {
    let (_, v) = http.get("/api/dev/stats", None).await?;
    Ok((v["replays"].as_u64().unwrap_or(0), v["replayReads"].as_u64().unwrap_or(0)))
}
