//! `kill -9` while messages are being sent (three rounds without faults, three with
//! `--fault-rate 0.3`), then a restart on the same data dir: every message that was
//! answered 201 is in its chat's log, once, gap-free, and replays to a subscriber (the log entry is written in the message's own transaction, and the feed
//! keeps it until the relay has handed it on).

use realtime_client::{Http, TokenIn, WsClient};
use serde_json::json;
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(dir: &std::path::Path, port: u16, fault_rate: f64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_realtime-local"))
        .args([
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--fault-rate",
            &fault_rate.to_string(),
            "--data-dir",
        ])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("realtime-local starts")
}

async fn ready(http: &Http) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get("/api/websocket/health", None).await.is_err() {
        assert!(Instant::now() < deadline, "the stack did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loses_no_answered_message() {
    let dir = std::env::temp_dir().join(format!("realtime-crash-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let http = Http::new(format!("http://127.0.0.1:{port}"));
    let mut answered: HashSet<String> = HashSet::new();
    let mut chat_id = String::new();
    for round in 0..6 {
        let mut child = start(&dir, port, if round < 3 { 0.0 } else { 0.3 });
        ready(&http).await;
        let alice = http.dev_token("alice", &[]).await.unwrap();
        if chat_id.is_empty() {
            let (status, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "crash"})).await.unwrap();
            assert_eq!(status, 201, "{chat}");
            chat_id = chat["chatId"].as_str().unwrap().to_string();
        }
        // Senders run while the process is killed at a random moment.
        let sender = {
            let (http, alice, chat_id) = (Http::new(http.base.clone()), alice.clone(), chat_id.clone());
            tokio::spawn(async move {
                let mut ok = Vec::new();
                for i in 0..400 {
                    let body = json!({"content": format!("r{round} m{i}"), "clientMessageId": format!("r{round}-m{i}")});
                    match http.post(&format!("/api/chat/{chat_id}/messages"), Some(&alice), &body).await {
                        Ok((201, m)) => ok.push(m["id"].as_str().unwrap_or_default().to_string()),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                ok
            })
        };
        tokio::time::sleep(Duration::from_millis(300 + 150 * (round % 3))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        answered.extend(sender.await.unwrap());
    }
    assert!(answered.len() > 20, "only {} messages answered before the kills", answered.len());

    // After the last kill: a fresh process on the same data dir replays the whole chat.
    let mut child = start(&dir, port, 0.0);
    ready(&http).await;
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let mut ws = WsClient::connect(&format!("ws://127.0.0.1:{port}/ws"), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    let ack = ws.subscribe("s1", &format!("chat:{chat_id}"), &["chat.**"]).await.unwrap();
    let (epoch, head) = (ack["epoch"].as_str().unwrap().to_string(), ack["seq"].as_u64().unwrap());
    let mut stored = Vec::new();
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        ws.send(
            &json!({"action": "resume", "id": format!("r{after}"), "channel": format!("chat:{chat_id}"), "epoch": epoch, "after": after}),
        )
        .await
        .unwrap();
        let frames = ws
            .collect_until(Duration::from_secs(10), |f| f["type"] == "resumed" || f["type"] == "resync")
            .await
            .unwrap();
        let end = frames.last().unwrap();
        assert_eq!(end["type"], "resumed", "{end}");
        for f in &frames {
            if f["type"] == "event" && f["seq"].as_u64().is_some_and(|s| s > after) {
                seqs.push(f["seq"].as_u64().unwrap());
                if f["event"]["type"] == "chat.message.stored" {
                    stored.push(f["event"]["data"]["id"].as_str().unwrap().to_string());
                }
            }
        }
        after = end["seq"].as_u64().unwrap();
        if end["more"] != true {
            break;
        }
    }
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "the log is gap-free");
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no message logged twice");
    let lost: Vec<&String> = answered.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered messages lost: {lost:?}",
        lost.len(),
        answered.len()
    );
    println!("{} answered before 6 kills, {} in the log, none lost", answered.len(), stored.len());
    ws.close().await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
