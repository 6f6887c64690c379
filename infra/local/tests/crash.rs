//! `kill -9` at a random moment while a writer sends up to 2,000 messages (five rounds
//! without faults, five with `--fault-rate 0.3`), then a restart on the same data dir:
//! every message that was answered 2xx is in its chat's log, once, gap-free, and replays
//! to a subscriber (the log entry is written in the message's own transaction, and the
//! feed keeps it until the relay has handed it on). The message in flight at each kill
//! is sent again with its `clientMessageId` after the restart: it is then in the log once.

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

const ROUNDS: usize = 10;
const MESSAGES: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loses_no_answered_message() {
    let mut retried = 0;
    let dir = std::env::temp_dir().join(format!("realtime-crash-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let http = Http::new(format!("http://127.0.0.1:{port}"));
    let mut answered: HashSet<String> = HashSet::new();
    let mut chat_id = String::new();
    // The messages in flight when the process died: (clientMessageId, content).
    let mut in_flight: Vec<(String, String)> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = start(&dir, port, if round < ROUNDS / 2 { 0.0 } else { 0.3 });
        ready(&http).await;
        let alice = http.dev_token("alice", &[]).await.unwrap();
        if chat_id.is_empty() {
            let (status, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "crash"})).await.unwrap();
            assert_eq!(status, 201, "{chat}");
            chat_id = chat["chatId"].as_str().unwrap().to_string();
        }
        // The one in flight at the last kill, again with its clientMessageId.
        for (cmid, content) in in_flight.drain(..) {
            let body = json!({"content": content, "clientMessageId": cmid});
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match http.post(&format!("/api/chat/{chat_id}/messages"), Some(&alice), &body).await {
                    Ok((200 | 201, m)) => {
                        answered.insert(m["id"].as_str().unwrap_or_default().to_string());
                        break;
                    }
                    other => assert!(Instant::now() < deadline, "the retry of {cmid} never passed: {other:?}"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            retried += 1;
        }
        // Senders run while the process is killed at a random moment.
        let sender = {
            let (http, alice, chat_id) = (Http::new(http.base.clone()), alice.clone(), chat_id.clone());
            tokio::spawn(async move {
                let mut ok = Vec::new();
                for i in 0..MESSAGES {
                    let (cmid, content) = (format!("r{round}-m{i}"), format!("r{round} m{i}"));
                    let body = json!({"content": content, "clientMessageId": cmid});
                    match http.post(&format!("/api/chat/{chat_id}/messages"), Some(&alice), &body).await {
                        Ok((200 | 201, m)) => ok.push(m["id"].as_str().unwrap_or_default().to_string()),
                        Ok(_) => {}
                        Err(_) => return (ok, Some((cmid, content))),
                    }
                }
                (ok, None)
            })
        };
        // A random moment: 0.3 to 1.5 s into the round.
        let wait = 300 + (std::process::id() as u64 * 7919 + round as u64 * 104_729) % 1200;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (ok, lost_answer) = sender.await.unwrap();
        answered.extend(ok);
        in_flight.extend(lost_answer);
    }
    assert!(answered.len() > 20, "only {} messages answered before the kills", answered.len());

    // After the last kill: a fresh process on the same data dir replays the whole chat.
    let mut child = start(&dir, port, 0.0);
    ready(&http).await;
    let alice = http.dev_token("alice", &[]).await.unwrap();
    for (cmid, content) in in_flight.drain(..) {
        let body = json!({"content": content, "clientMessageId": cmid});
        let (status, m) = http
            .post(&format!("/api/chat/{chat_id}/messages"), Some(&alice), &body)
            .await
            .unwrap();
        assert!(status == 200 || status == 201, "{status} {m}");
        answered.insert(m["id"].as_str().unwrap_or_default().to_string());
        retried += 1;
    }
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
            .collect_until(Duration::from_secs(10), |f| {
                f["type"] == "resumed" || f["type"] == "resync" || f["type"] == "error"
            })
            .await
            .unwrap();
        let end = frames.last().unwrap();
        if end["code"] == "rate_limited" {
            // Replays are charged by what they send: wait for the bucket, as a client does.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
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
    println!(
        "{} answered across {ROUNDS} kills ({retried} in flight at a kill, sent again after it), {} in the log, none lost",
        answered.len(),
        stored.len()
    );
    ws.close().await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
