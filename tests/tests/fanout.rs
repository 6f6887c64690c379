//! The fan-out over the local stack: content filters (a driver only receives the
//! offers its filter matches), event-type wildcards, events put through the
//! EventBridge `PutEvents` endpoint, and 410 cleanup that removes only the stale
//! connection.

use realtime_domain::channels::Channel;
use realtime_domain::connections;
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::start_stack;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// Puts an envelope on the bus through the local EventBridge `PutEvents` API.
async fn put_event(base: &str, event_type: &str, trip_id: &str, data: Value) -> String {
    let id = ulid::Ulid::new().to_string();
    let envelope = json!({"id": id, "type": event_type, "version": 1, "occurredAt": chrono::Utc::now(), "correlationId": "test",
        "priority": "normal", "source": "realtime.trips", "tripId": trip_id, "data": data});
    let body = json!({"Entries": [{"Source": "realtime.trips", "DetailType": event_type, "Detail": envelope.to_string(), "EventBusName": "realtime-events"}]});
    let resp = reqwest::Client::new()
        .post(format!("{base}/"))
        .header("x-amz-target", "AWSEvents.PutEvents")
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["FailedEntryCount"], 0, "{answer}");
    id
}

async fn offer_ids(c: &mut WsClient) -> Vec<String> {
    let mut ids = Vec::new();
    while let Some(f) = c.next(Duration::from_millis(400)).await {
        if f["type"] == "event" {
            ids.push(f["event"]["data"]["offer"].as_str().unwrap_or_default().to_string());
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_receive_only_the_offers_their_filter_matches() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let near = http.dev_token("near", &["driver"]).await.unwrap();
    let rich = http.dev_token("rich", &["driver"]).await.unwrap();
    let rider = http.dev_token("rider", &["passenger"]).await.unwrap();

    let mut n = WsClient::connect(&stack.ws_url(), Some(&near), TokenIn::Subprotocol).await.unwrap();
    n.send(
        &json!({"action": "subscribe", "id": "n", "channel": "drivers", "events": ["trip.offer.*"],
        "filter": {"distanceKm": [{"numeric": ["<=", 50]}], "tripType": ["PRIVATE", "SHARED"]}}),
    )
    .await
    .unwrap();
    assert_eq!(n.next(WAIT).await.unwrap()["type"], "subscribed");
    let mut r = WsClient::connect(&stack.ws_url(), Some(&rich), TokenIn::Subprotocol).await.unwrap();
    r.send(&json!({"action": "subscribe", "id": "r", "channel": "drivers", "filter": {"estimatedEarnings": [{"numeric": [">=", 5000]}]}}))
        .await
        .unwrap();
    assert_eq!(r.next(WAIT).await.unwrap()["type"], "subscribed");
    // Passengers may not listen to offers.
    let mut p = WsClient::connect(&stack.ws_url(), Some(&rider), TokenIn::Subprotocol)
        .await
        .unwrap();
    assert_eq!(p.subscribe("p", "drivers", &[]).await.unwrap()["code"], "forbidden");

    let offers = [
        ("close-cheap", 10, 1500, "PRIVATE"),
        ("far-rich", 120, 9000, "PRIVATE"),
        ("close-rich", 30, 6000, "SHARED"),
        ("close-odd", 5, 100, "CARGO"),
    ];
    for (name, km, earnings, kind) in offers {
        put_event(
            &stack.http_url(),
            "trip.offer.created",
            name,
            json!({"offer": name, "distanceKm": km, "estimatedEarnings": earnings, "tripType": kind}),
        )
        .await;
    }
    let mut got_near = offer_ids(&mut n).await;
    let mut got_rich = offer_ids(&mut r).await;
    got_near.sort();
    got_rich.sort();
    assert_eq!(got_near, vec!["close-cheap", "close-rich"]);
    assert_eq!(got_rich, vec!["close-rich", "far-rich"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_select_event_types() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let admin = http.dev_token("root", &["admin"]).await.unwrap();
    let mut one = WsClient::connect(&stack.ws_url(), Some(&admin), TokenIn::Subprotocol)
        .await
        .unwrap();
    let mut any = WsClient::connect(&stack.ws_url(), Some(&admin), TokenIn::Subprotocol)
        .await
        .unwrap();
    assert_eq!(one.subscribe("a", "trip:T9", &["trip.*"]).await.unwrap()["type"], "subscribed");
    assert_eq!(any.subscribe("b", "trip:T9", &["**"]).await.unwrap()["type"], "subscribed");
    put_event(&stack.http_url(), "trip.created", "T9", json!({})).await;
    put_event(&stack.http_url(), "trip.status.updated", "T9", json!({})).await;
    let types = |frames: Vec<Value>| {
        frames
            .iter()
            .map(|f| f["event"]["type"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let mut a = Vec::new();
    while let Some(f) = one.next(Duration::from_millis(400)).await {
        a.push(f);
    }
    let mut b = Vec::new();
    while let Some(f) = any.next(Duration::from_millis(400)).await {
        b.push(f);
    }
    assert_eq!(types(a), vec!["trip.created"]);
    // `**` is everything on the channel: the two events, and the presence of the two admins
    // who subscribed (live, when its announcement comes within the wait).
    let mut b: Vec<String> = types(b).into_iter().filter(|t| !t.starts_with("presence.")).collect();
    b.sort();
    assert_eq!(b, vec!["trip.created", "trip.status.updated"]);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_connection_is_deleted_but_never_the_senders() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let (_, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "stale"})).await.unwrap();
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let channel = format!("chat:{chat_id}");
    let mut sender = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    assert_eq!(sender.subscribe("s", &channel, &[]).await.unwrap()["type"], "subscribed");
    let sender_id = stack.stack.hub.ids().pop().unwrap();
    let mut ghost = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    assert_eq!(ghost.subscribe("g", &channel, &[]).await.unwrap()["type"], "subscribed");
    let ghost_id = stack.stack.hub.ids().into_iter().find(|id| *id != sender_id).unwrap();
    // The socket vanishes without `$disconnect` (as when API Gateway's call is lost).
    stack.stack.hub.unregister(&ghost_id);

    let (status, _) = http
        .post(
            &format!("/api/chat/{chat_id}/messages"),
            Some(&alice),
            &json!({"content": "anyone?"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    sender
        .next_where(WAIT, |f| f["event"]["type"] == "chat.message.stored")
        .await
        .unwrap();
    let table = stack.stack.deps.table.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    while connections::get(table.as_ref(), &ghost_id).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the stale connection was not cleaned up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let subs = connections::subscribers(table.as_ref(), &Channel::Chat(chat_id.clone()))
        .await
        .unwrap();
    assert_eq!(
        subs.iter().map(|s| s.connection_id.as_str()).collect::<Vec<_>>(),
        vec![sender_id.as_str()]
    );
    assert!(connections::get(table.as_ref(), &sender_id).await.unwrap().is_some());
    drop(ghost);
    sender.close().await;
    stack.stop().await;
}

/// A channel with 4 shards on the local stack: its subscriptions spread over the shards,
/// and one message reaches every subscriber once, the other shards through the fan-out
/// worker function (as in AWS, where each is an asynchronous invoke).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_channel_reaches_every_subscriber_once_through_the_workers() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let (_, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "big"})).await.unwrap();
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let channel = format!("chat:{chat_id}");
    let table = stack.stack.deps.table.clone();
    realtime_domain::shards::ensure(table.as_ref(), &channel, 4).await.unwrap();
    let mut clients = Vec::new();
    for i in 0..24 {
        let mut c = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
            .await
            .unwrap();
        assert_eq!(
            c.subscribe(&format!("s{i}"), &channel, &["chat.message.*"]).await.unwrap()["type"],
            "subscribed"
        );
        clients.push(c);
    }
    let mut sizes = Vec::new();
    for shard in 0..4 {
        sizes.push(
            connections::shard_subscribers(table.as_ref(), &channel, shard)
                .await
                .unwrap()
                .0
                .len(),
        );
    }
    assert_eq!(sizes.iter().sum::<usize>(), 24);
    assert!(sizes.iter().filter(|n| **n > 0).count() >= 3, "spread over the shards: {sizes:?}");

    let (status, _) = http
        .post(
            &format!("/api/chat/{chat_id}/messages"),
            Some(&alice),
            &json!({"content": "to every shard"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    for c in &mut clients {
        let f = c.next_where(WAIT, |f| f["event"]["type"] == "chat.message.stored").await.unwrap();
        assert_eq!(f["event"]["data"]["content"], "to every shard", "{f}");
    }
    // Once each: nothing more comes.
    for c in &mut clients {
        assert!(c.next_where(Duration::from_millis(50), |f| f["type"] == "event").await.is_err());
    }
    // Leaving finds the shard: an unsubscribe and a closed socket.
    let mut gone = clients.pop().unwrap();
    gone.send(&json!({"action": "unsubscribe", "id": "u", "channel": channel}))
        .await
        .unwrap();
    gone.next_where(WAIT, |f| f["type"] == "unsubscribed").await.unwrap();
    clients.pop().unwrap().close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = connections::subscribers(table.as_ref(), &Channel::Chat(chat_id.clone()))
            .await
            .unwrap()
            .len();
        if n == 22 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{n} subscriptions left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack.stop().await;
}
