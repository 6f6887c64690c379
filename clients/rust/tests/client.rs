//! [`Client`] against a scripted server: the frames it sends (the token as subprotocol, the
//! resubscribe's `resume`, a gap's `resume`, pings) and what the application gets.

use futures::{SinkExt, StreamExt};
use realtime_client::{Backoff, Client, Event, Events, Item, Status, Subscription};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const CHANNEL: &str = "chat:C1";
const EPOCH: &str = "E1";
const WAIT: Duration = Duration::from_secs(5);

type Server = WebSocketStream<TcpStream>;

/// Accepts one connection; checks the subprotocols the client offered and picks
/// `realtime.v1`, as the real server does.
async fn accept(listener: &TcpListener) -> Server {
    let (tcp, _) = listener.accept().await.unwrap();
    #[allow(clippy::result_large_err)] // the signature tungstenite's handshake callback has
    fn check(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
        let offered = req.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
        assert_eq!(offered, Some("realtime.v1, bearer.tok"));
        resp.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("realtime.v1"));
        Ok(resp)
    }
    tokio_tungstenite::accept_hdr_async(tcp, check).await.unwrap()
}

async fn recv(ws: &mut Server) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("the client went away: {other:?}"),
        }
    }
}

async fn send(ws: &mut Server, f: Value) {
    ws.send(Message::Text(f.to_string().into())).await.unwrap();
}

fn ev(seq: u64) -> Value {
    json!({"type": "event", "channel": CHANNEL, "seq": seq, "epoch": EPOCH, "event": {
        "id": format!("ev{seq}"), "type": "chat.message.stored", "version": 1,
        "occurredAt": "2026-01-01T00:00:00Z", "correlationId": "c", "source": "realtime.chat", "chatId": "C1",
        "data": {"id": format!("M{seq}"), "chatId": "C1", "senderId": "alice", "senderRole": "organizer",
                 "content": format!("m{seq}"), "createdAt": "2026-01-01T00:00:00Z"}
    }})
}

fn subscribed(id: &Value, seq: u64) -> Value {
    json!({"type": "subscribed", "id": id, "channel": CHANNEL, "epoch": EPOCH, "seq": seq})
}

async fn next_item(items: &mut Events) -> Item {
    tokio::time::timeout(WAIT, items.recv())
        .await
        .expect("an item in time")
        .expect("running")
}

/// What the application got, as labels: `m<seq>` for a message (typed), the status, `resync`.
fn label(item: &Item) -> String {
    match item {
        Item::Event(f) => match f.typed() {
            Some(Event::MessageStored(m)) => m.content,
            other => format!("unexpected event {other:?}"),
        },
        Item::Status(s) => format!("{s:?}"),
        Item::Resync { reason, .. } => format!("resync:{reason}"),
        other => format!("{other:?}"),
    }
}

async fn labels(items: &mut Events, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        let item = next_item(items).await;
        if !matches!(item, Item::Error { .. }) {
            got.push(label(&item));
        }
    }
    got
}

#[tokio::test]
async fn it_resubscribes_with_resume_fills_gaps_and_passes_resync_on() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (client, mut items) = Client::builder(url, "tok")
        .backoff(Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(50),
        })
        .gap_wait(Duration::from_millis(50))
        .tail_check(None)
        .connect();
    let subscribing = tokio::spawn({
        let client = client.clone();
        async move { client.subscribe(Subscription::new(CHANNEL)).await }
    });

    // First connection: a fresh subscribe, two events, then the server drops it.
    let mut ws = accept(&listener).await;
    let sub = recv(&mut ws).await;
    assert_eq!(
        (sub["action"].as_str(), sub["channel"].as_str(), sub.get("resume")),
        (Some("subscribe"), Some(CHANNEL), None)
    );
    send(&mut ws, subscribed(&sub["id"], 0)).await;
    let ack = subscribing.await.unwrap().unwrap();
    assert_eq!((ack.epoch.as_str(), ack.seq), (EPOCH, 0));
    send(&mut ws, ev(2)).await; // early: held until 1
    send(&mut ws, ev(1)).await;
    assert_eq!(labels(&mut items, 4).await, ["Connecting", "Open", "m1", "m2"]);
    drop(ws);

    // Second connection: the subscribe resumes after 2; the replay overlaps a live event.
    let mut ws = accept(&listener).await;
    let sub = recv(&mut ws).await;
    assert_eq!(sub["resume"], json!({"epoch": EPOCH, "after": 2}), "{sub}");
    send(&mut ws, ev(4)).await; // live, before the replay
    send(&mut ws, ev(3)).await;
    send(&mut ws, ev(4)).await;
    send(
        &mut ws,
        json!({"type": "resumed", "channel": CHANNEL, "epoch": EPOCH, "seq": 4, "replayed": 2, "more": false}),
    )
    .await;
    send(&mut ws, subscribed(&sub["id"], 4)).await;
    assert_eq!(labels(&mut items, 4).await, ["Reconnecting", "Open", "m3", "m4"]);

    // A gap: 5 is lost. After the gap wait the client resumes after 4.
    send(&mut ws, ev(6)).await;
    let resume = recv(&mut ws).await;
    assert_eq!(
        (resume["action"].as_str(), resume["epoch"].as_str(), resume["after"].as_u64()),
        (Some("resume"), Some(EPOCH), Some(4)),
        "{resume}"
    );
    send(&mut ws, ev(5)).await;
    send(
        &mut ws,
        json!({"type": "resumed", "id": resume["id"], "channel": CHANNEL, "epoch": EPOCH, "seq": 6, "replayed": 1, "more": false}),
    )
    .await;
    assert_eq!(labels(&mut items, 2).await, ["m5", "m6"]);

    // The server's resync reaches the application; the next event sets the position.
    send(&mut ws, json!({"type": "resync", "channel": CHANNEL, "reason": "log_trimmed"})).await;
    send(&mut ws, ev(40)).await;
    assert_eq!(labels(&mut items, 2).await, ["resync:log_trimmed", "m40"]);

    // Requests: a ping is answered by its id.
    let pinging = tokio::spawn({
        let client = client.clone();
        async move { client.ping().await }
    });
    let ping = recv(&mut ws).await;
    assert_eq!(ping["action"], "ping");
    send(&mut ws, json!({"type": "pong", "id": ping["id"]})).await;
    pinging.await.unwrap().unwrap();

    client.close().await.unwrap();
    assert_eq!(labels(&mut items, 1).await, ["Closed"]);
    assert!(tokio::time::timeout(WAIT, items.recv()).await.unwrap().is_none(), "the stream ends");
}

/// A connection that reaches its age is replaced on the client's terms, and resumed; pings
/// go at the ping interval, and one without a pong drops the connection.
#[tokio::test]
async fn it_pings_and_replaces_old_or_silent_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (client, mut items) = Client::builder(url, "tok")
        .backoff(Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(10),
        })
        .ping_interval(Duration::from_millis(100))
        .request_timeout(Duration::from_millis(300))
        .max_connection_age(Duration::from_millis(700))
        .connect();
    let mut ws = accept(&listener).await;
    let started = tokio::time::Instant::now();
    // Pings, answered, until the connection is old: then it closes it and comes back.
    let mut pings = 0;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(t))) => {
                let f: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(f["action"], "ping", "{f}");
                pings += 1;
                send(&mut ws, json!({"type": "pong", "id": f["id"]})).await;
            }
            Some(Ok(Message::Close(_))) | None => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(pings >= 4, "{pings} pings");
    assert!(started.elapsed() >= Duration::from_millis(650), "closed at its age, not before");
    // The next connection: its pings go unanswered, so the client drops it too.
    let mut ws = accept(&listener).await;
    let ping = recv(&mut ws).await;
    assert_eq!(ping["action"], "ping");
    let _third = accept(&listener).await;
    assert_eq!(
        labels(&mut items, 6).await,
        ["Connecting", "Open", "Reconnecting", "Open", "Reconnecting", "Open"]
    );
    assert_eq!(client.status(), Status::Open);
    drop(client); // every handle gone: the client closes
    assert_eq!(labels(&mut items, 1).await, ["Closed"]);
}
