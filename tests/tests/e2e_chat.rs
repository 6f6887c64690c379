//! End to end over the local stack with real clients: two WebSocket clients
//! subscribe to a chat, a message sent over HTTP reaches both with the same `seq`,
//! and a closed client's connection is gone afterwards.

use realtime_domain::channels::Channel;
use realtime_domain::connections;
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::start_stack;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn is_event(f: &serde_json::Value, ty: &str) -> bool {
    f["type"] == "event" && f["event"]["type"] == ty
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_every_subscriber_with_one_seq_and_closed_connections_are_gone() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &["organizer"]).await.unwrap();
    let bob = http.dev_token("bob", &["passenger"]).await.unwrap();

    let (status, chat) = http
        .post("/api/chat", Some(&alice), &json!({"title": "Trip planning"}))
        .await
        .unwrap();
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let (status, joined) = http
        .post(
            &format!("/api/chat/{chat_id}/participants"),
            Some(&bob),
            &json!({"displayName": "Bob"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{joined}");

    // One client sends its token as a subprotocol, the other in the query.
    let mut a = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    assert_eq!(a.protocol.as_deref(), Some("realtime.v1"));
    let mut b = WsClient::connect(&stack.ws_url(), Some(&bob), TokenIn::Query).await.unwrap();
    let channel = format!("chat:{chat_id}");
    for (c, id) in [(&mut a, "a1"), (&mut b, "b1")] {
        let ack = c.subscribe(id, &channel, &["chat.**"]).await.unwrap();
        assert_eq!(ack["type"], "subscribed", "{ack}");
        assert_eq!(ack["channel"], channel.as_str());
        assert!(ack["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    }

    let (status, msg) = http
        .post(
            &format!("/api/chat/{chat_id}/messages"),
            Some(&alice),
            &json!({"content": "hello bob", "clientMessageId": "m-1"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{msg}");
    let fa = a.next_where(WAIT, |f| is_event(f, "chat.message.stored")).await.unwrap();
    let fb = b.next_where(WAIT, |f| is_event(f, "chat.message.stored")).await.unwrap();
    assert_eq!(fa["seq"], fb["seq"]);
    assert!(fa["seq"].as_u64().unwrap() >= 1);
    assert_eq!(fa["epoch"], fb["epoch"]);
    assert_eq!(fa["event"]["data"]["content"], "hello bob");
    assert_eq!(fa["event"]["data"]["id"], msg["id"]);
    assert_eq!(fb["event"]["chatId"], chat_id.as_str());

    // A retried send (same clientMessageId) stores and announces nothing new.
    let (status, again) = http
        .post(
            &format!("/api/chat/{chat_id}/messages"),
            Some(&alice),
            &json!({"content": "hello bob", "clientMessageId": "m-1"}),
        )
        .await
        .unwrap();
    assert_eq!((status, &again["id"]), (200, &msg["id"]));

    // Bob leaves: his connection and subscription are deleted by `$disconnect`.
    let table = stack.stack.deps.table.clone();
    let chan = Channel::Chat(chat_id.clone());
    assert_eq!(connections::subscribers(table.as_ref(), &chan).await.unwrap().len(), 2);
    b.close().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let subs = loop {
        let subs = connections::subscribers(table.as_ref(), &chan).await.unwrap();
        if subs.len() == 1 || tokio::time::Instant::now() > deadline {
            break subs;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(subs.len(), 1, "bob's subscription is gone");
    assert_eq!(subs[0].user_id, "alice");
    assert_eq!(stack.stack.hub.len(), 1);

    // The next message still reaches alice, with the next seq.
    let (status, _) = http
        .post(
            &format!("/api/chat/{chat_id}/messages"),
            Some(&alice),
            &json!({"content": "still here"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let next = a.next_where(WAIT, |f| is_event(f, "chat.message.stored")).await.unwrap();
    assert_eq!(next["seq"].as_u64(), fa["seq"].as_u64().map(|s| s + 1));
    a.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_without_a_valid_token_are_refused_and_strangers_cannot_subscribe() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    assert!(WsClient::connect(&stack.ws_url(), None, TokenIn::Subprotocol).await.is_err());
    assert!(WsClient::connect(&stack.ws_url(), Some("a.b.c"), TokenIn::Query).await.is_err());

    let alice = http.dev_token("alice", &[]).await.unwrap();
    let mallory = http.dev_token("mallory", &[]).await.unwrap();
    let (_, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "private"})).await.unwrap();
    let mut m = WsClient::connect(&stack.ws_url(), Some(&mallory), TokenIn::Subprotocol)
        .await
        .unwrap();
    let ack = m
        .subscribe("s1", &format!("chat:{}", chat["chatId"].as_str().unwrap()), &[])
        .await
        .unwrap();
    assert_eq!(
        (ack["type"].as_str(), ack["code"].as_str()),
        (Some("error"), Some("forbidden")),
        "{ack}"
    );
    let ack = m.subscribe("s2", "admin", &[]).await.unwrap();
    assert_eq!(ack["code"], "forbidden");
    m.send(&json!({"action": "ping", "id": "p1"})).await.unwrap();
    assert_eq!(m.next(WAIT).await.unwrap(), json!({"type": "pong", "id": "p1"}));
    m.send_raw("not json").await.unwrap();
    assert_eq!(m.next(WAIT).await.unwrap()["type"], "error");
    m.send(&json!({"action": "dance", "id": "d1"})).await.unwrap();
    assert_eq!(m.next(WAIT).await.unwrap()["code"], "unknown_action");
    // HTTP without a token, and a bad body.
    let (status, body) = http.post("/api/chat", None, &json!({"title": "x"})).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (status, body) = http.post("/api/chat", Some(&alice), &json!({"title": ""})).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")));
    m.close().await;
    stack.stop().await;
}
