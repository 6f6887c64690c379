//! `bench-bare`: the ceiling of the benchmark. The local stack's routes and frames
//! (`/ws` with `subscribe`, `POST /api/chat/{id}/messages`) with nothing behind them:
//! no auth, no storage, no events, no sequencing log. A publish wraps the body in an
//! `event` frame once and hands the same bytes to every subscriber's writer (a
//! reference count, no copy), as the fastest server for this client would.

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "A bare WebSocket broadcast server (the benchmark's ceiling)")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3200")]
    addr: SocketAddr,
    /// The WebSocket read buffer of each socket (axum's default: 128 KiB, as the local stack).
    #[arg(long)]
    read_buffer_size: Option<usize>,
}

/// Every channel's epoch (the local stack's frames carry one; so do these, for equal sizes).
const EPOCH: &str = "01BAREBAREBAREBAREBAREBARE";

/// Frames queued for a slow socket before a publish skips it.
const QUEUE: usize = 4096;

#[derive(Default)]
struct Rooms {
    rooms: RwLock<HashMap<String, HashMap<u64, mpsc::Sender<Utf8Bytes>>>>,
    next_id: AtomicU64,
    seq: AtomicU64,
}

type Shared = State<(Arc<Rooms>, Option<usize>)>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.addr.ip().is_loopback(), "bench-bare serves loopback only");
    let app = Router::new()
        .route("/ws", get(upgrade))
        .route("/api/chat/{id}/messages", post(publish))
        .with_state((Arc::new(Rooms::default()), args.read_buffer_size));
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!("bench-bare on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn publish(State((rooms, _)): Shared, Path(id): Path<String>, body: String) -> impl IntoResponse {
    let channel = format!("chat:{id}");
    let seq = rooms.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let frame = Utf8Bytes::from(format!(
        r#"{{"type":"event","channel":"{channel}","seq":{seq},"epoch":"{EPOCH}","event":{body}}}"#
    ));
    let mut delivered = 0;
    if let Some(room) = rooms.rooms.read().unwrap_or_else(|e| e.into_inner()).get(&channel) {
        for tx in room.values() {
            if tx.try_send(frame.clone()).is_ok() {
                delivered += 1;
            }
        }
    }
    (StatusCode::CREATED, format!(r#"{{"seq":{seq},"delivered":{delivered}}}"#))
}

async fn upgrade(State((rooms, read_buffer)): Shared, mut ws: WebSocketUpgrade) -> impl IntoResponse {
    if let Some(size) = read_buffer {
        ws = ws.read_buffer_size(size);
    }
    ws.on_upgrade(move |socket| serve(rooms, socket))
}

async fn serve(rooms: Arc<Rooms>, socket: WebSocket) {
    let id = rooms.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(QUEUE);
    let (mut sink, mut stream) = socket.split();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.send(Message::Text(frame)).await.is_err() {
                break;
            }
        }
    });
    let mut joined = Vec::new();
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else {
            if matches!(msg, Message::Close(_)) {
                break;
            }
            continue;
        };
        let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if frame["action"] == "subscribe" {
            let channel = frame["channel"].as_str().unwrap_or_default().to_string();
            rooms
                .rooms
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(channel.clone())
                .or_default()
                .insert(id, tx.clone());
            let ack = serde_json::json!({"type": "subscribed", "id": frame["id"], "channel": channel, "seq": 0});
            let _ = tx.send(Utf8Bytes::from(ack.to_string())).await;
            joined.push(channel);
        }
    }
    let mut all = rooms.rooms.write().unwrap_or_else(|e| e.into_inner());
    for channel in joined {
        if let Some(room) = all.get_mut(&channel) {
            room.remove(&id);
        }
    }
    drop(all);
    writer.abort();
}
