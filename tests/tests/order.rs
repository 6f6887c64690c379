//! Events in the order they happened (sequenced at the source), on SQLite and on
//! DynamoDB Local: a message to a chat with the assistant is logged, and handed to the
//! application (the Rust client's in-order delivery), as the seeds' flow, 100 runs of
//! 100; every trip status update follows the one before it; and the SSE `connected`
//! frame is never newer than the updates it replays.

use realtime_domain::channels::Channel;
use realtime_domain::config::ChatConfig;
use realtime_domain::log::{self, Replay};
use realtime_local::stack::Options;
use realtime_local::Running;
use realtime_tests::client::{Http, SseClient, TokenIn, WsClient};
use realtime_tests::dynamodb_local::DynamoDbLocal;
use realtime_tests::start_stack_with;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const RUNS: usize = 100;

/// The seeds' flow of one user message to a chat with the assistant (`low` events, typing,
/// carry no seq and are not part of it).
const FLOW: &[&str] = &[
    "chat.message.stored",
    "chat.turn.changed",
    "chat.ai.requested",
    "chat.ai.started",
    "chat.message.stored",
    "chat.ai.completed",
    "chat.turn.changed",
];

fn opts() -> Options {
    let mut chat = ChatConfig::local();
    chat.assistant.builtin_delay_ms = 5;
    Options {
        chat: Some(chat),
        sse_poll: Some(Duration::from_millis(50)),
        ..Options::default()
    }
}

/// One run: a chat (user, then assistant), a subscriber that takes events in seq order,
/// one message. Returns the types the application saw and the types in the log.
async fn one_run(stack: &Running, http: &Http, alice: &str) -> (Vec<String>, Vec<String>) {
    let settings = json!({"turnMode": "user_then_assistant", "assistantEnabled": true});
    let (status, chat) = http
        .post("/api/chat", Some(alice), &json!({"title": "order", "settings": settings}))
        .await
        .unwrap();
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let channel = format!("chat:{chat_id}");
    let mut ws = WsClient::connect(&stack.ws_url(), Some(alice), TokenIn::Subprotocol).await.unwrap();
    let ack = ws
        .subscribe_ordered("s1", &channel, &["chat.**"], Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(ack["type"], "subscribed", "{ack}");
    let from = ack["seq"].as_u64().unwrap();
    let (status, body) = http
        .post(&format!("/api/chat/{chat_id}/messages"), Some(alice), &json!({"content": "hello"}))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let mut seen = Vec::new();
    let mut last_seq = from;
    while seen.len() < FLOW.len() {
        let f = ws
            .next_event_in_order(&channel, WAIT)
            .await
            .unwrap_or_else(|| panic!("chat {chat_id}: saw only {seen:?}"));
        let Some(seq) = f["seq"].as_u64() else { continue };
        assert!(seq > last_seq, "{seq} after {last_seq}: out of order or twice");
        assert_eq!(seq, last_seq + 1, "a gap handed to the application");
        last_seq = seq;
        seen.push(f["event"]["type"].as_str().unwrap_or_default().to_string());
    }
    ws.close().await;
    let table = stack.stack.deps.table.as_ref();
    let ch: Channel = channel.parse().unwrap();
    let head = log::head(table, &ch).await.unwrap();
    let Replay::Events { events, .. } = log::replay(table, &ch, &head.epoch, from, 100).await.unwrap() else {
        panic!("no replay")
    };
    let logged = events
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap_or_default().to_string())
        .collect();
    (seen, logged)
}

async fn flow_in_order(stack: &Running) {
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    for run in 0..RUNS {
        let (seen, logged) = one_run(stack, &http, &alice).await;
        assert_eq!(seen, FLOW, "run {run}: as the application saw it");
        assert_eq!(logged, FLOW, "run {run}: the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assistant_flow_is_in_causal_order_100_of_100_on_sqlite() {
    let stack = start_stack_with(opts()).await.unwrap();
    flow_in_order(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assistant_flow_is_in_causal_order_100_of_100_on_dynamodb_local() {
    let dynamo = DynamoDbLocal::start().await.unwrap();
    let stack = start_stack_with(Options {
        dynamodb_endpoint: Some(dynamo.endpoint.clone()),
        ..opts()
    })
    .await
    .unwrap();
    flow_in_order(&stack).await;
    stack.stop().await;
}

/// Every `trip.status.updated` starts where the one before it (in seq) ended, and a
/// tracker that reconnects with `Last-Event-ID` gets a `connected` status that the
/// replayed updates continue from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trip_status_updates_chain_and_sse_never_goes_backwards() {
    let stack = start_stack_with(opts()).await.unwrap();
    let http = Http::new(stack.http_url());
    let org = http.dev_token("org", &["organizer"]).await.unwrap();
    let dan = http.dev_token("dan", &["driver"]).await.unwrap();
    let departure = (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339();
    let trip = json!({"title": "order", "tripType": "SHARED", "status": "PUBLISHED",
        "origin": {"name": "A", "lat": 52.52, "lng": 13.40}, "destination": {"name": "B", "lat": 52.40, "lng": 13.06},
        "departureTime": departure, "totalSeats": 4, "pricePerSeat": 1000});
    let (status, body) = http.post("/api/trips", Some(&org), &trip).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let trip_id = body["tripId"].as_str().unwrap().to_string();
    let channel = format!("trip:{trip_id}");
    let mut ws = WsClient::connect(&stack.ws_url(), Some(&org), TokenIn::Subprotocol).await.unwrap();
    let ack = ws
        .subscribe_ordered("s1", &channel, &["trip.**"], Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(ack["type"], "subscribed", "{ack}");
    let (status, body) = http
        .post(&format!("/api/drivers/trips/accept/{trip_id}"), Some(&dan), &json!({}))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let path = format!("/api/drivers/trips/{trip_id}/status");
    for to in ["DEPARTED", "ARRIVED", "COMPLETED"] {
        let (status, body) = http.put(&path, Some(&dan), &json!({"status": to})).await.unwrap();
        assert_eq!(status, 200, "{to}: {body}");
    }
    // As the application sees them: a chain from PUBLISHED to COMPLETED.
    let mut updates: Vec<(u64, String, String)> = Vec::new();
    while updates.last().map(|u| u.2.as_str()) != Some("COMPLETED") {
        let f = ws.next_event_in_order(&channel, WAIT).await.expect("the trip's updates");
        if f["event"]["type"] == "trip.status.updated" {
            let d = &f["event"]["data"];
            updates.push((
                f["seq"].as_u64().unwrap(),
                d["previousStatus"].as_str().unwrap().to_string(),
                d["newStatus"].as_str().unwrap().to_string(),
            ));
        }
    }
    let chain: Vec<&str> = updates.iter().map(|u| u.2.as_str()).collect();
    assert_eq!(chain, ["IN_PROGRESS", "DEPARTED", "ARRIVED", "COMPLETED"]);
    assert_eq!(updates[0].1, "PUBLISHED");
    for w in updates.windows(2) {
        assert_eq!(w[1].1, w[0].2, "previousStatus of seq {} is the status of seq {}", w[1].0, w[0].0);
        assert!(w[1].0 > w[0].0);
    }
    // A tracker that had seen up to DEPARTED reconnects: connected says DEPARTED, then ARRIVED, COMPLETED.
    let url = format!("{}/api/realtime/trip-status/{trip_id}", stack.http_url());
    let departed = updates[1].0.to_string();
    let mut sse = SseClient::connect(&url, Some(&org), Some(&departed)).await.unwrap();
    let connected = sse.next_of("connected", WAIT).await.unwrap();
    assert_eq!(connected.data["currentStatus"], "DEPARTED", "{:?}", connected.data);
    let mut replayed = Vec::new();
    while replayed.len() < 2 {
        let e = sse.next_of("status_update", WAIT).await.unwrap();
        replayed.push(e.data["newStatus"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(replayed, ["ARRIVED", "COMPLETED"]);
    let _: Value = connected.data;
    ws.close().await;
    stack.stop().await;
}

/// A hot channel: 50 writers send to one chat at once on DynamoDB Local. Contention on the
/// channel's next seq only retries: every send is answered 201, the log holds each message
/// once, gap-free. Prints the events per second one channel sustained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_writers_on_one_channel_lose_and_double_nothing_on_dynamodb_local() {
    let dynamo = DynamoDbLocal::start().await.unwrap();
    let stack = start_stack_with(Options {
        dynamodb_endpoint: Some(dynamo.endpoint.clone()),
        ..opts()
    })
    .await
    .unwrap();
    fifty_writers(stack, "DynamoDB Local").await;
}

/// The same 50 writers, half through a second stack on the same table: the two contend
/// on the channel's next seq as two Lambda instances would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_writers_in_two_processes_on_one_channel_lose_and_double_nothing_on_dynamodb_local() {
    let dynamo = DynamoDbLocal::start().await.unwrap();
    let opts = || Options {
        dynamodb_endpoint: Some(dynamo.endpoint.clone()),
        ..opts()
    };
    let (a, b) = (start_stack_with(opts()).await.unwrap(), start_stack_with(opts()).await.unwrap());
    let second = b.http_url();
    fifty_writers_through(a, Some(second), "DynamoDB Local, two stacks").await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_writers_on_one_channel_lose_and_double_nothing_on_sqlite() {
    fifty_writers(start_stack_with(opts()).await.unwrap(), "SQLite").await;
}

async fn fifty_writers(stack: Running, on: &str) {
    fifty_writers_through(stack, None, on).await
}

/// 50 writers of one chat; with `second`, the odd ones send through that stack.
async fn fifty_writers_through(stack: Running, second: Option<String>, on: &str) {
    const WRITERS: usize = 50;
    const EACH: usize = 10;
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let (status, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "hot"})).await.unwrap();
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let ch = Channel::Chat(chat_id.clone());
    let table = stack.stack.deps.table.clone();
    let before = log::head(table.as_ref(), &ch).await.unwrap().seq;
    let started = std::time::Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let base = match (&second, w % 2) {
                (Some(url), 1) => url.clone(),
                _ => stack.http_url(),
            };
            let (http, alice, chat_id) = (Http::new(base), alice.clone(), chat_id.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..EACH {
                    let body = json!({"content": format!("w{w} m{i}")});
                    let (status, answer) = http
                        .post(&format!("/api/chat/{chat_id}/messages"), Some(&alice), &body)
                        .await
                        .unwrap();
                    if status != 201 {
                        eprintln!("{status} {answer}");
                    }
                    statuses.push(status);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for w in writers {
        statuses.extend(w.await.unwrap());
    }
    let took = started.elapsed();
    assert!(
        statuses.iter().all(|s| *s == 201),
        "{:?}",
        statuses.iter().filter(|s| **s != 201).collect::<Vec<_>>()
    );
    let head = log::head(table.as_ref(), &ch).await.unwrap();
    let n = (WRITERS * EACH) as u64;
    assert_eq!(head.seq, before + n);
    let mut contents = std::collections::HashSet::new();
    let mut after = before;
    while after < head.seq {
        let Replay::Events { events, .. } = log::replay(table.as_ref(), &ch, &head.epoch, after, 500).await.unwrap() else {
            panic!("no replay")
        };
        for (seq, e) in events {
            assert_eq!(seq, after + 1, "gap-free");
            after = seq;
            assert!(contents.insert(e["data"]["content"].as_str().unwrap().to_string()), "doubled: {e}");
        }
    }
    assert_eq!(contents.len() as u64, n);
    println!(
        "one channel, {WRITERS} concurrent writers on {on}: {n} events in {:.2} s = {:.0} events/s, every send 201, no seq lost or doubled",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    stack.stop().await;
}
