//! `bench-lambda`: the functions as Lambda runs them, and what a message costs on AWS.
//!
//! * `warm`: in-process, on the embedded adapters (`realtime_embedded::testing::embedded`),
//!   through the function crates' handlers: per-invocation time of the message route
//!   and of the fan-out at N subscribers; the AWS calls each makes (the ports wrapped in
//!   counters) and the cost per million delivered messages, against the Scan-per-message
//!   design of the usual API Gateway WebSocket chat sample.
//! * `cold`: release binaries started against a minimal Lambda Runtime API on loopback:
//!   process start to init (first `/next`) and to the first response, peak RSS,
//!   bootstrap size. Table functions need DynamoDB Local (`--dynamodb-url`); pushes and
//!   PutEvents go to a local stack (`--stack-url`).

use anyhow::{ensure, Context};
use clap::{Parser, Subcommand};
use realtime_bench::cost::{self, Usage, MODEL, PRICES};
use realtime_bench::counting::{self, Counts};
use realtime_bench::runtime_api::{ColdStart, RuntimeApi};
use realtime_bench::stats::{self, Summary};
use realtime_domain::auth::{Claims, Role};
use realtime_domain::channels::Channel;
use realtime_domain::connections::{self, Connection};
use realtime_domain::keys;
use realtime_embedded::testing::{embedded, FIXTURE_SECRET};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "The functions as Lambda runs them: cold start, warm invocations, AWS calls and cost per message")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// In-process warm invocations, AWS calls per message and cost.
    Warm {
        #[arg(long, value_delimiter = ',', default_value = "1,3,10,50,100,1000,10000")]
        levels: Vec<usize>,
        /// Timed message-route invocations.
        #[arg(long, default_value_t = 500)]
        route_iterations: usize,
        /// Timed fan-out invocations are 200,000 deliveries / N, within these bounds.
        #[arg(long, default_value_t = 20)]
        min_fanouts: usize,
        #[arg(long, default_value_t = 300)]
        max_fanouts: usize,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
    /// Where the fan-out's time goes at N subscribers (in-process, embedded adapters).
    Breakdown {
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// Cold starts of release binaries against a local Lambda Runtime API.
    Cold {
        /// Where the functions' release binaries are (default: next to this one).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        #[arg(long, value_delimiter = ',', default_value = "ws-ping,ws-connect,chat-send-message,fanout")]
        functions: Vec<String>,
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// A running local stack (management API and PutEvents); without it, one is
        /// started from `--stack-bin` on a free port.
        #[arg(long)]
        stack_url: Option<String>,
        /// The local stack's binary (default: next to this one).
        #[arg(long)]
        stack_bin: Option<PathBuf>,
        /// DynamoDB Local; without it, functions that need the table are skipped.
        #[arg(long)]
        dynamodb_url: Option<String>,
        #[arg(long, default_value = "tests/fixtures")]
        fixtures: PathBuf,
        /// Extra environment of the functions (`KEY=VALUE`, repeatable).
        #[arg(long = "env", value_parser = parse_env)]
        extra_env: Vec<(String, String)>,
        #[arg(long, default_value = "bench/results")]
        out: PathBuf,
    },
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, not {s:?}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Warm {
            levels,
            route_iterations,
            min_fanouts,
            max_fanouts,
            out,
        } => warm(&levels, route_iterations, min_fanouts, max_fanouts, &out).await,
        Cmd::Breakdown { subscribers, runs } => breakdown(subscribers, runs).await,
        Cmd::Cold {
            bin_dir,
            functions,
            runs,
            stack_url,
            stack_bin,
            dynamodb_url,
            fixtures,
            extra_env,
            out,
        } => {
            let here = std::env::current_exe()?.parent().map(Path::to_path_buf).unwrap_or_default();
            let bin_dir = bin_dir.unwrap_or_else(|| here.clone());
            let mut stack = None;
            let url = match stack_url {
                Some(u) => u,
                None => {
                    let port = realtime_bench::e2e::free_port()?;
                    let data = std::env::temp_dir().join(format!("realtime-bench-cold-{}", std::process::id()));
                    let bin = stack_bin.unwrap_or_else(|| here.join("realtime-local"));
                    let args = [
                        "--addr".to_string(),
                        format!("127.0.0.1:{port}"),
                        "--data-dir".into(),
                        data.to_string_lossy().into_owned(),
                    ];
                    let mut p = realtime_bench::e2e::ServerProc::spawn(
                        &bin.to_string_lossy(),
                        &args,
                        &[],
                        port,
                        &std::env::temp_dir().join("realtime-bench-cold-stack.log"),
                    )?;
                    p.ready(Duration::from_secs(30)).await?;
                    let url = p.base.clone();
                    stack = Some((p, data));
                    url
                }
            };
            let r = cold(
                &bin_dir,
                &functions,
                runs,
                &url,
                dynamodb_url.as_deref(),
                &fixtures,
                &extra_env,
                &out,
            )
            .await;
            if let Some((p, data)) = stack {
                p.stop();
                let _ = std::fs::remove_dir_all(data);
            }
            r
        }
    }
}

fn fixture(dir: &Path, name: &str) -> anyhow::Result<Value> {
    let path = dir.join(name);
    Ok(serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )?)
}

/// The fixture request of `POST /api/chat/{id}/messages` (alice) for `chat_id`, with a
/// fresh client message id.
fn send_request(template: &Value, chat_id: &str, i: usize) -> anyhow::Result<realtime_edge::http::HttpRequest> {
    serde_json::from_value(send_event(template, chat_id, Some(&format!("b-{i}-{}", ulid::Ulid::new()))))
        .context("the send fixture no longer parses")
}

fn send_event(template: &Value, chat_id: &str, client_message_id: Option<&str>) -> Value {
    let mut v = template.clone();
    let path = format!("/api/chat/{chat_id}/messages");
    v["rawPath"] = path.clone().into();
    v["requestContext"]["http"]["path"] = path.into();
    v["pathParameters"]["chatId"] = chat_id.into();
    let mut body = serde_json::json!({"content": "hello"});
    if let Some(c) = client_message_id {
        body["clientMessageId"] = c.into();
    }
    v["body"] = body.to_string().into();
    v
}

/// The fixture's EventBridge event for `chat.message.stored`, as a new event in `chat_id`,
/// sequenced at its source (seq `seq`), as the relay publishes it.
fn fanout_event(template: &Value, chat_id: &str, seq: u64) -> Value {
    let mut v = template.clone();
    v["id"] = ulid::Ulid::new().to_string().into();
    v["detail"]["id"] = ulid::Ulid::new().to_string().into();
    v["detail"]["chatId"] = chat_id.into();
    v["detail"]["data"]["chatId"] = chat_id.into();
    v["detail"]["sequence"] = serde_json::json!([{"channel": format!("chat:{chat_id}"), "epoch": "BENCH", "seq": seq}]);
    v
}

/// A chat created by alice (the fixtures' sender) through the `chat-create` handler and
/// its fixture, so that the domain's own writes seed it; returns its id.
async fn create_chat(deps: &realtime_domain::Deps, fixtures: &Path) -> anyhow::Result<String> {
    let req = serde_json::from_value(fixture(fixtures, "http-chat-create.json")?).context("the chat-create fixture no longer parses")?;
    let resp = chat_create::handle(deps.clone(), req)
        .await
        .map_err(|e| anyhow::anyhow!("creating the chat: {e}"))?;
    let body = match resp.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => t,
        other => anyhow::bail!("chat-create answered {} {other:?}", resp.status_code),
    };
    let v: Value = serde_json::from_str(&body)?;
    Ok(v["chatId"].as_str().context("no chatId in the chat-create answer")?.to_string())
}

fn ms_summary(samples: &[Duration]) -> Summary {
    let mut us: Vec<u32> = samples.iter().map(|d| d.as_micros().min(u128::from(u32::MAX)) as u32).collect();
    stats::summarize(&mut us)
}

#[derive(Debug, Serialize)]
struct WarmLevel {
    subscribers: usize,
    fanouts: usize,
    fanout: Summary,
    fanout_ms_per_1000: f64,
    route: Counts,
    fanout_calls: Counts,
    usage: Usage,
    scan_sample_same_table: Usage,
    scan_sample_10k_table: Usage,
    /// The same application built on AWS AppSync Events.
    appsync_app: Usage,
}

async fn warm(levels: &[usize], route_iterations: usize, min_fanouts: usize, max_fanouts: usize, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let fixtures = PathBuf::from("tests/fixtures");
    let send_tpl = fixture(&fixtures, "http-chat-send-message.json")?;
    let event_tpl = fixture(&fixtures, "eventbridge-chat-message-stored.json")?;

    // The message route: timed on the plain embedded adapters.
    let e = embedded(FIXTURE_SECRET);
    let chat_id = create_chat(&e.deps, &fixtures).await?;
    let mut route_times = Vec::with_capacity(route_iterations);
    for i in 0..route_iterations + route_iterations / 10 {
        let req = send_request(&send_tpl, &chat_id, i)?;
        let t = Instant::now();
        let resp = chat_send_message::handle(e.deps.clone(), req).await;
        let took = t.elapsed();
        match &resp {
            Ok(r) => ensure!(r.status_code == 201, "the message route answered {} {:?}", r.status_code, r.body),
            Err(e) => anyhow::bail!("the message route failed: {e}"),
        }
        if i >= route_iterations / 10 {
            route_times.push(took);
        }
    }
    let route = ms_summary(&route_times);
    println!(
        "message route (chat-send-message, warm, embedded): p50 {} ms, p99 {} ms, mean {:.3} ms over {} invocations",
        stats::ms(route.p50_us),
        stats::ms(route.p99_us),
        route.mean_us / 1000.0,
        route.n
    );

    // The fan-out at N subscribers, on the same deps (one chat, N connections).
    let (deps, counter) = counting::wrap(&e.deps);
    let admin = Claims {
        sub: "bench".into(),
        roles: vec![Role::Admin],
        name: Some("bench".into()),
        exp: i64::MAX / 2,
    };
    let channel = Channel::Chat(chat_id.clone());
    let mut receivers = Vec::new();
    let mut results = Vec::new();
    for &n in levels {
        while receivers.len() < n {
            let id = format!("bench-{}", receivers.len());
            receivers.push(e.hub.register(&id, None));
            connections::open(&e.deps, &id, &admin).await?;
            let conn = Connection {
                connection_id: id,
                user_id: "bench".into(),
                display_name: "bench".into(),
                roles: vec![Role::Admin],
                token_exp: None,
                connected_at: chrono::Utc::now(),
            };
            connections::subscribe(e.deps.table.as_ref(), &conn, &channel, &["chat.**".into()], None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let drain = |rx: &mut Vec<realtime_embedded::hub::Outgoing>| {
            for r in rx.iter_mut() {
                while r.try_recv().is_ok() {}
            }
        };
        let fanouts = (200_000 / n.max(1)).clamp(min_fanouts, max_fanouts);
        let mut times = Vec::with_capacity(fanouts);
        for i in 0..fanouts + 2 {
            let ev = fanout_event(&event_tpl, &chat_id, 1_000_000 * n as u64 + i as u64);
            let t = Instant::now();
            fanout::handle(e.deps.clone(), serde_json::from_value(ev)?)
                .await
                .map_err(|e| anyhow::anyhow!("fan-out: {}", e.message))?;
            let took = t.elapsed();
            drain(&mut receivers);
            if i >= 2 {
                times.push(took);
            }
        }
        let fan = ms_summary(&times);

        // One message through the counting ports: the route, then the fan-out of its event.
        // The route's transaction holds the log entry; the table's stream hands it to the
        // relay (free to read; one PutEvents), whose bus event the fan-out gets.
        let mut tap = e.bus.tap();
        let c0 = counter.snapshot();
        // A plain message: no `clientMessageId` (which adds its marker: a GetItem and 2 WRU).
        let plain = serde_json::from_value(send_event(&send_tpl, &chat_id, None)).context("the send fixture no longer parses")?;
        let resp = chat_send_message::handle(deps.clone(), plain).await;
        ensure!(resp.map(|r| r.status_code).unwrap_or(0) == 201, "counted send failed");
        let c1 = counter.snapshot();
        let ev = tap.try_recv().map_err(|e| anyhow::anyhow!("the relay published nothing: {e}"))?;
        ensure!(ev["detail-type"] == "chat.message.stored", "relayed {}", ev["detail-type"]);
        fanout::handle(deps.clone(), serde_json::from_value(ev)?)
            .await
            .map_err(|e| anyhow::anyhow!("fan-out: {}", e.message))?;
        drain(&mut receivers);
        let c2 = counter.snapshot();
        let (mut route_calls, fanout_calls) = (c1.minus(&c0), c2.minus(&c1));
        route_calls.put_events += 1;
        route_calls.put_events_entries += 1;
        ensure!(
            fanout_calls.post_to_connection as usize == n,
            "the fan-out posted {} of {n}",
            fanout_calls.post_to_connection
        );
        let usage = cost::this_design(n, &route_calls, route.mean_us / 1000.0, &fanout_calls, fan.mean_us / 1000.0, &MODEL);
        println!(
            "fan-out to {n:>6}: p50 {} ms, p99 {} ms, mean {:.2} ms ({:.2} ms per 1,000) over {fanouts}; {} DynamoDB requests, {} WRU, {} PutEvents, {} posts; ${:.2} per million delivered (the same app on AppSync Events: ${:.2}, {:.2}x)",
            stats::ms(fan.p50_us),
            stats::ms(fan.p99_us),
            fan.mean_us / 1000.0,
            fan.mean_us / 1000.0 / (n as f64 / 1000.0),
            usage.dynamodb_requests,
            usage.wru,
            route_calls.put_events + fanout_calls.put_events,
            fanout_calls.post_to_connection,
            usage.per_million_delivered(&PRICES).total,
            cost::appsync_app(n, &route_calls, route.mean_us / 1000.0, &MODEL).per_million_delivered(&PRICES).total,
            usage.per_million_delivered(&PRICES).total / cost::appsync_app(n, &route_calls, route.mean_us / 1000.0, &MODEL).per_million_delivered(&PRICES).total
        );
        let appsync_app = cost::appsync_app(n, &route_calls, route.mean_us / 1000.0, &MODEL);
        results.push(WarmLevel {
            subscribers: n,
            fanouts,
            fanout_ms_per_1000: fan.mean_us / 1000.0 / (n as f64 / 1000.0),
            fanout: fan,
            route: route_calls,
            fanout_calls,
            usage,
            scan_sample_same_table: cost::scan_sample(n, n, 50, &MODEL),
            scan_sample_10k_table: cost::scan_sample(n, n.max(10_000), 50, &MODEL),
            appsync_app,
        });
    }
    let scenario_rows = scenarios().await?;
    let md = warm_markdown(&route, route_iterations, &results) + &scenarios_markdown(&scenario_rows);
    std::fs::write(out.join("lambda-warm.md"), &md)?;
    std::fs::write(
        out.join("lambda-warm.json"),
        serde_json::to_string_pretty(
            &serde_json::json!({"route": route, "levels": results, "scenarios": scenario_rows, "prices": PRICES, "model": MODEL}),
        )?,
    )?;
    let mut csv = String::from("subscribers,route_ms_mean,fanout_ms_mean,fanout_ms_per_1000,dynamodb_requests,rru,wru,put_events,lambda_invocations,lambda_gb_s,websocket_messages,usd_per_message,usd_per_million_delivered,scan_sample_usd_per_million_delivered,scan_sample_10k_table_usd_per_million_delivered\n");
    for l in &results {
        let _ = writeln!(
            csv,
            "{},{:.3},{:.3},{:.3},{},{},{},{},{},{:.6},{},{:.9},{:.4},{:.4},{:.4}",
            l.subscribers,
            route.mean_us / 1000.0,
            l.fanout.mean_us / 1000.0,
            l.fanout_ms_per_1000,
            l.usage.dynamodb_requests,
            l.usage.rru,
            l.usage.wru,
            l.usage.put_events_entries,
            l.usage.lambda_invocations,
            l.usage.lambda_gb_seconds,
            l.usage.websocket_messages,
            l.usage.dollars(&PRICES).total,
            l.usage.per_million_delivered(&PRICES).total,
            l.scan_sample_same_table.per_million_delivered(&PRICES).total,
            l.scan_sample_10k_table.per_million_delivered(&PRICES).total
        );
    }
    std::fs::write(out.join("cost.csv"), csv)?;
    println!("\n{md}\nwrote {}/lambda-warm.md, lambda-warm.json, cost.csv", out.display());
    Ok(())
}

fn warm_markdown(route: &Summary, iterations: usize, levels: &[WarmLevel]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# The functions, warm, and what a message costs\n");
    let _ = writeln!(md, "In-process through the function crates' handlers on the embedded adapters (SQLite in memory, the hub), as `bench-lambda warm` runs them; 2 worker threads.\n");
    let _ = writeln!(md, "## Warm invocations\n");
    let _ = writeln!(
        md,
        "| invocation | subscribers | invocations | p50 ms | p99 ms | mean ms | mean ms per 1,000 recipients |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        md,
        "| message route (`chat-send-message`) | - | {} | {} | {} | {:.3} | - |",
        iterations,
        stats::ms(route.p50_us),
        stats::ms(route.p99_us),
        route.mean_us / 1000.0
    );
    for l in levels {
        let _ = writeln!(
            md,
            "| fan-out (`fanout`) | {} | {} | {} | {} | {:.3} | {:.3} |",
            l.subscribers,
            l.fanouts,
            stats::ms(l.fanout.p50_us),
            stats::ms(l.fanout.p99_us),
            l.fanout.mean_us / 1000.0,
            l.fanout_ms_per_1000
        );
    }
    let _ = writeln!(md, "\n## AWS calls per message delivered to N subscribers\n");
    let _ = writeln!(md, "Counted at the ports (each port call is one AWS request) for one `POST /api/chat/{{id}}/messages` with a `clientMessageId` and the fan-out of its event. Capacity units from DynamoDB's rules (item sizes estimated from their JSON; transactional items at 2×; GetItem and Query strongly consistent, as the DynamoDB adapter reads).\n");
    let _ = writeln!(md, "| N | | GetItem | Query (items) | PutItem | UpdateItem | DeleteItem | TransactWriteItems (items) | DynamoDB requests | RRU | WRU | PutEvents | PostToConnection |");
    let _ = writeln!(md, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let calls = |md: &mut String, n: String, what: &str, c: &Counts| {
        let _ = writeln!(
            md,
            "| {n} | {what} | {} | {} ({}) | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} |",
            c.get_item,
            c.query,
            c.query_items,
            c.put_item,
            c.update_item,
            c.delete_item,
            c.transact_write_items,
            c.transact_items,
            c.dynamodb_requests(),
            c.rru,
            c.wru,
            c.put_events,
            c.post_to_connection
        );
    };
    for l in levels {
        calls(&mut md, l.subscribers.to_string(), "route", &l.route);
        calls(&mut md, String::new(), "fan-out", &l.fanout_calls);
        let _ = writeln!(
            md,
            "| | **total** | | | | | | | **{}** | **{}** | **{}** | **{}** | **{}** |",
            l.usage.dynamodb_requests,
            l.usage.rru,
            l.usage.wru,
            l.route.put_events + l.fanout_calls.put_events,
            l.route.post_to_connection + l.fanout_calls.post_to_connection
        );
    }
    let _ = writeln!(md, "\nThe message is a plain one (no `clientMessageId`, whose marker adds a GetItem and 2 WRU). The relay reads the table's stream for free and makes the PutEvents. Plus 3 Lambda invocations (the route, the relay and the fan-out) and 1 HTTP API request per message; the authorizer's answer is cached per token (`ReauthorizeEvery: 300`). The fan-out Queries two channels (`chat:{{id}}` and `admin`), pages of 1 MB.\n");
    let p = &PRICES;
    let _ = writeln!(md, "\n## Cost per million delivered messages\n");
    let _ = writeln!(md, "Prices: {}: DynamoDB on-demand ${}/M WRU and ${}/M RRU; EventBridge ${}/M events; Lambda ${}/M requests + ${}/GB-s (arm64, 256 MB); API Gateway HTTP API ${}/M requests, WebSocket ${}/M messages and ${}/M connection minutes. Lambda time = the warm compute above + {} ms per DynamoDB request + {} ms per PutEvents + {} ms per {} concurrent posts (typical in-region round trips; the embedded adapters have none). The authorizer's answer is cached per token (`ReauthorizeEvery: 300`), so it adds no invocation per message.\n",
        p.as_of, p.dynamodb_wru_per_million, p.dynamodb_rru_per_million, p.eventbridge_per_million, p.lambda_requests_per_million, p.lambda_gb_second,
        p.http_api_per_million, p.websocket_messages_per_million, p.websocket_connection_minutes_per_million,
        MODEL.dynamodb_ms, MODEL.put_events_ms, MODEL.post_to_connection_ms, MODEL.fanout_concurrency);
    let _ = writeln!(md, "| N | $ per message | DynamoDB | EventBridge | Lambda | API Gateway | **$ per million delivered** | the same app on AppSync Events | ratio | Scan sample, table = the N connections | Scan sample, N in a 10,000-connection table |");
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in levels {
        let d = l.usage.per_million_delivered(p);
        let a = l.appsync_app.per_million_delivered(p).total;
        let _ = writeln!(
            md,
            "| {} | {:.7} | {:.3} | {:.3} | {:.3} | {:.3} | **{:.3}** | {:.3} | {:.2}× | {:.3} | {:.3} |",
            l.subscribers,
            l.usage.dollars(p).total,
            d.dynamodb,
            d.eventbridge,
            d.lambda,
            d.api_gateway,
            d.total,
            a,
            d.total / a,
            l.scan_sample_same_table.per_million_delivered(p).total,
            l.scan_sample_10k_table.per_million_delivered(p).total,
        );
    }
    if let Some(l) = levels.last() {
        let reads: Vec<String> = levels
            .iter()
            .map(|l| format!("{} at N = {}", l.fanout_calls.rru, l.subscribers))
            .collect();
        let _ = writeln!(
            md,
            "\nPer message, the Scan sample reads the whole connections table: {} RRU with 10,000 connections in it, whatever the room's size. This design's fan-out reads only its channels (subscription items, strongly consistent, and the log head): {} RRU; and it writes {} WRU (log, outbox, counters) that the sample does not have. In dollars both are dominated by API Gateway's WebSocket messages from ~100 subscribers up.\n",
            l.scan_sample_10k_table.rru,
            reads.join(", "),
            l.usage.wru
        );
    }
    let _ = writeln!(md, "The Scan sample (the usual API Gateway WebSocket chat sample: `sendmessage` over the WebSocket, one function that Scans the connections table and posts to each) has no log, no sequence, no outbox and no replay, and reads every connection of the table for every message (items of ~50 bytes, eventually consistent): its DynamoDB cost grows with the table, ours with the channel. Connection minutes are the same for both and not per message: 10,000 clients connected for a month cost 10,000 × 43,200 × ${}/M = ${:.0}.\n",
        p.websocket_connection_minutes_per_million, 10_000.0 * 43_200.0 * p.websocket_connection_minutes_per_million / 1e6);
    md
}

// ---------- where the fan-out's time goes ----------

/// Times the fan-out's parts at `n` subscribers: the subscriber Query (SQLite read and
/// JSON parse) and its conversion, the pushes through the pusher port as the fan-out
/// makes them (`buffer_unordered(64)` of boxed futures), the same pushes in a plain
/// loop, and the whole `fanout::handle`.
async fn breakdown(n: usize, runs: usize) -> anyhow::Result<()> {
    use futures::StreamExt;
    use realtime_domain::ports::{ConnectionPusher, Query};
    let fixtures = PathBuf::from("tests/fixtures");
    let event_tpl = fixture(&fixtures, "eventbridge-chat-message-stored.json")?;
    let e = embedded(FIXTURE_SECRET);
    let chat_id = create_chat(&e.deps, &fixtures).await?;
    let channel = Channel::Chat(chat_id.clone());
    let admin = Claims {
        sub: "bench".into(),
        roles: vec![Role::Admin],
        name: Some("bench".into()),
        exp: i64::MAX / 2,
    };
    let mut receivers = Vec::new();
    for i in 0..n {
        let id = format!("bench-{i}");
        receivers.push(e.hub.register(&id, None));
        connections::open(&e.deps, &id, &admin).await?;
        let conn = Connection {
            connection_id: id,
            user_id: "bench".into(),
            display_name: "bench".into(),
            roles: vec![Role::Admin],
            token_exp: None,
            connected_at: chrono::Utc::now(),
        };
        connections::subscribe(e.deps.table.as_ref(), &conn, &channel, &["chat.**".into()], None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let drain = |rx: &mut Vec<realtime_embedded::hub::Outgoing>| {
        for r in rx.iter_mut() {
            while r.try_recv().is_ok() {}
        }
    };
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let mut rows: Vec<(&str, Vec<f64>)> = Vec::new();
    let table = e.deps.table.clone();
    let pk = keys::chan(&channel.to_string());
    let frame: std::sync::Arc<[u8]> = {
        let ev = fanout_event(&event_tpl, &chat_id, 1);
        serde_json::to_vec(
            &serde_json::json!({"type": "event", "channel": channel.to_string(), "seq": 1, "epoch": "E", "event": ev["detail"]}),
        )?
        .into()
    };
    let ids: Vec<String> = (0..n).map(|i| format!("bench-{i}")).collect();
    let (mut q, mut subs, mut moved, mut buffered, mut looped, mut whole) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let t = Instant::now();
        let page = table.query(Query::new(pk.clone())).await?;
        q.push(per(t.elapsed()));
        anyhow::ensure!(page.items.len() == n, "{} subscribers", page.items.len());
        let t = Instant::now();
        let s = connections::subscribers(table.as_ref(), &channel).await?;
        subs.push(per(t.elapsed()));
        anyhow::ensure!(s.len() == n);
        // The same subscribers built from the owned items (strings moved, not cloned).
        let t = Instant::now();
        let page = table.query(Query::new(pk.clone())).await?;
        let owned: Vec<(String, String, Vec<String>, Option<Value>)> = page.items.into_iter().filter_map(owned_subscriber).collect();
        moved.push(per(t.elapsed()));
        anyhow::ensure!(owned.len() == n);
        let pusher = e.deps.pusher.clone();
        let t = Instant::now();
        let results: Vec<(String, bool)> = futures::stream::iter(ids.clone())
            .map(|id| {
                let (pusher, frame) = (pusher.clone(), frame.clone());
                async move {
                    let ok = pusher.post(&id, &frame).await.is_ok();
                    (id, ok)
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        buffered.push(per(t.elapsed()));
        anyhow::ensure!(results.iter().all(|r| r.1));
        drain(&mut receivers);
        let t = Instant::now();
        for id in &ids {
            e.hub.post(id, &frame).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        looped.push(per(t.elapsed()));
        drain(&mut receivers);
        let t = Instant::now();
        fanout::handle(
            e.deps.clone(),
            serde_json::from_value(fanout_event(&event_tpl, &chat_id, 1_000 + run as u64))?,
        )
        .await
        .map_err(|e| anyhow::anyhow!("fan-out: {}", e.message))?;
        whole.push(per(t.elapsed()));
        drain(&mut receivers);
    }
    rows.push(("Table::query of the channel partition (SQLite read + JSON parse of each item)", q));
    rows.push(("connections::subscribers (the same Query + Subscriber::from_item)", subs));
    rows.push(("the same Query + subscribers built from owned items (moved, not cloned)", moved));
    rows.push(("pushes as push_all makes them (buffer_unordered(64), Hub::post)", buffered));
    rows.push(("pushes in a plain loop (Hub::post)", looped));
    rows.push(("fanout::handle, everything", whole));
    println!("fan-out to {n} subscribers, {runs} runs, µs per recipient (median; min):");
    for (name, mut v) in rows {
        v.sort_by(f64::total_cmp);
        println!("  {:>7.3} ({:>7.3})  {name}", v[v.len() / 2], v[0]);
    }
    Ok(())
}

/// What `Subscriber::from_item` reads, taken out of an owned item instead of cloned.
fn owned_subscriber(mut item: realtime_domain::ports::Item) -> Option<(String, String, Vec<String>, Option<Value>)> {
    let Some(Value::String(id)) = item.attrs.remove("connectionId") else {
        return None;
    };
    let user = match item.attrs.remove("userId") {
        Some(Value::String(u)) => u,
        _ => String::new(),
    };
    let events = match item.attrs.remove("events") {
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let filter = item.attrs.remove("filter").filter(|f| !f.is_null());
    Some((id, user, events, filter))
}

// ---------- cold starts ----------

struct Function {
    name: &'static str,
    fixture: &'static str,
    needs_table: bool,
}

const FUNCTIONS: &[Function] = &[
    // Every WebSocket message is rate limited against the table (one get, one put).
    Function {
        name: "ws-ping",
        fixture: "ws-ping.json",
        needs_table: true,
    },
    Function {
        name: "authorizer",
        fixture: "authorizer-http-request.json",
        needs_table: false,
    },
    Function {
        name: "ws-connect",
        fixture: "ws-connect.json",
        needs_table: true,
    },
    Function {
        name: "chat-send-message",
        fixture: "http-chat-send-message.json",
        needs_table: true,
    },
    Function {
        name: "fanout",
        fixture: "eventbridge-chat-message-stored.json",
        needs_table: true,
    },
];

#[derive(Debug, Serialize)]
struct ColdResult {
    function: String,
    /// This machine's x86-64 release binary (the one measured).
    bootstrap_bytes: u64,
    /// The arm64 bootstrap Lambda runs, when `infra/build-functions.sh` built it.
    arm64_bootstrap_bytes: Option<u64>,
    runs: Vec<ColdStart>,
    init: Summary,
    first_response: Summary,
    first_invocation: Summary,
    warm_invocation: Summary,
    /// Init + what the first invocation took beyond a warm one: the cold start proper,
    /// without the endpoints' own latency (DynamoDB Local's here, DynamoDB's in AWS).
    cold_overhead: Summary,
    peak_rss_kb: u64,
    answer: String,
}

#[allow(clippy::too_many_arguments)]
async fn cold(
    bin_dir: &Path,
    names: &[String],
    runs: usize,
    stack: &str,
    dynamodb: Option<&str>,
    fixtures: &Path,
    extra_env: &[(String, String)],
    out: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    realtime_bench::ensure_loopback(stack)?;
    let mut chat_id = "C1".to_string();
    if let Some(d) = dynamodb {
        realtime_bench::ensure_loopback(d)?;
        // The table, chat C1 with alice, and a warmed-up JVM.
        let client = aws_sdk_dynamodb_client(d);
        realtime_aws::dynamo::create_table(&client, "realtime").await?;
        let table = std::sync::Arc::new(realtime_aws::dynamo::DynamoTable::new(client, "realtime"));
        let e = embedded(FIXTURE_SECRET);
        let deps = realtime_domain::Deps::new(
            table.clone(),
            e.deps.publisher.clone(),
            e.deps.pusher.clone(),
            (*e.deps.config).clone(),
        );
        let id = create_chat(&deps, fixtures).await?;
        use realtime_domain::ports::Table;
        for _ in 0..50 {
            table.get(&keys::chat(&id), keys::META).await?;
        }
        chat_id = id;
    }
    let api = RuntimeApi::start().await?;
    let mut env: Vec<(String, String)> = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("TABLE_NAME", "realtime"),
        ("EVENT_BUS_NAME", "default"),
        ("JWT_SECRET", FIXTURE_SECRET),
        ("RUST_LOG", "info"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("WS_MANAGEMENT_ENDPOINT".into(), stack.into()));
    env.push(("AWS_ENDPOINT_URL_EVENTBRIDGE".into(), stack.into()));
    // Without DynamoDB Local, a port that refuses at once (table functions are skipped).
    env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), dynamodb.unwrap_or("http://127.0.0.1:9").into()));
    env.extend(extra_env.iter().cloned());

    let mut results = Vec::new();
    for name in names {
        let f = FUNCTIONS
            .iter()
            .find(|f| f.name == name)
            .with_context(|| format!("no fixture mapping for {name}"))?;
        if f.needs_table && dynamodb.is_none() {
            println!("{name}: skipped (needs DynamoDB Local: --dynamodb-url)");
            continue;
        }
        let bin = bin_dir.join(name);
        let size = std::fs::metadata(&bin)
            .with_context(|| format!("{} (build it with cargo build --release -p {name})", bin.display()))?
            .len();
        // The deployable arm64 bootstrap (`infra/build-functions.sh` puts it here).
        let arm64 = bin_dir
            .parent()
            .map(|t| t.join("lambda").join(name).join("bootstrap"))
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len());
        let tpl = fixture(fixtures, f.fixture)?;
        let mut rs = Vec::new();
        for i in 0..runs {
            let event = |k: usize| match f.name {
                "chat-send-message" => send_event(&tpl, &chat_id, Some(&format!("cold-{i}-{k}-{}", ulid::Ulid::new()))),
                "fanout" => fanout_event(&tpl, &chat_id, (i * 100 + k) as u64 + 1),
                _ => tpl.clone(),
            };
            rs.push(api.cold_start(&bin, &env, event(0), event(1), Duration::from_secs(20)).await?);
        }
        let summary = |f: &dyn Fn(&ColdStart) -> f64| {
            let mut us: Vec<u32> = rs.iter().map(|r| (f(r) * 1000.0) as u32).collect();
            stats::summarize(&mut us)
        };
        let answer = rs.last().map(short_answer).unwrap_or_default();
        let r = ColdResult {
            function: name.clone(),
            bootstrap_bytes: size,
            arm64_bootstrap_bytes: arm64,
            init: summary(&|r| r.init_ms),
            first_response: summary(&|r| r.first_response_ms),
            first_invocation: summary(&|r| r.first_invocation_ms),
            warm_invocation: summary(&|r| r.warm_invocation_ms),
            cold_overhead: summary(&|r| r.init_ms + (r.first_invocation_ms - r.warm_invocation_ms).max(0.0)),
            peak_rss_kb: rs.iter().filter_map(|r| r.peak_rss_kb).max().unwrap_or(0),
            answer,
            runs: rs,
        };
        println!(
            "{name}: init p50 {} ms, first response p50 {} ms (max {} ms), warm invocation p50 {} ms, cold overhead p50 {} ms, peak RSS {:.1} MiB, bootstrap {:.2} MiB; answer {}",
            stats::ms(r.init.p50_us),
            stats::ms(r.first_response.p50_us),
            stats::ms(r.first_response.max_us),
            stats::ms(r.warm_invocation.p50_us),
            stats::ms(r.cold_overhead.p50_us),
            r.peak_rss_kb as f64 / 1024.0,
            size as f64 / 1048576.0,
            r.answer
        );
        results.push(r);
    }
    let mut md = String::new();
    let _ = writeln!(md, "# Cold starts of the release binaries\n");
    let _ = writeln!(md, "Each run starts the function's release binary (the workspace's release profile: `opt-level = \"s\"`, no LTO, stripped; built for this machine's x86-64, where Lambda runs the arm64 build) against a minimal Lambda Runtime API on 127.0.0.1 (`bench-lambda cold`) and hands it the fixture's event twice; {runs} runs per function. The functions' DynamoDB is DynamoDB Local (Java, in memory, warmed up), their PutEvents and pushes go to a local stack.\n");
    let _ = writeln!(
        md,
        "* *init*: process start → the runtime's first `GET …/invocation/next` (what Lambda reports as Init Duration);"
    );
    let _ = writeln!(
        md,
        "* *first response*: process start → `POST …/response` of the first invocation, its AWS calls included;"
    );
    let _ = writeln!(
        md,
        "* *warm*: the second invocation in the same process (handed out → answered): the endpoints' own latency;"
    );
    let _ = writeln!(
        md,
        "* *cold start proper*: init + (first invocation − warm invocation), what a cold start adds to a request;"
    );
    let _ = writeln!(
        md,
        "* peak RSS: `VmHWM` after the first response. A representative subset; `infra/build-functions.sh` builds and sizes every function for arm64.\n"
    );
    let _ = writeln!(md, "| function | x86-64 binary MiB | arm64 bootstrap MiB | init p50 ms | first response p50 / max ms | warm invocation p50 ms | cold start proper p50 / max ms | peak RSS MiB | answer |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in &results {
        let _ = writeln!(
            md,
            "| {} | {:.2} | {} | {} | {} / {} | {} | {} / {} | {:.1} | {} |",
            r.function,
            r.bootstrap_bytes as f64 / 1048576.0,
            r.arm64_bootstrap_bytes
                .map_or("not built".into(), |b| format!("{:.2}", b as f64 / 1048576.0)),
            stats::ms(r.init.p50_us),
            stats::ms(r.first_response.p50_us),
            stats::ms(r.first_response.max_us),
            stats::ms(r.warm_invocation.p50_us),
            stats::ms(r.cold_overhead.p50_us),
            stats::ms(r.cold_overhead.max_us),
            r.peak_rss_kb as f64 / 1024.0,
            r.answer
        );
    }
    let _ = writeln!(
        md,
        "\nTargets: cold start ≤ 25 ms, bootstrap ≤ 8 MB (MiB here; the arm64 bootstrap Lambda runs when built, else the x86-64 binary), RSS ≤ 40 MB.\n"
    );
    for r in &results {
        let mut miss = Vec::new();
        let first = f64::from(r.first_response.p50_us) / 1000.0;
        let proper = f64::from(r.cold_overhead.p50_us) / 1000.0;
        if proper > 25.0 {
            miss.push(format!("cold start proper {proper:.1} ms (+{:.1} ms)", proper - 25.0));
        }
        let (which, bytes) = match r.arm64_bootstrap_bytes {
            Some(b) => ("arm64 bootstrap", b),
            None => ("x86-64 binary", r.bootstrap_bytes),
        };
        let mb = bytes as f64 / 1048576.0;
        if mb > 8.0 {
            miss.push(format!("{which} {mb:.2} MiB (+{:.2})", mb - 8.0));
        }
        let rss = r.peak_rss_kb as f64 / 1024.0;
        if rss > 40.0 {
            miss.push(format!("RSS {rss:.1} MiB (+{:.1})", rss - 40.0));
        }
        let strict = if first > 25.0 {
            format!(
                "; counting the first invocation's calls to DynamoDB Local and the stack, first response {first:.2} ms (+{:.2} ms)",
                first - 25.0
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "* {}: {}{strict}",
            r.function,
            if miss.is_empty() {
                "cold start proper, bootstrap and RSS met".into()
            } else {
                format!("**missed**: {}", miss.join(", "))
            }
        );
    }
    std::fs::write(out.join("lambda-cold.md"), &md)?;
    std::fs::write(out.join("lambda-cold.json"), serde_json::to_string_pretty(&results)?)?;
    println!("\n{md}\nwrote {}/lambda-cold.md, lambda-cold.json", out.display());
    Ok(())
}

/// The status of an HTTP/WebSocket answer, or the first characters of another one.
fn short_answer(r: &ColdStart) -> String {
    let v: Value = serde_json::from_str(&r.answer).unwrap_or(Value::Null);
    match v.get("statusCode") {
        Some(s) => format!("{}status {s}", if r.ok { "" } else { "error " }),
        None => format!(
            "{}{}",
            if r.ok { "" } else { "error " },
            r.answer.chars().take(40).collect::<String>()
        ),
    }
}

fn aws_sdk_dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&realtime_aws::sdk::local_config(endpoint))
}

// ---------- what each kind of write costs, route and fan-out together ----------

/// One scenario's calls, counted at the ports: the route, then the relay's PutEvents
/// (the stream is read for free) and the fan-out of every event it relayed.
#[derive(Debug, Serialize)]
struct Scenario {
    name: &'static str,
    subscribers: usize,
    route: Counts,
    fanout: Counts,
    /// Events relayed (logged) and fan-out invocations.
    events: usize,
}

/// Subscribes `n` fresh connections of `user` to `channel` (a hub socket each).
async fn subscribers(
    e: &realtime_embedded::testing::Embedded,
    user: &Claims,
    channel: &Channel,
    n: usize,
    rx: &mut Vec<realtime_embedded::hub::Outgoing>,
) -> anyhow::Result<()> {
    for _ in 0..n {
        let id = format!("sc-{}", ulid::Ulid::new());
        rx.push(e.hub.register(&id, None));
        connections::open(&e.deps, &id, user).await?;
        let conn = Connection {
            connection_id: id,
            user_id: user.sub.clone(),
            display_name: user.display_name().to_string(),
            roles: user.roles.clone(),
            token_exp: None,
            connected_at: chrono::Utc::now(),
        };
        connections::subscribe(e.deps.table.as_ref(), &conn, channel, &[], None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Runs `write` through the counting ports, then fans out what the relay published.
async fn counted<F, Fut>(
    name: &'static str,
    subscribers: usize,
    e: &realtime_embedded::testing::Embedded,
    write: F,
) -> anyhow::Result<Scenario>
where
    F: FnOnce(realtime_domain::Deps) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (deps, counter) = counting::wrap(&e.deps);
    let mut tap = e.bus.tap();
    let c0 = counter.snapshot();
    write(deps.clone()).await?;
    let c1 = counter.snapshot();
    let mut relayed = Vec::new();
    while let Ok(ev) = tap.try_recv() {
        relayed.push(ev);
    }
    for ev in &relayed {
        fanout::handle(deps.clone(), serde_json::from_value(ev.clone())?)
            .await
            .map_err(|e| anyhow::anyhow!("fan-out: {}", e.message))?;
    }
    let c2 = counter.snapshot();
    let mut route = c1.minus(&c0);
    let logged = relayed.iter().filter(|ev| ev["detail"]["sequence"].is_array()).count();
    route.put_events += logged.div_ceil(10) as u64;
    route.put_events_entries += logged as u64;
    Ok(Scenario {
        name,
        subscribers,
        route,
        fanout: c2.minus(&c1),
        events: relayed.len(),
    })
}

async fn scenarios() -> anyhow::Result<Vec<Scenario>> {
    use realtime_domain::chat::{self, CreateChat, JoinChat, SendMessage};
    use realtime_domain::events::Cause;
    use realtime_domain::trips::{booking, driver, trip};
    let e = embedded(FIXTURE_SECRET);
    let cause = Cause::default();
    let mut rx = Vec::new();
    let mut out = Vec::new();
    let alice = claims_of("alice", &[]);
    for (name, members) in [("plain chat message, 1 subscriber", 1usize), ("message to a 3-person chat", 3)] {
        let view = chat::create(
            &e.deps,
            &alice,
            CreateChat {
                title: "c".into(),
                settings: None,
            },
            &cause,
        )
        .await?;
        let channel = Channel::Chat(view.chat_id.to_string());
        subscribers(&e, &alice, &channel, 1, &mut rx).await?;
        for m in 1..members {
            let who = claims_of(&format!("m{m}"), &[]);
            chat::join(
                &e.deps,
                &who,
                &view.chat_id,
                JoinChat {
                    display_name: format!("m{m}"),
                },
                &cause,
            )
            .await?;
            subscribers(&e, &who, &channel, 1, &mut rx).await?;
        }
        let chat_id = view.chat_id.clone();
        out.push(
            counted(name, members, &e, |deps| async move {
                let req = SendMessage {
                    content: "hello".into(),
                    client_message_id: None,
                };
                chat::send(&deps, &claims_of("alice", &[]), &chat_id, req, &Cause::default())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(())
            })
            .await?,
        );
    }
    // Presence in a chat of 10 present members: one more joins (a connect and its
    // subscribe), then their last connection closes (`$disconnect`; the leave after the
    // grace period, here 0 s so it is counted with it).
    let view = chat::create(
        &e.deps,
        &alice,
        CreateChat {
            title: "p".into(),
            settings: None,
        },
        &cause,
    )
    .await?;
    let channel = Channel::Chat(view.chat_id.to_string());
    for m in 0..10 {
        subscribers(&e, &claims_of(&format!("p{m}"), &[Role::Admin]), &channel, 1, &mut rx).await?;
    }
    realtime_domain::presence::reconcile(&e.deps, &channel)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // past the last announcement's second
    let (newbie, newbie_conn) = (claims_of("p-new", &[Role::Admin]), format!("sc-{}", ulid::Ulid::new()));
    rx.push(e.hub.register(&newbie_conn, None));
    let (join_channel, join_conn) = (channel.clone(), newbie_conn.clone());
    out.push(
        counted(
            "presence: a member joins a chat of 10 (connect + subscribe)",
            11,
            &e,
            |deps| async move {
                connections::open(&deps, &join_conn, &newbie).await?;
                let conn = connections::get(deps.table.as_ref(), &join_conn)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no connection"))?;
                connections::subscribe(deps.table.as_ref(), &conn, &join_channel, &[], None)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                realtime_domain::presence::settle(&deps, &join_channel).await?;
                Ok(())
            },
        )
        .await?,
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    out.push(
        counted(
            "presence: that member's last connection closes ($disconnect, leave)",
            10,
            &e,
            |deps| async move {
                let mut config = (*deps.config).clone();
                config.presence_grace_secs = 0;
                let deps = realtime_domain::Deps {
                    config: std::sync::Arc::new(config),
                    ..deps
                };
                let removed = connections::remove(deps.table.as_ref(), &newbie_conn).await?;
                realtime_domain::presence::settle_all(&deps, &removed.channels).await;
                Ok(())
            },
        )
        .await?,
    );
    let org = claims_of("org", &[Role::Organizer]);
    let body = serde_json::json!({"title": "t", "tripType": "SHARED", "status": "PUBLISHED",
        "origin": {"name": "A", "lat": 43.2389, "lng": 76.8897}, "destination": {"name": "B", "lat": 43.3033, "lng": 77.24},
        "departureTime": chrono::Utc::now() + chrono::Duration::hours(5), "totalSeats": 4, "pricePerSeat": 1000});
    let t = trip::create(&e.deps, &org, serde_json::from_value(body)?, &cause)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    subscribers(&e, &org, &Channel::Trip(t.trip_id.to_string()), 1, &mut rx).await?;
    let trip_id = t.trip_id.clone();
    out.push(
        counted("booking, 1 subscriber (the organizer)", 1, &e, |deps| async move {
            let req = booking::CreateBooking { trip_id, seats_booked: 1 };
            booking::create(&deps, &claims_of("ann", &[Role::Passenger]), req, None, &Cause::default())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(())
        })
        .await?,
    );
    driver::accept(&e.deps, &claims_of("dan", &[Role::Driver]), &t.trip_id, &cause)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let trip_id = t.trip_id.clone();
    out.push(
        counted("trip status update, 1 subscriber", 1, &e, |deps| async move {
            let req: driver::UpdateStatus = serde_json::from_value(serde_json::json!({"status": "DEPARTED"}))?;
            driver::update_status(&deps, &claims_of("dan", &[Role::Driver]), &trip_id, req, &Cause::default())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(())
        })
        .await?,
    );
    Ok(out)
}

fn claims_of(sub: &str, roles: &[Role]) -> Claims {
    Claims {
        sub: sub.into(),
        roles: roles.to_vec(),
        name: Some(sub.into()),
        exp: i64::MAX / 2,
    }
}

fn scenarios_markdown(rows: &[Scenario]) -> String {
    let mut md = String::from("\n## What each write costs (route, relay and fan-out together)\n\n");
    md.push_str(
        "| write | subscribers | events | DynamoDB requests | RRU | WRU | PutEvents | posts |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} ({} route + {} fan-out) | {} | {} | {} | {} |",
            r.name,
            r.subscribers,
            r.events,
            r.route.dynamodb_requests() + r.fanout.dynamodb_requests(),
            r.route.dynamodb_requests(),
            r.fanout.dynamodb_requests(),
            r.route.rru + r.fanout.rru,
            r.route.wru + r.fanout.wru,
            r.route.put_events + r.fanout.put_events,
            r.fanout.post_to_connection
        );
    }
    md
}
