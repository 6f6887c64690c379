//! Presence on SQLite and on DynamoDB Local, over real WebSockets: members are users,
//! joins and leaves are announced (coalesced, at most one frame per channel per second),
//! a killed client leaves within the bound, a reconnect within the grace period announces
//! nothing, two tabs are one member, and only who may subscribe may read it.

use realtime_local::stack::Options;
use realtime_local::Running;
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::dynamodb_local::DynamoDbLocal;
use realtime_tests::start_stack_with;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
/// The test stacks' grace period (production: 15 s).
const GRACE: Duration = Duration::from_secs(2);

fn opts() -> Options {
    Options {
        presence_grace: Some(GRACE),
        // The sweeper every 200 ms, each run looking for 150 ms (production: every
        // minute, looking for 55 s).
        schedule_period: Some(Duration::from_millis(200)),
        presence_sweep: Some(Duration::from_millis(150)),
        ..Default::default()
    }
}

async fn on_dynamodb_local() -> (DynamoDbLocal, Running) {
    let dynamo = DynamoDbLocal::start().await.unwrap();
    let stack = start_stack_with(Options {
        dynamodb_endpoint: Some(dynamo.endpoint.clone()),
        ..opts()
    })
    .await
    .unwrap();
    (dynamo, stack)
}

async fn connect(stack: &Running, token: &str) -> WsClient {
    WsClient::connect(&stack.ws_url(), Some(token), TokenIn::Subprotocol).await.unwrap()
}

async fn subscribe(c: &mut WsClient, channel: &str, events: &[&str]) {
    // Generous: 200 subscribes at once on DynamoDB Local (a JVM on 2 cores) queue up.
    c.send(&json!({"action": "subscribe", "id": "s", "channel": channel, "events": events}))
        .await
        .unwrap();
    let ack = c.next_where(Duration::from_secs(60), |f| f["id"] == "s").await.unwrap();
    assert_eq!(ack["type"], "subscribed", "{ack}");
}

/// A chat of `owner` with `members` joined; returns its id.
async fn chat(http: &Http, owner: &str, members: &[&str]) -> String {
    let (status, chat) = http.post("/api/chat", Some(owner), &json!({"title": "presence"})).await.unwrap();
    assert_eq!(status, 201, "{chat}");
    let id = chat["chatId"].as_str().unwrap().to_string();
    for m in members {
        let (status, body) = http
            .post(&format!("/api/chat/{id}/participants"), Some(m), &json!({"displayName": "someone"}))
            .await
            .unwrap();
        assert!(status < 300, "{body}");
    }
    id
}

async fn presence(http: &Http, token: &str, channel: &str) -> (u16, Value) {
    http.get(&format!("/api/channels/{channel}/presence"), Some(token)).await.unwrap()
}

fn users(v: &Value) -> BTreeSet<String> {
    v["members"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["userId"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Polls the channel's presence until `want` holds (or panics after `within`).
async fn until_presence(http: &Http, token: &str, channel: &str, within: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = presence(http, token, channel).await;
        assert_eq!(status, 200, "{body}");
        if want(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "presence never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The presence frames an observer got so far (draining what is there).
async fn presence_frames(c: &mut WsClient, wait: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(f) = c.next(wait).await {
        if f["type"] == "event" && f["event"]["type"].as_str().is_some_and(|t| t.starts_with("presence.")) {
            out.push(f);
        }
    }
    out
}

fn members_of(frames: &[Value], ty: &str) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["event"]["type"] == ty)
        .flat_map(|f| users(&f["event"]["data"]))
        .collect()
}

async fn three_join_and_leave(stack: &Running) {
    let http = Http::new(stack.http_url());
    let [alice, bob, carol] = [
        http.dev_token("p-alice", &[]).await.unwrap(),
        http.dev_token("p-bob", &[]).await.unwrap(),
        http.dev_token("p-carol", &[]).await.unwrap(),
    ];
    let admin = http.dev_token("p-admin", &["admin"]).await.unwrap();
    let id = chat(&http, &alice, &[&bob, &carol]).await;
    let channel = format!("chat:{id}");
    let mut monitor = connect(stack, &admin).await;
    subscribe(&mut monitor, "admin", &["channel.*"]).await;

    let mut a = connect(stack, &alice).await;
    subscribe(&mut a, &channel, &["presence.*"]).await;
    let mut b = connect(stack, &bob).await;
    subscribe(&mut b, &channel, &[]).await;
    let mut c = connect(stack, &carol).await;
    subscribe(&mut c, &channel, &[]).await;
    let all = until_presence(&http, &alice, &channel, WAIT, |p| p["occupancy"] == 3).await;
    assert_eq!(users(&all), ["p-alice", "p-bob", "p-carol"].map(String::from).into());
    let bob_member = all["members"].as_array().unwrap().iter().find(|m| m["userId"] == "p-bob").unwrap();
    assert_eq!(
        (bob_member["connections"].as_u64(), bob_member["role"].as_str()),
        (Some(1), Some("user"))
    );
    assert!(bob_member["connectedAt"].is_string(), "{bob_member}");
    // The chat's state says who is online.
    let (_, state) = http.get(&format!("/api/chat/{id}/state"), Some(&alice)).await.unwrap();
    assert_eq!(state["online"].as_array().map(Vec::len), Some(3), "{state}");

    // Bob closes; carol's client is killed: its socket goes without a close frame.
    b.close().await;
    drop(c);
    let gone = Instant::now();
    until_presence(&http, &alice, &channel, Duration::from_secs(60), |p| p["occupancy"] == 1).await;
    let took = gone.elapsed();
    assert!(took >= GRACE - Duration::from_millis(200), "left before the grace period: {took:?}");
    assert!(took <= GRACE + Duration::from_secs(5), "left later than the bound: {took:?}");
    let frames = presence_frames(&mut a, Duration::from_millis(1500)).await;
    let joined: BTreeSet<String> = members_of(&frames, "presence.joined").into_iter().collect();
    let left: Vec<String> = members_of(&frames, "presence.left");
    // Alice's own join may be announced before her subscription saw it; bob's and carol's are.
    assert!(joined.is_superset(&["p-bob", "p-carol"].map(String::from).into()), "{frames:?}");
    assert_eq!(
        left.iter().cloned().collect::<BTreeSet<_>>(),
        ["p-bob", "p-carol"].map(String::from).into(),
        "{frames:?}"
    );
    assert_eq!(left.len(), 2, "each left once: {frames:?}");
    // Presence events are live (no seq) and carry the occupancy after them.
    assert!(frames.iter().all(|f| f["seq"].is_null()), "{frames:?}");
    assert_eq!(frames.last().unwrap()["event"]["data"]["occupancy"], 1);

    // The last one out vacates the channel: both lifecycle events reached the admin channel.
    a.close().await;
    let vacated = monitor
        .next_where(Duration::from_secs(30), |f| {
            f["event"]["type"] == "channel.vacated" && f["event"]["data"]["channel"] == channel
        })
        .await;
    assert!(vacated.is_ok(), "no channel.vacated for {channel}");
    monitor.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_join_and_leave_one_killed_on_sqlite() {
    let stack = start_stack_with(opts()).await.unwrap();
    three_join_and_leave(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_join_and_leave_one_killed_on_dynamodb_local() {
    let (_dynamo, stack) = on_dynamodb_local().await;
    three_join_and_leave(&stack).await;
    stack.stop().await;
}

async fn no_flap_and_two_tabs(stack: &Running) {
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("f-alice", &[]).await.unwrap();
    let bob = http.dev_token("f-bob", &[]).await.unwrap();
    let id = chat(&http, &alice, &[&bob]).await;
    let channel = format!("chat:{id}");
    let mut a = connect(stack, &alice).await;
    subscribe(&mut a, &channel, &["presence.*"]).await;

    // Two tabs of bob's: one member with two connections.
    let mut tab1 = connect(stack, &bob).await;
    subscribe(&mut tab1, &channel, &[]).await;
    let mut tab2 = connect(stack, &bob).await;
    subscribe(&mut tab2, &channel, &[]).await;
    let p = until_presence(&http, &alice, &channel, WAIT, |p| {
        p["members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["userId"] == "f-bob" && m["connections"] == 2))
    })
    .await;
    assert_eq!(p["occupancy"], 2, "{p}");
    // One tab closes: still a member, one connection, nothing announced.
    tab2.close().await;
    until_presence(&http, &alice, &channel, WAIT, |p| {
        p["members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["userId"] == "f-bob" && m["connections"] == 1))
    })
    .await;

    // The other drops and bob is back within the grace period: no presence.left, no
    // second presence.joined.
    drop(tab1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut back = connect(stack, &bob).await;
    subscribe(&mut back, &channel, &[]).await;
    let frames = presence_frames(&mut a, GRACE + Duration::from_secs(2)).await;
    assert_eq!(members_of(&frames, "presence.left"), Vec::<String>::new(), "{frames:?}");
    assert!(
        !members_of(&frames, "presence.joined").contains(&"f-bob".to_string()) || {
            // Bob's first join may still be in flight when the observer drains: only one.
            members_of(&frames, "presence.joined").iter().filter(|u| *u == "f-bob").count() == 1
        }
    );
    let (_, p) = presence(&http, &alice, &channel).await;
    assert!(users(&p).contains("f-bob"), "{p}");
    back.close().await;
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_within_grace_announces_nothing_and_two_tabs_are_one_member_on_sqlite() {
    let stack = start_stack_with(opts()).await.unwrap();
    no_flap_and_two_tabs(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_within_grace_announces_nothing_and_two_tabs_are_one_member_on_dynamodb_local() {
    let (_dynamo, stack) = on_dynamodb_local().await;
    no_flap_and_two_tabs(&stack).await;
    stack.stop().await;
}

async fn two_hundred_join(stack: &Running, n: usize) {
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("m-alice", &[]).await.unwrap();
    let id = chat(&http, &alice, &[]).await;
    let channel = format!("chat:{id}");
    let mut a = connect(stack, &alice).await;
    subscribe(&mut a, &channel, &["presence.*"]).await;
    until_presence(&http, &alice, &channel, WAIT, |p| p["occupancy"] == 1).await;
    // `n` users (admins may follow any chat) join at once.
    let mut tokens = Vec::new();
    for i in 0..n {
        tokens.push(http.dev_token(&format!("m-user-{i}"), &["admin"]).await.unwrap());
    }
    let started = Instant::now();
    let clients = futures::future::join_all(tokens.iter().map(|t| {
        let (url, channel) = (stack.ws_url(), channel.clone());
        async move {
            let mut c = WsClient::connect(&url, Some(t), TokenIn::Subprotocol).await.unwrap();
            subscribe(&mut c, &channel, &["nothing.at.all"]).await;
            c
        }
    }))
    .await;
    let p = until_presence(&http, &alice, &channel, Duration::from_secs(60), |p| p["occupancy"] == n + 1).await;
    let took = started.elapsed();
    assert_eq!(users(&p).len(), n + 1);
    // Announced means published: the frames follow (the last within a few seconds).
    let mut frames = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while members_of(&frames, "presence.joined").iter().filter(|u| *u != "m-alice").count() < n && Instant::now() < deadline {
        frames.extend(presence_frames(&mut a, Duration::from_millis(500)).await);
    }
    let summary: Vec<String> = frames
        .iter()
        .map(|f| {
            format!(
                "{}×{}",
                f["event"]["type"],
                f["event"]["data"]["members"].as_array().map_or(0, Vec::len)
            )
        })
        .collect();
    // Alice's own join may be among them (her subscription came before its announcement).
    let joined: Vec<String> = members_of(&frames, "presence.joined")
        .into_iter()
        .filter(|u| u != "m-alice")
        .collect();
    assert_eq!(joined.len(), n, "each joined once: {summary:?}");
    assert_eq!(joined.iter().collect::<BTreeSet<_>>().len(), n, "each joined once");
    // Coalesced: at most one presence frame per second (plus the one that opens it).
    let bound = took.as_secs() as usize + 2;
    assert!(
        frames.len() <= bound,
        "{} presence frames in {took:?} (bound {bound})",
        frames.len()
    );
    println!(
        "{n} members joined in {took:?}: {} presence frames, occupancy {}",
        frames.len(),
        p["occupancy"]
    );
    futures::future::join_all(clients.into_iter().map(WsClient::close)).await;
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_members_joining_at_once_make_few_frames_on_sqlite() {
    let stack = start_stack_with(opts()).await.unwrap();
    two_hundred_join(&stack, 200).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_members_joining_at_once_make_few_frames_on_dynamodb_local() {
    let (_dynamo, stack) = on_dynamodb_local().await;
    two_hundred_join(&stack, 200).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_who_may_subscribe_reads_presence_on_sqlite() {
    let stack = start_stack_with(opts()).await.unwrap();
    only_who_may_subscribe(&stack).await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_who_may_subscribe_reads_presence_on_dynamodb_local() {
    let (_dynamo, stack) = on_dynamodb_local().await;
    only_who_may_subscribe(&stack).await;
    stack.stop().await;
}

async fn only_who_may_subscribe(stack: &Running) {
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("r-alice", &[]).await.unwrap();
    let mallory = http.dev_token("r-mallory", &[]).await.unwrap();
    let id = chat(&http, &alice, &[]).await;
    let channel = format!("chat:{id}");
    let mut a = connect(stack, &alice).await;
    subscribe(&mut a, &channel, &[]).await;
    until_presence(&http, &alice, &channel, WAIT, |p| p["occupancy"] == 1).await;

    // Over HTTP (the colon may be encoded): the member reads it, a stranger may not.
    let (status, body) = presence(&http, &mallory, &channel).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) = presence(&http, &alice, &format!("chat%3A{id}")).await;
    assert_eq!((status, body["occupancy"].as_u64()), (200, Some(1)), "{body}");
    let (status, _) = http.get(&format!("/api/channels/{channel}/presence"), None).await.unwrap();
    assert_eq!(status, 401);
    let (status, body) = presence(&http, &alice, "admin").await;
    assert_eq!(status, 400, "the admin channel keeps no presence: {body}");

    // Over the WebSocket: the `presence` action, answered with a `presence` frame.
    a.send(&json!({"action": "presence", "id": "p1", "channel": channel}))
        .await
        .unwrap();
    let f = a.next_where(WAIT, |f| f["id"] == "p1").await.unwrap();
    assert_eq!((f["type"].as_str(), f["occupancy"].as_u64()), (Some("presence"), Some(1)), "{f}");
    assert_eq!(f["members"][0]["userId"], "r-alice");
    let mut m = connect(stack, &mallory).await;
    m.send(&json!({"action": "presence", "id": "p2", "channel": channel}))
        .await
        .unwrap();
    let f = m.next_where(WAIT, |f| f["id"] == "p2").await.unwrap();
    assert_eq!((f["type"].as_str(), f["code"].as_str()), (Some("error"), Some("forbidden")), "{f}");
    m.close().await;
    a.close().await;
}
