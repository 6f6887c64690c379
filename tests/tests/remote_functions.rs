//! The end-to-end chat scenario with the real function binaries behind the local stack:
//! `realtime-local --functions-url` in front of `cargo lambda watch`, on DynamoDB Local.
//! Every route, the authorizer, the log relay and the fan-out run as their own processes,
//! through the Lambda Runtime API, as they would deployed.
//!
//! It needs those servers, so `infra/check-lambda-watch.sh` (run by `infra/test.sh` after
//! `cargo test`, since cargo lambda watch runs cargo) starts them and runs this test with
//! `--ignored`, giving the stack's address in `REALTIME_REMOTE_STACK`.

use realtime_tests::client::{Http, TokenIn, WsClient};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo lambda watch: infra/check-lambda-watch.sh runs it"]
async fn the_chat_scenario_runs_on_the_real_binaries() {
    let base = std::env::var("REALTIME_REMOTE_STACK").expect("REALTIME_REMOTE_STACK: the stack in front of cargo lambda watch");
    let http = Http::new(&base);
    let ws_url = format!("{}/ws", base.replacen("http", "ws", 1));
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let bob = http.dev_token("bob", &[]).await.unwrap();
    let (status, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "binaries"})).await.unwrap();
    assert_eq!(status, 201, "chat-create: {chat}");
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let (status, joined) = http
        .post(
            &format!("/api/chat/{chat_id}/participants"),
            Some(&bob),
            &json!({"displayName": "Bob"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "chat-join: {joined}");

    let channel = format!("chat:{chat_id}");
    let mut a = WsClient::connect(&ws_url, Some(&alice), TokenIn::Subprotocol).await.unwrap();
    let mut b = WsClient::connect(&ws_url, Some(&bob), TokenIn::Query).await.unwrap();
    for (c, id) in [(&mut a, "sa"), (&mut b, "sb")] {
        let ack = c.subscribe(id, &channel, &["chat.message.*"]).await.unwrap();
        assert_eq!(ack["type"], "subscribed", "ws-subscribe: {ack}");
    }
    let (status, msg) = http
        .post(
            &format!("/api/chat/{chat_id}/messages"),
            Some(&alice),
            &json!({"content": "from the binaries", "clientMessageId": "b1"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "chat-send-message: {msg}");
    // The table's stream -> log-relay -> PutEvents -> the rule -> fanout -> @connections.
    let mut seqs = Vec::new();
    for c in [&mut a, &mut b] {
        let f = c
            .next_where(Duration::from_secs(60), |f| {
                f["type"] == "event" && f["event"]["type"] == "chat.message.stored"
            })
            .await
            .expect("the message, pushed by the fanout binary");
        assert_eq!(f["event"]["data"]["id"], msg["id"]);
        seqs.push(f["seq"].as_u64());
    }
    assert_eq!(seqs[0], seqs[1], "one seq for both");
    assert!(seqs[0].is_some());
    // A refused subscribe comes back as the function's error frame.
    let refused = b.subscribe("sx", "user:alice", &[]).await.unwrap();
    assert_eq!(refused["code"], "forbidden", "{refused}");
    // ws-ping.
    a.send(&json!({"action": "ping", "id": "p"})).await.unwrap();
    let pong = a.next_where(Duration::from_secs(30), |f| f["id"] == "p").await.unwrap();
    assert_eq!(pong["type"], "pong");
    a.close().await;
    b.close().await;
    println!(
        "chat {chat_id}: created, joined, two subscribers, one message at seq {:?}, all through the binaries",
        seqs[0]
    );
}
