//! A small reconnect storm on the local stack: 300 reconnecting clients of one chat lose
//! every socket at once (`POST /api/dev/drop {"all": true}`) while messages keep coming.
//! They come back with full-jitter backoff and resume; none loses or doubles a message,
//! and their resumes share log reads (`realtime_domain::tail`). `bash bench/run.sh storm`
//! runs the same with 10,000 clients.

use realtime_client::{Backoff, Client, Item, Status, Subscription};
use realtime_tests::client::Http;
use realtime_tests::start_stack;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 300;

/// Per client: the seqs it was handed, and whether it was dropped.
type Seen = Arc<Vec<Mutex<(Vec<u64>, bool)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_clients_dropped_at_once_come_back_with_every_message() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let admin = http.dev_token("storm-admin", &["admin"]).await.unwrap();
    let (_, chat) = http.post("/api/chat", Some(&admin), &json!({"title": "storm"})).await.unwrap();
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let channel = format!("chat:{chat_id}");
    let backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(2),
    };
    let seen: Seen = Arc::new((0..CLIENTS).map(|_| Mutex::default()).collect());
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let token = http.dev_token(&format!("storm-{i}"), &["admin"]).await.unwrap();
        let (client, mut events) = Client::builder(stack.ws_url(), token).backoff(backoff).connect();
        client
            .subscribe(Subscription::new(channel.clone()).events(["chat.message.stored"]))
            .await
            .unwrap();
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Some(item) = events.recv().await {
                let mut s = seen[i].lock().unwrap();
                match item {
                    Item::Event(f) => s.0.extend(f.seq),
                    Item::Status(Status::Reconnecting) => s.1 = true,
                    _ => {}
                }
            }
        });
        clients.push(client);
    }
    let send = |n: usize| {
        let (http, admin, chat_id) = (http.clone(), admin.clone(), chat_id.clone());
        async move {
            let (status, body) = http
                .post(
                    &format!("/api/chat/{chat_id}/messages"),
                    Some(&admin),
                    &json!({"content": format!("m{n}")}),
                )
                .await
                .unwrap();
            assert_eq!(status, 201, "{body}");
        }
    };
    send(0).await;
    let (_, before) = http.get("/api/dev/stats", None).await.unwrap();
    let (status, dropped) = http.post("/api/dev/drop", None, &json!({"all": true})).await.unwrap();
    assert_eq!((status, dropped["dropped"].as_u64()), (200, Some(CLIENTS as u64)), "{dropped}");
    for n in 1..=5 {
        send(n).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for c in &clients {
        tokio::time::timeout(Duration::from_secs(30), c.wait_for(Status::Open))
            .await
            .unwrap()
            .unwrap();
    }
    send(6).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.iter().any(|s| s.lock().unwrap().0.len() < 7) {
        assert!(tokio::time::Instant::now() < deadline, "not everyone got every message");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reference = seen[0].lock().unwrap().0.clone();
    assert_eq!(reference.len(), 7);
    for s in seen.iter() {
        let s = s.lock().unwrap();
        assert!(s.1, "every client was dropped");
        assert_eq!(s.0, reference, "each message once, in order");
    }
    // The resumes shared their reads: fewer log reads than replays.
    let (_, after) = http.get("/api/dev/stats", None).await.unwrap();
    let replays = after["replays"].as_u64().unwrap() - before["replays"].as_u64().unwrap();
    let reads = after["replayReads"].as_u64().unwrap() - before["replayReads"].as_u64().unwrap();
    assert!(replays >= CLIENTS as u64, "{replays} replays");
    assert!(reads < replays, "{reads} log reads for {replays} replays");
    println!("{CLIENTS} clients: {replays} replays, {reads} log reads");
    for c in &clients {
        let _ = c.close().await;
    }
    stack.stop().await;
}
