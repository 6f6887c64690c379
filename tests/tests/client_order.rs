//! The clients' delivery order: events handed to the application in `seq` order per
//! channel, exactly once. The TypeScript package's tests run under Node's built-in test
//! runner (`infra/local/tests/js_client.rs`); the Rust client's ordering is unit-tested in
//! its crate and here runs against the local stack with injected push faults and a
//! reconnect.

use futures::StreamExt;
use realtime_domain::channels::Channel;
use realtime_local::stack::Options;
use realtime_tests::client::{ChannelOrder, Http, TokenIn, WsClient};
use realtime_tests::start_stack_with;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

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

/// Subscribes with `order` until acknowledged, as an application would under faults: a
/// refused subscribe (say, throttled) is sent again on the same connection, whose order
/// keeps its position; after one with no answer (the request, the answer or the
/// connection lost), the events the order had ready go to `got` and the order moves to a
/// new connection.
async fn subscribe_retrying(ws_url: &str, token: &str, order: ChannelOrder, got: &mut Vec<Value>) -> (WsClient, Value) {
    let channel = order.channel().to_string();
    let mut order = Some(order);
    let mut client = None;
    for i in 0..50 {
        let mut c = match client.take() {
            Some(c) => c,
            None => match WsClient::connect(ws_url, Some(token), TokenIn::Subprotocol).await {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let id = format!("s{i}");
        let answer = match order.take() {
            Some(o) => c.subscribe_ordered_with(&id, o, &[]).await,
            // Kept from a refused attempt (a channel that had no position is not kept).
            None if c.order(&channel).is_some() => c.subscribe_ordered(&id, &channel, &[], GAP_WAIT).await,
            None => c.subscribe_ordered_with(&id, fresh_order(&channel), &[]).await,
        };
        match answer {
            Ok(ack) if ack["type"] == "subscribed" => return (c, ack),
            Ok(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                client = Some(c);
            }
            Err(_) => {
                while let Some(f) = c.next_event_in_order(&channel, Duration::ZERO).await {
                    got.push(f);
                }
                order = c.take_order(&channel);
                c.close().await;
            }
        }
    }
    panic!("could not subscribe");
}

const GAP_WAIT: Duration = Duration::from_millis(200);

fn fresh_order(channel: &str) -> ChannelOrder {
    ChannelOrder::new(channel)
        .with_gap_wait(GAP_WAIT)
        .with_resume_timeout(Duration::from_millis(1500))
        // A last event lost to a fault shows no gap: a quiet second asks.
        .with_tail_check(Some(Duration::from_secs(1)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_orders_a_channel_under_push_faults_and_a_reconnect() {
    const EVENTS: usize = 200;
    let opts = Options {
        fault_rate: 0.2,
        fault_seed: 7,
        schedule_period: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let stack = start_stack_with(opts).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let bob = http.dev_token("bob", &[]).await.unwrap();
    let (status, chat) = post_retrying(&http, "/api/chat", &alice, &json!({"title": "order"})).await;
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let channel = format!("chat:{chat_id}");
    let (status, _) = post_retrying(
        &http,
        &format!("/api/chat/{chat_id}/participants"),
        &bob,
        &json!({"displayName": "Bob"}),
    )
    .await;
    assert_eq!(status, 200);
    let chan = Channel::Chat(chat_id.clone());
    let ws_url = stack.ws_url();
    let mut got: Vec<Value> = Vec::new();
    let (mut c, ack) = subscribe_retrying(&ws_url, &bob, fresh_order(&channel), &mut got).await;
    let from = ack["seq"].as_u64().unwrap();

    // Bob reads in order in the background; halfway through he drops the connection and
    // subscribes on a new one with the same order (`resume` from what he got).
    let (head_tx, mut head_rx) = tokio::sync::watch::channel(u64::MAX);
    let reader = {
        let (bob, channel) = (bob.clone(), channel.clone());
        tokio::spawn(async move {
            let mut reconnected = false;
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let target = *head_rx.borrow_and_update();
                // The last frame may be a presence one, which has no seq (it is not logged).
                if got.iter().rev().find_map(|f| f["seq"].as_u64()).unwrap_or(from) >= target {
                    return (got, reconnected, c);
                }
                assert!(
                    Instant::now() < deadline,
                    "the reader got {} events; the head is {target}; its order (seq, held, resuming): {:?}",
                    got.len(),
                    c.order(&channel).map(|o| (o.seq(), o.pending_len(), o.resuming()))
                );
                if !reconnected && got.len() >= EVENTS / 4 {
                    // What is ready first: the order's position counts it as handed over.
                    while let Some(f) = c.next_event_in_order(&channel, Duration::ZERO).await {
                        got.push(f);
                    }
                    let order = c.take_order(&channel).expect("no frame ready: all were read");
                    c.close().await;
                    let (again, ack) = subscribe_retrying(&ws_url, &bob, order, &mut got).await;
                    assert_eq!(ack["epoch"].as_str(), again.order(&channel).and_then(ChannelOrder::epoch));
                    c = again;
                    reconnected = true;
                }
                if let Some(f) = c.next_event_in_order(&channel, Duration::from_millis(100)).await {
                    got.push(f);
                }
            }
        })
    };

    // Eight sends in flight at a time: the fan-out sequences them in any order.
    let sent: HashSet<String> = futures::stream::iter((0..EVENTS).map(|i| {
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
    assert_eq!(sent.len(), EVENTS);

    // The feed drains and the fan-outs finish: the head stops moving.
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.stack.feed_pending().await > 0 {
        assert!(Instant::now() < deadline, "the feed did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut head = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = realtime_domain::log::head(stack.stack.deps.table.as_ref(), &chan)
            .await
            .unwrap()
            .seq;
        if now == head {
            break;
        }
        head = now;
    }
    head_tx.send(head).unwrap();
    let (got, reconnected, c) = reader.await.unwrap();
    assert!(reconnected);
    assert!(
        got.iter().all(|f| f["type"] == "event"),
        "no resync: {:?}",
        got.iter().find(|f| f["type"] != "event")
    );
    let seqs: Vec<u64> = got.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert_eq!(seqs, (from + 1..=head).collect::<Vec<_>>(), "every seq once, in order");
    let messages: Vec<&str> = got
        .iter()
        .filter(|f| f["event"]["type"] == "chat.message.stored")
        .map(|f| f["event"]["data"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages.iter().copied().collect::<HashSet<_>>(),
        sent.iter().map(String::as_str).collect()
    );
    assert_eq!(messages.len(), EVENTS, "no message twice");
    println!(
        "{} events from seq {} to {head} in order, once each, across a reconnect",
        got.len(),
        from + 1
    );
    c.close().await;
    stack.stop().await;
}
