//! Delivery that loses nothing: replay after a reconnect, `resync` after retention,
//! and a run of 1,000 events under 30% injected faults (table writes, PutEvents,
//! PostToConnection) where every event reaches every subscriber, live or by `resume`,
//! and none is sequenced twice.

use futures::StreamExt;
use realtime_domain::channels::Channel;
use realtime_local::stack::Options;
use realtime_local::Running;
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::start_stack_with;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

/// Retries an HTTP call until it is not a 5xx (transient faults answer 503).
async fn post_retrying(http: &Http, path: &str, token: &str, body: &Value) -> (u16, Value) {
    for _ in 0..100 {
        let (status, body) = http.post(path, Some(token), body).await.expect("http");
        if status < 500 {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{path} kept failing");
}

async fn connect_retrying(stack: &Running, token: &str) -> WsClient {
    for _ in 0..100 {
        if let Ok(c) = WsClient::connect(&stack.ws_url(), Some(token), TokenIn::Subprotocol).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("could not connect");
}

/// Subscribes until acknowledged (an ack or the request itself may be lost to a fault).
async fn subscribe_retrying(c: &mut WsClient, channel: &str) -> (String, u64) {
    for i in 0..100 {
        let id = format!("s{i}");
        c.send(&json!({"action": "subscribe", "id": id, "channel": channel})).await.unwrap();
        if let Ok(ack) = c.next_where(Duration::from_millis(500), |f| f["id"] == id.as_str()).await {
            if ack["type"] == "subscribed" {
                return (ack["epoch"].as_str().unwrap().to_string(), ack["seq"].as_u64().unwrap());
            }
        }
    }
    panic!("could not subscribe");
}

async fn wait_for_head(stack: &Running, channel: &Channel, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head = realtime_domain::log::head(stack.stack.deps.table.as_ref(), channel).await.unwrap();
        if head.seq >= seq {
            return;
        }
        assert!(Instant::now() < deadline, "the channel reached seq {} of {seq}", head.seq);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a client has seen of one channel: seq → event id (and message content).
#[derive(Default)]
struct Seen {
    by_seq: BTreeMap<u64, (String, Value)>,
    live: usize,
    replayed: usize,
}

impl Seen {
    /// Records an event frame; panics if a seq ever carries two different events.
    fn record(&mut self, f: &Value, live: bool) {
        let (Some(seq), Some(id)) = (f["seq"].as_u64(), f["event"]["id"].as_str()) else {
            return;
        };
        let prev = self.by_seq.insert(seq, (id.to_string(), f["event"].clone()));
        match prev {
            Some((prev_id, _)) => assert_eq!(prev_id, id, "seq {seq} carried two events"),
            None if live => self.live += 1,
            None => self.replayed += 1,
        }
    }

    /// The highest seq up to which nothing is missing, counting from `from`.
    fn contiguous(&self, from: u64) -> u64 {
        let mut n = from;
        while self.by_seq.contains_key(&(n + 1)) {
            n += 1;
        }
        n
    }
}

/// Resumes until the client has every event after `from` up to the channel's head.
async fn resume_until_complete(c: &mut WsClient, seen: &mut Seen, channel: &str, epoch: &str, from: u64) {
    for round in 0..200 {
        let after = seen.contiguous(from);
        let id = format!("r{round}");
        c.send(&json!({"action": "resume", "id": id, "channel": channel, "epoch": epoch, "after": after}))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(1500);
        while let Some(f) = c.next(deadline.saturating_duration_since(Instant::now())).await {
            match f["type"].as_str() {
                Some("event") => seen.record(&f, false),
                Some("resumed") if f["id"] == id.as_str() => {
                    assert_eq!(f["epoch"], epoch);
                    if !f["more"].as_bool().unwrap_or(true) && seen.contiguous(from) >= f["seq"].as_u64().unwrap() {
                        return;
                    }
                    break;
                }
                Some("resync") => panic!("unexpected resync: {f}"),
                _ => {}
            }
        }
    }
    panic!("resume did not complete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_gets_exactly_what_it_missed_in_order() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let http = Http::new(stack.http_url());
    let (alice, bob) = (
        http.dev_token("alice", &[]).await.unwrap(),
        http.dev_token("bob", &[]).await.unwrap(),
    );
    let (_, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "replay"})).await.unwrap();
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    http.post(
        &format!("/api/chat/{chat_id}/participants"),
        Some(&bob),
        &json!({"displayName": "Bob"}),
    )
    .await
    .unwrap();
    let channel = format!("chat:{chat_id}");
    let chan = Channel::Chat(chat_id.clone());
    wait_for_head(&stack, &chan, 3).await;

    let mut b = WsClient::connect(&stack.ws_url(), Some(&bob), TokenIn::Subprotocol).await.unwrap();
    let (epoch, seq0) = subscribe_retrying(&mut b, &channel).await;
    b.close().await;

    for i in 0..100 {
        let (status, _) = http
            .post(
                &format!("/api/chat/{chat_id}/messages"),
                Some(&alice),
                &json!({"content": format!("m{i}")}),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
    }
    wait_for_head(&stack, &chan, seq0 + 100).await;

    // Reconnect and subscribe with `resume`: the 100 missed events, in order, then the acks.
    let mut b = WsClient::connect(&stack.ws_url(), Some(&bob), TokenIn::Query).await.unwrap();
    b.send(&json!({"action": "subscribe", "id": "again", "channel": channel, "resume": {"epoch": epoch, "after": seq0}}))
        .await
        .unwrap();
    let mut got = Vec::new();
    loop {
        let f = b.next(WAIT).await.expect("frames until the subscribe ack");
        match f["type"].as_str() {
            // Presence is live (no seq): not what this replay is about.
            Some("event") if is_presence(&f) => {}
            Some("event") => got.push(f),
            Some("resumed") => assert_eq!((f["replayed"].as_u64(), f["more"].as_bool()), (Some(100), Some(false)), "{f}"),
            Some("subscribed") => break,
            other => panic!("unexpected {other:?}: {f}"),
        }
    }
    // In seq order, exactly the missed ones. (Seq order is the order the fan-out
    // sequenced them; two quick sends may be sequenced either way round.)
    assert_eq!(
        got.iter().map(|f| f["seq"].as_u64().unwrap()).collect::<Vec<_>>(),
        (seq0 + 1..=seq0 + 100).collect::<Vec<_>>()
    );
    let mut contents: Vec<String> = got
        .iter()
        .map(|f| f["event"]["data"]["content"].as_str().unwrap().to_string())
        .collect();
    contents.sort_by_key(|c| c[1..].parse::<u32>().unwrap());
    assert_eq!(contents, (0..100).map(|i| format!("m{i}")).collect::<Vec<_>>());

    // The `resume` action answers the same from any point.
    b.send(&json!({"action": "resume", "id": "r1", "channel": channel, "epoch": epoch, "after": seq0 + 90}))
        .await
        .unwrap();
    let mut tail = Vec::new();
    let done = loop {
        let f = b.next(WAIT).await.expect("frames until resumed");
        if is_presence(&f) {
            continue;
        }
        if f["type"] == "event" {
            tail.push(f["seq"].as_u64().unwrap());
        } else {
            break f;
        }
    };
    assert_eq!(tail, (seq0 + 91..=seq0 + 100).collect::<Vec<_>>());
    assert_eq!(
        (done["type"].as_str(), done["id"].as_str(), done["seq"].as_u64()),
        (Some("resumed"), Some("r1"), Some(seq0 + 100))
    );

    // A wrong epoch cannot be replayed.
    b.send(&json!({"action": "resume", "id": "r2", "channel": channel, "epoch": "nope", "after": 1}))
        .await
        .unwrap();
    let f = b.next_where(WAIT, |f| !is_presence(f)).await.unwrap();
    assert_eq!((f["type"].as_str(), f["reason"].as_str()), (Some("resync"), Some("epoch_changed")));
    b.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_retention_a_resume_answers_resync() {
    let stack = start_stack_with(Options {
        log_retention_secs: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let (_, chat) = http
        .post("/api/chat", Some(&alice), &json!({"title": "short memory"}))
        .await
        .unwrap();
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let channel = format!("chat:{chat_id}");
    let mut a = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    let (epoch, seq0) = subscribe_retrying(&mut a, &channel).await;
    a.close().await;
    for i in 0..5 {
        http.post(
            &format!("/api/chat/{chat_id}/messages"),
            Some(&alice),
            &json!({"content": format!("m{i}")}),
        )
        .await
        .map(|(status, _)| assert_eq!(status, 201))
        .unwrap();
    }
    // Answered means logged (sequenced at the source); then every entry expires.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut a = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    a.send(&json!({"action": "resume", "id": "r", "channel": channel, "epoch": epoch, "after": seq0}))
        .await
        .unwrap();
    let f = a.next(WAIT).await.unwrap();
    // With a 1 s retention the log may expire whole between two of the sends: the next one
    // then opens a new epoch (no seq is ever given twice in one), and the answer says so.
    assert_eq!((f["type"].as_str(), f["id"].as_str()), (Some("resync"), Some("r")), "{f}");
    assert!(matches!(f["reason"].as_str(), Some("log_trimmed" | "epoch_changed")), "{f}");
    a.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_30_percent_faults_1000_events_reach_every_subscriber_once() {
    const EVENTS: usize = 1000;
    let opts = Options {
        fault_rate: 0.3,
        fault_seed: 42,
        schedule_period: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let stack = start_stack_with(opts).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let readers = [
        http.dev_token("bob", &[]).await.unwrap(),
        http.dev_token("carol", &[]).await.unwrap(),
    ];
    let (status, chat) = post_retrying(&http, "/api/chat", &alice, &json!({"title": "chaos"})).await;
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let channel = format!("chat:{chat_id}");
    for t in &readers {
        let (status, _) = post_retrying(
            &http,
            &format!("/api/chat/{chat_id}/participants"),
            t,
            &json!({"displayName": "reader"}),
        )
        .await;
        assert_eq!(status, 200);
    }

    // Readers collect live frames in the background while alice sends.
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    for t in &readers {
        let mut c = connect_retrying(&stack, t).await;
        let (epoch, from) = subscribe_retrying(&mut c, &channel).await;
        let mut stop = stop_tx.subscribe();
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            loop {
                tokio::select! {
                    _ = stop.recv() => break,
                    f = c.next(Duration::from_millis(100)) => if let Some(f) = f { seen.record(&f, true) },
                }
            }
            (c, seen, epoch, from)
        }));
    }

    let started = Instant::now();
    // Eight sends in flight at a time.
    let sent: Vec<String> = futures::stream::iter((0..EVENTS).map(|i| {
        let (http, alice, chat_id) = (&http, &alice, &chat_id);
        async move {
            let body = json!({"content": format!("message {i}"), "clientMessageId": format!("m-{i}")});
            let (status, msg) = post_retrying(http, &format!("/api/chat/{chat_id}/messages"), alice, &body).await;
            assert!(status == 201 || status == 200, "{status} {msg}");
            msg["id"].as_str().unwrap().to_string()
        }
    }))
    .buffer_unordered(8)
    .collect()
    .await;
    let sent: HashSet<String> = sent.into_iter().collect();
    assert_eq!(sent.len(), EVENTS, "every message stored once despite retries");
    let send_time = started.elapsed();

    // The feed drains (the relay retries what failed to publish) and the fan-outs finish.
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.stack.feed_pending().await > 0 {
        assert!(Instant::now() < deadline, "the feed did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let chan = Channel::Chat(chat_id.clone());
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let head = realtime_domain::log::head(stack.stack.deps.table.as_ref(), &chan)
            .await
            .unwrap()
            .seq;
        if head == last {
            break;
        }
        last = head;
    }
    let _ = stop_tx.send(());

    for task in tasks {
        let (mut c, mut seen, epoch, from) = task.await.unwrap();
        let live = seen.live;
        resume_until_complete(&mut c, &mut seen, &channel, &epoch, from).await;
        let messages: Vec<&str> = seen
            .by_seq
            .values()
            .filter(|(_, e)| e["type"] == "chat.message.stored")
            .map(|(_, e)| e["data"]["id"].as_str().unwrap())
            .collect();
        let unique: HashSet<&str> = messages.iter().copied().collect();
        assert_eq!(messages.len(), unique.len(), "a message was sequenced twice");
        let lost = sent.iter().filter(|id| !unique.contains(id.as_str())).count();
        assert_eq!(lost, 0, "lost messages");
        assert_eq!(unique.len(), EVENTS);
        let event_ids: HashSet<&str> = seen.by_seq.values().map(|(id, _)| id.as_str()).collect();
        assert_eq!(event_ids.len(), seen.by_seq.len(), "an event id carries two seqs");
        println!(
            "reader: {live} events live, {} recovered by resume, 0 lost, 0 twice (sends took {send_time:?})",
            seen.replayed
        );
        c.close().await;
    }
    stack.stop().await;
}

/// A presence frame (live, no seq), which may come between any two others.
fn is_presence(f: &Value) -> bool {
    f["event"]["type"].as_str().is_some_and(|t| t.starts_with("presence."))
}
