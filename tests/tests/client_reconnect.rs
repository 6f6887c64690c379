//! The reconnecting `realtime_client::Client` against the local stack: a connection that
//! the server drops (the management API's `DELETE @connections/{id}`, as a Lambda's
//! `DeleteConnection` would) while messages keep coming loses none and doubles none, and a
//! `resync` (the log no longer has what was missed) reaches the application.
//!
//! The client connects through a small TCP gate the test can shut, so that it stays
//! disconnected (its reconnects refused) for as long as the test publishes.

use realtime_client::{Backoff, Client, ClientError, Event, Events, Item, Status, Subscription};
use realtime_local::stack::Options;
use realtime_tests::client::Http;
use realtime_tests::{start_stack, start_stack_with};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

/// A TCP proxy to the stack that refuses new connections while shut (it accepts and drops
/// them, so the client's handshake fails). Open connections are left alone.
struct Gate {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    async fn start(upstream: SocketAddr) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let is_open = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !is_open.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut up).await;
                    }
                });
            }
        });
        Gate { addr, open, task }
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next_item(items: &mut Events) -> Item {
    tokio::time::timeout(WAIT, items.recv())
        .await
        .expect("an item in time")
        .expect("the client is running")
}

/// Reads items (keeping them all in `seen`) until `done` holds for what was seen.
async fn read_until(items: &mut Events, seen: &mut Vec<Item>, done: impl Fn(&[Item]) -> bool) {
    while !done(seen) {
        seen.push(next_item(items).await);
    }
}

/// The contents of the `chat.message.stored` events seen, typed.
fn contents(seen: &[Item]) -> Vec<String> {
    seen.iter()
        .filter_map(|i| match i {
            Item::Event(f) => match f.typed() {
                Some(Event::MessageStored(m)) => Some(m.content),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

async fn send_message(http: &Http, token: &str, chat_id: &str, content: &str) {
    let (status, body) = http
        .post(
            &format!("/api/chat/{chat_id}/messages"),
            Some(token),
            &json!({ "content": content }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
}

/// Drops the stack's only WebSocket connection through the management API.
async fn drop_the_connection(stack: &realtime_local::Running, http: &Http) {
    let ids = stack.stack.hub.ids();
    assert_eq!(ids.len(), 1, "one connection: the client's");
    let (status, body) = http
        .send(reqwest::Method::DELETE, &format!("/@connections/{}", ids[0]), None, None)
        .await
        .unwrap();
    assert_eq!(status, 204, "{body}");
}

async fn wait_for(client: &Client, status: Status) {
    tokio::time::timeout(WAIT, client.wait_for(status))
        .await
        .unwrap_or_else(|_| panic!("{status:?} in time"))
        .unwrap();
}

async fn new_chat(http: &Http, token: &str, title: &str) -> String {
    let (status, chat) = http.post("/api/chat", Some(token), &json!({ "title": title })).await.unwrap();
    assert_eq!(status, 201, "{chat}");
    chat["chatId"].as_str().unwrap().to_string()
}

fn fast_backoff(url: String, token: &str) -> realtime_client::ClientBuilder {
    Client::builder(url, token).backoff(Backoff {
        base: Duration::from_millis(50),
        max: Duration::from_millis(200),
    })
}

/// Subscribed with `chat.**`: 5 messages live, the connection dropped by the server, 10
/// published while the client cannot reconnect, then 5 more once it has: the application
/// gets all 20 typed, in seq order, each once, and the statuses in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_loses_and_doubles_nothing() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &["organizer"]).await.unwrap();
    let bob = http.dev_token("bob", &["passenger"]).await.unwrap();
    let chat_id = new_chat(&http, &alice, "reconnects").await;
    let channel = format!("chat:{chat_id}");
    let gate = Gate::start(stack.addr).await;

    let (client, mut items) = fast_backoff(gate.ws_url(), &alice).connect();
    let ack = client.subscribe(Subscription::new(&channel).events(["chat.**"])).await.unwrap();
    assert_eq!(ack.channel, channel);
    // A channel the caller may not see: refused, and forgotten.
    let bobs = new_chat(&http, &bob, "not alice's").await;
    let refused = client.subscribe(Subscription::new(format!("chat:{bobs}"))).await;
    assert!(
        matches!(&refused, Err(ClientError::Server { code, .. }) if code == "forbidden"),
        "{refused:?}"
    );

    let mut seen = Vec::new();
    for i in 0..5 {
        send_message(&http, &alice, &chat_id, &format!("m{i}")).await;
    }
    read_until(&mut items, &mut seen, |s| contents(s).len() == 5).await;

    gate.set_open(false);
    drop_the_connection(&stack, &http).await;
    wait_for(&client, Status::Reconnecting).await;
    for i in 5..15 {
        send_message(&http, &alice, &chat_id, &format!("m{i}")).await;
    }
    // Still down: every reconnect is refused at the gate (and reported).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.status(), Status::Reconnecting);
    gate.set_open(true);
    wait_for(&client, Status::Open).await;
    for i in 15..20 {
        send_message(&http, &alice, &chat_id, &format!("m{i}")).await;
    }
    read_until(&mut items, &mut seen, |s| contents(s).len() >= 20).await;
    // Nothing more comes (no event twice): read whatever else arrives for a while.
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(1500), items.recv()).await {
        seen.push(item);
    }

    let want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(contents(&seen), want, "every message once, in the order sent");
    let events: Vec<_> = seen
        .iter()
        .filter_map(|i| match i {
            Item::Event(f) => Some(f),
            _ => None,
        })
        .collect();
    let seqs: Vec<u64> = events.iter().map(|f| f.seq.expect("logged events have a seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq order, each once: {seqs:?}");
    let mut ids: Vec<&str> = events.iter().map(|f| f.event.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "no event twice");
    assert!(events
        .iter()
        .all(|f| f.channel == channel && f.epoch.as_deref() == Some(ack.epoch.as_str())));
    assert!(!seen.iter().any(|i| matches!(i, Item::Resync { .. })), "nothing to resync");
    let statuses: Vec<Status> = seen
        .iter()
        .filter_map(|i| match i {
            Item::Status(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [Status::Connecting, Status::Open, Status::Reconnecting, Status::Open],
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|i| matches!(
            i,
            Item::Error {
                error: ClientError::Connect(_),
                ..
            }
        )),
        "the refused reconnects are reported"
    );

    client.close().await.unwrap();
    assert_eq!(client.status(), Status::Closed);
    let mut rest = Vec::new();
    while let Some(item) = tokio::time::timeout(WAIT, items.recv()).await.expect("the end in time") {
        rest.push(item);
    }
    assert_eq!(rest.last(), Some(&Item::Status(Status::Closed)), "the stream ends after Closed");
    stack.stop().await;
}

/// With a 1 s log retention, the events published while the client is away expire before
/// it is back: its resubscribe's `resume` cannot be replayed, the `resync` reaches the
/// application, and the next message follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_reaches_the_application() {
    let stack = start_stack_with(Options {
        log_retention_secs: Some(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &["organizer"]).await.unwrap();
    let chat_id = new_chat(&http, &alice, "short memory").await;
    let channel = format!("chat:{chat_id}");
    let gate = Gate::start(stack.addr).await;

    let (client, mut items) = fast_backoff(gate.ws_url(), &alice).connect();
    client
        .subscribe(Subscription::new(&channel).events(["chat.message.*"]))
        .await
        .unwrap();
    let mut seen = Vec::new();
    send_message(&http, &alice, &chat_id, "before").await;
    read_until(&mut items, &mut seen, |s| contents(s).len() == 1).await;

    gate.set_open(false);
    drop_the_connection(&stack, &http).await;
    wait_for(&client, Status::Reconnecting).await;
    for i in 0..3 {
        send_message(&http, &alice, &chat_id, &format!("missed{i}")).await;
    }
    // Every entry expires.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    gate.set_open(true);
    wait_for(&client, Status::Open).await;
    // With a 1 s retention a filtered gap's resume may already have met a trimmed log before
    // the drop: the resync that counts is the one after it.
    let resyncs = |s: &[Item]| s.iter().filter(|i| matches!(i, Item::Resync { .. })).count();
    let earlier = resyncs(&seen);
    read_until(&mut items, &mut seen, |s| resyncs(s) > earlier).await;
    let Some(Item::Resync { channel: ch, reason }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(ch, &channel);
    // The log may also have expired whole, and the channel started a new epoch.
    assert!(matches!(reason.as_str(), "log_trimmed" | "epoch_changed"), "{reason}");

    send_message(&http, &alice, &chat_id, "after").await;
    read_until(&mut items, &mut seen, |s| contents(s).last().is_some_and(|c| c == "after")).await;
    let got = contents(&seen);
    assert_eq!(got.first().map(String::as_str), Some("before"));
    assert!(
        got.iter().all(|c| c == "before" || c == "after" || c.starts_with("missed")),
        "{got:?}"
    );
    assert_eq!(got.iter().filter(|c| *c == "after").count(), 1);
    client.close().await.unwrap();
    stack.stop().await;
}
